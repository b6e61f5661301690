//! Sequence tasks with verifiable rewards: a prompt is a token sequence over a small
//! vocabulary ([`vocab`]), a completion is generated token by token up to the stop token
//! ([`vocab::EOS`]) or a token budget, and the task's verifier scores it: 1 for the right
//! answer, 0 otherwise, or partial credit (the fraction of answer positions right) where asked.
//!
//! The tasks ([`tasks`]): `SeqCopy-v0`, `SeqReverse-v0`, `SeqSort-v0` and `SeqAddition-v0`,
//! each tunable by length. Every prompt belongs to the train or the test split by a hash of
//! its tokens, so the two sets are held apart whatever the seed ([`split_of`]). [`SeqEnv`]
//! is a task as an [`Env`](crate::Env) (one token per step, the score at the end), which is
//! how the registry builds them; sequence learners use the [`SeqTask`] trait directly.
//!
//! ```
//! use taper_envs::seq::{vocab, make_task, Split, SeqTask};
//! use rand::SeedableRng;
//! let task = make_task("SeqAddition-v0", &Default::default())?;
//! let mut rng = rand_chacha::ChaCha8Rng::seed_from_u64(0);
//! let prompt = task.sample_prompt(&mut rng, Split::Train)?;
//! let answer = task.answer(&prompt)?;
//! assert_eq!(task.score(&prompt, &answer), 1.0);
//! assert!(vocab::render(&prompt).ends_with('='));
//! # Ok::<(), taper_envs::EnvError>(())
//! ```

mod env;
pub mod tasks;
pub mod vocab;

pub use env::SeqEnv;
pub use tasks::{make_task, Addition, Copy, Sort};

use crate::error::{EnvError, Result};
use rand::RngCore;

/// Which prompt set.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, serde::Serialize, serde::Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum Split {
    /// Prompts to train on (7 in 8 of the prompt space).
    Train,
    /// Held-apart prompts to evaluate on (1 in 8).
    Test,
}

/// The split a prompt belongs to: by the FNV-1a hash of its tokens, 1 in 8 is a test prompt.
pub fn split_of(prompt: &[u32]) -> Split {
    let mut h: u64 = 0xcbf2_9ce4_8422_2325;
    for &t in prompt {
        for b in t.to_le_bytes() {
            h ^= b as u64;
            h = h.wrapping_mul(0x0100_0000_01b3);
        }
    }
    // Mix the high bits in: FNV's low bits are weak for short inputs.
    if (h ^ (h >> 29)).is_multiple_of(8) {
        Split::Test
    } else {
        Split::Train
    }
}

/// A task with a verifier.
pub trait SeqTask: Send + Sync + std::fmt::Debug {
    /// The registered id.
    fn id(&self) -> &'static str;
    /// A prompt of `split`: `BOS`, the task's tokens, `SEP`. An error when the task's prompt
    /// space has no prompt of that split (a task too small to hold a test set).
    fn sample_prompt(&self, rng: &mut dyn RngCore, split: Split) -> Result<Vec<u32>> {
        for _ in 0..100_000 {
            let p = self.generate(rng);
            if split_of(&p) == split {
                return Ok(p);
            }
        }
        Err(EnvError::Invalid {
            name: "task",
            reason: format!(
                "{} has no {split:?} prompts at these lengths; make the prompts longer",
                self.id()
            ),
        })
    }
    /// A prompt of either split, uniformly from the task's generator.
    fn generate(&self, rng: &mut dyn RngCore) -> Vec<u32>;
    /// The right completion of `prompt`, without the stop token; an error for a malformed
    /// prompt.
    fn answer(&self, prompt: &[u32]) -> Result<Vec<u32>>;
    /// Whether partial credit is given.
    fn partial_credit(&self) -> bool;
    /// The score of `completion` (the tokens before the stop token, or all of them when the
    /// budget ran out) for `prompt`: 1 when it is the answer; otherwise 0, or with partial
    /// credit the number of answer positions it gets right over the longer of the two lengths.
    /// A malformed prompt scores 0.
    fn score(&self, prompt: &[u32], completion: &[u32]) -> f32 {
        let Ok(answer) = self.answer(prompt) else {
            return 0.0;
        };
        if completion == answer.as_slice() {
            return 1.0;
        }
        if !self.partial_credit() {
            return 0.0;
        }
        let right = answer.iter().zip(completion).filter(|(a, b)| a == b).count();
        right as f32 / answer.len().max(completion.len()).max(1) as f32
    }
    /// The longest prompt, in tokens (`BOS` and `SEP` included).
    fn max_prompt_len(&self) -> usize;
    /// The longest answer, in tokens (the stop token excluded).
    fn max_answer_len(&self) -> usize;
    /// The token budget of a completion (the stop token included).
    fn max_new_tokens(&self) -> usize;
}
