//! The [`Learner`] trait: what every algorithm (and a user's own) gives the
//! [`crate::Trainer`], which does the rest (run folder, logs, checkpoints, resume, evaluation).
//!
//! A learner owns its envs and its plan. [`Learner::plan`] validates a budget before anything
//! is written; [`Learner::step`] does one step of learning up to the next metrics row;
//! [`Learner::export`] and [`Learner::import`] carry its whole state through a checkpoint, so a
//! run resumed from one continues exactly.

use crate::checkpoint::{Checkpoint, ModelShape, NamedTensors};
use crate::error::Result;
use crate::eval::{EnvView, EvalOptions, Evaluation};
use crate::metrics::Metrics;
use serde::{Deserialize, Serialize};
use taper_envs::{Kwargs, NormalizerState};

/// The counters every learner keeps.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct Progress {
    /// Env steps taken (one step of one env, all agents acting; HDPO: gradient steps).
    pub global_step: u64,
    /// Updates done.
    pub updates: u64,
    /// Episodes finished.
    pub episodes: u64,
}

/// Where a run comes from: the algorithm, the env and its keyword arguments, the seed.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct RunInfo {
    /// The algorithm's name as run folders record it (`ppo`, `mappo`, ...).
    pub algo: String,
    /// The env id (a registered id, or a name for an env built by hand).
    pub env_id: String,
    /// The env's keyword arguments.
    pub env_kwargs: Kwargs,
    /// The seed every random stream derives from.
    pub seed: u64,
}

/// A learner's whole state besides its config, as [`Learner::export`] gives it to a checkpoint.
#[derive(Debug, Clone)]
pub struct LearnerState {
    /// Everything small: optimizer moments, random streams, counters, episode windows (JSON).
    pub algo_state: serde_json::Value,
    /// The training envs' state, where the envs can save it (JSON).
    pub env_state: Option<serde_json::Value>,
    /// The model's shape, where the algorithm records one.
    pub model_shape: Option<ModelShape>,
    /// Frozen observation statistics that evaluation must apply.
    pub normalizer: Option<NormalizerState>,
    /// The weights evaluation needs (`model.safetensors`).
    pub tensors: NamedTensors,
    /// Further tensor files read only to resume (`replay.safetensors`).
    pub files: Vec<(String, NamedTensors)>,
}

impl LearnerState {
    /// A state of weights and JSON only.
    pub fn new(algo_state: serde_json::Value, tensors: NamedTensors) -> Self {
        LearnerState {
            algo_state,
            env_state: None,
            model_shape: None,
            normalizer: None,
            tensors,
            files: Vec::new(),
        }
    }
}

/// What every learner gives the trainer. See the module doc.
pub trait Learner {
    /// The algorithm, the env and the seed.
    fn info(&self) -> RunInfo;
    /// The resolved config as JSON (recorded in checkpoints).
    fn config_json(&self) -> serde_json::Value;
    /// The counters.
    fn progress(&self) -> Progress;
    /// Sets the plan: training ends at `total_steps` in all, counting what is done already.
    /// Checks it before anything is written (a plan already reached is an error naming the
    /// step), starts the envs if they have not started, and returns the step the plan really
    /// ends at (PPO: whole rollouts).
    fn plan(&mut self, total_steps: u64) -> Result<u64>;
    /// One step of learning, up to the next metrics row, which it returns (PPO: a rollout and
    /// its update; MADDPG: the env steps up to its next row; HDPO: the gradient steps up to
    /// its next development evaluation). The row holds at least `global_step`.
    fn step(&mut self) -> Result<Metrics>;
    /// Whether the plan is done.
    fn is_done(&self) -> bool;
    /// Called once when the plan is done, before the final checkpoint (HDPO evaluates its best
    /// policy on its test paths here).
    fn finish(&mut self) -> Result<()> {
        Ok(())
    }
    /// The whole state, for a checkpoint.
    fn export(&self) -> Result<LearnerState>;
    /// Loads a checkpoint written by [`Learner::export`] of a learner with the same config:
    /// the weights (and what evaluation needs) always, and with `resume` everything else, so
    /// that training continues exactly.
    fn import(&mut self, checkpoint: &Checkpoint, resume: bool) -> Result<()>;
    /// Runs the current policy on fresh envs of the run's kind. `on_step` sees the env after
    /// each reset and step.
    fn evaluate(&self, opts: &EvalOptions, on_step: &mut dyn FnMut(usize, EnvView<'_>)) -> Result<Evaluation>;
    /// The action(s) for one observation (multi-agent: all agents' observations, one action
    /// per agent), as a flat vector: a discrete action as its index.
    fn predict(&mut self, obs: &[f32], deterministic: bool) -> Result<Vec<f32>>;
    /// Clears the memory a recurrent policy carries from one [`Learner::predict`] call to the
    /// next; call it before each new episode. Feed-forward policies have none: the default
    /// does nothing.
    fn reset_memory(&mut self) {}
    /// Sets where the learner's networks compute (`--device`, `--backend`). The default
    /// accepts the fast path only: a learner with a candle path overrides it.
    fn set_placement(&mut self, placement: &taper_tensor::device::Placement) -> Result<()> {
        if placement.is_candle() {
            return Err(crate::TrainError::learner(format!(
                "this learner computes on the CPU fast path only, not on {}",
                placement.label()
            )));
        }
        Ok(())
    }
    /// Columns that must be finite in every metrics row: the trainer stops the run, naming the
    /// column, when one is NaN or infinite (a diverged loss).
    fn guarded_columns(&self) -> &'static [&'static str] {
        &["loss", "policy_loss", "value_loss", "grad_norm"]
    }
    /// The columns of a metrics row the progress display shows.
    fn headline(&self) -> &'static [&'static str] {
        &["recent_return"]
    }
    /// What `global_step` counts, for messages.
    fn step_unit(&self) -> &'static str {
        "env steps"
    }
    /// One line on the run so far, printed when a session ends.
    fn summary(&self) -> String {
        let p = self.progress();
        format!(
            "{} steps, {} updates, {} episodes",
            p.global_step, p.updates, p.episodes
        )
    }
}
