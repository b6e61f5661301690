//! # taper
//!
//! Reinforcement learning in Rust on candle. This facade re-exports the workspace's crates
//! under short names and gathers what programs need in [`prelude`]:
//!
//! - [`tensor`] (`taper-tensor`): seeded init, the fast MLP, distributions, GAE, Adam;
//! - [`envs`] (`taper-envs`): `Env`, `VecEnv`, classic control, gridworlds, solvers;
//! - [`critics`] (`taper-critics`): value critics and their losses;
//! - [`algos`] (`taper-algos`): PPO, callbacks, metrics, run folders and checkpoints.
//!
//! ```no_run
//! use taper::prelude::*;
//! let config = PpoConfig::default();                         // CleanRL's ppo.py defaults
//! let mut envs = make_env("CartPole-v1", &Kwargs::new(), &config)?;
//! let mut agent = Ppo::new(config, envs.observation_space(), envs.action_space(), 1)?;
//! let summary = agent.learn(&mut envs, 500_000, &mut NoCallback)?;
//! println!("mean return of the last 20 episodes: {:.1}", summary.recent_return);
//! # Ok::<(), taper::algos::AlgoError>(())
//! ```
#![warn(missing_docs)]

pub use taper_algos as algos;
pub use taper_critics as critics;
pub use taper_envs as envs;
pub use taper_tensor as tensor;

/// The version of taper.
pub const VERSION: &str = env!("CARGO_PKG_VERSION");

/// What examples and most programs need.
pub mod prelude {
    pub use taper_algos::callback::{Callback, CallbackList, Control, NoCallback};
    pub use taper_algos::metrics::Metrics;
    pub use taper_algos::policy::ActorCritic;
    pub use taper_algos::ppo::{evaluate, make_env, Ppo, PpoConfig, TrainSummary};
    pub use taper_algos::run::{load_checkpoint, save_checkpoint, CheckpointState, MetricsWriter};
    pub use taper_algos::AlgoError;
    pub use taper_envs::{make, make_vec, Action, Env, EnvError, Kwargs, Space, VecAction, VecEnv};
    pub use taper_tensor::rng::{stream, Purpose};
}
