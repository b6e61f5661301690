//! # taper-envs
//!
//! Environments with Gymnasium's contract, vectorised without per-step allocation, and exact
//! solvers where an exact answer exists.
//!
//! - [`env`] ([`Env`], [`Action`]) and [`spaces`] ([`Space`]): the single-agent API, and the
//!   helpers an env written outside the crate uses (`check_obs`, `seeded_rng`,
//!   `out_of_space`, snapshots);
//! - [`vec_env`] ([`VecEnv`]): N envs into flat buffers, same-step autoreset, final
//!   observations kept, observation and reward normalisation ([`normalize`]: running
//!   mean and variance);
//! - [`parallel`] ([`ParallelEnv`], [`VecParallel`]): multi-agent envs with PettingZoo
//!   Parallel's shape, and M of them stepped together;
//! - [`wrappers`]: time limit, action clipping, episode statistics;
//! - [`classic`]: `CartPole-v1`, `Pendulum-v1`, `MountainCarContinuous-v0`; [`toy_text`]: `FrozenLake-v1`,
//!   `CliffWalking-v1`; [`mpe`]: `SimpleSpread-v3`; [`inventory`]: one store and networks,
//!   with exact and heuristic solvers;
//! - [`seq`]: sequence tasks with verifiable rewards (copy, reverse, sort, addition), with
//!   held-apart train and test prompts;
//! - [`solve`]: value iteration and finite-horizon DP;
//! - [`registry`]: ids → envs, with [`register`] and [`register_parallel`] for a program's
//!   own envs.
//!
//! The crate depends on no tensor library: its simulators and solvers are plain Rust.
//!
//! ```
//! use taper_envs::{make, Action, Env};
//! let mut env = make("FrozenLake-v1")?;
//! env.reset(Some(0))?;
//! let step = env.step(Action::Discrete(2))?;
//! assert!(step.obs[0] >= 0.0);
//! # Ok::<(), taper_envs::EnvError>(())
//! ```
#![warn(missing_docs)]
// Index loops read best in numeric kernels; NaN-rejecting `!(x > 0.0)` checks are deliberate.
#![allow(clippy::needless_range_loop, clippy::neg_cmp_op_on_partial_ord)]

pub mod classic;
pub mod env;
mod error;
pub mod inventory;
pub mod mountain_car;
pub mod mpe;
pub mod normalize;
pub mod parallel;
pub mod registry;
pub mod risky_point_mass;
pub mod seq;
pub mod solve;
pub mod spaces;
pub mod toy_text;
pub mod vec_env;
pub mod wrappers;

pub use env::{Action, Env, Step, StepOutcome};
pub use error::{EnvError, Result};
pub use parallel::{MaEpisode, MultiAction, ParallelEnv, StepBuffers, VecParallel};
pub use registry::{make, make_parallel, make_vec, make_vec_with, make_with, register, register_parallel, Kwargs};
pub use spaces::Space;
pub use vec_env::{NormalizeConfig, NormalizerState, VecAction, VecEnv, VecEnvState};
