//! The recurrent actor-critic of IPPO and MAPPO ([`GruActorCritic`]): a softmax policy and a
//! value function, each a [`GruNet`] (dense + ReLU, GRU, dense + ReLU, output), the shape of
//! JaxMARL's recurrent MAPPO (`ActorRNN`, `CriticRNN`).
//!
//! - **Memory.** Each row (an agent of an env) carries the actor's and the critic's GRU memory
//!   from step to step and across rollouts ([`GruCarry`]); it restarts from zeros at the first
//!   step of each episode. The memory is part of the learner's saved state, so a resume is
//!   exact.
//! - **Update.** Minibatches are whole rows: the rows are shuffled and cut into
//!   `num_minibatches` groups, and each group's `T`-step sequences are re-run from the memory
//!   they started the rollout with, with the same restarts, and learned by backpropagation
//!   through time. The clipped surrogate, entropy bonus, clipped value loss, value
//!   normalisation, global gradient-norm clipping and Adam are the feed-forward update's.

use crate::error::{AlgoError, Result};
use crate::onpolicy::{
    categorical_terms, normalize_advantages, value_terms, PolicyScratch, PpoUpdate, UpdateStats, UpdateTally,
};
use crate::policy::sample_logits;
use crate::policy_model::OnPolicyModel;
use crate::ppo::PpoConfig;
use crate::rollout::RolloutBuffer;
use rand::Rng;
use rand_chacha::ChaCha8Rng;
use serde::{Deserialize, Serialize};
use std::ops::Range;
use taper_envs::Space;
use taper_tensor::device::Placement;
use taper_tensor::distributions::Categorical;
use taper_tensor::gru_net::{GruNet, GruNetCache};
use taper_tensor::normalize::ValueNorm;

/// A recurrent softmax policy and value function. See the module doc.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct GruActorCritic {
    /// Observation space.
    pub obs_space: Space,
    /// Action space (`Discrete`).
    pub act_space: Space,
    /// The policy network: logits.
    pub actor: GruNet,
    /// The value network.
    pub critic: GruNet,
}

/// The rows' memory: the actor's and the critic's GRU memory `[rows, H]`, and whether each
/// row's episode ended at the last step (its memory restarts at the next).
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
pub struct GruCarry {
    /// The actor's memory `[rows, H]`.
    pub actor: Vec<f32>,
    /// The critic's memory `[rows, H]`.
    pub critic: Vec<f32>,
    /// Episode ends at the last step `[rows]`.
    pub last_done: Vec<bool>,
}

/// Scratch space for acting with a [`GruActorCritic`].
#[derive(Debug, Default)]
pub struct GruActWorkspace {
    actor: GruNetCache,
    critic: GruNetCache,
    cat: Option<Categorical>,
}

impl GruActorCritic {
    /// JaxMARL's recurrent networks: the actor `obs → fc → GRU(hidden) → hidden → logits`
    /// (output gain 0.01) and the critic `critic_dim → critic_fc → GRU(critic_hidden) →
    /// critic_hidden → 1` (gain 1.0), from two seeded streams. Discrete actions only.
    #[allow(clippy::too_many_arguments)]
    pub fn new<R: Rng + ?Sized>(
        obs_space: &Space,
        act_space: &Space,
        (fc, hidden): (usize, usize),
        critic_dim: usize,
        (critic_fc, critic_hidden): (usize, usize),
        rng_actor: &mut R,
        rng_critic: &mut R,
    ) -> Result<Self> {
        let Space::Discrete { n } = act_space else {
            return Err(AlgoError::Unsupported {
                algo: "MAPPO/IPPO",
                what: "continuous actions with the GRU network".into(),
            });
        };
        let actor = GruNet::new(obs_space.encoded_dim(), fc, hidden, &[hidden], *n, 0.01, rng_actor)?;
        let critic = GruNet::new(
            critic_dim,
            critic_fc,
            critic_hidden,
            &[critic_hidden],
            1,
            1.0,
            rng_critic,
        )?;
        Ok(GruActorCritic {
            obs_space: obs_space.clone(),
            act_space: act_space.clone(),
            actor,
            critic,
        })
    }

    /// Samples (or takes the mode of) actions for `n` rows from their memory `h` (`[n, H]`,
    /// advanced in place), restarting the rows flagged in `resets`. Used by acting in the
    /// rollout and by evaluation.
    #[allow(clippy::too_many_arguments)]
    pub fn act_from<R: Rng + ?Sized>(
        &self,
        h: &mut [f32],
        resets: Option<&[bool]>,
        obs: &[f32],
        n: usize,
        rng: &mut R,
        deterministic: bool,
        ws: &mut GruActWorkspace,
        actions: &mut [f32],
        logp: &mut [f32],
    ) -> Result<()> {
        let k = self.actor.output_dim();
        let out = self.actor.forward_seq(obs, 1, n, h, resets, &mut ws.actor)?;
        let cat = ws.cat.get_or_insert_with(|| Categorical::new(k));
        sample_logits(cat, out, (n, k), rng, deterministic, actions, logp);
        h.copy_from_slice(ws.actor.final_hidden());
        Ok(())
    }

    fn value_step(
        &self,
        h: &[f32],
        resets: Option<&[bool]>,
        cin: &[f32],
        n: usize,
        ws: &mut GruActWorkspace,
        out: &mut [f32],
    ) -> Result<()> {
        let v = self.critic.forward_seq(cin, 1, n, h, resets, &mut ws.critic)?;
        out[..n].copy_from_slice(v);
        Ok(())
    }
}

impl OnPolicyModel for GruActorCritic {
    type Carry = GruCarry;
    type Workspace = GruActWorkspace;

    fn obs_space(&self) -> &Space {
        &self.obs_space
    }
    fn act_space(&self) -> &Space {
        &self.act_space
    }
    fn critic_dim(&self) -> usize {
        self.critic.input_dim()
    }
    fn num_params(&self) -> usize {
        self.actor.num_params() + self.critic.num_params()
    }
    fn measures_step_radius(&self) -> bool {
        false
    }
    fn new_carry(&self, rows: usize) -> GruCarry {
        GruCarry {
            actor: vec![0.0; rows * self.actor.hidden_dim()],
            critic: vec![0.0; rows * self.critic.hidden_dim()],
            last_done: vec![false; rows],
        }
    }
    fn carry_fits(&self, c: &GruCarry, rows: usize) -> bool {
        c.actor.len() == rows * self.actor.hidden_dim()
            && c.critic.len() == rows * self.critic.hidden_dim()
            && c.last_done.len() == rows
    }
    fn act(
        &self,
        carry: &mut GruCarry,
        obs: &[f32],
        n: usize,
        rng: &mut ChaCha8Rng,
        deterministic: bool,
        ws: &mut GruActWorkspace,
        actions: &mut [f32],
        logp: &mut [f32],
    ) -> Result<()> {
        let GruCarry { actor, last_done, .. } = carry;
        self.act_from(actor, Some(last_done), obs, n, rng, deterministic, ws, actions, logp)
    }
    fn values(
        &self,
        carry: &mut GruCarry,
        cin: &[f32],
        n: usize,
        ws: &mut GruActWorkspace,
        out: &mut [f32],
    ) -> Result<()> {
        self.value_step(&carry.critic, Some(&carry.last_done), cin, n, ws, out)?;
        carry.critic.copy_from_slice(ws.critic.final_hidden());
        Ok(())
    }
    fn final_values(
        &self,
        carry: &GruCarry,
        rows: Range<usize>,
        cin: &[f32],
        ws: &mut GruActWorkspace,
        out: &mut [f32],
    ) -> Result<()> {
        let h = self.critic.hidden_dim();
        let n = rows.len();
        self.value_step(&carry.critic[rows.start * h..rows.end * h], None, cin, n, ws, out)
    }
    fn bootstrap_values(
        &self,
        carry: &GruCarry,
        cin: &[f32],
        n: usize,
        ws: &mut GruActWorkspace,
        out: &mut [f32],
    ) -> Result<()> {
        self.value_step(&carry.critic, Some(&carry.last_done), cin, n, ws, out)
    }
    fn end_step(&self, carry: &mut GruCarry, terminated: &[bool], truncated: &[bool]) {
        for ((d, &te), &tr) in carry.last_done.iter_mut().zip(terminated).zip(truncated) {
            *d = te || tr;
        }
    }
    fn update(
        &mut self,
        stage: &mut PpoUpdate,
        config: &PpoConfig,
        value_norm: Option<&mut ValueNorm>,
        b: &RolloutBuffer,
        carry0: &GruCarry,
        update_no: u64,
    ) -> Result<UpdateStats> {
        sequence_update(self, stage, config, value_norm, b, carry0, update_no)
    }
    fn to_tensors(&self) -> Result<Vec<(String, candle_core::Tensor)>> {
        let mut v = self.actor.to_tensors("actor")?;
        v.extend(self.critic.to_tensors("critic")?);
        Ok(v)
    }
    fn load_tensors(&mut self, t: &std::collections::HashMap<String, candle_core::Tensor>) -> Result<()> {
        let mut next = self.clone();
        next.actor.load_tensors("actor", t)?;
        next.critic.load_tensors("critic", t)?;
        *self = next;
        Ok(())
    }
    fn check_same_shape(&self, other: &Self) -> Result<()> {
        if other.actor.sizes() != self.actor.sizes() || other.critic.sizes() != self.critic.sizes() {
            return Err(AlgoError::Checkpoint {
                path: "model".into(),
                reason: format!(
                    "the recurrent model's sizes {:?} do not match the config's {:?}",
                    other.actor.sizes(),
                    self.actor.sizes()
                ),
            });
        }
        Ok(())
    }
    fn set_placement(&mut self, placement: &Placement) -> Result<()> {
        if placement.is_candle() {
            return Err(AlgoError::Unsupported {
                algo: "MAPPO/IPPO",
                what: "the candle backend or a device with the GRU network (it runs on the fast path)".into(),
            });
        }
        Ok(())
    }
    fn placement(&self) -> Placement {
        Placement::Fast
    }
}

/// The recurrent update's scratch space, kept in the [`PpoUpdate`] stage.
#[derive(Debug, Default)]
pub(crate) struct SeqWorkspace {
    rows: Vec<usize>,
    resets_all: Vec<bool>,
    obs: Vec<f32>,
    cin: Vec<f32>,
    act: Vec<f32>,
    adv: Vec<f32>,
    old_logp: Vec<f32>,
    old_v: Vec<f32>,
    ret: Vec<f32>,
    resets: Vec<bool>,
    h_actor: Vec<f32>,
    h_critic: Vec<f32>,
    ps: PolicyScratch,
    dout: Vec<f32>,
    dv: Vec<f32>,
    g_actor: Vec<f32>,
    g_critic: Vec<f32>,
    actor: GruNetCache,
    critic: GruNetCache,
}

/// Copies row `r`'s `w` values of step `t` from a time-major `[T, N, w]` buffer.
fn gather<T: Copy>(src: &[T], dst: &mut [T], t: usize, n: usize, rows: &[usize], w: usize) {
    let b = rows.len();
    for (j, &r) in rows.iter().enumerate() {
        let s = (t * n + r) * w;
        dst[(t * b + j) * w..(t * b + j + 1) * w].copy_from_slice(&src[s..s + w]);
    }
}

/// One PPO update of a recurrent model on a filled rollout; see the module doc.
fn sequence_update(
    model: &mut GruActorCritic,
    stage: &mut PpoUpdate,
    c: &PpoConfig,
    mut value_norm: Option<&mut ValueNorm>,
    bf: &RolloutBuffer,
    carry0: &GruCarry,
    update_no: u64,
) -> Result<UpdateStats> {
    let (n, total) = (bf.rows, bf.len());
    let steps = total / n.max(1);
    if bf.selected.len() != total {
        return Err(AlgoError::Config {
            field: "advantage",
            reason: "the recurrent update learns from whole sequences: every sample must be selected".into(),
        });
    }
    if !model.carry_fits(carry0, n) {
        return Err(AlgoError::Config {
            field: "rollout",
            reason: "the rollout's starting memory does not fit its rows".into(),
        });
    }
    let (od, cd) = (model.obs_dim(), model.critic_dim());
    let central = !bf.critic_obs.is_empty();
    let (ha, hc) = (model.actor.hidden_dim(), model.critic.hidden_dim());
    let k = model.actor.output_dim();
    let (clip, ent_coef) = (c.clip_coef as f32, c.ent_coef as f32);
    let w = &mut stage.seq;
    // Where each row's memory restarts: its last step's end, then the rollout's episode ends.
    w.resets_all.clear();
    w.resets_all.extend_from_slice(&carry0.last_done);
    for t in 1..steps {
        for r in 0..n {
            let i = (t - 1) * n + r;
            w.resets_all.push(bf.terminated[i] || bf.truncated[i]);
        }
    }
    w.rows.clear();
    w.rows.extend(0..n);
    w.g_actor.resize(model.actor.num_params(), 0.0);
    w.g_critic.resize(model.critic.num_params(), 0.0);
    let per = (n / c.num_minibatches.max(1)).max(1);
    let mut tally = UpdateTally::new(update_no);
    'epochs: for _ in 0..c.update_epochs {
        for i in (1..n).rev() {
            let j = stage.shuffle_rng.random_range(0..=i);
            w.rows.swap(i, j);
        }
        for start in (0..n).step_by(per) {
            let rows = &w.rows[start..(start + per).min(n)];
            let bsz = rows.len();
            let m = steps * bsz;
            w.obs.resize(m * od, 0.0);
            w.act.resize(m, 0.0);
            for v in [&mut w.adv, &mut w.old_logp, &mut w.old_v, &mut w.ret] {
                v.resize(m, 0.0);
            }
            w.resets.resize(m, false);
            if central {
                w.cin.resize(m * cd, 0.0);
            }
            for t in 0..steps {
                gather(&bf.obs, &mut w.obs, t, n, rows, od);
                gather(&bf.actions, &mut w.act, t, n, rows, 1);
                gather(&bf.adv, &mut w.adv, t, n, rows, 1);
                gather(&bf.logp, &mut w.old_logp, t, n, rows, 1);
                gather(&bf.values, &mut w.old_v, t, n, rows, 1);
                gather(&bf.ret, &mut w.ret, t, n, rows, 1);
                gather(&w.resets_all, &mut w.resets, t, n, rows, 1);
                if central {
                    gather(&bf.critic_obs, &mut w.cin, t, n, rows, cd);
                }
            }
            w.h_actor.resize(bsz * ha, 0.0);
            w.h_critic.resize(bsz * hc, 0.0);
            for (j, &r) in rows.iter().enumerate() {
                w.h_actor[j * ha..(j + 1) * ha].copy_from_slice(&carry0.actor[r * ha..(r + 1) * ha]);
                w.h_critic[j * hc..(j + 1) * hc].copy_from_slice(&carry0.critic[r * hc..(r + 1) * hc]);
            }
            if c.norm_adv {
                normalize_advantages(&mut w.adv);
            }
            // The policy's and the value's passes are independent: they run side by side on
            // rayon's pool, each exactly as alone (the bits do not depend on the thread count).
            let SeqWorkspace {
                obs,
                cin,
                act,
                adv,
                old_logp,
                old_v,
                ret,
                resets,
                h_actor,
                h_critic,
                ps,
                dout,
                dv,
                g_actor,
                g_critic,
                actor,
                critic,
                ..
            } = &mut *w;
            let (obs, resets) = (&obs[..], Some(&resets[..]));
            let (actor_net, critic_net) = (&model.actor, &model.critic);
            let vn = value_norm.as_deref_mut();
            let (policy, value) = rayon::join(
                || -> Result<(crate::loss::ClipStats, f32)> {
                    let out = actor_net.forward_seq(obs, steps, bsz, h_actor, resets, actor)?;
                    let (cs, entropy) = categorical_terms(ps, out, k, m, act, adv, old_logp, clip, ent_coef, dout)?;
                    g_actor.fill(0.0);
                    actor_net.backward_seq(obs, resets, actor, dout, g_actor)?;
                    Ok((cs, entropy))
                },
                || -> Result<f32> {
                    let cin: &[f32] = if central { cin } else { obs };
                    let v = critic_net.forward_seq(cin, steps, bsz, h_critic, resets, critic)?;
                    let v_loss = value_terms(vn, None, v, old_v, ret, c, dv)?;
                    g_critic.fill(0.0);
                    critic_net.backward_seq(cin, resets, critic, dv, g_critic)?;
                    Ok(v_loss)
                },
            );
            let ((cs, entropy), v_loss) = (policy?, value?);
            tally.check_and_clip(
                &cs,
                v_loss,
                entropy,
                &mut [&mut w.g_actor[..], &mut w.g_critic[..]],
                c.max_grad_norm as f32,
            )?;
            let [ga0, ga1, ga2] = model.actor.grad_parts(&w.g_actor);
            let [gc0, gc1, gc2] = model.critic.grad_parts(&w.g_critic);
            let [pa0, pa1, pa2] = model.actor.params_mut();
            let [pc0, pc1, pc2] = model.critic.params_mut();
            stage
                .opt
                .step(&mut [(pa0, ga0), (pa1, ga1), (pa2, ga2), (pc0, gc0), (pc1, gc1), (pc2, gc2)])?;
            tally.record(&cs, m, v_loss, entropy);
        }
        if tally.kl_exceeded(c.target_kl) {
            break 'epochs;
        }
    }
    Ok(tally.finish())
}
