//! # taper
//!
//! Reinforcement learning in Rust on candle. This facade re-exports the workspace's crates
//! under short names and gathers what programs need in [`prelude`]:
//!
//! - [`tensor`] (`taper-tensor`): seeded init, the fast MLP, distributions, GAE, Adam;
//! - [`envs`] (`taper-envs`): `Env`, `VecEnv`, `ParallelEnv`, classic control, gridworlds,
//!   MPE, inventory, solvers, the registry (with `register` for your own envs);
//! - [`critics`] (`taper-critics`): the model traits (`Actor`, `Critic`, `QCritic`) and the
//!   critics with their losses;
//! - [`diagnostics`] (`taper-diagnostics`): the softmax safe-step radius;
//! - [`train`] (`taper-train`): the `Learner` trait and the `Trainer` (run folders, logs,
//!   checkpoints, exact resume, evaluation, callbacks, seeds);
//! - [`algos`] (`taper-algos`): PPO, IPPO, MAPPO, MADDPG, HDPO as stages, and the
//!   [`algos::Algorithm`] API (learn, save, load, resume, predict, evaluate).
//!
//! It also re-exports [`rand`], [`ChaCha8Rng`] and [`serde_json`], which public signatures use
//! (random streams; env and learner snapshots).
//!
//! ```no_run
//! use taper::prelude::*;
//! let mut agent = Ppo::new(PpoConfig::default(), "CartPole-v1", &Kwargs::new(), 1)?; // CleanRL's ppo.py
//! agent.learn(500_000)?;
//! agent.save("runs/cartpole".as_ref())?;                 // what `taper eval runs/cartpole` reads
//! let eval = agent.evaluate(&EvalOptions { deterministic: true, ..Default::default() }, &mut |_, _| {})?;
//! println!("mean return over 10 episodes: {:.1}", eval.summary().mean_return);
//! # Ok::<(), Box<dyn std::error::Error>>(())
//! ```
#![warn(missing_docs)]

pub use rand;
pub use rand_chacha::ChaCha8Rng;
pub use serde_json;
pub use taper_algos as algos;
pub use taper_critics as critics;
pub use taper_diagnostics as diagnostics;
pub use taper_envs as envs;
pub use taper_tensor as tensor;
pub use taper_train as train;

/// The version of taper.
pub const VERSION: &str = env!("CARGO_PKG_VERSION");

/// What examples and most programs need.
pub mod prelude {
    pub use rand_chacha::ChaCha8Rng;
    pub use taper_algos::prelude::*;
    pub use taper_critics::{Actor, Critic, QCritic};
    pub use taper_envs::{
        make, make_parallel, make_vec, register, register_parallel, Action, Env, EnvError, MultiAction, ParallelEnv,
        Space, StepOutcome, VecAction, VecEnv, VecParallel,
    };
    pub use taper_tensor::rng::{stream, Purpose};
    pub use taper_train::{Checkpoint, LearnerState, Progress, RunInfo, RunSummary, TrainError};
}
