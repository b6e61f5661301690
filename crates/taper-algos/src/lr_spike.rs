//! A learning-rate spike for stress tests ([`LrSpike`]): for a stretch of updates the rate is
//! multiplied by a large factor, as "Ghosts of Softmax" does to test whether a safeguard keeps a
//! model from collapsing.

use crate::error::{AlgoError, Result};
use serde::{Deserialize, Serialize};

/// The rate times `factor` for `updates` updates from update `start` (updates count from 1).
#[derive(Debug, Clone, Copy, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct LrSpike {
    /// The first update of the spike.
    pub start: u64,
    /// Updates it lasts.
    pub updates: u64,
    /// The multiplier.
    pub factor: f64,
}

impl LrSpike {
    /// The multiplier at update `it`: `factor` inside the spike, 1 outside.
    pub fn factor_at(&self, it: u64) -> f64 {
        if it >= self.start && it < self.start + self.updates {
            self.factor
        } else {
            1.0
        }
    }

    /// Errors unless `start ≥ 1`, `updates ≥ 1` and `factor` is positive and finite.
    pub fn validate(&self) -> Result<()> {
        if self.start == 0 || self.updates == 0 || !(self.factor > 0.0 && self.factor.is_finite()) {
            return Err(AlgoError::Config {
                field: "lr_spike",
                reason: format!(
                    "needs start ≥ 1 (updates count from 1), updates ≥ 1 and a positive factor, got {self:?}"
                ),
            });
        }
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_spike_covers_its_updates_only() {
        let s = LrSpike {
            start: 3,
            updates: 2,
            factor: 1000.0,
        };
        let f: Vec<f64> = (1..=6).map(|it| s.factor_at(it)).collect();
        assert_eq!(f, vec![1.0, 1.0, 1000.0, 1000.0, 1.0, 1.0]);
        assert!(s.validate().is_ok());
        for bad in [
            LrSpike { start: 0, ..s },
            LrSpike { updates: 0, ..s },
            LrSpike { factor: 0.0, ..s },
            LrSpike { factor: f64::NAN, ..s },
        ] {
            assert!(bad.validate().is_err());
        }
    }
}
