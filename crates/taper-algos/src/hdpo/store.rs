//! HDPO for one store ([`OneStore`], learned by [`Hdpo`]): the store's dynamics
//! (`taper_envs::inventory::single::store_step`, the env's own) simulated on sampled demand
//! paths, and the gradient of the total cost through them.
//!
//! Two implementations of the same simulation and its gradient:
//! - [`loss_and_grad`]: hand-written backpropagation through time on f32 buffers, with
//!   taper's MLP (fast; what training uses);
//! - [`candle_loss_and_grad`]: the batched simulator on candle tensors with candle's autodiff
//!   (the reference; the tests check that both give the same loss and gradient).
//!
//! `min`/`max` get their ordinary subgradients (1 on the active branch), as in the paper's
//! PyTorch code; orders are continuous in training and rounded only at test time.
//!
//! The policy maps the state `x` (on hand and pipeline) to `q = μ·softplus(MLP(x/μ) + 1)`, with μ
//! the mean demand; the MLP has ELU hidden layers (3 × 32, the repository's vanilla one-store
//! network). Scaling by μ is taper's choice, so one learning rate fits every demand level.

use super::{HdpoConfig, HdpoLearner, Problem};
use crate::error::{AlgoError, Result};
use crate::hdpo::PathCost;
use rand::Rng;
use rand_chacha::ChaCha8Rng;
use serde::{Deserialize, Serialize};
use std::collections::HashMap;
use taper_envs::inventory::single::{on_hand_before_demand, store_step, store_step_vjp};
use taper_envs::inventory::{Demand, StoreConfig};
use taper_envs::{Kwargs, Space};
use taper_tensor::device::Placement;
use taper_tensor::mlp::{Activation, Mlp, MlpCache, MlpInit};
use taper_tensor::optim::Adam;
use taper_train::checkpoint::{ModelShape, NamedTensors};

/// Demand paths and initial states, sampled up front ("hindsight").
#[derive(Debug, Clone, PartialEq)]
pub struct Scenarios {
    /// Paths.
    pub paths: usize,
    /// Periods per path.
    pub periods: usize,
    /// Demand `[paths, periods]`.
    pub demand: Vec<f32>,
    /// Initial states `[paths, state_dim]`.
    pub init: Vec<f32>,
}

impl Scenarios {
    /// Samples `paths` paths of `periods` periods: demand from the store's distribution and
    /// initial states with every entry U(0, 1) × mean demand (the repository's choice).
    pub fn sample(store: &StoreConfig, paths: usize, periods: usize, rng: &mut ChaCha8Rng) -> Self {
        let sd = store.state_dim();
        let m = store.demand.mean();
        let init = (0..paths * sd).map(|_| (rng.random::<f64>() * m) as f32).collect();
        let demand = (0..paths * periods).map(|_| store.demand.sample(rng) as f32).collect();
        Scenarios {
            paths,
            periods,
            demand,
            init,
        }
    }
}

/// The store policy: `q = μ·softplus(MLP(x/μ) + 1)`.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct StorePolicy {
    /// The network, state → one output.
    pub net: Mlp,
    /// Mean demand μ.
    pub scale: f32,
}

fn softplus(x: f32) -> f32 {
    if x > 20.0 {
        x
    } else {
        x.exp().ln_1p()
    }
}

fn sigmoid(x: f32) -> f32 {
    1.0 / (1.0 + (-x).exp())
}

impl StorePolicy {
    /// A policy for `store` with seeded initial weights (PyTorch's default init).
    pub fn new(store: &StoreConfig, hidden: &[usize], rng: &mut ChaCha8Rng) -> Result<Self> {
        let mut sizes = vec![store.state_dim()];
        sizes.extend_from_slice(hidden);
        sizes.push(1);
        let net = Mlp::new(&sizes, Activation::Elu, MlpInit::TorchDefault, rng)?;
        Ok(StorePolicy {
            net,
            scale: store.demand.mean() as f32,
        })
    }
}

fn check_store(store: &StoreConfig, policy: &StorePolicy) -> Result<()> {
    if policy.net.input_dim() != store.state_dim() {
        return Err(AlgoError::Config {
            field: "policy",
            reason: format!(
                "policy takes {} state values, the store has {}",
                policy.net.input_dim(),
                store.state_dim()
            ),
        });
    }
    Ok(())
}

/// Average cost per period (periods `≥ ignore`, all paths) of `policy` on `scen`, orders
/// rounded to integers if `round`, with its standard error over the paths. No gradient.
pub fn evaluate_cost(
    policy: &StorePolicy,
    store: &StoreConfig,
    scen: &Scenarios,
    ignore: usize,
    round: bool,
) -> Result<PathCost> {
    check_store(store, policy)?;
    let sd = store.state_dim();
    let mu = policy.scale;
    let chunk = 1024;
    let mut cache = MlpCache::default();
    let (mut total, mut count) = (0f64, 0usize);
    let mut per_path = vec![0f64; scen.paths];
    let mut z = Vec::new();
    for start in (0..scen.paths).step_by(chunk) {
        let b = chunk.min(scen.paths - start);
        let mut x: Vec<f32> = scen.init[start * sd..(start + b) * sd].to_vec();
        for t in 0..scen.periods {
            z.clear();
            z.extend(x.iter().map(|v| v / mu));
            let out = policy.net.forward(&z, b, &mut cache)?;
            for r in 0..b {
                let mut q = mu * softplus(out[r] + 1.0);
                if round {
                    q = q.round();
                }
                let d = scen.demand[(start + r) * scen.periods + t];
                let xr = &mut x[r * sd..(r + 1) * sd];
                let c = store_step(store, xr, q, d);
                if t >= ignore {
                    total += c as f64;
                    count += 1;
                    per_path[start + r] += c as f64;
                }
            }
        }
    }
    let counted = scen.periods.saturating_sub(ignore).max(1) as f64;
    per_path.iter_mut().for_each(|c| *c /= counted);
    Ok(PathCost::new(total, count, &per_path))
}

/// Scratch space for [`loss_and_grad`], reused between steps.
#[derive(Debug, Default)]
pub struct BpttWorkspace {
    caches: Vec<MlpCache>,
    z: Vec<Vec<f32>>,
    a: Vec<Vec<f32>>,
    o: Vec<Vec<f32>>,
    d: Vec<Vec<f32>>,
}

/// The mean cost per period and path over the paths `idx` of `scen` (all periods), and its
/// gradient with respect to the policy's parameters, written into `grads`; by hand-written
/// backpropagation through time.
pub fn loss_and_grad(
    policy: &StorePolicy,
    store: &StoreConfig,
    scen: &Scenarios,
    idx: &[usize],
    ws: &mut BpttWorkspace,
    grads: &mut [f32],
) -> Result<f64> {
    check_store(store, policy)?;
    let (b, t_len, sd) = (idx.len(), scen.periods, store.state_dim());
    let mu = policy.scale;
    let w = 1.0 / (b * t_len) as f32;
    ws.caches.resize_with(t_len, Default::default);
    for v in [&mut ws.z, &mut ws.a, &mut ws.o, &mut ws.d] {
        v.resize_with(t_len, Vec::new);
    }
    let mut x: Vec<f32> = Vec::with_capacity(b * sd);
    for &i in idx {
        x.extend_from_slice(&scen.init[i * sd..(i + 1) * sd]);
    }
    let mut loss = 0f64;
    for t in 0..t_len {
        let z = &mut ws.z[t];
        z.clear();
        z.extend(x.iter().map(|v| v / mu));
        let out = policy.net.forward(z, b, &mut ws.caches[t])?;
        let (a_t, o_t, d_t) = (&mut ws.a[t], &mut ws.o[t], &mut ws.d[t]);
        a_t.resize(b, 0.0);
        o_t.resize(b, 0.0);
        d_t.resize(b, 0.0);
        for r in 0..b {
            let o = out[r];
            let q = mu * softplus(o + 1.0);
            let d = scen.demand[idx[r] * t_len + t];
            let xr = &mut x[r * sd..(r + 1) * sd];
            a_t[r] = on_hand_before_demand(store, xr, q);
            o_t[r] = o;
            d_t[r] = d;
            loss += store_step(store, xr, q, d) as f64;
        }
    }
    grads.iter_mut().for_each(|g| *g = 0.0);
    let mut lam = vec![0f32; b * sd];
    let mut new_lam = vec![0f32; b * sd];
    let mut dout = vec![0f32; b];
    let mut dz = vec![0f32; b * sd];
    for t in (0..t_len).rev() {
        for r in 0..b {
            let (a, d, o) = (ws.a[t][r], ws.d[t][r], ws.o[t][r]);
            let gq = store_step_vjp(
                store,
                a,
                d,
                &lam[r * sd..(r + 1) * sd],
                w,
                &mut new_lam[r * sd..(r + 1) * sd],
            );
            dout[r] = gq * mu * sigmoid(o + 1.0);
        }
        policy
            .net
            .backward_full(&ws.z[t], &mut ws.caches[t], &dout, grads, Some(&mut dz))?;
        for (v, g) in new_lam.iter_mut().zip(&dz) {
            *v += g / mu;
        }
        std::mem::swap(&mut lam, &mut new_lam);
    }
    Ok(loss * w as f64)
}

/// The same loss and gradient with the simulator written in candle tensor ops and candle's
/// autodiff: the batched differentiable simulator. Slower; the reference for
/// [`loss_and_grad`].
pub fn candle_loss_and_grad(
    policy: &StorePolicy,
    store: &StoreConfig,
    scen: &Scenarios,
    idx: &[usize],
) -> Result<(f64, Vec<f32>)> {
    use candle_core::{Device, Tensor, Var};
    check_store(store, policy)?;
    let ce = |e: candle_core::Error| AlgoError::Tensor(e.into());
    let dev = Device::Cpu;
    let (b, t_len, sd, l) = (idx.len(), scen.periods, store.state_dim(), store.lead_time);
    let mu = policy.scale as f64;
    let vars: Vec<(String, Var)> = policy
        .net
        .to_tensors("n")?
        .into_iter()
        .map(|(k, t)| Var::from_tensor(&t).map(|v| (k, v)))
        .collect::<candle_core::Result<_>>()
        .map_err(ce)?;
    let params: Vec<Var> = vars.iter().map(|(_, v)| v.clone()).collect();
    let column = |vals: Vec<f32>| Tensor::from_vec(vals, (b, 1), &dev);
    let mut x: Vec<Tensor> = (0..sd)
        .map(|j| column(idx.iter().map(|&i| scen.init[i * sd + j]).collect()))
        .collect::<candle_core::Result<_>>()
        .map_err(ce)?;
    let mut total: Option<Tensor> = None;
    let mut run = || -> candle_core::Result<Tensor> {
        for t in 0..t_len {
            let h = candle_elu_mlp(&params, (Tensor::cat(&x, 1)? / mu)?)?;
            // q = μ·softplus(o + 1) = μ·ln(1 + e^{o+1}).
            let q = (((h + 1.0)?.exp()? + 1.0)?.log()? * mu)?;
            let d = column(idx.iter().map(|&i| scen.demand[i * t_len + t]).collect())?;
            if l == 0 {
                x[0] = (&x[0] + &q)?;
            }
            let a = x[0].clone();
            let over = (&a - &d)?.relu()?;
            let under = (&d - &a)?.relu()?;
            let c = ((&over * store.h)? + (&under * store.p)?)?.sum_all()?;
            total = Some(match total.take() {
                None => c,
                Some(s) => (s + c)?,
            });
            let post = if store.backlog { (&a - &d)? } else { over };
            match l {
                0 => x[0] = post,
                1 => x[0] = (post + &q)?,
                _ => {
                    let mut next = vec![(post + &x[1])?];
                    next.extend(x[2..].iter().cloned());
                    next.push(q);
                    x = next;
                }
            }
        }
        total.take().unwrap() / (b * t_len) as f64
    };
    let loss = run().map_err(ce)?;
    let gs = loss.backward().map_err(ce)?;
    let mut flat = Vec::with_capacity(policy.net.num_params());
    for (_, v) in &vars {
        let g = gs
            .get(v.as_tensor())
            .map(|g| g.flatten_all().and_then(|g| g.to_vec1::<f32>()));
        match g {
            Some(g) => flat.extend(g.map_err(ce)?),
            None => flat.extend(std::iter::repeat_n(0.0, v.as_tensor().elem_count())),
        }
    }
    Ok((loss.to_scalar::<f32>().map_err(ce)? as f64, flat))
}

/// The ELU MLP of taper's `Mlp` (ELU hidden layers, linear output) in candle ops, on the
/// variables `[w0, b0, w1, b1, …]` (PyTorch layout), so candle's autodiff reaches them.
pub(crate) fn candle_elu_mlp(
    vars: &[candle_core::Var],
    mut h: candle_core::Tensor,
) -> candle_core::Result<candle_core::Tensor> {
    let layers = vars.len() / 2;
    for li in 0..layers {
        h = h
            .matmul(&vars[2 * li].as_tensor().t()?)?
            .broadcast_add(vars[2 * li + 1].as_tensor())?;
        if li + 1 < layers {
            // ELU as relu(h) + exp(min(h, 0)) − 1.
            h = ((h.relu()? + h.minimum(0f32)?.exp()?)? - 1.0)?;
        }
    }
    Ok(h)
}

/// HDPO for one store.
pub type Hdpo = HdpoLearner<OneStore>;

/// One store as an HDPO [`Problem`].
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct OneStore {
    /// The store.
    pub store: StoreConfig,
}

impl OneStore {
    /// The problem of a store.
    pub fn new(store: StoreConfig) -> Result<Self> {
        store.validate()?;
        Ok(OneStore { store })
    }
}

impl Problem for OneStore {
    type Policy = StorePolicy;
    type Scenarios = Scenarios;
    type Workspace = BpttWorkspace;
    fn from_env(env_id: &str, env_kwargs: &Kwargs) -> Result<Self> {
        OneStore::new(taper_envs::registry::inventory_config(env_id, env_kwargs)?)
    }
    fn new_policy(&self, config: &HdpoConfig, rng: &mut ChaCha8Rng) -> Result<StorePolicy> {
        StorePolicy::new(&self.store, &config.hidden, rng)
    }
    fn num_params(p: &StorePolicy) -> usize {
        p.net.num_params()
    }
    fn sample(&self, paths: usize, periods: usize, rng: &mut ChaCha8Rng) -> Scenarios {
        Scenarios::sample(&self.store, paths, periods, rng)
    }
    fn loss_and_grad(
        &self,
        p: &StorePolicy,
        scen: &Scenarios,
        idx: &[usize],
        ws: &mut BpttWorkspace,
        grads: &mut [f32],
    ) -> Result<f64> {
        loss_and_grad(p, &self.store, scen, idx, ws, grads)
    }
    fn cost(&self, p: &StorePolicy, scen: &Scenarios, ignore: usize, test: bool) -> Result<PathCost> {
        evaluate_cost(p, &self.store, scen, ignore, test && self.rounds())
    }
    fn set_placement(p: &mut StorePolicy, placement: &Placement) {
        p.net.set_placement(placement.clone());
    }
    fn adam_step(p: &mut StorePolicy, opt: &mut Adam, g: &[f32]) -> Result<()> {
        Ok(opt.step(&mut [(p.net.params_mut(), g)])?)
    }
    fn tensors(p: &StorePolicy) -> Result<NamedTensors> {
        Ok(p.net.to_tensors("policy")?)
    }
    fn load_tensors(p: &mut StorePolicy, t: &HashMap<String, candle_core::Tensor>) -> Result<()> {
        Ok(p.net.load_tensors("policy", t)?)
    }
    fn model_shape(&self, config: &HdpoConfig) -> ModelShape {
        ModelShape {
            obs_space: Space::uniform_box(self.store.state_dim(), f32::NEG_INFINITY, f32::INFINITY),
            act_space: Space::Box {
                low: vec![0.0],
                high: vec![self.store.max_order as f32],
            },
            hidden: config.hidden.clone(),
        }
    }
    fn order_dim(&self) -> usize {
        1
    }
    fn orders(&self, p: &StorePolicy, obs: &[f32], round: bool, out: &mut [f32]) -> Result<()> {
        check_store(&self.store, p)?;
        if obs.len() != self.store.state_dim() || out.len() != 1 {
            return Err(AlgoError::Config {
                field: "obs",
                reason: format!(
                    "the policy reads {} state values and orders 1; got {} and {}",
                    self.store.state_dim(),
                    obs.len(),
                    out.len()
                ),
            });
        }
        let z: Vec<f32> = obs.iter().map(|v| v / p.scale).collect();
        let mut cache = MlpCache::default();
        let o = p.net.forward(&z, 1, &mut cache)?[0];
        let mut v = p.scale * softplus(o + 1.0);
        if round {
            v = v.round();
        }
        out[0] = v.clamp(0.0, self.store.max_order as f32);
        Ok(())
    }
    fn rounds(&self) -> bool {
        matches!(self.store.demand, Demand::Poisson { .. })
    }
    fn unit(&self) -> &'static str {
        "per period"
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use taper_tensor::rng::{stream, Purpose};

    /// The hand-written BPTT equals candle's autodiff through the candle simulator, for lost
    /// sales and backlog, L = 0, 1, 2, 4.
    #[test]
    fn bptt_matches_candle_autodiff() {
        for backlog in [false, true] {
            for l in [0usize, 1, 2, 4] {
                let base = if backlog {
                    StoreConfig::backlogged()
                } else {
                    StoreConfig::lost_sales()
                };
                let store = StoreConfig { lead_time: l, ..base };
                let mut rng = stream(3, Purpose::Init, l as u64);
                let policy = StorePolicy::new(&store, &[8, 8], &mut rng).unwrap();
                let mut srng = stream(4, Purpose::Other(1), 0);
                let scen = Scenarios::sample(&store, 16, 7, &mut srng);
                let idx: Vec<usize> = vec![3, 0, 7, 11, 5];
                let mut grads = vec![0f32; policy.net.num_params()];
                let loss =
                    loss_and_grad(&policy, &store, &scen, &idx, &mut BpttWorkspace::default(), &mut grads).unwrap();
                let (closs, cgrads) = candle_loss_and_grad(&policy, &store, &scen, &idx).unwrap();
                assert!(
                    (loss - closs).abs() < 1e-4 * (1.0 + closs.abs()),
                    "L={l} backlog={backlog}: {loss} vs {closs}"
                );
                for (i, (a, b)) in grads.iter().zip(&cgrads).enumerate() {
                    assert!(
                        (a - b).abs() < 1e-4 * (1.0 + b.abs()),
                        "L={l} backlog={backlog} grad {i}: {a} vs {b}"
                    );
                }
            }
        }
    }

    #[test]
    fn bad_configs() {
        assert!(HdpoConfig {
            batch_size: 10_000,
            ..HdpoConfig::default()
        }
        .validate()
        .is_err());
        assert!(HdpoConfig {
            learning_rate: -1.0,
            ..HdpoConfig::default()
        }
        .validate()
        .is_err());
        assert!(OneStore::new(StoreConfig {
            h: -1.0,
            ..StoreConfig::lost_sales()
        })
        .is_err());
    }
}
