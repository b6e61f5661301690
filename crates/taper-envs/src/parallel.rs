//! Multi-agent envs with PettingZoo's Parallel API shape ([`ParallelEnv`]), and
//! [`VecParallel`], which steps M of them into flat buffers with same-step autoreset.
//!
//! Every agent acts in every step. Per-agent buffers are flat and in agent order: an env's
//! observations are the agents' observations concatenated (`[N, obs_dim]` when the agents are
//! alike), its rewards and flags `[N]`. The global state ([`ParallelEnv::write_state`]) is what
//! a centralized critic reads; by default it is all observations concatenated (PettingZoo's
//! `state()` for the MPE envs).
//!
//! An episode ends when every agent is terminated or truncated; [`VecParallel`] asks that the
//! agents of an env end in the same step (as in the MPE envs), and says so otherwise.
//!
//! ```
//! use taper_envs::mpe::{SimpleSpread, SpreadConfig};
//! use taper_envs::parallel::{MultiAction, ParallelEnv, VecParallel};
//! let mut envs = VecParallel::new((0..4).map(|_| SimpleSpread::new(SpreadConfig::default())).collect::<Result<Vec<_>, _>>()?)?;
//! envs.reset(0)?;
//! for _ in 0..25 {
//!     envs.step(MultiAction::Discrete(&[0; 4 * 3]))?;
//! }
//! assert_eq!(envs.finished().len(), 4); // the 25-step episodes ended and restarted
//! assert_eq!(envs.obs().len(), 4 * 3 * 18);
//! # Ok::<(), taper_envs::EnvError>(())
//! ```

use crate::error::{EnvError, Result};
use crate::spaces::Space;
use serde::{Deserialize, Serialize};

/// One step's actions for all agents of an env (or of M envs, env-major).
#[derive(Debug, Clone, Copy)]
pub enum MultiAction<'a> {
    /// One index per agent, `[N]`.
    Discrete(&'a [i64]),
    /// The agents' action vectors concatenated, `[N, action_dim]` when the agents are alike.
    Continuous(&'a [f32]),
}

/// Per-agent results of a step, preallocated by the caller.
#[derive(Debug, Clone, PartialEq)]
pub struct StepBuffers {
    /// `[N]` rewards.
    pub rewards: Vec<f32>,
    /// `[N]` terminal states reached.
    pub terminated: Vec<bool>,
    /// `[N]` episodes cut by a limit outside the MDP.
    pub truncated: Vec<bool>,
}

impl StepBuffers {
    /// Buffers for `n` agents.
    pub fn new(n: usize) -> Self {
        StepBuffers {
            rewards: vec![0.0; n],
            terminated: vec![false; n],
            truncated: vec![false; n],
        }
    }
}

/// How a per-step statistic becomes an episode's value.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Reduce {
    /// The mean over the episode's steps.
    MeanPerStep,
    /// The sum over the episode's steps.
    Sum,
}

/// A statistic an env reports after each step (e.g. Simple Spread's coverage distance), kept
/// per episode and logged as `recent_<name>` by the learners.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct EpisodeStat {
    /// Its name.
    pub name: &'static str,
    /// How the steps' values combine.
    pub reduce: Reduce,
}

/// The most statistics an env can report per step.
pub const MAX_EPISODE_STATS: usize = 4;

/// A finished multi-agent episode.
#[derive(Debug, Clone, Copy, PartialEq, Default, Serialize, Deserialize)]
pub struct MaEpisode {
    /// Per-agent episode return, averaged over agents (PettingZoo's convention).
    pub mean_agent_return: f64,
    /// Steps.
    pub len: u64,
    /// The env's [`ParallelEnv::episode_stats`], reduced over the episode, in order.
    pub stats: [f64; MAX_EPISODE_STATS],
}

/// A multi-agent env with PettingZoo's Parallel API shape. See the module doc.
pub trait ParallelEnv: Send {
    /// The agents' names, in the order of every per-agent buffer (PettingZoo's
    /// `possible_agents`).
    fn agents(&self) -> &[String];
    /// Number of agents.
    fn num_agents(&self) -> usize {
        self.agents().len()
    }
    /// Agent `i`'s observation space.
    fn observation_space(&self, agent: usize) -> &Space;
    /// Agent `i`'s action space.
    fn action_space(&self, agent: usize) -> &Space;
    /// Width of all agents' observations concatenated.
    fn obs_width(&self) -> usize {
        (0..self.num_agents())
            .map(|i| self.observation_space(i).flat_dim())
            .sum()
    }
    /// Width of the global state.
    fn state_dim(&self) -> usize {
        self.obs_width()
    }
    /// Writes the global state given the current observations (`obs`, all agents); the default
    /// copies the observations.
    fn write_state(&self, obs: &[f32], state: &mut [f32]) {
        state.copy_from_slice(obs);
    }
    /// Starts an episode and writes every agent's first observation. `Some(seed)` reseeds the
    /// env's generator; `None` continues its stream (an env never seeded starts from seed 0).
    fn reset_into(&mut self, seed: Option<u64>, obs: &mut [f32]) -> Result<()>;
    /// Every agent acts; writes the next observations and the per-agent rewards and flags.
    fn step_into(&mut self, actions: MultiAction<'_>, obs: &mut [f32], out: &mut StepBuffers) -> Result<()>;
    /// The statistics [`ParallelEnv::step_stats`] reports (at most [`MAX_EPISODE_STATS`]).
    fn episode_stats(&self) -> &'static [EpisodeStat] {
        &[]
    }
    /// This step's values of the [`ParallelEnv::episode_stats`], after a step.
    fn step_stats(&self, out: &mut [f64]) {
        let _ = out;
    }
    /// Writes every agent's observation of the current state (`[N, obs_width]`), for envs
    /// that can: after [`ParallelEnv::restore`] or a state setter. An error before the first
    /// reset, or for envs that cannot.
    fn observe(&self, obs: &mut [f32]) -> Result<()> {
        let _ = obs;
        Err(EnvError::Invalid {
            name: "observe",
            reason: "this env writes observations only from reset and step".into(),
        })
    }
    /// The env's full state as JSON, for exact resume; `None` where it cannot be saved.
    fn snapshot(&self) -> Option<serde_json::Value> {
        None
    }
    /// Restores a [`ParallelEnv::snapshot`].
    fn restore(&mut self, snapshot: &serde_json::Value) -> Result<()> {
        let _ = snapshot;
        Err(EnvError::Invalid {
            name: "snapshot",
            reason: "this env cannot restore a saved state".into(),
        })
    }
    /// The raw state for envs that can draw a frame.
    fn render_state(&self) -> Option<Vec<f64>> {
        None
    }
}

impl<E: ParallelEnv + ?Sized> ParallelEnv for Box<E> {
    fn agents(&self) -> &[String] {
        (**self).agents()
    }
    fn num_agents(&self) -> usize {
        (**self).num_agents()
    }
    fn observation_space(&self, agent: usize) -> &Space {
        (**self).observation_space(agent)
    }
    fn action_space(&self, agent: usize) -> &Space {
        (**self).action_space(agent)
    }
    fn obs_width(&self) -> usize {
        (**self).obs_width()
    }
    fn state_dim(&self) -> usize {
        (**self).state_dim()
    }
    fn write_state(&self, obs: &[f32], state: &mut [f32]) {
        (**self).write_state(obs, state)
    }
    fn reset_into(&mut self, seed: Option<u64>, obs: &mut [f32]) -> Result<()> {
        (**self).reset_into(seed, obs)
    }
    fn step_into(&mut self, actions: MultiAction<'_>, obs: &mut [f32], out: &mut StepBuffers) -> Result<()> {
        (**self).step_into(actions, obs, out)
    }
    fn episode_stats(&self) -> &'static [EpisodeStat] {
        (**self).episode_stats()
    }
    fn step_stats(&self, out: &mut [f64]) {
        (**self).step_stats(out)
    }
    fn observe(&self, obs: &mut [f32]) -> Result<()> {
        (**self).observe(obs)
    }
    fn snapshot(&self) -> Option<serde_json::Value> {
        (**self).snapshot()
    }
    fn restore(&mut self, snapshot: &serde_json::Value) -> Result<()> {
        (**self).restore(snapshot)
    }
    fn render_state(&self) -> Option<Vec<f64>> {
        (**self).render_state()
    }
}

/// Whether all agents of `env` share one observation space and one action space (what
/// parameter-sharing learners need); returns those spaces.
pub fn homogeneous(env: &dyn ParallelEnv) -> Option<(Space, Space)> {
    let (o, a) = (env.observation_space(0).clone(), env.action_space(0).clone());
    (1..env.num_agents())
        .all(|i| env.observation_space(i) == &o && env.action_space(i) == &a)
        .then_some((o, a))
}

/// The state of a [`VecParallel`], for exact resume.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct VecParallelState {
    /// Each env's [`ParallelEnv::snapshot`].
    pub envs: Vec<serde_json::Value>,
    /// Each env's running episode: (summed per-agent mean return, steps, summed statistics).
    pub running: Vec<(f64, u64, [f64; MAX_EPISODE_STATS])>,
    /// The current observations.
    pub obs: Vec<f32>,
}

/// One env's running episode and the outcome of its last step.
#[derive(Debug, Default)]
struct Slot {
    ret: f64,
    len: u64,
    stats: [f64; MAX_EPISODE_STATS],
    step: [f64; MAX_EPISODE_STATS],
    done: Option<MaEpisode>,
    error: Option<EnvError>,
}

/// Envs stepped in parallel when [`VecParallel::set_parallel`] is on, in chunks of this many.
const CHUNK: usize = 64;

/// M multi-agent envs stepped together into flat buffers, with same-step autoreset: where an
/// episode ended, `obs()` already holds the next episode's first observations and
/// `final_obs()` the last ones. Env `i` resets with seed `seed + i`. Stepping runs on rayon's
/// pool in fixed chunks of 64 envs when asked; the numbers never depend on the thread count.
pub struct VecParallel<E: ParallelEnv = Box<dyn ParallelEnv>> {
    envs: Vec<E>,
    outs: Vec<StepBuffers>,
    slots: Vec<Slot>,
    n: usize,
    obs_w: usize,
    state_w: usize,
    act_w: usize,
    discrete: bool,
    stats: &'static [EpisodeStat],
    obs: Vec<f32>,
    final_obs: Vec<f32>,
    states: Vec<f32>,
    final_states: Vec<f32>,
    track_states: bool,
    rewards: Vec<f32>,
    terminated: Vec<bool>,
    truncated: Vec<bool>,
    ended: Vec<bool>,
    finished: Vec<(usize, MaEpisode)>,
    parallel: bool,
    started: bool,
}

impl<E: ParallelEnv> std::fmt::Debug for VecParallel<E> {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("VecParallel")
            .field("num_envs", &self.envs.len())
            .field("agents", &self.n)
            .field("obs_width", &self.obs_w)
            .finish()
    }
}

impl<E: ParallelEnv> VecParallel<E> {
    /// Steps `envs` together; they must have the same agents and spaces.
    pub fn new(envs: Vec<E>) -> Result<Self> {
        let Some(first) = envs.first() else {
            return Err(EnvError::Invalid {
                name: "num_envs",
                reason: "need at least one env".into(),
            });
        };
        let n = first.num_agents();
        if n == 0 {
            return Err(EnvError::Invalid {
                name: "agents",
                reason: "a multi-agent env needs at least one agent".into(),
            });
        }
        let stats = first.episode_stats();
        if stats.len() > MAX_EPISODE_STATS {
            return Err(EnvError::Invalid {
                name: "episode_stats",
                reason: format!("at most {MAX_EPISODE_STATS} statistics, got {}", stats.len()),
            });
        }
        for e in &envs[1..] {
            let same = e.agents() == first.agents()
                && (0..n).all(|i| {
                    e.observation_space(i) == first.observation_space(i) && e.action_space(i) == first.action_space(i)
                });
            if !same {
                return Err(EnvError::Invalid {
                    name: "envs",
                    reason: "the envs of a VecParallel must have the same agents and spaces".into(),
                });
            }
        }
        let (obs_w, state_w, m) = (first.obs_width(), first.state_dim(), envs.len());
        if obs_w == 0 || state_w == 0 {
            return Err(EnvError::Invalid {
                name: "spaces",
                reason: "observations and the global state need at least one value".into(),
            });
        }
        let discrete = (0..n).all(|i| matches!(first.action_space(i), Space::Discrete { .. }));
        let act_w = if discrete {
            n
        } else {
            (0..n).map(|i| first.action_space(i).flat_dim()).sum()
        };
        Ok(VecParallel {
            outs: (0..m).map(|_| StepBuffers::new(n)).collect(),
            slots: (0..m).map(|_| Slot::default()).collect(),
            n,
            obs_w,
            state_w,
            act_w,
            discrete,
            stats,
            obs: vec![0.0; m * obs_w],
            final_obs: vec![0.0; m * obs_w],
            states: vec![0.0; m * state_w],
            final_states: vec![0.0; m * state_w],
            track_states: false,
            rewards: vec![0.0; m * n],
            terminated: vec![false; m * n],
            truncated: vec![false; m * n],
            ended: vec![false; m],
            finished: Vec::with_capacity(m),
            parallel: false,
            started: false,
            envs,
        })
    }
    /// Step envs on rayon's pool, in fixed chunks.
    pub fn set_parallel(&mut self, on: bool) {
        self.parallel = on;
    }
    /// Keep every env's global state (and its final state where an episode ended) after each
    /// step, for centralized critics.
    pub fn set_track_states(&mut self, on: bool) {
        self.track_states = on;
        if on && self.started {
            self.write_states();
        }
    }
    /// Number of envs M.
    pub fn num_envs(&self) -> usize {
        self.envs.len()
    }
    /// Agents per env N.
    pub fn num_agents(&self) -> usize {
        self.n
    }
    /// The envs.
    pub fn envs(&self) -> &[E] {
        &self.envs
    }
    /// Width of one env's observations (all agents).
    pub fn obs_width(&self) -> usize {
        self.obs_w
    }
    /// Width of one env's global state.
    pub fn state_dim(&self) -> usize {
        self.state_w
    }
    /// The statistics each episode reports.
    pub fn episode_stats(&self) -> &'static [EpisodeStat] {
        self.stats
    }
    /// Observations to act on `[M, obs_width]`.
    pub fn obs(&self) -> &[f32] {
        &self.obs
    }
    /// Last observations of the episodes that ended in the last step `[M, obs_width]`.
    pub fn final_obs(&self) -> &[f32] {
        &self.final_obs
    }
    /// Global states `[M, state_dim]` (with [`VecParallel::set_track_states`]).
    pub fn states(&self) -> &[f32] {
        &self.states
    }
    /// Global states at the end of the episodes that ended in the last step (with
    /// [`VecParallel::set_track_states`]).
    pub fn final_states(&self) -> &[f32] {
        &self.final_states
    }
    /// Rewards of the last step `[M, N]`.
    pub fn rewards(&self) -> &[f32] {
        &self.rewards
    }
    /// Terminations of the last step `[M, N]`.
    pub fn terminated(&self) -> &[bool] {
        &self.terminated
    }
    /// Truncations of the last step `[M, N]`.
    pub fn truncated(&self) -> &[bool] {
        &self.truncated
    }
    /// Whether env m's episode ended in the last step `[M]`.
    pub fn ended(&self) -> &[bool] {
        &self.ended
    }
    /// Episodes that ended in the last step.
    pub fn finished(&self) -> &[(usize, MaEpisode)] {
        &self.finished
    }

    fn write_states(&mut self) {
        if !self.track_states {
            return;
        }
        let (ow, sw) = (self.obs_w, self.state_w);
        for (i, e) in self.envs.iter().enumerate() {
            e.write_state(&self.obs[i * ow..(i + 1) * ow], &mut self.states[i * sw..(i + 1) * sw]);
        }
    }

    /// Every env's state and running episode, for an exact resume; an error if an env cannot
    /// save its state.
    pub fn snapshot(&self) -> Result<VecParallelState> {
        let envs = crate::env::all_snapshots(self.envs.iter().map(|e| e.snapshot()))?;
        Ok(VecParallelState {
            envs,
            running: self.slots.iter().map(|s| (s.ret, s.len, s.stats)).collect(),
            obs: self.obs.clone(),
        })
    }

    /// Restores a [`VecParallel::snapshot`] taken of envs of the same count and kind.
    pub fn restore(&mut self, s: &VecParallelState) -> Result<()> {
        let m = self.envs.len();
        for (what, got) in [("snapshot envs", s.envs.len()), ("snapshot episodes", s.running.len())] {
            if got != m {
                return Err(EnvError::Shape { what, expected: m, got });
            }
        }
        if s.obs.len() != self.obs.len() {
            return Err(EnvError::Shape {
                what: "snapshot observations",
                expected: self.obs.len(),
                got: s.obs.len(),
            });
        }
        for (e, es) in self.envs.iter_mut().zip(&s.envs) {
            e.restore(es)?;
        }
        for (slot, &(ret, len, stats)) in self.slots.iter_mut().zip(&s.running) {
            *slot = Slot {
                ret,
                len,
                stats,
                ..Slot::default()
            };
        }
        self.obs.copy_from_slice(&s.obs);
        self.finished.clear();
        self.started = true;
        self.write_states();
        Ok(())
    }

    /// Resets every env (env `i` with `seed + i`).
    pub fn reset(&mut self, seed: u64) -> Result<()> {
        let w = self.obs_w;
        for (i, (e, o)) in self.envs.iter_mut().zip(self.obs.chunks_mut(w)).enumerate() {
            e.reset_into(Some(seed.wrapping_add(i as u64)), o)?;
        }
        self.slots.iter_mut().for_each(|s| *s = Slot::default());
        self.finished.clear();
        self.started = true;
        self.write_states();
        Ok(())
    }

    /// Steps every env: discrete actions `[M, N]` or continuous `[M, N·action_dim]`.
    pub fn step(&mut self, actions: MultiAction<'_>) -> Result<()> {
        if !self.started {
            return Err(EnvError::NeedsReset("VecParallel: call reset first"));
        }
        let m = self.envs.len();
        let n = self.n;
        let w = self.obs_w;
        let (len, kind_ok) = match actions {
            MultiAction::Discrete(a) => (a.len(), self.discrete),
            MultiAction::Continuous(a) => (a.len(), !self.discrete),
        };
        if !kind_ok {
            return Err(EnvError::ActionOutOfSpace {
                action: if self.discrete {
                    "continuous actions".into()
                } else {
                    "discrete actions".into()
                },
                space: self.envs[0].action_space(0).to_string(),
            });
        }
        if len != m * self.act_w {
            return Err(EnvError::Shape {
                what: "actions (every env's agents' actions, env-major)",
                expected: m * self.act_w,
                got: len,
            });
        }
        let ctx = StepContext {
            actions,
            per: len / m,
            n,
            obs_w: w,
            state_w: self.state_w,
            stats: self.stats,
            track: self.track_states,
        };
        let sw = self.state_w;
        self.finished.clear();
        // Every env's results go straight into the flat buffers from the thread that stepped
        // it, so the serial part below reads only the `ended` flags.
        let failed = if self.parallel && m > CHUNK {
            use rayon::prelude::*;
            (
                self.envs.par_chunks_mut(CHUNK),
                self.outs.par_chunks_mut(CHUNK),
                self.slots.par_chunks_mut(CHUNK),
                self.obs.par_chunks_mut(CHUNK * w),
                self.final_obs.par_chunks_mut(CHUNK * w),
                self.states.par_chunks_mut(CHUNK * sw),
                self.final_states.par_chunks_mut(CHUNK * sw),
                self.rewards.par_chunks_mut(CHUNK * n),
                self.terminated.par_chunks_mut(CHUNK * n),
                self.truncated.par_chunks_mut(CHUNK * n),
                self.ended.par_chunks_mut(CHUNK),
            )
                .into_par_iter()
                .enumerate()
                .map(
                    |(
                        c,
                        (
                            envs,
                            outs,
                            slots,
                            obs,
                            final_obs,
                            states,
                            final_states,
                            rewards,
                            terminated,
                            truncated,
                            ended,
                        ),
                    )| {
                        ctx.step_chunk(
                            c * CHUNK,
                            Lanes {
                                envs,
                                outs,
                                slots,
                                obs,
                                final_obs,
                                states,
                                final_states,
                                rewards,
                                terminated,
                                truncated,
                                ended,
                            },
                        )
                    },
                )
                .reduce(|| false, |a, b| a || b)
        } else {
            ctx.step_chunk(
                0,
                Lanes {
                    envs: &mut self.envs,
                    outs: &mut self.outs,
                    slots: &mut self.slots,
                    obs: &mut self.obs,
                    final_obs: &mut self.final_obs,
                    states: &mut self.states,
                    final_states: &mut self.final_states,
                    rewards: &mut self.rewards,
                    terminated: &mut self.terminated,
                    truncated: &mut self.truncated,
                    ended: &mut self.ended,
                },
            )
        };
        if failed {
            let err = self.slots.iter_mut().find_map(|s| s.error.take());
            self.slots.iter_mut().for_each(|s| s.error = None);
            if let Some(err) = err {
                return Err(err);
            }
        }
        for (i, _) in self.ended.iter().enumerate().filter(|(_, e)| **e) {
            if let Some(ep) = self.slots[i].done {
                self.finished.push((i, ep));
            }
        }
        Ok(())
    }
}

/// What stepping one env needs besides its own buffers.
struct StepContext<'a> {
    actions: MultiAction<'a>,
    per: usize,
    n: usize,
    obs_w: usize,
    state_w: usize,
    stats: &'static [EpisodeStat],
    track: bool,
}

/// The buffers of a run of consecutive envs (a chunk, or all of them).
struct Lanes<'a, E> {
    envs: &'a mut [E],
    outs: &'a mut [StepBuffers],
    slots: &'a mut [Slot],
    obs: &'a mut [f32],
    final_obs: &'a mut [f32],
    states: &'a mut [f32],
    final_states: &'a mut [f32],
    rewards: &'a mut [f32],
    terminated: &'a mut [bool],
    truncated: &'a mut [bool],
    ended: &'a mut [bool],
}

impl StepContext<'_> {
    /// Steps the envs of `lanes`, the first of which is env `first`; each writes its ended
    /// episode (or error) into its own slot, so a step allocates nothing. Returns whether an
    /// env failed.
    fn step_chunk<E: ParallelEnv>(&self, first: usize, lanes: Lanes<'_, E>) -> bool {
        let (n, w, sw, k) = (self.n, self.obs_w, self.state_w, self.stats.len());
        let mut failed = false;
        for (j, (e, (out, slot))) in lanes
            .envs
            .iter_mut()
            .zip(lanes.outs.iter_mut().zip(lanes.slots.iter_mut()))
            .enumerate()
        {
            let i = first + j;
            let o = &mut lanes.obs[j * w..(j + 1) * w];
            let a = match self.actions {
                MultiAction::Discrete(a) => MultiAction::Discrete(&a[i * self.per..(i + 1) * self.per]),
                MultiAction::Continuous(a) => MultiAction::Continuous(&a[i * self.per..(i + 1) * self.per]),
            };
            slot.done = None;
            lanes.ended[j] = false;
            if let Err(err) = e.step_into(a, o, out) {
                slot.error = Some(err);
                failed = true;
                continue;
            }
            lanes.rewards[j * n..(j + 1) * n].copy_from_slice(&out.rewards);
            lanes.terminated[j * n..(j + 1) * n].copy_from_slice(&out.terminated);
            lanes.truncated[j * n..(j + 1) * n].copy_from_slice(&out.truncated);
            slot.ret += out.rewards.iter().map(|&r| r as f64).sum::<f64>() / n as f64;
            slot.len += 1;
            if k > 0 {
                e.step_stats(&mut slot.step[..k]);
                for q in 0..k {
                    slot.stats[q] += slot.step[q];
                }
            }
            let done = |a: usize| out.terminated[a] || out.truncated[a];
            let all = (0..n).all(done);
            if !all && (0..n).any(done) {
                slot.error = Some(EnvError::Invalid {
                    name: "episode end",
                    reason: format!(
                        "env {i}: some agents ended their episode and others did not; VecParallel needs the agents of an env to end in the same step"
                    ),
                });
                failed = true;
                continue;
            }
            if all {
                let mut ep = MaEpisode {
                    mean_agent_return: slot.ret,
                    len: slot.len,
                    stats: [0.0; MAX_EPISODE_STATS],
                };
                for (q, s) in self.stats.iter().enumerate() {
                    ep.stats[q] = match s.reduce {
                        Reduce::MeanPerStep => slot.stats[q] / slot.len as f64,
                        Reduce::Sum => slot.stats[q],
                    };
                }
                slot.done = Some(ep);
                lanes.ended[j] = true;
                lanes.final_obs[j * w..(j + 1) * w].copy_from_slice(o);
                if self.track {
                    e.write_state(o, &mut lanes.final_states[j * sw..(j + 1) * sw]);
                }
                (slot.ret, slot.len, slot.stats) = (0.0, 0, [0.0; MAX_EPISODE_STATS]);
                if let Err(err) = e.reset_into(None, o) {
                    slot.error = Some(err);
                    failed = true;
                    continue;
                }
            }
            if self.track {
                e.write_state(o, &mut lanes.states[j * sw..(j + 1) * sw]);
            }
        }
        failed
    }
}
