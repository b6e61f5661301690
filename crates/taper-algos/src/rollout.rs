//! The on-policy rollout: one buffer ([`RolloutBuffer`]) and one collection loop
//! ([`collect`]) for single- and multi-agent learners.
//!
//! The loop sees envs as **rows** that act together ([`RolloutEnv`]): a [`VecEnv`] of N envs
//! is N rows ([`EnvRows`]); M multi-agent envs of N agents are M·N rows ([`AgentRows`]),
//! agent-major within each env, and the rows of one env end their episodes together. The
//! critic reads each row's encoded observation, or (for a centralized critic) the global state
//! of the row's env.

use crate::error::{AlgoError, Result};
use crate::policy::{encode_obs, ActWorkspace};
use crate::policy_model::OnPolicyModel;
use crate::recent::LoggedEpisode;
use rand_chacha::ChaCha8Rng;
use taper_envs::parallel::{homogeneous, MaEpisode, MultiAction, VecParallel};
use taper_envs::wrappers::EpisodeRecord;
use taper_envs::{Space, VecAction, VecEnv};
use taper_tensor::normalize::ValueNorm;

/// One rollout, time-major `[T, N, ...]` and flat, with its advantages and returns.
#[derive(Debug, Clone, Default)]
pub struct RolloutBuffer {
    /// Rows per step `N`.
    pub rows: usize,
    /// Encoded observations `[T, N, obs_dim]`.
    pub obs: Vec<f32>,
    /// Actions as sampled (unclipped) `[T, N, action_dim]`.
    pub actions: Vec<f32>,
    /// Log-probabilities of the actions under the rollout policy `[T, N]`.
    pub logp: Vec<f32>,
    /// The critic's outputs `V(s_t)` `[T, N]` (normalised units with value normalisation).
    pub values: Vec<f32>,
    /// `V(s_t)` in the units of the returns `[T, N]` (what advantages are estimated from).
    pub gae_values: Vec<f32>,
    /// Rewards (scaled if the env normalises them) `[T, N]`.
    pub rewards: Vec<f32>,
    /// Terminal transitions `[T, N]`.
    pub terminated: Vec<bool>,
    /// Truncated transitions that bootstrap `[T, N]`.
    pub truncated: Vec<bool>,
    /// `V(final observation)` where truncated, in the returns' units `[T, N]`.
    pub final_values: Vec<f32>,
    /// `V(s_T)` after the last step, in the returns' units `[N]`.
    pub last_values: Vec<f32>,
    /// Advantages `[T, N]`.
    pub adv: Vec<f32>,
    /// Returns, `adv + gae_values` `[T, N]`.
    pub ret: Vec<f32>,
    /// The critic's inputs `[T, N, critic_dim]` when they differ from `obs` (a global state);
    /// empty otherwise.
    pub critic_obs: Vec<f32>,
    /// The samples the update learns from (the advantage pipeline's selection).
    pub selected: Vec<usize>,
}

impl RolloutBuffer {
    /// Zeroed buffers for `steps × rows` transitions.
    pub fn new(steps: usize, rows: usize, obs_dim: usize, action_dim: usize, critic_dim: Option<usize>) -> Self {
        let batch = steps * rows;
        RolloutBuffer {
            rows,
            obs: vec![0.0; batch * obs_dim],
            actions: vec![0.0; batch * action_dim],
            logp: vec![0.0; batch],
            values: vec![0.0; batch],
            gae_values: vec![0.0; batch],
            rewards: vec![0.0; batch],
            terminated: vec![false; batch],
            truncated: vec![false; batch],
            final_values: vec![0.0; batch],
            last_values: vec![0.0; rows],
            adv: vec![0.0; batch],
            ret: vec![0.0; batch],
            critic_obs: critic_dim.map(|d| vec![0.0; batch * d]).unwrap_or_default(),
            selected: (0..batch).collect(),
        }
    }
    /// Transitions held.
    pub fn len(&self) -> usize {
        self.logp.len()
    }
    /// Whether it holds none.
    pub fn is_empty(&self) -> bool {
        self.logp.is_empty()
    }
}

/// Envs as rows acting together, for [`collect`]. See the module doc.
pub trait RolloutEnv: Send {
    /// The kind of episode the envs report.
    type Episode: LoggedEpisode;
    /// Rows per step (envs × agents).
    fn rows(&self) -> usize;
    /// Rows per env (1, or the agents of a multi-agent env); an env's rows end together.
    fn group(&self) -> usize;
    /// Each row's observation space.
    fn obs_space(&self) -> &Space;
    /// Each row's action space.
    fn act_space(&self) -> &Space;
    /// Width of an env's global state.
    fn state_dim(&self) -> usize;
    /// Resets every env (env i with `seed + i`).
    fn reset(&mut self, seed: u64) -> Result<()>;
    /// The observations to act on `[rows, obs_flat_dim]`.
    fn obs(&self) -> &[f32];
    /// Each row's global state `[rows, state_dim]`.
    fn write_states(&self, out: &mut [f32]);
    /// Steps every env with the sampled actions `[rows, action_flat_dim]`.
    fn step(&mut self, actions: &[f32]) -> Result<()>;
    /// Rewards of the last step `[rows]`.
    fn rewards(&self) -> &[f32];
    /// Terminations of the last step `[rows]`.
    fn terminated(&self) -> &[bool];
    /// Truncations of the last step `[rows]`.
    fn truncated(&self) -> &[bool];
    /// The last observations of episodes that ended in the last step `[rows, obs_flat_dim]`.
    fn final_obs(&self) -> &[f32];
    /// The global state at the end of env `env`'s ended episode, for each of its rows
    /// `[group, state_dim]`.
    fn write_final_states(&self, env: usize, out: &mut [f32]);
    /// Calls `f` with each episode that ended in the last step.
    fn for_each_finished(&self, f: &mut dyn FnMut(Self::Episode));
    /// The env's episode statistics (multi-agent envs).
    fn episode_stats(&self) -> &'static [taper_envs::parallel::EpisodeStat] {
        &[]
    }
    /// The envs' state for a checkpoint, where they can save it.
    fn snapshot(&self) -> Option<serde_json::Value>;
    /// Restores [`RolloutEnv::snapshot`].
    fn restore(&mut self, v: &serde_json::Value) -> Result<()>;
}

/// A [`VecEnv`] as rows: one row per env.
#[derive(Debug)]
pub struct EnvRows {
    /// The envs.
    pub envs: VecEnv,
    acts: Vec<i64>,
}

impl EnvRows {
    /// Wraps a `VecEnv`.
    pub fn new(envs: VecEnv) -> Self {
        let n = envs.num_envs();
        EnvRows { envs, acts: vec![0; n] }
    }
}

impl RolloutEnv for EnvRows {
    type Episode = EpisodeRecord;
    fn rows(&self) -> usize {
        self.envs.num_envs()
    }
    fn group(&self) -> usize {
        1
    }
    fn obs_space(&self) -> &Space {
        self.envs.observation_space()
    }
    fn act_space(&self) -> &Space {
        self.envs.action_space()
    }
    fn state_dim(&self) -> usize {
        self.envs.observation_space().encoded_dim()
    }
    fn reset(&mut self, seed: u64) -> Result<()> {
        Ok(self.envs.reset(seed)?)
    }
    fn obs(&self) -> &[f32] {
        self.envs.obs()
    }
    fn write_states(&self, out: &mut [f32]) {
        let mut enc = Vec::new();
        encode_obs(self.envs.observation_space(), self.envs.obs(), self.rows(), &mut enc);
        out.copy_from_slice(&enc);
    }
    fn step(&mut self, actions: &[f32]) -> Result<()> {
        if matches!(self.envs.action_space(), Space::Discrete { .. }) {
            self.envs
                .step(VecAction::Discrete(as_indices(actions, &mut self.acts)))?;
        } else {
            self.envs.step(VecAction::Continuous(actions))?;
        }
        Ok(())
    }
    fn rewards(&self) -> &[f32] {
        self.envs.rewards()
    }
    fn terminated(&self) -> &[bool] {
        self.envs.terminated()
    }
    fn truncated(&self) -> &[bool] {
        self.envs.truncated()
    }
    fn final_obs(&self) -> &[f32] {
        self.envs.final_obs()
    }
    fn write_final_states(&self, env: usize, out: &mut [f32]) {
        let d = self.envs.obs_dim();
        let mut enc = Vec::new();
        encode_obs(
            self.envs.observation_space(),
            &self.envs.final_obs()[env * d..(env + 1) * d],
            1,
            &mut enc,
        );
        out.copy_from_slice(&enc);
    }
    fn for_each_finished(&self, f: &mut dyn FnMut(EpisodeRecord)) {
        for &(_, rec) in self.envs.finished() {
            f(rec);
        }
    }
    fn snapshot(&self) -> Option<serde_json::Value> {
        self.envs.snapshot().ok().and_then(|s| serde_json::to_value(s).ok())
    }
    fn restore(&mut self, v: &serde_json::Value) -> Result<()> {
        let s: taper_envs::VecEnvState = serde_json::from_value(v.clone()).map_err(|e| AlgoError::Checkpoint {
            path: "env state".into(),
            reason: e.to_string(),
        })?;
        Ok(self.envs.restore(&s)?)
    }
}

/// `m` copies of the registered multi-agent env `env_id`, stepped together.
pub fn parallel_envs(env_id: &str, kwargs: &taper_envs::Kwargs, m: usize) -> Result<VecParallel> {
    let envs = (0..m)
        .map(|_| taper_envs::make_parallel(env_id, kwargs))
        .collect::<taper_envs::Result<Vec<_>>>()?;
    Ok(VecParallel::new(envs)?)
}

/// Checks that a learner was given as many envs as its config asks for.
pub(crate) fn check_num_envs(configured: usize, given: usize) -> Result<()> {
    if configured != given {
        return Err(crate::AlgoError::Config {
            field: "num_envs",
            reason: format!("config says {configured} but there are {given} envs"),
        });
    }
    Ok(())
}

/// Sampled discrete actions (stored as `f32`) as env indices, in `out`.
fn as_indices<'a>(actions: &[f32], out: &'a mut [i64]) -> &'a [i64] {
    for (d, a) in out.iter_mut().zip(actions) {
        *d = *a as i64;
    }
    out
}

/// M multi-agent envs as M·N rows (agents alike, so one policy serves them all).
#[derive(Debug)]
pub struct AgentRows {
    /// The envs.
    pub envs: VecParallel,
    obs_space: Space,
    act_space: Space,
    acts: Vec<i64>,
}

impl AgentRows {
    /// Wraps multi-agent envs whose agents share one observation and one action space; an
    /// error otherwise.
    pub fn new(mut envs: VecParallel, algo: &'static str) -> Result<Self> {
        let (obs_space, act_space) = homogeneous(&envs.envs()[0]).ok_or_else(|| AlgoError::Unsupported {
            algo,
            what: "agents with different observation or action spaces (one policy is shared by all agents)".into(),
        })?;
        envs.set_track_states(true);
        let rows = envs.num_envs() * envs.num_agents();
        Ok(AgentRows {
            envs,
            obs_space,
            act_space,
            acts: vec![0; rows],
        })
    }
    fn agents(&self) -> usize {
        self.envs.num_agents()
    }
}

impl RolloutEnv for AgentRows {
    type Episode = MaEpisode;
    fn rows(&self) -> usize {
        self.envs.num_envs() * self.agents()
    }
    fn group(&self) -> usize {
        self.agents()
    }
    fn obs_space(&self) -> &Space {
        &self.obs_space
    }
    fn act_space(&self) -> &Space {
        &self.act_space
    }
    fn state_dim(&self) -> usize {
        self.envs.state_dim()
    }
    fn reset(&mut self, seed: u64) -> Result<()> {
        Ok(self.envs.reset(seed)?)
    }
    fn obs(&self) -> &[f32] {
        self.envs.obs()
    }
    fn write_states(&self, out: &mut [f32]) {
        let (n, sd) = (self.agents(), self.envs.state_dim());
        for (m, s) in self.envs.states().chunks(sd).enumerate() {
            for a in 0..n {
                out[(m * n + a) * sd..(m * n + a + 1) * sd].copy_from_slice(s);
            }
        }
    }
    fn step(&mut self, actions: &[f32]) -> Result<()> {
        if matches!(self.act_space, Space::Discrete { .. }) {
            self.envs
                .step(MultiAction::Discrete(as_indices(actions, &mut self.acts)))?;
        } else {
            self.envs.step(MultiAction::Continuous(actions))?;
        }
        Ok(())
    }
    fn rewards(&self) -> &[f32] {
        self.envs.rewards()
    }
    fn terminated(&self) -> &[bool] {
        self.envs.terminated()
    }
    fn truncated(&self) -> &[bool] {
        self.envs.truncated()
    }
    fn final_obs(&self) -> &[f32] {
        self.envs.final_obs()
    }
    fn write_final_states(&self, env: usize, out: &mut [f32]) {
        let sd = self.envs.state_dim();
        let s = &self.envs.final_states()[env * sd..(env + 1) * sd];
        for row in out.chunks_mut(sd) {
            row.copy_from_slice(s);
        }
    }
    fn for_each_finished(&self, f: &mut dyn FnMut(MaEpisode)) {
        for &(_, ep) in self.envs.finished() {
            f(ep);
        }
    }
    fn episode_stats(&self) -> &'static [taper_envs::parallel::EpisodeStat] {
        self.envs.episode_stats()
    }
    fn snapshot(&self) -> Option<serde_json::Value> {
        self.envs.snapshot().ok().and_then(|s| serde_json::to_value(s).ok())
    }
    fn restore(&mut self, v: &serde_json::Value) -> Result<()> {
        let s: taper_envs::parallel::VecParallelState =
            serde_json::from_value(v.clone()).map_err(|e| AlgoError::Checkpoint {
                path: "env state".into(),
                reason: e.to_string(),
            })?;
        Ok(self.envs.restore(&s)?)
    }
}

/// How [`collect`] runs.
#[derive(Debug, Clone, Copy)]
pub struct CollectOptions {
    /// Steps per rollout `T`.
    pub steps: usize,
    /// The critic reads each row's env's global state rather than its observation.
    pub central_critic: bool,
    /// Truncated episodes bootstrap from the value of their final observation (else they are
    /// treated as terminated).
    pub bootstrap_truncated: bool,
}

/// Scratch space of [`collect`], reused between rollouts; `W` is the model's acting scratch.
#[derive(Debug, Default)]
pub struct CollectWorkspace<W = ActWorkspace> {
    ws: W,
    enc: Vec<f32>,
    fin: Vec<f32>,
    fv: Vec<f32>,
    cin: Vec<f32>,
}

/// Collects one rollout of `opts.steps` steps into `b`: acts with `model` (sampling from
/// `rng`, carrying each row's memory in `carry` from step to step), records values (de-normalised by `value_norm` for the advantages), rewards and
/// flags, the values of final observations where truncated episodes bootstrap (per env, for
/// all its rows at once), and the values after the last step. `on_episode` sees each episode
/// that ends. Returns the env steps taken (steps × envs).
#[allow(clippy::too_many_arguments)]
pub fn collect<R: RolloutEnv, M: OnPolicyModel>(
    envs: &mut R,
    model: &M,
    carry: &mut M::Carry,
    rng: &mut ChaCha8Rng,
    value_norm: Option<&ValueNorm>,
    opts: CollectOptions,
    b: &mut RolloutBuffer,
    w: &mut CollectWorkspace<M::Workspace>,
    on_episode: &mut dyn FnMut(R::Episode),
) -> Result<u64> {
    let (n, g) = (envs.rows(), envs.group());
    let (od, ad) = (model.obs_dim(), model.action_dim());
    let cd = if opts.central_critic { envs.state_dim() } else { od };
    let raw = envs.obs_space().flat_dim();
    w.cin.resize(n * cd, 0.0);
    for step in 0..opts.steps {
        let r0 = step * n;
        encode_obs(envs.obs_space(), envs.obs(), n, &mut w.enc);
        b.obs[r0 * od..(r0 + n) * od].copy_from_slice(&w.enc);
        let critic_in: &[f32] = if opts.central_critic {
            envs.write_states(&mut w.cin);
            b.critic_obs[r0 * cd..(r0 + n) * cd].copy_from_slice(&w.cin);
            &w.cin
        } else {
            &w.enc
        };
        model.act_and_values(
            carry,
            &w.enc,
            critic_in,
            n,
            rng,
            &mut w.ws,
            &mut b.actions[r0 * ad..(r0 + n) * ad],
            &mut b.logp[r0..r0 + n],
            &mut b.values[r0..r0 + n],
        )?;
        b.gae_values[r0..r0 + n].copy_from_slice(&b.values[r0..r0 + n]);
        if let Some(vn) = value_norm {
            vn.denormalize(&mut b.gae_values[r0..r0 + n]);
        }
        envs.step(&b.actions[r0 * ad..(r0 + n) * ad])?;
        b.rewards[r0..r0 + n].copy_from_slice(envs.rewards());
        for i in 0..n {
            let (te, tr) = (envs.terminated()[i], envs.truncated()[i]);
            let r = r0 + i;
            b.terminated[r] = te || (tr && !opts.bootstrap_truncated);
            b.truncated[r] = tr && !te && opts.bootstrap_truncated;
            b.final_values[r] = 0.0;
        }
        for e in 0..n / g {
            let rows = r0 + e * g..r0 + (e + 1) * g;
            if !b.truncated[rows.clone()].iter().any(|&t| t) {
                continue;
            }
            if opts.central_critic {
                w.fin.resize(g * cd, 0.0);
                envs.write_final_states(e, &mut w.fin);
            } else {
                encode_obs(
                    envs.obs_space(),
                    &envs.final_obs()[e * g * raw..(e + 1) * g * raw],
                    g,
                    &mut w.fin,
                );
            }
            w.fv.resize(g, 0.0);
            model.final_values(carry, e * g..(e + 1) * g, &w.fin, &mut w.ws, &mut w.fv)?;
            if let Some(vn) = value_norm {
                vn.denormalize(&mut w.fv);
            }
            for (k, r) in rows.enumerate() {
                if b.truncated[r] {
                    b.final_values[r] = w.fv[k];
                }
            }
        }
        model.end_step(carry, envs.terminated(), envs.truncated());
        envs.for_each_finished(on_episode);
    }
    encode_obs(envs.obs_space(), envs.obs(), n, &mut w.enc);
    let critic_in: &[f32] = if opts.central_critic {
        envs.write_states(&mut w.cin);
        &w.cin
    } else {
        &w.enc
    };
    model.bootstrap_values(carry, critic_in, n, &mut w.ws, &mut b.last_values)?;
    if let Some(vn) = value_norm {
        vn.denormalize(&mut b.last_values);
    }
    Ok((opts.steps * (n / g)) as u64)
}
