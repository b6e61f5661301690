//! Stage 2 of Patient-0 attribution, step by step: how strongly each agent's action moves each
//! centralized critic, and whether that influence accelerates.
//!
//! For critic owner `i` (the influenced agent) and action source `j` (the influencer), at the
//! joint observation and the joint (one-hot) actions of a step:
//!
//! ```text
//! G_ij = ‖∇_{a_j} Q_i‖₂                                   first-order sensitivity
//! D_ij = gᵀ H g  with f = −Q_i, g = ∇_{a_j} f, H = ∇²_{a_j} f
//!      = −(∇_{a_j} Q_i)ᵀ (∇²_{a_j} Q_i) (∇_{a_j} Q_i)      directional curvature
//! ```
//!
//! `D_ij > 0`: moving `a_j` the way that lowers `Q_i` makes it drop faster. The curvature is
//! a central difference of action gradients along the unit direction `ĝ` ([`QCritic::
//! directional_curvature`]), scaled back by `‖g‖²`: candle's double backward is not usable,
//! and only the sign of `D` and comparisons of `G` are used downstream.

use crate::error::{check_len, DiagnosticsError, Result};
use serde::{Deserialize, Serialize};
use taper_critics::QCritic;

/// `G` and `D` of one step, `[agents, agents]` row-major: row = critic owner, column =
/// action source.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct PairInfluence {
    /// Agents.
    pub agents: usize,
    /// `G_ij`.
    pub g: Vec<f64>,
    /// `D_ij`.
    pub d: Vec<f64>,
}

impl PairInfluence {
    /// `G` of critic owner `i` and action source `j`.
    pub fn g(&self, i: usize, j: usize) -> f64 {
        self.g[i * self.agents + j]
    }
    /// `D` of critic owner `i` and action source `j`.
    pub fn d(&self, i: usize, j: usize) -> f64 {
        self.d[i * self.agents + j]
    }
}

/// `G` and `D` for every ordered pair at one step: `critics[i]` is agent `i`'s centralized
/// critic on the joint observation `obs` and joint actions `actions` (`agents` blocks of
/// `act_dim`), `h` the finite-difference step along each unit direction.
pub fn pair_influence(
    critics: &[&dyn QCritic],
    obs: &[f32],
    actions: &[f32],
    act_dim: usize,
    h: f32,
) -> Result<PairInfluence> {
    let n = critics.len();
    if n == 0 || act_dim == 0 {
        return Err(DiagnosticsError::Invalid {
            name: "critics",
            reason: "needs at least one critic and a non-empty action".into(),
        });
    }
    check_len("joint actions", n * act_dim, actions.len())?;
    let mut g = vec![0f64; n * n];
    let mut d = vec![0f64; n * n];
    let mut grad = vec![0f32; n * act_dim];
    let mut dir = vec![0f32; n * act_dim];
    let mut curv = [0f32; 1];
    for (i, q) in critics.iter().enumerate() {
        check_len("joint observation", q.obs_dim(), obs.len())?;
        check_len("critic action width", n * act_dim, q.action_dim())?;
        q.action_gradient(obs, actions, 1, &mut grad)?;
        for j in 0..n {
            let block = &grad[j * act_dim..(j + 1) * act_dim];
            let norm = block.iter().map(|&x| (x as f64) * (x as f64)).sum::<f64>().sqrt();
            g[i * n + j] = norm;
            if norm == 0.0 {
                continue;
            }
            dir.fill(0.0);
            for (k, &x) in block.iter().enumerate() {
                dir[j * act_dim + k] = (x as f64 / norm) as f32;
            }
            q.directional_curvature(obs, actions, &dir, 1, h, &mut curv)?;
            d[i * n + j] = -(norm * norm) * curv[0] as f64;
        }
    }
    Ok(PairInfluence { agents: n, g, d })
}

#[cfg(test)]
mod tests {
    use super::*;
    use taper_critics::Result as CResult;

    /// Two agents with two-wide actions: `Q_0 = −(cᵀa_1)² + s·a_0[0]` and
    /// `Q_1 = (cᵀa_0)³ / 3`. Closed forms: `∇_{a_1}Q_0 = −2(cᵀa_1)c`, `∇²_{a_1}Q_0 = −2ccᵀ`,
    /// so `D_01 = 8(cᵀa_1)²‖c‖⁴`, positive; `∇_{a_0}Q_1 = (cᵀa_0)²c`, `∇² = 2(cᵀa_0)ccᵀ`, so
    /// `D_10 = −2(cᵀa_0)⁵‖c‖⁴`.
    struct Toy {
        owner: usize,
        c: [f32; 2],
        s: f32,
    }

    impl QCritic for Toy {
        fn obs_dim(&self) -> usize {
            1
        }
        fn action_dim(&self) -> usize {
            4
        }
        fn q_values(&self, _: &[f32], a: &[f32], _: usize, out: &mut [f32]) -> CResult<()> {
            let (ca0, ca1) = (self.c[0] * a[0] + self.c[1] * a[1], self.c[0] * a[2] + self.c[1] * a[3]);
            out[0] = if self.owner == 0 {
                -ca1 * ca1 + self.s * a[0]
            } else {
                ca0.powi(3) / 3.0
            };
            Ok(())
        }
        fn action_gradient(&self, _: &[f32], a: &[f32], _: usize, out: &mut [f32]) -> CResult<()> {
            let (ca0, ca1) = (self.c[0] * a[0] + self.c[1] * a[1], self.c[0] * a[2] + self.c[1] * a[3]);
            out.fill(0.0);
            if self.owner == 0 {
                out[0] = self.s;
                out[2] = -2.0 * ca1 * self.c[0];
                out[3] = -2.0 * ca1 * self.c[1];
            } else {
                out[0] = ca0 * ca0 * self.c[0];
                out[1] = ca0 * ca0 * self.c[1];
            }
            Ok(())
        }
    }

    #[test]
    fn g_and_d_match_the_closed_forms() {
        let c = [0.6f32, -0.8];
        let q0 = Toy { owner: 0, c, s: 0.5 };
        let q1 = Toy { owner: 1, c, s: 0.0 };
        let a = [0.3f32, 0.9, -0.4, 0.2];
        let p = pair_influence(&[&q0, &q1], &[0.0], &a, 2, 1e-2).unwrap();
        let (ca0, ca1) = (0.6 * 0.3 - 0.8 * 0.9, 0.6 * -0.4 - 0.8 * 0.2f64);
        // ‖c‖ = 1.
        assert!((p.g(0, 1) - 2.0 * ca1.abs()).abs() < 1e-5);
        assert!(
            (p.d(0, 1) - 8.0 * ca1 * ca1).abs() < 1e-4,
            "{} vs {}",
            p.d(0, 1),
            8.0 * ca1 * ca1
        );
        assert!((p.g(1, 0) - ca0 * ca0).abs() < 1e-5);
        let want = -2.0 * ca0.powi(5);
        assert!(
            (p.d(1, 0) - want).abs() < 1e-3 * want.abs().max(1.0),
            "{} vs {want}",
            p.d(1, 0)
        );
        // Q_0 is linear in a_0 and Q_1 does not see a_1.
        assert!((p.g(0, 0) - 0.5).abs() < 1e-6 && p.d(0, 0).abs() < 1e-4);
        assert_eq!((p.g(1, 1), p.d(1, 1)), (0.0, 0.0));
        assert!(pair_influence(&[&q0, &q1], &[0.0], &a[..3], 2, 1e-2).is_err());
        assert!(pair_influence(&[&q0, &q1], &[0.0, 1.0], &a, 2, 1e-2).is_err());
    }
}
