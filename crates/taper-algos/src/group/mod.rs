//! The group-relative policy optimizers' numerics, for sequence policies trained on
//! verifiable rewards: G completions per prompt form a group, and every quantity below works
//! on such groups (rows `[prompts × G]`, group-major).
//!
//! - [`advantage`]: GRPO's group advantages `(r − mean)/(std + ε)` with `scale_rewards`
//!   group, batch or none (none is Dr. GRPO's), as TRL computes them;
//! - [`token_loss`]: the per-token clipped surrogate with ε_low/ε_high (DAPO's clip-higher)
//!   and the k3 KL to a reference policy, with their gradients, and the loss aggregations
//!   `grpo`, `bnpo`, `dr_grpo` and `dapo` as weights on the per-token losses;
//! - [`d3s`]: D³S's sample-level selection (the subset of size m that maximises the variance
//!   of the advantages, exactly, in O(n log n)), intra-group and cross-group, its token-level
//!   top-K% by |A|·H, and its linear schedule;
//! - [`adora`]: ADORA's classification of groups by length and difficulty advantage, and the
//!   weights it puts on their advantages;
//! - [`dapo`]: DAPO's dynamic-sampling filter and overlong reward shaping.
//!
//! ```
//! use taper_algos::group::advantage::{group_advantages, ScaleRewards};
//! // Two prompts, G = 4: one mixed group, one all-correct group.
//! let r = [1.0, 0.0, 0.0, 1.0, 1.0, 1.0, 1.0, 1.0];
//! let a = group_advantages(&r, 4, ScaleRewards::Group, 1e-4)?;
//! assert!((a[0] - 0.5 / ((1.0f32 / 3.0).sqrt() + 1e-4)).abs() < 1e-6); // sample std of [1, 0, 0, 1]
//! assert!(a[4..].iter().all(|&x| x == 0.0)); // an all-correct group teaches nothing
//! # Ok::<(), taper_algos::AlgoError>(())
//! ```

pub mod adora;
pub mod advantage;
pub mod d3s;
pub mod dapo;
pub mod token_loss;

use crate::error::{AlgoError, Result};

/// Checks that `n` rows form whole groups of `g ≥ 2`.
pub(crate) fn check_groups(n: usize, g: usize) -> Result<usize> {
    if g < 2 {
        return Err(AlgoError::Config {
            field: "num_generations",
            reason: format!("a group needs at least 2 completions to compare, got {g}"),
        });
    }
    if !n.is_multiple_of(g) {
        return Err(AlgoError::Config {
            field: "num_generations",
            reason: format!("{n} completions do not split into groups of {g}"),
        });
    }
    Ok(n / g)
}
