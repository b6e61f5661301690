//! [`TwinQ`]: clipped double Q (Fujimoto et al. 2018, as SAC uses it): two independently
//! initialised critics, read through their minimum, and the soft TD target built on it
//! ([`soft_td_target`]).

use crate::error::{check_len, Result};
use crate::q::MlpQ;
use crate::traits::QCritic;
use serde::{Deserialize, Serialize};

/// Two action-value critics read as `min(Q₁, Q₂)`: the smaller estimate counters the upward
/// bias a maximising actor puts on one critic.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct TwinQ {
    /// The first critic.
    pub q1: MlpQ,
    /// The second critic.
    pub q2: MlpQ,
}

impl TwinQ {
    /// Two critics of the same shape. An error if their observation or action widths differ.
    pub fn new(q1: MlpQ, q2: MlpQ) -> Result<Self> {
        if q1.obs_dim() != q2.obs_dim() || q1.action_dim() != q2.action_dim() {
            return Err(crate::CriticError::Invalid {
                name: "q2",
                reason: format!(
                    "the twins read different inputs: ({}, {}) and ({}, {})",
                    q1.obs_dim(),
                    q1.action_dim(),
                    q2.obs_dim(),
                    q2.action_dim()
                ),
            });
        }
        Ok(TwinQ { q1, q2 })
    }

    /// Both critics' values of `n` rows, into `out1` and `out2` `[n]`.
    pub fn both(&self, obs: &[f32], actions: &[f32], n: usize, out1: &mut [f32], out2: &mut [f32]) -> Result<()> {
        self.q1.q_values(obs, actions, n, out1)?;
        self.q2.q_values(obs, actions, n, out2)
    }
}

impl QCritic for TwinQ {
    fn obs_dim(&self) -> usize {
        self.q1.obs_dim()
    }
    fn action_dim(&self) -> usize {
        self.q1.action_dim()
    }
    /// `min(Q₁, Q₂)` of each row.
    fn q_values(&self, obs: &[f32], actions: &[f32], n: usize, out: &mut [f32]) -> Result<()> {
        check_len("values", n, out.len())?;
        let mut other = vec![0f32; n];
        self.both(obs, actions, n, out, &mut other)?;
        for (a, b) in out.iter_mut().zip(&other) {
            *a = a.min(*b);
        }
        Ok(())
    }
    /// The action gradient of the minimum: each row's from the critic with the smaller value
    /// (the first on a tie).
    fn action_gradient(&self, obs: &[f32], actions: &[f32], n: usize, out: &mut [f32]) -> Result<()> {
        let w = self.action_dim();
        check_len("action gradient", n * w, out.len())?;
        let (mut v1, mut v2) = (vec![0f32; n], vec![0f32; n]);
        self.both(obs, actions, n, &mut v1, &mut v2)?;
        let mut g2 = vec![0f32; n * w];
        self.q1.action_gradient(obs, actions, n, out)?;
        self.q2.action_gradient(obs, actions, n, &mut g2)?;
        for r in 0..n {
            if v2[r] < v1[r] {
                out[r * w..(r + 1) * w].copy_from_slice(&g2[r * w..(r + 1) * w]);
            }
        }
        Ok(())
    }
}

/// SAC's soft TD target with clipped double Q: `r + γ(1 − d)·(min(Q̄₁, Q̄₂) − α·log π(a'|s'))`,
/// from the target critics at the next state and a sampled next action.
pub fn soft_td_target(
    reward: f32,
    gamma: f32,
    done: bool,
    q1_next: f32,
    q2_next: f32,
    alpha: f32,
    logp_next: f32,
) -> f32 {
    let cont = if done { 0.0 } else { gamma };
    reward + cont * (q1_next.min(q2_next) - alpha * logp_next)
}

#[cfg(test)]
mod tests {
    use super::*;
    use taper_tensor::mlp::{Activation, MlpInit};
    use taper_tensor::rng::{stream, Purpose};

    fn twin() -> TwinQ {
        let mk = |k| {
            MlpQ::new(
                3,
                2,
                &[16, 16],
                Activation::Tanh,
                MlpInit::TorchDefault,
                &mut stream(7, Purpose::Init, k),
            )
            .unwrap()
        };
        TwinQ::new(mk(0), mk(1)).unwrap()
    }

    /// The twin reads the minimum, and its action gradient is the minimum's (central
    /// differences, away from rows where the two critics cross).
    #[test]
    fn min_and_its_action_gradient() {
        let t = twin();
        let n = 6;
        let obs: Vec<f32> = (0..n * 3).map(|i| ((i * 13 % 7) as f32 - 3.0) * 0.4).collect();
        let act: Vec<f32> = (0..n * 2).map(|i| ((i * 5 % 9) as f32 - 4.0) * 0.2).collect();
        let (mut v, mut v1, mut v2) = (vec![0f32; n], vec![0f32; n], vec![0f32; n]);
        t.q_values(&obs, &act, n, &mut v).unwrap();
        t.both(&obs, &act, n, &mut v1, &mut v2).unwrap();
        for r in 0..n {
            assert_eq!(v[r], v1[r].min(v2[r]));
        }
        assert!(
            (0..n).any(|r| v1[r] < v2[r]) && (0..n).any(|r| v2[r] < v1[r]),
            "both critics chosen somewhere"
        );
        let mut g = vec![0f32; n * 2];
        t.action_gradient(&obs, &act, n, &mut g).unwrap();
        let h = 1e-3f32;
        for r in 0..n {
            if (v1[r] - v2[r]).abs() < 1e-2 {
                continue;
            }
            for k in 0..2 {
                let (mut ap, mut am) = (act.clone(), act.clone());
                ap[r * 2 + k] += h;
                am[r * 2 + k] -= h;
                let (mut fp, mut fm) = (vec![0f32; n], vec![0f32; n]);
                t.q_values(&obs, &ap, n, &mut fp).unwrap();
                t.q_values(&obs, &am, n, &mut fm).unwrap();
                let fd = (fp[r] - fm[r]) / (2.0 * h);
                assert!(
                    (fd - g[r * 2 + k]).abs() < 2e-3,
                    "row {r} action {k}: {fd} vs {}",
                    g[r * 2 + k]
                );
            }
        }
    }

    #[test]
    fn soft_target_hand_computed() {
        // 1 + 0.99·(min(4, 3) − 0.2·(−1)) = 1 + 0.99·3.2 = 4.168
        assert!((soft_td_target(1.0, 0.99, false, 4.0, 3.0, 0.2, -1.0) - 4.168).abs() < 1e-5);
        assert_eq!(soft_td_target(1.0, 0.99, true, 4.0, 3.0, 0.2, -1.0), 1.0);
    }

    #[test]
    fn mismatched_twins_are_an_error() {
        let a = MlpQ::new(
            3,
            2,
            &[8],
            Activation::Tanh,
            MlpInit::TorchDefault,
            &mut stream(1, Purpose::Init, 0),
        )
        .unwrap();
        let b = MlpQ::new(
            3,
            1,
            &[8],
            Activation::Tanh,
            MlpInit::TorchDefault,
            &mut stream(1, Purpose::Init, 1),
        )
        .unwrap();
        assert!(TwinQ::new(a, b).is_err());
    }
}
