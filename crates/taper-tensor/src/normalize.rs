//! Running mean and variance (with Chan et al.'s parallel merge) and explained variance.
//!
//! ```
//! use taper_tensor::normalize::RunningMeanStd;
//! let mut a = RunningMeanStd::new(1);
//! a.update(&[1.0, 2.0, 3.0, 4.0], 4);
//! assert!((a.mean()[0] - 2.5).abs() < 1e-3);
//! ```

use serde::{Deserialize, Serialize};

/// Running statistics of a vector stream, as in Gymnasium's `RunningMeanStd` (and SB3's):
/// moments in f64, the count starting at `1e-4` so an empty normaliser divides by ~1.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct RunningMeanStd {
    mean: Vec<f64>,
    var: Vec<f64>,
    count: f64,
}

impl RunningMeanStd {
    /// Statistics of `dim`-wide vectors: mean 0, variance 1, count 1e-4.
    pub fn new(dim: usize) -> Self {
        RunningMeanStd {
            mean: vec![0.0; dim],
            var: vec![1.0; dim],
            count: 1e-4,
        }
    }
    /// Width.
    pub fn dim(&self) -> usize {
        self.mean.len()
    }
    /// Current mean.
    pub fn mean(&self) -> &[f64] {
        &self.mean
    }
    /// Current (population) variance.
    pub fn var(&self) -> &[f64] {
        &self.var
    }
    /// Number of samples seen (plus the initial 1e-4).
    pub fn count(&self) -> f64 {
        self.count
    }

    /// Adds `rows` vectors from a row-major `[rows, dim]` slice.
    pub fn update(&mut self, x: &[f32], rows: usize) {
        let d = self.dim();
        assert_eq!(x.len(), rows * d, "RunningMeanStd::update: shape");
        if rows == 0 {
            return;
        }
        let mut other = RunningMeanStd {
            mean: vec![0.0; d],
            var: vec![0.0; d],
            count: rows as f64,
        };
        for r in 0..rows {
            for j in 0..d {
                other.mean[j] += x[r * d + j] as f64;
            }
        }
        for m in other.mean.iter_mut() {
            *m /= rows as f64;
        }
        for r in 0..rows {
            for j in 0..d {
                let z = x[r * d + j] as f64 - other.mean[j];
                other.var[j] += z * z;
            }
        }
        for v in other.var.iter_mut() {
            *v /= rows as f64;
        }
        self.merge(&other);
    }

    /// Merges another set of statistics into this one (Chan, Golub & LeVeque's formula).
    pub fn merge(&mut self, other: &RunningMeanStd) {
        let tot = self.count + other.count;
        for j in 0..self.dim() {
            let delta = other.mean[j] - self.mean[j];
            let m_a = self.var[j] * self.count;
            let m_b = other.var[j] * other.count;
            let m2 = m_a + m_b + delta * delta * self.count * other.count / tot;
            self.mean[j] += delta * other.count / tot;
            self.var[j] = m2 / tot;
        }
        self.count = tot;
    }

    /// `(x − mean) / sqrt(var + eps)`, then clipped to `±clip`, in place on `[rows, dim]`.
    pub fn normalize(&self, x: &mut [f32], eps: f64, clip: f32) {
        let d = self.dim();
        for row in x.chunks_exact_mut(d) {
            for j in 0..d {
                let z = ((row[j] as f64 - self.mean[j]) / (self.var[j] + eps).sqrt()) as f32;
                row[j] = z.clamp(-clip, clip);
            }
        }
    }
}

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

    #[test]
    fn merge_equals_one_pass() {
        let data: Vec<f32> = (0..200).map(|i| ((i * 37 % 101) as f32).sin() * 3.0 + 1.0).collect();
        let mut all = RunningMeanStd::new(2);
        all.update(&data, 100);
        let mut a = RunningMeanStd::new(2);
        a.update(&data[..60], 30);
        let mut b = RunningMeanStd::new(2);
        b.update(&data[60..], 70);
        a.merge(&b);
        for j in 0..2 {
            assert!((a.mean()[j] - all.mean()[j]).abs() < 1e-6);
            assert!((a.var()[j] - all.var()[j]).abs() < 1e-5);
        }
        // The exact moments of column 0.
        let col: Vec<f64> = data.chunks(2).map(|r| r[0] as f64).collect();
        let m = col.iter().sum::<f64>() / 100.0;
        let v = col.iter().map(|x| (x - m).powi(2)).sum::<f64>() / 100.0;
        assert!((all.mean()[0] - m).abs() < 1e-4 && (all.var()[0] - v).abs() < 1e-3);
    }

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
