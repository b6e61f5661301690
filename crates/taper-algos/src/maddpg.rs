//! MADDPG (Lowe et al. 2017, as `openai/maddpg` implements it) on discrete Simple Spread.
//!
//! - One actor per agent, reading its own observation and giving 5 logits `ℓ_i`. Acting draws
//!   a Gumbel-softmax sample `softmax(ℓ_i + g)` (temperature 1) and sends its argmax to the
//!   discrete env (by the Gumbel-max trick, a draw from `softmax(ℓ_i)`); the replay buffer keeps
//!   the one-hot action.
//! - One centralized critic per agent, `Q_i(o_1..o_N, a_1..a_N)`, with **tanh** hidden layers so
//!   it is smooth in the actions; [`Maddpg::action_gradients`] gives `∂Q_i/∂a_j` for every j
//!   (first derivatives for the diagnostics; second derivatives by finite differences of these).
//! - Target actors and critics with Polyak averaging; targets
//!   `y = r_i + γ·Q'_i(o', ã'_1..ã'_N)` with `ã'_j` a Gumbel-softmax sample of target actor j.
//! - Actor loss `−mean Q_i(o, a_1..softmax(ℓ_i + g)..a_N) + 1e-3·mean(ℓ_i²)`, the other agents'
//!   actions from the buffer.
//!
//! Defaults ([`MaddpgConfig`]) are `openai/maddpg`'s: Adam 1e-2, γ 0.95, τ 0.01, batch 1024,
//! buffer 1e6, learning after 1024 × 25 transitions, an update every 100 env steps, gradient
//! norm clip 0.5, 2 × 64 hidden units. The time limit is not a terminal state (the original
//! stores `done = false` at the 25-step cut), so targets bootstrap through it.
//!
//! With `share_params` one actor and one critic serve all agents: the critic reads the agents
//! in cyclic order from the one whose value it gives, and each sampled transition trains both
//! from every agent's side. [`MaddpgConfig::tuned`], the CLI's default, shares the networks and
//! changes four of openai/maddpg's numbers; it is what reaches the Simple Spread target.

use crate::callback::Control;
use crate::error::{AlgoError, Result};
use crate::marl::{ensure_envs, restored_envs, RecentEpisodes};
use crate::metrics::Metrics;
use rand::Rng;
use rand_chacha::ChaCha8Rng;
use serde::{Deserialize, Serialize};
use std::collections::HashMap;
use std::time::Instant;
use taper_envs::mpe::{MultiAction, SimpleSpread, SpreadConfig, VecSpread};
use taper_envs::parallel::{MaEpisode, VecParallelState};
use taper_tensor::mlp::{Activation, Mlp, MlpCache, MlpInit};
use taper_tensor::optim::{clip_grad_norm, Adam, AdamConfig, AdamState};
use taper_tensor::rng::{stream, Purpose};

/// Actions per agent (no-op, left, right, down, up).
const ACTS: usize = 5;

/// MADDPG hyperparameters (`openai/maddpg` `experiments/train.py` defaults).
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct MaddpgConfig {
    /// Adam learning rate of actors and critics (openai/maddpg: 1e-2).
    pub learning_rate: f64,
    /// Discount γ (openai/maddpg: 0.95).
    pub gamma: f64,
    /// Polyak rate τ of the target networks (openai/maddpg: 0.01).
    pub tau: f64,
    /// Minibatch (openai/maddpg: 1024).
    pub batch_size: usize,
    /// Replay capacity in transitions (openai/maddpg: 1e6).
    pub buffer_size: usize,
    /// Transitions before learning starts (openai/maddpg: 1024 × 25).
    pub learning_starts: usize,
    /// Env steps between updates (openai/maddpg: 100).
    pub train_every: usize,
    /// Hidden widths of actors (ReLU) and critics (tanh) (openai/maddpg: 64, 64, ReLU for both;
    /// tanh critics are taper's, for smoothness in the actions).
    pub hidden: Vec<usize>,
    /// Gradient-norm clip per network (openai/maddpg: 0.5).
    pub max_grad_norm: f64,
    /// Weight of the mean squared logits in the actor loss (openai/maddpg: 1e-3).
    pub logit_reg: f64,
    /// Parallel envs (openai/maddpg: 1).
    pub num_envs: usize,
    /// Straight-through Gumbel-softmax: critics see one-hot actions everywhere (buffer, target
    /// and actor update), and the actor's gradient passes through the soft sample (taper:
    /// true; openai/maddpg feeds soft samples to a continuous-action env, which the discrete
    /// PettingZoo env does not take).
    pub straight_through: bool,
    /// One actor and one critic for all agents (openai/maddpg: false, a network per agent).
    /// The shared critic reads the agents in cyclic order from the one whose value it gives
    /// (its own observation and action first), and every sampled transition trains it, and the
    /// actor, from every agent's side.
    pub share_params: bool,
}

impl Default for MaddpgConfig {
    fn default() -> Self {
        MaddpgConfig {
            learning_rate: 1e-2,
            gamma: 0.95,
            tau: 0.01,
            batch_size: 1024,
            buffer_size: 1_000_000,
            learning_starts: 1024 * 25,
            train_every: 100,
            hidden: vec![64, 64],
            max_grad_norm: 0.5,
            logit_reg: 1e-3,
            num_envs: 1,
            straight_through: true,
            share_params: false,
        }
    }
}

impl MaddpgConfig {
    /// taper's setting for Simple Spread, the CLI's default for `--algo maddpg`: openai/maddpg's
    /// with five changes, each measured on `SimpleSpread-v3` (`docs/mpe.md`): Adam 1e-3 (not
    /// 1e-2), an update every 5 env steps (not 100) on minibatches of 256 transitions (not
    /// 1024), 2 × 128 hidden units (not 64), and one actor and one critic shared by all agents.
    ///
    /// ```
    /// use taper_algos::maddpg::MaddpgConfig;
    /// let c = MaddpgConfig::tuned();
    /// assert!(c.share_params && c.hidden == vec![128, 128]);
    /// assert_eq!(MaddpgConfig::default().learning_rate, 1e-2); // openai/maddpg's
    /// ```
    pub fn tuned() -> Self {
        MaddpgConfig {
            learning_rate: 1e-3,
            train_every: 5,
            batch_size: 256,
            hidden: vec![128, 128],
            share_params: true,
            ..MaddpgConfig::default()
        }
    }

    /// Checks the ranges.
    pub fn validate(&self) -> Result<()> {
        let bad = |field: &'static str, reason: String| Err(AlgoError::Config { field, reason });
        if !(self.learning_rate > 0.0 && self.learning_rate.is_finite()) {
            return bad("learning_rate", format!("must be positive, got {}", self.learning_rate));
        }
        if !(0.0..=1.0).contains(&self.gamma) {
            return bad("gamma", format!("must be in [0, 1], got {}", self.gamma));
        }
        if !(self.tau > 0.0 && self.tau <= 1.0) {
            return bad("tau", format!("must be in (0, 1], got {}", self.tau));
        }
        for (f, v) in [
            ("batch_size", self.batch_size),
            ("buffer_size", self.buffer_size),
            ("train_every", self.train_every),
            ("num_envs", self.num_envs),
        ] {
            if v == 0 {
                return bad(f, "must be at least 1".into());
            }
        }
        if self.batch_size > self.buffer_size {
            return bad("batch_size", "exceeds buffer_size".into());
        }
        if self.hidden.contains(&0) {
            return bad("hidden", "layer widths must be positive".into());
        }
        if !(self.max_grad_norm > 0.0) {
            return bad("max_grad_norm", "must be positive".into());
        }
        Ok(())
    }
}

/// Joint transitions in a ring buffer: all agents' observations, one-hot actions, rewards and
/// next observations.
#[derive(Debug, Clone)]
pub struct ReplayBuffer {
    cap: usize,
    len: usize,
    next: usize,
    obs_w: usize,
    n: usize,
    obs: Vec<f32>,
    acts: Vec<f32>,
    rews: Vec<f32>,
    next_obs: Vec<f32>,
    done: Vec<bool>,
}

impl ReplayBuffer {
    /// A buffer for `n` agents with observations of `od` values.
    pub fn new(cap: usize, n: usize, od: usize) -> Self {
        let w = n * od;
        ReplayBuffer {
            cap,
            len: 0,
            next: 0,
            obs_w: w,
            n,
            obs: vec![0.0; cap * w],
            acts: vec![0.0; cap * n * ACTS],
            rews: vec![0.0; cap * n],
            next_obs: vec![0.0; cap * w],
            done: vec![false; cap],
        }
    }
    /// Stored transitions.
    pub fn len(&self) -> usize {
        self.len
    }
    /// Whether empty.
    pub fn is_empty(&self) -> bool {
        self.len == 0
    }
    /// Adds one joint transition (overwriting the oldest when full); `acts` is `[N, 5]` (one-hot
    /// or soft).
    pub fn push(&mut self, obs: &[f32], acts: &[f32], rews: &[f32], next_obs: &[f32], done: bool) {
        let (i, w, n) = (self.next, self.obs_w, self.n);
        self.obs[i * w..(i + 1) * w].copy_from_slice(obs);
        self.next_obs[i * w..(i + 1) * w].copy_from_slice(next_obs);
        self.acts[i * n * ACTS..(i + 1) * n * ACTS].copy_from_slice(acts);
        self.rews[i * n..(i + 1) * n].copy_from_slice(rews);
        self.done[i] = done;
        self.next = (self.next + 1) % self.cap;
        self.len = (self.len + 1).min(self.cap);
    }
}

fn softmax_row(x: &mut [f32]) {
    let m = x.iter().cloned().fold(f32::NEG_INFINITY, f32::max);
    let mut s = 0.0;
    for v in x.iter_mut() {
        *v = (*v - m).exp();
        s += *v;
    }
    for v in x.iter_mut() {
        *v /= s;
    }
}

fn one_hot_of_max(x: &mut [f32]) {
    let mut best = 0;
    for k in 1..x.len() {
        if x[k] > x[best] {
            best = k;
        }
    }
    x.iter_mut()
        .enumerate()
        .for_each(|(k, v)| *v = if k == best { 1.0 } else { 0.0 });
}

fn gumbel<R: Rng + ?Sized>(rng: &mut R) -> f32 {
    let u: f32 = rng.random_range(f32::EPSILON..1.0);
    -(-u.ln()).ln()
}

/// The networks: one actor and critic per agent, or one of each shared by all agents.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct MaddpgNets {
    /// Actors, one per agent (or one shared): observation → 5 logits.
    pub actors: Vec<Mlp>,
    /// Critics, one per agent (or one shared): all observations ⊕ all actions → Q.
    pub critics: Vec<Mlp>,
}

impl MaddpgNets {
    /// Whether one actor and critic serve all agents.
    pub fn shared(&self) -> bool {
        self.actors.len() == 1
    }

    /// Agent `i`'s actor.
    pub fn actor(&self, i: usize) -> &Mlp {
        &self.actors[if self.shared() { 0 } else { i }]
    }

    /// Agent `i`'s critic.
    pub fn critic(&self, i: usize) -> &Mlp {
        &self.critics[if self.shared() { 0 } else { i }]
    }

    /// Actions for all agents from observations `[N, od]`, as `[N, 5]` vectors: a Gumbel-softmax
    /// sample `softmax(ℓ + g)` (or `softmax(ℓ)` if `deterministic`) for the continuous env, or
    /// the one-hot of its argmax (`hard`, for the discrete env; the argmax of `ℓ` if
    /// `deterministic`).
    pub fn act<R: Rng + ?Sized>(
        &self,
        obs: &[f32],
        deterministic: bool,
        hard: bool,
        rng: &mut R,
        cache: &mut MlpCache,
        out: &mut [f32],
    ) -> Result<()> {
        let n = out.len() / ACTS;
        let od = obs.len() / n;
        for i in 0..n {
            let l = self.actor(i).forward(&obs[i * od..(i + 1) * od], 1, cache)?;
            let row = &mut out[i * ACTS..(i + 1) * ACTS];
            row.copy_from_slice(&l[..ACTS]);
            if !deterministic {
                for v in row.iter_mut() {
                    *v += gumbel(rng);
                }
            }
            softmax_row(row);
            if hard {
                one_hot_of_max(row);
            }
        }
        Ok(())
    }
}

fn to_indices(acts: &[f32], out: &mut [i64]) {
    for (o, row) in out.iter_mut().zip(acts.chunks(ACTS)) {
        *o = row.iter().position(|&v| v == 1.0).unwrap_or(0) as i64;
    }
}

/// A MADDPG learner on Simple Spread.
#[derive(Debug)]
pub struct Maddpg {
    /// The config.
    pub config: MaddpgConfig,
    /// The env's config.
    pub env: SpreadConfig,
    /// Online networks.
    pub nets: MaddpgNets,
    targets: MaddpgNets,
    actor_opt: Vec<Adam>,
    critic_opt: Vec<Adam>,
    buffer: ReplayBuffer,
    rng: ChaCha8Rng,
    global_step: u64,
    updates: u64,
    episodes: u64,
    recent: RecentEpisodes,
    seed: u64,
    ws: UpdateWs,
    venv: Option<VecSpread>,
    since_update: usize,
}

/// What a MADDPG checkpoint holds besides the config and the tensors (online and target
/// networks, replay buffer): enough to continue the run exactly.
#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct MaddpgState {
    /// The run's seed.
    pub seed: u64,
    /// The actors' Adam states.
    pub actor_opt: Vec<AdamState>,
    /// The critics' Adam states.
    pub critic_opt: Vec<AdamState>,
    /// The action, sampling and noise stream.
    pub rng: ChaCha8Rng,
    /// Env steps taken.
    pub global_step: u64,
    /// Updates done.
    pub updates: u64,
    /// Episodes finished.
    pub episodes: u64,
    /// Env steps since the last update.
    pub since_update: usize,
    /// The last (up to 100) finished episodes.
    pub recent: Vec<MaEpisode>,
    /// The envs, once training has started.
    pub envs: Option<VecParallelState>,
    /// Transitions in the replay buffer (stored as tensors `replay.*`).
    pub replay_len: usize,
    /// Where the replay buffer writes next.
    pub replay_next: usize,
}

#[derive(Debug, Default)]
struct UpdateWs {
    idx: Vec<usize>,
    x: Vec<f32>,
    xn: Vec<f32>,
    y: Vec<f32>,
    dq: Vec<f32>,
    dx: Vec<f32>,
    g: Vec<f32>,
    gscratch: Vec<f32>,
    logits: Vec<f32>,
    ta: Vec<f32>,
    soft: Vec<f32>,
    dl: Vec<f32>,
    obs_i: Vec<f32>,
    c1: MlpCache,
    c2: MlpCache,
}

impl Maddpg {
    /// A learner; all randomness from `seed`.
    pub fn new(config: MaddpgConfig, env: SpreadConfig, seed: u64) -> Result<Self> {
        config.validate()?;
        let probe = SimpleSpread::new(env)?;
        let (n, od) = (env.n, probe.obs_dim());
        let mut init = stream(seed, Purpose::Init, 0);
        let mut actors = Vec::with_capacity(n);
        let mut critics = Vec::with_capacity(n);
        let mut asz = vec![od];
        asz.extend_from_slice(&config.hidden);
        asz.push(ACTS);
        let mut csz = vec![n * od + n * ACTS];
        csz.extend_from_slice(&config.hidden);
        csz.push(1);
        for _ in 0..if config.share_params { 1 } else { n } {
            actors.push(Mlp::new(&asz, Activation::Relu, MlpInit::TorchDefault, &mut init)?);
            critics.push(Mlp::new(&csz, Activation::Tanh, MlpInit::TorchDefault, &mut init)?);
        }
        let nets = MaddpgNets { actors, critics };
        let adam = |np: usize| {
            Adam::new(
                AdamConfig {
                    lr: config.learning_rate as f32,
                    ..AdamConfig::default()
                },
                np,
            )
        };
        Ok(Maddpg {
            actor_opt: nets.actors.iter().map(|a| adam(a.num_params())).collect(),
            critic_opt: nets.critics.iter().map(|c| adam(c.num_params())).collect(),
            targets: nets.clone(),
            nets,
            buffer: ReplayBuffer::new(config.buffer_size, n, od),
            rng: stream(seed, Purpose::Action, 0),
            global_step: 0,
            updates: 0,
            episodes: 0,
            recent: RecentEpisodes::default(),
            seed,
            ws: UpdateWs::default(),
            venv: None,
            since_update: 0,
            config,
            env,
        })
    }

    /// The learner's state besides config and tensors ([`Maddpg::restore`] continues from it).
    pub fn state(&self) -> MaddpgState {
        MaddpgState {
            seed: self.seed,
            actor_opt: self.actor_opt.iter().map(|a| a.state().clone()).collect(),
            critic_opt: self.critic_opt.iter().map(|a| a.state().clone()).collect(),
            rng: self.rng.clone(),
            global_step: self.global_step,
            updates: self.updates,
            episodes: self.episodes,
            since_update: self.since_update,
            recent: self.recent.to_vec(),
            envs: self.venv.as_ref().and_then(|v| v.snapshot().ok()),
            replay_len: self.buffer.len,
            replay_next: self.buffer.next,
        }
    }

    /// The networks as named tensors: `actor_i`, `critic_i` (what evaluation loads), and
    /// `target_actor_i`, `target_critic_i` (for resuming).
    pub fn tensors(&self) -> Result<Vec<(String, candle_core::Tensor)>> {
        let mut t = Vec::new();
        for (prefix, nets) in [("", &self.nets), ("target_", &self.targets)] {
            for (i, a) in nets.actors.iter().enumerate() {
                t.extend(a.to_tensors(&format!("{prefix}actor_{i}"))?);
            }
            for (i, q) in nets.critics.iter().enumerate() {
                t.extend(q.to_tensors(&format!("{prefix}critic_{i}"))?);
            }
        }
        Ok(t)
    }

    /// The filled part of the replay buffer as named tensors (`replay.obs`, `replay.acts`,
    /// `replay.rews`, `replay.next_obs`, `replay.done`), about 500 bytes per transition for
    /// N = 3: a checkpoint keeps them in their own file.
    pub fn replay_tensors(&self) -> Result<Vec<(String, candle_core::Tensor)>> {
        let mut t = Vec::new();
        let b = &self.buffer;
        let len = b.len;
        let dev = candle_core::Device::Cpu;
        let mk = |v: &[f32], w: usize| candle_core::Tensor::from_slice(&v[..len * w], (len, w), &dev);
        let done: Vec<f32> = b.done[..len].iter().map(|&d| d as u8 as f32).collect();
        for (name, v, w) in [
            ("replay.obs", &b.obs[..], b.obs_w),
            ("replay.acts", &b.acts[..], b.n * ACTS),
            ("replay.rews", &b.rews[..], b.n),
            ("replay.next_obs", &b.next_obs[..], b.obs_w),
            ("replay.done", &done[..], 1),
        ] {
            t.push((name.to_string(), mk(v, w)?));
        }
        Ok(t)
    }

    /// Rebuilds a learner from its config, env, a checkpoint's tensors ([`Maddpg::tensors`]),
    /// replay buffer ([`Maddpg::replay_tensors`]) and state; training then continues exactly
    /// as if it had not stopped.
    pub fn restore(
        config: MaddpgConfig,
        env: SpreadConfig,
        tensors: &HashMap<String, candle_core::Tensor>,
        replay: &HashMap<String, candle_core::Tensor>,
        state: MaddpgState,
    ) -> Result<Self> {
        let mut l = Maddpg::new(config, env, state.seed)?;
        let bad = |reason: String| AlgoError::Checkpoint {
            path: "model".into(),
            reason,
        };
        for (prefix, nets) in [("", &mut l.nets), ("target_", &mut l.targets)] {
            for (i, a) in nets.actors.iter_mut().enumerate() {
                a.load_tensors(&format!("{prefix}actor_{i}"), tensors)?;
            }
            for (i, q) in nets.critics.iter_mut().enumerate() {
                q.load_tensors(&format!("{prefix}critic_{i}"), tensors)?;
            }
        }
        if state.actor_opt.len() != l.actor_opt.len() || state.critic_opt.len() != l.critic_opt.len() {
            return Err(bad(format!(
                "{} actor and {} critic optimiser states for {} networks each",
                state.actor_opt.len(),
                state.critic_opt.len(),
                l.actor_opt.len()
            )));
        }
        for (st, net) in state
            .actor_opt
            .iter()
            .zip(&l.nets.actors)
            .chain(state.critic_opt.iter().zip(&l.nets.critics))
        {
            if st.m.len() != net.num_params() || st.v.len() != net.num_params() {
                return Err(bad(format!(
                    "an optimiser state has {} moments for a network of {} parameters",
                    st.m.len(),
                    net.num_params()
                )));
            }
        }
        let adam_cfg = *l.actor_opt[0].config();
        l.actor_opt = state
            .actor_opt
            .into_iter()
            .map(|s| Adam::from_state(adam_cfg, s))
            .collect::<std::result::Result<_, _>>()?;
        l.critic_opt = state
            .critic_opt
            .into_iter()
            .map(|s| Adam::from_state(adam_cfg, s))
            .collect::<std::result::Result<_, _>>()?;
        let b = &mut l.buffer;
        let len = state.replay_len;
        if len > b.cap || state.replay_next >= b.cap.max(1) || (len < b.cap && state.replay_next != len) {
            return Err(bad(format!(
                "replay buffer of {len} transitions (next {}) does not fit its capacity {}",
                state.replay_next, b.cap
            )));
        }
        let load = |name: &str, w: usize, dst: &mut [f32]| -> Result<()> {
            let t = replay
                .get(name)
                .ok_or_else(|| bad(format!("missing tensor `{name}`")))?;
            let v: Vec<f32> = t.flatten_all()?.to_vec1()?;
            if v.len() != len * w {
                return Err(bad(format!("`{name}` holds {} values, expected {}", v.len(), len * w)));
            }
            dst[..len * w].copy_from_slice(&v);
            Ok(())
        };
        let (ow, aw, n) = (b.obs_w, b.n * ACTS, b.n);
        load("replay.obs", ow, &mut b.obs)?;
        load("replay.acts", aw, &mut b.acts)?;
        load("replay.rews", n, &mut b.rews)?;
        load("replay.next_obs", ow, &mut b.next_obs)?;
        let mut done = vec![0f32; len];
        load("replay.done", 1, &mut done)?;
        for (d, &v) in b.done.iter_mut().zip(&done) {
            *d = v != 0.0;
        }
        b.len = len;
        b.next = state.replay_next;
        l.rng = state.rng;
        l.global_step = state.global_step;
        l.updates = state.updates;
        l.episodes = state.episodes;
        l.since_update = state.since_update;
        l.recent = RecentEpisodes::from_vec(state.recent);
        l.venv = restored_envs(env, l.config.num_envs, state.envs.as_ref())?;
        Ok(l)
    }

    /// Env steps taken.
    pub fn global_step(&self) -> u64 {
        self.global_step
    }
    /// Gradient updates done (each updates every agent once).
    pub fn updates(&self) -> u64 {
        self.updates
    }
    /// Episodes finished.
    pub fn episodes(&self) -> u64 {
        self.episodes
    }

    /// `Q_i` for a batch of joint inputs `[b, N·od + N·5]` (observations, then actions).
    pub fn q_values(&self, agent: usize, inputs: &[f32], b: usize) -> Result<Vec<f32>> {
        let x = self.critic_order(agent, inputs, false);
        let mut c = MlpCache::default();
        Ok(self.nets.critic(agent).forward(&x, b, &mut c)?.to_vec())
    }

    /// Joint rows `[o_1..o_N, a_1..a_N]` put into (or, with `back`, taken out of) agent
    /// `agent`'s critic order (a no-op without parameter sharing).
    fn critic_order(&self, agent: usize, inputs: &[f32], back: bool) -> Vec<f32> {
        let n = self.env.n;
        let (od, shared) = (6 * n, self.config.share_params);
        let (ow, xw) = (n * od, n * od + n * ACTS);
        let mut out = inputs.to_vec();
        if !shared {
            return out;
        }
        for (src, dst) in inputs.chunks(xw).zip(out.chunks_mut(xw)) {
            for p in 0..n {
                let j = critic_slot(true, n, agent, p);
                let (from, to) = if back { (p, j) } else { (j, p) };
                dst[to * od..(to + 1) * od].copy_from_slice(&src[from * od..(from + 1) * od]);
                dst[ow + to * ACTS..ow + (to + 1) * ACTS]
                    .copy_from_slice(&src[ow + from * ACTS..ow + (from + 1) * ACTS]);
            }
        }
        out
    }

    /// `∂Q_i/∂a_j` for every agent j at a batch of joint inputs `[b, N·od + N·5]`: returns
    /// `[b, N·5]` (row-major by agent, then action component). Second derivatives follow by
    /// finite differences of this (candle's double backward is not usable).
    pub fn action_gradients(&self, agent: usize, inputs: &[f32], b: usize) -> Result<Vec<f32>> {
        let critic = self.nets.critic(agent);
        let w = critic.input_dim();
        let n = self.env.n;
        let obs_w = w - n * ACTS;
        let x = self.critic_order(agent, inputs, false);
        let mut c = MlpCache::default();
        critic.forward(&x, b, &mut c)?;
        let mut scratch = vec![0f32; critic.num_params()];
        let mut dx = vec![0f32; b * w];
        critic.backward_full(&x, &mut c, &vec![1.0; b], &mut scratch, Some(&mut dx))?;
        let dx = self.critic_order(agent, &dx, true);
        Ok(dx.chunks(w).flat_map(|r| r[obs_w..].to_vec()).collect())
    }

    /// Trains until `total_steps` env steps in all (a restored learner continues from its
    /// step); `on_row` sees a metrics row every 100 finished episodes and at the end, and may
    /// stop training. Rows are where the CLI writes checkpoints, so a run resumed from one
    /// continues exactly.
    pub fn learn(&mut self, total_steps: u64, on_row: &mut dyn FnMut(&Metrics, &Maddpg) -> Control) -> Result<()> {
        let c = self.config.clone();
        let n = self.env.n;
        let m = c.num_envs;
        ensure_envs(&mut self.venv, self.env, m, self.seed)?;
        let od = 6 * n;
        let w = n * od;
        let hard = !self.env.continuous;
        let mut acts = vec![0f32; m * n * ACTS];
        let mut idx = vec![0i64; m * n];
        let mut cache = MlpCache::default();
        let mut prev_obs = vec![0f32; m * w];
        let start = Instant::now();
        let start_step = self.global_step;
        let (mut qsum, mut lsum, mut usum) = (0f64, 0f64, 0usize);
        let mut next_row = self.episodes + 100;
        let mut stopped = false;
        while self.global_step < total_steps && !stopped {
            let venv = self.venv.as_mut().expect("the envs were made above");
            for e in 0..m {
                self.nets.act(
                    &venv.obs()[e * w..(e + 1) * w],
                    false,
                    hard,
                    &mut self.rng,
                    &mut cache,
                    &mut acts[e * n * ACTS..(e + 1) * n * ACTS],
                )?;
            }
            prev_obs.copy_from_slice(venv.obs());
            if hard {
                to_indices(&acts, &mut idx);
                venv.step(MultiAction::Discrete(&idx))?;
            } else {
                venv.step(MultiAction::Continuous(&acts))?;
            }
            for e in 0..m {
                let next: &[f32] = if venv.ended()[e] {
                    &venv.final_obs()[e * w..(e + 1) * w]
                } else {
                    &venv.obs()[e * w..(e + 1) * w]
                };
                self.buffer.push(
                    &prev_obs[e * w..(e + 1) * w],
                    &acts[e * n * ACTS..(e + 1) * n * ACTS],
                    &venv.rewards()[e * n..(e + 1) * n],
                    next,
                    false,
                );
            }
            for &(_, ep) in venv.finished() {
                self.episodes += 1;
                self.recent.push(ep);
            }
            self.global_step += m as u64;
            self.since_update += m;
            if self.buffer.len() >= c.learning_starts.max(c.batch_size) && self.since_update >= c.train_every {
                self.since_update = 0;
                let (q, l) = self.update()?;
                qsum += q;
                lsum += l;
                usum += 1;
            }
            // A metrics row every 100 episodes and at the end.
            if self.episodes >= next_row || self.global_step >= total_steps {
                next_row = self.episodes + 100;
                let row = self.row(start.elapsed().as_secs_f64(), start_step, (qsum, lsum, usum));
                (qsum, lsum, usum) = (0.0, 0.0, 0);
                stopped = on_row(&row, self) == Control::Stop;
            }
        }
        Ok(())
    }

    fn row(&self, elapsed: f64, start_step: u64, (qsum, lsum, usum): (f64, f64, usize)) -> Metrics {
        let mut row = Metrics::new();
        row.push("global_step", self.global_step as f64);
        row.push("update", self.updates as f64);
        row.push("episodes", self.episodes as f64);
        self.recent.write_metrics(&mut row);
        let k = usum.max(1) as f64;
        row.push("q_mean", if usum == 0 { f64::NAN } else { qsum / k });
        row.push("critic_loss", if usum == 0 { f64::NAN } else { lsum / k });
        row.push("sps", (self.global_step - start_step) as f64 / elapsed.max(1e-9));
        row.push("time_elapsed", elapsed);
        row
    }

    /// One update of every critic and actor, then the targets. Without parameter sharing each
    /// agent's critic and actor learn from their own minibatch of `batch_size` transitions;
    /// with it, the shared critic and actor learn from one minibatch of `batch_size`
    /// transitions seen from every agent's side (`N · batch_size` rows). Returns the mean Q and
    /// critic loss over the updates.
    fn update(&mut self) -> Result<(f64, f64)> {
        let mut c = self.config.clone();
        // With the continuous env the actions are the soft samples themselves.
        c.straight_through &= !self.env.continuous;
        let n = self.env.n;
        let od = 6 * n;
        let ow = n * od;
        let aw = n * ACTS;
        let xw = ow + aw;
        let bsz = c.batch_size;
        let shared = c.share_params;
        // The agents each critic/actor pair learns for: all of them (shared), or one each.
        let groups = if shared { 1 } else { n };
        let egos_of = |gi: usize| if shared { 0..n } else { gi..gi + 1 };
        // Where the ego's own observation and action sit in its critic rows.
        let own_slot = |ego: usize| if shared { 0 } else { ego };
        let mut ws = std::mem::take(&mut self.ws);
        let (mut qm, mut lm) = (0f64, 0f64);
        for gi in 0..groups {
            let egos = egos_of(gi);
            let rows = egos.len() * bsz;
            ws.idx.clear();
            for _ in 0..bsz {
                ws.idx.push(self.rng.random_range(0..self.buffer.len()));
            }
            let buf = &self.buffer;
            // Next joint actions ã' from the target actors, [bsz, N·5].
            ws.ta.resize(bsz * aw, 0.0);
            for j in 0..n {
                ws.obs_i.resize(bsz * od, 0.0);
                for (k, &t) in ws.idx.iter().enumerate() {
                    ws.obs_i[k * od..(k + 1) * od]
                        .copy_from_slice(&buf.next_obs[t * ow + j * od..t * ow + (j + 1) * od]);
                }
                let l = self.targets.actor(j).forward(&ws.obs_i, bsz, &mut ws.c1)?;
                for k in 0..bsz {
                    let row = &mut ws.ta[k * aw + j * ACTS..k * aw + (j + 1) * ACTS];
                    for (r, &lv) in row.iter_mut().zip(&l[k * ACTS..(k + 1) * ACTS]) {
                        *r = lv + gumbel(&mut self.rng);
                    }
                    softmax_row(row);
                    if c.straight_through {
                        one_hot_of_max(row);
                    }
                }
            }
            // Critic inputs, one row per (ego agent, transition): x = [o, a], x' = [o', ã'],
            // agents in the critic's order for that ego.
            ws.x.resize(rows * xw, 0.0);
            ws.xn.resize(rows * xw, 0.0);
            for (ei, ego) in egos.clone().enumerate() {
                for (k, &t) in ws.idx.iter().enumerate() {
                    let r = ei * bsz + k;
                    for p in 0..n {
                        let j = critic_slot(shared, n, ego, p);
                        let (o, a) = (r * xw + p * od, r * xw + ow + p * ACTS);
                        ws.x[o..o + od].copy_from_slice(&buf.obs[t * ow + j * od..t * ow + (j + 1) * od]);
                        ws.xn[o..o + od].copy_from_slice(&buf.next_obs[t * ow + j * od..t * ow + (j + 1) * od]);
                        ws.x[a..a + ACTS].copy_from_slice(&buf.acts[t * aw + j * ACTS..t * aw + (j + 1) * ACTS]);
                        ws.xn[a..a + ACTS].copy_from_slice(&ws.ta[k * aw + j * ACTS..k * aw + (j + 1) * ACTS]);
                    }
                }
            }
            let qn = self.targets.critics[gi].forward(&ws.xn, rows, &mut ws.c1)?;
            ws.y.clear();
            for ego in egos.clone() {
                for (k, &t) in ws.idx.iter().enumerate() {
                    let r = ws.y.len();
                    debug_assert_eq!(r % bsz, k);
                    let nd = if buf.done[t] { 0.0 } else { 1.0 };
                    ws.y.push(buf.rews[t * n + ego] + c.gamma as f32 * nd * qn[r]);
                }
            }
            let critic = &self.nets.critics[gi];
            let q = critic.forward(&ws.x, rows, &mut ws.c2)?;
            ws.dq.clear();
            let mut loss = 0f64;
            let mut qs = 0f64;
            for r in 0..rows {
                let e = q[r] - ws.y[r];
                loss += (e * e) as f64;
                qs += q[r] as f64;
                ws.dq.push(2.0 * e / rows as f32);
            }
            loss /= rows as f64;
            if !loss.is_finite() {
                return Err(AlgoError::NonFinite {
                    update: self.updates + 1,
                    term: "critic loss",
                });
            }
            qm += qs / rows as f64;
            lm += loss;
            ws.g.clear();
            ws.g.resize(critic.num_params(), 0.0);
            critic.backward(&ws.x, &mut ws.c2, &ws.dq, &mut ws.g)?;
            clip_grad_norm(&mut [&mut ws.g[..]], c.max_grad_norm as f32);
            self.critic_opt[gi].step(&mut [(self.nets.critics[gi].params_mut(), &ws.g[..])])?;

            // Actor: replace the ego's action by a Gumbel-softmax sample of the current actor.
            ws.obs_i.resize(rows * od, 0.0);
            for (ei, ego) in egos.clone().enumerate() {
                let p = own_slot(ego);
                for k in 0..bsz {
                    let r = ei * bsz + k;
                    ws.obs_i[r * od..(r + 1) * od].copy_from_slice(&ws.x[r * xw + p * od..r * xw + (p + 1) * od]);
                }
            }
            let actor = &self.nets.actors[gi];
            let l = actor.forward(&ws.obs_i, rows, &mut ws.c1)?;
            ws.logits.clear();
            ws.logits.extend_from_slice(l);
            ws.soft.resize(rows * ACTS, 0.0);
            for r in 0..rows {
                let p = own_slot(egos.start + r / bsz);
                let s = &mut ws.soft[r * ACTS..(r + 1) * ACTS];
                for (sv, &lv) in s.iter_mut().zip(&ws.logits[r * ACTS..(r + 1) * ACTS]) {
                    *sv = lv + gumbel(&mut self.rng);
                }
                softmax_row(s);
                let a = &mut ws.x[r * xw + ow + p * ACTS..r * xw + ow + (p + 1) * ACTS];
                a.copy_from_slice(s);
                if c.straight_through {
                    // Forward with the one-hot; the gradient below goes through the soft sample.
                    one_hot_of_max(a);
                }
            }
            let critic = &self.nets.critics[gi];
            critic.forward(&ws.x, rows, &mut ws.c2)?;
            ws.dq.clear();
            ws.dq.resize(rows, -1.0 / rows as f32);
            ws.gscratch.resize(critic.num_params(), 0.0);
            ws.dx.resize(rows * xw, 0.0);
            critic.backward_full(&ws.x, &mut ws.c2, &ws.dq, &mut ws.gscratch, Some(&mut ws.dx))?;
            ws.dl.resize(rows * ACTS, 0.0);
            let reg = 2.0 * c.logit_reg as f32 / (rows * ACTS) as f32;
            for r in 0..rows {
                let p = own_slot(egos.start + r / bsz);
                let s = &ws.soft[r * ACTS..(r + 1) * ACTS];
                let da = &ws.dx[r * xw + ow + p * ACTS..r * xw + ow + (p + 1) * ACTS];
                let dot: f32 = s.iter().zip(da).map(|(a, b)| a * b).sum();
                for a in 0..ACTS {
                    ws.dl[r * ACTS + a] = s[a] * (da[a] - dot) + reg * ws.logits[r * ACTS + a];
                }
            }
            ws.g.clear();
            ws.g.resize(actor.num_params(), 0.0);
            actor.backward(&ws.obs_i, &mut ws.c1, &ws.dl, &mut ws.g)?;
            clip_grad_norm(&mut [&mut ws.g[..]], c.max_grad_norm as f32);
            self.actor_opt[gi].step(&mut [(self.nets.actors[gi].params_mut(), &ws.g[..])])?;
        }
        let tau = c.tau as f32;
        let polyak = |t: &mut Mlp, o: &Mlp| {
            for (a, b) in t.params_mut().iter_mut().zip(o.params()) {
                *a = (1.0 - tau) * *a + tau * b;
            }
        };
        for (t, o) in self.targets.actors.iter_mut().zip(&self.nets.actors) {
            polyak(t, o);
        }
        for (t, o) in self.targets.critics.iter_mut().zip(&self.nets.critics) {
            polyak(t, o);
        }
        self.updates += 1;
        self.ws = ws;
        let g = groups as f64;
        Ok((qm / g, lm / g))
    }
}

/// The agent at position `p` of the critic's input for agent `ego`: with a shared critic the
/// agents come in cyclic order starting from the ego (so the one critic knows whose value it
/// gives); with per-agent critics in index order.
fn critic_slot(shared: bool, n: usize, ego: usize, p: usize) -> usize {
    if shared {
        (ego + p) % n
    } else {
        p
    }
}

/// Runs `episodes` episodes of the MADDPG actors on Simple Spread (episode k reset with
/// `seed + k`), greedy (argmax logit) or sampled. `on_step` sees the env after every step.
pub fn evaluate_maddpg(
    nets: &MaddpgNets,
    env: SpreadConfig,
    episodes: usize,
    seed: u64,
    deterministic: bool,
    on_step: &mut dyn FnMut(usize, &SimpleSpread),
) -> Result<Vec<MaEpisode>> {
    let e = SimpleSpread::new(env)?;
    let n = env.n;
    if !(nets.shared() || nets.actors.len() == n) || nets.actors[0].input_dim() != e.obs_dim() {
        return Err(AlgoError::Config {
            field: "env",
            reason: format!(
                "the policy has {} agents reading {} values; this env has {n} agents reading {}",
                nets.actors.len(),
                nets.actors.first().map(|a| a.input_dim()).unwrap_or(0),
                e.obs_dim()
            ),
        });
    }
    let mut rng = stream(seed, Purpose::Eval, 0);
    let mut cache = MlpCache::default();
    let mut soft = vec![0f32; n * ACTS];
    crate::marl::run_spread_episodes(
        env,
        episodes,
        seed,
        &mut |obs, idx, cont| {
            nets.act(obs, deterministic, !env.continuous, &mut rng, &mut cache, &mut soft)?;
            if env.continuous {
                cont.copy_from_slice(&soft);
            } else {
                to_indices(&soft, idx);
            }
            Ok(())
        },
        on_step,
    )
}

#[cfg(test)]
mod tests {
    use super::*;

    /// `∂Q_i/∂a_j` from the critic's backward pass equals central finite differences (the
    /// critic is smooth: tanh hidden layers).
    #[test]
    fn action_gradients_match_finite_differences() {
        for share_params in [false, true] {
            let cfg = MaddpgConfig {
                share_params,
                ..Default::default()
            };
            action_gradients_match_fd(&Maddpg::new(cfg, SpreadConfig::default(), 0).unwrap());
        }
    }

    fn action_gradients_match_fd(m: &Maddpg) {
        let w = m.nets.critic(1).input_dim();
        let mut rng = stream(1, Purpose::Other(5), 0);
        let x: Vec<f32> = (0..2 * w).map(|_| rng.random_range(-1.0..1.0)).collect();
        let g = m.action_gradients(1, &x, 2).unwrap();
        assert_eq!(g.len(), 2 * 15);
        let ow = w - 15;
        for r in 0..2 {
            for j in 0..15 {
                let eps = 1e-2f32;
                let (mut a, mut b) = (x.clone(), x.clone());
                a[r * w + ow + j] += eps;
                b[r * w + ow + j] -= eps;
                let fd = (m.q_values(1, &a, 2).unwrap()[r] - m.q_values(1, &b, 2).unwrap()[r]) / (2.0 * eps);
                assert!(
                    (fd - g[r * 15 + j]).abs() < 1e-3,
                    "row {r} a{j}: fd {fd} vs {}",
                    g[r * 15 + j]
                );
            }
        }
    }

    /// The shared critic gives agent i's value from agent i's side: `Q_1` at a joint input
    /// equals `Q_0` at the input with the agents renumbered so that agent 1 comes first.
    #[test]
    fn shared_critic_reads_from_the_ego_agent() {
        let cfg = MaddpgConfig {
            share_params: true,
            ..Default::default()
        };
        let m = Maddpg::new(cfg, SpreadConfig::default(), 3).unwrap();
        assert!(m.nets.shared() && m.nets.critics.len() == 1);
        let (od, n) = (18, 3);
        let w = n * od + n * ACTS;
        let mut rng = stream(2, Purpose::Other(5), 0);
        let x: Vec<f32> = (0..w).map(|_| rng.random_range(-1.0..1.0)).collect();
        let mut rot = x.clone();
        for p in 0..n {
            let j = (1 + p) % n;
            rot[p * od..(p + 1) * od].copy_from_slice(&x[j * od..(j + 1) * od]);
            rot[n * od + p * ACTS..n * od + (p + 1) * ACTS]
                .copy_from_slice(&x[n * od + j * ACTS..n * od + (j + 1) * ACTS]);
        }
        let (q1, q0) = (m.q_values(1, &x, 1).unwrap()[0], m.q_values(0, &rot, 1).unwrap()[0]);
        assert_eq!(q1, q0);
        assert_ne!(q1, m.q_values(0, &x, 1).unwrap()[0]);
    }

    /// Short runs on the discrete and the continuous env, with and without parameter sharing,
    /// train, evaluate, and repeat exactly with the same seed.
    #[test]
    fn short_runs_are_deterministic() {
        for (continuous, share_params) in [(false, false), (true, false), (false, true)] {
            let env = SpreadConfig {
                continuous,
                ..SpreadConfig::default()
            };
            let cfg = MaddpgConfig {
                batch_size: 32,
                buffer_size: 1000,
                learning_starts: 64,
                train_every: 10,
                share_params,
                ..Default::default()
            };
            let run = || {
                let mut m = Maddpg::new(cfg.clone(), env, 4).unwrap();
                let mut last = Metrics::new();
                m.learn(300, &mut |r, _| {
                    last = r.clone();
                    Control::Continue
                })
                .unwrap();
                assert!(m.updates() > 0);
                let eps = evaluate_maddpg(&m.nets, env, 2, 0, true, &mut |_, _| {}).unwrap();
                (
                    last.get("recent_return"),
                    last.get("critic_loss"),
                    eps[0].mean_agent_return,
                )
            };
            let (a, b) = (run(), run());
            assert_eq!(a, b);
            assert!(a.2.is_finite() && a.1.unwrap().is_finite());
        }
    }

    /// The first 50 000 env steps of the default (`tuned`) MADDPG run, seed 0 (about 4 900
    /// updates after learning starts at 25 600), end clearly above the always-no-op policy:
    /// the mean per-agent return of the last 100 training episodes is above −22.0, against
    /// −24.2 for no-op and −26.4 for random (the issue's calibration of PettingZoo's
    /// simple_spread_v3). Measured: −20.27, the same row as the documented run's.
    #[test]
    fn maddpg_short_run_beats_noop() {
        let mut l = Maddpg::new(MaddpgConfig::tuned(), SpreadConfig::default(), 0).unwrap();
        let mut last = Metrics::new();
        l.learn(50_000, &mut |m, _| {
            last = m.clone();
            Control::Continue
        })
        .unwrap();
        assert_eq!(last.get("global_step"), Some(50_000.0));
        let r = last.get("recent_return").unwrap();
        assert!(r > -22.0, "recent return {r}");
    }

    #[test]
    fn bad_configs() {
        let bad = [
            MaddpgConfig {
                tau: 0.0,
                ..Default::default()
            },
            MaddpgConfig {
                batch_size: 10,
                buffer_size: 5,
                ..Default::default()
            },
            MaddpgConfig {
                learning_rate: f64::NAN,
                ..Default::default()
            },
        ];
        for c in bad {
            assert!(Maddpg::new(c, SpreadConfig::default(), 0).is_err());
        }
    }
}
