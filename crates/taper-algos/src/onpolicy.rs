//! The on-policy stages shared by PPO, IPPO and MAPPO: [`PpoUpdate`] (epochs of shuffled
//! minibatches with the clipped surrogate, the value loss, the entropy bonus, global
//! gradient-norm clipping and Adam) and [`OnPolicy`], the learner core that chains the
//! rollout, the advantage pipeline and the update, and keeps the counters, the random streams
//! and the recent episodes. [`crate::ppo::Ppo`] and [`crate::mappo::MaPpo`] are this core on
//! different envs.

use crate::advantage::{AdvantageInput, Pipeline};
use crate::blocks::{BlockState, Blocks};
use crate::error::{AlgoError, Result};
use crate::loss::ppo_clip_loss;
use crate::policy::ActorCritic;
use crate::policy_model::OnPolicyModel;
use crate::ppo::PpoConfig;
use crate::recent::{LoggedEpisode, RecentEpisodes};
use crate::rollout::{collect, CollectOptions, CollectWorkspace, RolloutBuffer, RolloutEnv};
use crate::safe_step::{limit_step, StepScratch};
use rand::Rng;
use rand_chacha::ChaCha8Rng;
use serde::de::DeserializeOwned;
use serde::{Deserialize, Serialize};
use std::time::Instant;
use taper_critics::value_loss;
use taper_tensor::distributions::{Categorical, DiagGaussian};
use taper_tensor::mlp::{Mlp, MlpCache};
use taper_tensor::normalize::{explained_variance, ValueNorm};
use taper_tensor::optim::{clip_grad_norm, linear_anneal, Adam, AdamConfig, AdamState};
use taper_tensor::rng::{stream, Purpose};
use taper_train::checkpoint::Checkpoint;
use taper_train::metrics::Metrics;
use taper_train::{LearnerState, Progress};

/// What one update reports.
#[derive(Default, Debug, Clone, Copy, PartialEq)]
pub struct UpdateStats {
    /// Clipped surrogate loss (last minibatch, as CleanRL logs).
    pub policy_loss: f32,
    /// Value loss (last minibatch).
    pub value_loss: f32,
    /// Mean entropy (last minibatch).
    pub entropy: f32,
    /// k3 estimate of KL (last minibatch).
    pub approx_kl: f32,
    /// `mean(−log ratio)` (last minibatch).
    pub old_approx_kl: f32,
    /// Fraction of clipped ratios, over all minibatches.
    pub clipfrac: f32,
    /// Gradient norm before clipping, averaged over minibatches.
    pub grad_norm: f32,
    /// The softmax policy's normalised step `r = ‖p‖/ρ_a` of the actor's update `p` (see
    /// `taper_diagnostics::safe_step`): the update's last minibatch step, or, with
    /// `step_radius_target`, the largest applied step of the update. NaN for a Gaussian
    /// policy.
    pub step_r: f32,
}

/// The policy terms' scratch space: log-probabilities, entropies and their gradients.
#[derive(Default, Debug)]
pub(crate) struct PolicyScratch {
    new_logp: Vec<f32>,
    ent: Vec<f32>,
    cat_logp: Vec<f32>,
    cat_p: Vec<f32>,
    dlogp: Vec<f32>,
    cat: Option<Categorical>,
}

/// The clipped surrogate and the entropy bonus of a softmax policy over `m` samples: from
/// the logits `out` (`[m, k]`), the actions taken, their (normalised) advantages and
/// rollout log-probabilities, writes `∂(surrogate − ent_coef·mean H)/∂logits` into `dout`
/// and returns the surrogate's statistics and the mean entropy. Shared by the feed-forward
/// and the recurrent updates.
#[allow(clippy::too_many_arguments)]
pub(crate) fn categorical_terms(
    ps: &mut PolicyScratch,
    out: &[f32],
    k: usize,
    m: usize,
    act: &[f32],
    adv: &[f32],
    old_logp: &[f32],
    clip: f32,
    ent_coef: f32,
    dout: &mut Vec<f32>,
) -> Result<(crate::loss::ClipStats, f32)> {
    let inv = 1.0 / m as f32;
    ps.new_logp.resize(m, 0.0);
    ps.ent.resize(m, 0.0);
    ps.dlogp.resize(m, 0.0);
    ps.cat_logp.resize(m * k, 0.0);
    ps.cat_p.resize(m * k, 0.0);
    let cat = ps.cat.get_or_insert_with(|| Categorical::new(k));
    for i in 0..m {
        cat.set_logits(&out[i * k..(i + 1) * k], None);
        // Kept for the gradient pass below.
        ps.cat_logp[i * k..(i + 1) * k].copy_from_slice(cat.log_probs());
        ps.cat_p[i * k..(i + 1) * k].copy_from_slice(cat.probs());
        ps.new_logp[i] = cat.log_prob(act[i] as usize);
        ps.ent[i] = cat.entropy();
    }
    let cs = ppo_clip_loss(&ps.new_logp, old_logp, adv, clip, &mut ps.dlogp)?;
    let entropy = (ps.ent.iter().map(|&h| h as f64).sum::<f64>() / m as f64) as f32;
    dout.clear();
    dout.resize(m * k, 0.0);
    for i in 0..m {
        let r = i * k..(i + 1) * k;
        cat.set_normalized(&ps.cat_logp[r.clone()], &ps.cat_p[r.clone()]);
        cat.add_log_prob_grad(act[i] as usize, ps.dlogp[i], &mut dout[r]);
        cat.add_entropy_grad(-ent_coef * inv, &mut dout[i * k..(i + 1) * k]);
    }
    Ok((cs, entropy))
}

/// The bookkeeping of one update's minibatches, shared by the feed-forward and the recurrent
/// updates: the finiteness checks, global gradient-norm clipping, and the statistics.
#[derive(Debug)]
pub(crate) struct UpdateTally {
    update_no: u64,
    clipfrac_sum: f64,
    clipfrac_n: usize,
    gn_sum: f64,
    gn_n: usize,
    /// What the update reports so far.
    pub(crate) stats: UpdateStats,
}

impl UpdateTally {
    /// A tally for update `update_no` (1-based, named in errors).
    pub(crate) fn new(update_no: u64) -> Self {
        UpdateTally {
            update_no,
            clipfrac_sum: 0.0,
            clipfrac_n: 0,
            gn_sum: 0.0,
            gn_n: 0,
            stats: UpdateStats {
                step_r: f32::NAN,
                ..UpdateStats::default()
            },
        }
    }

    /// Checks a minibatch's losses, then clips the gradients' global norm to `max_norm`; an
    /// error names the first term that is not finite.
    pub(crate) fn check_and_clip(
        &mut self,
        cs: &crate::loss::ClipStats,
        v_loss: f32,
        entropy: f32,
        grads: &mut [&mut [f32]],
        max_norm: f32,
    ) -> Result<()> {
        for (term, val) in [("policy loss", cs.loss), ("value loss", v_loss), ("entropy", entropy)] {
            if !val.is_finite() {
                return Err(AlgoError::NonFinite {
                    update: self.update_no,
                    term,
                });
            }
        }
        let gn = clip_grad_norm(grads, max_norm);
        if !gn.is_finite() {
            return Err(AlgoError::NonFinite {
                update: self.update_no,
                term: "gradient norm",
            });
        }
        self.gn_sum += gn as f64;
        self.gn_n += 1;
        Ok(())
    }

    /// Records a minibatch of `m` samples after its step (the losses are the last
    /// minibatch's, as CleanRL logs).
    pub(crate) fn record(&mut self, cs: &crate::loss::ClipStats, m: usize, v_loss: f32, entropy: f32) {
        self.clipfrac_sum += cs.clipped as f64 / m as f64;
        self.clipfrac_n += 1;
        let st = &mut self.stats;
        st.policy_loss = cs.loss;
        st.value_loss = v_loss;
        st.entropy = entropy;
        st.approx_kl = cs.approx_kl;
        st.old_approx_kl = cs.old_approx_kl;
    }

    /// Whether the last minibatch's KL estimate passed `target_kl` (the epochs stop).
    pub(crate) fn kl_exceeded(&self, target_kl: Option<f64>) -> bool {
        target_kl.is_some_and(|t| self.stats.approx_kl as f64 > t)
    }

    /// The update's statistics: the clip fraction and the gradient norm averaged over the
    /// minibatches.
    pub(crate) fn finish(mut self) -> UpdateStats {
        self.stats.clipfrac = (self.clipfrac_sum / self.clipfrac_n.max(1) as f64) as f32;
        self.stats.grad_norm = (self.gn_sum / self.gn_n.max(1) as f64) as f32;
        self.stats
    }
}

#[derive(Default, Debug)]
struct UpdateWorkspace {
    perm: Vec<usize>,
    obs: Vec<f32>,
    cobs: Vec<f32>,
    act: Vec<f32>,
    adv: Vec<f32>,
    old_logp: Vec<f32>,
    ps: PolicyScratch,
    old_v: Vec<f32>,
    ret: Vec<f32>,
    dout: Vec<f32>,
    dv: Vec<f32>,
    g_actor: Vec<f32>,
    g_critic: Vec<f32>,
    g_logstd: Vec<f32>,
    actor_cache: MlpCache,
    critic_cache: MlpCache,
    /// The minibatch's logits before the step and the safe-step scratch.
    z0: Vec<f32>,
    step: StepScratch,
}

/// The PPO update stage: Adam, the shuffling streams and the scratch space.
#[derive(Debug)]
pub struct PpoUpdate {
    /// Adam over the actor, the log-std and the critic, in that order.
    pub opt: Adam,
    /// The minibatch-shuffling stream (of the first data block held here).
    pub shuffle_rng: ChaCha8Rng,
    /// The shuffling streams of the further data blocks held here.
    pub(crate) more_shuffle: Vec<ChaCha8Rng>,
    /// One workspace per data block held here.
    w: Vec<UpdateWorkspace>,
    /// The blocks' gradients summed: actor, log-std, critic.
    sum: [Vec<f32>; 3],
    /// The held blocks' gradients and statistics, packed to be gathered.
    pack: Vec<f32>,
    /// The recurrent update's scratch space.
    pub(crate) seq: crate::recurrent::SeqWorkspace,
}

/// The statistics a block packs after its gradients: rows, the surrogate's loss, clipped
/// count, KL estimates, the value loss and the entropy.
const PACKED_STATS: usize = 7;

impl PpoUpdate {
    /// The stage for `model`: Adam with the config's learning rate and ε, shuffling from
    /// `seed`.
    pub fn new(config: &PpoConfig, model: &ActorCritic, seed: u64) -> Self {
        Self::with_params(config, OnPolicyModel::num_params(model), seed)
    }

    /// The stage for a model of `n` parameters.
    pub fn with_params(config: &PpoConfig, n: usize, seed: u64) -> Self {
        Self::for_blocks(config, n, seed, 0..1)
    }

    /// The stage for a model of `n` parameters holding the data blocks `held` (block `b`
    /// shuffles with stream `b` of `seed`).
    pub(crate) fn for_blocks(config: &PpoConfig, n: usize, seed: u64, held: std::ops::Range<usize>) -> Self {
        PpoUpdate {
            opt: Adam::new(
                AdamConfig {
                    lr: config.learning_rate as f32,
                    eps: config.adam_eps as f32,
                    ..AdamConfig::default()
                },
                n,
            ),
            shuffle_rng: stream(seed, Purpose::Shuffle, held.start as u64),
            more_shuffle: (held.start + 1..held.end)
                .map(|b| stream(seed, Purpose::Shuffle, b as u64))
                .collect(),
            w: Vec::new(),
            sum: Default::default(),
            pack: Vec::new(),
            seq: Default::default(),
        }
    }

    /// One update on a filled rollout (advantages, returns and selection computed):
    /// `update_epochs` passes over shuffled minibatches of the selected samples. `update_no`
    /// (1-based) names the update in errors.
    pub fn update(
        &mut self,
        c: &PpoConfig,
        model: &mut ActorCritic,
        value_norm: Option<&mut ValueNorm>,
        b: &RolloutBuffer,
        update_no: u64,
    ) -> Result<UpdateStats> {
        self.update_blocks(c, model, value_norm, &[b], &Blocks::local(1), update_no)
    }

    /// One update over data blocks (see [`crate::blocks`]): `bufs` are the rollouts of the
    /// blocks held here, in block order. Each minibatch takes its share of every block; each
    /// block's gradient is computed from its rows alone, and the blocks' gradients (gathered
    /// from the other processes in a data-parallel run) are summed in block order, weighted by
    /// their rows, before the clipping and Adam. With one block this is the ordinary update.
    pub fn update_blocks(
        &mut self,
        c: &PpoConfig,
        model: &mut ActorCritic,
        mut value_norm: Option<&mut ValueNorm>,
        bufs: &[&RolloutBuffer],
        blocks: &Blocks,
        update_no: u64,
    ) -> Result<UpdateStats> {
        let od = model.obs_dim();
        let cd = model.critic.net.input_dim();
        let held = bufs.len();
        if held != blocks.held() || held != 1 + self.more_shuffle.len() {
            return Err(AlgoError::Config {
                field: "data_blocks",
                reason: format!(
                    "{held} rollouts for {} blocks held and {} shuffling streams",
                    blocks.held(),
                    1 + self.more_shuffle.len()
                ),
            });
        }
        let multi = blocks.total > 1;
        for b in bufs {
            let total = b.len();
            let central = !b.critic_obs.is_empty();
            for (what, len, want) in [
                ("rollout values", b.values.len(), total),
                ("rollout advantages", b.adv.len(), total),
                ("rollout observations", b.obs.len(), total * od),
                (
                    "rollout critic inputs",
                    b.critic_obs.len(),
                    if central { total * cd } else { 0 },
                ),
                (
                    "the selection of a data block's samples",
                    b.selected.len(),
                    if multi { total } else { b.selected.len() },
                ),
                ("rollout size", total, bufs[0].len()),
            ] {
                if len != want {
                    return Err(AlgoError::Config {
                        field: "rollout",
                        reason: format!("{what}: expected {want} values, got {len}"),
                    });
                }
            }
        }
        let central = !bufs[0].critic_obs.is_empty();
        let (clip, ent_coef) = (c.clip_coef as f32, c.ent_coef as f32);
        let bs = bufs[0].selected.len();
        let mb = (bs / c.num_minibatches.max(1)).max(1);
        let ad = model.action_dim();
        let (na, nc, nl) = (
            model.actor.num_params(),
            model.critic.net.num_params(),
            model.log_std.len(),
        );
        let PpoUpdate {
            opt,
            shuffle_rng,
            more_shuffle,
            w: ws,
            sum,
            pack,
            ..
        } = self;
        ws.resize_with(held, UpdateWorkspace::default);
        for (w, b) in ws.iter_mut().zip(bufs) {
            w.perm.clear();
            w.perm.extend_from_slice(&b.selected);
            w.g_actor.resize(na, 0.0);
            w.g_critic.resize(nc, 0.0);
            w.g_logstd.resize(nl, 0.0);
        }
        let mut tally = UpdateTally::new(update_no);
        'epochs: for epoch in 0..c.update_epochs {
            for (k, w) in ws.iter_mut().enumerate() {
                let rng = if k == 0 {
                    &mut *shuffle_rng
                } else {
                    &mut more_shuffle[k - 1]
                };
                // Fisher–Yates shuffle.
                for i in (1..bs).rev() {
                    let j = rng.random_range(0..=i);
                    w.perm.swap(i, j);
                }
            }
            for start in (0..bs).step_by(mb) {
                let m = mb.min(bs - start);
                for (w, b) in ws.iter_mut().zip(bufs) {
                    w.gather(b, start, m, od, ad, cd, central, c.norm_adv);
                }
                // The value normaliser learns every block's returns, in block order, before any
                // block's critic pass.
                if let Some(vn) = value_norm.as_deref_mut() {
                    if multi {
                        let local: Vec<f32> = ws.iter().flat_map(|w| w.ret.iter().copied()).collect();
                        vn.update(&blocks.all_gather(&local)?);
                    } else {
                        vn.update(&ws[0].ret);
                    }
                    for w in ws.iter_mut() {
                        vn.normalize(&mut w.ret);
                    }
                }
                // The safe-step radius: every step under the controller, else the update's last
                // (with data blocks, over the first block's rows).
                let last = epoch + 1 == c.update_epochs && start + m == bs;
                let measure = model.is_discrete() && blocks.first == 0 && (c.step_radius_target.is_some() || last);
                let pass = |(k, w): (usize, &mut UpdateWorkspace)| {
                    w.passes(model, m, clip, ent_coef, central, c, measure && k == 0)
                };
                let (cs, v_loss, entropy, rows, grads) = if multi {
                    // The blocks held here compute their gradients side by side.
                    let terms: Vec<_> = if held > 1 {
                        use rayon::prelude::*;
                        let each: Vec<Result<_>> = ws.par_iter_mut().enumerate().map(pass).collect();
                        each.into_iter().collect::<Result<_>>()?
                    } else {
                        vec![pass((0, &mut ws[0]))?]
                    };
                    let (cs, v_loss, entropy, rows) = combine(ws, &terms, blocks, pack, sum, m)?;
                    let [ga, gl, gc] = sum;
                    (cs, v_loss, entropy, rows, [&mut ga[..], &mut gl[..], &mut gc[..]])
                } else {
                    let (cs, v_loss, entropy) = pass((0, &mut ws[0]))?;
                    let w = &mut ws[0];
                    (
                        cs,
                        v_loss,
                        entropy,
                        m,
                        [&mut w.g_actor[..], &mut w.g_logstd[..], &mut w.g_critic[..]],
                    )
                };
                let [ga, gl, gc] = grads;
                tally.check_and_clip(
                    &cs,
                    v_loss,
                    entropy,
                    &mut [&mut *ga, &mut *gl, &mut *gc],
                    c.max_grad_norm as f32,
                )?;
                opt.step(&mut [
                    (model.actor.params_mut(), &*ga),
                    (&mut model.log_std[..], &*gl),
                    (model.critic.net.params_mut(), &*gc),
                ])?;
                if measure {
                    let target = c.step_radius_target.map(|t| t as f32);
                    let w = &mut ws[0];
                    let r = limit_step(&mut model.actor, &mut w.step, &w.z0, &w.obs, m, target)?;
                    tally.stats.step_r = tally.stats.step_r.max(r); // NaN until the first measure
                }
                tally.record(&cs, rows, v_loss, entropy);
            }
            if tally.kl_exceeded(c.target_kl) {
                break 'epochs;
            }
        }
        if multi {
            // The radius is measured on the first block's rows: every process reports that one.
            let first = blocks.all_gather(&vec![tally.stats.step_r; held])?;
            tally.stats.step_r = first[0];
        }
        Ok(tally.finish())
    }
}

impl UpdateWorkspace {
    /// Gathers the minibatch `perm[start..start + m]` of `b`: observations, actions,
    /// advantages (normalised over these rows with `norm_adv`), rollout log-probabilities and
    /// values, returns, and critic inputs where they differ from the observations.
    #[allow(clippy::too_many_arguments)]
    fn gather(
        &mut self,
        b: &RolloutBuffer,
        start: usize,
        m: usize,
        od: usize,
        ad: usize,
        cd: usize,
        central: bool,
        norm_adv: bool,
    ) {
        let idx = &self.perm[start..start + m];
        self.obs.resize(m * od, 0.0);
        self.act.resize(m * ad, 0.0);
        self.adv.resize(m, 0.0);
        self.old_logp.resize(m, 0.0);
        for (k, &i) in idx.iter().enumerate() {
            self.obs[k * od..(k + 1) * od].copy_from_slice(&b.obs[i * od..(i + 1) * od]);
            self.act[k * ad..(k + 1) * ad].copy_from_slice(&b.actions[i * ad..(i + 1) * ad]);
            self.adv[k] = b.adv[i];
            self.old_logp[k] = b.logp[i];
        }
        if norm_adv {
            normalize_advantages(&mut self.adv);
        }
        self.old_v.resize(m, 0.0);
        self.ret.resize(m, 0.0);
        for (k, &i) in idx.iter().enumerate() {
            self.old_v[k] = b.values[i];
            self.ret[k] = b.ret[i];
        }
        if central {
            self.cobs.resize(m * cd, 0.0);
            for (k, &i) in idx.iter().enumerate() {
                self.cobs[k * cd..(k + 1) * cd].copy_from_slice(&b.critic_obs[i * cd..(i + 1) * cd]);
            }
        }
    }

    /// The policy's and the value's passes over the gathered minibatch of `m` rows (the
    /// returns already normalised where the run normalises values), leaving the gradients in
    /// the workspace; with `measure`, the logits and parameters before the step are kept for
    /// the safe-step radius. Returns the surrogate's statistics, the value loss and the
    /// entropy.
    #[allow(clippy::too_many_arguments)]
    fn passes(
        &mut self,
        model: &ActorCritic,
        m: usize,
        clip: f32,
        ent_coef: f32,
        central: bool,
        c: &PpoConfig,
        measure: bool,
    ) -> Result<(crate::loss::ClipStats, f32, f32)> {
        // The policy's and the value's passes share nothing until the clipping, so they run
        // side by side; each computes what it would alone.
        let UpdateWorkspace {
            obs,
            cobs,
            act,
            adv,
            old_logp,
            ps,
            old_v,
            ret,
            dout,
            dv,
            g_actor,
            g_critic,
            g_logstd,
            actor_cache,
            critic_cache,
            z0,
            step,
            ..
        } = self;
        let (actor, log_std, critic) = (&model.actor, &model.log_std[..], &model.critic);
        let (obs, cin): (&[f32], &[f32]) = (obs, if central { cobs } else { obs });
        let pass = ActorPass {
            obs,
            act,
            adv,
            old_logp,
            cache: actor_cache,
            ps,
            dout,
            grad: g_actor,
            g_logstd,
        };
        let remember = if measure { Some((z0, step)) } else { None };
        let policy = move || pass.run(actor, log_std, m, clip, ent_coef, remember);
        let mut value = move || critic_pass(critic, None, cin, old_v, ret, critic_cache, dv, g_critic, c);
        let (pol, val) = if m >= PASS_JOIN_ROWS {
            rayon::join(policy, value)
        } else {
            (policy(), value())
        };
        let (cs, entropy) = pol?;
        Ok((cs, val?, entropy))
    }
}

/// Sums the blocks' gradients of one minibatch (the held blocks' from `ws`, the others'
/// gathered through `blocks`) in block order, each weighted by its share of the rows, into
/// `sum`; and their statistics alike (the clipped count summed). Returns the minibatch's
/// surrogate statistics, value loss, entropy and rows.
fn combine(
    ws: &[UpdateWorkspace],
    terms: &[(crate::loss::ClipStats, f32, f32)],
    blocks: &Blocks,
    pack: &mut Vec<f32>,
    sum: &mut [Vec<f32>; 3],
    m: usize,
) -> Result<(crate::loss::ClipStats, f32, f32, usize)> {
    let sizes = [ws[0].g_actor.len(), ws[0].g_logstd.len(), ws[0].g_critic.len()];
    let width = sizes.iter().sum::<usize>() + PACKED_STATS;
    pack.clear();
    for (w, (cs, v_loss, entropy)) in ws.iter().zip(terms) {
        pack.extend_from_slice(&w.g_actor);
        pack.extend_from_slice(&w.g_logstd);
        pack.extend_from_slice(&w.g_critic);
        pack.extend_from_slice(&[
            m as f32,
            cs.loss,
            cs.clipped as f32,
            cs.approx_kl,
            cs.old_approx_kl,
            *v_loss,
            *entropy,
        ]);
    }
    let all = blocks.all_gather(pack)?;
    if all.len() != width * blocks.total {
        return Err(AlgoError::Link(format!(
            "gathered {} values for {} blocks of {width}",
            all.len(),
            blocks.total
        )));
    }
    let parts: Vec<&[f32]> = all.chunks(width).collect();
    let rows: Vec<usize> = parts.iter().map(|p| p[width - PACKED_STATS] as usize).collect();
    let weights = crate::blocks::row_weights(&rows);
    for (s, n) in sum.iter_mut().zip(sizes) {
        s.clear();
        s.resize(n, 0.0);
    }
    let mut st = [0f32; PACKED_STATS];
    let mut clipped = 0usize;
    for (p, &wt) in parts.iter().zip(&weights) {
        let mut off = 0;
        for (s, n) in sum.iter_mut().zip(sizes) {
            for (acc, g) in s.iter_mut().zip(&p[off..off + n]) {
                *acc += wt * g;
            }
            off += n;
        }
        let stats = &p[off..];
        clipped += stats[2] as usize;
        for (acc, v) in st.iter_mut().zip(stats).skip(1) {
            *acc += wt * v;
        }
    }
    let cs = crate::loss::ClipStats {
        loss: st[1],
        clipped,
        approx_kl: st[3],
        old_approx_kl: st[4],
    };
    Ok((cs, st[5], st[6], rows.iter().sum()))
}

/// From this many minibatch rows on, the policy's and the value's passes run side by side.
/// Below it a fork-join costs more than it saves.
const PASS_JOIN_ROWS: usize = 64;

/// The policy's half of a minibatch: the surrogate's terms and the actor's gradients.
struct ActorPass<'a> {
    obs: &'a [f32],
    act: &'a [f32],
    adv: &'a [f32],
    old_logp: &'a [f32],
    cache: &'a mut MlpCache,
    ps: &'a mut PolicyScratch,
    dout: &'a mut Vec<f32>,
    grad: &'a mut Vec<f32>,
    g_logstd: &'a mut Vec<f32>,
}

impl ActorPass<'_> {
    /// The forward pass, the clipped surrogate and entropy bonus, and the backward pass into
    /// the (zeroed) gradients; with `remember`, the logits and parameters before the step are
    /// kept for the safe-step radius. Returns the surrogate's statistics and the mean entropy.
    fn run(
        self,
        actor: &Mlp,
        log_std: &[f32],
        m: usize,
        clip: f32,
        ent_coef: f32,
        remember: Option<(&mut Vec<f32>, &mut StepScratch)>,
    ) -> Result<(crate::loss::ClipStats, f32)> {
        let out = actor.forward(self.obs, m, self.cache)?;
        let k_out = actor.output_dim();
        if let Some((z0, step)) = remember {
            z0.clear();
            z0.extend_from_slice(out);
            step.remember(actor);
        }
        self.g_logstd.iter_mut().for_each(|g| *g = 0.0);
        let ad = self.act.len() / m.max(1);
        let (cs, entropy) = if log_std.is_empty() {
            categorical_terms(
                self.ps,
                out,
                k_out,
                m,
                self.act,
                self.adv,
                self.old_logp,
                clip,
                ent_coef,
                self.dout,
            )?
        } else {
            let g = DiagGaussian::new(log_std.to_vec());
            let ps = &mut *self.ps;
            ps.new_logp.resize(m, 0.0);
            ps.ent.resize(m, 0.0);
            ps.dlogp.resize(m, 0.0);
            for k in 0..m {
                let row = &out[k * k_out..(k + 1) * k_out];
                ps.new_logp[k] = g.log_prob(row, &self.act[k * ad..(k + 1) * ad]);
                ps.ent[k] = g.entropy();
            }
            let cs = ppo_clip_loss(&ps.new_logp, self.old_logp, self.adv, clip, &mut ps.dlogp)?;
            let entropy = (ps.ent.iter().map(|&h| h as f64).sum::<f64>() / m as f64) as f32;
            self.dout.clear();
            self.dout.resize(m * k_out, 0.0);
            for k in 0..m {
                let row = &out[k * k_out..(k + 1) * k_out];
                let drow = &mut self.dout[k * k_out..(k + 1) * k_out];
                g.add_log_prob_grad(row, &self.act[k * ad..(k + 1) * ad], ps.dlogp[k], drow, self.g_logstd);
            }
            for g in self.g_logstd.iter_mut() {
                *g -= ent_coef; // ∂(−c·mean H)/∂ log σ_d = −c
            }
            (cs, entropy)
        };
        self.grad.iter_mut().for_each(|g| *g = 0.0);
        actor.backward(self.obs, self.cache, self.dout, self.grad)?;
        Ok((cs, entropy))
    }
}

/// Normalises a minibatch's advantages to zero mean and unit (sample) standard deviation, in
/// f64, as CleanRL does; a single advantage is left as it is. Shared by the feed-forward and
/// the recurrent updates.
pub(crate) fn normalize_advantages(adv: &mut [f32]) {
    let m = adv.len();
    if m < 2 {
        return;
    }
    let mean = adv.iter().map(|&x| x as f64).sum::<f64>() / m as f64;
    let var = adv.iter().map(|&x| (x as f64 - mean).powi(2)).sum::<f64>() / (m - 1) as f64;
    let sd = var.sqrt();
    for a in adv.iter_mut() {
        *a = ((*a as f64 - mean) / (sd + 1e-8)) as f32;
    }
}

/// The value terms of a minibatch from the critic's outputs `out` (the values, or a
/// categorical head's bin logits): with a normaliser, the returns `ret` are first folded into
/// its statistics and learnt normalised (stored values are in normalised units, as in the
/// on-policy codebase MAPPO comes from); then the value loss (clipped or not, or the head's
/// cross-entropy, unclipped), whose gradient times `vf_coef` goes to `dv`. Returns the
/// unscaled loss. Shared by the feed-forward and the recurrent updates.
#[allow(clippy::too_many_arguments)]
pub(crate) fn value_terms(
    value_norm: Option<&mut ValueNorm>,
    head: Option<&taper_critics::Categorical>,
    out: &[f32],
    old_v: &[f32],
    ret: &mut [f32],
    c: &PpoConfig,
    dv: &mut Vec<f32>,
) -> Result<f32> {
    if let Some(vn) = value_norm {
        vn.update(ret);
        vn.normalize(ret);
    }
    dv.resize(out.len(), 0.0);
    let v_loss = match head {
        None => value_loss(out, old_v, ret, c.clip_vloss.then_some(c.clip_coef as f32), dv)?,
        Some(head) => head.loss(out, ret, ret.len(), dv)?,
    };
    let vf_coef = c.vf_coef as f32;
    for d in dv.iter_mut() {
        *d *= vf_coef;
    }
    Ok(v_loss)
}

/// The value's half of a minibatch of `m` rows: the critic's forward pass, [`value_terms`],
/// and its backward pass into the (zeroed) gradients. Returns the unscaled loss.
#[allow(clippy::too_many_arguments)]
fn critic_pass(
    critic: &taper_critics::ValueCritic,
    value_norm: Option<&mut ValueNorm>,
    cin: &[f32],
    old_v: &[f32],
    ret: &mut [f32],
    cache: &mut MlpCache,
    dv: &mut Vec<f32>,
    grad: &mut [f32],
    c: &PpoConfig,
) -> Result<f32> {
    let out = critic.forward(cin, ret.len(), cache)?;
    let v_loss = value_terms(value_norm, critic.head.as_ref(), out, old_v, ret, c, dv)?;
    grad.iter_mut().for_each(|g| *g = 0.0);
    critic.net.backward(cin, cache, dv, grad)?;
    Ok(v_loss)
}

/// Everything an on-policy learner holds besides its config, weights and envs: with them it
/// resumes exactly.
#[derive(Debug, Clone, Serialize, Deserialize)]
#[serde(bound = "E: LoggedEpisode, C: Serialize + DeserializeOwned + Default + PartialEq")]
pub struct OnPolicyState<E, C = ()> {
    /// The run's seed.
    pub seed: u64,
    /// Adam's moments and step count.
    pub optimizer: AdamState,
    /// The action-sampling stream (of the first data block).
    pub action_rng: ChaCha8Rng,
    /// The minibatch-shuffling stream (of the first data block).
    pub shuffle_rng: ChaCha8Rng,
    /// Env steps taken.
    pub global_step: u64,
    /// Updates done.
    pub updates: u64,
    /// Episodes finished.
    pub episodes: u64,
    /// The recent finished episodes.
    pub recent: Vec<E>,
    /// Whether the envs have been reset by the learner.
    pub env_started: bool,
    /// The value normaliser (MAPPO).
    #[serde(default)]
    pub value_norm: Option<ValueNorm>,
    /// The rows' memory (a recurrent model's; absent for a feed-forward one).
    #[serde(default, skip_serializing_if = "is_default")]
    pub carry: C,
    /// The further data blocks' streams and envs, blocks 1 onwards (none with one block; the
    /// first block's envs are the checkpoint's env state).
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub blocks: Vec<BlockState>,
}

fn is_default<C: Default + PartialEq>(c: &C) -> bool {
    *c == C::default()
}

/// A core's state and its first data block's envs' snapshot.
type StateAndEnvs<R, M> = (
    OnPolicyState<<R as RolloutEnv>::Episode, <M as OnPolicyModel>::Carry>,
    Option<serde_json::Value>,
);

/// A data block held by this process: its envs, action stream, rollout and memory.
#[derive(Debug)]
struct Block<R: RolloutEnv, M: OnPolicyModel> {
    envs: R,
    action_rng: ChaCha8Rng,
    buf: RolloutBuffer,
    cw: CollectWorkspace<M::Workspace>,
    /// The rows' memory now, and at the start of the last rollout.
    carry: M::Carry,
    carry0: M::Carry,
    /// The episodes that ended in the last rollout.
    episodes: Vec<R::Episode>,
}

/// The on-policy learner core: see the module doc.
#[derive(Debug)]
pub struct OnPolicy<R: RolloutEnv, M: OnPolicyModel = ActorCritic> {
    /// The PPO config over rows (`num_envs` = rows per step, of all data blocks).
    pub config: PpoConfig,
    /// The seed.
    pub seed: u64,
    /// The actor-critic.
    pub model: M,
    /// The update stage.
    pub update: PpoUpdate,
    /// The advantage pipeline.
    pub pipeline: Pipeline,
    /// MAPPO's value normalisation: the critic learns normalised returns.
    pub value_norm: Option<ValueNorm>,
    /// Whether the critic reads global states.
    pub central_critic: bool,
    /// Whether metrics rows carry `old_approx_kl` (PPO's rows do; IPPO's and MAPPO's do not).
    pub log_old_approx_kl: bool,
    /// The data blocks held here, in block order.
    blocks: Vec<Block<R, M>>,
    /// Where the run's data blocks are.
    place: Blocks,
    env_started: bool,
    global_step: u64,
    updates: u64,
    episodes: u64,
    recent: RecentEpisodes<R::Episode>,
    iters: u64,
    started_at: Instant,
    start_step: u64,
    this_iter: Vec<R::Episode>,
}

impl<R: RolloutEnv, M: OnPolicyModel> OnPolicy<R, M> {
    /// A core for `model` on `envs`; all randomness from `seed`. `config.num_envs` must be
    /// the envs' rows, and the config must have one data block (see
    /// [`OnPolicy::with_blocks`]).
    pub fn new(
        config: PpoConfig,
        model: M,
        envs: R,
        seed: u64,
        central_critic: bool,
        value_norm: bool,
    ) -> Result<Self> {
        let place = Blocks::local(config.data_blocks);
        Self::with_blocks(config, model, vec![envs], place, seed, central_critic, value_norm)
    }

    /// A core over data blocks (see [`crate::blocks`]): `envs` holds one env set per block
    /// held here (in block order, each `config.num_envs / config.data_blocks` rows; the core
    /// resets them so that every env gets the seed it has in the whole run), and `place` says
    /// where the blocks are.
    pub fn with_blocks(
        config: PpoConfig,
        model: M,
        envs: Vec<R>,
        place: Blocks,
        seed: u64,
        central_critic: bool,
        value_norm: bool,
    ) -> Result<Self> {
        config.validate()?;
        if place.total != config.data_blocks || envs.len() != place.held() {
            return Err(AlgoError::Config {
                field: "data_blocks",
                reason: format!(
                    "the config has {} data blocks; this core was given {} env sets for {} blocks held of {}",
                    config.data_blocks,
                    envs.len(),
                    place.held(),
                    place.total
                ),
            });
        }
        let rows = config.num_envs / config.data_blocks;
        for e in &envs {
            if e.rows() != rows {
                return Err(AlgoError::Config {
                    field: "num_envs",
                    reason: format!("config says {rows} rows per data block but the envs have {}", e.rows()),
                });
            }
            if e.obs_space().encoded_dim() != model.obs_dim() || e.act_space() != model.act_space() {
                return Err(AlgoError::Config {
                    field: "env",
                    reason: "the env's spaces differ from the model's".into(),
                });
            }
        }
        if config.step_radius_target.is_some() && !model.is_discrete() {
            return Err(AlgoError::Config {
                field: "step_radius_target",
                reason: "the safe-step radius is a softmax policy's; this action space is continuous".into(),
            });
        }
        if config.step_radius_target.is_some() && !model.measures_step_radius() {
            return Err(AlgoError::Config {
                field: "step_radius_target",
                reason: "the safe-step controller needs the feed-forward network".into(),
            });
        }
        let cd = central_critic.then(|| envs[0].state_dim());
        if cd.unwrap_or(model.obs_dim()) != model.critic_dim() {
            return Err(AlgoError::Config {
                field: "critic",
                reason: format!(
                    "the critic reads {} values, the envs give {}",
                    model.critic_dim(),
                    cd.unwrap_or(model.obs_dim())
                ),
            });
        }
        let blocks = envs
            .into_iter()
            .enumerate()
            .map(|(k, envs)| {
                let carry = model.new_carry(rows);
                Block {
                    buf: RolloutBuffer::new(config.num_steps, rows, model.obs_dim(), model.action_dim(), cd),
                    action_rng: stream(seed, Purpose::Action, (place.first + k) as u64),
                    cw: CollectWorkspace::default(),
                    carry0: carry.clone(),
                    carry,
                    episodes: Vec::new(),
                    envs,
                }
            })
            .collect();
        let held = place.first..place.first + place.held();
        Ok(OnPolicy {
            update: PpoUpdate::for_blocks(&config, model.num_params(), seed, held),
            pipeline: Pipeline::gae(config.gamma as f32, config.gae_lambda as f32),
            value_norm: value_norm.then(|| ValueNorm::new(0.99999)),
            log_old_approx_kl: true,
            blocks,
            place,
            env_started: false,
            global_step: 0,
            updates: 0,
            episodes: 0,
            recent: RecentEpisodes::default(),
            iters: 0,
            started_at: Instant::now(),
            start_step: 0,
            this_iter: Vec::new(),
            config,
            seed,
            model,
            central_critic,
        })
    }

    /// The envs (of the first data block held here).
    pub fn envs(&self) -> &R {
        &self.blocks[0].envs
    }
    /// The envs (of the first data block held here), mutably.
    pub fn envs_mut(&mut self) -> &mut R {
        &mut self.blocks[0].envs
    }
    /// Where the run's data blocks are.
    pub fn blocks(&self) -> &Blocks {
        &self.place
    }
    /// Env steps per update (of all data blocks).
    pub fn env_batch(&self) -> u64 {
        (self.config.num_steps * (self.config.num_envs / self.blocks[0].envs.group())) as u64
    }
    /// Env steps taken.
    pub fn global_step(&self) -> u64 {
        self.global_step
    }
    /// Updates done.
    pub fn updates(&self) -> u64 {
        self.updates
    }
    /// Episodes finished.
    pub fn episodes(&self) -> u64 {
        self.episodes
    }
    /// The recent episodes.
    pub fn recent(&self) -> &RecentEpisodes<R::Episode> {
        &self.recent
    }

    /// Sets the plan `total_steps / env_batch` updates (see [`taper_train::Learner::plan`]);
    /// resets the envs with the seed the first time (block `b`'s first env with
    /// `seed + b·E/B`, so that every env has the seed it has in the whole run).
    pub fn plan(&mut self, total_steps: u64) -> Result<u64> {
        let batch = self.env_batch();
        let iters = total_steps / batch;
        if iters == 0 {
            return Err(AlgoError::Config {
                field: "total_steps",
                reason: format!("{total_steps} is less than one rollout ({batch} env steps)"),
            });
        }
        if iters <= self.updates {
            return Err(AlgoError::Config {
                field: "total_steps",
                reason: format!(
                    "the run is already at step {} of a {total_steps}-step plan; give a larger budget to continue",
                    self.global_step
                ),
            });
        }
        if !self.env_started {
            let per_block = (self.config.num_envs / self.config.data_blocks / self.blocks[0].envs.group()) as u64;
            for (k, b) in self.blocks.iter_mut().enumerate() {
                let first_env = ((self.place.first + k) as u64).wrapping_mul(per_block);
                b.envs.reset(self.seed.wrapping_add(first_env))?;
                b.carry = self.model.new_carry(b.envs.rows());
            }
            self.env_started = true;
        }
        self.iters = iters;
        self.started_at = Instant::now();
        self.start_step = self.global_step;
        Ok(iters * batch)
    }

    /// Whether the plan's updates are done.
    pub fn is_done(&self) -> bool {
        self.updates >= self.iters
    }

    /// One iteration: a rollout, the advantage pipeline, an update; returns its metrics row.
    pub fn iteration(&mut self) -> Result<Metrics> {
        let c = self.config.clone();
        let it = self.updates + 1;
        if c.anneal_lr || c.lr_spike.is_some() {
            let base = if c.anneal_lr {
                linear_anneal(c.learning_rate as f32, it, self.iters)
            } else {
                c.learning_rate as f32
            };
            let spike = c.lr_spike.map_or(1.0, |s| s.factor_at(it));
            self.update.opt.set_lr((base as f64 * spike) as f32);
        }
        let opts = CollectOptions {
            steps: c.num_steps,
            central_critic: self.central_critic,
            bootstrap_truncated: c.bootstrap_truncated,
        };
        let (model, value_norm) = (&self.model, self.value_norm.as_ref());
        let rollout = |blk: &mut Block<R, M>| -> Result<u64> {
            blk.carry0.clone_from(&blk.carry);
            let eps = &mut blk.episodes;
            eps.clear();
            collect(
                &mut blk.envs,
                model,
                &mut blk.carry,
                &mut blk.action_rng,
                value_norm,
                opts,
                &mut blk.buf,
                &mut blk.cw,
                &mut |ep| eps.push(ep),
            )
        };
        // The blocks held here share nothing while they collect, so they do it side by side.
        let steps: u64 = if self.blocks.len() > 1 {
            use rayon::prelude::*;
            let each: Vec<Result<u64>> = self.blocks.par_iter_mut().map(rollout).collect();
            each.into_iter().sum::<Result<u64>>()?
        } else {
            rollout(&mut self.blocks[0])?
        };
        for blk in self.blocks.iter_mut() {
            let b = &mut blk.buf;
            self.pipeline.run(
                &AdvantageInput {
                    num_rows: b.rows,
                    rewards: &b.rewards,
                    values: &b.gae_values,
                    terminated: &b.terminated,
                    truncated: &b.truncated,
                    final_values: &b.final_values,
                    last_values: &b.last_values,
                },
                &mut b.adv,
                &mut b.ret,
                &mut b.selected,
            )?;
        }
        self.global_step += steps / self.place.held() as u64 * self.place.total as u64;
        // Every block's episodes, in block order.
        let local: Vec<R::Episode> = self.blocks.iter_mut().flat_map(|b| b.episodes.drain(..)).collect();
        self.this_iter = self.place.all_gather_items(local)?;
        for &ep in &self.this_iter {
            self.episodes += 1;
            self.recent.push(ep);
        }
        let stats = if self.place.total == 1 {
            let blk = &self.blocks[0];
            self.model.update(
                &mut self.update,
                &c,
                self.value_norm.as_mut(),
                &blk.buf,
                &blk.carry0,
                it,
            )?
        } else {
            let bufs: Vec<&RolloutBuffer> = self.blocks.iter().map(|b| &b.buf).collect();
            self.model
                .update_blocks(&mut self.update, &c, self.value_norm.as_mut(), &bufs, &self.place, it)?
        };
        self.updates += 1;
        let elapsed = self.started_at.elapsed().as_secs_f64();
        let mut m = Metrics::new();
        m.push("global_step", self.global_step as f64);
        m.push("update", self.updates as f64);
        m.push_f32("learning_rate", self.update.opt.lr());
        m.push_f32("policy_loss", stats.policy_loss);
        m.push_f32("value_loss", stats.value_loss);
        m.push_f32("entropy", stats.entropy);
        if self.log_old_approx_kl {
            m.push_f32("old_approx_kl", stats.old_approx_kl);
        }
        m.push_f32("approx_kl", stats.approx_kl);
        m.push_f32("clipfrac", stats.clipfrac);
        m.push("explained_variance", self.explained_variance()? as f64);
        m.push_f32("grad_norm", stats.grad_norm);
        if self.model.measures_step_radius() {
            m.push_f32("step_r", stats.step_r);
        }
        R::Episode::iteration_metrics(&self.this_iter, &mut m);
        self.recent.write_metrics(self.blocks[0].envs.episode_stats(), &mut m);
        m.push("sps", (self.global_step - self.start_step) as f64 / elapsed.max(1e-9));
        m.push("time_elapsed", elapsed);
        Ok(m)
    }

    /// The explained variance of the rollout's values against its returns, over every data
    /// block's samples (block after block).
    fn explained_variance(&self) -> Result<f32> {
        if self.place.total == 1 {
            let b = &self.blocks[0].buf;
            return Ok(explained_variance(&b.gae_values, &b.ret));
        }
        let local: Vec<f32> = self
            .blocks
            .iter()
            .flat_map(|b| b.buf.gae_values.iter().chain(&b.buf.ret).copied())
            .collect();
        let all = self.place.all_gather(&local)?;
        let n = self.blocks[0].buf.len();
        let (mut values, mut returns) = (Vec::with_capacity(all.len() / 2), Vec::with_capacity(all.len() / 2));
        for part in all.chunks(2 * n) {
            values.extend_from_slice(&part[..n]);
            returns.extend_from_slice(&part[n..]);
        }
        Ok(explained_variance(&values, &returns))
    }

    /// Every data block's streams and envs, in block order (gathered from the other
    /// processes in a data-parallel run: collective).
    fn block_states(&self) -> Result<Vec<BlockState>> {
        let local = self
            .blocks
            .iter()
            .enumerate()
            .map(|(k, b)| BlockState {
                action_rng: b.action_rng.clone(),
                shuffle_rng: if k == 0 {
                    self.update.shuffle_rng.clone()
                } else {
                    self.update.more_shuffle[k - 1].clone()
                },
                env_state: b.envs.snapshot(),
            })
            .collect();
        self.place.all_gather_items(local)
    }

    /// The state besides config, weights and envs, with the first block's envs' snapshot
    /// beside it. Collective in a data-parallel run.
    fn gathered_state(&self) -> Result<StateAndEnvs<R, M>> {
        let mut blocks = self.block_states()?;
        let first = blocks.remove(0);
        let state = OnPolicyState {
            seed: self.seed,
            optimizer: self.update.opt.state().clone(),
            action_rng: first.action_rng,
            shuffle_rng: first.shuffle_rng,
            global_step: self.global_step,
            updates: self.updates,
            episodes: self.episodes,
            recent: self.recent.to_vec(),
            env_started: self.env_started,
            value_norm: self.value_norm.clone(),
            carry: self.blocks[0].carry.clone(),
            blocks,
        };
        Ok((state, first.env_state))
    }

    /// The state besides config, weights and envs (every data block's streams included; the
    /// further blocks' envs too). Collective in a data-parallel run: every process calls it.
    pub fn state(&self) -> Result<OnPolicyState<R::Episode, M::Carry>> {
        Ok(self.gathered_state()?.0)
    }

    /// Restores [`OnPolicy::state`] of a core built with the same config and model shape;
    /// `env_state` is the first data block's envs' snapshot (none: the envs start anew from
    /// the seed).
    pub fn restore(
        &mut self,
        state: OnPolicyState<R::Episode, M::Carry>,
        env_state: Option<&serde_json::Value>,
    ) -> Result<()> {
        let n = self.update.opt.state().m.len();
        if state.optimizer.m.len() != n {
            return Err(AlgoError::Checkpoint {
                path: "state".into(),
                reason: format!(
                    "optimizer state has {} moments for {n} parameters",
                    state.optimizer.m.len()
                ),
            });
        }
        if state.value_norm.is_some() != self.value_norm.is_some() {
            return Err(AlgoError::Checkpoint {
                path: "state".into(),
                reason: "the value normaliser does not match the config's value_norm".into(),
            });
        }
        if state.blocks.len() + 1 != self.place.total {
            return Err(AlgoError::Checkpoint {
                path: "state".into(),
                reason: format!(
                    "it holds {} data blocks but the config has {}",
                    state.blocks.len() + 1,
                    self.place.total
                ),
            });
        }
        // A feed-forward state has no memory; a recurrent one must fit the rows.
        let rows = self.blocks[0].envs.rows();
        let carry = if state.carry == M::Carry::default() {
            self.model.new_carry(rows)
        } else {
            state.carry
        };
        if !self.model.carry_fits(&carry, rows) {
            return Err(AlgoError::Checkpoint {
                path: "state".into(),
                reason: "the saved memory does not fit this model and its envs".into(),
            });
        }
        let mut all = vec![BlockState {
            action_rng: state.action_rng,
            shuffle_rng: state.shuffle_rng,
            env_state: env_state.cloned(),
        }];
        all.extend(state.blocks);
        let first = self.place.first;
        let mut env_started = state.env_started;
        for (k, blk) in self.blocks.iter_mut().enumerate() {
            let s = &all[first + k];
            blk.action_rng = s.action_rng.clone();
            if k == 0 {
                self.update.shuffle_rng = s.shuffle_rng.clone();
            } else {
                self.update.more_shuffle[k - 1] = s.shuffle_rng.clone();
            }
            match &s.env_state {
                Some(env) => blk.envs.restore(env)?,
                // Envs that could not save their state start anew from the seed.
                None => env_started = false,
            }
        }
        self.update.opt = Adam::from_state(*self.update.opt.config(), state.optimizer)?;
        // Only a single block carries memory: a recurrent model refuses more than one.
        self.blocks[0].carry = carry;
        self.global_step = state.global_step;
        self.updates = state.updates;
        self.episodes = state.episodes;
        self.recent = RecentEpisodes::from_vec(state.recent);
        self.env_started = env_started;
        self.value_norm = state.value_norm;
        self.seed = state.seed;
        Ok(())
    }

    /// The counters, as the trainer reads them.
    pub fn progress(&self) -> Progress {
        Progress {
            global_step: self.global_step,
            updates: self.updates,
            episodes: self.episodes,
        }
    }

    /// The core's part of a checkpoint: its state, the model's tensors, the envs' snapshot
    /// (where the envs can save it). Collective in a data-parallel run.
    pub fn export(&self) -> taper_train::Result<LearnerState> {
        let (state, env_state) = self.gathered_state()?;
        let mut s = LearnerState::new(
            serde_json::to_value(state).map_err(taper_train::TrainError::learner)?,
            self.model.to_tensors()?,
        );
        s.env_state = env_state;
        Ok(s)
    }

    /// Loads a checkpoint's weights (an error naming `env_id` when they do not fit it) and,
    /// with `resume`, the core's and the envs' state.
    pub fn import(&mut self, ckpt: &Checkpoint, resume: bool, env_id: &str) -> taper_train::Result<()> {
        let mut model = self.model.clone();
        model.load_tensors(&ckpt.tensors).map_err(|e| {
            taper_train::TrainError::checkpoint(&ckpt.dir, format!("its weights do not match env `{env_id}`: {e}"))
        })?;
        self.load_model(model)?;
        if resume {
            let st: OnPolicyState<R::Episode, M::Carry> = ckpt.algo_state()?;
            self.restore(st, ckpt.state.env_state.as_ref())?;
        }
        Ok(())
    }

    /// Replaces the model's weights by those of `model` (same shapes).
    pub fn load_model(&mut self, mut model: M) -> Result<()> {
        self.model.check_same_shape(&model)?;
        model.set_placement(&self.model.placement())?;
        self.model = model;
        Ok(())
    }
}
