//! The crate's error type.

use thiserror::Error;

/// Errors from `taper-algos`.
#[derive(Debug, Error)]
#[non_exhaustive]
pub enum AlgoError {
    /// No algorithm has this name.
    #[error("unknown algo `{name}`; known algos: {known}")]
    UnknownAlgo {
        /// The name asked for.
        name: String,
        /// The known names, comma-separated.
        known: String,
    },
    /// A config file that is not valid TOML, or holds unknown keys or bad values.
    #[error("config {path}: {reason}")]
    ConfigFile {
        /// The file.
        path: String,
        /// What is wrong.
        reason: String,
    },
    /// A hyperparameter is invalid.
    #[error("invalid config `{field}`: {reason}")]
    Config {
        /// The key.
        field: &'static str,
        /// Why.
        reason: String,
    },
    /// The algorithm cannot handle this env.
    #[error("{algo} does not support {what}")]
    Unsupported {
        /// The algorithm.
        algo: &'static str,
        /// What it cannot handle.
        what: String,
    },
    /// A loss or gradient became NaN or infinite.
    #[error("non-finite {term} at update {update}; training stopped")]
    NonFinite {
        /// The update (1-based).
        update: u64,
        /// The loss term or quantity.
        term: &'static str,
    },
    /// The processes of a data-parallel run could not exchange what they share.
    #[error("data-parallel run: {0}")]
    Link(String),
    /// A checkpoint is missing, corrupt, or does not fit.
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
    /// From the tensor layer.
    #[error(transparent)]
    Tensor(#[from] taper_tensor::TensorError),
    /// From the critics.
    #[error(transparent)]
    Critic(#[from] taper_critics::CriticError),
    /// From the trainer (checkpoints, run folders, evaluation).
    #[error(transparent)]
    Train(#[from] taper_train::TrainError),
}

/// `Result` with [`AlgoError`].
pub type Result<T, E = AlgoError> = std::result::Result<T, E>;

impl AlgoError {
    /// An I/O error at `path`.
    pub fn io(path: impl AsRef<std::path::Path>, source: std::io::Error) -> Self {
        AlgoError::Io {
            path: path.as_ref().display().to_string(),
            source,
        }
    }
}

impl From<candle_core::Error> for AlgoError {
    fn from(e: candle_core::Error) -> Self {
        AlgoError::Tensor(e.into())
    }
}

/// Learners report their errors to the trainer as its own: the trainer's errors pass through,
/// non-finite losses keep their kind, the rest become [`taper_train::TrainError::Learner`].
impl From<AlgoError> for taper_train::TrainError {
    fn from(e: AlgoError) -> Self {
        match e {
            AlgoError::Train(t) => t,
            AlgoError::Env(e) => taper_train::TrainError::Env(e),
            AlgoError::NonFinite { update, term } => taper_train::TrainError::NonFinite {
                update,
                term: term.to_string(),
            },
            other => taper_train::TrainError::Learner(Box::new(other)),
        }
    }
}
