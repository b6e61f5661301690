//! The tanh-squashed Gaussian policy of SAC and its relatives (DSAC-T, STAC), one row at a
//! time on slices: a reparameterised sample `a = scale·tanh(μ + σε) + bias` with `ε ~ N(0, I)`,
//! its log-probability with the change-of-variables correction, and the derivatives of both
//! with respect to `μ` and `log σ` at fixed `ε`, which the actor's loss
//! `α·log π(a|s) − Q(s, a)` needs.
//!
//! As CleanRL's `sac_continuous_action.py`, the correction is `log(scale·(1 − tanh²u) + 1e-6)`
//! per dimension, and the log-std comes from the network's raw output through
//! `min + ½(max − min)(tanh(raw) + 1)` with `[min, max] = [−5, 2]` ([`LogStdMap`]).
//!
//! ```
//! use taper_tensor::squashed::{SquashedSample, TanhGaussian};
//! let pi = TanhGaussian::new(vec![2.0], vec![0.0]); // Pendulum's torque in [−2, 2]
//! let mut s = SquashedSample::new(1);
//! pi.sample_with(&[0.3], &[-0.5], &[0.1], &mut s);
//! assert!(s.action[0].abs() <= 2.0);
//! assert!(s.log_prob.is_finite());
//! ```

/// The correction's guard against `log 0` at a saturated tanh (CleanRL's 1e-6).
pub const SQUASH_EPS: f32 = 1e-6;

/// `−½·log(2π)`.
const HALF_LOG_2PI: f32 = 0.918_938_5;

/// How a raw network output becomes a log-std: `min + ½(max − min)(tanh(raw) + 1)`, which
/// keeps it in `[min, max]` with a gradient everywhere.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct LogStdMap {
    /// The lower bound.
    pub min: f32,
    /// The upper bound.
    pub max: f32,
}

impl LogStdMap {
    /// CleanRL's SAC bounds, `[−5, 2]`.
    pub fn cleanrl() -> Self {
        LogStdMap { min: -5.0, max: 2.0 }
    }
    /// The log-std of a raw output.
    pub fn apply(&self, raw: f32) -> f32 {
        self.min + 0.5 * (self.max - self.min) * (raw.tanh() + 1.0)
    }
    /// `d log σ / d raw`.
    pub fn grad(&self, raw: f32) -> f32 {
        let t = raw.tanh();
        0.5 * (self.max - self.min) * (1.0 - t * t)
    }
}

/// How an actor's raw output becomes a log-std, as each reference codes it.
#[derive(Debug, Clone, Copy, PartialEq, serde::Serialize, serde::Deserialize)]
#[serde(rename_all = "snake_case", tag = "kind")]
pub enum LogStdBound {
    /// Smoothly into `[min, max]` through tanh ([`LogStdMap`]; CleanRL's SAC, `[−5, 2]`).
    Tanh {
        /// The lower bound.
        min: f32,
        /// The upper bound.
        max: f32,
    },
    /// Clamped to `[min, max]`, no gradient outside (DSAC-T's code, `[−20, 0.5]`).
    Clamp {
        /// The lower bound.
        min: f32,
        /// The upper bound.
        max: f32,
    },
    /// The raw output gives the std itself, `σ = softplus(max(raw, min_raw))` (STAC's code,
    /// `min_raw = −5`), so `log σ = ln softplus(max(raw, min_raw))`.
    SoftplusStd {
        /// The raw value's lower clip.
        min_raw: f32,
    },
}

impl LogStdBound {
    /// CleanRL's SAC bound: tanh into `[−5, 2]`.
    pub fn cleanrl() -> Self {
        LogStdBound::Tanh { min: -5.0, max: 2.0 }
    }
    /// DSAC-T's bound: a clamp to `[−20, 0.5]`.
    pub fn dsac_t() -> Self {
        LogStdBound::Clamp { min: -20.0, max: 0.5 }
    }
    /// STAC's: `σ = softplus(max(raw, −5))`.
    pub fn stac() -> Self {
        LogStdBound::SoftplusStd { min_raw: -5.0 }
    }
    /// The log-std of a raw output.
    pub fn apply(&self, raw: f32) -> f32 {
        match *self {
            LogStdBound::Tanh { min, max } => LogStdMap { min, max }.apply(raw),
            LogStdBound::Clamp { min, max } => raw.clamp(min, max),
            LogStdBound::SoftplusStd { min_raw } => softplus(raw.max(min_raw)).ln(),
        }
    }
    /// `d log σ / d raw` (0 where the clamp binds).
    pub fn grad(&self, raw: f32) -> f32 {
        match *self {
            LogStdBound::Tanh { min, max } => LogStdMap { min, max }.grad(raw),
            LogStdBound::Clamp { min, max } => {
                if raw < min || raw > max {
                    0.0
                } else {
                    1.0
                }
            }
            LogStdBound::SoftplusStd { min_raw } => {
                if raw < min_raw {
                    0.0
                } else {
                    // d ln softplus(x) / dx = sigmoid(x) / softplus(x).
                    1.0 / ((1.0 + (-raw).exp()) * softplus(raw))
                }
            }
        }
    }
}

/// `ln(1 + eˣ)`, without overflow.
fn softplus(x: f32) -> f32 {
    if x > 20.0 {
        x
    } else {
        x.exp().ln_1p()
    }
}

/// A tanh-squashed diagonal Gaussian mapped onto a box: `a = scale·tanh(u) + bias`.
#[derive(Debug, Clone, PartialEq)]
pub struct TanhGaussian {
    scale: Vec<f32>,
    bias: Vec<f32>,
}

/// One row's sample, its log-probability and the derivatives at fixed noise.
#[derive(Debug, Clone, PartialEq)]
pub struct SquashedSample {
    /// The pre-squash value `u = μ + σε`.
    pub u: Vec<f32>,
    /// The action `scale·tanh(u) + bias`.
    pub action: Vec<f32>,
    /// `log π(a)`.
    pub log_prob: f32,
    /// `∂ log π / ∂μ`.
    pub dlogp_dmu: Vec<f32>,
    /// `∂ log π / ∂ log σ`.
    pub dlogp_dlogstd: Vec<f32>,
    /// `∂a / ∂μ` (diagonal).
    pub da_dmu: Vec<f32>,
    /// `∂a / ∂ log σ` (diagonal).
    pub da_dlogstd: Vec<f32>,
}

impl SquashedSample {
    /// Room for `d` action dimensions.
    pub fn new(d: usize) -> Self {
        SquashedSample {
            u: vec![0.0; d],
            action: vec![0.0; d],
            log_prob: 0.0,
            dlogp_dmu: vec![0.0; d],
            dlogp_dlogstd: vec![0.0; d],
            da_dmu: vec![0.0; d],
            da_dlogstd: vec![0.0; d],
        }
    }
}

impl TanhGaussian {
    /// A policy over a box with half-widths `scale` and centres `bias` (`(high − low)/2` and
    /// `(high + low)/2`). Panics if the lengths differ.
    pub fn new(scale: Vec<f32>, bias: Vec<f32>) -> Self {
        assert_eq!(scale.len(), bias.len(), "TanhGaussian: scale and bias lengths differ");
        TanhGaussian { scale, bias }
    }
    /// For the box `[low, high]`.
    pub fn for_box(low: &[f32], high: &[f32]) -> Self {
        let scale = low.iter().zip(high).map(|(l, h)| 0.5 * (h - l)).collect();
        let bias = low.iter().zip(high).map(|(l, h)| 0.5 * (h + l)).collect();
        Self::new(scale, bias)
    }
    /// Action dimensions.
    pub fn dim(&self) -> usize {
        self.scale.len()
    }
    /// The deterministic action `scale·tanh(μ) + bias`, into `out`.
    pub fn mode(&self, mu: &[f32], out: &mut [f32]) {
        for d in 0..self.dim() {
            out[d] = self.scale[d] * mu[d].tanh() + self.bias[d];
        }
    }
    /// The sample of noise `eps` for mean `mu` and log-std `log_std`, with its log-probability
    /// and derivatives, into `s`.
    pub fn sample_with(&self, mu: &[f32], log_std: &[f32], eps: &[f32], s: &mut SquashedSample) {
        let mut logp = 0f32;
        for d in 0..self.dim() {
            let sigma = log_std[d].exp();
            let u = mu[d] + sigma * eps[d];
            let t = u.tanh();
            let g = 1.0 - t * t;
            let k = self.scale[d];
            // log N(u; μ, σ) = −½ε² − log σ − ½ log 2π, then the squash's correction.
            let den = k * g + SQUASH_EPS;
            logp += -0.5 * eps[d] * eps[d] - log_std[d] - HALF_LOG_2PI - den.ln();
            // d/du of −log(k(1 − t²) + δ) = 2kt(1 − t²) / (k(1 − t²) + δ).
            let c = 2.0 * k * t * g / den;
            s.u[d] = u;
            s.action[d] = k * t + self.bias[d];
            s.dlogp_dmu[d] = c;
            s.dlogp_dlogstd[d] = -1.0 + c * sigma * eps[d];
            s.da_dmu[d] = k * g;
            s.da_dlogstd[d] = k * g * sigma * eps[d];
        }
        s.log_prob = logp;
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn logp_and_action(pi: &TanhGaussian, mu: &[f32], ls: &[f32], eps: &[f32]) -> (f64, Vec<f32>) {
        let mut s = SquashedSample::new(pi.dim());
        pi.sample_with(mu, ls, eps, &mut s);
        (s.log_prob as f64, s.action)
    }

    /// The derivatives against central differences at fixed noise, on a box that is not
    /// centred at 0.
    #[test]
    fn derivatives_match_finite_differences() {
        let pi = TanhGaussian::for_box(&[-2.0, 0.0, -1.0], &[2.0, 1.0, 3.0]);
        let mu = [0.3f32, -0.8, 1.2];
        let ls = [-0.5f32, 0.2, -1.5];
        let eps = [0.7f32, -1.1, 0.4];
        let mut s = SquashedSample::new(3);
        pi.sample_with(&mu, &ls, &eps, &mut s);
        let h = 1e-3f32;
        for d in 0..3 {
            let (mut mp, mut mm) = (mu, mu);
            mp[d] += h;
            mm[d] -= h;
            let (lp, ap) = logp_and_action(&pi, &mp, &ls, &eps);
            let (lm, am) = logp_and_action(&pi, &mm, &ls, &eps);
            let fd = (lp - lm) / (2.0 * h as f64);
            assert!(
                (fd - s.dlogp_dmu[d] as f64).abs() < 2e-3,
                "∂logπ/∂μ {d}: {fd} vs {}",
                s.dlogp_dmu[d]
            );
            let fda = (ap[d] - am[d]) / (2.0 * h);
            assert!((fda - s.da_dmu[d]).abs() < 2e-3, "∂a/∂μ {d}");
            let (mut lsp, mut lsm) = (ls, ls);
            lsp[d] += h;
            lsm[d] -= h;
            let (lp, ap) = logp_and_action(&pi, &mu, &lsp, &eps);
            let (lm, am) = logp_and_action(&pi, &mu, &lsm, &eps);
            let fd = (lp - lm) / (2.0 * h as f64);
            assert!(
                (fd - s.dlogp_dlogstd[d] as f64).abs() < 2e-3,
                "∂logπ/∂logσ {d}: {fd} vs {}",
                s.dlogp_dlogstd[d]
            );
            let fda = (ap[d] - am[d]) / (2.0 * h);
            assert!((fda - s.da_dlogstd[d]).abs() < 2e-3, "∂a/∂logσ {d}");
        }
        // The actions stay in the box.
        for (d, &a) in s.action.iter().enumerate() {
            let (lo, hi) = ([-2.0, 0.0, -1.0][d], [2.0, 1.0, 3.0][d]);
            assert!(a > lo && a < hi, "dimension {d}: {a}");
        }
    }

    /// The density integrates to 1 over the box (one dimension, a Riemann sum over the
    /// action), which checks the change-of-variables correction.
    #[test]
    fn density_integrates_to_one() {
        let pi = TanhGaussian::for_box(&[-2.0], &[2.0]);
        let (mu, ls) = (0.4f32, -0.3f32);
        let sigma = (ls as f64).exp();
        let n = 200_000;
        let mut total = 0f64;
        for i in 0..n {
            // Midpoints of the action grid on (−2, 2), mapped back to the noise.
            let a = -2.0 + 4.0 * (i as f64 + 0.5) / n as f64;
            let u = (a / 2.0).atanh();
            let eps = ((u - mu as f64) / sigma) as f32;
            let mut s = SquashedSample::new(1);
            pi.sample_with(&[mu], &[ls], &[eps], &mut s);
            total += (s.log_prob as f64).exp() * 4.0 / n as f64;
        }
        assert!((total - 1.0).abs() < 1e-3, "{total}");
    }

    #[test]
    fn log_std_bounds() {
        let c = LogStdBound::dsac_t();
        assert_eq!((c.apply(-30.0), c.apply(0.2), c.apply(3.0)), (-20.0, 0.2, 0.5));
        assert_eq!((c.grad(-30.0), c.grad(0.2), c.grad(3.0)), (0.0, 1.0, 0.0));
        let t = LogStdBound::cleanrl();
        assert_eq!(t.apply(0.4), LogStdMap::cleanrl().apply(0.4));
        assert_eq!(t.grad(0.4), LogStdMap::cleanrl().grad(0.4));
        let s = LogStdBound::stac();
        assert!((s.apply(0.0) - 2f32.ln().ln()).abs() < 1e-6);
        assert_eq!(s.apply(-9.0), s.apply(-5.0));
        assert_eq!(s.grad(-9.0), 0.0);
        let h = 1e-3;
        for (b, x) in [(s, 0.3f32), (t, 0.3), (c, 0.2)] {
            let fd = (b.apply(x + h) - b.apply(x - h)) / (2.0 * h);
            assert!((fd - b.grad(x)).abs() < 1e-3, "{b:?}");
        }
    }

    #[test]
    fn log_std_map_bounds_and_gradient() {
        let m = LogStdMap::cleanrl();
        assert!((m.apply(-50.0) + 5.0).abs() < 1e-5 && (m.apply(50.0) - 2.0).abs() < 1e-5);
        assert!((m.apply(0.0) + 1.5).abs() < 1e-6);
        let h = 1e-3;
        let fd = (m.apply(0.4 + h) - m.apply(0.4 - h)) / (2.0 * h);
        assert!((fd - m.grad(0.4)).abs() < 1e-3);
        let pi = TanhGaussian::for_box(&[-2.0], &[2.0]);
        let mut a = [0f32];
        pi.mode(&[0.5], &mut a);
        assert!((a[0] - 2.0 * 0.5f32.tanh()).abs() < 1e-7);
    }
}
