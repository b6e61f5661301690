//! The SAC family on one learner: SAC (Haarnoja et al. 2018, as CleanRL's
//! `sac_continuous_action.py` codes it), DSAC-T (Duan et al., as its official code
//! `Jingliang-Duan/DSAC-v2` computes it) and STAC (Özalp 2026, as `rl-warehouse`'s `stac.py`
//! computes it). They share everything but the critic and a few schedule choices, so they are
//! one [`Sac`] learner configured by [`SacConfig`] with three presets ([`SacConfig::sac`],
//! [`SacConfig::dsac_t`], [`SacConfig::stac`]):
//!
//! - a tanh-squashed Gaussian actor ([`SquashedActor`]) and the critics of
//!   [`CriticKind`] on `[o, a]`, target critics by Polyak averaging, and (DSAC-T) a target
//!   policy for the next actions;
//! - the replay buffer and Polyak step of [`crate::offpolicy`], the layer MADDPG uses;
//! - the temperature α: learned against the target entropy `−dim(A)` through `log α` with
//!   CleanRL's loss `−α·(log π + H̄)` (`dual`) or DSAC-T's `−log α·(log π + H̄)` (`dual-log`),
//!   STAC's multiplicative step `α ← α·exp(lr·α·(H̄ + mean log π))` (`multiplicative`), or
//!   fixed.
//!
//! A gradient step every `train_every` env steps once the buffer holds more than
//! `learning_starts` transitions; the actor (and α) every `policy_delay` gradient steps,
//! `policy_repeats` times; the targets every `target_delay` gradient steps. With
//! `actor_first` the actor's gradient is taken on the critics before this step's critic update
//! (DSAC-T's order); otherwise after it (CleanRL's). The time limit is not a terminal state:
//! the next observation of a truncated episode is its last one, and its target bootstraps.
//!
//! A metrics row every `log_every` env steps; each [`taper_train::Learner::step`] runs the env
//! steps up to the next row.

mod actor;
mod critic;
mod net;
mod probe;

pub use actor::{ActorSamples, SquashedActor};
pub use critic::{CriticKind, CriticWs, DropoutKey, NextRow, Readout, TargetParams};
pub use net::{Net, NetCache};
pub use probe::{value_bias, ValueBias};

use crate::error::{AlgoError, Result};
use crate::offpolicy::{polyak_params, ReplayBuffer, ReplayPosition};
use crate::recent::RecentEpisodes;
use rand::Rng;
use rand_chacha::ChaCha8Rng;
use serde::{Deserialize, Serialize};
use std::time::Instant;
use taper_critics::gaussian::SigmaEma;
use taper_critics::{Categorical, Flow};
use taper_envs::wrappers::EpisodeRecord;
use taper_envs::{Env, Kwargs, Space, VecAction, VecEnv};
use taper_tensor::mlp::{Activation, Mlp, MlpInit};
use taper_tensor::norm_mlp::NormMlp;
use taper_tensor::optim::{Adam, AdamConfig, AdamState};
use taper_tensor::rng::{stream, Purpose};
use taper_tensor::squashed::LogStdBound;
use taper_train::checkpoint::Checkpoint;
use taper_train::eval::{EnvView, EvalOptions, Evaluation};
use taper_train::{Learner, LearnerState, Metrics, Progress, RunInfo};

/// How the temperature α learns. See the module doc.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "kebab-case")]
pub enum AlphaUpdate {
    /// Adam on `log α` with the loss `−α·(log π + H̄)` on a fresh sample (CleanRL's SAC; STAC's
    /// paper).
    Dual,
    /// Adam on `log α` with the loss `−log α·(log π + H̄)` on the actor step's sample (DSAC-T's
    /// code).
    DualLog,
    /// `α ← α·exp(lr·α·(H̄ + mean log π))` on the actor step's sample (STAC's code).
    Multiplicative,
    /// α stays at its initial value.
    Fixed,
}

/// The SAC family's settings. The field docs give each preset's value.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct SacConfig {
    /// The critic (`twin`, `dsac-t`, `stac`, `categorical`, `flow`).
    pub critic: CriticKind,
    /// The categorical critic's support and target encoding (`[sac.q_support]`: `min`, `max`,
    /// `bins`, `encoding`), needed by `critic = "categorical"` only.
    pub q_support: Option<Categorical>,
    /// The flow critic's settings (`[sac.flow]`: `noise` and `support` required; `steps`,
    /// `samples`, `z_bins`, `z_sigma`, `time_features` default to floq's), needed by
    /// `critic = "flow"` only.
    pub flow: Option<Flow>,
    /// Adam learning rate of the actor (SAC 3e-4, DSAC-T 1e-4, STAC 3e-4).
    pub actor_lr: f64,
    /// Adam learning rate of the critics (SAC 1e-3, DSAC-T 1e-4, STAC 3e-4).
    pub critic_lr: f64,
    /// Learning rate of α (SAC 1e-3, DSAC-T 3e-4, STAC 3e-4).
    pub alpha_lr: f64,
    /// Discount γ (0.99).
    pub gamma: f64,
    /// Polyak rate τ (0.005).
    pub tau: f64,
    /// Minibatch (256).
    pub batch_size: usize,
    /// Replay capacity (1e6).
    pub buffer_size: usize,
    /// Transitions stored before learning starts (SAC 5000, DSAC-T and STAC 10 000).
    pub learning_starts: usize,
    /// Uniform random actions until learning starts (SAC, STAC: true; DSAC-T: false, its
    /// warm-up samples the initial policy).
    pub random_starts: bool,
    /// Env steps per gradient step (SAC, STAC 1; DSAC-T 20, its sampler's batch).
    pub train_every: usize,
    /// Gradient steps between actor updates (SAC 2, DSAC-T 2, STAC 1).
    pub policy_delay: usize,
    /// Actor updates each time (SAC 2, to keep one per gradient step; DSAC-T, STAC 1).
    pub policy_repeats: usize,
    /// Gradient steps between target updates (SAC, STAC 1; DSAC-T 2).
    pub target_delay: usize,
    /// Next actions from a Polyak-averaged target policy (DSAC-T: true).
    pub target_policy: bool,
    /// The actor's gradient on the critics before their update (DSAC-T: true).
    pub actor_first: bool,
    /// Hidden widths of actor and critics (SAC, STAC 256 × 2; DSAC-T 256 × 3).
    pub hidden: Vec<usize>,
    /// Hidden activation (SAC, STAC `relu`; DSAC-T `gelu`).
    pub activation: Activation,
    /// STAC's hidden blocks, `Linear → Dropout → LayerNorm → ReLU`, in actor and critics
    /// (STAC: true; needs `relu`).
    pub layer_norm: bool,
    /// Dropout probability of the actor's blocks (STAC 0; needs `layer_norm`).
    pub actor_dropout: f64,
    /// Dropout probability of the critics' blocks, target critics included (STAC 0.01; needs
    /// `layer_norm`).
    pub critic_dropout: f64,
    /// The actor's log-std bound (SAC tanh into [−5, 2]; DSAC-T clamp to [−20, 0.5]; STAC
    /// `σ = softplus(max(raw, −5))`).
    pub log_std: LogStdBound,
    /// Initial α (SAC 1, CleanRL's `log α = 0`; DSAC-T e, its `log α = 1`; STAC 0.2).
    pub alpha: f64,
    /// How α learns.
    pub alpha_update: AlphaUpdate,
    /// Target entropy H̄ (`None`: `−dim(A)`).
    pub target_entropy: Option<f64>,
    /// STAC's pessimism β in its target and actor value (STAC 0.25).
    pub beta: f64,
    /// Parallel envs (1).
    pub num_envs: usize,
    /// Env steps between metrics rows (1000).
    pub log_every: usize,
    /// Env steps between measurements of the critic's bias against Monte-Carlo returns
    /// ([`value_bias`], columns `q_estimate`, `mc_return`, `q_bias`, `q_bias_se`), a multiple
    /// of `log_every` (0: never; the default).
    pub probe_every: usize,
    /// Episodes per bias measurement (5).
    pub probe_episodes: usize,
}

impl Default for SacConfig {
    fn default() -> Self {
        Self::sac()
    }
}

impl SacConfig {
    /// SAC as CleanRL's `sac_continuous_action.py`.
    pub fn sac() -> Self {
        SacConfig {
            critic: CriticKind::Twin,
            q_support: None,
            flow: None,
            actor_lr: 3e-4,
            critic_lr: 1e-3,
            alpha_lr: 1e-3,
            gamma: 0.99,
            tau: 0.005,
            batch_size: 256,
            buffer_size: 1_000_000,
            learning_starts: 5000,
            random_starts: true,
            train_every: 1,
            policy_delay: 2,
            policy_repeats: 2,
            target_delay: 1,
            target_policy: false,
            actor_first: false,
            hidden: vec![256, 256],
            activation: Activation::Relu,
            layer_norm: false,
            actor_dropout: 0.0,
            critic_dropout: 0.0,
            log_std: LogStdBound::cleanrl(),
            alpha: 1.0,
            alpha_update: AlphaUpdate::Dual,
            target_entropy: None,
            beta: 0.0,
            num_envs: 1,
            log_every: 1000,
            probe_every: 0,
            probe_episodes: 5,
        }
    }

    /// DSAC-T as its official code runs it (`dsac_v2.py` with the off-serial trainer).
    pub fn dsac_t() -> Self {
        SacConfig {
            critic: CriticKind::DsacT,
            actor_lr: 1e-4,
            critic_lr: 1e-4,
            alpha_lr: 3e-4,
            learning_starts: 10_000,
            random_starts: false,
            train_every: 20,
            policy_delay: 2,
            policy_repeats: 1,
            target_delay: 2,
            target_policy: true,
            actor_first: true,
            hidden: vec![256, 256, 256],
            activation: Activation::Gelu,
            log_std: LogStdBound::dsac_t(),
            alpha: std::f64::consts::E,
            alpha_update: AlphaUpdate::DualLog,
            ..Self::sac()
        }
    }

    /// STAC as `rl-warehouse`'s `stac.py` runs it: one Gaussian critic, its dropout and
    /// LayerNorm blocks (critic dropout 0.01, the paper's most common setting), β = 0.25, the
    /// multiplicative α step.
    pub fn stac() -> Self {
        SacConfig {
            critic: CriticKind::Stac,
            actor_lr: 3e-4,
            critic_lr: 3e-4,
            alpha_lr: 3e-4,
            learning_starts: 10_000,
            policy_delay: 1,
            policy_repeats: 1,
            log_std: LogStdBound::stac(),
            layer_norm: true,
            critic_dropout: 0.01,
            alpha: 0.2,
            alpha_update: AlphaUpdate::Multiplicative,
            beta: 0.25,
            ..Self::sac()
        }
    }

    /// What the critic's read-out needs besides its networks.
    pub fn readout(&self) -> Readout<'_> {
        Readout {
            support: self.q_support.as_ref(),
            flow: self.flow.as_ref(),
        }
    }

    /// Checks the ranges.
    pub fn validate(&self) -> Result<()> {
        let bad = |field: &'static str, reason: String| Err(AlgoError::Config { field, reason });
        for (f, v) in [
            ("actor_lr", self.actor_lr),
            ("critic_lr", self.critic_lr),
            ("alpha_lr", self.alpha_lr),
            ("alpha", self.alpha),
        ] {
            if !(v > 0.0 && v.is_finite()) {
                return bad(f, format!("must be positive and finite, got {v}"));
            }
        }
        if !(0.0..=1.0).contains(&self.gamma) {
            return bad("gamma", format!("must be in [0, 1], got {}", self.gamma));
        }
        if !(self.tau > 0.0 && self.tau <= 1.0) {
            return bad("tau", format!("must be in (0, 1], got {}", self.tau));
        }
        if !(self.beta >= 0.0 && self.beta.is_finite()) {
            return bad("beta", format!("must be a finite value ≥ 0, got {}", self.beta));
        }
        if let Some(h) = self.target_entropy {
            if !h.is_finite() {
                return bad("target_entropy", format!("must be finite, got {h}"));
            }
        }
        for (f, v) in [
            ("batch_size", self.batch_size),
            ("train_every", self.train_every),
            ("policy_delay", self.policy_delay),
            ("policy_repeats", self.policy_repeats),
            ("target_delay", self.target_delay),
            ("num_envs", self.num_envs),
            ("log_every", self.log_every),
        ] {
            if v == 0 {
                return bad(f, "must be at least 1".into());
            }
        }
        if self.buffer_size < self.batch_size {
            return bad(
                "buffer_size",
                format!("must hold a batch ({}), got {}", self.batch_size, self.buffer_size),
            );
        }
        if self.hidden.is_empty() || self.hidden.contains(&0) {
            return bad(
                "hidden",
                format!("needs at least one layer of positive width, got {:?}", self.hidden),
            );
        }
        let (lo, hi) = match self.log_std {
            LogStdBound::Tanh { min, max } | LogStdBound::Clamp { min, max } => (min, max),
            LogStdBound::SoftplusStd { min_raw } => (min_raw, f32::INFINITY),
        };
        if !(lo < hi && lo.is_finite()) {
            return bad(
                "log_std",
                format!("needs finite bounds with min < max, got {:?}", self.log_std),
            );
        }
        if self.probe_every > 0 {
            if !self.probe_every.is_multiple_of(self.log_every) || self.probe_episodes == 0 {
                return bad(
                    "probe_every",
                    format!(
                        "must be a multiple of log_every ({}) with probe_episodes ≥ 1, got {} and {}",
                        self.log_every, self.probe_every, self.probe_episodes
                    ),
                );
            }
            if self.gamma >= 1.0 {
                return bad("probe_every", "a Monte-Carlo return needs gamma < 1".into());
            }
        }
        for (f, p) in [
            ("actor_dropout", self.actor_dropout),
            ("critic_dropout", self.critic_dropout),
        ] {
            if !(0.0..1.0).contains(&p) {
                return bad(f, format!("must be in [0, 1), got {p}"));
            }
            if p > 0.0 && !self.layer_norm {
                return bad(f, "dropout sits in STAC's blocks: set layer_norm = true".into());
            }
        }
        if self.layer_norm && self.activation != Activation::Relu {
            return bad("activation", "STAC's blocks end in relu".into());
        }
        if (self.critic == CriticKind::Categorical) != self.q_support.is_some() {
            return bad(
                "q_support",
                "is the categorical critic's support: give it with critic = \"categorical\" and only then".into(),
            );
        }
        if let Some(q) = &self.q_support {
            let (lo, hi) = q.range();
            Categorical::new(lo, hi, q.bins(), q.encoding()).map_err(|e| AlgoError::Config {
                field: "q_support",
                reason: e.to_string(),
            })?;
        }
        if (self.critic == CriticKind::Flow) != self.flow.is_some() {
            return bad(
                "flow",
                "is the flow critic's settings: give `[sac.flow]` with critic = \"flow\" and only then".into(),
            );
        }
        if let Some(f) = &self.flow {
            f.validate().map_err(|e| AlgoError::Config {
                field: "flow",
                reason: e.to_string(),
            })?;
            if self.layer_norm {
                return bad("layer_norm", "the flow critic's field is a plain MLP".into());
            }
        }
        if matches!(
            self.critic,
            CriticKind::Twin | CriticKind::Categorical | CriticKind::Flow
        ) && self.beta != 0.0
        {
            return bad(
                "beta",
                "is STAC's pessimism; the twin critic has none (set it to 0)".into(),
            );
        }
        Ok(())
    }
}

/// The default budget of the SAC family on `env_id`: env steps that meet the project's
/// documented results (`docs/critics.md`).
pub fn default_budget(env_id: &str) -> u64 {
    match env_id {
        "Pendulum-v1" => 250_000,
        _ => 1_000_000,
    }
}

/// What a checkpoint holds besides the config and the weights (online and target networks;
/// the replay buffer in its own file): enough to continue exactly.
#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct SacState {
    /// The run's seed.
    pub seed: u64,
    /// The actor's Adam state.
    pub actor_opt: AdamState,
    /// The critics' Adam states.
    pub critic_opt: Vec<AdamState>,
    /// `log α`'s Adam state.
    pub alpha_opt: AdamState,
    /// `log α`.
    pub log_alpha: f32,
    /// DSAC-T's moving `σ̂` per critic.
    pub sigma_ema: Vec<SigmaEma>,
    /// The action, sampling and noise stream.
    pub rng: ChaCha8Rng,
    /// Env steps taken.
    pub global_step: u64,
    /// Gradient steps done.
    pub updates: u64,
    /// Episodes finished.
    pub episodes: u64,
    /// Env steps towards the next gradient step.
    pub since_update: usize,
    /// The last (up to 100) finished episodes.
    pub recent: Vec<EpisodeRecord>,
    /// Whether the envs have been reset by the learner.
    pub env_started: bool,
    /// Where the replay buffer stands (its contents: `replay.safetensors`).
    pub replay: ReplayPosition,
}

pub use crate::offpolicy::REPLAY_FILE;

#[derive(Debug, Default)]
struct UpdateWs {
    idx: Vec<usize>,
    obs: Vec<f32>,
    next_obs: Vec<f32>,
    x: Vec<f32>,
    xn: Vec<f32>,
    rows: Vec<NextRow>,
    next: ActorSamples,
    pi: ActorSamples,
    critic: CriticWs,
    grads: Vec<Vec<f32>>,
    actor_grads: Vec<f32>,
    dl_da: Vec<f32>,
    dl_dlogp: Vec<f32>,
}

/// Sums since the last metrics row.
#[derive(Debug, Default, Clone, Copy)]
struct Acc {
    updates: usize,
    q: f64,
    sigma: f64,
    critic_loss: f64,
    actor_updates: usize,
    actor_loss: f64,
    logp: f64,
}

/// A learner of the SAC family. It owns its envs: `config.num_envs` copies of a single-agent
/// env with a box action space.
#[derive(Debug)]
pub struct Sac {
    config: SacConfig,
    actor: SquashedActor,
    target_actor: Option<SquashedActor>,
    critics: Vec<Net>,
    targets: Vec<Net>,
    actor_opt: Adam,
    critic_opt: Vec<Adam>,
    alpha_opt: Adam,
    log_alpha: f32,
    sigma_ema: Vec<SigmaEma>,
    buffer: ReplayBuffer,
    rng: ChaCha8Rng,
    predict_rng: ChaCha8Rng,
    envs: VecEnv,
    env_started: bool,
    global_step: u64,
    updates: u64,
    episodes: u64,
    since_update: usize,
    recent: RecentEpisodes<EpisodeRecord>,
    seed: u64,
    run: RunInfo,
    total: u64,
    next_row: u64,
    acc: Acc,
    started_at: Instant,
    start_step: u64,
    ws: UpdateWs,
    act_scratch: (Vec<f32>, Vec<f32>, ActorSamples),
    probe: Option<Probe>,
}

/// The env and lengths of the bias measurement.
struct Probe {
    env: Box<dyn Env>,
    probe_len: usize,
    horizon: usize,
}

impl std::fmt::Debug for Probe {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(
            f,
            "Probe {{ probe_len: {}, horizon: {} }}",
            self.probe_len, self.horizon
        )
    }
}

impl Probe {
    /// The registered `env_id` with its time limit moved past the probe's horizon: the
    /// states of a training-length episode (its registered limit, or 1000 steps), and
    /// returns followed until `γ^tail < 1e-3`.
    fn new(env_id: &str, kwargs: &Kwargs, gamma: f64) -> Result<Self> {
        let probe_len = taper_envs::registry::spec(env_id)?.max_episode_steps.unwrap_or(1000);
        let tail = (1e-3f64.ln() / gamma.ln()).ceil().max(1.0) as usize;
        let horizon = probe_len + tail;
        let mut kw = kwargs.clone();
        kw.insert("max_episode_steps".into(), horizon.to_string());
        let env = taper_envs::make_with(env_id, &kw).map_err(|e| AlgoError::Config {
            field: "probe_every",
            reason: format!("the bias probe runs `{env_id}` with max_episode_steps={horizon}, which it refuses: {e}"),
        })?;
        Ok(Probe {
            env,
            probe_len,
            horizon,
        })
    }
}

impl Sac {
    /// A learner on `config.num_envs` copies of the registered env `env_id`; all randomness
    /// from `seed`.
    pub fn new(config: SacConfig, env_id: &str, env_kwargs: &Kwargs, seed: u64) -> Result<Self> {
        config.validate()?;
        let envs = (0..config.num_envs)
            .map(|_| taper_envs::make_with(env_id, env_kwargs))
            .collect::<taper_envs::Result<Vec<_>>>()?;
        let venv = VecEnv::new(envs)?.with_id(env_id, env_kwargs);
        let probe = if config.probe_every > 0 {
            Some(Probe::new(env_id, env_kwargs, config.gamma)?)
        } else {
            None
        };
        let mut l = Self::with_envs(config, venv, seed)?;
        (l.run.env_id, l.run.env_kwargs) = (env_id.to_string(), env_kwargs.clone());
        l.probe = probe;
        Ok(l)
    }

    /// A learner on envs built by hand (`config.num_envs` of them), named `custom`. The bias
    /// probe needs a registered env: `probe_every` must be 0 here.
    pub fn with_envs(config: SacConfig, envs: VecEnv, seed: u64) -> Result<Self> {
        config.validate()?;
        crate::rollout::check_num_envs(config.num_envs, envs.num_envs())?;
        let (low, high) = match envs.action_space() {
            Space::Box { low, high } => (low.clone(), high.clone()),
            other => {
                return Err(AlgoError::Unsupported {
                    algo: "the SAC family",
                    what: format!("the action space {other} (a Box)"),
                })
            }
        };
        let od = envs.observation_space().flat_dim();
        let ad = low.len();
        let mut init = stream(seed, Purpose::Init, 0);
        let norm = |p: f64| config.layer_norm.then_some(p as f32);
        let actor = SquashedActor::new(
            od,
            &low,
            &high,
            &config.hidden,
            config.activation,
            norm(config.actor_dropout),
            config.log_std,
            &mut init,
        )?;
        let mut sizes = vec![od + ad + config.flow.as_ref().map_or(0, |f| f.feature_dim())];
        sizes.extend_from_slice(&config.hidden);
        sizes.push(config.critic.outputs(config.q_support.as_ref()));
        let mut critics = Vec::with_capacity(config.critic.count());
        for _ in 0..config.critic.count() {
            critics.push(match norm(config.critic_dropout) {
                None => Net::Plain(Mlp::new(&sizes, config.activation, MlpInit::TorchDefault, &mut init)?),
                Some(p) => {
                    let mut q = NormMlp::new(&sizes, p, &mut init)?;
                    if config.critic == CriticKind::Stac || config.critic == CriticKind::DsacT {
                        // STAC starts the σ output's bias at 0.
                        q.set_output_bias(1, 0.0)?;
                    }
                    Net::Norm(q)
                }
            });
        }
        let adam = |lr: f64, n: usize| {
            Adam::new(
                AdamConfig {
                    lr: lr as f32,
                    ..AdamConfig::default()
                },
                n,
            )
        };
        let m = envs.num_envs();
        Ok(Sac {
            actor_opt: adam(config.actor_lr, actor.net.num_params()),
            critic_opt: critics.iter().map(|c| adam(config.critic_lr, c.num_params())).collect(),
            alpha_opt: adam(config.alpha_lr, 1),
            log_alpha: (config.alpha as f32).ln(),
            sigma_ema: vec![SigmaEma::new(config.tau as f32); config.critic.count()],
            target_actor: config.target_policy.then(|| actor.clone()),
            targets: critics.clone(),
            critics,
            actor,
            buffer: ReplayBuffer::new(config.buffer_size, od, ad, 1)?,
            rng: stream(seed, Purpose::Action, 0),
            predict_rng: stream(seed, Purpose::Eval, 1),
            envs,
            env_started: false,
            global_step: 0,
            updates: 0,
            episodes: 0,
            since_update: 0,
            recent: RecentEpisodes::default(),
            seed,
            run: RunInfo {
                algo: "sac".into(),
                env_id: "custom".into(),
                env_kwargs: Kwargs::new(),
                seed,
            },
            total: 0,
            next_row: 0,
            acc: Acc::default(),
            started_at: Instant::now(),
            start_step: 0,
            ws: UpdateWs::default(),
            act_scratch: (vec![0.0; m * ad], vec![0.0; m * od], ActorSamples::default()),
            probe: None,
            config,
        })
    }

    /// Records the run under another algorithm name (`dsac-t`, `stac`), as the CLI does.
    pub fn named(mut self, algo: &str) -> Self {
        self.run.algo = algo.to_string();
        self
    }

    /// The configuration.
    pub fn config(&self) -> &SacConfig {
        &self.config
    }
    /// The actor.
    pub fn actor(&self) -> &SquashedActor {
        &self.actor
    }
    /// The online critics.
    pub fn critics(&self) -> &[Net] {
        &self.critics
    }
    /// The temperature α.
    pub fn alpha(&self) -> f32 {
        self.log_alpha.exp()
    }
    /// The replay buffer.
    pub fn buffer(&self) -> &ReplayBuffer {
        &self.buffer
    }
    /// The mean return of the last 100 training episodes.
    pub fn recent_return(&self) -> f64 {
        self.recent.mean_return()
    }
    fn target_entropy(&self) -> f32 {
        self.config.target_entropy.unwrap_or(-(self.actor.action_dim() as f64)) as f32
    }

    /// The networks as named tensors: `actor`, `critic_k` (what evaluation loads), and
    /// `target_critic_k`, `target_actor` (for resuming).
    pub fn tensors(&self) -> Result<taper_train::NamedTensors> {
        let mut t = self.actor.net.to_tensors("actor")?;
        for (k, (c, tc)) in self.critics.iter().zip(&self.targets).enumerate() {
            t.extend(c.to_tensors(&format!("critic_{k}"))?);
            t.extend(tc.to_tensors(&format!("target_critic_{k}"))?);
        }
        if let Some(ta) = &self.target_actor {
            t.extend(ta.net.to_tensors("target_actor")?);
        }
        Ok(t)
    }

    /// Runs the actor on an env built by hand: the mode `scale·tanh(μ) + bias` when
    /// `opts.deterministic`, else samples.
    pub fn evaluate_on(
        &self,
        env: &mut dyn Env,
        opts: &EvalOptions,
        on_step: &mut dyn FnMut(usize, EnvView<'_>),
    ) -> Result<Vec<EpisodeRecord>> {
        if env.observation_space().flat_dim() != self.actor.obs_dim()
            || env.action_space().flat_dim() != self.actor.action_dim()
        {
            return Err(AlgoError::Config {
                field: "env",
                reason: "the env's spaces differ from the actor's".into(),
            });
        }
        let mut rng = stream(opts.seed, Purpose::Eval, 0);
        let mut cache = NetCache::default();
        let mut s = ActorSamples::default();
        Ok(taper_train::eval::run_episodes(
            env,
            opts,
            &mut |obs, action| {
                if opts.deterministic {
                    self.actor.mode(obs, 1, &mut cache, action)
                } else {
                    self.actor
                        .sample(obs, 1, &mut rng, None, &mut s)
                        .map(|_| action.copy_from_slice(&s.actions))
                }
                .map_err(taper_train::TrainError::learner)
            },
            on_step,
        )?)
    }

    /// Measures the critic's bias on `episodes` fresh episodes of `env` with the current
    /// stochastic policy ([`value_bias`]).
    pub fn value_bias(
        &self,
        env: &mut dyn Env,
        episodes: usize,
        horizon: usize,
        probe_len: usize,
        seed: u64,
    ) -> Result<ValueBias> {
        value_bias(
            &self.actor,
            self.config.critic,
            &self.critics,
            self.config.readout(),
            self.config.beta as f32,
            self.alpha(),
            self.config.gamma as f32,
            env,
            episodes,
            horizon,
            probe_len,
            seed,
        )
    }

    /// The bias measurement of the configured probe at this step (episodes seeded from the
    /// step, so a resumed run measures the same).
    fn probe_now(&mut self) -> Result<ValueBias> {
        let Some(mut p) = self.probe.take() else {
            return Err(AlgoError::Config {
                field: "probe_every",
                reason: "the bias probe needs a registered env (this learner's envs were built by hand)".into(),
            });
        };
        let seed = 10_000_000u64.wrapping_add(self.global_step);
        let r = self.value_bias(p.env.as_mut(), self.config.probe_episodes, p.horizon, p.probe_len, seed);
        self.probe = Some(p);
        r
    }

    fn row(&mut self) -> Metrics {
        let elapsed = self.started_at.elapsed().as_secs_f64();
        let a = std::mem::take(&mut self.acc);
        let mut row = Metrics::new();
        row.push("global_step", self.global_step as f64);
        row.push("update", self.updates as f64);
        row.push("episodes", self.episodes as f64);
        self.recent.write_metrics(&[], &mut row);
        let per = |s: f64, k: usize| if k == 0 { f64::NAN } else { s / k as f64 };
        row.push("q_mean", per(a.q, a.updates));
        if matches!(self.config.critic, CriticKind::DsacT | CriticKind::Stac) {
            row.push("sigma_mean", per(a.sigma, a.updates));
        }
        row.push("critic_loss", per(a.critic_loss, a.updates));
        row.push("actor_loss", per(a.actor_loss, a.actor_updates));
        row.push("entropy", -per(a.logp, a.actor_updates));
        row.push("alpha", self.alpha() as f64);
        row.push("sps", (self.global_step - self.start_step) as f64 / elapsed.max(1e-9));
        row.push("time_elapsed", elapsed);
        row
    }

    /// One vector step of every env, the transitions stored, and the gradient steps due.
    fn env_step(&mut self) -> Result<()> {
        let (m, od, ad) = (self.envs.num_envs(), self.actor.obs_dim(), self.actor.action_dim());
        let mut drop = self.dropout_key(Site::Act, 0).map(|k| k.rng(0));
        let (acts, prev, samples) = &mut self.act_scratch;
        if self.config.random_starts && self.buffer.len() < self.config.learning_starts {
            let (low, high) = self.actor.bounds();
            for e in 0..m {
                for k in 0..ad {
                    acts[e * ad + k] = self.rng.random_range(low[k]..high[k]);
                }
            }
        } else {
            // Training mode: the actor's dropout on, as the reference acts.
            self.actor
                .sample(self.envs.obs(), m, &mut self.rng, dyn_rng(&mut drop), samples)?;
            acts.copy_from_slice(&samples.actions);
        }
        prev.copy_from_slice(self.envs.obs());
        self.envs.step(VecAction::Continuous(acts))?;
        for e in 0..m {
            let ended = self.envs.terminated()[e] || self.envs.truncated()[e];
            let next = if ended {
                &self.envs.final_obs()[e * od..(e + 1) * od]
            } else {
                &self.envs.obs()[e * od..(e + 1) * od]
            };
            self.buffer.push(
                &prev[e * od..(e + 1) * od],
                &acts[e * ad..(e + 1) * ad],
                &self.envs.rewards()[e..e + 1],
                next,
                self.envs.terminated()[e],
            )?;
        }
        for &(_, ep) in self.envs.finished() {
            self.episodes += 1;
            self.recent.push(ep);
        }
        self.global_step += m as u64;
        if self.buffer.len() > self.config.learning_starts.max(self.config.batch_size - 1) {
            self.since_update += m;
            while self.since_update >= self.config.train_every {
                self.since_update -= self.config.train_every;
                self.gradient_step()?;
            }
        }
        Ok(())
    }

    /// `k` gradient steps on the replay buffer as it is (what the env loop runs every
    /// `train_every` env steps once learning has started); an error while it holds fewer
    /// transitions than a batch.
    pub fn gradient_steps(&mut self, k: usize) -> Result<()> {
        if self.buffer.len() < self.config.batch_size {
            return Err(AlgoError::Config {
                field: "batch_size",
                reason: format!(
                    "the replay buffer holds {} transitions, fewer than a batch of {}",
                    self.buffer.len(),
                    self.config.batch_size
                ),
            });
        }
        for _ in 0..k {
            self.gradient_step()?;
        }
        Ok(())
    }

    /// One gradient step: the critics, the actor and α when due, the targets when due.
    fn gradient_step(&mut self) -> Result<()> {
        let c = self.config.clone();
        let mut ws = std::mem::take(&mut self.ws);
        let r = self.gradient_step_with(&c, &mut ws);
        self.ws = ws;
        r.map_err(|e| match e {
            AlgoError::NonFinite { term, .. } => AlgoError::NonFinite {
                update: self.updates + 1,
                term,
            },
            e => e,
        })?;
        self.updates += 1;
        Ok(())
    }

    fn gradient_step_with(&mut self, c: &SacConfig, ws: &mut UpdateWs) -> Result<()> {
        let (od, ad, n) = (self.actor.obs_dim(), self.actor.action_dim(), c.batch_size);
        let kind = c.critic;
        ws.idx.clear();
        for _ in 0..n {
            ws.idx.push(self.rng.random_range(0..self.buffer.len()));
        }
        let buf = &self.buffer;
        ws.obs.clear();
        ws.next_obs.clear();
        ws.x.clear();
        for &t in &ws.idx {
            ws.obs.extend_from_slice(buf.obs(t));
            ws.next_obs.extend_from_slice(buf.next_obs(t));
            ws.x.extend_from_slice(buf.obs(t));
            ws.x.extend_from_slice(buf.actions(t));
        }
        // Targets from the next states and actions sampled by the (target) policy.
        let alpha = self.log_alpha.exp();
        let next_pi = self.target_actor.as_ref().unwrap_or(&self.actor);
        let mut drop = self.dropout_key(Site::NextActions, 0).map(|k| k.rng(0));
        next_pi.sample(&ws.next_obs, n, &mut self.rng, dyn_rng(&mut drop), &mut ws.next)?;
        join(&ws.next_obs, &ws.next.actions, n, od, ad, &mut ws.xn);
        ws.rows.clear();
        for (k, &t) in ws.idx.iter().enumerate() {
            ws.rows.push(NextRow {
                reward: buf.reward(t, 0),
                done: buf.done(t),
                logp: ws.next.logp[k],
            });
        }
        let p = TargetParams {
            gamma: c.gamma as f32,
            alpha,
            beta: c.beta as f32,
        };
        let drop = self.dropout_key(Site::Targets, 0);
        let support = c.readout();
        kind.targets(
            &self.targets,
            &ws.xn,
            &ws.rows,
            p,
            &mut self.rng,
            drop,
            support,
            &mut ws.critic,
        )?;
        let actor_due = self.updates.is_multiple_of(c.policy_delay as u64);
        // DSAC-T: the actor's gradient on the critics as they are before this step.
        let early = if actor_due && c.actor_first {
            Some(self.actor_gradient(c, ws, 0)?)
        } else {
            None
        };
        ws.grads.resize_with(self.critics.len(), Vec::new);
        for (g, q) in ws.grads.iter_mut().zip(&self.critics) {
            g.clear();
            g.resize(q.num_params(), 0.0);
        }
        if let Some(f) = &c.flow {
            // The flow loss's draws, critic after critic: t ~ U[0, 1), z_0 ~ U[l, u).
            let nm = self.critics.len() * n * f.samples;
            let [l, u] = f.noise;
            let cw = &mut ws.critic;
            cw.flow_t.clear();
            cw.flow_z0.clear();
            for _ in 0..nm {
                cw.flow_t.push(self.rng.random::<f32>());
                cw.flow_z0.push(l + (u - l) * self.rng.random::<f32>());
            }
        }
        let drop = self.dropout_key(Site::CriticLoss, 0);
        let each = kind.losses(
            &self.critics,
            &ws.x,
            n,
            &mut self.sigma_ema,
            drop,
            support,
            &mut ws.critic,
            &mut ws.grads,
        )?;
        let k = each.len() as f64;
        for (loss, q, s) in each {
            self.acc.critic_loss += loss;
            self.acc.q += q / k;
            self.acc.sigma += s / k;
        }
        self.acc.updates += 1;
        for (k, g) in ws.grads.iter().enumerate() {
            self.critic_opt[k].step(&mut [(self.critics[k].params_mut(), &g[..])])?;
        }
        if let Some(mean_logp) = early {
            self.actor_opt
                .step(&mut [(self.actor.net.params_mut(), &ws.actor_grads[..])])?;
            self.alpha_step(c, mean_logp, ws, 0)?;
        } else if actor_due {
            for rep in 0..c.policy_repeats {
                let mean_logp = self.actor_gradient(c, ws, rep)?;
                self.actor_opt
                    .step(&mut [(self.actor.net.params_mut(), &ws.actor_grads[..])])?;
                self.alpha_step(c, mean_logp, ws, rep)?;
            }
        }
        if self.updates.is_multiple_of(c.target_delay as u64) {
            let tau = c.tau as f32;
            for (t, o) in self.targets.iter_mut().zip(&self.critics) {
                polyak_params(t.params_mut(), o.params(), tau);
            }
            if let Some(ta) = &mut self.target_actor {
                polyak_params(ta.net.params_mut(), self.actor.net.params(), tau);
            }
        }
        Ok(())
    }

    /// The actor loss `mean(α·log π(ã|s) − V(s, ã))` on the batch's states with a fresh
    /// reparameterised sample, its gradient into `ws.actor_grads`; returns the mean `log π`.
    fn actor_gradient(&mut self, c: &SacConfig, ws: &mut UpdateWs, rep: usize) -> Result<f64> {
        let (od, ad, n) = (self.actor.obs_dim(), self.actor.action_dim(), c.batch_size);
        let alpha = self.log_alpha.exp();
        let mut drop = self.dropout_key(Site::ActorSample, rep).map(|k| k.rng(0));
        self.actor
            .sample(&ws.obs, n, &mut self.rng, dyn_rng(&mut drop), &mut ws.pi)?;
        let mut xpi = Vec::with_capacity(n * (od + ad));
        join(&ws.obs, &ws.pi.actions, n, od, ad, &mut xpi);
        let drop = self.dropout_key(Site::ActorValue, rep);
        c.critic.actor_value(
            &self.critics,
            &xpi,
            n,
            ad,
            c.beta as f32,
            drop,
            c.readout(),
            &mut ws.critic,
        )?;
        let inv = 1.0 / n as f32;
        ws.dl_da.clear();
        ws.dl_da.extend(ws.critic.dv_da.iter().map(|g| -g * inv));
        ws.dl_dlogp.clear();
        ws.dl_dlogp.resize(n, alpha * inv);
        let mut loss = 0f64;
        let mut lp = 0f64;
        for r in 0..n {
            loss += (alpha * ws.pi.logp[r] - ws.critic.v[r]) as f64;
            lp += ws.pi.logp[r] as f64;
        }
        ws.actor_grads.clear();
        ws.actor_grads.resize(self.actor.net.num_params(), 0.0);
        self.actor
            .backward(&ws.obs, &mut ws.pi, &ws.dl_da, &ws.dl_dlogp, &mut ws.actor_grads)?;
        self.acc.actor_loss += loss / n as f64;
        self.acc.logp += lp / n as f64;
        self.acc.actor_updates += 1;
        if !loss.is_finite() {
            return Err(AlgoError::NonFinite {
                update: 0,
                term: "actor loss",
            });
        }
        Ok(lp / n as f64)
    }

    /// One step of α.
    fn alpha_step(&mut self, c: &SacConfig, mean_logp: f64, ws: &mut UpdateWs, rep: usize) -> Result<()> {
        let h = self.target_entropy() as f64;
        match c.alpha_update {
            AlphaUpdate::Fixed => {}
            AlphaUpdate::Dual => {
                // CleanRL: a fresh sample after the actor's step; d/d log α of −α(log π + H̄).
                let n = c.batch_size;
                let mut drop = self.dropout_key(Site::AlphaSample, rep).map(|k| k.rng(0));
                self.actor
                    .sample(&ws.obs, n, &mut self.rng, dyn_rng(&mut drop), &mut ws.pi)?;
                let lp = ws.pi.logp.iter().map(|&v| v as f64).sum::<f64>() / n as f64;
                let g = -(self.log_alpha.exp() as f64) * (lp + h);
                let mut la = [self.log_alpha];
                self.alpha_opt.step(&mut [(&mut la[..], &[g as f32][..])])?;
                self.log_alpha = la[0];
            }
            AlphaUpdate::DualLog => {
                let g = -(mean_logp + h);
                let mut la = [self.log_alpha];
                self.alpha_opt.step(&mut [(&mut la[..], &[g as f32][..])])?;
                self.log_alpha = la[0];
            }
            AlphaUpdate::Multiplicative => {
                // α ← α·exp(lr·α·(H̄ − Ĥ)) with Ĥ = −mean log π.
                let a = self.log_alpha.exp() as f64;
                self.log_alpha += (c.alpha_lr * a * (h + mean_logp)) as f32;
            }
        }
        Ok(())
    }
}

/// Where a training-mode forward pass happens within a gradient step (its dropout masks'
/// stream).
#[derive(Debug, Clone, Copy)]
enum Site {
    Act = 0,
    NextActions = 1,
    Targets = 2,
    CriticLoss = 3,
    ActorSample = 4,
    ActorValue = 5,
    AlphaSample = 6,
}

impl Sac {
    /// The dropout stream of a site in this gradient step (or, acting, this env step); `None`
    /// when no network has dropout.
    fn dropout_key(&self, site: Site, rep: usize) -> Option<DropoutKey> {
        let c = &self.config;
        if !(c.layer_norm && (c.actor_dropout > 0.0 || c.critic_dropout > 0.0)) {
            return None;
        }
        let step = if matches!(site, Site::Act) {
            self.global_step
        } else {
            self.updates
        };
        let index = ((step * 8 + site as u64) * 64 + rep as u64) * 4;
        Some(DropoutKey { seed: self.seed, index })
    }
}

fn dyn_rng(r: &mut Option<ChaCha8Rng>) -> Option<&mut dyn rand::RngCore> {
    r.as_mut().map(|r| r as &mut dyn rand::RngCore)
}

/// `[o, a]` rows from `n` observations `[n, od]` and actions `[n, ad]`, into `out`.
fn join(obs: &[f32], acts: &[f32], n: usize, od: usize, ad: usize, out: &mut Vec<f32>) {
    out.clear();
    for r in 0..n {
        out.extend_from_slice(&obs[r * od..(r + 1) * od]);
        out.extend_from_slice(&acts[r * ad..(r + 1) * ad]);
    }
}

impl Learner for Sac {
    fn info(&self) -> RunInfo {
        self.run.clone()
    }
    fn config_json(&self) -> serde_json::Value {
        serde_json::to_value(&self.config).unwrap_or_default()
    }
    fn progress(&self) -> Progress {
        Progress {
            global_step: self.global_step,
            updates: self.updates,
            episodes: self.episodes,
        }
    }
    /// The plan ends at the first whole vector step at or past `total_steps`.
    fn plan(&mut self, total_steps: u64) -> taper_train::Result<u64> {
        let end = crate::offpolicy::plan_end(total_steps, self.config.num_envs, self.global_step)?;
        if !self.env_started {
            self.envs.reset(self.seed)?;
            self.env_started = true;
        }
        self.total = end;
        let every = self.config.log_every as u64;
        self.next_row = (self.global_step / every + 1) * every;
        self.acc = Acc::default();
        self.started_at = Instant::now();
        self.start_step = self.global_step;
        Ok(end)
    }
    fn step(&mut self) -> taper_train::Result<Metrics> {
        while self.global_step < self.total && self.global_step < self.next_row {
            self.env_step()?;
        }
        let every = self.config.log_every as u64;
        self.next_row = (self.global_step / every + 1) * every;
        let mut row = self.row();
        if self.config.probe_every > 0 {
            let b = if self.global_step.is_multiple_of(self.config.probe_every as u64) {
                Some(self.probe_now()?)
            } else {
                None
            };
            for (name, v) in [
                ("q_estimate", b.map(|b| b.q_estimate)),
                ("mc_return", b.map(|b| b.mc_return)),
                ("q_bias", b.map(|b| b.bias)),
                ("q_bias_se", b.map(|b| b.bias_se)),
            ] {
                row.push(name, v.unwrap_or(f64::NAN));
            }
        }
        Ok(row)
    }
    fn is_done(&self) -> bool {
        self.global_step >= self.total
    }
    fn export(&self) -> taper_train::Result<LearnerState> {
        let st = SacState {
            seed: self.seed,
            actor_opt: self.actor_opt.state().clone(),
            critic_opt: self.critic_opt.iter().map(|a| a.state().clone()).collect(),
            alpha_opt: self.alpha_opt.state().clone(),
            log_alpha: self.log_alpha,
            sigma_ema: self.sigma_ema.clone(),
            rng: self.rng.clone(),
            global_step: self.global_step,
            updates: self.updates,
            episodes: self.episodes,
            since_update: self.since_update,
            recent: self.recent.to_vec(),
            env_started: self.env_started,
            replay: self.buffer.position(),
        };
        Ok(crate::offpolicy::learner_state(
            serde_json::to_value(st).map_err(taper_train::TrainError::learner)?,
            self.tensors()?,
            self.envs.snapshot().ok().and_then(|v| serde_json::to_value(v).ok()),
            &self.buffer,
        )?)
    }
    fn import(&mut self, ckpt: &Checkpoint, resume: bool) -> taper_train::Result<()> {
        let t = &ckpt.tensors;
        let bad = |e: String| taper_train::TrainError::checkpoint(&ckpt.dir, e);
        self.actor
            .net
            .load_tensors("actor", t)
            .map_err(|e| bad(e.to_string()))?;
        for (k, c) in self.critics.iter_mut().enumerate() {
            c.load_tensors(&format!("critic_{k}"), t)
                .map_err(|e| bad(e.to_string()))?;
        }
        if !resume {
            return Ok(());
        }
        for (k, c) in self.targets.iter_mut().enumerate() {
            c.load_tensors(&format!("target_critic_{k}"), t)
                .map_err(|e| bad(e.to_string()))?;
        }
        if let Some(ta) = &mut self.target_actor {
            ta.net.load_tensors("target_actor", t).map_err(|e| bad(e.to_string()))?;
        }
        let st: SacState = ckpt.algo_state()?;
        let sizes: Vec<usize> = self.critics.iter().map(|c| c.num_params()).collect();
        if st.critic_opt.len() != sizes.len() || st.sigma_ema.len() != sizes.len() {
            return Err(bad(format!(
                "{} critic optimiser states and {} scale averages for {} critics",
                st.critic_opt.len(),
                st.sigma_ema.len(),
                sizes.len()
            )));
        }
        let checks = std::iter::once((&st.actor_opt, self.actor.net.num_params()))
            .chain(st.critic_opt.iter().zip(sizes.iter().copied()))
            .chain(std::iter::once((&st.alpha_opt, 1)));
        for (s, np) in checks {
            if s.m.len() != np || s.v.len() != np {
                return Err(bad(format!(
                    "an optimiser state has {} moments for {np} parameters",
                    s.m.len()
                )));
            }
        }
        let cfg = |a: &Adam| *a.config();
        self.actor_opt = Adam::from_state(cfg(&self.actor_opt), st.actor_opt).map_err(AlgoError::from)?;
        self.alpha_opt = Adam::from_state(cfg(&self.alpha_opt), st.alpha_opt).map_err(AlgoError::from)?;
        let ccfg = cfg(&self.critic_opt[0]);
        self.critic_opt = st
            .critic_opt
            .into_iter()
            .map(|s| Adam::from_state(ccfg, s))
            .collect::<std::result::Result<_, _>>()
            .map_err(AlgoError::from)?;
        self.buffer.load(&ckpt.file(REPLAY_FILE)?, st.replay)?;
        self.log_alpha = st.log_alpha;
        self.sigma_ema = st.sigma_ema;
        self.rng = st.rng;
        self.global_step = st.global_step;
        self.updates = st.updates;
        self.episodes = st.episodes;
        self.since_update = st.since_update;
        self.recent = RecentEpisodes::from_vec(st.recent);
        self.env_started = st.env_started;
        match &ckpt.state.env_state {
            Some(env) => {
                let s: taper_envs::VecEnvState = serde_json::from_value(env.clone()).map_err(|e| bad(e.to_string()))?;
                self.envs.restore(&s)?;
            }
            None => self.env_started = false,
        }
        Ok(())
    }
    fn evaluate(
        &self,
        opts: &EvalOptions,
        on_step: &mut dyn FnMut(usize, EnvView<'_>),
    ) -> taper_train::Result<Evaluation> {
        let mut env = crate::eval_env(&self.run.env_id, &self.run.env_kwargs)?;
        let eps = self.evaluate_on(env.as_mut(), opts, on_step)?;
        Ok(crate::single_agent_evaluation(&self.run.env_id, eps, &[], 0))
    }
    fn predict(&mut self, obs: &[f32], deterministic: bool) -> taper_train::Result<Vec<f32>> {
        let (od, ad) = (self.actor.obs_dim(), self.actor.action_dim());
        if obs.len() != od {
            return Err(AlgoError::Config {
                field: "obs",
                reason: format!("expected {od} values, got {}", obs.len()),
            }
            .into());
        }
        let mut out = vec![0f32; ad];
        if deterministic {
            self.actor.mode(obs, 1, &mut NetCache::default(), &mut out)?;
        } else {
            let mut s = ActorSamples::default();
            self.actor.sample(obs, 1, &mut self.predict_rng, None, &mut s)?;
            out.copy_from_slice(&s.actions);
        }
        Ok(out)
    }
    /// None: the loss columns are empty until learning starts, and each gradient step checks
    /// its losses itself.
    fn guarded_columns(&self) -> &'static [&'static str] {
        &[]
    }
    fn headline(&self) -> &'static [&'static str] {
        &["recent_return", "q_mean", "alpha"]
    }
    fn summary(&self) -> String {
        format!(
            "{} env steps, {} gradient steps; recent return {:.2} (last 100 episodes)",
            self.global_step,
            self.updates,
            self.recent_return()
        )
    }
}
