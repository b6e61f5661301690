//! The CLI's error type: every failure becomes one line on stderr and a non-zero exit.

use thiserror::Error;

/// Errors of the `taper` command.
#[derive(Debug, Error)]
pub enum CliError {
    /// A malformed argument.
    #[error("invalid argument {arg}: {reason}")]
    Arg {
        /// The argument.
        arg: &'static str,
        /// What is wrong.
        reason: String,
    },
    /// File-system errors.
    #[error("{path}: {source}")]
    Io {
        /// The path.
        path: String,
        /// The cause.
        #[source]
        source: std::io::Error,
    },
    /// From the algorithms.
    #[error(transparent)]
    Algo(#[from] taper::algos::AlgoError),
    /// From the trainer.
    #[error(transparent)]
    Train(#[from] taper::train::TrainError),
    /// From the envs.
    #[error(transparent)]
    Env(#[from] taper::envs::EnvError),
    /// A launch over several processes (MPI) that this command cannot serve as asked.
    #[error("MPI launch: {0}")]
    Cluster(String),
}

/// `Result` with [`CliError`].
pub type Result<T, E = CliError> = std::result::Result<T, E>;

impl CliError {
    /// An I/O error at `path`.
    pub fn io(path: impl AsRef<std::path::Path>, source: std::io::Error) -> Self {
        CliError::Io {
            path: path.as_ref().display().to_string(),
            source,
        }
    }
}
