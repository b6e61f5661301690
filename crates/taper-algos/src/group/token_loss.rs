//! The per-token loss of GRPO-style optimizers and its aggregation, as TRL's `GRPOTrainer`
//! defines them.
//!
//! Per token, with `ρ = exp(log π − log π_old)`:
//! `ℓ = −min(ρ·A, clip(ρ, 1 − ε_low, 1 + ε_high)·A) + β·KL`, where
//! `KL = exp(log π_ref − log π) − (log π_ref − log π) − 1` (the k3 estimator).
//! Aggregated over the valid tokens (mask 1) of B completions with lengths L_i:
//!
//! | `loss_type` | loss |
//! |---|---|
//! | `grpo` | (1/B) Σ_i (1/max(L_i, 1)) Σ_t ℓ_it |
//! | `bnpo` | Σ ℓ / max(Σ_i L_i, 1) |
//! | `dr_grpo` | Σ ℓ / (B · max_completion_length) |
//! | `dapo` | Σ ℓ / (valid tokens in the whole accumulated batch; `Σ_i L_i` without accumulation) |
//!
//! Each is linear in the per-token losses, so it is returned as a weight per token: the
//! loss is `Σ w_it ℓ_it` and its gradient is `w_it · ∂ℓ_it/∂log π`.

use crate::error::{AlgoError, Result};
use serde::{Deserialize, Serialize};

/// How per-token losses are aggregated.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize, Default)]
#[serde(rename_all = "snake_case")]
pub enum LossType {
    /// Mean over completions of each completion's token mean (GRPO's paper).
    Grpo,
    /// Token mean over the batch.
    Bnpo,
    /// Token sum over `B · max_completion_length` (Dr. GRPO).
    DrGrpo,
    /// Token sum over the accumulated batch's valid tokens (DAPO; TRL's default).
    #[default]
    Dapo,
}

impl std::str::FromStr for LossType {
    type Err = AlgoError;
    fn from_str(s: &str) -> Result<Self> {
        match s {
            "grpo" => Ok(LossType::Grpo),
            "bnpo" => Ok(LossType::Bnpo),
            "dr_grpo" => Ok(LossType::DrGrpo),
            "dapo" => Ok(LossType::Dapo),
            other => Err(AlgoError::Config {
                field: "loss_type",
                reason: format!("unknown loss type `{other}` (grpo, bnpo, dr_grpo, dapo)"),
            }),
        }
    }
}

/// The clip and KL settings of the per-token loss.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct TokenLossConfig {
    /// ε_low: ρ is clipped below at 1 − ε_low (TRL: `epsilon` 0.2).
    pub eps_low: f32,
    /// ε_high: ρ is clipped above at 1 + ε_high (TRL: `epsilon_high`, = ε_low by default;
    /// DAPO's clip-higher: 0.28).
    pub eps_high: f32,
    /// β, the weight of the k3 KL to the reference policy (TRL: 0.0).
    pub beta: f32,
}

/// One token's loss and its derivative with respect to the new log-probability.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct TokenLoss {
    /// `ℓ`.
    pub loss: f32,
    /// `∂ℓ/∂log π`.
    pub dlogp: f32,
    /// The k3 KL (0 when there is no reference).
    pub kl: f32,
    /// Whether the clipped branch was taken with ρ outside the clip range.
    pub clipped: bool,
}

/// The k3 estimate of KL(π‖π_ref) at one token and its derivative with respect to log π.
pub fn k3(logp: f32, ref_logp: f32) -> (f32, f32) {
    let d = (ref_logp - logp) as f64;
    let e = d.exp();
    ((e - d - 1.0) as f32, (1.0 - e) as f32)
}

/// One token's loss (see the module doc); `ref_logp` is `None` without a reference.
pub fn token_loss(c: &TokenLossConfig, logp: f32, old_logp: f32, ref_logp: Option<f32>, adv: f32) -> TokenLoss {
    let ratio = ((logp - old_logp) as f64).exp();
    let a = adv as f64;
    let clipped_ratio = ratio.clamp(1.0 - c.eps_low as f64, 1.0 + c.eps_high as f64);
    let (t1, t2) = (ratio * a, clipped_ratio * a);
    // −min(t1, t2): the unclipped term carries the gradient ρ·A; the clipped one carries it
    // only inside the range, where it equals the unclipped one.
    let (mut loss, mut dlogp, clipped) = if t1 <= t2 {
        (-t1, -ratio * a, false)
    } else {
        (-t2, 0.0, true)
    };
    let mut kl = 0.0;
    if let Some(r) = ref_logp {
        let (k, dk) = k3(logp, r);
        kl = k;
        loss += (c.beta * k) as f64;
        dlogp += (c.beta * dk) as f64;
    }
    TokenLoss {
        loss: loss as f32,
        dlogp: dlogp as f32,
        kl,
        clipped,
    }
}

/// The aggregation weights `w` (`[B × T]`, row-major like `mask`) of `loss_type` for B
/// completions padded to T tokens, where `mask` is 1 on valid tokens. `max_completion_length`
/// is Dr. GRPO's constant; `accumulated_tokens` is DAPO's normalizer (the valid tokens of the
/// whole accumulated batch; `None`: this batch's).
pub fn aggregation_weights(
    loss_type: LossType,
    mask: &[f32],
    t: usize,
    max_completion_length: usize,
    accumulated_tokens: Option<f64>,
) -> Result<Vec<f32>> {
    let total = valid_tokens(mask);
    let totals = BatchTotals {
        // `aggregation_weights_over` checks the mask against `t`.
        rows: mask.len().checked_div(t).unwrap_or(0),
        tokens: match loss_type {
            LossType::Dapo => accumulated_tokens.unwrap_or(total),
            _ => total,
        },
    };
    aggregation_weights_over(loss_type, mask, t, max_completion_length, totals)
}

/// The valid tokens of a mask (its sum), the `tokens` of [`BatchTotals`] for one batch.
pub fn valid_tokens(mask: &[f32]) -> f64 {
    mask.iter().map(|&m| m as f64).sum()
}

/// The whole batch's counts that normalise the aggregation: where a batch is split into parts
/// whose gradients are summed (data blocks), each part's weights take the whole batch's counts,
/// so that the sum is the gradient of the whole batch's loss.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct BatchTotals {
    /// The completions B of the whole batch (`grpo`, `dr_grpo`).
    pub rows: usize,
    /// The valid tokens of the whole batch (`bnpo`, `dapo`).
    pub tokens: f64,
}

/// [`aggregation_weights`] of one part (`mask`, rows of `t` tokens) of a batch whose counts are
/// `totals`: the part's rows keep their own lengths, and the normalisers are the batch's.
pub fn aggregation_weights_over(
    loss_type: LossType,
    mask: &[f32],
    t: usize,
    max_completion_length: usize,
    totals: BatchTotals,
) -> Result<Vec<f32>> {
    if t == 0 || !mask.len().is_multiple_of(t) {
        return Err(AlgoError::Config {
            field: "mask",
            reason: format!("{} mask values are not rows of {t} tokens", mask.len()),
        });
    }
    let b = totals.rows;
    let mut w = vec![0f32; mask.len()];
    for (row, wrow) in mask.chunks(t).zip(w.chunks_mut(t)) {
        let len: f64 = row.iter().map(|&m| m as f64).sum();
        let scale = match loss_type {
            LossType::Grpo => 1.0 / (b as f64 * len.max(1.0)),
            LossType::Bnpo | LossType::Dapo => 1.0 / totals.tokens.max(1.0),
            LossType::DrGrpo => 1.0 / (b * max_completion_length.max(1)) as f64,
        };
        for (x, &m) in wrow.iter_mut().zip(row) {
            *x = (m as f64 * scale) as f32;
        }
    }
    Ok(w)
}

#[cfg(test)]
mod tests {
    use super::*;

    const C: TokenLossConfig = TokenLossConfig {
        eps_low: 0.2,
        eps_high: 0.28,
        beta: 0.0,
    };

    #[test]
    fn k3_by_hand() {
        // ref − logp = ln 2: 2 − ln 2 − 1 = 0.306853; derivative 1 − 2 = −1.
        let (k, dk) = k3(0.0, 2f32.ln());
        assert!((k - 0.306_853).abs() < 1e-6);
        assert!((dk + 1.0).abs() < 1e-6);
        assert_eq!(k3(-1.3, -1.3), (0.0, 0.0));
        // Always ≥ 0.
        for d in [-3.0f32, -0.5, 0.5, 3.0] {
            assert!(k3(0.0, d).0 >= 0.0);
        }
    }

    #[test]
    fn clipping_by_hand() {
        // ρ = 1: loss −A, gradient −A.
        let l = token_loss(&C, -1.0, -1.0, None, 2.0);
        assert_eq!((l.loss, l.dlogp, l.clipped), (-2.0, -2.0, false));
        // ρ = e^0.5 = 1.6487 > 1.28 with A > 0: clipped at 1.28, no gradient.
        let l = token_loss(&C, -0.5, -1.0, None, 2.0);
        assert!((l.loss + 2.56).abs() < 1e-6 && l.dlogp == 0.0 && l.clipped);
        // Same ρ with A < 0: the unclipped term is the smaller one: loss ρ·|A|, gradient ρ·|A|.
        let l = token_loss(&C, -0.5, -1.0, None, -2.0);
        let r = 0.5f32.exp();
        assert!((l.loss - 2.0 * r).abs() < 1e-5 && (l.dlogp - 2.0 * r).abs() < 1e-5 && !l.clipped);
        // ρ = e^−0.5 = 0.6065 < 0.8 with A < 0: clipped at 0.8.
        let l = token_loss(&C, -1.5, -1.0, None, -1.0);
        assert!((l.loss - 0.8).abs() < 1e-6 && l.dlogp == 0.0 && l.clipped);
        // With a reference and β = 0.04 the k3 term and its derivative are added.
        let ck = TokenLossConfig { beta: 0.04, ..C };
        let l = token_loss(&ck, 0.0, 0.0, Some(2f32.ln()), 1.0);
        assert!((l.loss - (-1.0 + 0.04 * 0.306_853)).abs() < 1e-6);
        assert!((l.dlogp - (-1.0 - 0.04)).abs() < 1e-6);
    }

    /// The derivative equals a central finite difference wherever the loss is smooth.
    #[test]
    fn derivative_matches_finite_differences() {
        let ck = TokenLossConfig { beta: 0.1, ..C };
        for (logp, old, adv) in [
            (-1.0, -1.1, 0.7),
            (-2.0, -1.9, -1.3),
            (-0.3, -0.2, 2.0),
            (-0.1, -0.6, 1.0),
        ] {
            let h = 1e-3f32;
            let f = |x: f32| token_loss(&ck, x, old, Some(-0.8), adv).loss as f64;
            let fd = (f(logp + h) - f(logp - h)) / (2.0 * h as f64);
            let d = token_loss(&ck, logp, old, Some(-0.8), adv).dlogp as f64;
            assert!((fd - d).abs() < 1e-3, "{logp} {old} {adv}: {fd} vs {d}");
        }
    }

    /// Two completions of lengths 3 and 1, padded to 4 tokens.
    #[test]
    fn aggregations_by_hand() {
        let mask = [1.0, 1.0, 1.0, 0.0, 1.0, 0.0, 0.0, 0.0];
        let w = |lt| aggregation_weights(lt, &mask, 4, 8, None).unwrap();
        let g = w(LossType::Grpo);
        assert_eq!(g, vec![1.0 / 6.0, 1.0 / 6.0, 1.0 / 6.0, 0.0, 0.5, 0.0, 0.0, 0.0]);
        assert_eq!(w(LossType::Bnpo), mask.map(|m| m * 0.25).to_vec());
        assert_eq!(w(LossType::DrGrpo), mask.map(|m| m / 16.0).to_vec());
        assert_eq!(w(LossType::Dapo), w(LossType::Bnpo));
        let d = aggregation_weights(LossType::Dapo, &mask, 4, 8, Some(10.0)).unwrap();
        assert_eq!(d, mask.map(|m| m * 0.1).to_vec());
        assert!(aggregation_weights(LossType::Grpo, &mask, 3, 8, None).is_err());
        // Split into its two rows, with the batch's totals, the parts' weights are the batch's.
        let totals = BatchTotals {
            rows: 2,
            tokens: valid_tokens(&mask),
        };
        for lt in [LossType::Grpo, LossType::Bnpo, LossType::DrGrpo, LossType::Dapo] {
            let top = aggregation_weights_over(lt, &mask[..4], 4, 8, totals).unwrap();
            let bottom = aggregation_weights_over(lt, &mask[4..], 4, 8, totals).unwrap();
            assert_eq!([top, bottom].concat(), w(lt), "{lt:?}");
        }
        assert!("dr_grpo".parse::<LossType>().is_ok() && "sum".parse::<LossType>().is_err());
    }
}
