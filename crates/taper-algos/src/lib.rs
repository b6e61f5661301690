//! # taper-algos
//!
//! Learning algorithms and the machinery they share: [`ppo`] (CleanRL-faithful PPO for
//! discrete and continuous actions), [`callback`]s, per-update [`metrics`], run folders
//! ([`run`]: metrics sinks and checkpoints).
//!
//! ```no_run
//! use taper_algos::prelude::*;
//! let config = PpoConfig::default();
//! let mut venv = make_env("CartPole-v1", &Default::default(), &config)?;
//! let mut ppo = Ppo::new(config, venv.observation_space(), venv.action_space(), 1)?;
//! let mut log = |m: &Metrics| { println!("{}", m.to_json_line()); Control::Continue };
//! ppo.learn(&mut venv, 50_000, &mut log)?;
//! # Ok::<(), taper_algos::AlgoError>(())
//! ```
#![warn(missing_docs)]
// Index loops read best in numeric kernels; NaN-rejecting `!(x > 0.0)` checks are deliberate.
#![allow(clippy::needless_range_loop, clippy::neg_cmp_op_on_partial_ord)]

pub mod callback;
mod error;
pub mod eval;
pub mod hdpo;
pub mod hdpo_network;
pub mod maddpg;
pub mod marl;
pub mod metrics;
pub mod policy;
pub mod ppo;
pub mod run;
pub mod tensorboard;

pub use error::{AlgoError, Result};

/// The items most programs need.
pub mod prelude {
    pub use crate::callback::{Callback, CallbackList, Control, NoCallback};
    pub use crate::metrics::Metrics;
    pub use crate::policy::ActorCritic;
    pub use crate::ppo::{evaluate, make_env, Ppo, PpoConfig, TrainSummary};
    pub use crate::{AlgoError, Result};
}
