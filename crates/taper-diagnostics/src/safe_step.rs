//! The softmax safe-step radius ("Ghosts of Softmax", arXiv 2602.08104).
//!
//! Move a softmax policy's parameters by `τ` along a unit direction `v`. To first order its
//! logits move as `z + τa`, with `a = J_z v` the directional derivatives. Every softmax
//! quantity (the log-probabilities, the ratio, the entropy, the KL) is analytic in `τ` until
//! the partition function `F(τ) = Σ_k e^{z_k + a_k τ}` has a zero. Those zeros are complex
//! (the "ghosts"), and none lies closer than `ρ_a = π / Δ_a`, where `Δ_a = max_k a_k − min_k a_k`
//! (the paper's Theorem 4.6). Over a batch of states, the radius is `π / max_x Δ_a(x)`. An
//! update `p` then has the normalised step `r = ‖p‖ / ρ_a`: below 1 its Taylor expansion
//! converges, above 1 there is no such guarantee.
//!
//! The directional derivatives come from a finite difference of the logits (the paper's
//! `estimate_rho_fd`): `a ≈ (z(θ + εv) − z(θ)) / ε`. That is exact for logits linear in the
//! parameters and `O(ε)` otherwise.

use crate::error::{check_len, Result};
use crate::DiagnosticsError;
use serde::{Deserialize, Serialize};

/// Below this spread a direction does not move the softmax, and the radius is infinite.
pub const MIN_SPREAD: f32 = 1e-12;

/// The spread `Δ_a = max_k a_k − min_k a_k` of each of the rows of `n`-wide logits, with
/// `a = (z1 − z0) / eps` (the logits before and after a step of `eps` along a unit
/// direction); `mask` (`[rows, n]`, true for an available action) leaves out the others, as
/// they carry no probability.
pub fn logit_spread(z0: &[f32], z1: &[f32], n: usize, eps: f32, mask: Option<&[bool]>) -> Result<Vec<f32>> {
    if n == 0 || !z0.len().is_multiple_of(n) {
        return Err(DiagnosticsError::Invalid {
            name: "logits",
            reason: format!("{} values are not rows of {n} actions", z0.len()),
        });
    }
    check_len("logits after the step", z0.len(), z1.len())?;
    if let Some(m) = mask {
        check_len("action mask", z0.len(), m.len())?;
    }
    if !(eps > 0.0 && eps.is_finite()) {
        return Err(DiagnosticsError::Invalid {
            name: "eps",
            reason: format!("must be a positive step, got {eps}"),
        });
    }
    let rows = z0.len() / n;
    let mut out = Vec::with_capacity(rows);
    for r in 0..rows {
        let (mut lo, mut hi) = (f32::INFINITY, f32::NEG_INFINITY);
        for k in 0..n {
            let i = r * n + k;
            if mask.is_some_and(|m| !m[i]) {
                continue;
            }
            let a = (z1[i] - z0[i]) / eps;
            lo = lo.min(a);
            hi = hi.max(a);
        }
        out.push(if hi >= lo { hi - lo } else { 0.0 });
    }
    Ok(out)
}

/// The batch radius `ρ_a = π / max Δ_a` (infinite when no row's spread exceeds
/// [`MIN_SPREAD`]).
pub fn radius(spread: &[f32]) -> f32 {
    let max = spread.iter().fold(0f32, |m, &d| m.max(d));
    if max <= MIN_SPREAD {
        f32::INFINITY
    } else {
        std::f32::consts::PI / max
    }
}

/// The exact radius of a two-action softmax (the paper's Theorem 4.3): with logit margin
/// `δ = z_1 − z_2` and spread `Δ = |a_1 − a_2|`, the nearest zero of `F` is at distance
/// `√(δ² + π²) / Δ`, at least `π / Δ`.
pub fn binary_radius(margin: f32, spread: f32) -> f32 {
    if spread <= MIN_SPREAD {
        f32::INFINITY
    } else {
        (margin * margin + std::f32::consts::PI * std::f32::consts::PI).sqrt() / spread
    }
}

/// An update's size against the radius along its own direction.
#[derive(Debug, Clone, Copy, PartialEq, Serialize, Deserialize)]
pub struct StepRadius {
    /// The radius `ρ_a` along the update's direction.
    pub rho: f32,
    /// The update's length `‖p‖`.
    pub step: f32,
    /// The normalised step `r = ‖p‖ / ρ_a` (0 for an infinite radius).
    pub r: f32,
}

impl StepRadius {
    /// The normalised step of an update of length `step` where the radius is `rho`.
    pub fn of(step: f32, rho: f32) -> Self {
        StepRadius {
            rho,
            step,
            r: if rho.is_finite() { step / rho } else { 0.0 },
        }
    }
}

/// The radius clip (the paper's Proposition 5.2 with a target): the factor
/// `min(1, r_target·ρ_a / ‖p‖)` that scales an update `p` so that its normalised step is at
/// most `r_target`.
pub fn clip_factor(step: f32, rho: f32, r_target: f32) -> f32 {
    if step <= 0.0 || !rho.is_finite() {
        1.0
    } else {
        (r_target * rho / step).min(1.0)
    }
}

/// One measured step of a softmax model: from the rows' logits before it (`z0`) and at a
/// probe `eps` along its unit direction (`z1`), both `n` wide, over the rows marked in `rows`
/// (all when `None`), the radius and, for an update of length `step`, the scale that keeps its
/// normalised step at most `target` (1 without one) and the applied step's [`StepRadius`].
pub fn limit(
    z0: &[f32],
    z1: &[f32],
    n: usize,
    eps: f32,
    rows: Option<&[bool]>,
    step: f32,
    target: Option<f32>,
) -> Result<(f32, StepRadius)> {
    let mut spread = logit_spread(z0, z1, n, eps, None)?;
    if let Some(keep) = rows {
        check_len("rows kept", spread.len(), keep.len())?;
        spread = spread.iter().zip(keep).filter(|(_, &k)| k).map(|(&d, _)| d).collect();
    }
    let rho = radius(&spread);
    let s = target.map_or(1.0, |t| clip_factor(step, rho, t));
    Ok((s, StepRadius::of(s * step, rho)))
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::f64::consts::PI;

    /// `F(t) = Σ_k e^{z_k + a_k t}` at a complex `t`, as (re, im).
    fn partition(z: &[f64], a: &[f64], t: (f64, f64)) -> (f64, f64) {
        z.iter().zip(a).fold((0.0, 0.0), |(re, im), (&zk, &ak)| {
            let m = (zk + ak * t.0).exp();
            (re + m * (ak * t.1).cos(), im + m * (ak * t.1).sin())
        })
    }

    /// Two actions: `F` vanishes at the point the theorem names, whose distance is the
    /// binary radius, and the general bound `π/Δ` lies inside it.
    #[test]
    fn binary_ghost_sits_where_the_theorem_says() {
        for (delta, spread) in [(0.0f64, 2.0f64), (1.5, 0.7), (-3.0, 4.0)] {
            let (z, a) = ([delta, 0.0], [spread, 0.0]);
            // e^{δ + Δt} = −1 at t = (−δ + iπ)/Δ.
            let t = (-delta / spread, PI / spread);
            let f = partition(&z, &a, t);
            assert!(f.0.abs() < 1e-9 && f.1.abs() < 1e-9, "F = {f:?}");
            let dist = (t.0 * t.0 + t.1 * t.1).sqrt();
            let br = binary_radius(delta as f32, spread as f32) as f64;
            assert!((br - dist).abs() < 1e-5 * dist, "{br} vs {dist}");
            assert!(radius(&[spread as f32]) as f64 <= br + 1e-6);
        }
    }

    /// Several actions: no zero of `F` inside the disc of radius `π/Δ_a` (its real part,
    /// turned by the mean phase, stays positive on a grid covering the disc), and the spread
    /// from the finite difference of linear logits is exact.
    #[test]
    fn no_ghost_inside_the_radius() {
        let z = [0.3, -1.2, 2.0, 0.0, 0.7];
        let a = [1.1, -0.4, 0.25, 2.3, -1.6];
        let eps = 1e-2f32;
        let z0: Vec<f32> = z.iter().map(|&v| v as f32).collect();
        let z1: Vec<f32> = z.iter().zip(&a).map(|(&v, &d)| (v + eps as f64 * d) as f32).collect();
        let spread = logit_spread(&z0, &z1, 5, eps, None).unwrap();
        assert!((spread[0] - 3.9).abs() < 1e-3, "{spread:?}");
        let rho = PI / 3.9;
        let mid = (2.3 + -1.6) / 2.0;
        for i in 0..=60 {
            for j in 0..=60 {
                let t = (rho * (i as f64 / 30.0 - 1.0), rho * (j as f64 / 30.0 - 1.0) * 0.999);
                if t.0 * t.0 + t.1 * t.1 >= rho * rho {
                    continue;
                }
                // Every term's phase a_k·Im t lies within π/2 of mid·Im t, so turning by that
                // keeps each term's real part positive.
                let f = partition(&z, &a, t);
                let (c, s) = ((mid * t.1).cos(), (mid * t.1).sin());
                assert!(f.0 * c + f.1 * s > 0.0, "F vanishes near {t:?}");
            }
        }
    }

    #[test]
    fn masks_batches_and_the_clip() {
        // Row 0 spreads 3 over all actions but 1 over the two available; row 1 spreads 2.
        let z0 = [0.0f32, 0.0, 0.0, 0.0, 0.0, 0.0];
        let z1 = [0.1f32, 0.2, -0.1, 0.0, 0.2, 0.0];
        let mask = [true, true, false, true, true, true];
        let s = logit_spread(&z0, &z1, 3, 0.1, Some(&mask)).unwrap();
        assert!((s[0] - 1.0).abs() < 1e-5 && (s[1] - 2.0).abs() < 1e-5, "{s:?}");
        let rho = radius(&s);
        assert!((rho - std::f32::consts::PI / 2.0).abs() < 1e-5);
        assert_eq!(radius(&[0.0, 0.0]), f32::INFINITY);
        let r = StepRadius::of(0.5, rho);
        assert!((r.r - 0.5 / rho).abs() < 1e-6);
        assert!((clip_factor(2.0, 1.0, 0.5) - 0.25).abs() < 1e-7);
        assert_eq!(clip_factor(0.1, 1.0, 0.5), 1.0);
        assert_eq!(clip_factor(1.0, f32::INFINITY, 0.5), 1.0);
        assert!(logit_spread(&z0, &z1[..5], 3, 0.1, None).is_err());
        assert!(logit_spread(&z0, &z1, 4, 0.1, None).is_err());
        assert!(logit_spread(&z0, &z1, 3, 0.0, None).is_err());
        // The combined step: only row 1 kept (spread 2), a step of 2 against a target of 0.5.
        let (s, r) = limit(&z0, &z1, 3, 0.1, Some(&[false, true]), 2.0, Some(0.5)).unwrap();
        let rho1 = std::f32::consts::PI / 2.0;
        assert!((r.rho - rho1).abs() < 1e-5 && (s - 0.5 * rho1 / 2.0).abs() < 1e-5 && (r.r - 0.5).abs() < 1e-5);
        assert!(limit(&z0, &z1, 3, 0.1, Some(&[true]), 2.0, None).is_err());
    }
}
