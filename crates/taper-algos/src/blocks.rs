//! Data blocks: an on-policy run's envs split into `data_blocks` equal blocks, the unit of
//! data-parallel learning.
//!
//! Each block steps its own envs (block `b` of `B` holds envs `b·E/B ..` of the run's `E`,
//! seeded as in the whole run), samples its actions from its own stream and shuffles its own
//! samples with its own stream. Every minibatch takes the same share from each block; each
//! block computes its gradient (and its advantage statistics) from its rows alone, and the
//! blocks' gradients are summed in block order, weighted by their rows. So the result does not
//! depend on where the blocks run: all in one process, or one per process of an MPI job,
//! joined by a [`BlockLink`]. A run of one block is the ordinary run, bit for bit.
//!
//! What a block computes alone differs from what the whole batch would give (the action
//! streams, the minibatches, the per-block advantage normalisation, the order of the sums), so
//! a run of `B` blocks is its own run: equal, bit for bit, to the same run over `B` processes,
//! and statistically, not bitwise, equal to a run of one block.
//!
//! GRPO's blocks split each iteration's prompts instead of envs, and normalise their losses by
//! the whole batch's gathered counts, so that their gradients sum unweighted (see
//! `grpo::blocks`).

use crate::error::{AlgoError, Result};
use rand_chacha::ChaCha8Rng;
use serde::{Deserialize, Serialize};
use std::sync::Arc;

/// The processes of a data-parallel run, one data block each, as seen from one of them. Each
/// call is collective: every process makes it, in the same order.
pub trait BlockLink: Send + Sync + std::fmt::Debug {
    /// The number of processes (= data blocks).
    fn size(&self) -> usize;
    /// This process's index, which is also its block's.
    fn rank(&self) -> usize;
    /// Every process's `local` (of one length on all), concatenated in rank order.
    fn all_gather(&self, local: &[f32]) -> Result<Vec<f32>>;
    /// Every process's `local` bytes (of any length), in rank order.
    fn all_gather_bytes(&self, local: &[u8]) -> Result<Vec<Vec<u8>>>;
}

/// Where a learner's data blocks are: all in this process, or one here and the others in the
/// other processes of a [`BlockLink`].
#[derive(Debug, Clone)]
pub struct Blocks {
    /// The run's data blocks `B`.
    pub total: usize,
    /// The first block held here.
    pub first: usize,
    /// The other processes, in a data-parallel run.
    pub link: Option<Arc<dyn BlockLink>>,
}

impl Blocks {
    /// All `total` blocks in this process.
    pub fn local(total: usize) -> Self {
        Blocks {
            total,
            first: 0,
            link: None,
        }
    }

    /// One block per process of `link`: this process holds block `link.rank()` of
    /// `link.size()`. `data_blocks` is the config's count, which must equal the processes.
    pub fn linked(link: Arc<dyn BlockLink>, data_blocks: usize) -> Result<Self> {
        if link.size() != data_blocks {
            return Err(AlgoError::Config {
                field: "data_blocks",
                reason: format!(
                    "the run has {data_blocks} data blocks but {} processes; a data-parallel run takes one process per block",
                    link.size()
                ),
            });
        }
        Ok(Blocks {
            total: data_blocks,
            first: link.rank(),
            link: Some(link),
        })
    }

    /// The blocks held here.
    pub fn held(&self) -> usize {
        if self.link.is_some() {
            1
        } else {
            self.total
        }
    }

    /// Every block's `local` values (the held blocks' values, concatenated), in block order.
    pub fn all_gather(&self, local: &[f32]) -> Result<Vec<f32>> {
        match &self.link {
            Some(l) => l.all_gather(local),
            None => Ok(local.to_vec()),
        }
    }

    /// An error unless every process holds the same `bits` (a fingerprint of what each
    /// computed alone but must share, such as weights): `what` names it. Collective.
    pub fn check_same(&self, what: &str, bits: u64) -> Result<()> {
        if self.link.is_none() {
            return Ok(());
        }
        let all = self.all_gather_items(vec![bits])?;
        if let Some(r) = all.iter().position(|&b| b != all[0]) {
            return Err(AlgoError::Link(format!(
                "process {r} computed other {what} than process 0; the processes must run one build on machines of one CPU class (the kernels choose their instructions at run time)"
            )));
        }
        Ok(())
    }

    /// Every block's item, in block order, from the held blocks' `local` items (serialised to
    /// pass between processes as CBOR, every float with its bits).
    pub fn all_gather_items<T: Serialize + serde::de::DeserializeOwned>(&self, local: Vec<T>) -> Result<Vec<T>> {
        let Some(link) = &self.link else {
            return Ok(local);
        };
        let bytes = crate::wire::to_bytes(&local, "a block's state")?;
        let mut all = Vec::with_capacity(self.total);
        for part in link.all_gather_bytes(&bytes)? {
            let items: Vec<T> = crate::wire::from_bytes(&part, "a block's state")?;
            all.extend(items);
        }
        Ok(all)
    }
}

/// What a block keeps besides the shared weights and optimiser: its streams and its envs.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct BlockState {
    /// The block's action-sampling stream.
    pub action_rng: ChaCha8Rng,
    /// The block's minibatch-shuffling stream.
    pub shuffle_rng: ChaCha8Rng,
    /// The block's envs' state, where they can save it.
    #[serde(default)]
    pub env_state: Option<serde_json::Value>,
}

/// An error for a learner built on one env set by hand with more than one data block (each
/// block's envs are built by the learner from the env's id).
pub(crate) fn one_env_set(data_blocks: usize) -> Result<()> {
    if data_blocks > 1 {
        return Err(AlgoError::Config {
            field: "data_blocks",
            reason: format!(
                "{data_blocks} data blocks need one env set per block; build the learner from the env's id (`new`), which makes them"
            ),
        });
    }
    Ok(())
}

/// Whether a config's `data_blocks` is the default, one (left out when it is serialised).
pub(crate) fn is_one(n: &usize) -> bool {
    *n == 1
}

/// The weights of the blocks' rows in a minibatch: `m_b / Σ m`.
pub(crate) fn row_weights(rows: &[usize]) -> Vec<f32> {
    let total: usize = rows.iter().sum();
    rows.iter().map(|&m| m as f32 / total.max(1) as f32).collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn equal_blocks_weigh_equally_and_the_weights_sum_to_one() {
        assert_eq!(row_weights(&[128, 128]), vec![0.5, 0.5]);
        let w = row_weights(&[1, 3]);
        assert_eq!(w, vec![0.25, 0.75]);
    }

    #[test]
    fn items_of_local_blocks_pass_through() {
        let b = Blocks::local(3);
        assert_eq!(b.held(), 3);
        assert_eq!(b.all_gather_items(vec![1u32, 2, 3]).unwrap(), vec![1, 2, 3]);
        assert_eq!(b.all_gather(&[1.0, 2.0]).unwrap(), vec![1.0, 2.0]);
    }
}
