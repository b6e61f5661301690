//! GRPO and its variants on the sequence tasks (`taper_envs::seq`), with a small
//! transformer policy on any candle device ([`taper_tensor::transformer`]).
//!
//! One iteration: sample `prompts_per_step` train prompts, G completions each (one batch, KV
//! cache); score them with the task's verifier; then the advantage pipeline, as stages:
//! **estimate** (group advantages, `scale_rewards`), **filter** (DAPO's dynamic sampling:
//! uniform groups are dropped and replaced), **weight** (ADORA), **select** (D³S: samples, then
//! tokens); then one gradient step on the per-token clipped loss with the chosen aggregation,
//! Adam on the device. Variants are switches of one config:
//!
//! | variant | settings |
//! |---|---|
//! | GRPO | `loss_type = "grpo"`, `scale_rewards = "group"` |
//! | Dr. GRPO | `loss_type = "dr_grpo"`, `scale_rewards = "none"` |
//! | DAPO | `dapo = true`: ε_high 0.28, dynamic sampling, `loss_type = "dapo"`, overlong shaping |
//! | + D³S | `d3s = true` (cross-group by default; `[grpo.d3s_schedule]`) |
//! | + ADORA | `adora = true` (`[grpo.adora_settings]`) |
//!
//! Before reinforcement learning the policy is warm-started by supervised learning on
//! generated prompt–answer pairs until its greedy accuracy on train prompts reaches
//! `sft_target_accuracy` (at most `sft_steps` steps), so that rewards start neither at 0 nor
//! at 1;
//! a frozen copy of the warm-started policy is the reference of the KL term (β > 0).
//!
//! With `data_blocks = B > 1` each iteration's prompts are split into B data blocks, each
//! sampled from its own streams and run through the advantage stages on its own, and the
//! blocks' gradients of the whole batch's loss are summed in block order: the run that
//! `taper train --data-parallel` over B processes reproduces bit for bit. Each block answers
//! its share of a metrics row's test prompts; the warm start, the same on every process, runs
//! whole on each.

mod blocks;
mod learner;
pub mod sampler;

pub use learner::Grpo;

use crate::checks::{bad, positive};
use crate::error::Result;
use crate::group::adora::Adora;
use crate::group::advantage::ScaleRewards;
use crate::group::d3s::Schedule;
use crate::group::token_loss::LossType;
use serde::{Deserialize, Serialize};

/// GRPO's settings. The defaults are the project's, for the small tasks (TRL's LLM defaults
/// are noted per field): on 2-digit addition, 2000 iterations of 8 prompts × 16 at learning
/// rate 1e-4 take greedy test accuracy from a warm start of 0.45 to 0.66 (3 seeds), where
/// 3e-4 falls first and 1e-3 collapses (`docs/grpo.md`).
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct GrpoConfig {
    /// Prompts per iteration.
    pub prompts_per_step: usize,
    /// G, completions per prompt (TRL: `num_generations` 8).
    pub num_generations: usize,
    /// Sampling temperature (TRL: 1.0).
    pub temperature: f32,
    /// Adam's learning rate for reinforcement learning (TRL: 1e-6, for LLMs).
    pub learning_rate: f64,
    /// Global gradient-norm clip (TRL: 1.0).
    pub max_grad_norm: f64,
    /// ε_low of the clip (TRL: `epsilon` 0.2).
    pub epsilon: f64,
    /// ε_high of the clip; `None`: ε_low (TRL); DAPO: 0.28.
    pub epsilon_high: Option<f64>,
    /// β, the weight of the k3 KL to the warm-started reference (TRL: 0.0).
    pub beta: f64,
    /// How per-token losses are aggregated (TRL: `dapo`).
    pub loss_type: LossType,
    /// How advantages are scaled (TRL: `group`; Dr. GRPO: `none`).
    pub scale_rewards: ScaleRewards,
    /// DAPO: clip-higher (ε_high 0.28 unless set), dynamic sampling, token-level loss,
    /// overlong shaping.
    pub dapo: bool,
    /// Dynamic sampling: at most this many extra sampling rounds to refill dropped groups.
    pub dynamic_sampling_rounds: usize,
    /// D³S sample- and token-level selection.
    pub d3s: bool,
    /// D³S across the batch (true, the paper's default) or within each group.
    pub d3s_cross_group: bool,
    /// D³S's schedule.
    pub d3s_schedule: Schedule,
    /// ADORA's group weights.
    pub adora: bool,
    /// ADORA's settings.
    pub adora_settings: Adora,
    /// Model: residual width.
    pub d_model: usize,
    /// Model: attention heads.
    pub n_heads: usize,
    /// Model: blocks.
    pub n_layers: usize,
    /// Model: MLP width.
    pub d_ff: usize,
    /// The most supervised warm-start steps on generated prompt–answer pairs.
    pub sft_steps: usize,
    /// The warm start stops once the greedy accuracy on `eval_prompts` fixed train prompts
    /// reaches this, so that rewards start neither at 0 nor at 1 whatever the task's
    /// difficulty (1.0: run all `sft_steps` unless the policy is already perfect).
    pub sft_target_accuracy: f64,
    /// Check that accuracy every this many warm-start steps.
    pub sft_check_every: usize,
    /// Pairs per warm-start step.
    pub sft_batch: usize,
    /// The warm start's learning rate.
    pub sft_learning_rate: f64,
    /// Evaluate greedy accuracy on held-apart test prompts every this many iterations (0: at
    /// the end only).
    pub eval_every: usize,
    /// Test prompts per evaluation.
    pub eval_prompts: usize,
    /// The safe-step controller ("Ghosts of Softmax"): scale each update so that its
    /// normalised step `r = ‖p‖/ρ_a` over the probed rows' scored tokens is at most this (0.5
    /// is the paper's recommended start). Off by default; `step_r` is logged either way.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub step_radius_target: Option<f64>,
    /// Split each iteration's `prompts_per_step` prompts into this many data blocks, each
    /// sampling its share from its own prompt and sampling streams, with its own dynamic
    /// sampling refills, D³S selection and (`scale_rewards = "batch"`) reward scale, whose
    /// gradients of the whole batch's loss are
    /// summed in block order (see [`crate::blocks`]): the run that a data-parallel launch over
    /// as many processes reproduces bit for bit. 1 (the default) is the ordinary run.
    #[serde(skip_serializing_if = "crate::blocks::is_one")]
    pub data_blocks: usize,
}

impl Default for GrpoConfig {
    fn default() -> Self {
        GrpoConfig {
            prompts_per_step: 8,
            num_generations: 16,
            temperature: 1.0,
            learning_rate: 1e-4,
            max_grad_norm: 1.0,
            epsilon: 0.2,
            epsilon_high: None,
            beta: 0.0,
            loss_type: LossType::Grpo,
            scale_rewards: ScaleRewards::Group,
            dapo: false,
            dynamic_sampling_rounds: 3,
            d3s: false,
            d3s_cross_group: true,
            d3s_schedule: Schedule::default(),
            adora: false,
            adora_settings: Adora::default(),
            d_model: 64,
            n_heads: 4,
            n_layers: 2,
            d_ff: 256,
            sft_steps: 3000,
            sft_target_accuracy: 0.3,
            sft_check_every: 50,
            sft_batch: 64,
            sft_learning_rate: 1e-3,
            eval_every: 10,
            eval_prompts: 256,
            step_radius_target: None,
            data_blocks: 1,
        }
    }
}

impl GrpoConfig {
    /// The config with DAPO's switches applied (ε_high 0.28 where unset, the `dapo` loss).
    pub fn resolved(&self) -> GrpoConfig {
        let mut c = self.clone();
        if c.dapo {
            c.epsilon_high = Some(c.epsilon_high.unwrap_or(0.28));
            c.loss_type = LossType::Dapo;
        }
        c
    }

    /// Checks the ranges; an error naming the field.
    pub fn validate(&self) -> Result<()> {
        if self.num_generations < 2 {
            return bad(
                "num_generations",
                format!(
                    "a group needs at least 2 completions to compare, got {}",
                    self.num_generations
                ),
            );
        }
        if self.prompts_per_step == 0 || self.eval_prompts == 0 || self.sft_batch == 0 {
            return bad(
                "prompts_per_step",
                "prompts per step, eval_prompts and sft_batch must be at least 1".into(),
            );
        }
        crate::checks::at_most(
            "prompts_per_step",
            "prompts_per_step x num_generations",
            self.prompts_per_step.saturating_mul(self.num_generations),
            1 << 16,
        )?;
        if !(self.sft_target_accuracy > 0.0 && self.sft_target_accuracy <= 1.0) {
            return bad(
                "sft_target_accuracy",
                format!("must be in (0, 1], got {}", self.sft_target_accuracy),
            );
        }
        if self.sft_check_every == 0 {
            return bad("sft_check_every", "must be at least 1".into());
        }
        positive("learning_rate", self.learning_rate)?;
        positive("sft_learning_rate", self.sft_learning_rate)?;
        positive("max_grad_norm", self.max_grad_norm)?;
        if let Some(t) = self.step_radius_target {
            positive("step_radius_target", t)?;
        }
        positive("epsilon", self.epsilon)?;
        if let Some(h) = self.epsilon_high {
            positive("epsilon_high", h)?;
        }
        if !(self.temperature > 0.0) {
            return bad("temperature", format!("must be > 0, got {}", self.temperature));
        }
        if !(self.beta >= 0.0) {
            return bad("beta", format!("must be >= 0, got {}", self.beta));
        }
        self.d3s_schedule.validate()?;
        let b = self.data_blocks;
        if b == 0 || !self.prompts_per_step.is_multiple_of(b) {
            return bad(
                "data_blocks",
                format!("must divide prompts_per_step = {} (got {b})", self.prompts_per_step),
            );
        }
        if b > 1 && self.step_radius_target.is_some() {
            return bad(
                "data_blocks",
                "more than one block cannot be combined with step_radius_target (it scales the step from one block's rows)".into(),
            );
        }
        taper_tensor::transformer::TransformerConfig {
            vocab: taper_envs::seq::vocab::SIZE,
            context: 1,
            d_model: self.d_model,
            n_heads: self.n_heads,
            n_layers: self.n_layers,
            d_ff: self.d_ff,
        }
        .validate()?;
        Ok(())
    }
}
