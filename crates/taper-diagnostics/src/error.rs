//! The crate's error type.

use thiserror::Error;

/// Errors from `taper-diagnostics`.
#[derive(Debug, Error)]
#[non_exhaustive]
pub enum DiagnosticsError {
    /// Buffers of different lengths.
    #[error("shape mismatch in {what}: expected {expected}, got {got}")]
    Shape {
        /// What was checked.
        what: &'static str,
        /// Expected length.
        expected: usize,
        /// Received length.
        got: usize,
    },
    /// An invalid argument.
    #[error("invalid argument `{name}`: {reason}")]
    Invalid {
        /// The argument.
        name: &'static str,
        /// Why.
        reason: String,
    },
    /// From a critic or an actor.
    #[error(transparent)]
    Critic(#[from] taper_critics::CriticError),
    /// From an env.
    #[error(transparent)]
    Env(#[from] taper_envs::EnvError),
}

/// `Result` with [`DiagnosticsError`].
pub type Result<T, E = DiagnosticsError> = std::result::Result<T, E>;

/// A [`DiagnosticsError::Shape`] unless `got == expected`.
pub(crate) fn check_len(what: &'static str, expected: usize, got: usize) -> Result<()> {
    if got != expected {
        return Err(DiagnosticsError::Shape { what, expected, got });
    }
    Ok(())
}
