//! Policy losses with their gradients in closed form: PPO's clipped surrogate
//! ([`ppo_clip_loss`]). The value losses live with the critics (`taper_critics::value_loss`).
//!
//! ```
//! use taper_algos::loss::ppo_clip_loss;
//! // The policy moved: the first sample's ratio e^0.5 is clipped at 1.2, the second is not.
//! let (new, old, adv) = ([0.5f32, 0.1], [0.0f32, 0.0], [1.0f32, -1.0]);
//! let mut dlogp = [0f32; 2];
//! let s = ppo_clip_loss(&new, &old, &adv, 0.2, &mut dlogp)?;
//! assert_eq!(s.clipped, 1);
//! assert_eq!(dlogp[0], 0.0); // the clipped branch is flat
//! assert!((dlogp[1] - 0.5 * (0.1f32).exp()).abs() < 1e-6); // −A·ratio / n, with A = −1
//! # Ok::<(), taper_algos::AlgoError>(())
//! ```

use crate::error::{AlgoError, Result};

/// What [`ppo_clip_loss`] reports besides the gradient.
#[derive(Debug, Clone, Copy, Default, PartialEq)]
pub struct ClipStats {
    /// The clipped surrogate loss, `mean(max(−A·r, −A·clip(r, 1 ± ε)))`.
    pub loss: f32,
    /// The k3 estimate of KL(old ‖ new), `mean((r − 1) − log r)`.
    pub approx_kl: f32,
    /// `mean(−log r)`.
    pub old_approx_kl: f32,
    /// How many ratios lie outside `1 ± ε`.
    pub clipped: usize,
}

/// PPO's clipped surrogate over `n` samples with log-probabilities `new_logp` under the
/// current policy and `old_logp` under the rollout policy, and advantages `adv`. Writes
/// `∂loss/∂new_logp` into `dlogp` (`−A·r/n` where the unclipped branch is active, else 0) and
/// returns the loss and its statistics. Sums run in f64 in sample order.
pub fn ppo_clip_loss(
    new_logp: &[f32],
    old_logp: &[f32],
    adv: &[f32],
    clip: f32,
    dlogp: &mut [f32],
) -> Result<ClipStats> {
    let n = new_logp.len();
    for (what, len) in [
        ("old log-probabilities", old_logp.len()),
        ("advantages", adv.len()),
        ("gradient", dlogp.len()),
    ] {
        if len != n {
            return Err(AlgoError::Config {
                field: "loss",
                reason: format!("{what}: expected {n} values, got {len}"),
            });
        }
    }
    let inv = 1.0 / n.max(1) as f32;
    let (mut pg, mut kl, mut okl, mut cf) = (0f64, 0f64, 0f64, 0usize);
    for k in 0..n {
        let logratio = new_logp[k] - old_logp[k];
        let ratio = logratio.exp();
        okl += -logratio as f64;
        kl += ((ratio - 1.0) - logratio) as f64;
        if (ratio - 1.0).abs() > clip {
            cf += 1;
        }
        let a = adv[k];
        let pg1 = -a * ratio;
        let pg2 = -a * ratio.clamp(1.0 - clip, 1.0 + clip);
        pg += pg1.max(pg2) as f64;
        dlogp[k] = if pg1 >= pg2 { -a * ratio * inv } else { 0.0 };
    }
    let m = n.max(1) as f64;
    Ok(ClipStats {
        loss: (pg / m) as f32,
        approx_kl: (kl / m) as f32,
        old_approx_kl: (okl / m) as f32,
        clipped: cf,
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    /// The gradient equals central finite differences of the loss (away from the clip edges).
    #[test]
    fn gradient_matches_finite_differences() {
        let new = [0.3f32, -0.2, 0.05, 0.4, -0.6];
        let old = [0.0f32, 0.0, 0.1, 0.2, -0.5];
        let adv = [1.0f32, -0.5, 2.0, -1.5, 0.7];
        let mut g = [0f32; 5];
        ppo_clip_loss(&new, &old, &adv, 0.2, &mut g).unwrap();
        for k in 0..5 {
            let h = 1e-3f32;
            let (mut p, mut m) = (new, new);
            p[k] += h;
            m[k] -= h;
            let lp = ppo_clip_loss(&p, &old, &adv, 0.2, &mut [0.0; 5]).unwrap().loss;
            let lm = ppo_clip_loss(&m, &old, &adv, 0.2, &mut [0.0; 5]).unwrap().loss;
            let fd = (lp - lm) / (2.0 * h);
            assert!((fd - g[k]).abs() < 1e-3, "{k}: {fd} vs {}", g[k]);
        }
        assert!(ppo_clip_loss(&new, &old[..4], &adv, 0.2, &mut g).is_err());
    }
}
