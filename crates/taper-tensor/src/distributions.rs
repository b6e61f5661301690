//! Action distributions on row-major slices, with the gradients PPO needs in closed form.
//!
//! ```
//! use taper_tensor::distributions::Categorical;
//! use taper_tensor::rng::{stream, Purpose};
//! let logits = [0.0f32, 1.0, -1.0];
//! let mut c = Categorical::new(3);
//! c.set_logits(&logits, None);
//! let mut rng = stream(0, Purpose::Action, 0);
//! let a = c.sample(&mut rng);
//! assert!(a < 3);
//! assert!((c.probs().iter().sum::<f32>() - 1.0).abs() < 1e-6);
//! assert_eq!(c.mode(), 1);
//! ```

use rand::Rng;
use rand_distr::{Distribution, StandardNormal};

/// A categorical distribution over `n` actions, from one row of logits.
///
/// Holds the normalised log-probabilities so one row can be queried many times without
/// recomputing them. Use [`Categorical::set_logits`] per row.
#[derive(Debug, Clone)]
pub struct Categorical {
    logp: Vec<f32>,
    p: Vec<f32>,
}

/// Masked logits are set to this value, so masked actions get probability 0 while
/// `p · log p` stays finite.
pub const MASKED_LOGIT: f32 = -1e9;

impl Categorical {
    /// An empty distribution over `n` actions.
    pub fn new(n: usize) -> Self {
        Categorical {
            logp: vec![0.0; n],
            p: vec![0.0; n],
        }
    }

    /// Loads one row of logits; where `mask[i]` is false action `i` gets probability 0.
    pub fn set_logits(&mut self, logits: &[f32], mask: Option<&[bool]>) {
        let n = logits.len();
        self.logp.resize(n, 0.0);
        self.p.resize(n, 0.0);
        for i in 0..n {
            self.logp[i] = match mask {
                Some(m) if !m[i] => MASKED_LOGIT,
                _ => logits[i],
            };
        }
        let max = self.logp.iter().cloned().fold(f32::NEG_INFINITY, f32::max);
        let mut s = 0f32;
        for v in &self.logp {
            s += (v - max).exp();
        }
        let lse = max + s.ln();
        for i in 0..n {
            self.logp[i] -= lse;
            self.p[i] = self.logp[i].exp();
        }
    }

    /// Loads a row already normalised by [`Categorical::set_logits`] (its
    /// [`Categorical::log_probs`] and [`Categorical::probs`]) without computing it again.
    pub fn set_normalized(&mut self, logp: &[f32], p: &[f32]) {
        self.logp.clear();
        self.logp.extend_from_slice(logp);
        self.p.clear();
        self.p.extend_from_slice(p);
    }
    /// Normalised log-probabilities.
    pub fn log_probs(&self) -> &[f32] {
        &self.logp
    }
    /// Probabilities.
    pub fn probs(&self) -> &[f32] {
        &self.p
    }
    /// `log p(a)`.
    pub fn log_prob(&self, a: usize) -> f32 {
        self.logp[a]
    }
    /// Entropy `-Σ p log p`.
    pub fn entropy(&self) -> f32 {
        -self.p.iter().zip(&self.logp).map(|(p, l)| p * l).sum::<f32>()
    }
    /// The most likely action (the first on ties).
    pub fn mode(&self) -> usize {
        let mut best = 0;
        for i in 1..self.p.len() {
            if self.logp[i] > self.logp[best] {
                best = i;
            }
        }
        best
    }
    /// Samples by inverting the CDF with one uniform draw.
    pub fn sample<R: Rng + ?Sized>(&self, rng: &mut R) -> usize {
        let u: f32 = rng.random();
        let mut c = 0f32;
        let mut last = 0;
        for (i, &p) in self.p.iter().enumerate() {
            if p > 0.0 {
                last = i;
            }
            c += p;
            if u < c {
                return i;
            }
        }
        last
    }
    /// `KL(self || other)`.
    pub fn kl(&self, other: &Categorical) -> f32 {
        self.p
            .iter()
            .zip(self.logp.iter().zip(&other.logp))
            .map(|(p, (a, b))| if *p > 0.0 { p * (a - b) } else { 0.0 })
            .sum()
    }
    /// Adds `scale · ∂ log p(a) / ∂ logits` to `grad` (`= scale · (onehot(a) − p)`).
    pub fn add_log_prob_grad(&self, a: usize, scale: f32, grad: &mut [f32]) {
        for (i, g) in grad.iter_mut().enumerate() {
            let oh = if i == a { 1.0 } else { 0.0 };
            *g += scale * (oh - self.p[i]);
        }
    }
    /// Adds `scale · ∂H / ∂logits` to `grad` (`= −scale · p_i (log p_i + H)`).
    pub fn add_entropy_grad(&self, scale: f32, grad: &mut [f32]) {
        let h = self.entropy();
        for (i, g) in grad.iter_mut().enumerate() {
            *g -= scale * self.p[i] * (self.logp[i] + h);
        }
    }
}

/// `0.5 · ln(2π)`.
pub const HALF_LN_2PI: f32 = 0.918_938_5;

/// A diagonal Gaussian with a state-independent log standard deviation (CleanRL's continuous
/// PPO). Log-probability and entropy are summed over the action dimensions.
///
/// ```
/// use taper_tensor::distributions::DiagGaussian;
/// let g = DiagGaussian::new(vec![0.0, 0.0]);
/// let lp = g.log_prob(&[0.0, 0.0], &[0.0, 0.0]);
/// assert!((lp + 2.0 * 0.9189385).abs() < 1e-6);
/// ```
#[derive(Debug, Clone, PartialEq)]
pub struct DiagGaussian {
    log_std: Vec<f32>,
}

impl DiagGaussian {
    /// A Gaussian family with the given per-dimension log-std.
    pub fn new(log_std: Vec<f32>) -> Self {
        DiagGaussian { log_std }
    }
    /// The log-std.
    pub fn log_std(&self) -> &[f32] {
        &self.log_std
    }
    /// Sets the log-std.
    pub fn set_log_std(&mut self, v: &[f32]) {
        self.log_std.copy_from_slice(v);
    }
    /// `Σ_d log N(x_d; μ_d, σ_d)`.
    pub fn log_prob(&self, mean: &[f32], x: &[f32]) -> f32 {
        let mut s = 0f32;
        for d in 0..mean.len() {
            let ls = self.log_std[d];
            let z = (x[d] - mean[d]) * (-ls).exp();
            s += -0.5 * z * z - ls - HALF_LN_2PI;
        }
        s
    }
    /// `Σ_d (0.5 + 0.5 ln 2π + log σ_d)`.
    pub fn entropy(&self) -> f32 {
        self.log_std.iter().map(|ls| 0.5 + HALF_LN_2PI + ls).sum()
    }
    /// Writes `μ + σ·z` into `out`.
    pub fn sample<R: Rng + ?Sized>(&self, mean: &[f32], rng: &mut R, out: &mut [f32]) {
        for d in 0..mean.len() {
            let z: f64 = StandardNormal.sample(rng);
            out[d] = mean[d] + self.log_std[d].exp() * z as f32;
        }
    }
    /// Adds `scale · ∂ log p(x) / ∂μ` to `gmean` and `scale · ∂ log p(x) / ∂ log σ` to `glogstd`.
    pub fn add_log_prob_grad(&self, mean: &[f32], x: &[f32], scale: f32, gmean: &mut [f32], glogstd: &mut [f32]) {
        for d in 0..mean.len() {
            let inv_var = (-2.0 * self.log_std[d]).exp();
            let diff = x[d] - mean[d];
            gmean[d] += scale * diff * inv_var;
            glogstd[d] += scale * (diff * diff * inv_var - 1.0);
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::rng::{stream, Purpose};

    #[test]
    fn categorical_sampling_frequencies() {
        let mut c = Categorical::new(3);
        c.set_logits(&[0.0, (2.0f32).ln(), f32::ln(7.0)], None);
        let mut rng = stream(5, Purpose::Action, 0);
        let mut counts = [0usize; 3];
        for _ in 0..100_000 {
            counts[c.sample(&mut rng)] += 1;
        }
        for (k, want) in [0.1, 0.2, 0.7].iter().enumerate() {
            assert!((counts[k] as f64 / 1e5 - want).abs() < 0.01);
        }
    }

    #[test]
    fn categorical_mask_and_entropy() {
        let mut c = Categorical::new(4);
        c.set_logits(&[1.0, 1.0, 1.0, 1.0], Some(&[true, false, true, false]));
        assert!((c.probs()[1]).abs() < 1e-12 && (c.probs()[0] - 0.5).abs() < 1e-6);
        assert!((c.entropy() - 2f32.ln()).abs() < 1e-6);
        let mut rng = stream(1, Purpose::Action, 0);
        for _ in 0..1000 {
            let a = c.sample(&mut rng);
            assert!(a == 0 || a == 2);
        }
    }

    #[test]
    fn categorical_grads_match_finite_differences() {
        let logits = [0.3f32, -0.7, 1.2, 0.1];
        let mut c = Categorical::new(4);
        c.set_logits(&logits, None);
        let mut g = vec![0f32; 4];
        c.add_log_prob_grad(2, 1.0, &mut g);
        let mut ge = vec![0f32; 4];
        c.add_entropy_grad(1.0, &mut ge);
        let eps = 1e-3f32;
        for i in 0..4 {
            let mut lp = logits;
            lp[i] += eps;
            let mut lm = logits;
            lm[i] -= eps;
            let (mut a, mut b) = (Categorical::new(4), Categorical::new(4));
            a.set_logits(&lp, None);
            b.set_logits(&lm, None);
            let fd = (a.log_prob(2) - b.log_prob(2)) / (2.0 * eps);
            assert!((fd - g[i]).abs() < 1e-3);
            let fde = (a.entropy() - b.entropy()) / (2.0 * eps);
            assert!((fde - ge[i]).abs() < 1e-3);
        }
        // KL with itself is zero and positive otherwise.
        let mut d = Categorical::new(4);
        d.set_logits(&[0.0, 0.0, 0.0, 0.0], None);
        assert!(c.kl(&c).abs() < 1e-7 && c.kl(&d) > 0.0);
    }

    #[test]
    fn gaussian_log_prob_entropy_grads() {
        let g = DiagGaussian::new(vec![0.5, -0.3]);
        let mean = [0.2f32, -1.0];
        let x = [1.0f32, -0.5];
        // Closed form of N(1.0; 0.2, e^0.5) + N(-0.5; -1, e^-0.3).
        let want: f64 = [(1.0f64, 0.2f64, 0.5f64), (-0.5, -1.0, -0.3)]
            .iter()
            .map(|&(x, m, ls)| {
                let s = f64::exp(ls);
                -0.5 * ((x - m) / s).powi(2) - ls - 0.5 * (2.0 * std::f64::consts::PI).ln()
            })
            .sum();
        assert!((g.log_prob(&mean, &x) as f64 - want).abs() < 1e-5);
        let want_h: f64 = [0.5f64, -0.3]
            .iter()
            .map(|ls| 0.5 + 0.5 * (2.0 * std::f64::consts::PI).ln() + ls)
            .sum();
        assert!((g.entropy() as f64 - want_h).abs() < 1e-5);
        let (mut gm, mut gs) = (vec![0f32; 2], vec![0f32; 2]);
        g.add_log_prob_grad(&mean, &x, 1.0, &mut gm, &mut gs);
        let eps = 1e-3;
        for d in 0..2 {
            let mut mp = mean;
            mp[d] += eps;
            let mut mm = mean;
            mm[d] -= eps;
            let fd = (g.log_prob(&mp, &x) - g.log_prob(&mm, &x)) / (2.0 * eps);
            assert!((fd - gm[d]).abs() < 1e-2);
            let mut lsp = g.clone();
            let mut v = g.log_std().to_vec();
            v[d] += eps;
            lsp.set_log_std(&v);
            let mut lsm = g.clone();
            v[d] -= 2.0 * eps;
            lsm.set_log_std(&v);
            let fd = (lsp.log_prob(&mean, &x) - lsm.log_prob(&mean, &x)) / (2.0 * eps);
            assert!((fd - gs[d]).abs() < 1e-2);
        }
    }
}
