//! [`ValueHead`], the choice of PPO's value output and loss: a scalar learned by squared error
//! (CleanRL), or a categorical head learned by cross-entropy against HL-Gauss or two-hot
//! targets ("Stop Regressing", Farebrother et al. 2024; see [`taper_critics::categorical`]).
//!
//! In a config file:
//!
//! ```toml
//! [ppo.value_head]
//! kind = "hl_gauss"   # or "two_hot"; "mse" is the default
//! min = 0.0           # the support: returns are clamped to [min, max]
//! max = 100.0
//! bins = 51           # the default
//! sigma_ratio = 0.75  # HL-Gauss only: σ in bin widths, the default
//! ```

use crate::checks::bad;
use crate::error::Result;
use serde::{Deserialize, Serialize};
use taper_critics::{Categorical, Encoding};

/// PPO's value output and loss.
#[derive(Debug, Clone, PartialEq, Default, Serialize, Deserialize)]
#[serde(tag = "kind", rename_all = "snake_case", deny_unknown_fields)]
pub enum ValueHead {
    /// One output, learned by (optionally clipped) squared error: CleanRL's.
    #[default]
    Mse,
    /// `bins` logits on `[min, max]`, learned by cross-entropy against HL-Gauss targets.
    HlGauss {
        /// The support's lower end (returns below are clamped to it).
        min: f64,
        /// The support's upper end.
        max: f64,
        /// Bins (51 in "Stop Regressing").
        #[serde(default = "default_bins")]
        bins: usize,
        /// The Gaussian's σ in bin widths (0.75 in "Stop Regressing").
        #[serde(default = "default_sigma_ratio")]
        sigma_ratio: f64,
    },
    /// `bins` logits on `[min, max]`, learned by cross-entropy against two-hot targets.
    TwoHot {
        /// The support's lower end.
        min: f64,
        /// The support's upper end.
        max: f64,
        /// Bins.
        #[serde(default = "default_bins")]
        bins: usize,
    },
}

fn default_bins() -> usize {
    51
}

fn default_sigma_ratio() -> f64 {
    0.75
}

impl ValueHead {
    /// Whether this is the scalar head (then it is left out of written configs).
    pub fn is_mse(&self) -> bool {
        matches!(self, ValueHead::Mse)
    }

    /// The categorical head this describes, `None` for the scalar one; a config error if its
    /// support, bins or σ are out of range.
    pub fn categorical(&self) -> Result<Option<Categorical>> {
        let (min, max, bins, enc) = match *self {
            ValueHead::Mse => return Ok(None),
            ValueHead::HlGauss {
                min,
                max,
                bins,
                sigma_ratio,
            } => (
                min,
                max,
                bins,
                Encoding::HlGauss {
                    sigma_ratio: sigma_ratio as f32,
                },
            ),
            ValueHead::TwoHot { min, max, bins } => (min, max, bins, Encoding::TwoHot),
        };
        if bins > crate::checks::MAX_WIDTH {
            return bad(
                "value_head",
                format!("at most {} bins, got {bins}", crate::checks::MAX_WIDTH),
            );
        }
        match Categorical::new(min as f32, max as f32, bins, enc) {
            Ok(c) => Ok(Some(c)),
            Err(e) => bad("value_head", e.to_string()),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[derive(Debug, Deserialize)]
    struct Wrap {
        value_head: ValueHead,
    }

    #[test]
    fn parses_with_defaults_and_rejects_bad_heads() {
        let w: Wrap = toml::from_str("[value_head]\nkind = \"hl_gauss\"\nmin = 0\nmax = 100\n").unwrap();
        let c = w.value_head.categorical().unwrap().unwrap();
        assert_eq!(c.bins(), 51);
        assert_eq!(c.encoding(), Encoding::HlGauss { sigma_ratio: 0.75 });
        let w: Wrap = toml::from_str("[value_head]\nkind = \"two_hot\"\nmin = -1\nmax = 1\nbins = 5\n").unwrap();
        assert_eq!(w.value_head.categorical().unwrap().unwrap().bins(), 5);
        assert!(ValueHead::Mse.categorical().unwrap().is_none());
        // A typo, an unknown kind, a missing support, an empty support: errors.
        assert!(toml::from_str::<Wrap>("[value_head]\nkind = \"hl_gauss\"\nmin = 0\nmax = 1\nbin = 5\n").is_err());
        assert!(toml::from_str::<Wrap>("[value_head]\nkind = \"c51\"\nmin = 0\nmax = 1\n").is_err());
        assert!(toml::from_str::<Wrap>("[value_head]\nkind = \"hl_gauss\"\nmin = 0\n").is_err());
        let bad = ValueHead::HlGauss {
            min: 1.0,
            max: 1.0,
            bins: 51,
            sigma_ratio: 0.75,
        };
        assert!(bad.categorical().is_err());
    }
}
