//! DAPO's sample filtering and reward shaping (Decoupled Clip and Dynamic sAmpling Policy
//! Optimization; its clip-higher and token-level loss are options of
//! [`super::token_loss`]).
//!
//! - **Dynamic sampling:** a group whose rewards are all equal (all right or all wrong) has
//!   zero advantages and teaches nothing; it is dropped and the batch refilled with new
//!   prompts ([`informative_groups`]).
//! - **Overlong reward shaping:** a completion longer than `max_len − cache` loses reward
//!   linearly, down to −1 at `max_len` and beyond ([`overlong_penalty`]).

use serde::{Deserialize, Serialize};

/// Which groups (`[prompts × g]`) have rewards that are not all equal.
pub fn informative_groups(rewards: &[f32], g: usize) -> crate::Result<Vec<bool>> {
    super::check_groups(rewards.len(), g)?;
    Ok(rewards.chunks(g).map(|grp| grp.iter().any(|&r| r != grp[0])).collect())
}

/// Overlong reward shaping settings.
#[derive(Debug, Clone, Copy, PartialEq, Serialize, Deserialize)]
pub struct Overlong {
    /// L_max: from here on the penalty is −1 (× `factor`).
    pub max_len: usize,
    /// L_cache: the penalty ramps over the last `cache` tokens before `max_len`.
    pub cache: usize,
    /// The penalty's scale (1.0 in DAPO).
    pub factor: f32,
}

/// The reward added to a completion of `len` tokens: 0 up to `max_len − cache`, then
/// `((max_len − cache) − len)/cache`, and −1 beyond `max_len`; times `factor`.
pub fn overlong_penalty(o: &Overlong, len: usize) -> f32 {
    let start = o.max_len.saturating_sub(o.cache);
    let p = if len <= start {
        0.0
    } else if len <= o.max_len && o.cache > 0 {
        (start as f64 - len as f64) / o.cache as f64
    } else {
        -1.0
    };
    (p * o.factor as f64) as f32
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn filter_and_penalty_by_hand() {
        let r = [1.0, 1.0, 0.0, 0.0, 1.0, 1.0, 0.5, 0.5];
        assert_eq!(informative_groups(&r, 2).unwrap(), vec![false, false, false, false]);
        assert_eq!(informative_groups(&r, 4).unwrap(), vec![true, true]);
        assert!(informative_groups(&r, 3).is_err());
        // DAPO's values: L_max 20 480, L_cache 4 096.
        let o = Overlong {
            max_len: 20_480,
            cache: 4_096,
            factor: 1.0,
        };
        assert_eq!(overlong_penalty(&o, 16_384), 0.0);
        assert_eq!(overlong_penalty(&o, 18_432), -0.5);
        assert_eq!(overlong_penalty(&o, 20_480), -1.0);
        assert_eq!(overlong_penalty(&o, 30_000), -1.0);
        let small = Overlong {
            max_len: 8,
            cache: 4,
            factor: 0.5,
        };
        assert_eq!(overlong_penalty(&small, 6), -0.25);
    }
}
