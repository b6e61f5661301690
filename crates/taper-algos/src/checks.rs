//! Range checks shared by the algorithms' configs; each fails with [`AlgoError::Config`]
//! naming the field. Also the check that a caller's buffer holds what a call writes into it.

use crate::error::{AlgoError, Result};

/// An [`AlgoError::Config`] for `field`.
pub(crate) fn bad<T>(field: &'static str, reason: String) -> Result<T> {
    Err(AlgoError::Config { field, reason })
}

/// Every count is at least 1.
pub(crate) fn at_least_one(counts: &[(&'static str, usize)]) -> Result<()> {
    match counts.iter().find(|(_, v)| *v == 0) {
        Some((f, _)) => bad(f, "must be at least 1".into()),
        None => Ok(()),
    }
}

/// A finite number above 0.
pub(crate) fn positive(field: &'static str, v: f64) -> Result<()> {
    if v.is_finite() && v > 0.0 {
        Ok(())
    } else {
        bad(field, format!("must be a positive number, got {v}"))
    }
}

/// A number in `[0, 1]`.
pub(crate) fn unit_interval(field: &'static str, v: f64) -> Result<()> {
    if (0.0..=1.0).contains(&v) {
        Ok(())
    } else {
        bad(field, format!("must be in [0, 1], got {v}"))
    }
}

/// The widest hidden layer accepted.
pub(crate) const MAX_WIDTH: usize = 16_384;
/// The most hidden layers accepted.
pub(crate) const MAX_LAYERS: usize = 16;
/// The most parallel envs accepted.
pub(crate) const MAX_ENVS: usize = 65_536;
/// The most rows (samples, or paths × periods) one batch may hold.
pub(crate) const MAX_ROWS: usize = 1 << 26;

/// Hidden-layer widths: each in `1..=MAX_WIDTH`, at most `MAX_LAYERS` layers (checked before
/// anything is allocated).
pub(crate) fn widths(field: &'static str, w: &[usize]) -> Result<()> {
    if w.contains(&0) {
        bad(field, "layer widths must be positive".into())
    } else if w.iter().any(|&x| x > MAX_WIDTH) || w.len() > MAX_LAYERS {
        bad(
            field,
            format!("at most {MAX_LAYERS} layers of at most {MAX_WIDTH} units, got {w:?}"),
        )
    } else {
        Ok(())
    }
}

/// A count or a product of counts at most `max` (checked before anything is allocated).
pub(crate) fn at_most(field: &'static str, what: &str, v: usize, max: usize) -> Result<()> {
    if v > max {
        bad(field, format!("{what} is {v}, more than the limit of {max}"))
    } else {
        Ok(())
    }
}

/// An error (a tensor shape error) unless a buffer of `got` values holds the `expected` ones a
/// call writes into it.
pub(crate) fn holds(what: &'static str, expected: usize, got: usize) -> Result<()> {
    if got < expected {
        return Err(taper_tensor::TensorError::Shape { what, expected, got }.into());
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn each_check_names_its_field() {
        let field = |r: Result<()>| match r {
            Err(AlgoError::Config { field, .. }) => field,
            other => panic!("expected a config error, got {other:?}"),
        };
        assert_eq!(field(at_least_one(&[("a", 1), ("b", 0), ("c", 0)])), "b");
        assert!(at_least_one(&[("a", 1)]).is_ok());
        assert_eq!(field(positive("lr", 0.0)), "lr");
        assert_eq!(field(positive("lr", f64::NAN)), "lr");
        assert_eq!(field(positive("lr", f64::INFINITY)), "lr");
        assert!(positive("lr", 1e-9).is_ok());
        assert_eq!(field(unit_interval("gamma", 1.5)), "gamma");
        assert_eq!(field(unit_interval("gamma", f64::NAN)), "gamma");
        assert!(unit_interval("gamma", 1.0).is_ok() && unit_interval("gamma", 0.0).is_ok());
        assert_eq!(field(widths("hidden", &[64, 0])), "hidden");
        assert_eq!(field(widths("hidden", &[100_000_000])), "hidden");
        assert_eq!(field(widths("hidden", &[8; 17])), "hidden");
        assert_eq!(
            field(at_most("num_envs", "num_envs", 1_000_000_000, MAX_ENVS)),
            "num_envs"
        );
        assert!(at_most("num_envs", "num_envs", 16, MAX_ENVS).is_ok());
        assert!(widths("hidden", &[64, 64]).is_ok());
    }
}
