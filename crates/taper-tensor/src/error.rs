//! The crate's error type.

use thiserror::Error;

/// Errors from `taper-tensor`.
#[derive(Debug, Error)]
pub enum TensorError {
    /// Two buffers that must agree in length do not.
    #[error("shape mismatch in {what}: expected {expected} values, got {got}")]
    Shape {
        /// What was being checked.
        what: &'static str,
        /// The expected number of values.
        expected: usize,
        /// The number received.
        got: usize,
    },
    /// A hyperparameter or argument is outside its valid range.
    #[error("invalid argument `{name}`: {reason}")]
    Invalid {
        /// The argument's name.
        name: &'static str,
        /// Why it is invalid.
        reason: String,
    },
    /// An error raised by candle.
    #[error("candle: {0}")]
    Candle(#[from] candle_core::Error),
}

/// `Result` with [`TensorError`].
pub type Result<T, E = TensorError> = std::result::Result<T, E>;

pub(crate) fn check_len(what: &'static str, expected: usize, got: usize) -> Result<()> {
    if expected == got {
        Ok(())
    } else {
        Err(TensorError::Shape { what, expected, got })
    }
}
