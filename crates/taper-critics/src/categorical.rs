//! Categorical value heads: a value is read as the expectation of a softmax over `bins` bins
//! of equal width on `[min, max]`, and learned by cross-entropy against a target distribution
//! built from a scalar target ("Stop Regressing", Farebrother et al. 2024):
//!
//! - **HL-Gauss**: the mass a Gaussian `N(y, σ²)` puts on each bin, renormalised to the
//!   support, `p_i = [Φ((z_i − y)/σ) − Φ((z_{i−1} − y)/σ)] / [Φ((z_m − y)/σ) − Φ((z_0 − y)/σ)]`
//!   with bin edges `z_0 < … < z_m` and `σ` a multiple of the bin width (0.75, the paper's
//!   recommendation);
//! - **two-hot**: the mass split linearly between the two bin centres around `y` (MuZero,
//!   DreamerV3), which recovers `y` exactly as the expectation.
//!
//! Targets outside `[min, max]` are clamped to it. [`Categorical::loss`] returns the mean
//! cross-entropy and its gradient with respect to the logits, `(softmax − p) / n`.

use crate::error::{check_len, Result};
use crate::CriticError;
use serde::{Deserialize, Serialize};

/// How a scalar target becomes a distribution over the bins.
#[derive(Debug, Clone, Copy, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum Encoding {
    /// A Gaussian of standard deviation `sigma_ratio` bin widths, integrated over each bin.
    HlGauss {
        /// σ in bin widths (0.75 in "Stop Regressing").
        sigma_ratio: f32,
    },
    /// The two bin centres around the target, weighted linearly.
    TwoHot,
}

/// A categorical value head's support and target encoding.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Categorical {
    min: f32,
    max: f32,
    bins: usize,
    encoding: Encoding,
}

impl Categorical {
    /// `bins` bins of equal width on `[min, max]`. Errors unless `bins ≥ 2`, `min < max`
    /// (both finite) and, for HL-Gauss, `sigma_ratio > 0`.
    pub fn new(min: f32, max: f32, bins: usize, encoding: Encoding) -> Result<Self> {
        if bins < 2 {
            return Err(CriticError::Invalid {
                name: "bins",
                reason: format!("a categorical value head needs at least 2 bins, got {bins}"),
            });
        }
        if !(min.is_finite() && max.is_finite() && min < max) {
            return Err(CriticError::Invalid {
                name: "support",
                reason: format!("needs finite min < max, got [{min}, {max}]"),
            });
        }
        if let Encoding::HlGauss { sigma_ratio } = encoding {
            if !(sigma_ratio > 0.0 && sigma_ratio.is_finite()) {
                return Err(CriticError::Invalid {
                    name: "sigma_ratio",
                    reason: format!("must be a positive number of bin widths, got {sigma_ratio}"),
                });
            }
        }
        Ok(Categorical {
            min,
            max,
            bins,
            encoding,
        })
    }

    /// HL-Gauss with σ = 0.75 bin widths, as "Stop Regressing" recommends.
    pub fn hl_gauss(min: f32, max: f32, bins: usize) -> Result<Self> {
        Self::new(min, max, bins, Encoding::HlGauss { sigma_ratio: 0.75 })
    }

    /// The number of bins (the width of the logits).
    pub fn bins(&self) -> usize {
        self.bins
    }
    /// The support's ends.
    pub fn range(&self) -> (f32, f32) {
        (self.min, self.max)
    }
    /// The target encoding.
    pub fn encoding(&self) -> Encoding {
        self.encoding
    }
    /// A bin's width.
    pub fn width(&self) -> f32 {
        (self.max - self.min) / self.bins as f32
    }
    /// Bin `i`'s centre.
    pub fn centre(&self, i: usize) -> f32 {
        self.min + (i as f32 + 0.5) * self.width()
    }

    /// The target distribution of the scalar `y` (clamped to the support), into `out` `[bins]`.
    pub fn encode(&self, y: f32, out: &mut [f32]) -> Result<()> {
        check_len("target distribution", self.bins, out.len())?;
        if !y.is_finite() {
            return Err(CriticError::Invalid {
                name: "target",
                reason: format!("must be finite, got {y}"),
            });
        }
        let y = y.clamp(self.min, self.max);
        let (m, w) = (self.bins, self.width() as f64);
        match self.encoding {
            Encoding::HlGauss { sigma_ratio } => {
                // In f64: the bins' masses are differences of nearby CDF values.
                let sigma = sigma_ratio as f64 * w;
                let cdf = |z: f64| 0.5 * (1.0 + libm::erf((z - y as f64) / (sigma * std::f64::consts::SQRT_2)));
                let edge = |i: usize| self.min as f64 + i as f64 * w;
                let total = cdf(edge(m)) - cdf(edge(0));
                let mut lo = cdf(edge(0));
                for (i, o) in out.iter_mut().enumerate() {
                    let hi = cdf(edge(i + 1));
                    *o = ((hi - lo) / total) as f32;
                    lo = hi;
                }
            }
            Encoding::TwoHot => {
                out.fill(0.0);
                // The position of y among the centres, in bin widths from the first.
                let x = ((y - self.min) as f64 / w - 0.5).clamp(0.0, (m - 1) as f64);
                let i = (x.floor() as usize).min(m - 2);
                let f = (x - i as f64) as f32;
                out[i] = 1.0 - f;
                out[i + 1] += f;
            }
        }
        Ok(())
    }

    /// The values of `n` rows of logits `[n, bins]`: each row's softmax-weighted mean of the
    /// bin centres, into `out` `[n]`.
    pub fn values(&self, logits: &[f32], n: usize, out: &mut [f32]) -> Result<()> {
        check_len("logits", n * self.bins, logits.len())?;
        check_len("values", n, out.len())?;
        let mut p = vec![0f32; self.bins];
        for (row, o) in logits.chunks_exact(self.bins).zip(out.iter_mut()) {
            softmax(row, &mut p);
            *o = p.iter().enumerate().map(|(i, &q)| q * self.centre(i)).sum();
        }
        Ok(())
    }

    /// The gradient of each row's value with respect to its logits, `∂V/∂z_i = p_i·(c_i − V)`,
    /// into `dz` `[n, bins]`.
    pub fn value_grads(&self, logits: &[f32], n: usize, dz: &mut [f32]) -> Result<()> {
        check_len("logits", n * self.bins, logits.len())?;
        check_len("value gradient", n * self.bins, dz.len())?;
        for (row, d) in logits.chunks_exact(self.bins).zip(dz.chunks_exact_mut(self.bins)) {
            softmax(row, d);
            let v: f32 = d.iter().enumerate().map(|(i, &q)| q * self.centre(i)).sum();
            for (i, q) in d.iter_mut().enumerate() {
                *q *= self.centre(i) - v;
            }
        }
        Ok(())
    }

    /// The mean cross-entropy of `n` rows of logits `[n, bins]` against the encodings of
    /// `targets` `[n]`; writes its gradient with respect to the logits into `dlogits`.
    pub fn loss(&self, logits: &[f32], targets: &[f32], n: usize, dlogits: &mut [f32]) -> Result<f32> {
        check_len("logits", n * self.bins, logits.len())?;
        check_len("targets", n, targets.len())?;
        check_len("logit gradient", n * self.bins, dlogits.len())?;
        if n == 0 {
            return Ok(0.0);
        }
        let m = self.bins;
        let (mut p, mut tgt) = (vec![0f32; m], vec![0f32; m]);
        let inv = 1.0 / n as f32;
        let mut total = 0f64;
        for r in 0..n {
            let row = &logits[r * m..(r + 1) * m];
            self.encode(targets[r], &mut tgt)?;
            softmax(row, &mut p);
            let max = row.iter().fold(f32::NEG_INFINITY, |a, &x| a.max(x));
            let lse = max + row.iter().map(|&x| (x - max).exp()).sum::<f32>().ln();
            let d = &mut dlogits[r * m..(r + 1) * m];
            for i in 0..m {
                total -= (tgt[i] * (row[i] - lse)) as f64;
                d[i] = (p[i] - tgt[i]) * inv;
            }
        }
        Ok((total / n as f64) as f32)
    }
}

/// The softmax of `x` into `p`.
fn softmax(x: &[f32], p: &mut [f32]) {
    let max = x.iter().fold(f32::NEG_INFINITY, |a, &v| a.max(v));
    let mut s = 0f32;
    for (q, &v) in p.iter_mut().zip(x) {
        *q = (v - max).exp();
        s += *q;
    }
    p.iter_mut().for_each(|q| *q /= s);
}

#[cfg(test)]
mod tests {
    use super::*;

    fn logit_of(p: &[f32]) -> Vec<f32> {
        p.iter().map(|&q| q.max(1e-30).ln()).collect()
    }

    /// HL-Gauss: each target's distribution sums to 1 and its mean is the target within a
    /// bin width (closer in the interior, where no mass is cut off); two-hot's mean is the
    /// target exactly.
    #[test]
    fn encodings_sum_to_one_and_recover_the_target() {
        let hl = Categorical::hl_gauss(-10.0, 10.0, 51).unwrap();
        let th = Categorical::new(-10.0, 10.0, 51, Encoding::TwoHot).unwrap();
        let w = hl.width();
        let mut p = vec![0f32; 51];
        for k in 0..=200 {
            let y = -10.0 + 0.1 * k as f32;
            for (c, tol) in [(&hl, w), (&th, 1e-4)] {
                c.encode(y, &mut p).unwrap();
                let sum: f32 = p.iter().sum();
                assert!((sum - 1.0).abs() < 1e-5, "y {y}: sums to {sum}");
                assert!(p.iter().all(|&q| q >= 0.0));
                let mut v = [0f32];
                c.values(&logit_of(&p), 1, &mut v).unwrap();
                // Two-hot recovers y between the outer centres; beyond them, the nearest centre.
                let want = y.clamp(c.centre(0), c.centre(50));
                let want = if c.encoding() == Encoding::TwoHot { want } else { y };
                assert!((v[0] - want).abs() <= tol, "y {y}: mean {} (tolerance {tol})", v[0]);
                if c.encoding() != Encoding::TwoHot && (-8.0..=8.0).contains(&y) {
                    assert!((v[0] - y).abs() < 1e-3, "interior y {y}: mean {}", v[0]);
                }
            }
        }
        // Targets outside the support are clamped.
        hl.encode(25.0, &mut p).unwrap();
        let mut q = vec![0f32; 51];
        hl.encode(10.0, &mut q).unwrap();
        assert_eq!(p, q);
    }

    /// A hand-computed HL-Gauss case: 4 bins on [0, 4] (width 1), σ = 1 bin, y = 2. The edges
    /// sit at −2, −1, 0, 1, 2 standard deviations, so Φ gives 0.02275, 0.15866, 0.5, 0.84134,
    /// 0.97725; the masses 0.13591, 0.34134, 0.34134, 0.13591 over 0.95450.
    #[test]
    fn hl_gauss_hand_computed() {
        let c = Categorical::new(0.0, 4.0, 4, Encoding::HlGauss { sigma_ratio: 1.0 }).unwrap();
        let mut p = [0f32; 4];
        c.encode(2.0, &mut p).unwrap();
        let want = [
            0.13591 / 0.95450,
            0.34134 / 0.95450,
            0.34134 / 0.95450,
            0.13591 / 0.95450,
        ];
        for (a, b) in p.iter().zip(want) {
            assert!((a - b).abs() < 1e-4, "{p:?}");
        }
        // Two-hot: y = 1.25 is three quarters of the way from centre 0.5 to centre 1.5, so
        // the weights are 0.25 and 0.75.
        let t = Categorical::new(0.0, 4.0, 4, Encoding::TwoHot).unwrap();
        t.encode(1.25, &mut p).unwrap();
        assert!((p[0] - 0.25).abs() < 1e-6 && (p[1] - 0.75).abs() < 1e-6 && p[2] == 0.0 && p[3] == 0.0);
    }

    /// The loss's gradient against central finite differences, for both encodings.
    #[test]
    fn loss_gradient_matches_finite_differences() {
        for enc in [Encoding::HlGauss { sigma_ratio: 0.75 }, Encoding::TwoHot] {
            let c = Categorical::new(-2.0, 3.0, 7, enc).unwrap();
            let logits: Vec<f32> = (0..21).map(|i| ((i * 37 % 11) as f32 - 5.0) * 0.3).collect();
            let targets = [-0.4f32, 2.2, 9.0];
            let mut d = vec![0f32; 21];
            c.loss(&logits, &targets, 3, &mut d).unwrap();
            let mut scratch = vec![0f32; 21];
            for i in 0..21 {
                let h = 1e-2;
                let (mut lp, mut lm) = (logits.clone(), logits.clone());
                lp[i] += h;
                lm[i] -= h;
                let fd = (c.loss(&lp, &targets, 3, &mut scratch).unwrap()
                    - c.loss(&lm, &targets, 3, &mut scratch).unwrap())
                    / (2.0 * h);
                assert!((fd - d[i]).abs() < 2e-4, "{enc:?} logit {i}: {fd} vs {}", d[i]);
            }
        }
    }

    #[test]
    fn bad_input_is_an_error() {
        assert!(Categorical::hl_gauss(1.0, 1.0, 51).is_err());
        assert!(Categorical::hl_gauss(0.0, f32::INFINITY, 51).is_err());
        assert!(Categorical::hl_gauss(0.0, 1.0, 1).is_err());
        assert!(Categorical::new(0.0, 1.0, 5, Encoding::HlGauss { sigma_ratio: 0.0 }).is_err());
        let c = Categorical::hl_gauss(0.0, 1.0, 5).unwrap();
        assert!(c.encode(f32::NAN, &mut [0.0; 5]).is_err());
        assert!(c.encode(0.5, &mut [0.0; 4]).is_err());
        assert!(c.loss(&[0.0; 10], &[0.0], 2, &mut [0.0; 10]).is_err());
    }
}
