//! Stage 1 of Patient-0 attribution: each agent's Taylor remainder of its action-commitment
//! cost, smoothed, against a calibration band.
//!
//! The cost is the negative log-probability of the greedy action, `J_i = −log π_i(a*|o_i)`.
//! Its first-order Taylor expansion under a small observation step `η` misses by
//!
//! ```text
//! T_i = | log π_i(a*|o_i + η) − (log π_i(a*|o_i) + gᵀη) |,   g = ∇_o log π_i(a*|o_i),
//! η = ε · sign(g) / max(‖g‖₂, 1e-6)      (ε = 0.01)
//! ```
//!
//! a probe of the policy's curvature at the agent's observation (`≈ ½ ηᵀ∇²J η`). An agent
//! whose observations were pushed somewhere unusual shows an unusual remainder. The greedy
//! action `a*` is held at the unperturbed observation (the paper's `τ` fixed; the authors' code
//! recomputes it at `o + η`, which differs only when the greedy action flips inside the step).
//! `T` is smoothed over a trailing window of 5 steps ([`Smoother`]) and compared, step by step,
//! with the mean and spread of the same statistic over reference episodes ([`Band`]): agent
//! `i` is flagged at step `t` when `|S − μ| > K_σ·σ` and `S` is not within `1e-5` of `μ`
//! ([`Band::flags`]), the rule of the authors' MADDPG code.

use crate::error::{check_len, DiagnosticsError, Result};
use serde::{Deserialize, Serialize};
use taper_critics::Actor;

/// The remainder of one observation and the greedy action it was taken for.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct Remainder {
    /// The greedy action `a*`.
    pub action: usize,
    /// `T`, the remainder.
    pub value: f64,
}

/// The log-softmax entry `a` of `logits`, in f64.
fn log_softmax_at(logits: &[f32], a: usize) -> f64 {
    let max = logits.iter().fold(f32::NEG_INFINITY, |m, &x| m.max(x)) as f64;
    let lse = logits.iter().map(|&x| (x as f64 - max).exp()).sum::<f64>().ln() + max;
    logits[a] as f64 - lse
}

/// The index of the largest logit (the first on a tie).
pub fn argmax(logits: &[f32]) -> usize {
    let mut best = 0;
    for (k, &v) in logits.iter().enumerate() {
        if v > logits[best] {
            best = k;
        }
    }
    best
}

/// The index of the smallest logit (the first on a tie): the least-preferred action.
pub fn argmin(logits: &[f32]) -> usize {
    let mut best = 0;
    for (k, &v) in logits.iter().enumerate() {
        if v < logits[best] {
            best = k;
        }
    }
    best
}

/// `T` of one observation `obs` `[obs_dim]` of a softmax policy whose logits are the actor's
/// (see the module doc), with step size `eps`.
pub fn taylor_remainder(actor: &dyn Actor, obs: &[f32], eps: f32) -> Result<Remainder> {
    let (od, k) = (actor.obs_dim(), actor.logits_dim());
    check_len("observation", od, obs.len())?;
    if !(eps > 0.0 && eps.is_finite()) {
        return Err(DiagnosticsError::Invalid {
            name: "eps",
            reason: format!("must be a positive step, got {eps}"),
        });
    }
    let mut logits = vec![0f32; k];
    actor.logits(obs, 1, &mut logits)?;
    let a = argmax(&logits);
    let logp = log_softmax_at(&logits, a);
    // ∂ log π(a|o)/∂logits = e_a − softmax.
    let max = logits[a];
    let z: f32 = logits.iter().map(|&x| (x - max).exp()).sum();
    let dlogits: Vec<f32> = logits
        .iter()
        .enumerate()
        .map(|(j, &x)| f32::from(j == a) - (x - max).exp() / z)
        .collect();
    let mut g = vec![0f32; od];
    actor.obs_gradient(obs, 1, &dlogits, &mut g)?;
    let value = first_order_miss(
        |moved| {
            actor.logits(moved, 1, &mut logits)?;
            Ok(log_softmax_at(&logits, a))
        },
        obs,
        logp,
        &g,
        eps,
    )?;
    Ok(Remainder { action: a, value })
}

/// How far a scalar function `f` with value `f0` and gradient `g` at `obs` misses its
/// first-order expansion under the step `η = ε·sign(g)/max(‖g‖, 1e-6)`:
/// `|f(obs + η) − f0 − gᵀη|` (for a quadratic `f`, exactly `½ηᵀ∇²f η`).
pub fn first_order_miss(
    mut f: impl FnMut(&[f32]) -> Result<f64>,
    obs: &[f32],
    f0: f64,
    g: &[f32],
    eps: f32,
) -> Result<f64> {
    check_len("gradient", obs.len(), g.len())?;
    let norm = (g.iter().map(|&x| (x as f64) * (x as f64)).sum::<f64>())
        .sqrt()
        .max(1e-6);
    let eta: Vec<f32> = g.iter().map(|&x| (eps as f64 * sign(x) / norm) as f32).collect();
    let moved: Vec<f32> = obs.iter().zip(&eta).map(|(o, e)| o + e).collect();
    let linear: f64 = g.iter().zip(&eta).map(|(&g, &e)| g as f64 * e as f64).sum();
    Ok((f(&moved)? - (f0 + linear)).abs())
}

/// PyTorch's `sign`: 0 at 0.
fn sign(x: f32) -> f64 {
    if x > 0.0 {
        1.0
    } else if x < 0.0 {
        -1.0
    } else {
        0.0
    }
}

/// A trailing mean over the last `window` values, the current one included (fewer at the
/// start).
#[derive(Debug, Clone)]
pub struct Smoother {
    window: usize,
    recent: std::collections::VecDeque<f64>,
}

impl Smoother {
    /// A smoother over `window ≥ 1` values.
    pub fn new(window: usize) -> Self {
        Smoother {
            window: window.max(1),
            recent: std::collections::VecDeque::new(),
        }
    }
    /// Adds `x` and returns the mean of the window.
    pub fn push(&mut self, x: f64) -> f64 {
        if self.recent.len() == self.window {
            self.recent.pop_front();
        }
        self.recent.push_back(x);
        self.recent.iter().sum::<f64>() / self.recent.len() as f64
    }
}

/// Per agent and step, the mean `μ` and population standard deviation `σ` of the smoothed
/// remainder over reference episodes, `[steps, agents]` row-major.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Band {
    /// Agents.
    pub agents: usize,
    /// Steps (the shortest reference episode's length).
    pub steps: usize,
    /// `μ` `[steps, agents]`.
    pub mean: Vec<f64>,
    /// `σ` `[steps, agents]`.
    pub std: Vec<f64>,
}

impl Band {
    /// The band of reference episodes, each a `[steps_m, agents]` series of smoothed
    /// remainders; steps past the shortest episode are dropped. Errors without an episode.
    pub fn of(episodes: &[Vec<f64>], agents: usize) -> Result<Self> {
        if episodes.is_empty() || agents == 0 {
            return Err(DiagnosticsError::Invalid {
                name: "references",
                reason: "a band needs at least one reference episode of at least one agent".into(),
            });
        }
        let steps = episodes.iter().map(|e| e.len() / agents).min().unwrap_or(0);
        let m = episodes.len() as f64;
        let mut mean = vec![0f64; steps * agents];
        let mut std = vec![0f64; steps * agents];
        for k in 0..steps * agents {
            let mu = episodes.iter().map(|e| e[k]).sum::<f64>() / m;
            let var = episodes.iter().map(|e| (e[k] - mu).powi(2)).sum::<f64>() / m;
            mean[k] = mu;
            std[k] = var.sqrt();
        }
        Ok(Band {
            agents,
            steps,
            mean,
            std,
        })
    }

    /// Whether agent `i`'s smoothed remainder `s` at step `t` leaves the band:
    /// `|s − μ| > K_σ·σ` and not `isclose(s, μ)` (`|s − μ| ≤ 1e-5 + 1e-5·|μ|`). Steps past
    /// the band are never flagged.
    pub fn flags(&self, t: usize, i: usize, s: f64, k_sigma: f64) -> bool {
        if t >= self.steps {
            return false;
        }
        let (mu, sd) = (self.mean[t * self.agents + i], self.std[t * self.agents + i]);
        let d = (s - mu).abs();
        d > k_sigma * sd && d > 1e-5 + 1e-5 * mu.abs()
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use taper_critics::Result as CResult;

    /// A softmax policy with logits `ℓ_k(o) = ½ oᵀ A_k o + b_kᵀ o`: its log-probabilities are
    /// smooth, and the gradient is analytic.
    struct Quadratic {
        a: Vec<[[f32; 2]; 2]>,
        b: Vec<[f32; 2]>,
    }

    impl Actor for Quadratic {
        fn obs_dim(&self) -> usize {
            2
        }
        fn logits_dim(&self) -> usize {
            self.a.len()
        }
        fn action_dim(&self) -> usize {
            1
        }
        fn logits(&self, obs: &[f32], n: usize, out: &mut [f32]) -> CResult<()> {
            let k = self.a.len();
            for r in 0..n {
                let o = &obs[2 * r..2 * r + 2];
                for j in 0..k {
                    let a = &self.a[j];
                    let quad: f32 = (0..2).map(|p| (0..2).map(|q| o[p] * a[p][q] * o[q]).sum::<f32>()).sum();
                    out[r * k + j] = 0.5 * quad + self.b[j][0] * o[0] + self.b[j][1] * o[1];
                }
            }
            Ok(())
        }
        fn sample(
            &self,
            _: &[f32],
            _: usize,
            _: &mut dyn rand::RngCore,
            _: bool,
            _: &mut [f32],
            _: &mut [f32],
        ) -> CResult<()> {
            unreachable!()
        }
        fn log_prob_entropy(&self, _: &[f32], _: &[f32], _: usize, _: &mut [f32], _: &mut [f32]) -> CResult<()> {
            unreachable!()
        }
        fn obs_gradient(&self, obs: &[f32], n: usize, dl: &[f32], dobs: &mut [f32]) -> CResult<()> {
            let k = self.a.len();
            for r in 0..n {
                let o = &obs[2 * r..2 * r + 2];
                for p in 0..2 {
                    dobs[2 * r + p] = (0..k)
                        .map(|j| {
                            dl[r * k + j] * (0..2).map(|q| self.a[j][p][q] * o[q]).sum::<f32>()
                                + dl[r * k + j] * self.b[j][p]
                        })
                        .sum();
                }
            }
            Ok(())
        }
    }

    /// With linear logits (`A = 0`) the log-probability is still curved through the
    /// log-sum-exp; with one action it is flat, so the remainder is exactly 0.
    #[test]
    fn one_action_has_no_remainder() {
        let p = Quadratic {
            a: vec![[[0.0; 2]; 2]],
            b: vec![[1.0, -2.0]],
        };
        let r = taylor_remainder(&p, &[0.3, 0.4], 0.01).unwrap();
        assert_eq!((r.action, r.value), (0, 0.0));
    }

    /// The remainder is the exact second-order miss of the log-probability: checked against
    /// the same quantity computed by hand in f64 (two actions, the second's logit 0, so
    /// `log π(a*) = ℓ − log(eˡ + 1)`), and it scales as ε².
    #[test]
    fn remainder_matches_the_second_order_term_and_scales_as_eps_squared() {
        let p = Quadratic {
            a: vec![[[2.0, 0.5], [0.5, -1.0]], [[0.0; 2]; 2]],
            b: vec![[0.7, 0.2], [0.0, 0.0]],
        };
        let o = [0.4f32, -0.3];
        let r1 = taylor_remainder(&p, &o, 0.01).unwrap();
        let r2 = taylor_remainder(&p, &o, 0.005).unwrap();
        // ε² scaling: halving ε quarters the remainder, up to the third-order terms (4% here,
        // where ‖η‖ = ε·√2/‖g‖ is about 0.05).
        let ratio = r1.value / r2.value;
        assert!((ratio - 4.0).abs() < 0.3, "{ratio}");
        // The exact remainder by hand: f(o) = log σ(ℓ(o)) with ℓ = ½oᵀAo + bᵀo, so
        // f(o + η) − f(o) − ∇f·η, evaluated in f64 with the same η.
        let l = |o: [f64; 2]| {
            let a = [[2.0, 0.5], [0.5, -1.0]];
            0.5 * (0..2)
                .map(|i| (0..2).map(|j| o[i] * a[i][j] * o[j]).sum::<f64>())
                .sum::<f64>()
                + 0.7 * o[0]
                + 0.2 * o[1]
        };
        let f = |o: [f64; 2]| {
            let x = l(o);
            x - (x.exp() + 1.0).ln()
        };
        let o64 = [0.4f64, -0.3];
        let h = 1e-6;
        let g = [
            (f([o64[0] + h, o64[1]]) - f([o64[0] - h, o64[1]])) / (2.0 * h),
            (f([o64[0], o64[1] + h]) - f([o64[0], o64[1] - h])) / (2.0 * h),
        ];
        let norm = (g[0] * g[0] + g[1] * g[1]).sqrt();
        let eta = [0.01 * g[0].signum() / norm, 0.01 * g[1].signum() / norm];
        let exact = (f([o64[0] + eta[0], o64[1] + eta[1]]) - f(o64) - g[0] * eta[0] - g[1] * eta[1]).abs();
        assert!(
            (r1.value - exact).abs() < 2e-3 * exact + 1e-7,
            "{} vs {exact}",
            r1.value
        );
        assert!(taylor_remainder(&p, &o[..1], 0.01).is_err());
        assert!(taylor_remainder(&p, &o, 0.0).is_err());
    }

    /// On a quadratic `f(o) = ½oᵀAo + bᵀo` the miss is known exactly: `½ηᵀAη`, with `η` the
    /// step the method takes.
    #[test]
    fn the_miss_of_a_quadratic_is_half_eta_a_eta() {
        let a = [[2.0f64, 0.5, 0.0], [0.5, -1.0, 0.3], [0.0, 0.3, 4.0]];
        let b = [0.7f64, -0.2, 0.1];
        let f = |o: &[f32]| -> f64 {
            (0..3)
                .map(|i| 0.5 * (0..3).map(|j| o[i] as f64 * a[i][j] * o[j] as f64).sum::<f64>() + b[i] * o[i] as f64)
                .sum()
        };
        let o = [0.4f32, -0.3, 0.25];
        let g: Vec<f32> = (0..3)
            .map(|i| ((0..3).map(|j| a[i][j] * o[j] as f64).sum::<f64>() + b[i]) as f32)
            .collect();
        for eps in [0.01f32, 0.1] {
            let miss = first_order_miss(|m| Ok(f(m)), &o, f(&o), &g, eps).unwrap();
            let norm = g.iter().map(|&x| (x as f64).powi(2)).sum::<f64>().sqrt();
            let eta: Vec<f64> = g
                .iter()
                .map(|&x| (eps as f64 * (x as f64).signum() / norm) as f32 as f64)
                .collect();
            let want = 0.5
                * (0..3)
                    .map(|i| (0..3).map(|j| eta[i] * a[i][j] * eta[j]).sum::<f64>())
                    .sum::<f64>();
            assert!(
                (miss - want.abs()).abs() < 1e-6 * (1.0 + want.abs()),
                "ε {eps}: {miss} vs {want}"
            );
        }
        assert!(first_order_miss(|m| Ok(f(m)), &o, 0.0, &g[..2], 0.01).is_err());
    }

    #[test]
    fn smoother_and_band() {
        let mut s = Smoother::new(3);
        assert_eq!(s.push(3.0), 3.0);
        assert_eq!(s.push(1.0), 2.0);
        assert_eq!(s.push(2.0), 2.0);
        assert_eq!(s.push(6.0), 3.0);
        // Two agents, two steps, two episodes.
        let band = Band::of(&[vec![1.0, 2.0, 3.0, 4.0], vec![3.0, 2.0, 5.0, 4.0]], 2).unwrap();
        assert_eq!(band.mean, vec![2.0, 2.0, 4.0, 4.0]);
        assert_eq!(band.std, vec![1.0, 0.0, 1.0, 0.0]);
        assert!(band.flags(0, 0, 4.5, 2.0) && !band.flags(0, 0, 3.5, 2.0));
        // σ = 0: any departure beyond the isclose tolerance flags, a rounding one does not.
        assert!(band.flags(0, 1, 2.001, 2.0) && !band.flags(0, 1, 2.000001, 2.0));
        assert!(!band.flags(5, 0, 100.0, 2.0));
        assert!(Band::of(&[], 2).is_err());
    }
}
