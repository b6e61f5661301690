//! How far a critic's estimates sit above or below the returns they estimate
//! ([`value_bias`]): the measurement behind the overestimation claims of TD3, DSAC-T and STAC.
//!
//! The current stochastic policy (in evaluation mode: no dropout) runs `episodes` fresh episodes for `horizon` steps. At each of
//! the first `probe_len` states it visits, the critic's estimate of the action taken (the
//! value the actor climbs: `min(Q₁, Q₂)`, the smaller mean, or `μ − βσ`) is compared with the
//! soft Monte-Carlo return that followed, the quantity the soft Bellman target estimates:
//! `G_t = r_t + γ·(−α·log π(a_{t+1}|s_{t+1}) + G_{t+1})`, cut at termination or at the
//! horizon. The states are the ones the critic is trained on: those the policy visits from the
//! env's start distribution. A cut at the horizon drops at most `γ^(horizon − probe_len)` of the
//! tail's value, so the env must not truncate before `horizon` (an error names the step).

use super::actor::{ActorSamples, SquashedActor};
use super::critic::{CriticKind, CriticWs, Readout};
use super::net::Net;
use crate::error::{AlgoError, Result};
use serde::{Deserialize, Serialize};
use taper_envs::{Action, Env};
use taper_tensor::rng::{stream, Purpose};

/// A critic's bias on the states its policy visits.
#[derive(Debug, Clone, Copy, PartialEq, Serialize, Deserialize)]
pub struct ValueBias {
    /// The mean estimate over the probed states.
    pub q_estimate: f64,
    /// The mean soft Monte-Carlo return from them.
    pub mc_return: f64,
    /// The mean of estimate − return.
    pub bias: f64,
    /// The standard error of `bias` over episodes (each episode's mean is one sample).
    pub bias_se: f64,
    /// States probed.
    pub states: usize,
}

/// See the module doc. Episode k resets with `seed + k`; the actions come from
/// `stream(seed, Eval, 2)`.
#[allow(clippy::too_many_arguments)]
pub fn value_bias(
    actor: &SquashedActor,
    kind: CriticKind,
    critics: &[Net],
    readout: Readout<'_>,
    beta: f32,
    alpha: f32,
    gamma: f32,
    env: &mut dyn Env,
    episodes: usize,
    horizon: usize,
    probe_len: usize,
    seed: u64,
) -> Result<ValueBias> {
    if episodes == 0 || probe_len == 0 || probe_len > horizon {
        return Err(AlgoError::Config {
            field: "probe",
            reason: format!(
                "needs at least one episode and 1 ≤ probe_len ≤ horizon, got {episodes} episodes, probe_len {probe_len}, horizon {horizon}"
            ),
        });
    }
    let (od, ad) = (actor.obs_dim(), actor.action_dim());
    let mut rng = stream(seed, Purpose::Eval, 2);
    let mut s = ActorSamples::default();
    let mut ws = CriticWs::default();
    let mut obs = vec![0f32; od];
    let (mut est_sum, mut ret_sum, mut count) = (0f64, 0f64, 0usize);
    let mut per_episode = Vec::with_capacity(episodes);
    for k in 0..episodes {
        env.reset_into(Some(seed.wrapping_add(k as u64)), &mut obs)?;
        let (mut x, mut rew, mut logp) = (Vec::new(), Vec::new(), Vec::new());
        for t in 0..horizon {
            actor.sample(&obs, 1, &mut rng, None, &mut s)?;
            x.extend_from_slice(&obs);
            x.extend_from_slice(&s.actions);
            logp.push(s.logp[0]);
            let st = env.step_into(Action::Continuous(&s.actions), &mut obs)?;
            rew.push(st.reward);
            if st.terminated {
                break;
            }
            if st.truncated && t + 1 < horizon {
                return Err(AlgoError::Config {
                    field: "probe",
                    reason: format!(
                        "the env truncated its episode at step {} before the probe's horizon {horizon}; give it a longer time limit",
                        t + 1
                    ),
                });
            }
        }
        let len = rew.len();
        let mut g = vec![0f64; len];
        let mut next = 0f64;
        for t in (0..len).rev() {
            let bonus = if t + 1 < len {
                -(alpha * logp[t + 1]) as f64
            } else {
                0.0
            };
            next = rew[t] as f64
                + if t + 1 < len {
                    gamma as f64 * (bonus + next)
                } else {
                    0.0
                };
            g[t] = next;
        }
        let m = probe_len.min(len);
        let est = kind.estimates(critics, &x[..m * (od + ad)], m, beta, readout, &mut ws)?;
        let mut b = 0f64;
        for t in 0..m {
            est_sum += est[t] as f64;
            ret_sum += g[t];
            b += est[t] as f64 - g[t];
        }
        count += m;
        per_episode.push(b / m as f64);
    }
    let n = per_episode.len() as f64;
    let mean_b = per_episode.iter().sum::<f64>() / n;
    let se = if per_episode.len() > 1 {
        (per_episode.iter().map(|v| (v - mean_b).powi(2)).sum::<f64>() / (n - 1.0) / n).sqrt()
    } else {
        f64::NAN
    };
    Ok(ValueBias {
        q_estimate: est_sum / count as f64,
        mc_return: ret_sum / count as f64,
        bias: (est_sum - ret_sum) / count as f64,
        bias_se: se,
        states: count,
    })
}
