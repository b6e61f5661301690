//! The crate's error type.

use thiserror::Error;

/// Errors from `taper-critics`.
#[derive(Debug, Error)]
#[non_exhaustive]
pub enum CriticError {
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
    /// From the tensor layer.
    #[error(transparent)]
    Tensor(#[from] taper_tensor::TensorError),
}

/// `Result` with [`CriticError`].
pub type Result<T, E = CriticError> = std::result::Result<T, E>;

/// A [`CriticError::Shape`] unless `got == expected`.
pub(crate) fn check_len(what: &'static str, expected: usize, got: usize) -> Result<()> {
    if got != expected {
        return Err(CriticError::Shape { what, expected, got });
    }
    Ok(())
}
