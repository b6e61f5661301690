//! The CLI's error type: every failure becomes one line on stderr and a non-zero exit.

use thiserror::Error;

/// Errors of the `taper` command.
#[derive(Debug, Error)]
pub enum CliError {
    /// An unknown algorithm.
    #[error("unknown algo `{0}`; known algos: ppo, hdpo")]
    UnknownAlgo(String),
    /// A config file that is not valid TOML or has unknown keys.
    #[error("config {path}: {reason}")]
    Config {
        /// The file.
        path: String,
        /// What is wrong.
        reason: String,
    },
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
    /// From the envs.
    #[error(transparent)]
    Env(#[from] taper::envs::EnvError),
}

/// `Result` with [`CliError`].
pub type Result<T, E = CliError> = std::result::Result<T, E>;

impl CliError {
    pub fn io(path: impl AsRef<std::path::Path>, source: std::io::Error) -> Self {
        CliError::Io {
            path: path.as_ref().display().to_string(),
            source,
        }
    }
}
