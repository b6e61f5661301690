//! [`OnPolicyModel`], what the on-policy core ([`crate::onpolicy::OnPolicy`]) and the rollout
//! ([`crate::rollout::collect`]) need of a model: acting and valuing rows step by step while
//! carrying any per-row memory, one PPO update on a filled rollout, and its tensors.
//!
//! Two models implement it: the feed-forward [`ActorCritic`] (no memory) and the recurrent
//! [`crate::recurrent::GruActorCritic`] (a GRU's memory per row, restarted at episode ends).

use crate::error::{AlgoError, Result};
use crate::onpolicy::{PpoUpdate, UpdateStats};
use crate::policy::{ActWorkspace, ActorCritic};
use crate::ppo::PpoConfig;
use crate::rollout::RolloutBuffer;
use rand_chacha::ChaCha8Rng;
use serde::de::DeserializeOwned;
use serde::Serialize;
use std::ops::Range;
use taper_envs::Space;
use taper_tensor::device::Placement;
use taper_tensor::normalize::ValueNorm;

/// A model the on-policy core trains. See the module doc.
pub trait OnPolicyModel: Clone + std::fmt::Debug + Sync {
    /// The memory carried per row from step to step (and across rollouts), saved with the
    /// learner's state for an exact resume; `()` for a feed-forward model.
    type Carry: Clone + std::fmt::Debug + Default + PartialEq + Serialize + DeserializeOwned + Send;
    /// Scratch space for acting, reused between steps.
    type Workspace: Default + std::fmt::Debug + Send;

    /// The observation space.
    fn obs_space(&self) -> &Space;
    /// The action space.
    fn act_space(&self) -> &Space;
    /// Width of an encoded observation.
    fn obs_dim(&self) -> usize {
        self.obs_space().encoded_dim()
    }
    /// Width of one action as stored (1 for discrete).
    fn action_dim(&self) -> usize {
        self.act_space().flat_dim()
    }
    /// Whether actions are discrete.
    fn is_discrete(&self) -> bool {
        matches!(self.act_space(), Space::Discrete { .. })
    }
    /// Width of the critic's input.
    fn critic_dim(&self) -> usize;
    /// Parameters the optimiser updates.
    fn num_params(&self) -> usize;
    /// Whether updates report the safe-step radius `step_r` (softmax policies whose step the
    /// stage can measure).
    fn measures_step_radius(&self) -> bool;

    /// The memory of `rows` rows before their first step.
    fn new_carry(&self, rows: usize) -> Self::Carry;
    /// Whether `carry` is a memory of `rows` rows of this model.
    fn carry_fits(&self, carry: &Self::Carry, rows: usize) -> bool;
    /// Samples (or, with `deterministic`, takes the mode of) actions for `n` rows' encoded
    /// observations, advancing their memory; writes actions `[n, action_dim]` and their
    /// log-probabilities `[n]`.
    #[allow(clippy::too_many_arguments)]
    fn act(
        &self,
        carry: &mut Self::Carry,
        obs: &[f32],
        n: usize,
        rng: &mut ChaCha8Rng,
        deterministic: bool,
        ws: &mut Self::Workspace,
        actions: &mut [f32],
        logp: &mut [f32],
    ) -> Result<()>;
    /// `V` of `n` rows' critic inputs at this step, advancing the critic's memory.
    fn values(
        &self,
        carry: &mut Self::Carry,
        cin: &[f32],
        n: usize,
        ws: &mut Self::Workspace,
        out: &mut [f32],
    ) -> Result<()>;
    /// One rollout step: [`OnPolicyModel::act`] (sampling, not deterministic) on `obs`, then
    /// [`OnPolicyModel::values`] on `cin`. A model whose two passes share nothing may run them
    /// side by side, with the same results.
    #[allow(clippy::too_many_arguments)]
    fn act_and_values(
        &self,
        carry: &mut Self::Carry,
        obs: &[f32],
        cin: &[f32],
        n: usize,
        rng: &mut ChaCha8Rng,
        ws: &mut Self::Workspace,
        actions: &mut [f32],
        logp: &mut [f32],
        values: &mut [f32],
    ) -> Result<()> {
        self.act(carry, obs, n, rng, false, ws, actions, logp)?;
        self.values(carry, cin, n, ws, values)
    }
    /// `V` of the final inputs of rows `rows` whose episode just ended by truncation: the
    /// step after the current one, from the critic's memory now, which stays unchanged.
    fn final_values(
        &self,
        carry: &Self::Carry,
        rows: Range<usize>,
        cin: &[f32],
        ws: &mut Self::Workspace,
        out: &mut [f32],
    ) -> Result<()>;
    /// `V` of all `n` rows' next inputs after a rollout's last step, to bootstrap from; the
    /// memory stays unchanged.
    fn bootstrap_values(
        &self,
        carry: &Self::Carry,
        cin: &[f32],
        n: usize,
        ws: &mut Self::Workspace,
        out: &mut [f32],
    ) -> Result<()>;
    /// Notes which rows' episodes ended in the step just taken (their memory restarts).
    fn end_step(&self, carry: &mut Self::Carry, terminated: &[bool], truncated: &[bool]);

    /// One PPO update on a filled rollout that started from the memory `carry0`.
    fn update(
        &mut self,
        stage: &mut PpoUpdate,
        config: &PpoConfig,
        value_norm: Option<&mut ValueNorm>,
        b: &RolloutBuffer,
        carry0: &Self::Carry,
        update_no: u64,
    ) -> Result<UpdateStats>;

    /// One update over data blocks (see [`PpoUpdate::update_blocks`]). A model whose update
    /// cannot be split by rows refuses more than one block.
    fn update_blocks(
        &mut self,
        _stage: &mut PpoUpdate,
        _config: &PpoConfig,
        _value_norm: Option<&mut ValueNorm>,
        _bufs: &[&RolloutBuffer],
        _blocks: &crate::blocks::Blocks,
        _update_no: u64,
    ) -> Result<UpdateStats> {
        Err(AlgoError::Unsupported {
            algo: "PPO",
            what: "data blocks with this network (its update runs over whole sequences)".into(),
        })
    }

    /// The model's tensors, named for a checkpoint.
    fn to_tensors(&self) -> Result<Vec<(String, candle_core::Tensor)>>;
    /// Loads [`OnPolicyModel::to_tensors`], checking every shape.
    fn load_tensors(&mut self, t: &std::collections::HashMap<String, candle_core::Tensor>) -> Result<()>;
    /// An error unless `other` has this model's shapes.
    fn check_same_shape(&self, other: &Self) -> Result<()>;
    /// Sets where the networks compute.
    fn set_placement(&mut self, placement: &Placement) -> Result<()>;
    /// Where the networks compute.
    fn placement(&self) -> Placement;
}

impl OnPolicyModel for ActorCritic {
    type Carry = ();
    type Workspace = ActWorkspace;

    fn obs_space(&self) -> &Space {
        &self.obs_space
    }
    fn act_space(&self) -> &Space {
        &self.act_space
    }
    fn critic_dim(&self) -> usize {
        self.critic.net.input_dim()
    }
    fn num_params(&self) -> usize {
        self.actor.num_params() + self.log_std.len() + self.critic.net.num_params()
    }
    fn measures_step_radius(&self) -> bool {
        ActorCritic::is_discrete(self)
    }
    fn new_carry(&self, _rows: usize) {}
    fn carry_fits(&self, _carry: &(), _rows: usize) -> bool {
        true
    }
    fn act(
        &self,
        _carry: &mut (),
        obs: &[f32],
        n: usize,
        rng: &mut ChaCha8Rng,
        deterministic: bool,
        ws: &mut ActWorkspace,
        actions: &mut [f32],
        logp: &mut [f32],
    ) -> Result<()> {
        ActorCritic::act(self, obs, n, rng, deterministic, ws, actions, logp)
    }
    fn values(&self, _carry: &mut (), cin: &[f32], n: usize, ws: &mut ActWorkspace, out: &mut [f32]) -> Result<()> {
        self.critic_values(cin, n, ws, out)
    }
    fn act_and_values(
        &self,
        _carry: &mut (),
        obs: &[f32],
        cin: &[f32],
        n: usize,
        rng: &mut ChaCha8Rng,
        ws: &mut ActWorkspace,
        actions: &mut [f32],
        logp: &mut [f32],
        values: &mut [f32],
    ) -> Result<()> {
        ActorCritic::act_and_values(self, obs, cin, n, rng, ws, actions, logp, values)
    }
    fn final_values(
        &self,
        _carry: &(),
        rows: Range<usize>,
        cin: &[f32],
        ws: &mut ActWorkspace,
        out: &mut [f32],
    ) -> Result<()> {
        self.critic_values(cin, rows.len(), ws, out)
    }
    fn bootstrap_values(
        &self,
        _carry: &(),
        cin: &[f32],
        n: usize,
        ws: &mut ActWorkspace,
        out: &mut [f32],
    ) -> Result<()> {
        self.critic_values(cin, n, ws, out)
    }
    fn end_step(&self, _carry: &mut (), _terminated: &[bool], _truncated: &[bool]) {}
    fn update(
        &mut self,
        stage: &mut PpoUpdate,
        config: &PpoConfig,
        value_norm: Option<&mut ValueNorm>,
        b: &RolloutBuffer,
        _carry0: &(),
        update_no: u64,
    ) -> Result<UpdateStats> {
        stage.update(config, self, value_norm, b, update_no)
    }
    fn update_blocks(
        &mut self,
        stage: &mut PpoUpdate,
        config: &PpoConfig,
        value_norm: Option<&mut ValueNorm>,
        bufs: &[&RolloutBuffer],
        blocks: &crate::blocks::Blocks,
        update_no: u64,
    ) -> Result<UpdateStats> {
        stage.update_blocks(config, self, value_norm, bufs, blocks, update_no)
    }
    fn to_tensors(&self) -> Result<Vec<(String, candle_core::Tensor)>> {
        ActorCritic::to_tensors(self)
    }
    fn load_tensors(&mut self, t: &std::collections::HashMap<String, candle_core::Tensor>) -> Result<()> {
        ActorCritic::load_tensors(self, t)
    }
    fn check_same_shape(&self, other: &Self) -> Result<()> {
        if other.actor.sizes() != self.actor.sizes()
            || other.critic.net.sizes() != self.critic.net.sizes()
            || other.log_std.len() != self.log_std.len()
        {
            return Err(AlgoError::Checkpoint {
                path: "model".into(),
                reason: format!(
                    "the model's layer sizes {:?} do not match the config's {:?}",
                    other.actor.sizes(),
                    self.actor.sizes()
                ),
            });
        }
        Ok(())
    }
    fn set_placement(&mut self, placement: &Placement) -> Result<()> {
        ActorCritic::set_placement(self, placement);
        Ok(())
    }
    fn placement(&self) -> Placement {
        ActorCritic::placement(self).clone()
    }
}
