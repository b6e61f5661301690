//! GRPO over data blocks (see [`crate::blocks`]): each of `B` blocks samples its share
//! (`prompts_per_step / B`) of every iteration's prompts from its own prompt stream, samples
//! their completions from its own sampling stream, and runs the advantage stages on its own
//! groups (group advantages and ADORA are per group anyway, though `scale_rewards = "batch"`
//! scales by the block's standard deviation; DAPO's dynamic sampling refills the block's
//! share; D³S selects samples and tokens within the block). The loss of every block's
//! rows is normalised by the whole batch's counts ([`BatchTotals`]: completions for `grpo` and
//! `dr_grpo`, valid tokens for `bnpo` and `dapo`), so that the blocks' gradients, summed in
//! block order, are the gradient of the whole batch's loss; clipping and Adam then run once on
//! the sum. One block is the ordinary run, bit for bit.

use crate::blocks::Blocks;
use crate::error::{AlgoError, Result};
use crate::group::token_loss::BatchTotals;
use candle_core::{Tensor, Var};
use rand_chacha::ChaCha8Rng;
use serde::{Deserialize, Serialize};

/// A data block's random streams.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub(super) struct Streams {
    /// Its train prompts.
    pub prompt_rng: ChaCha8Rng,
    /// Its completions.
    pub sample_rng: ChaCha8Rng,
}

/// What one block's share of an iteration adds to the whole batch's counts, before the loss.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
pub(super) struct Tally {
    /// Completions sampled, refills included.
    pub sampled: u64,
    /// The first sampling round's completions (the statistics below are over them).
    pub fresh: u64,
    /// The sum of their shaped rewards.
    pub reward: f64,
    /// The number of exact answers among them.
    pub accuracy: f64,
    /// The sum of their sampling entropies, over `entropy_tokens` tokens.
    pub entropy: f64,
    /// The tokens whose entropies `entropy` sums.
    pub entropy_tokens: u64,
    /// The sum of their lengths.
    pub length: u64,
    /// Groups kept by dynamic sampling.
    pub kept_groups: u64,
    /// Completions of the kept groups (before D³S selects).
    pub candidates: u64,
    /// Completions trained on.
    pub rows: u64,
    /// Their valid tokens.
    pub target_tokens: f64,
    /// The tokens the loss reads (after D³S's token selection).
    pub tokens: f64,
}

/// What one block's loss adds up to.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
pub(super) struct LossTally {
    /// `Σ w·ℓ` over its tokens.
    pub loss: f64,
    /// The sum of the k3 KL over its tokens.
    pub kl: f64,
    /// Tokens whose clipped branch was taken.
    pub clipped: u64,
    /// Tokens the loss read.
    pub active: u64,
}

impl Tally {
    /// The blocks' tallies summed in block order (one block's is itself).
    pub fn total(all: &[Tally]) -> Tally {
        let mut t = all[0].clone();
        for b in &all[1..] {
            t.sampled += b.sampled;
            t.fresh += b.fresh;
            t.reward += b.reward;
            t.accuracy += b.accuracy;
            t.entropy += b.entropy;
            t.entropy_tokens += b.entropy_tokens;
            t.length += b.length;
            t.kept_groups += b.kept_groups;
            t.candidates += b.candidates;
            t.rows += b.rows;
            t.target_tokens += b.target_tokens;
            t.tokens += b.tokens;
        }
        t
    }

    /// The whole batch's counts that normalise the loss.
    pub fn batch_totals(&self) -> BatchTotals {
        BatchTotals {
            rows: self.rows as usize,
            tokens: self.tokens,
        }
    }
}

impl LossTally {
    /// The blocks' loss tallies summed in block order.
    pub fn total(all: &[LossTally]) -> LossTally {
        let mut t = all[0].clone();
        for b in &all[1..] {
            t.loss += b.loss;
            t.kl += b.kl;
            t.clipped += b.clipped;
            t.active += b.active;
        }
        t
    }
}

/// Every block's item summed in block order by `total`, from the held blocks' `local`
/// (gathered from the other processes in a data-parallel run: collective).
pub(super) fn gather_total<T>(place: &Blocks, local: Vec<T>, total: fn(&[T]) -> T) -> Result<T>
where
    T: Serialize + serde::de::DeserializeOwned,
{
    let all = place.all_gather_items(local)?;
    if all.len() != place.total {
        return Err(AlgoError::Link(format!(
            "gathered {} tallies for {} data blocks",
            all.len(),
            place.total
        )));
    }
    Ok(total(&all))
}

/// The gradient of the whole batch: the held blocks' gradients (`local`, one list per block,
/// in the order of `vars`) and the other processes' summed in block order. Collective.
pub(super) fn sum_gradients(place: &Blocks, local: &[Vec<Tensor>], vars: &[Var]) -> Result<Vec<Tensor>> {
    let width: usize = vars.iter().map(|v| v.elem_count()).sum();
    let mut pack = Vec::with_capacity(width * local.len());
    for grads in local {
        for g in grads {
            pack.extend(g.flatten_all()?.to_vec1::<f32>()?);
        }
    }
    if pack.len() != width * local.len() {
        return Err(AlgoError::Link(format!(
            "{} gradient values for {} blocks of {width} parameters",
            pack.len(),
            local.len()
        )));
    }
    let all = place.all_gather(&pack)?;
    if all.len() != width * place.total {
        return Err(AlgoError::Link(format!(
            "gathered {} gradient values for {} blocks of {width}",
            all.len(),
            place.total
        )));
    }
    let mut sum = all[..width].to_vec();
    for block in all[width..].chunks(width) {
        sum.iter_mut().zip(block).for_each(|(s, x)| *s += x);
    }
    let mut out = Vec::with_capacity(vars.len());
    let mut at = 0;
    for v in vars {
        let n = v.elem_count();
        out.push(Tensor::from_slice(&sum[at..at + n], v.shape(), v.device())?);
        at += n;
    }
    Ok(out)
}

/// Zero gradients for a block that kept no completion.
pub(super) fn zero_gradients(vars: &[Var]) -> Result<Vec<Tensor>> {
    Ok(vars
        .iter()
        .map(|v| v.as_tensor().zeros_like())
        .collect::<candle_core::Result<_>>()?)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn one_blocks_tally_is_itself_and_blocks_add_up() {
        let a = Tally {
            sampled: 8,
            reward: -0.0,
            tokens: 3.0,
            rows: 2,
            ..Tally::default()
        };
        let b = Tally {
            sampled: 4,
            reward: 1.5,
            tokens: 5.0,
            rows: 1,
            ..Tally::default()
        };
        assert_eq!(Tally::total(std::slice::from_ref(&a)), a);
        let t = Tally::total(&[a, b]);
        assert_eq!((t.sampled, t.reward, t.rows), (12, 1.5, 3));
        assert_eq!(t.batch_totals(), BatchTotals { rows: 3, tokens: 8.0 });
    }

    #[test]
    fn tallies_cross_processes_with_every_float_intact() {
        let l = LossTally {
            loss: f64::NAN,
            kl: -0.0,
            clipped: 1,
            active: 2,
        };
        let back: LossTally = crate::wire::from_bytes(&crate::wire::to_bytes(&l, "").unwrap(), "").unwrap();
        assert!(back.loss.is_nan());
        assert_eq!(back.kl.to_bits(), (-0.0f64).to_bits());
        let t = Tally {
            reward: f64::INFINITY,
            tokens: 0.1 + 0.2,
            ..Tally::default()
        };
        let back: Tally = crate::wire::from_bytes(&crate::wire::to_bytes(&t, "").unwrap(), "").unwrap();
        assert_eq!(back, t);
    }

    #[test]
    fn held_blocks_gradients_sum_in_block_order() {
        let dev = candle_core::Device::Cpu;
        let vars = vec![
            Var::from_slice(&[0f32; 2], 2, &dev).unwrap(),
            Var::from_slice(&[0f32; 1], 1, &dev).unwrap(),
        ];
        let block = |x: f32| {
            vec![
                Tensor::from_slice(&[x, 2.0 * x], 2, &dev).unwrap(),
                Tensor::from_slice(&[-x], 1, &dev).unwrap(),
            ]
        };
        let sum = sum_gradients(&Blocks::local(2), &[block(1.0), block(0.5)], &vars).unwrap();
        assert_eq!(sum[0].to_vec1::<f32>().unwrap(), vec![1.5, 3.0]);
        assert_eq!(sum[1].to_vec1::<f32>().unwrap(), vec![-1.5]);
        assert!(sum_gradients(&Blocks::local(3), &[block(1.0), block(0.5)], &vars).is_err());
        let z = zero_gradients(&vars).unwrap();
        assert_eq!(z[0].to_vec1::<f32>().unwrap(), vec![0.0, 0.0]);
    }
}
