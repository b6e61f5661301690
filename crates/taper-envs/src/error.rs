//! The crate's error type.

use thiserror::Error;

/// Errors from `taper-envs`.
#[derive(Debug, Error)]
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
}

/// `Result` with [`EnvError`].
pub type Result<T, E = EnvError> = std::result::Result<T, E>;
