//! The advantage pipeline of on-policy learners: **estimate** (GAE now; group-relative
//! estimators next) → **weight** (identity now; ADORA's advantageous/disadvantageous weights
//! next) → **select** (all samples now; D³S's sample- and token-level selection next). Each
//! stage is a trait, so an algorithm is a choice of stages rather than a copy of a trainer.
//!
//! ```
//! use taper_algos::advantage::{AdvantageInput, Pipeline};
//! // One env, three steps, the last one terminal.
//! let inp = AdvantageInput {
//!     num_rows: 1,
//!     rewards: &[1.0, 1.0, 1.0],
//!     values: &[0.0, 0.0, 0.0],
//!     terminated: &[false, false, true],
//!     truncated: &[false; 3],
//!     final_values: &[0.0; 3],
//!     last_values: &[0.0],
//! };
//! let (mut adv, mut ret, mut sel) = (vec![0.0; 3], vec![0.0; 3], Vec::new());
//! Pipeline::gae(1.0, 1.0).run(&inp, &mut adv, &mut ret, &mut sel)?;
//! assert_eq!(adv, vec![3.0, 2.0, 1.0]); // undiscounted returns to the end
//! assert_eq!(sel, vec![0, 1, 2]);       // every sample
//! # Ok::<(), taper_algos::AlgoError>(())
//! ```

use crate::error::Result;
use taper_tensor::returns::{gae_into, GaeInput};

/// What estimators read: a rollout `[T, N]`, time-major, with the values in the units of the
/// returns (de-normalised where the critic learns normalised values).
#[derive(Debug, Clone, Copy)]
pub struct AdvantageInput<'a> {
    /// Rows per step `N` (envs × agents).
    pub num_rows: usize,
    /// Rewards `[T, N]`.
    pub rewards: &'a [f32],
    /// `V(s_t)` `[T, N]`.
    pub values: &'a [f32],
    /// Terminal transitions `[T, N]`: the value after them is 0.
    pub terminated: &'a [bool],
    /// Truncated transitions `[T, N]`: bootstrap from `final_values`.
    pub truncated: &'a [bool],
    /// `V(final observation)` where truncated `[T, N]`.
    pub final_values: &'a [f32],
    /// `V(s_T)` after the last step `[N]`.
    pub last_values: &'a [f32],
}

/// The first stage: advantages and the returns the critic learns.
pub trait Estimate: Send + Sync {
    /// Writes advantages and returns `[T, N]`.
    fn estimate(&self, inp: &AdvantageInput<'_>, adv: &mut [f32], ret: &mut [f32]) -> Result<()>;
}

/// Generalised advantage estimation, `δ_t = r_t + γ·V_next − V_t`, `A_t = δ_t + γλ·A_{t+1}`,
/// keeping terminated and truncated transitions apart (`taper_tensor::returns::gae_into`).
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct Gae {
    /// Discount γ.
    pub gamma: f32,
    /// Trace decay λ.
    pub lambda: f32,
}

impl Estimate for Gae {
    fn estimate(&self, inp: &AdvantageInput<'_>, adv: &mut [f32], ret: &mut [f32]) -> Result<()> {
        gae_into(
            &GaeInput {
                num_envs: inp.num_rows,
                rewards: inp.rewards,
                values: inp.values,
                terminated: inp.terminated,
                truncated: inp.truncated,
                final_values: inp.final_values,
                last_values: inp.last_values,
                gamma: self.gamma,
                lambda: self.lambda,
            },
            adv,
            ret,
        )?;
        Ok(())
    }
}

/// The second stage: reweights advantages in place.
pub trait Weight: Send + Sync {
    /// Reweights `adv` `[T, N]`.
    fn weight(&self, adv: &mut [f32]) -> Result<()>;
}

/// Leaves the advantages as they are.
#[derive(Debug, Clone, Copy, Default, PartialEq)]
pub struct Identity;

impl Weight for Identity {
    fn weight(&self, _adv: &mut [f32]) -> Result<()> {
        Ok(())
    }
}

/// The third stage: which samples the update learns from.
pub trait Select: Send + Sync {
    /// Writes the indices of the selected samples of `adv` `[T, N]` into `selected`, in order.
    fn select(&self, adv: &[f32], selected: &mut Vec<usize>) -> Result<()>;
}

/// Every sample.
#[derive(Debug, Clone, Copy, Default, PartialEq)]
pub struct All;

impl Select for All {
    fn select(&self, adv: &[f32], selected: &mut Vec<usize>) -> Result<()> {
        selected.clear();
        selected.extend(0..adv.len());
        Ok(())
    }
}

/// Estimate → weight → select.
pub struct Pipeline {
    /// The estimator.
    pub estimate: Box<dyn Estimate>,
    /// The weighting.
    pub weight: Box<dyn Weight>,
    /// The selection.
    pub select: Box<dyn Select>,
}

impl std::fmt::Debug for Pipeline {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("Pipeline")
    }
}

impl Pipeline {
    /// PPO's pipeline: GAE(γ, λ), no weighting, every sample.
    pub fn gae(gamma: f32, lambda: f32) -> Self {
        Pipeline {
            estimate: Box::new(Gae { gamma, lambda }),
            weight: Box::new(Identity),
            select: Box::new(All),
        }
    }
    /// Runs the three stages: advantages and returns `[T, N]`, and the selected samples.
    pub fn run(
        &self,
        inp: &AdvantageInput<'_>,
        adv: &mut [f32],
        ret: &mut [f32],
        selected: &mut Vec<usize>,
    ) -> Result<()> {
        self.estimate.estimate(inp, adv, ret)?;
        self.weight.weight(adv)?;
        self.select.select(adv, selected)
    }
}
