//! The crate's error type.

use thiserror::Error;

/// Errors from `taper-envs`, and from envs written outside it ([`EnvError::Custom`]).
#[derive(Debug, Error)]
#[non_exhaustive]
pub enum EnvError {
    /// No env is registered under this id.
    #[error("unknown env id `{id}`; known ids: {known}")]
    UnknownEnv {
        /// The id asked for.
        id: String,
        /// The registered ids, comma-separated.
        known: String,
    },
    /// The action is not in the action space.
    #[error("action {action} is outside the action space {space}")]
    ActionOutOfSpace {
        /// The action, formatted.
        action: String,
        /// The space, formatted.
        space: String,
    },
    /// `step` was called before `reset`, or after the episode ended without a reset.
    #[error("step called on an env that needs a reset ({0})")]
    NeedsReset(&'static str),
    /// A buffer or argument has the wrong size.
    #[error("shape mismatch in {what}: expected {expected}, got {got}")]
    Shape {
        /// What was checked.
        what: &'static str,
        /// Expected length.
        expected: usize,
        /// Received length.
        got: usize,
    },
    /// An invalid configuration value.
    #[error("invalid argument `{name}`: {reason}")]
    Invalid {
        /// The argument.
        name: &'static str,
        /// Why.
        reason: String,
    },
    /// A failure of an env defined outside taper (a simulator that lost its connection, a
    /// file it could not read), with the env's own error as the source.
    #[error("env `{env}`: {source}")]
    Custom {
        /// The env's name or id.
        env: String,
        /// The env's own error.
        #[source]
        source: Box<dyn std::error::Error + Send + Sync>,
    },
}

impl EnvError {
    /// A [`EnvError::Custom`] error of env `env` from any error or message.
    ///
    /// ```
    /// use taper_envs::EnvError;
    /// let e = EnvError::custom("MyRobot-v0", "the simulator stopped answering");
    /// assert_eq!(e.to_string(), "env `MyRobot-v0`: the simulator stopped answering");
    /// ```
    pub fn custom(env: impl Into<String>, source: impl Into<Box<dyn std::error::Error + Send + Sync>>) -> Self {
        EnvError::Custom {
            env: env.into(),
            source: source.into(),
        }
    }
}

/// `Result` with [`EnvError`].
pub type Result<T, E = EnvError> = std::result::Result<T, E>;
