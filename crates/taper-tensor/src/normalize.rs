//! Value normalisation (MAPPO's `ValueNorm`) and explained variance. The running mean and
//! variance of observations and returns live with the envs that normalise them
//! (`taper_envs::normalize::RunningMeanStd`).

use serde::{Deserialize, Serialize};

/// Value normalisation as in MAPPO's on-policy codebase (`ValueNorm`): exponential moving
/// averages of the mean and the mean square of value targets with weight `beta` per batch,
/// debiased like Adam's moments; the variance is floored at 1e-2. A critic learns
/// `normalize(returns)`; its outputs are `denormalize`d before GAE.
///
/// ```
/// use taper_tensor::normalize::ValueNorm;
/// let mut v = ValueNorm::new(0.99999);
/// v.update(&[10.0, 12.0, 14.0]);
/// // After one batch the debiased statistics are the batch's own.
/// assert!((v.mean() - 12.0).abs() < 1e-6);
/// let mut x = [14.0f32];
/// v.normalize(&mut x);
/// v.denormalize(&mut x);
/// assert!((x[0] - 14.0).abs() < 1e-4);
/// ```
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct ValueNorm {
    beta: f64,
    mean: f64,
    mean_sq: f64,
    debias: f64,
}

impl ValueNorm {
    /// A normaliser with per-batch weight `beta` (the codebase's default: 0.99999).
    pub fn new(beta: f64) -> Self {
        ValueNorm {
            beta,
            mean: 0.0,
            mean_sq: 0.0,
            debias: 0.0,
        }
    }
    /// Folds a batch of targets into the averages.
    pub fn update(&mut self, x: &[f32]) {
        if x.is_empty() {
            return;
        }
        let n = x.len() as f64;
        let m = x.iter().map(|&v| v as f64).sum::<f64>() / n;
        let sq = x.iter().map(|&v| (v as f64) * (v as f64)).sum::<f64>() / n;
        let b = self.beta;
        self.mean = b * self.mean + (1.0 - b) * m;
        self.mean_sq = b * self.mean_sq + (1.0 - b) * sq;
        self.debias = b * self.debias + (1.0 - b);
    }
    /// The debiased mean.
    pub fn mean(&self) -> f64 {
        self.mean / self.debias.max(1e-5)
    }
    /// The debiased variance, at least 1e-2.
    pub fn var(&self) -> f64 {
        let m = self.mean();
        (self.mean_sq / self.debias.max(1e-5) - m * m).max(1e-2)
    }
    /// `(x − mean) / std`, in place.
    pub fn normalize(&self, x: &mut [f32]) {
        let (m, s) = (self.mean(), self.var().sqrt());
        for v in x {
            *v = ((*v as f64 - m) / s) as f32;
        }
    }
    /// `x·std + mean`, in place.
    pub fn denormalize(&self, x: &mut [f32]) {
        let (m, s) = (self.mean(), self.var().sqrt());
        for v in x {
            *v = (*v as f64 * s + m) as f32;
        }
    }
}

/// `1 − Var(y − ŷ) / Var(y)`; NaN when `Var(y) = 0` (as CleanRL and SB3 report).
pub fn explained_variance(y_pred: &[f32], y_true: &[f32]) -> f32 {
    let n = y_true.len() as f64;
    if n == 0.0 {
        return f32::NAN;
    }
    let var = |it: &mut dyn Iterator<Item = f64>| {
        let v: Vec<f64> = it.collect();
        let m = v.iter().sum::<f64>() / n;
        v.iter().map(|x| (x - m) * (x - m)).sum::<f64>() / n
    };
    let vy = var(&mut y_true.iter().map(|&v| v as f64));
    if vy == 0.0 {
        return f32::NAN;
    }
    let vr = var(&mut y_true.iter().zip(y_pred).map(|(&a, &b)| a as f64 - b as f64));
    (1.0 - vr / vy) as f32
}

#[cfg(test)]
mod tests {
    use super::*;

    /// The debiased averages weight batch k by `beta^(K−k)`, normalised.
    #[test]
    fn value_norm_weights_batches() {
        let mut v = ValueNorm::new(0.5);
        v.update(&[0.0, 2.0]); // mean 1, mean square 2
        v.update(&[4.0]); // mean 4, mean square 16
                          // weights 0.5·0.5 = 0.25 and 0.5, normalised by 0.75.
        let m = (0.25 * 1.0 + 0.5 * 4.0) / 0.75;
        let sq = (0.25 * 2.0 + 0.5 * 16.0) / 0.75;
        assert!((v.mean() - m).abs() < 1e-12);
        assert!((v.var() - (sq - m * m)).abs() < 1e-12);
        let mut c = ValueNorm::new(0.5);
        c.update(&[3.0, 3.0]);
        assert_eq!(c.var(), 1e-2, "the variance is floored");
    }

    #[test]
    fn explained_variance_cases() {
        assert!((explained_variance(&[1.0, 2.0, 3.0], &[1.0, 2.0, 3.0]) - 1.0).abs() < 1e-6);
        assert!(explained_variance(&[0.0; 3], &[1.0, 1.0, 1.0]).is_nan());
        assert!((explained_variance(&[2.0, 2.0], &[1.0, 3.0])).abs() < 1e-6);
    }
}
