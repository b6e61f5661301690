//! The off-policy layer: a replay buffer of joint transitions for any number of agents and any
//! observation and action width ([`ReplayBuffer`]; one agent is the single-agent case), Polyak
//! averaging of target networks ([`polyak`]) and one-step TD targets ([`td_target`]). MADDPG
//! uses it; SAC and its distributional relatives plug in here.
//!
//! ```
//! use taper_algos::offpolicy::{td_target, ReplayBuffer};
//! // One agent, observations of 2 values, actions of 1.
//! let mut b = ReplayBuffer::new(3, 2, 1, 1)?;
//! for t in 0..5 {
//!     let x = t as f32;
//!     b.push(&[x, x], &[0.5], &[1.0], &[x + 1.0, x + 1.0], false)?;
//! }
//! assert_eq!(b.len(), 3); // the ring keeps the newest three
//! assert_eq!(b.obs(0), &[3.0, 3.0]);
//! assert_eq!(td_target(1.0, 0.9, false, 2.0), 1.0 + 0.9 * 2.0);
//! # Ok::<(), taper_algos::AlgoError>(())
//! ```

use crate::error::{AlgoError, Result};
use serde::{Deserialize, Serialize};
use std::collections::HashMap;
use taper_tensor::mlp::Mlp;
use taper_train::checkpoint::NamedTensors;

/// Joint transitions in a ring buffer: each row holds all agents' observations `[obs_w]`,
/// actions `[act_w]`, rewards `[agents]`, next observations `[obs_w]`, and a done flag.
#[derive(Debug, Clone)]
pub struct ReplayBuffer {
    cap: usize,
    len: usize,
    next: usize,
    obs_w: usize,
    act_w: usize,
    agents: usize,
    obs: Vec<f32>,
    acts: Vec<f32>,
    rews: Vec<f32>,
    next_obs: Vec<f32>,
    done: Vec<bool>,
}

/// Where a [`ReplayBuffer`] stands, for a checkpoint (its contents go in a tensor file).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
pub struct ReplayPosition {
    /// Transitions held.
    pub len: usize,
    /// Where the next one is written.
    pub next: usize,
}

impl ReplayBuffer {
    /// A buffer of `cap` joint transitions of `agents` agents, observations `obs_w` and actions
    /// `act_w` wide (all agents together). Allocated up front: `cap` is checked against the
    /// memory it asks for.
    pub fn new(cap: usize, obs_w: usize, act_w: usize, agents: usize) -> Result<Self> {
        let per = 2 * obs_w + act_w + agents;
        let bytes = (cap as u128) * (per as u128) * 4;
        if cap == 0 || agents == 0 || bytes > 64 * (1u128 << 30) {
            return Err(AlgoError::Config {
                field: "buffer_size",
                reason: format!(
                    "a replay buffer of {cap} transitions of {per} values ({bytes} bytes) is not allowed (1 to 64 GiB)"
                ),
            });
        }
        Ok(ReplayBuffer {
            cap,
            len: 0,
            next: 0,
            obs_w,
            act_w,
            agents,
            obs: vec![0.0; cap * obs_w],
            acts: vec![0.0; cap * act_w],
            rews: vec![0.0; cap * agents],
            next_obs: vec![0.0; cap * obs_w],
            done: vec![false; cap],
        })
    }
    /// Transitions held.
    pub fn len(&self) -> usize {
        self.len
    }
    /// Whether empty.
    pub fn is_empty(&self) -> bool {
        self.len == 0
    }
    /// The capacity.
    pub fn capacity(&self) -> usize {
        self.cap
    }
    /// Adds one joint transition, overwriting the oldest when full.
    pub fn push(&mut self, obs: &[f32], acts: &[f32], rews: &[f32], next_obs: &[f32], done: bool) -> Result<()> {
        let (i, w, aw, n) = (self.next, self.obs_w, self.act_w, self.agents);
        for (what, got, want) in [
            ("observations", obs.len(), w),
            ("next observations", next_obs.len(), w),
            ("actions", acts.len(), aw),
            ("rewards", rews.len(), n),
        ] {
            if got != want {
                return Err(AlgoError::Config {
                    field: "replay",
                    reason: format!("{what}: expected {want} values, got {got}"),
                });
            }
        }
        self.obs[i * w..(i + 1) * w].copy_from_slice(obs);
        self.next_obs[i * w..(i + 1) * w].copy_from_slice(next_obs);
        self.acts[i * aw..(i + 1) * aw].copy_from_slice(acts);
        self.rews[i * n..(i + 1) * n].copy_from_slice(rews);
        self.done[i] = done;
        self.next = (self.next + 1) % self.cap;
        self.len = (self.len + 1).min(self.cap);
        Ok(())
    }
    /// Transition `t`'s observations (all agents).
    pub fn obs(&self, t: usize) -> &[f32] {
        &self.obs[t * self.obs_w..(t + 1) * self.obs_w]
    }
    /// Transition `t`'s next observations.
    pub fn next_obs(&self, t: usize) -> &[f32] {
        &self.next_obs[t * self.obs_w..(t + 1) * self.obs_w]
    }
    /// Transition `t`'s actions (all agents).
    pub fn actions(&self, t: usize) -> &[f32] {
        &self.acts[t * self.act_w..(t + 1) * self.act_w]
    }
    /// Transition `t`'s reward of agent `agent`.
    pub fn reward(&self, t: usize, agent: usize) -> f32 {
        self.rews[t * self.agents + agent]
    }
    /// Whether transition `t` ended in a terminal state.
    pub fn done(&self, t: usize) -> bool {
        self.done[t]
    }
    /// Where the buffer stands.
    pub fn position(&self) -> ReplayPosition {
        ReplayPosition {
            len: self.len,
            next: self.next,
        }
    }

    /// The filled part as named tensors (`replay.obs`, `replay.acts`, `replay.rews`,
    /// `replay.next_obs`, `replay.done`), for a checkpoint's own file.
    pub fn to_tensors(&self) -> Result<NamedTensors> {
        let len = self.len;
        let dev = candle_core::Device::Cpu;
        let mk = |v: &[f32], w: usize| candle_core::Tensor::from_slice(&v[..len * w], (len, w), &dev);
        let done: Vec<f32> = self.done[..len].iter().map(|&d| d as u8 as f32).collect();
        let mut t = Vec::new();
        for (name, v, w) in [
            ("replay.obs", &self.obs[..], self.obs_w),
            ("replay.acts", &self.acts[..], self.act_w),
            ("replay.rews", &self.rews[..], self.agents),
            ("replay.next_obs", &self.next_obs[..], self.obs_w),
            ("replay.done", &done[..], 1),
        ] {
            t.push((name.to_string(), mk(v, w)?));
        }
        Ok(t)
    }

    /// Refills the buffer from [`ReplayBuffer::to_tensors`] and a position, checking both.
    pub fn load(&mut self, tensors: &HashMap<String, candle_core::Tensor>, pos: ReplayPosition) -> Result<()> {
        let bad = |reason: String| AlgoError::Checkpoint {
            path: "replay".into(),
            reason,
        };
        let len = pos.len;
        if len > self.cap || pos.next >= self.cap || (len < self.cap && pos.next != len) {
            return Err(bad(format!(
                "a replay buffer of {len} transitions (next {}) does not fit its capacity {}",
                pos.next, self.cap
            )));
        }
        let read = |name: &str, w: usize| -> Result<Vec<f32>> {
            let t = tensors
                .get(name)
                .ok_or_else(|| bad(format!("missing tensor `{name}`")))?;
            let v: Vec<f32> = t.flatten_all()?.to_vec1()?;
            if v.len() != len * w {
                return Err(bad(format!("`{name}` holds {} values, expected {}", v.len(), len * w)));
            }
            Ok(v)
        };
        let (ow, aw, n) = (self.obs_w, self.act_w, self.agents);
        self.obs[..len * ow].copy_from_slice(&read("replay.obs", ow)?);
        self.acts[..len * aw].copy_from_slice(&read("replay.acts", aw)?);
        self.rews[..len * n].copy_from_slice(&read("replay.rews", n)?);
        self.next_obs[..len * ow].copy_from_slice(&read("replay.next_obs", ow)?);
        for (d, v) in self.done.iter_mut().zip(read("replay.done", 1)?) {
            *d = v != 0.0;
        }
        self.len = len;
        self.next = pos.next;
        Ok(())
    }
}

/// The file of a checkpoint that holds an off-policy learner's replay buffer.
pub const REPLAY_FILE: &str = "replay.safetensors";

/// An off-policy learner's checkpoint state: its small state as JSON, its weights, its envs'
/// snapshot where they can save one, and the replay buffer in [`REPLAY_FILE`].
pub fn learner_state(
    algo_state: serde_json::Value,
    tensors: NamedTensors,
    env_state: Option<serde_json::Value>,
    buffer: &ReplayBuffer,
) -> Result<taper_train::LearnerState> {
    let mut s = taper_train::LearnerState::new(algo_state, tensors);
    s.env_state = env_state;
    s.files = vec![(REPLAY_FILE.to_string(), buffer.to_tensors()?)];
    Ok(s)
}

/// Where a plan of `total_steps` env steps ends when `num_envs` envs step together: the first
/// whole vector step at or past it. An error when it is 0 or the run, at `global_step`, is
/// already there.
pub fn plan_end(total_steps: u64, num_envs: usize, global_step: u64) -> Result<u64> {
    let m = num_envs.max(1) as u64;
    let end = total_steps.div_ceil(m) * m;
    if total_steps == 0 || global_step >= end {
        return Err(AlgoError::Config {
            field: "total_steps",
            reason: format!(
                "the run is already at step {global_step} of a {total_steps}-step plan; give a larger budget to continue"
            ),
        });
    }
    Ok(end)
}

/// Polyak averaging of a target network towards its online network:
/// `θ' ← (1 − τ)·θ' + τ·θ`.
pub fn polyak(target: &mut Mlp, online: &Mlp, tau: f32) {
    polyak_params(target.params_mut(), online.params(), tau);
}

/// [`polyak`] on flat parameter buffers of the same length.
pub fn polyak_params(target: &mut [f32], online: &[f32], tau: f32) {
    for (a, b) in target.iter_mut().zip(online) {
        *a = (1.0 - tau) * *a + tau * b;
    }
}

/// The one-step TD target `r + γ·Q'(s′, a′)`, with `Q'` taken as 0 after a terminal state.
pub fn td_target(reward: f32, gamma: f32, done: bool, next_q: f32) -> f32 {
    let nd = if done { 0.0 } else { 1.0 };
    reward + gamma * nd * next_q
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn round_trip_and_bad_input() {
        let mut b = ReplayBuffer::new(4, 3, 2, 2).unwrap();
        for t in 0..6 {
            let x = t as f32;
            b.push(&[x; 3], &[x, -x], &[x, 2.0 * x], &[x + 1.0; 3], t == 5).unwrap();
        }
        let t: HashMap<_, _> = b.to_tensors().unwrap().into_iter().collect();
        let mut c = ReplayBuffer::new(4, 3, 2, 2).unwrap();
        c.load(&t, b.position()).unwrap();
        for i in 0..4 {
            assert_eq!((c.obs(i), c.actions(i), c.done(i)), (b.obs(i), b.actions(i), b.done(i)));
            assert_eq!(c.reward(i, 1), b.reward(i, 1));
        }
        assert!(b.push(&[0.0; 2], &[0.0; 2], &[0.0; 2], &[0.0; 3], false).is_err());
        assert!(c.load(&t, ReplayPosition { len: 5, next: 0 }).is_err());
        assert!(ReplayBuffer::new(0, 3, 2, 2).is_err());
        assert!(ReplayBuffer::new(usize::MAX / 8, 3, 2, 2).is_err());
    }

    #[test]
    fn plans_end_on_whole_vector_steps() {
        assert_eq!(plan_end(10, 4, 0).unwrap(), 12);
        assert_eq!(plan_end(12, 4, 8).unwrap(), 12);
        assert!(plan_end(12, 4, 12).is_err());
        assert!(plan_end(0, 1, 0).is_err());
    }
}
