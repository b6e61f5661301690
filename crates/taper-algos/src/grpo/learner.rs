//! The GRPO learner: see the module doc of [`super`].

use super::blocks::{gather_total, sum_gradients, zero_gradients, LossTally, Streams, Tally};
use super::sampler::{check_context, sample, Batch, Completions};
use super::GrpoConfig;
use crate::blocks::{BlockLink, Blocks};
use crate::error::{AlgoError, Result};
use crate::group::adora::Adora;
use crate::group::advantage::group_advantages;
use crate::group::d3s::{select_cross_group, select_intra_group, token_mask};
use crate::group::dapo::{informative_groups, overlong_penalty, Overlong};
use crate::group::token_loss::{aggregation_weights_over, token_loss, valid_tokens, BatchTotals, TokenLossConfig};
use crate::safe_step::RADIUS_EPS;
use candle_core::Device;
use rand_chacha::ChaCha8Rng;
use serde::{Deserialize, Serialize};
use std::sync::Arc;
use std::time::Instant;
use taper_envs::seq::{vocab, SeqTask, Split};
use taper_envs::wrappers::EpisodeRecord;
use taper_envs::Kwargs;
use taper_tensor::device::Placement;
use taper_tensor::optim::AdamConfig;
use taper_tensor::rng::{stream, Purpose};
use taper_tensor::transformer::{Transformer, TransformerConfig};
use taper_tensor::var_adam::{clip_grad_norm, VarAdam};
use taper_train::checkpoint::Checkpoint;
use taper_train::eval::{EnvView, EvalOptions, Evaluation};
use taper_train::{Learner, LearnerState, Metrics, Progress, RunInfo};

/// The stream tags of this learner.
const PROMPTS: u32 = 21;
const SAMPLING: u32 = 22;
const EVAL: u32 = 23;
const SFT: u32 = 24;

/// Everything besides the config and the tensors: with them a run resumes exactly.
#[derive(Debug, Clone, Serialize, Deserialize)]
struct GrpoState {
    seed: u64,
    /// The first data block's streams as saved (while training, the held blocks' streams are
    /// [`Grpo`]'s `streams`).
    prompt_rng: ChaCha8Rng,
    sample_rng: ChaCha8Rng,
    global_step: u64,
    updates: u64,
    samples_trained: u64,
    tokens_trained: u64,
    sft_done: bool,
    warm_start_accuracy: Option<f64>,
    /// Warm-start steps taken.
    #[serde(default)]
    sft_steps_taken: u64,
    /// The greedy accuracy on train prompts where the warm start stopped.
    #[serde(default)]
    warm_start_train_accuracy: Option<f64>,
    opt_steps: u64,
    /// The further data blocks' streams, blocks 1 onwards (none with one block).
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    blocks: Vec<Streams>,
}

/// One group's prompt and its G completions with their rewards.
struct Group {
    prompt: Vec<u32>,
    comp: Completions,
    scores: Vec<f32>,
    rewards: Vec<f32>,
}

/// A data block's batch, ready for the loss: the selected completions, the mask of the
/// tokens the loss reads, and the rows' advantages.
struct Part {
    batch: Batch,
    mask: Vec<f32>,
    adv: Vec<f32>,
}

/// A data block's share of an iteration up to the loss.
struct Prepared {
    tally: Tally,
    /// `None` where dynamic sampling kept no group.
    part: Option<Part>,
}

/// What one iteration reports.
#[derive(Default, Clone, Copy)]
struct IterStats {
    reward: f64,
    accuracy: f64,
    loss: f64,
    kl: f64,
    clipfrac: f64,
    entropy: f64,
    grad_norm: f64,
    length: f64,
    kept_groups: f64,
    kept_samples: f64,
    kept_tokens: f64,
    step_r: f64,
}

/// Rows of a batch on which the normalised step is measured (the radius over their scored
/// tokens; a subset gives a radius at least the whole batch's).
const STEP_R_ROWS: usize = 32;

/// Measures the update the optimizer just applied (the variables were `theta0` before it,
/// the first rows' scored logits there `z0`) against the softmax safe-step radius over the
/// first [`STEP_R_ROWS`] rows' scored tokens, and with a target scales it down to at most
/// that normalised step; returns the applied step's `r`. The variables are restored bit for
/// bit when nothing is scaled.
fn limit_step(
    model: &Transformer,
    batch: &Batch,
    z0: &[f32],
    theta0: &[candle_core::Tensor],
    target: Option<f32>,
) -> Result<f64> {
    let vars = model.vars();
    let theta1: Vec<candle_core::Tensor> = vars
        .iter()
        .map(|v| v.as_tensor().copy())
        .collect::<candle_core::Result<_>>()?;
    let step: Vec<candle_core::Tensor> = theta1
        .iter()
        .zip(theta0)
        .map(|(a, b)| a - b)
        .collect::<candle_core::Result<_>>()?;
    let mut norm2 = 0f64;
    for p in &step {
        norm2 += p
            .sqr()?
            .sum_all()?
            .to_dtype(candle_core::DType::F64)?
            .to_scalar::<f64>()?;
    }
    let norm = norm2.sqrt();
    if norm == 0.0 {
        return Ok(0.0);
    }
    let set_to = |scale: f64| -> Result<()> {
        for ((v, t0), p) in vars.iter().zip(theta0).zip(&step) {
            v.set(&(t0 + (p * scale)?)?)?;
        }
        Ok(())
    };
    set_to(RADIUS_EPS as f64 / norm)?;
    let rows = batch.rows.min(STEP_R_ROWS);
    let z1 = batch.score_logits(model, rows)?;
    // Only the completion tokens the loss reads.
    let scored: Vec<bool> = batch.target_mask[..rows * batch.c].iter().map(|&m| m > 0.0).collect();
    let (s, applied) = taper_diagnostics::safe_step::limit(
        z0,
        &z1,
        model.config().vocab,
        RADIUS_EPS,
        Some(&scored),
        norm as f32,
        target,
    )
    .map_err(|e| AlgoError::Config {
        field: "step_radius_target",
        reason: e.to_string(),
    })?;
    if s < 1.0 {
        set_to(s as f64)?;
    } else {
        for (v, t1) in vars.iter().zip(&theta1) {
            v.set(t1)?;
        }
    }
    Ok(applied.r as f64)
}

/// GRPO on a sequence task. See the module doc.
pub struct Grpo {
    config: GrpoConfig,
    given: GrpoConfig,
    task: Box<dyn SeqTask>,
    model: Transformer,
    reference: Option<Transformer>,
    opt: VarAdam,
    run: RunInfo,
    st: GrpoState,
    /// The streams of the data blocks held here, in block order.
    streams: Vec<Streams>,
    /// Where the run's data blocks are.
    place: Blocks,
    total_updates: u64,
    started_at: Instant,
    start_step: u64,
}

impl std::fmt::Debug for Grpo {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Grpo")
            .field("config", &self.config)
            .field("updates", &self.st.updates)
            .finish()
    }
}

fn adam(lr: f64) -> AdamConfig {
    AdamConfig {
        lr: lr as f32,
        ..AdamConfig::default()
    }
}

impl Grpo {
    /// GRPO on the registered sequence task `env_id`; all randomness from `seed`.
    pub fn new(config: GrpoConfig, env_id: &str, env_kwargs: &Kwargs, seed: u64) -> Result<Self> {
        let place = Blocks::local(config.data_blocks);
        Self::on_blocks(config, env_id, env_kwargs, seed, place)
    }

    /// One process of a data-parallel run (see [`crate::blocks`] and the module doc of
    /// [`super`]): it samples data block `link.rank()`'s share of the prompts of
    /// `config.data_blocks` (which must equal the processes), and learns with the others
    /// through `link`.
    pub fn data_parallel(
        config: GrpoConfig,
        env_id: &str,
        env_kwargs: &Kwargs,
        seed: u64,
        link: Arc<dyn BlockLink>,
    ) -> Result<Self> {
        let place = Blocks::linked(link, config.data_blocks)?;
        Self::on_blocks(config, env_id, env_kwargs, seed, place)
    }

    /// GRPO holding the data blocks `place` says.
    fn on_blocks(config: GrpoConfig, env_id: &str, env_kwargs: &Kwargs, seed: u64, place: Blocks) -> Result<Self> {
        config.validate()?;
        if !taper_envs::registry::is_sequence(env_id) {
            return Err(AlgoError::Config {
                field: "env",
                reason: format!(
                    "grpo trains the sequence tasks ({}), not `{env_id}`",
                    taper_envs::seq::tasks::IDS.join(", ")
                ),
            });
        }
        let (task, _) = taper_envs::registry::seq_task(env_id, env_kwargs)?;
        let resolved = config.resolved();
        let cfg = TransformerConfig {
            vocab: vocab::SIZE,
            context: task.max_prompt_len() + task.max_new_tokens(),
            d_model: config.d_model,
            n_heads: config.n_heads,
            n_layers: config.n_layers,
            d_ff: config.d_ff,
        };
        let model = Transformer::new(cfg, seed, &Device::Cpu)?;
        check_context(&model, task.max_prompt_len(), task.max_new_tokens())?;
        let opt = VarAdam::new(adam(config.learning_rate), model.vars())?;
        let streams_of = |b: usize| Streams {
            prompt_rng: stream(seed, Purpose::Other(PROMPTS), b as u64),
            sample_rng: stream(seed, Purpose::Other(SAMPLING), b as u64),
        };
        let first = streams_of(0);
        Ok(Grpo {
            st: GrpoState {
                seed,
                prompt_rng: first.prompt_rng,
                sample_rng: first.sample_rng,
                global_step: 0,
                updates: 0,
                samples_trained: 0,
                tokens_trained: 0,
                sft_done: false,
                warm_start_accuracy: None,
                sft_steps_taken: 0,
                warm_start_train_accuracy: None,
                opt_steps: 0,
                blocks: Vec::new(),
            },
            streams: (place.first..place.first + place.held()).map(streams_of).collect(),
            place,
            run: RunInfo {
                algo: "grpo".into(),
                env_id: env_id.to_string(),
                env_kwargs: env_kwargs.clone(),
                seed,
            },
            config: resolved,
            given: config,
            task,
            model,
            reference: None,
            opt,
            total_updates: 0,
            started_at: Instant::now(),
            start_step: 0,
        })
    }

    /// The policy.
    pub fn model(&self) -> &Transformer {
        &self.model
    }

    /// The greedy accuracy (fraction answered exactly) and mean score on `n` test prompts
    /// drawn from `seed`.
    pub fn test_accuracy(&self, n: usize, seed: u64) -> Result<(f64, f64)> {
        let mut rng = stream(seed, Purpose::Other(EVAL), 0);
        let prompts = (0..n)
            .map(|_| self.task.sample_prompt(&mut rng, Split::Test))
            .collect::<taper_envs::Result<Vec<_>>>()?;
        self.greedy_accuracy(&prompts, &mut rng)
    }

    /// The greedy accuracy and mean score on `prompts`.
    fn greedy_accuracy(&self, prompts: &[Vec<u32>], rng: &mut ChaCha8Rng) -> Result<(f64, f64)> {
        let n = prompts.len();
        let (right, score) = self.greedy_sums(prompts, rng)?;
        Ok((right as f64 / n as f64, score / n as f64))
    }

    /// The exact answers and the summed score of greedy answers to `prompts`.
    fn greedy_sums(&self, prompts: &[Vec<u32>], rng: &mut ChaCha8Rng) -> Result<(u64, f64)> {
        let comp = sample(&self.model, prompts, self.task.max_new_tokens(), 1.0, true, rng)?;
        let (mut right, mut score) = (0u64, 0f64);
        for (i, p) in prompts.iter().enumerate() {
            let s = self.task.score(p, comp.answer(i));
            score += s as f64;
            right += (s == 1.0) as u64;
        }
        Ok((right, score))
    }

    /// [`Grpo::test_accuracy`] of the metrics rows, on `eval_prompts` test prompts: with
    /// several data blocks each block answers its share of the prompts (block `b` of `B` the
    /// `b·n/B ..` ones), and the counts are summed in block order (collective).
    fn row_test_accuracy(&self) -> Result<(f64, f64)> {
        let (n, seed) = (self.config.eval_prompts, self.st.seed);
        if self.place.total == 1 {
            return self.test_accuracy(n, seed);
        }
        let mut rng = stream(seed, Purpose::Other(EVAL), 0);
        let prompts = (0..n)
            .map(|_| self.task.sample_prompt(&mut rng, Split::Test))
            .collect::<taper_envs::Result<Vec<_>>>()?;
        let total = self.place.total;
        let mut local = Vec::with_capacity(self.streams.len());
        for b in self.place.first..self.place.first + self.place.held() {
            let share = &prompts[b * n / total..(b + 1) * n / total];
            local.push(if share.is_empty() {
                (0, 0.0)
            } else {
                self.greedy_sums(share, &mut rng.clone())?
            });
        }
        let (right, score) = gather_total(&self.place, local, |all: &[(u64, f64)]| {
            all[1..].iter().fold(all[0], |(r, s), &(r2, s2)| (r + r2, s + s2))
        })?;
        Ok((right as f64 / n as f64, score / n as f64))
    }

    /// The supervised warm start: cross-entropy on generated train prompts and their answers,
    /// until the greedy accuracy on fixed train prompts reaches `sft_target_accuracy`
    /// (checked every `sft_check_every` steps) or `sft_steps` steps.
    fn warm_start(&mut self) -> Result<()> {
        let c = self.config.clone();
        let mut rng = stream(self.st.seed, Purpose::Other(SFT), 0);
        let mut check_rng = stream(self.st.seed, Purpose::Other(SFT), 1);
        let check = (0..c.eval_prompts)
            .map(|_| self.task.sample_prompt(&mut check_rng, Split::Train))
            .collect::<taper_envs::Result<Vec<_>>>()?;
        let mut opt = VarAdam::new(adam(c.sft_learning_rate), self.model.vars())?;
        let mut train_acc = self.greedy_accuracy(&check, &mut check_rng)?.0;
        let mut taken = 0u64;
        for step in 0..c.sft_steps {
            if train_acc >= c.sft_target_accuracy {
                break;
            }
            let mut prompts = Vec::with_capacity(c.sft_batch);
            let mut targets = Vec::with_capacity(c.sft_batch);
            for _ in 0..c.sft_batch {
                let p = self.task.sample_prompt(&mut rng, Split::Train)?;
                let mut a = self.task.answer(&p)?;
                a.push(vocab::EOS);
                prompts.push(p);
                targets.push(a);
            }
            let batch = Batch::new(&prompts, &targets)?;
            let scored = batch.score(&self.model)?;
            let n: f32 = batch.target_mask.iter().sum();
            let w: Vec<f32> = batch.target_mask.iter().map(|m| -m / n).collect();
            let mut g = self.model.score_grads(&scored, &w)?;
            clip_grad_norm(&mut g, c.max_grad_norm as f32)?;
            opt.step(self.model.vars(), &g)?;
            taken += 1;
            if (step + 1) % c.sft_check_every == 0 || step + 1 == c.sft_steps {
                train_acc = self.greedy_accuracy(&check, &mut check_rng)?.0;
            }
        }
        self.st.sft_steps_taken = taken;
        self.st.warm_start_train_accuracy = Some(train_acc);
        self.st.sft_done = true;
        self.st.warm_start_accuracy = Some(self.test_accuracy(self.config.eval_prompts, self.st.seed)?.0);
        if self.config.beta > 0.0 {
            self.reference = Some(self.model.deep_clone()?);
        }
        Ok(())
    }

    /// `n` groups of fresh train prompts from a block's streams `s`, sampled and scored.
    fn sample_groups(&self, s: &mut Streams, n: usize) -> Result<Vec<Group>> {
        let g = self.config.num_generations;
        let max_new = self.task.max_new_tokens();
        let prompts = (0..n)
            .map(|_| self.task.sample_prompt(&mut s.prompt_rng, Split::Train))
            .collect::<taper_envs::Result<Vec<_>>>()?;
        let rows: Vec<Vec<u32>> = prompts.iter().flat_map(|p| std::iter::repeat_n(p.clone(), g)).collect();
        let comp = sample(
            &self.model,
            &rows,
            max_new,
            self.config.temperature,
            false,
            &mut s.sample_rng,
        )?;
        // DAPO's soft overlong punishment over the budget's slack beyond the longest answer.
        let overlong = Overlong {
            max_len: max_new,
            cache: max_new.saturating_sub(self.task.max_answer_len() + 1),
            factor: 1.0,
        };
        let mut out = Vec::with_capacity(n);
        for (k, p) in prompts.into_iter().enumerate() {
            let mut grp = Completions::default();
            let (mut scores, mut rewards) = (Vec::with_capacity(g), Vec::with_capacity(g));
            for r in k * g..(k + 1) * g {
                let s = self.task.score(&p, comp.answer(r));
                let shaped = if self.config.dapo && overlong.cache > 0 {
                    s + overlong_penalty(&overlong, comp.tokens[r].len())
                } else {
                    s
                };
                scores.push(s);
                rewards.push(shaped);
                grp.tokens.push(comp.tokens[r].clone());
                grp.logp.push(comp.logp[r].clone());
                grp.entropy.push(comp.entropy[r].clone());
            }
            out.push(Group {
                prompt: p,
                comp: grp,
                scores,
                rewards,
            });
        }
        Ok(out)
    }

    /// One data block's share of an iteration up to the loss: `quota` groups sampled from its
    /// streams `s`, then the advantage stages on them; `progress` (the fraction of training
    /// done) sets D³S's schedule.
    fn prepare(&self, s: &mut Streams, quota: usize, progress: f64) -> Result<Prepared> {
        let c = &self.config;
        let g = c.num_generations;
        let mut groups = self.sample_groups(s, quota)?;
        let mut tally = Tally {
            sampled: (groups.len() * g) as u64,
            ..fresh_tally(&groups)
        };
        // Filter: DAPO's dynamic sampling, with at most `dynamic_sampling_rounds` refills.
        if c.dapo {
            let informative = |grp: &Group| informative_groups(&grp.rewards, g).is_ok_and(|v| v[0]);
            for round in 0..=c.dynamic_sampling_rounds {
                groups.retain(informative);
                let missing = quota - groups.len();
                if missing == 0 || round == c.dynamic_sampling_rounds {
                    break;
                }
                let more = self.sample_groups(s, missing)?;
                tally.sampled += (more.len() * g) as u64;
                groups.extend(more);
            }
        }
        tally.kept_groups = groups.len() as u64;
        if groups.is_empty() {
            return Ok(Prepared { tally, part: None });
        }
        // Estimate.
        let rewards: Vec<f32> = groups.iter().flat_map(|grp| grp.rewards.iter().copied()).collect();
        let mut adv = group_advantages(&rewards, g, c.scale_rewards, 1e-4)?;
        // Weight: ADORA.
        if c.adora {
            let scores: Vec<f32> = groups.iter().flat_map(|grp| grp.scores.iter().copied()).collect();
            let lengths: Vec<usize> = groups
                .iter()
                .flat_map(|grp| grp.comp.tokens.iter().map(Vec::len))
                .collect();
            let adora = Adora {
                max_length: Some(self.task.max_new_tokens()),
                ..c.adora_settings
            };
            adora.apply(&mut adv, &scores, &lengths, g)?;
        }
        let prompts: Vec<Vec<u32>> = groups
            .iter()
            .flat_map(|grp| std::iter::repeat_n(grp.prompt.clone(), g))
            .collect();
        let tokens: Vec<Vec<u32>> = groups.iter().flat_map(|grp| grp.comp.tokens.iter().cloned()).collect();
        let entropy: Vec<Vec<f32>> = groups.iter().flat_map(|grp| grp.comp.entropy.iter().cloned()).collect();
        // Select: D³S (over this block's rows).
        let n = adv.len();
        let (selected, token_keep) = if c.d3s {
            if c.d3s_cross_group {
                let (m, k) = c.d3s_schedule.at(progress, n);
                (select_cross_group(&adv, m), k)
            } else {
                let (m, k) = c.d3s_schedule.at(progress, g);
                (select_intra_group(&adv, g, m)?, k)
            }
        } else {
            ((0..n).collect(), 1.0)
        };
        let sp: Vec<Vec<u32>> = selected.iter().map(|&i| prompts[i].clone()).collect();
        let st: Vec<Vec<u32>> = selected.iter().map(|&i| tokens[i].clone()).collect();
        let sa: Vec<f32> = selected.iter().map(|&i| adv[i]).collect();
        let batch = Batch::new(&sp, &st)?;
        let mut mask = batch.target_mask.clone();
        if c.d3s && token_keep < 1.0 {
            let mut ent = vec![0f32; batch.rows * batch.c];
            for (r, &i) in selected.iter().enumerate() {
                ent[r * batch.c..r * batch.c + entropy[i].len()].copy_from_slice(&entropy[i]);
            }
            let rows: Vec<usize> = (0..batch.rows).collect();
            let keep = token_mask(&sa, &ent, &batch.target_mask, batch.c, &rows, token_keep)?;
            mask.iter_mut().zip(&keep).for_each(|(m, k)| *m *= k);
        }
        tally.candidates = n as u64;
        tally.rows = batch.rows as u64;
        tally.target_tokens = batch.target_mask.iter().sum::<f32>() as f64;
        tally.tokens = valid_tokens(&mask);
        Ok(Prepared {
            tally,
            part: Some(Part { batch, mask, adv: sa }),
        })
    }

    /// A block's gradient of the whole batch's loss (its rows' per-token terms, normalised by
    /// the batch's `totals`: per-token gradients on the host, one backward pass through the
    /// model), and what its loss adds up to. Zero for a block that kept nothing.
    fn block_gradient(
        &self,
        part: Option<&Part>,
        totals: BatchTotals,
    ) -> Result<(Vec<candle_core::Tensor>, LossTally)> {
        let Some(p) = part else {
            return Ok((zero_gradients(self.model.vars())?, LossTally::default()));
        };
        let c = &self.config;
        let batch = &p.batch;
        let scored = batch.score(&self.model)?;
        let lp = scored.logp();
        let ref_lp = match &self.reference {
            Some(r) if c.beta > 0.0 => Some(batch.score(r)?.logp().to_vec()),
            _ => None,
        };
        let w = aggregation_weights_over(c.loss_type, &p.mask, batch.c, self.task.max_new_tokens(), totals)?;
        let tl = TokenLossConfig {
            eps_low: c.epsilon as f32,
            eps_high: c.epsilon_high.unwrap_or(c.epsilon) as f32,
            beta: c.beta as f32,
        };
        let mut coef = vec![0f32; lp.len()];
        let (mut loss, mut kl, mut clipped, mut active) = (0f64, 0f64, 0usize, 0usize);
        for i in 0..lp.len() {
            if p.mask[i] <= 0.0 {
                continue;
            }
            // One update per batch: the old policy is the current one (TRL, num_iterations 1).
            let t = token_loss(&tl, lp[i], lp[i], ref_lp.as_ref().map(|r| r[i]), p.adv[i / batch.c]);
            coef[i] = w[i] * t.dlogp;
            loss += (w[i] * t.loss) as f64;
            kl += t.kl as f64;
            clipped += t.clipped as usize;
            active += 1;
        }
        let grads = self.model.score_grads(&scored, &coef)?;
        Ok((
            grads,
            LossTally {
                loss,
                kl,
                clipped: clipped as u64,
                active: active as u64,
            },
        ))
    }

    /// One iteration: every held data block samples its share and runs the advantage stages;
    /// the blocks' counts and gradients are summed in block order; one gradient step.
    fn iteration(&mut self, measure_step: bool) -> Result<IterStats> {
        let c = self.config.clone();
        let quota = c.prompts_per_step / c.data_blocks;
        let progress = self.st.updates as f64 / self.total_updates.max(1) as f64;
        let mut streams = std::mem::take(&mut self.streams);
        let prepared: Result<Vec<Prepared>> = streams.iter_mut().map(|s| self.prepare(s, quota, progress)).collect();
        self.streams = streams;
        let prepared = prepared?;
        let tally = gather_total(
            &self.place,
            prepared.iter().map(|p| p.tally.clone()).collect(),
            Tally::total,
        )?;
        self.st.global_step += tally.sampled;
        let fresh = tally.fresh.max(1) as f64;
        let mut stats = IterStats {
            reward: tally.reward / fresh,
            accuracy: tally.accuracy / fresh,
            entropy: tally.entropy / tally.entropy_tokens.max(1) as f64,
            length: tally.length as f64 / fresh,
            kept_groups: tally.kept_groups as f64 / c.prompts_per_step as f64,
            ..IterStats::default()
        };
        if tally.kept_groups == 0 {
            self.st.updates += 1;
            return Ok(stats);
        }
        let totals = tally.batch_totals();
        let (mut local, mut losses) = (Vec::with_capacity(prepared.len()), Vec::with_capacity(prepared.len()));
        for p in &prepared {
            let (g, l) = self.block_gradient(p.part.as_ref(), totals)?;
            local.push(g);
            losses.push(l);
        }
        let lt = gather_total(&self.place, losses, LossTally::total)?;
        let mut grads = match local.len() {
            1 if self.place.total == 1 => local.pop().unwrap_or_default(),
            _ => sum_gradients(&self.place, &local, self.model.vars())?,
        };
        let gn = clip_grad_norm(&mut grads, c.max_grad_norm as f32)?;
        if !gn.is_finite() || !lt.loss.is_finite() {
            return Err(AlgoError::NonFinite {
                update: self.st.updates + 1,
                term: "grpo loss",
            });
        }
        // The safe-step radius, over the first block's rows (where that block kept some).
        let probe = match prepared.first() {
            Some(p) if measure_step && self.place.first == 0 => p.part.as_ref(),
            _ => None,
        };
        if let Some(p) = probe {
            // The probed rows' logits and the variables before the step.
            let z0 = p.batch.score_logits(&self.model, STEP_R_ROWS)?;
            let theta0: Vec<candle_core::Tensor> = self
                .model
                .vars()
                .iter()
                .map(|v| v.as_tensor().copy())
                .collect::<candle_core::Result<_>>()?;
            self.opt.step(self.model.vars(), &grads)?;
            stats.step_r = limit_step(
                &self.model,
                &p.batch,
                &z0,
                &theta0,
                c.step_radius_target.map(|t| t as f32),
            )?;
        } else {
            self.opt.step(self.model.vars(), &grads)?;
        }
        if measure_step && self.place.total > 1 {
            // Block 0's measurement (NaN when it kept no rows) for every process.
            stats.step_r = self.place.all_gather_items(vec![stats.step_r; self.streams.len()])?[0];
        }
        self.st.opt_steps = self.opt.steps();
        self.st.updates += 1;
        self.st.samples_trained += tally.rows;
        self.st.tokens_trained += lt.active;
        stats.loss = lt.loss;
        stats.kl = lt.kl / lt.active.max(1) as f64;
        stats.clipfrac = lt.clipped as f64 / lt.active.max(1) as f64;
        stats.grad_norm = gn as f64;
        stats.kept_samples = tally.rows as f64 / tally.candidates as f64;
        stats.kept_tokens = lt.active as f64 / tally.target_tokens.max(1.0);
        Ok(stats)
    }

    /// A hash of the policy's weights' bits.
    fn fingerprint(&self) -> Result<u64> {
        use std::hash::{Hash, Hasher};
        let mut h = std::collections::hash_map::DefaultHasher::new();
        for v in self.model.vars() {
            for x in v.as_tensor().flatten_all()?.to_vec1::<f32>()? {
                x.to_bits().hash(&mut h);
            }
        }
        Ok(h.finish())
    }

    /// Moves the model (and the reference and Adam's moments) to `device`, run by the host
    /// kernels where `host` (the CPU only) or by the candle graph.
    fn move_to(&mut self, device: &Device, host: bool) -> Result<()> {
        if !self.model.device().same_device(device) {
            self.move_device(device)?;
        }
        self.model.set_host_kernels(host)?;
        if let Some(r) = &mut self.reference {
            r.set_host_kernels(host)?;
        }
        Ok(())
    }

    fn move_device(&mut self, device: &Device) -> Result<()> {
        let t: std::collections::HashMap<_, _> = self.model.to_tensors("p")?.into_iter().collect();
        let m = Transformer::new(*self.model.config(), self.st.seed, device)?;
        m.load_tensors("p", &t)?;
        let o: std::collections::HashMap<_, _> = self.opt.to_tensors("o")?.into_iter().collect();
        let mut opt = VarAdam::new(adam(self.config.learning_rate), m.vars())?;
        opt.load("o", &o, self.opt.steps())?;
        if let Some(r) = &self.reference {
            let rt: std::collections::HashMap<_, _> = r.to_tensors("r")?.into_iter().collect();
            let nr = Transformer::new(*r.config(), self.st.seed, device)?;
            nr.load_tensors("r", &rt)?;
            self.reference = Some(nr);
        }
        (self.model, self.opt) = (m, opt);
        Ok(())
    }
}

/// The sums over a fresh batch's completions of their shaped rewards, exact answers, sampling
/// entropies and lengths, with their counts.
fn fresh_tally(groups: &[Group]) -> Tally {
    let (mut r, mut a, mut n) = (0f64, 0f64, 0usize);
    let (mut h, mut nt, mut len) = (0f64, 0usize, 0usize);
    for grp in groups {
        for (i, &s) in grp.scores.iter().enumerate() {
            r += grp.rewards[i] as f64;
            a += (s == 1.0) as u8 as f64;
            n += 1;
            len += grp.comp.tokens[i].len();
            h += grp.comp.entropy[i].iter().map(|&e| e as f64).sum::<f64>();
            nt += grp.comp.entropy[i].len();
        }
    }
    Tally {
        fresh: n as u64,
        reward: r,
        accuracy: a,
        entropy: h,
        entropy_tokens: nt as u64,
        length: len as u64,
        ..Tally::default()
    }
}

impl Learner for Grpo {
    fn info(&self) -> RunInfo {
        self.run.clone()
    }
    fn set_placement(&mut self, placement: &Placement) -> taper_train::Result<()> {
        Ok(match placement {
            Placement::Fast => self.move_to(&Device::Cpu, true),
            Placement::Candle(d) => self.move_to(d, false),
        }?)
    }
    fn config_json(&self) -> serde_json::Value {
        serde_json::to_value(&self.given).unwrap_or_default()
    }
    fn progress(&self) -> Progress {
        Progress {
            global_step: self.st.global_step,
            updates: self.st.updates,
            episodes: self.st.global_step,
        }
    }
    /// The budget counts completions sampled; the warm start runs here, once.
    fn plan(&mut self, total_steps: u64) -> taper_train::Result<u64> {
        let per = (self.config.prompts_per_step * self.config.num_generations) as u64;
        let iters = total_steps / per;
        if iters == 0 {
            return Err(AlgoError::Config {
                field: "total_steps",
                reason: format!("{total_steps} is less than one iteration ({per} completions)"),
            }
            .into());
        }
        if iters <= self.st.updates {
            return Err(AlgoError::Config {
                field: "total_steps",
                reason: format!(
                    "the run is already at {} completions of a {total_steps}-completion plan; give a larger budget to continue",
                    self.st.global_step
                ),
            }
            .into());
        }
        if !self.st.sft_done {
            self.warm_start()?;
            // Each process of a data-parallel run warm-starts alone: all must end alike.
            self.place.check_same("warm-started weights", self.fingerprint()?)?;
        }
        self.total_updates = iters;
        self.started_at = Instant::now();
        self.start_step = self.st.global_step;
        Ok(iters * per)
    }
    /// `eval_every` iterations, then the greedy accuracy on the held-apart test prompts.
    fn step(&mut self) -> taper_train::Result<Metrics> {
        let mut last = IterStats::default();
        let n = self.config.eval_every.max(1);
        for k in 0..n {
            if self.st.updates >= self.total_updates {
                break;
            }
            // The step's radius is measured where it is logged (the row's last iteration), and
            // at every iteration under the controller.
            let measure =
                self.config.step_radius_target.is_some() || k + 1 == n || self.st.updates + 1 >= self.total_updates;
            last = self.iteration(measure)?;
        }
        let (acc, score) = self.row_test_accuracy()?;
        let elapsed = self.started_at.elapsed().as_secs_f64();
        let mut m = Metrics::new();
        m.push("global_step", self.st.global_step as f64);
        m.push("update", self.st.updates as f64);
        m.push("samples_trained", self.st.samples_trained as f64);
        m.push("tokens_trained", self.st.tokens_trained as f64);
        m.push("test_accuracy", acc);
        m.push("test_score", score);
        m.push("train_reward", last.reward);
        m.push("train_accuracy", last.accuracy);
        m.push("loss", last.loss);
        m.push("kl", last.kl);
        m.push("clipfrac", last.clipfrac);
        m.push("entropy", last.entropy);
        m.push("grad_norm", last.grad_norm);
        m.push("step_r", last.step_r);
        m.push("completion_length", last.length);
        m.push("kept_groups", last.kept_groups);
        m.push("kept_samples", last.kept_samples);
        m.push("kept_tokens", last.kept_tokens);
        m.push("warm_start_accuracy", self.st.warm_start_accuracy.unwrap_or(0.0));
        m.push("warm_start_steps", self.st.sft_steps_taken as f64);
        m.push(
            "warm_start_train_accuracy",
            self.st.warm_start_train_accuracy.unwrap_or(0.0),
        );
        m.push(
            "sps",
            (self.st.global_step - self.start_step) as f64 / elapsed.max(1e-9),
        );
        m.push("time_elapsed", elapsed);
        Ok(m)
    }
    fn is_done(&self) -> bool {
        self.st.updates >= self.total_updates
    }
    fn export(&self) -> taper_train::Result<LearnerState> {
        let mut tensors = self.model.to_tensors("policy")?;
        if let Some(r) = &self.reference {
            tensors.extend(r.to_tensors("reference")?);
        }
        tensors.extend(self.opt.to_tensors("adam")?);
        // Every block's streams (gathered from the other processes in a data-parallel run).
        let mut st = self.st.clone();
        let mut all = self.place.all_gather_items(self.streams.clone())?.into_iter();
        let first = all
            .next()
            .ok_or_else(|| AlgoError::Link("no data block's streams gathered".into()))?;
        (st.prompt_rng, st.sample_rng, st.blocks) = (first.prompt_rng, first.sample_rng, all.collect());
        Ok(LearnerState::new(
            serde_json::to_value(&st).map_err(taper_train::TrainError::learner)?,
            tensors,
        ))
    }
    fn import(&mut self, ckpt: &Checkpoint, resume: bool) -> taper_train::Result<()> {
        self.model.load_tensors("policy", &ckpt.tensors).map_err(|e| {
            taper_train::TrainError::checkpoint(&ckpt.dir, format!("its weights do not match this config: {e}"))
        })?;
        if resume {
            let st: GrpoState = ckpt.algo_state()?;
            if st.blocks.len() + 1 != self.place.total {
                return Err(taper_train::TrainError::checkpoint(
                    &ckpt.dir,
                    format!(
                        "it holds {} data blocks but the config has {}",
                        st.blocks.len() + 1,
                        self.place.total
                    ),
                ));
            }
            let first = Streams {
                prompt_rng: st.prompt_rng.clone(),
                sample_rng: st.sample_rng.clone(),
            };
            let all: Vec<Streams> = std::iter::once(first).chain(st.blocks.iter().cloned()).collect();
            self.streams = all[self.place.first..self.place.first + self.place.held()].to_vec();
            if self.config.beta > 0.0 && st.sft_done {
                let r = self.model.deep_clone()?;
                r.load_tensors("reference", &ckpt.tensors)?;
                self.reference = Some(r);
            }
            self.opt.load("adam", &ckpt.tensors, st.opt_steps)?;
            self.st = st;
        } else {
            self.st.sft_done = true;
        }
        Ok(())
    }
    /// Each episode is one held-apart test prompt answered greedily (`deterministic`) or by
    /// sampling: the return is the verifier's score, success an exact answer; `accuracy` is
    /// the fraction answered exactly.
    fn evaluate(
        &self,
        opts: &EvalOptions,
        _on_step: &mut dyn FnMut(usize, EnvView<'_>),
    ) -> taper_train::Result<Evaluation> {
        let mut rng = stream(opts.seed, Purpose::Other(EVAL), 1);
        let prompts = (0..opts.episodes)
            .map(|_| self.task.sample_prompt(&mut rng, Split::Test))
            .collect::<taper_envs::Result<Vec<_>>>()
            .map_err(AlgoError::from)?;
        let comp = sample(
            &self.model,
            &prompts,
            self.task.max_new_tokens(),
            self.config.temperature,
            opts.deterministic,
            &mut rng,
        )?;
        let mut eps = Vec::with_capacity(prompts.len());
        for (i, p) in prompts.iter().enumerate() {
            let s = self.task.score(p, comp.answer(i)) as f64;
            eps.push(EpisodeRecord {
                ret: s,
                len: comp.tokens[i].len() as u64,
                success: Some(s == 1.0),
            });
        }
        let acc = eps.iter().filter(|e| e.success == Some(true)).count() as f64 / eps.len().max(1) as f64;
        Ok(Evaluation {
            episodes: eps,
            extra: vec![("accuracy".into(), acc.into())],
        })
    }
    /// `obs` is a prompt's tokens (as the env's observation window: trailing padding is
    /// ignored); returns the completion's tokens.
    fn predict(&mut self, obs: &[f32], deterministic: bool) -> taper_train::Result<Vec<f32>> {
        let prompt: Vec<u32> = obs.iter().map(|&x| x as u32).filter(|&t| t != vocab::PAD).collect();
        if prompt.is_empty() || prompt.len() > self.task.max_prompt_len() || self.task.answer(&prompt).is_err() {
            return Err(AlgoError::Config {
                field: "obs",
                reason: format!(
                    "not a prompt of {} (at most {} tokens): `{}`",
                    self.task.id(),
                    self.task.max_prompt_len(),
                    vocab::render(&prompt)
                ),
            }
            .into());
        }
        let mut rng = stream(self.st.seed, Purpose::Other(EVAL), 2);
        let c = sample(
            &self.model,
            &[prompt],
            self.task.max_new_tokens(),
            self.config.temperature,
            deterministic,
            &mut rng,
        )?;
        Ok(c.tokens[0].iter().map(|&t| t as f32).collect())
    }
    fn guarded_columns(&self) -> &'static [&'static str] {
        &["loss", "grad_norm"]
    }
    fn headline(&self) -> &'static [&'static str] {
        &["test_accuracy"]
    }
    fn step_unit(&self) -> &'static str {
        "completions"
    }
    fn summary(&self) -> String {
        format!(
            "{} completions, {} updates, {} tokens trained; warm start: {} steps, test accuracy {:.3}",
            self.st.global_step,
            self.st.updates,
            self.st.tokens_trained,
            self.st.sft_steps_taken,
            self.st.warm_start_accuracy.unwrap_or(0.0)
        )
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::group::token_loss::LossType;

    /// `n` hand-made rows: train prompts with their answers cut to varied lengths, and
    /// alternating advantages.
    fn rows(g: &Grpo, n: usize) -> (Vec<Vec<u32>>, Vec<Vec<u32>>, Vec<f32>) {
        let mut rng = stream(5, Purpose::Other(PROMPTS), 9);
        let (mut prompts, mut completions, mut adv) = (Vec::new(), Vec::new(), Vec::new());
        for r in 0..n {
            let p = g.task.sample_prompt(&mut rng, Split::Train).unwrap();
            let mut a = g.task.answer(&p).unwrap();
            a.truncate(1 + r % 3);
            a.push(vocab::EOS);
            prompts.push(p);
            completions.push(a);
            adv.push(if r % 2 == 0 { 1.0 } else { -0.5 });
        }
        (prompts, completions, adv)
    }

    fn part(prompts: &[Vec<u32>], completions: &[Vec<u32>], adv: &[f32]) -> Part {
        let batch = Batch::new(prompts, completions).unwrap();
        Part {
            mask: batch.target_mask.clone(),
            batch,
            adv: adv.to_vec(),
        }
    }

    fn flat(grads: &[candle_core::Tensor]) -> Vec<f32> {
        grads
            .iter()
            .flat_map(|t| t.flatten_all().unwrap().to_vec1::<f32>().unwrap())
            .collect()
    }

    /// For every aggregation, two blocks' gradients, each normalised by the whole batch's
    /// totals, sum to the whole batch's gradient; with each block's own totals they do not.
    #[test]
    fn block_gradients_sum_to_the_whole_batchs() {
        for loss_type in [LossType::Grpo, LossType::Bnpo, LossType::DrGrpo, LossType::Dapo] {
            let config = GrpoConfig {
                loss_type,
                data_blocks: 2,
                ..GrpoConfig::default()
            };
            let g = Grpo::new(config, "SeqCopy-v0", &Kwargs::new(), 3).unwrap();
            let (p, c, adv) = rows(&g, 8);
            let (a, b) = (part(&p[..3], &c[..3], &adv[..3]), part(&p[3..], &c[3..], &adv[3..]));
            let whole = part(&p, &c, &adv);
            let totals = |parts: &[&Part]| BatchTotals {
                rows: parts.iter().map(|q| q.batch.rows).sum(),
                tokens: parts.iter().map(|q| valid_tokens(&q.mask)).sum(),
            };
            let grad = |q: &Part, t: BatchTotals| flat(&g.block_gradient(Some(q), t).unwrap().0);
            let w = grad(&whole, totals(&[&whole]));
            let split: Vec<f32> = grad(&a, totals(&[&a, &b]))
                .iter()
                .zip(grad(&b, totals(&[&a, &b])))
                .map(|(x, y)| x + y)
                .collect();
            let own: Vec<f32> = grad(&a, totals(&[&a]))
                .iter()
                .zip(grad(&b, totals(&[&b])))
                .map(|(x, y)| x + y)
                .collect();
            let gap = |v: &[f32]| {
                v.iter()
                    .zip(&w)
                    .map(|(x, y)| (x - y).abs() / (1e-3 + y.abs()))
                    .fold(0f32, f32::max)
            };
            assert!(w.iter().any(|&x| x.abs() > 1e-4), "{loss_type:?}: a zero gradient");
            assert!(gap(&split) < 1e-3, "{loss_type:?}: {}", gap(&split));
            assert!(gap(&own) > 0.1, "{loss_type:?}: {}", gap(&own));
        }
    }

    /// The largest logged `step_r` of ten metrics rows (one iteration each) on SeqCopy-v0 at
    /// a learning rate of 1e-3, after a short warm start.
    fn max_step_r(target: Option<f64>) -> f64 {
        let config = GrpoConfig {
            learning_rate: 1e-3,
            sft_steps: 100,
            sft_batch: 16,
            prompts_per_step: 4,
            num_generations: 8,
            eval_every: 1,
            eval_prompts: 16,
            step_radius_target: target,
            ..GrpoConfig::default()
        };
        let mut g = Grpo::new(config, "SeqCopy-v0", &Kwargs::new(), 1).unwrap();
        g.plan(10 * 32).unwrap();
        (0..10)
            .map(|_| g.step().unwrap().get("step_r").unwrap())
            .fold(0.0, f64::max)
    }

    /// At this learning rate some updates step past the safe radius (r > 1); with a target of
    /// 0.5 no applied step exceeds it.
    #[test]
    fn safe_step_controller_bounds_grpo_updates() {
        let free = max_step_r(None);
        assert!(free > 1.0, "{free}");
        let bounded = max_step_r(Some(0.5));
        assert!(bounded <= 0.5 + 1e-4 && bounded > 0.1, "{bounded}");
    }
}
