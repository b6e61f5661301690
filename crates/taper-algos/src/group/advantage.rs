//! GRPO's group-relative advantages, as TRL's `GRPOTrainer` computes them: the reward minus
//! its group's mean, divided by a standard deviation (Bessel-corrected) plus ε, where the
//! standard deviation is the group's (`scale_rewards = "group"`, the default), the whole
//! batch's (`"batch"`), or not used (`"none"`, Dr. GRPO). TRL's ε is 1e-4.

use super::check_groups;
use crate::error::Result;
use serde::{Deserialize, Serialize};

/// How advantages are scaled.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize, Default)]
#[serde(rename_all = "lowercase")]
pub enum ScaleRewards {
    /// By the group's standard deviation (GRPO).
    #[default]
    Group,
    /// By the batch's standard deviation.
    Batch,
    /// Not scaled: `r − mean` (Dr. GRPO).
    None,
}

/// The sample standard deviation (n − 1 in the denominator; 0 for one value).
fn std(x: &[f64]) -> f64 {
    let n = x.len();
    if n < 2 {
        return 0.0;
    }
    let m = x.iter().sum::<f64>() / n as f64;
    (x.iter().map(|v| (v - m).powi(2)).sum::<f64>() / (n - 1) as f64).sqrt()
}

/// The advantages of `rewards` (`[prompts × g]`, group-major), in f64 internally.
pub fn group_advantages(rewards: &[f32], g: usize, scale: ScaleRewards, eps: f32) -> Result<Vec<f32>> {
    check_groups(rewards.len(), g)?;
    let r: Vec<f64> = rewards.iter().map(|&x| x as f64).collect();
    let batch_std = std(&r);
    let mut out = Vec::with_capacity(r.len());
    for grp in r.chunks(g) {
        let mean = grp.iter().sum::<f64>() / g as f64;
        let denom = match scale {
            ScaleRewards::Group => std(grp) + eps as f64,
            ScaleRewards::Batch => batch_std + eps as f64,
            ScaleRewards::None => 1.0,
        };
        out.extend(grp.iter().map(|&x| ((x - mean) / denom) as f32));
    }
    Ok(out)
}

#[cfg(test)]
mod tests {
    use super::*;

    /// Hand-computed: group [1, 0, 0, 1] has mean 0.5 and sample std sqrt(1/3) = 0.57735.
    #[test]
    fn advantages_by_hand() {
        let r = [1.0, 0.0, 0.0, 1.0, 2.0, 2.0, 2.0, 6.0];
        let a = group_advantages(&r, 4, ScaleRewards::Group, 1e-4).unwrap();
        let s1 = (1.0f64 / 3.0).sqrt() + 1e-4;
        for (x, want) in a[..4].iter().zip([0.5 / s1, -0.5 / s1, -0.5 / s1, 0.5 / s1]) {
            assert!((*x as f64 - want).abs() < 1e-6, "{x} vs {want}");
        }
        // Group 2: mean 3, deviations [-1, -1, -1, 3], sample std sqrt(12/3) = 2.
        let want2 = [-1.0, -1.0, -1.0, 3.0].map(|d| d / (2.0 + 1e-4));
        for (x, w) in a[4..].iter().zip(want2) {
            assert!((*x as f64 - w).abs() < 1e-6);
        }
        let none = group_advantages(&r, 4, ScaleRewards::None, 1e-4).unwrap();
        assert_eq!(none, vec![0.5, -0.5, -0.5, 0.5, -1.0, -1.0, -1.0, 3.0]);
        // Batch: mean over each group still, std over all 8 rewards.
        let all: Vec<f64> = r.iter().map(|&x| x as f64).collect();
        let bs = std(&all) + 1e-4;
        let b = group_advantages(&r, 4, ScaleRewards::Batch, 1e-4).unwrap();
        assert!((b[7] as f64 - 3.0 / bs).abs() < 1e-6);
        // A uniform group has zero advantages (ε keeps the division finite).
        let u = group_advantages(&[1.0, 1.0], 2, ScaleRewards::Group, 1e-4).unwrap();
        assert_eq!(u, vec![0.0, 0.0]);
    }

    #[test]
    fn groups_must_be_whole_and_at_least_two() {
        assert!(group_advantages(&[1.0, 0.0, 1.0], 2, ScaleRewards::Group, 1e-4).is_err());
        let e = group_advantages(&[1.0, 0.0], 1, ScaleRewards::Group, 1e-4).unwrap_err();
        assert!(e.to_string().contains("at least 2"), "{e}");
    }
}
