//! # taper-algos
//!
//! The algorithms, built as stages on the model traits (`taper-critics`) and driven by the
//! trainer (`taper-train`):
//!
//! - stages: [`rollout`] (one buffer and one collection loop for single- and multi-agent
//!   envs), [`advantage`] (estimate → weight → select), [`loss`] (the PPO clip with its
//!   gradient), [`onpolicy`] (the PPO update and the on-policy learner core), [`offpolicy`]
//!   (replay buffer, Polyak targets, TD targets), [`recent`] (the recent-episode window);
//! - models: [`policy`] (the actor-critic of PPO, IPPO and MAPPO), [`recurrent`] (its GRU
//!   form for IPPO and MAPPO), both behind [`policy_model::OnPolicyModel`];
//! - learners: [`ppo`] (CleanRL-faithful PPO), [`mappo`] (IPPO and MAPPO), [`maddpg`],
//!   [`hdpo`] (one store and inventory networks), [`grpo`] (GRPO and its variants on sequence
//!   tasks); each implements [`taper_train::Learner`]
//!   and [`Algorithm`] (learn, save, load, resume, predict, evaluate);
//! - dispatch: [`kind`] ([`AlgoKind`]: names, config sections, defaults, budgets) and
//!   [`run_config`] (a run's config, resolved from defaults, a TOML file and flags);
//! - [`load`] and [`resume`]: any run folder, whatever its algorithm;
//! - [`exact`]: the exact long-run cost of any learner's policy on one lost-sales store;
//! - [`group`]: the numerics of group-relative optimizers (GRPO, Dr. GRPO, DAPO, D³S, ADORA)
//!   for sequence policies.
//!
//! ```no_run
//! use taper_algos::prelude::*;
//! let mut ppo = Ppo::new(PpoConfig::default(), "CartPole-v1", &Kwargs::new(), 1)?;
//! ppo.learn(50_000)?;                                // no run folder
//! ppo.save("runs/cartpole".as_ref())?;               // config.toml + checkpoint/
//! let mut back = Ppo::load("runs/cartpole".as_ref())?;
//! let action = back.predict(&[0.0, 0.0, 0.0, 0.0], true)?;
//! let eval = back.evaluate(&EvalOptions { episodes: 10, deterministic: true, ..Default::default() }, &mut |_, _| {})?;
//! println!("{action:?} {:.1}", eval.summary().mean_return);
//! # Ok::<(), Box<dyn std::error::Error>>(())
//! ```
#![warn(missing_docs)]
// Index loops read best in numeric kernels; NaN-rejecting `!(x > 0.0)` checks are deliberate.
#![allow(clippy::needless_range_loop, clippy::neg_cmp_op_on_partial_ord)]

pub mod advantage;
pub mod blocks;
mod checks;
mod error;
pub mod exact;
pub mod group;
pub mod grpo;
pub mod hdpo;
pub mod kind;
pub mod loss;
pub mod lr_spike;
pub mod maddpg;
pub mod mappo;
pub mod offpolicy;
pub mod onpolicy;
pub mod policy;
pub mod policy_model;
pub mod ppo;
pub mod recent;
pub mod recurrent;
pub mod rollout;
pub mod run_config;
pub mod sac;
mod safe_step;
pub mod value_head;
mod wire;

pub use error::{AlgoError, Result};
pub use kind::{AlgoConfig, AlgoKind};

use std::path::Path;
use taper_envs::wrappers::EpisodeRecord;
use taper_envs::Kwargs;
use taper_train::checkpoint::{self, Checkpoint, CheckpointState};
use taper_train::{Callback, Learner, RunSummary, TrainOptions, Trainer};

/// What every algorithm offers a library user on top of [`Learner`] (SB3's `learn`, `save`,
/// `load`): train without a run folder, save to a run folder the CLI reads, load a run's
/// policy, and restore a run's whole state.
pub trait Algorithm: Learner + Sized {
    /// The learner a checkpoint's state describes (its config, env and seed), before its
    /// weights are loaded.
    fn from_checkpoint_state(state: &CheckpointState) -> Result<Self>;

    /// Trains `steps` more steps (env steps; HDPO: gradient steps), with no run folder.
    fn learn(&mut self, steps: u64) -> Result<RunSummary> {
        let total = self.progress().global_step + steps;
        Ok(Trainer::in_memory().fit(self, total)?)
    }
    /// [`Algorithm::learn`] with a callback that sees every metrics row and may stop training.
    fn learn_with(&mut self, steps: u64, callback: &mut dyn Callback) -> Result<RunSummary> {
        let total = self.progress().global_step + steps;
        Ok(Trainer::in_memory().callback(callback).fit(self, total)?)
    }
    /// Writes `dir/config.toml` and the checkpoint `dir/checkpoint/`: a run folder that
    /// `taper eval`, [`Algorithm::load`] and [`Algorithm::resume`] read.
    fn save(&self, dir: &Path) -> Result<()> {
        std::fs::create_dir_all(dir).map_err(|e| AlgoError::io(dir, e))?;
        let planned = self.progress().global_step.max(1);
        taper_train::trainer::write_config(self, dir, planned)?;
        taper_train::trainer::save_checkpoint(self, &dir.join("checkpoint"))?;
        Ok(())
    }
    /// The policy of a run folder (or a checkpoint folder): weights and what evaluation needs,
    /// ready to predict, evaluate or learn on. Its env is rebuilt from the registry, so an env
    /// of your own must be registered (`taper_envs::register`) under the id it was saved with.
    fn load(dir: &Path) -> Result<Self> {
        let ck = Checkpoint::load(dir)?;
        let mut l = Self::from_checkpoint_state(&ck.state)?;
        l.import(&ck, false)?;
        Ok(l)
    }
    /// The whole state of a run folder's newest checkpoint (optimizer, random streams, envs,
    /// replay buffer): training continues exactly where it stopped.
    fn resume(dir: &Path) -> Result<Self> {
        let ck = Checkpoint::load(&checkpoint::newest(dir)?)?;
        let mut l = Self::from_checkpoint_state(&ck.state)?;
        l.import(&ck, true)?;
        Ok(l)
    }
}

fn config_of<T: serde::de::DeserializeOwned>(state: &CheckpointState) -> Result<T> {
    serde_json::from_value(state.config.clone()).map_err(|e| AlgoError::Checkpoint {
        path: "state.json".into(),
        reason: format!("config: {e}"),
    })
}

impl Algorithm for ppo::Ppo {
    fn from_checkpoint_state(s: &CheckpointState) -> Result<Self> {
        ppo::Ppo::new(config_of(s)?, &s.env_id, &s.env_kwargs, s.seed)
    }
}

impl Algorithm for mappo::MaPpo {
    fn from_checkpoint_state(s: &CheckpointState) -> Result<Self> {
        mappo::MaPpo::new(config_of(s)?, &s.env_id, &s.env_kwargs, s.seed)
    }
}

impl Algorithm for grpo::Grpo {
    fn from_checkpoint_state(s: &CheckpointState) -> Result<Self> {
        grpo::Grpo::new(config_of(s)?, &s.env_id, &s.env_kwargs, s.seed)
    }
}

impl Algorithm for maddpg::Maddpg {
    fn from_checkpoint_state(s: &CheckpointState) -> Result<Self> {
        maddpg::Maddpg::new(config_of(s)?, &s.env_id, &s.env_kwargs, s.seed)
    }
}

impl Algorithm for sac::Sac {
    fn from_checkpoint_state(s: &CheckpointState) -> Result<Self> {
        Ok(sac::Sac::new(config_of(s)?, &s.env_id, &s.env_kwargs, s.seed)?.named(&s.algo))
    }
}

impl<P: hdpo::Problem> Algorithm for hdpo::HdpoLearner<P> {
    fn from_checkpoint_state(s: &CheckpointState) -> Result<Self> {
        hdpo::HdpoLearner::new(config_of(s)?, &s.env_id, &s.env_kwargs, s.seed)
    }
}

/// The policy of any run folder (or checkpoint folder), whatever its algorithm, ready to
/// evaluate or predict.
pub fn load(dir: &Path) -> Result<Box<dyn Learner>> {
    let ck = Checkpoint::load(dir)?;
    let mut l = AlgoKind::learner_for(&ck.state)?;
    l.import(&ck, false)?;
    Ok(l)
}

/// Continues the run in `dir` from its newest checkpoint, exactly, to `total_steps` (the
/// run's own budget when `None`), as `taper train --resume` does.
pub fn resume(dir: &Path, total_steps: Option<u64>, options: TrainOptions) -> Result<RunSummary> {
    let mut cfg = run_config::RunConfig::from_run_dir(dir)?;
    if let Some(t) = total_steps {
        cfg.total_steps = t;
    }
    let mut learner = cfg.learner()?;
    Ok(Trainer::new(dir)
        .options(options)
        .resume(learner.as_mut(), cfg.total_steps)?)
}

/// A fresh env to evaluate a single-agent run on: the registered `env_id`, with its
/// evaluation keyword arguments (`taper_envs::registry::evaluation_kwargs`).
pub(crate) fn eval_env(env_id: &str, kw: &Kwargs) -> Result<Box<dyn taper_envs::Env>> {
    taper_envs::make_with(env_id, &taper_envs::registry::evaluation_kwargs(env_id, kw)).map_err(|e| match e {
        taper_envs::EnvError::UnknownEnv { .. } => AlgoError::Config {
            field: "env",
            reason: format!(
                "`{env_id}` is not a registered env: register it (taper_envs::register) or evaluate on an env of your own with evaluate_on"
            ),
        },
        other => other.into(),
    })
}

/// The evaluation of single-agent episodes; inventory envs add `mean_cost`, the mean cost per
/// period over the evaluated paths.
pub(crate) fn single_agent_evaluation(
    env_id: &str,
    eps: Vec<EpisodeRecord>,
    tails: &[EpisodeRecord],
    warmup: u64,
) -> taper_train::Evaluation {
    let mut ev = taper_train::Evaluation {
        episodes: eps,
        extra: Vec::new(),
    };
    if taper_envs::registry::is_inventory(env_id) {
        // Each episode's cost per period after the warm-up; episodes are independent, so the
        // standard error is that of their mean.
        let costs: Vec<f64> = tails
            .iter()
            .filter(|t| t.len > 0)
            .map(|t| -t.ret / t.len as f64)
            .collect();
        let mean = costs.iter().sum::<f64>() / costs.len().max(1) as f64;
        ev.extra.push((
            "mean_cost".into(),
            if costs.is_empty() {
                serde_json::Value::Null
            } else {
                mean.into()
            },
        ));
        ev.extra
            .push(("se_cost".into(), taper_train::eval::standard_error(&costs).into()));
        ev.extra.push(("warmup_periods".into(), warmup.into()));
    }
    ev
}

/// The evaluation options of a single-agent env: the given ones with the env's warm-up
/// (`taper_envs::registry::evaluation_warmup`) where they set none.
pub(crate) fn with_env_warmup(env_id: &str, opts: &taper_train::EvalOptions) -> taper_train::EvalOptions {
    let mut o = *opts;
    o.warmup = Some(
        o.warmup
            .unwrap_or_else(|| taper_envs::registry::evaluation_warmup(env_id)),
    );
    o
}

/// The items most programs need.
pub mod prelude {
    pub use crate::grpo::{Grpo, GrpoConfig};
    pub use crate::hdpo::{Hdpo, HdpoConfig, HdpoNetwork};
    pub use crate::kind::{AlgoConfig, AlgoKind};
    pub use crate::maddpg::{Maddpg, MaddpgConfig};
    pub use crate::mappo::{MaPpo, MappoConfig};
    pub use crate::policy::ActorCritic;
    pub use crate::ppo::{make_env, Ppo, PpoConfig, ValueHead};
    pub use crate::run_config::{Overrides, RunConfig};
    pub use crate::sac::{Sac, SacConfig};
    pub use crate::{AlgoError, Algorithm, Result};
    pub use taper_envs::Kwargs;
    pub use taper_train::{
        Callback, Control, EvalOptions, Evaluation, Learner, Metrics, NoCallback, TrainOptions, Trainer,
    };
}
