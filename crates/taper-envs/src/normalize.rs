//! Running mean and variance of a vector stream (Chan et al.'s parallel merge): the statistics
//! behind [`crate::VecEnv`]'s observation and reward normalisation.
//!
//! ```
//! use taper_envs::normalize::RunningMeanStd;
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
}
