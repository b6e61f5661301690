//! Sampling completions from a [`Transformer`] and scoring them again for training.
//!
//! [`sample`] runs a batch of prompts (G copies of each for a group) through one prefill (of
//! each distinct prompt once, its cache then shared by its rows) and then one decode step per
//! token with the KV cache; the next token is drawn on the host from
//! the downloaded logits with a seeded stream (one uniform per row per step, in row order), so
//! a seed gives the same completions on any device. [`Batch`] lays prompts and completions out
//! for one forward pass that scores every completion token at once.

use crate::error::{AlgoError, Result};
use rand::Rng;
use rand_chacha::ChaCha8Rng;
use std::collections::HashMap;
use taper_envs::seq::vocab::{EOS, PAD};
use taper_tensor::distributions::Categorical;
use taper_tensor::transformer::{Scored, Transformer};

/// Sampled completions, one per prompt row.
#[derive(Debug, Clone, Default)]
pub struct Completions {
    /// The tokens generated, the stop token included where it was generated.
    pub tokens: Vec<Vec<u32>>,
    /// The sampling log-probability of each generated token.
    pub logp: Vec<Vec<f32>>,
    /// The sampling distribution's entropy at each generated token.
    pub entropy: Vec<Vec<f32>>,
}

impl Completions {
    /// The completion without its stop token (what the verifier reads).
    pub fn answer(&self, row: usize) -> &[u32] {
        let t = &self.tokens[row];
        match t.last() {
            Some(&EOS) => &t[..t.len() - 1],
            _ => t,
        }
    }
    /// Whether the row stopped by itself (generated the stop token).
    pub fn stopped(&self, row: usize) -> bool {
        self.tokens[row].last() == Some(&EOS)
    }
    /// Total tokens generated.
    pub fn total_tokens(&self) -> usize {
        self.tokens.iter().map(Vec::len).sum()
    }
}

/// Checks that prompts of up to `prompt_len` tokens and `max_new` more fit the model.
pub fn check_context(model: &Transformer, prompt_len: usize, max_new: usize) -> Result<()> {
    let ctx = model.config().context;
    if prompt_len + max_new > ctx {
        return Err(AlgoError::Config {
            field: "context",
            reason: format!(
                "prompts of up to {prompt_len} tokens and completions of up to {max_new} need {} positions; the model's context is {ctx}",
                prompt_len + max_new
            ),
        });
    }
    Ok(())
}

/// Left-pads `rows` to their longest; returns tokens, mask and the padded length.
fn left_pad(rows: &[Vec<u32>]) -> (Vec<u32>, Vec<f32>, usize) {
    let t = rows.iter().map(Vec::len).max().unwrap_or(0);
    let mut tok = Vec::with_capacity(rows.len() * t);
    let mut mask = Vec::with_capacity(rows.len() * t);
    for r in rows {
        let pad = t - r.len();
        tok.extend(std::iter::repeat_n(PAD, pad).chain(r.iter().copied()));
        mask.extend(std::iter::repeat_n(0.0, pad).chain(std::iter::repeat_n(1.0, r.len())));
    }
    (tok, mask, t)
}

/// Samples one completion per row of `prompts` (at most `max_new` tokens, stopping at the
/// stop token): greedy where `greedy`, else from the temperature-scaled distribution.
pub fn sample(
    model: &Transformer,
    prompts: &[Vec<u32>],
    max_new: usize,
    temperature: f32,
    greedy: bool,
    rng: &mut ChaCha8Rng,
) -> Result<Completions> {
    let b = prompts.len();
    let mut out = Completions {
        tokens: vec![Vec::new(); b],
        logp: vec![Vec::new(); b],
        entropy: vec![Vec::new(); b],
    };
    if b == 0 || max_new == 0 {
        return Ok(out);
    }
    // Rows with the same prompt (a group's G completions) share one prefill.
    let mut first: HashMap<&[u32], usize> = HashMap::new();
    let mut unique: Vec<Vec<u32>> = Vec::new();
    let of_row: Vec<usize> = prompts
        .iter()
        .map(|p| {
            *first.entry(p.as_slice()).or_insert_with(|| {
                unique.push(p.clone());
                unique.len() - 1
            })
        })
        .collect();
    let (tok, mask, t) = left_pad(&unique);
    check_context(model, t, max_new)?;
    let (ul, uc) = model.prefill(&tok, &mask, unique.len())?;
    let (mut logits, mut cache) = if unique.len() == b {
        (ul, uc)
    } else {
        let idx: Vec<u32> = of_row.iter().map(|&r| r as u32).collect();
        let idx = candle_core::Tensor::from_vec(idx, b, ul.device())?;
        (ul.index_select(&idx, 0)?, uc.gather_rows(&of_row)?)
    };
    let mut done = vec![false; b];
    let v = model.config().vocab;
    let mut cat = Categorical::new(v);
    let mut scaled = vec![0f32; v];
    for step in 0..max_new {
        let host = logits.flatten_all()?.to_vec1::<f32>()?;
        let mut next = vec![PAD; b];
        for r in 0..b {
            // Every row uses one uniform, finished or not, so rows never shift each other's
            // stream.
            if done[r] || greedy {
                let _: f32 = rng.random();
            }
            if done[r] {
                continue;
            }
            for (z, &x) in scaled.iter_mut().zip(&host[r * v..(r + 1) * v]) {
                *z = x / temperature;
            }
            cat.set_logits(&scaled, None);
            let tok = if greedy { cat.mode() } else { cat.sample(rng) };
            out.tokens[r].push(tok as u32);
            out.logp[r].push(cat.log_prob(tok));
            out.entropy[r].push(cat.entropy());
            next[r] = tok as u32;
            if tok as u32 == EOS {
                done[r] = true;
            }
        }
        if done.iter().all(|&d| d) || step + 1 == max_new {
            break;
        }
        logits = model.decode(&mut cache, &next)?;
    }
    Ok(out)
}

/// Prompts and completions laid out for one scoring pass: `[b, t]` tokens, left-padded
/// prompts of `p` slots followed by completions right-padded to `c` slots.
#[derive(Debug, Clone)]
pub struct Batch {
    /// Rows.
    pub rows: usize,
    /// Prompt slots.
    pub p: usize,
    /// Completion slots.
    pub c: usize,
    tokens: Vec<u32>,
    mask: Vec<f32>,
    /// The completion tokens `[b, c]` (padding where a completion is shorter).
    pub targets: Vec<u32>,
    /// 1 on real completion tokens `[b, c]`.
    pub target_mask: Vec<f32>,
}

impl Batch {
    /// The layout of `prompts[i]` followed by `completions[i]`.
    pub fn new(prompts: &[Vec<u32>], completions: &[Vec<u32>]) -> Result<Self> {
        if prompts.len() != completions.len() || prompts.is_empty() {
            return Err(AlgoError::Config {
                field: "batch",
                reason: format!("{} prompts and {} completions", prompts.len(), completions.len()),
            });
        }
        let (ptok, pmask, p) = left_pad(prompts);
        let c = completions.iter().map(Vec::len).max().unwrap_or(0).max(1);
        let b = prompts.len();
        let (mut tokens, mut mask) = (Vec::with_capacity(b * (p + c)), Vec::with_capacity(b * (p + c)));
        let (mut targets, mut target_mask) = (vec![PAD; b * c], vec![0f32; b * c]);
        for r in 0..b {
            tokens.extend_from_slice(&ptok[r * p..(r + 1) * p]);
            mask.extend_from_slice(&pmask[r * p..(r + 1) * p]);
            for j in 0..c {
                match completions[r].get(j) {
                    Some(&tk) => {
                        tokens.push(tk);
                        mask.push(1.0);
                        targets[r * c + j] = tk;
                        target_mask[r * c + j] = 1.0;
                    }
                    None => {
                        tokens.push(PAD);
                        mask.push(0.0);
                    }
                }
            }
        }
        Ok(Batch {
            rows: b,
            p,
            c,
            tokens,
            mask,
            targets,
            target_mask,
        })
    }

    /// The model's input for the first `rows` rows: each row without its last slot, whose
    /// prediction nothing reads.
    fn inputs(&self, model: &Transformer, rows: usize) -> Result<(Vec<u32>, Vec<f32>)> {
        let t = self.p + self.c;
        check_context(model, self.p, self.c)?;
        let mut tok = Vec::with_capacity(rows * (t - 1));
        let mut mask = Vec::with_capacity(rows * (t - 1));
        for r in 0..rows {
            tok.extend_from_slice(&self.tokens[r * t..(r + 1) * t - 1]);
            mask.extend_from_slice(&self.mask[r * t..(r + 1) * t - 1]);
        }
        Ok((tok, mask))
    }

    /// The log-probabilities `[b, c]` of the completion tokens under `model`, with what their
    /// gradient needs ([`Transformer::score_grads`]).
    pub fn score(&self, model: &Transformer) -> Result<Scored> {
        let (tok, mask) = self.inputs(model, self.rows)?;
        Ok(model.score(&tok, &mask, self.rows, self.p - 1, &self.targets)?)
    }

    /// The logits `[rows, c, vocab]` the first `rows` rows' completion tokens are scored with
    /// (see [`Batch::score`]).
    pub fn score_logits(&self, model: &Transformer, rows: usize) -> Result<Vec<f32>> {
        let rows = rows.min(self.rows);
        let (tok, mask) = self.inputs(model, rows)?;
        Ok(model.score_logits(&tok, &mask, rows, self.p - 1, self.c)?)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use rand::SeedableRng;
    use taper_tensor::transformer::TransformerConfig;

    fn model() -> Transformer {
        let cfg = TransformerConfig {
            vocab: taper_envs::seq::vocab::SIZE,
            context: 16,
            d_model: 16,
            n_heads: 2,
            n_layers: 1,
            d_ff: 32,
        };
        Transformer::new(cfg, 1, &candle_core::Device::Cpu).unwrap()
    }

    /// The log-probabilities the sampler records equal those of the scoring pass over the same
    /// prompts and completions; sampling is seeded.
    #[test]
    fn sampled_log_probs_equal_the_scoring_pass() {
        let m = model();
        let prompts = vec![vec![1, 6, 7, 3], vec![1, 8, 3], vec![1, 6, 7, 3]];
        let mut rng = ChaCha8Rng::seed_from_u64(4);
        let c = sample(&m, &prompts, 6, 1.0, false, &mut rng).unwrap();
        let again = sample(&m, &prompts, 6, 1.0, false, &mut ChaCha8Rng::seed_from_u64(4)).unwrap();
        assert_eq!(c.tokens, again.tokens);
        let batch = Batch::new(&prompts, &c.tokens).unwrap();
        let scored = batch.score(&m).unwrap();
        let lp: Vec<&[f32]> = scored.logp().chunks(batch.c).collect();
        for r in 0..3 {
            assert!(!c.tokens[r].is_empty() && c.tokens[r].len() <= 6);
            for (j, &l) in c.logp[r].iter().enumerate() {
                assert!((lp[r][j] - l).abs() < 1e-4, "row {r} token {j}: {} vs {l}", lp[r][j]);
                assert!(c.entropy[r][j] > 0.0);
            }
        }
        // Greedy decoding ignores the stream.
        let g1 = sample(&m, &prompts, 6, 1.0, true, &mut ChaCha8Rng::seed_from_u64(1)).unwrap();
        let g2 = sample(&m, &prompts, 6, 1.0, true, &mut ChaCha8Rng::seed_from_u64(2)).unwrap();
        assert_eq!(g1.tokens, g2.tokens);
        // Too long for the context.
        let e = sample(&m, &prompts, 13, 1.0, false, &mut rng).unwrap_err().to_string();
        assert!(e.contains("context"), "{e}");
    }
}
