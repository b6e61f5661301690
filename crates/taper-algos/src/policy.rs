//! The actor-critic model PPO, IPPO and MAPPO train: a policy MLP (categorical logits, or a
//! Gaussian mean with a state-independent log-std) and a separate value MLP, as in CleanRL's
//! `Agent`. It implements the model traits [`Actor`] and [`Critic`].

use crate::error::{AlgoError, Result};
use rand::Rng;
use serde::{Deserialize, Serialize};
use taper_critics::{Actor, Critic, ValueCritic};
use taper_envs::Space;
use taper_tensor::device::Placement;
use taper_tensor::distributions::{Categorical, DiagGaussian};
use taper_tensor::mlp::{Activation, Mlp, MlpCache, MlpInit};

/// Encodes raw observations as network inputs: one-hot for `Discrete`, concatenated one-hots
/// for `MultiDiscrete`, as is for `Box`.
pub fn encode_obs(space: &Space, raw: &[f32], rows: usize, out: &mut Vec<f32>) {
    match space {
        Space::Box { .. } => {
            out.clear();
            out.extend_from_slice(raw);
        }
        Space::Discrete { n } => {
            out.clear();
            out.resize(rows * n, 0.0);
            for r in 0..rows {
                let i = (raw[r] as usize).min(n - 1);
                out[r * n + i] = 1.0;
            }
        }
        Space::MultiDiscrete { nvec } => {
            let w: usize = nvec.iter().sum();
            out.clear();
            out.resize(rows * w, 0.0);
            for r in 0..rows {
                let mut off = 0;
                for (j, n) in nvec.iter().enumerate() {
                    let i = (raw[r * nvec.len() + j] as usize).min(n - 1);
                    out[r * w + off + i] = 1.0;
                    off += n;
                }
            }
        }
    }
}

/// Samples (or, with `deterministic`, takes the mode of) one action per row of the logits
/// `out` (`[n, k]`, the categorical's `k` classes); writes the actions and their
/// log-probabilities. The softmax policies' acting, feed-forward and recurrent.
pub(crate) fn sample_logits<R: Rng + ?Sized>(
    cat: &mut Categorical,
    out: &[f32],
    (n, k): (usize, usize),
    rng: &mut R,
    deterministic: bool,
    actions: &mut [f32],
    logp: &mut [f32],
) {
    for i in 0..n {
        cat.set_logits(&out[i * k..(i + 1) * k], None);
        let a = if deterministic { cat.mode() } else { cat.sample(rng) };
        actions[i] = a as f32;
        logp[i] = cat.log_prob(a);
    }
}

/// Policy and value networks for one observation and action space.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct ActorCritic {
    /// Observation space.
    pub obs_space: Space,
    /// Action space (`Discrete` or `Box`).
    pub act_space: Space,
    /// The policy network: logits, or the Gaussian mean.
    pub actor: Mlp,
    /// Log-std per action dimension (empty for discrete actions).
    pub log_std: Vec<f32>,
    /// The value network.
    pub critic: ValueCritic,
}

/// Scratch buffers for acting, reused between steps.
#[derive(Debug, Default)]
pub struct ActWorkspace {
    /// Actor activations.
    pub actor_cache: MlpCache,
    /// Critic activations.
    pub critic_cache: MlpCache,
    cat: Option<Categorical>,
    gauss: Option<DiagGaussian>,
}

/// The actor's part of an [`ActWorkspace`]: its activations and its distributions.
type ActorParts<'a> = (
    &'a mut MlpCache,
    &'a mut Option<Categorical>,
    &'a mut Option<DiagGaussian>,
);

impl ActorCritic {
    /// CleanRL's agent: `hidden` tanh layers, orthogonal init (√2 hidden, 0.01 policy head,
    /// 1.0 value head), zero biases, log-std `init_log_std`.
    pub fn new<R: Rng + ?Sized>(
        obs_space: &Space,
        act_space: &Space,
        hidden: &[usize],
        init_log_std: f32,
        rng_actor: &mut R,
        rng_critic: &mut R,
    ) -> Result<Self> {
        let in_dim = obs_space.encoded_dim();
        let (out, log_std) = match act_space {
            Space::Discrete { n } => (*n, Vec::new()),
            Space::Box { low, .. } => (low.len(), vec![init_log_std; low.len()]),
            Space::MultiDiscrete { .. } => {
                return Err(AlgoError::Unsupported {
                    algo: "PPO",
                    what: "MultiDiscrete action spaces yet".into(),
                })
            }
        };
        let mut sizes = vec![in_dim];
        sizes.extend_from_slice(hidden);
        sizes.push(out);
        let actor = Mlp::new(
            &sizes,
            Activation::Tanh,
            MlpInit::orthogonal(2f32.sqrt(), 0.01),
            rng_actor,
        )?;
        let critic = ValueCritic::new(in_dim, hidden, rng_critic)?;
        Ok(ActorCritic {
            obs_space: obs_space.clone(),
            act_space: act_space.clone(),
            actor,
            log_std,
            critic,
        })
    }

    /// [`ActorCritic::new`] with the critic on a different input of width `critic_dim` (e.g.
    /// MAPPO's global state) and its own hidden widths.
    #[allow(clippy::too_many_arguments)]
    pub fn centralized<R: Rng + ?Sized>(
        obs_space: &Space,
        act_space: &Space,
        hidden: &[usize],
        critic_dim: usize,
        critic_hidden: &[usize],
        init_log_std: f32,
        rng_actor: &mut R,
        rng_critic: &mut R,
    ) -> Result<Self> {
        let mut m = Self::new(obs_space, act_space, hidden, init_log_std, rng_actor, rng_critic)?;
        m.critic = ValueCritic::new(critic_dim, critic_hidden, rng_critic)?;
        Ok(m)
    }

    /// Sets where the actor and the critic compute (the log-std stays on the host).
    pub fn set_placement(&mut self, placement: &Placement) {
        self.actor.set_placement(placement.clone());
        self.critic.net.set_placement(placement.clone());
    }

    /// Where the networks compute.
    pub fn placement(&self) -> &Placement {
        self.actor.placement()
    }

    /// Whether actions are discrete.
    pub fn is_discrete(&self) -> bool {
        matches!(self.act_space, Space::Discrete { .. })
    }
    /// Width of one action as stored (1 for discrete).
    pub fn action_dim(&self) -> usize {
        self.act_space.flat_dim()
    }
    /// Width of an encoded observation.
    pub fn obs_dim(&self) -> usize {
        self.obs_space.encoded_dim()
    }

    /// Samples (or, with `deterministic`, takes the mode of) actions for `n` encoded
    /// observations; writes actions `[n, action_dim]` and their log-probabilities `[n]`.
    #[allow(clippy::too_many_arguments)]
    pub fn act<R: Rng + ?Sized>(
        &self,
        obs: &[f32],
        n: usize,
        rng: &mut R,
        deterministic: bool,
        ws: &mut ActWorkspace,
        actions: &mut [f32],
        logp: &mut [f32],
    ) -> Result<()> {
        let ActWorkspace {
            actor_cache,
            cat,
            gauss,
            ..
        } = ws;
        self.act_parts(obs, n, rng, deterministic, (actor_cache, cat, gauss), actions, logp)
    }

    /// [`ActorCritic::act`] on the actor's part of the workspace only (its activations and
    /// distributions), so that the critic's part can serve a value pass beside it.
    #[allow(clippy::too_many_arguments)]
    fn act_parts<R: Rng + ?Sized>(
        &self,
        obs: &[f32],
        n: usize,
        rng: &mut R,
        deterministic: bool,
        (cache, cat, gauss): ActorParts<'_>,
        actions: &mut [f32],
        logp: &mut [f32],
    ) -> Result<()> {
        crate::checks::holds("actions", n * self.action_dim(), actions.len())?;
        crate::checks::holds("log-probabilities", n, logp.len())?;
        let out = self.actor.forward(obs, n, cache)?;
        match self.act_space {
            Space::Discrete { n: k } => {
                let cat = cat.get_or_insert_with(|| Categorical::new(k));
                sample_logits(cat, out, (n, k), rng, deterministic, actions, logp);
            }
            _ => {
                let d = self.log_std.len();
                let g = gauss.get_or_insert_with(|| DiagGaussian::new(self.log_std.clone()));
                g.set_log_std(&self.log_std);
                for i in 0..n {
                    let mean = &out[i * d..(i + 1) * d];
                    let a = &mut actions[i * d..(i + 1) * d];
                    if deterministic {
                        a.copy_from_slice(mean);
                    } else {
                        g.sample(mean, rng, a);
                    }
                    logp[i] = g.log_prob(mean, a);
                }
            }
        }
        Ok(())
    }

    /// One rollout step: [`ActorCritic::act`] (sampling) on `obs` and
    /// [`ActorCritic::critic_values`] on `cin`. The two passes share nothing, so on a pool of
    /// more than one thread, with networks on the fast path, they run side by side (a
    /// fork-join); each computes exactly what it computes alone, so the results are the same
    /// at any thread count.
    #[allow(clippy::too_many_arguments)]
    pub fn act_and_values<R: Rng + Send + ?Sized>(
        &self,
        obs: &[f32],
        cin: &[f32],
        n: usize,
        rng: &mut R,
        ws: &mut ActWorkspace,
        actions: &mut [f32],
        logp: &mut [f32],
        values: &mut [f32],
    ) -> Result<()> {
        crate::checks::holds("values", n, values.len())?;
        let ActWorkspace {
            actor_cache,
            critic_cache,
            cat,
            gauss,
        } = ws;
        let mut act = || self.act_parts(obs, n, rng, false, (actor_cache, cat, gauss), actions, logp);
        let mut value = || -> Result<()> {
            self.critic.values_into(cin, n, critic_cache, &mut values[..n])?;
            Ok(())
        };
        let fast = !self.actor.placement().is_candle() && !self.critic.net.placement().is_candle();
        if fast && rayon::current_num_threads() > 1 {
            let (a, v) = rayon::join(act, value);
            a.and(v)
        } else {
            act()?;
            value()
        }
    }

    /// `V` of `n` critic inputs (encoded observations, or global states), reusing `ws`.
    pub fn critic_values(&self, obs: &[f32], n: usize, ws: &mut ActWorkspace, out: &mut [f32]) -> Result<()> {
        self.critic.values_into(obs, n, &mut ws.critic_cache, &mut out[..n])?;
        Ok(())
    }

    /// The model's tensors, named `actor.{l}.weight|bias`, `critic.{l}.weight|bias` and
    /// `actor_logstd`, as CleanRL's state dict.
    pub fn to_tensors(&self) -> Result<Vec<(String, candle_core::Tensor)>> {
        let mut v = self.actor.to_tensors("actor")?;
        v.extend(self.critic.net.to_tensors("critic")?);
        if !self.log_std.is_empty() {
            v.push((
                "actor_logstd".to_string(),
                taper_tensor::init::to_tensor(self.log_std.clone(), &[1, self.log_std.len()])?,
            ));
        }
        Ok(v)
    }

    /// Loads tensors written by [`ActorCritic::to_tensors`], checking every shape.
    pub fn load_tensors(&mut self, t: &std::collections::HashMap<String, candle_core::Tensor>) -> Result<()> {
        self.actor.load_tensors("actor", t)?;
        self.critic.net.load_tensors("critic", t)?;
        if !self.log_std.is_empty() {
            let ls = t.get("actor_logstd").ok_or_else(|| AlgoError::Checkpoint {
                path: "model.safetensors".into(),
                reason: "missing tensor `actor_logstd`".into(),
            })?;
            let v = ls
                .flatten_all()
                .and_then(|x| x.to_vec1::<f32>())
                .map_err(|e| AlgoError::Tensor(e.into()))?;
            if v.len() != self.log_std.len() {
                return Err(AlgoError::Checkpoint {
                    path: "model.safetensors".into(),
                    reason: format!("actor_logstd has {} values, expected {}", v.len(), self.log_std.len()),
                });
            }
            self.log_std = v;
        }
        Ok(())
    }
}

fn critic_err(e: AlgoError) -> taper_critics::CriticError {
    taper_critics::CriticError::Invalid {
        name: "actor",
        reason: e.to_string(),
    }
}

impl Actor for ActorCritic {
    fn obs_dim(&self) -> usize {
        self.obs_space.encoded_dim()
    }
    fn logits_dim(&self) -> usize {
        self.actor.output_dim()
    }
    fn action_dim(&self) -> usize {
        self.act_space.flat_dim()
    }
    fn logits(&self, obs: &[f32], n: usize, out: &mut [f32]) -> taper_critics::Result<()> {
        let mut cache = MlpCache::default();
        out.copy_from_slice(self.actor.forward(obs, n, &mut cache)?);
        Ok(())
    }
    fn sample(
        &self,
        obs: &[f32],
        n: usize,
        rng: &mut dyn rand::RngCore,
        deterministic: bool,
        actions: &mut [f32],
        logp: &mut [f32],
    ) -> taper_critics::Result<()> {
        let mut ws = ActWorkspace::default();
        self.act(obs, n, rng, deterministic, &mut ws, actions, logp)
            .map_err(critic_err)
    }
    fn log_prob_entropy(
        &self,
        obs: &[f32],
        actions: &[f32],
        n: usize,
        logp: &mut [f32],
        entropy: &mut [f32],
    ) -> taper_critics::Result<()> {
        let mut cache = MlpCache::default();
        let out = self.actor.forward(obs, n, &mut cache)?;
        let (k, ad) = (self.actor.output_dim(), self.act_space.flat_dim());
        if self.is_discrete() {
            let mut cat = Categorical::new(k);
            for i in 0..n {
                cat.set_logits(&out[i * k..(i + 1) * k], None);
                logp[i] = cat.log_prob(actions[i] as usize);
                entropy[i] = cat.entropy();
            }
        } else {
            let g = DiagGaussian::new(self.log_std.clone());
            for i in 0..n {
                logp[i] = g.log_prob(&out[i * k..(i + 1) * k], &actions[i * ad..(i + 1) * ad]);
                entropy[i] = g.entropy();
            }
        }
        Ok(())
    }
    fn obs_gradient(&self, obs: &[f32], n: usize, dlogits: &[f32], dobs: &mut [f32]) -> taper_critics::Result<()> {
        Ok(self.actor.input_gradient(obs, n, dlogits, dobs)?)
    }
}

impl Critic for ActorCritic {
    fn input_dim(&self) -> usize {
        self.critic.net.input_dim()
    }
    fn values(&self, inputs: &[f32], n: usize, out: &mut [f32]) -> taper_critics::Result<()> {
        self.critic.values(inputs, n, out)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use taper_tensor::rng::{stream, Purpose};

    /// A rollout step's act-and-value on a pool of two threads (the passes side by side) gives
    /// the bits of `act` then `critic_values` on one, and leaves the sampler's stream where they
    /// leave it; for discrete and Gaussian policies, a critic reading other inputs than the
    /// actor, and a batch the networks split.
    #[test]
    fn act_and_values_side_by_side_equals_one_after_the_other() {
        let (mut r1, mut r2) = (stream(3, Purpose::Init, 0), stream(3, Purpose::Init, 1));
        for act in [Space::Discrete { n: 3 }, Space::uniform_box(2, -1.0, 1.0)] {
            let obs_space = Space::uniform_box(6, -5.0, 5.0);
            let mut m = ActorCritic::new(&obs_space, &act, &[64, 64], -0.3, &mut r1, &mut r2).unwrap();
            m.critic = ValueCritic::new(9, &[64, 64], &mut r1).unwrap();
            let ad = m.action_dim();
            for n in [4, 48, 1024] {
                let obs: Vec<f32> = (0..n * 6).map(|i| (i as f32 * 0.37).sin()).collect();
                let cin: Vec<f32> = (0..n * 9).map(|i| (i as f32 * 0.11).cos()).collect();
                let mut rng = stream(5, Purpose::Action, 0);
                let (mut a, mut lp, mut v) = (vec![0f32; n * ad], vec![0f32; n], vec![0f32; n]);
                let mut ws = ActWorkspace::default();
                m.act(&obs, n, &mut rng, false, &mut ws, &mut a, &mut lp).unwrap();
                m.critic_values(&cin, n, &mut ws, &mut v).unwrap();
                let pool = rayon::ThreadPoolBuilder::new().num_threads(2).build().unwrap();
                let mut rng2 = stream(5, Purpose::Action, 0);
                let (mut a2, mut lp2, mut v2) = (vec![0f32; n * ad], vec![0f32; n], vec![0f32; n]);
                let mut ws2 = ActWorkspace::default();
                pool.install(|| {
                    assert_eq!(rayon::current_num_threads(), 2);
                    m.act_and_values(&obs, &cin, n, &mut rng2, &mut ws2, &mut a2, &mut lp2, &mut v2)
                })
                .unwrap();
                let bits = |x: &[f32]| x.iter().map(|v| v.to_bits()).collect::<Vec<_>>();
                assert_eq!(bits(&a), bits(&a2), "actions, {n} rows");
                assert_eq!(bits(&lp), bits(&lp2), "log-probabilities, {n} rows");
                assert_eq!(bits(&v), bits(&v2), "values, {n} rows");
                assert_eq!(rng.get_word_pos(), rng2.get_word_pos(), "the sampler's stream");
                // Buffers too short for the rows are errors, not panics.
                let mut short = vec![0f32; n - 1];
                assert!(m
                    .act_and_values(&obs, &cin, n, &mut rng2, &mut ws2, &mut a2, &mut lp2, &mut short)
                    .is_err());
                assert!(m
                    .act_and_values(&obs, &cin, n, &mut rng2, &mut ws2, &mut a2, &mut short, &mut v2)
                    .is_err());
                assert!(m
                    .act(&obs, n, &mut rng2, false, &mut ws2, &mut short, &mut lp2)
                    .is_err());
            }
        }
    }

    /// The trait methods agree with the learner's own: sampling, log-probabilities, values;
    /// and the observation gradient of a scalar of the logits equals finite differences.
    #[test]
    fn model_traits_agree_with_finite_differences() {
        let (mut r1, mut r2) = (stream(2, Purpose::Init, 0), stream(2, Purpose::Init, 1));
        for act in [Space::Discrete { n: 3 }, Space::uniform_box(2, -1.0, 1.0)] {
            let obs_space = Space::uniform_box(4, -5.0, 5.0);
            let m = ActorCritic::new(&obs_space, &act, &[16], -0.3, &mut r1, &mut r2).unwrap();
            let obs: Vec<f32> = (0..8).map(|i| (i as f32 * 0.37).sin()).collect();
            let ad = Actor::action_dim(&m);
            let (mut a, mut lp) = (vec![0f32; 2 * ad], vec![0f32; 2]);
            let mut rng = stream(5, Purpose::Action, 0);
            Actor::sample(&m, &obs, 2, &mut rng, false, &mut a, &mut lp).unwrap();
            let (mut lp2, mut h) = (vec![0f32; 2], vec![0f32; 2]);
            m.log_prob_entropy(&obs, &a, 2, &mut lp2, &mut h).unwrap();
            for i in 0..2 {
                assert!((lp[i] - lp2[i]).abs() < 1e-5 && h[i] > 0.0);
            }
            let mut v = vec![0f32; 2];
            Critic::values(&m, &obs, 2, &mut v).unwrap();
            let mut v2 = vec![0f32; 2];
            m.critic_values(&obs, 2, &mut ActWorkspace::default(), &mut v2).unwrap();
            assert_eq!(v, v2);
            // s = Σ w·logits; ∂s/∂obs by the trait against central differences.
            let k = m.logits_dim();
            let w: Vec<f32> = (0..2 * k).map(|i| 0.5 - i as f32 * 0.2).collect();
            let s = |o: &[f32]| {
                let mut l = vec![0f32; 2 * k];
                m.logits(o, 2, &mut l).unwrap();
                l.iter().zip(&w).map(|(a, b)| a * b).sum::<f32>()
            };
            let mut g = vec![0f32; 8];
            m.obs_gradient(&obs, 2, &w, &mut g).unwrap();
            for j in 0..8 {
                let (mut p, mut q) = (obs.clone(), obs.clone());
                p[j] += 1e-2;
                q[j] -= 1e-2;
                let fd = (s(&p) - s(&q)) / 2e-2;
                assert!((fd - g[j]).abs() < 2e-3, "obs {j}: {fd} vs {}", g[j]);
            }
        }
    }
}
