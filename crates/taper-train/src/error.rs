//! The crate's error type.

use thiserror::Error;

/// Errors from `taper-train`, and from learners (which convert their own errors into
/// [`TrainError::Learner`]).
#[derive(Debug, Error)]
#[non_exhaustive]
pub enum TrainError {
    /// A plan or option that cannot run (a budget already reached, a zero interval).
    #[error("invalid {what}: {reason}")]
    Invalid {
        /// The option or value.
        what: &'static str,
        /// Why.
        reason: String,
    },
    /// A loss, gradient or metric became NaN or infinite.
    #[error("non-finite {term} at update {update}; training stopped")]
    NonFinite {
        /// The update (1-based).
        update: u64,
        /// The loss term or quantity.
        term: String,
    },
    /// The run was stopped by SIGINT or SIGTERM after writing a checkpoint.
    #[error("interrupted at step {step}; {resume}")]
    Interrupted {
        /// The step of the checkpoint.
        step: u64,
        /// How to continue.
        resume: String,
    },
    /// A checkpoint is missing, corrupt, or does not fit the learner.
    #[error("checkpoint {path}: {reason}")]
    Checkpoint {
        /// The file or folder.
        path: String,
        /// What is wrong.
        reason: String,
    },
    /// File-system errors.
    #[error("{path}: {source}")]
    Io {
        /// The path involved.
        path: String,
        /// The cause.
        #[source]
        source: std::io::Error,
    },
    /// From the envs.
    #[error(transparent)]
    Env(#[from] taper_envs::EnvError),
    /// From candle (tensors of checkpoints).
    #[error(transparent)]
    Tensor(#[from] candle_core::Error),
    /// From taper's numerics (networks, optimizers), for learners built on them.
    #[error(transparent)]
    Numerics(#[from] taper_tensor::TensorError),
    /// A learner's own error (an algorithm's, or a user's learner's).
    #[error(transparent)]
    Learner(Box<dyn std::error::Error + Send + Sync>),
}

/// `Result` with [`TrainError`].
pub type Result<T, E = TrainError> = std::result::Result<T, E>;

impl TrainError {
    /// An I/O error at `path`.
    pub fn io(path: impl AsRef<std::path::Path>, source: std::io::Error) -> Self {
        TrainError::Io {
            path: path.as_ref().display().to_string(),
            source,
        }
    }
    /// A learner's own error.
    pub fn learner(e: impl Into<Box<dyn std::error::Error + Send + Sync>>) -> Self {
        TrainError::Learner(e.into())
    }
    /// A checkpoint error at `path`.
    pub fn checkpoint(path: impl AsRef<std::path::Path>, reason: impl Into<String>) -> Self {
        TrainError::Checkpoint {
            path: path.as_ref().display().to_string(),
            reason: reason.into(),
        }
    }
}
