//! # taper-train
//!
//! The house every learner lives in: one [`Trainer`] that drives any [`Learner`] and owns what
//! every run needs, so an algorithm (or a user's own learner) writes only its learning step.
//!
//! - [`learner`]: the [`Learner`] trait (plan, step, export/import, evaluate, predict);
//! - [`trainer`]: the [`Trainer`] (run folder, sinks, periodic and final checkpoints,
//!   `stop_after`, exact resume, evaluation every N steps, callbacks, the non-finite guard);
//! - [`checkpoint`]: the checkpoint folder format and its atomic writes;
//! - [`metrics`]: a row of named numbers; [`sinks`]: `metrics.jsonl` and `metrics.csv`;
//!   [`tensorboard`]: TensorBoard event files; [`progress`]: the progress display;
//! - [`run_file`]: a run's `config.toml`;
//! - [`callback`]: callbacks that see each row and may stop training;
//! - [`eval`]: episode runners with a step cap and SB3-style summaries;
//! - [`seeds`]: several seeds in parallel;
//! - [`run_dir`]: ownership of a run folder (a lock while writing, no silent overwrite, debris
//!   of interrupted writes removed); [`interrupt`]: SIGINT/SIGTERM stop a run after a
//!   checkpoint; [`keep_awake`]: a second thread kept polling for the networks' split passes.
//!
//! ```no_run
//! use taper_train::{Trainer, TrainOptions};
//! # fn demo(learner: &mut dyn taper_train::Learner) -> taper_train::Result<()> {
//! let mut trainer = Trainer::new("runs/cartpole").options(TrainOptions {
//!     checkpoint_every: 50_000,
//!     eval_every: 25_000,
//!     ..TrainOptions::default()
//! });
//! let summary = trainer.fit(learner, 200_000)?;
//! println!("{} steps", summary.progress.global_step);
//! # Ok(()) }
//! ```
#![warn(missing_docs)]

pub mod callback;
pub mod checkpoint;
mod error;
pub mod eval;
pub mod interrupt;
pub mod keep_awake;
pub mod learner;
pub mod metrics;
pub mod progress;
pub mod run_dir;
pub mod run_file;
pub mod seeds;
pub mod sinks;
pub mod tensorboard;
pub mod trainer;

pub use callback::{Callback, Control, NoCallback, RowContext};
pub use checkpoint::{Checkpoint, CheckpointState, ModelShape, NamedTensors};
pub use error::{Result, TrainError};
pub use eval::{EnvView, EpisodeSummary, EvalOptions, Evaluation};
pub use learner::{Learner, LearnerState, Progress, RunInfo};
pub use metrics::Metrics;
pub use trainer::{RunSummary, TrainOptions, Trainer};
