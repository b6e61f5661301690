//! HDPO on inventory networks (a serial chain, or one warehouse with many stores), with the
//! symmetry-aware policy of Alvo, Russo & Kanoria (arXiv 2306.11246 v1/v2).
//!
//! The policy ([`NetworkPolicy`]) has three networks:
//! - a **context** net reads the whole (scaled) state and outputs a context vector through a
//!   sigmoid;
//! - an **upstream** net reads the upstream stages' states and the context and orders
//!   `bound·sigmoid(·)` for each upstream stage, with `bound = 4 × Σ store means`;
//! - one **store** net, with weights shared by every store, reads a store's own state (padded
//!   to the longest store lead time), its parameters (mean, std, p, h, L) and the context, and
//!   asks for `μ_i·softplus(· + 1)`.
//!
//! The simulator then fills the store orders from the warehouse's on hand, scaling all of them by
//! the same fraction when they exceed it (proportional allocation; see
//! `taper_envs::inventory::network`). Because the store net is shared, one policy serves any
//! number of stores with the same features.
//!
//! As for one store, the gradient is computed two ways that the tests compare: hand-written
//! backpropagation through time on f32 buffers ([`network_loss_and_grad`], what training uses),
//! and candle's autodiff through [`candle_network_step`], the batched differentiable simulator
//! on candle tensors ([`candle_network_loss_and_grad`]).

use super::{HdpoConfig, HdpoLearner, Problem};
use crate::error::{AlgoError, Result};
use crate::hdpo::PathCost;
use rand::Rng;
use rand_chacha::ChaCha8Rng;
use serde::{Deserialize, Serialize};
use std::collections::HashMap;
use taper_envs::inventory::{NetScenarios, Network};
use taper_envs::{Kwargs, Space};
use taper_tensor::device::Placement;
use taper_tensor::mlp::{Activation, Mlp, MlpCache, MlpInit};
use taper_tensor::optim::Adam;
use taper_train::checkpoint::{ModelShape, NamedTensors};

/// Per-store features the store net sees besides its state.
const FEATS: usize = 5;

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

/// The symmetry-aware policy. See the module doc.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct NetworkPolicy {
    /// State → context (sigmoid applied after).
    pub context: Mlp,
    /// Upstream states ⊕ context → one output per upstream stage.
    pub upstream: Mlp,
    /// Store state ⊕ features ⊕ context → one output; shared by the stores.
    pub store: Mlp,
    /// The scale of states in the inputs: the mean of the store means.
    pub scale: f32,
    /// Upper bound of upstream orders.
    pub bound: f32,
    /// The longest store lead time (width of a store's state input).
    pub store_width: usize,
    /// Store features `[n, 5]`: mean/scale, std/scale, p/10, h, L/4.
    pub store_feats: Vec<f32>,
    /// Store means.
    pub store_means: Vec<f32>,
}

impl NetworkPolicy {
    /// A policy for `net`: context width `context` (one hidden layer of that width), upstream
    /// hidden widths `upstream_hidden`, store hidden widths `store_hidden`, seeded weights.
    pub fn new<R: Rng + ?Sized>(
        net: &Network,
        context: usize,
        upstream_hidden: &[usize],
        store_hidden: &[usize],
        rng: &mut R,
    ) -> Result<Self> {
        let cfg = net.config();
        let (m, sd) = (net.upstream(), net.state_dim());
        let up_dim = net.slot(m).0;
        let store_width = cfg.stores.iter().map(|s| s.lead_time).max().unwrap_or(1);
        let ctx = Mlp::new(&[sd, context, context], Activation::Elu, MlpInit::TorchDefault, rng)?;
        let mut us = vec![up_dim + context];
        us.extend_from_slice(upstream_hidden);
        us.push(m);
        let upstream = Mlp::new(&us, Activation::Elu, MlpInit::TorchDefault, rng)?;
        let mut ss = vec![store_width + FEATS + context];
        ss.extend_from_slice(store_hidden);
        ss.push(1);
        let store = Mlp::new(&ss, Activation::Elu, MlpInit::TorchDefault, rng)?;
        Ok(Self::assemble(net, ctx, upstream, store))
    }

    fn assemble(net: &Network, context: Mlp, upstream: Mlp, store: Mlp) -> Self {
        let cfg = net.config();
        let total: f64 = cfg.stores.iter().map(|s| s.mean).sum();
        let scale = (total / cfg.stores.len() as f64) as f32;
        let store_width = cfg.stores.iter().map(|s| s.lead_time).max().unwrap_or(1);
        let store_feats = cfg
            .stores
            .iter()
            .flat_map(|s| {
                [
                    s.mean as f32 / scale,
                    s.std as f32 / scale,
                    s.p as f32 / 10.0,
                    s.h as f32,
                    s.lead_time as f32 / 4.0,
                ]
            })
            .collect();
        NetworkPolicy {
            context,
            upstream,
            store,
            scale,
            bound: 4.0 * total as f32,
            store_width,
            store_feats,
            store_means: cfg.stores.iter().map(|s| s.mean as f32).collect(),
        }
    }

    /// Rebuilds a policy for `net` from the three networks (e.g. loaded from a checkpoint);
    /// errors when their shapes do not fit `net` (e.g. a policy trained for another number of
    /// upstream stages, or other store lead times).
    pub fn from_parts(net: &Network, context: Mlp, upstream: Mlp, store: Mlp) -> Result<Self> {
        let p = Self::assemble(net, context, upstream, store);
        p.check(net)?;
        Ok(p)
    }

    /// Errors unless the policy's input and output sizes fit `net`.
    pub fn check(&self, net: &Network) -> Result<()> {
        let m = net.upstream();
        let c = self.context.output_dim();
        let up_dim = net.slot(m).0;
        let ok = self.context.input_dim() == net.state_dim()
            && self.upstream.input_dim() == up_dim + c
            && self.upstream.output_dim() == m
            && self.store.input_dim() == self.store_width + FEATS + c
            && self.store.output_dim() == 1
            && self.store_means.len() == net.stores();
        if ok {
            Ok(())
        } else {
            Err(AlgoError::Config {
                field: "policy",
                reason: format!(
                    "the policy was built for a network with a state of {} values, {} upstream stages and {} stores; \
                     this network has {}, {} and {}",
                    self.context.input_dim(),
                    self.upstream.output_dim(),
                    self.store_means.len(),
                    net.state_dim(),
                    m,
                    net.stores()
                ),
            })
        }
    }

    /// All parameters (context, upstream, store).
    pub fn num_params(&self) -> usize {
        self.context.num_params() + self.upstream.num_params() + self.store.num_params()
    }

    /// The weights as named tensors (`context.*`, `upstream.*`, `store.*`).
    pub fn to_tensors(&self) -> Result<Vec<(String, candle_core::Tensor)>> {
        let mut v = self.context.to_tensors("context")?;
        v.extend(self.upstream.to_tensors("upstream")?);
        v.extend(self.store.to_tensors("store")?);
        Ok(v)
    }

    /// Orders for a batch of `b` states `x` (`[b, state_dim]`) into `tape.q` (`[b, m + n]`),
    /// keeping what the backward pass needs in `tape`.
    pub fn forward(&self, net: &Network, x: &[f32], b: usize, tape: &mut PeriodTape) -> Result<()> {
        let (m, n, sd, nloc) = (net.upstream(), net.stores(), net.state_dim(), net.locations());
        let c = self.context.output_dim();
        let up_dim = net.slot(m).0;
        let sw = self.store_width;
        let s_in_w = sw + FEATS + c;
        let inv = 1.0 / self.scale;
        tape.b = b;
        tape.x.clear();
        tape.x.extend_from_slice(&x[..b * sd]);
        tape.z.clear();
        tape.z.extend(x[..b * sd].iter().map(|v| v * inv));
        let co = self.context.forward(&tape.z, b, &mut tape.cc)?;
        tape.c.clear();
        tape.c.extend(co.iter().map(|&v| sigmoid(v)));
        tape.u_in.clear();
        for r in 0..b {
            tape.u_in.extend_from_slice(&tape.z[r * sd..r * sd + up_dim]);
            tape.u_in.extend_from_slice(&tape.c[r * c..(r + 1) * c]);
        }
        tape.s_in.clear();
        tape.s_in.resize(b * n * s_in_w, 0.0);
        for r in 0..b {
            for i in 0..n {
                let (o, l) = net.slot(m + i);
                let row = &mut tape.s_in[(r * n + i) * s_in_w..][..s_in_w];
                row[..l].copy_from_slice(&tape.z[r * sd + o..r * sd + o + l]);
                row[sw..sw + FEATS].copy_from_slice(&self.store_feats[i * FEATS..(i + 1) * FEATS]);
                row[sw + FEATS..].copy_from_slice(&tape.c[r * c..(r + 1) * c]);
            }
        }
        let ou = self.upstream.forward(&tape.u_in, b, &mut tape.cu)?;
        tape.ou.clear();
        tape.ou.extend_from_slice(ou);
        let os = self.store.forward(&tape.s_in, b * n, &mut tape.cs)?;
        tape.os.clear();
        tape.os.extend_from_slice(os);
        tape.q.clear();
        tape.q.resize(b * nloc, 0.0);
        for r in 0..b {
            for k in 0..m {
                tape.q[r * nloc + k] = self.bound * sigmoid(tape.ou[r * m + k]);
            }
            for i in 0..n {
                tape.q[r * nloc + m + i] = self.store_means[i] * softplus(tape.os[r * n + i] + 1.0);
            }
        }
        Ok(())
    }

    /// Given `gq = ∂L/∂q` for the batch in `tape`, **adds** the parameter gradient into `grads`
    /// (`[context | upstream | store]`) and writes `gx = ∂L/∂x` through the policy.
    pub fn backward(
        &self,
        net: &Network,
        tape: &mut PeriodTape,
        gq: &[f32],
        grads: &mut [f32],
        gx: &mut [f32],
        ws: &mut BackWs,
    ) -> Result<()> {
        let (m, n, sd, nloc) = (net.upstream(), net.stores(), net.state_dim(), net.locations());
        let b = tape.b;
        let c = self.context.output_dim();
        let up_dim = net.slot(m).0;
        let sw = self.store_width;
        let s_in_w = sw + FEATS + c;
        let inv = 1.0 / self.scale;
        let (nc, nu) = (self.context.num_params(), self.upstream.num_params());
        let (gc, rest) = grads.split_at_mut(nc);
        let (gu, gs) = rest.split_at_mut(nu);
        ws.g_ou.clear();
        ws.g_os.clear();
        for r in 0..b {
            for k in 0..m {
                let s = sigmoid(tape.ou[r * m + k]);
                ws.g_ou.push(gq[r * nloc + k] * self.bound * s * (1.0 - s));
            }
            for i in 0..n {
                ws.g_os
                    .push(gq[r * nloc + m + i] * self.store_means[i] * sigmoid(tape.os[r * n + i] + 1.0));
            }
        }
        ws.g_sin.resize(b * n * s_in_w, 0.0);
        self.store
            .backward_full(&tape.s_in, &mut tape.cs, &ws.g_os, gs, Some(&mut ws.g_sin))?;
        ws.g_uin.resize(b * (up_dim + c), 0.0);
        self.upstream
            .backward_full(&tape.u_in, &mut tape.cu, &ws.g_ou, gu, Some(&mut ws.g_uin))?;
        gx[..b * sd].iter_mut().for_each(|v| *v = 0.0);
        ws.g_co.clear();
        ws.g_co.resize(b * c, 0.0);
        for r in 0..b {
            let gcr = &mut ws.g_co[r * c..(r + 1) * c];
            let uin = &ws.g_uin[r * (up_dim + c)..(r + 1) * (up_dim + c)];
            for j in 0..up_dim {
                gx[r * sd + j] += uin[j] * inv;
            }
            for (g, u) in gcr.iter_mut().zip(&uin[up_dim..]) {
                *g += u;
            }
            for i in 0..n {
                let (o, l) = net.slot(m + i);
                let row = &ws.g_sin[(r * n + i) * s_in_w..][..s_in_w];
                for j in 0..l {
                    gx[r * sd + o + j] += row[j] * inv;
                }
                for (g, u) in gcr.iter_mut().zip(&row[sw + FEATS..]) {
                    *g += u;
                }
            }
            for (g, &cv) in gcr.iter_mut().zip(&tape.c[r * c..(r + 1) * c]) {
                *g *= cv * (1.0 - cv);
            }
        }
        ws.g_z.resize(b * sd, 0.0);
        self.context
            .backward_full(&tape.z, &mut tape.cc, &ws.g_co, gc, Some(&mut ws.g_z))?;
        for (g, z) in gx[..b * sd].iter_mut().zip(&ws.g_z) {
            *g += z * inv;
        }
        Ok(())
    }
}

/// What one period's forward pass keeps for the backward pass.
#[derive(Debug, Default, Clone)]
pub struct PeriodTape {
    b: usize,
    x: Vec<f32>,
    z: Vec<f32>,
    c: Vec<f32>,
    u_in: Vec<f32>,
    s_in: Vec<f32>,
    ou: Vec<f32>,
    os: Vec<f32>,
    /// The orders `[b, m + n]`.
    pub q: Vec<f32>,
    cc: MlpCache,
    cu: MlpCache,
    cs: MlpCache,
}

/// Scratch space of [`NetworkPolicy::backward`].
#[derive(Debug, Default, Clone)]
pub struct BackWs {
    g_ou: Vec<f32>,
    g_os: Vec<f32>,
    g_sin: Vec<f32>,
    g_uin: Vec<f32>,
    g_co: Vec<f32>,
    g_z: Vec<f32>,
}

/// Scratch space of [`network_loss_and_grad`], reused between steps.
#[derive(Debug, Default)]
pub struct NetBpttWorkspace {
    tapes: Vec<PeriodTape>,
    back: BackWs,
}

/// The mean cost per store, period and path over paths `idx` of `scen`, and its gradient with
/// respect to the policy's parameters (written into `grads`, `[context | upstream | store]`),
/// by hand-written backpropagation through time.
pub fn network_loss_and_grad(
    policy: &NetworkPolicy,
    net: &Network,
    scen: &NetScenarios,
    idx: &[usize],
    ws: &mut NetBpttWorkspace,
    grads: &mut [f32],
) -> Result<f64> {
    policy.check(net)?;
    let (b, t_len, sd, n, nloc) = (idx.len(), scen.periods, net.state_dim(), net.stores(), net.locations());
    let w = 1.0 / (b * t_len * n) as f32;
    ws.tapes.resize_with(t_len, Default::default);
    let mut x: Vec<f32> = Vec::with_capacity(b * sd);
    for &i in idx {
        x.extend_from_slice(&scen.init[i * sd..(i + 1) * sd]);
    }
    let demand = |r: usize, t: usize| &scen.demand[(idx[r] * t_len + t) * n..][..n];
    let mut loss = 0f64;
    for t in 0..t_len {
        let tape = &mut ws.tapes[t];
        policy.forward(net, &x, b, tape)?;
        for r in 0..b {
            loss += net.step(
                &mut x[r * sd..(r + 1) * sd],
                &tape.q[r * nloc..(r + 1) * nloc],
                demand(r, t),
            ) as f64;
        }
    }
    grads.iter_mut().for_each(|g| *g = 0.0);
    let mut lam = vec![0f32; b * sd];
    let mut gx_sim = vec![0f32; b * sd];
    let mut gx_pol = vec![0f32; b * sd];
    let mut gq = vec![0f32; b * nloc];
    for t in (0..t_len).rev() {
        let tape = &mut ws.tapes[t];
        for r in 0..b {
            net.step_vjp(
                &tape.x[r * sd..(r + 1) * sd],
                &tape.q[r * nloc..(r + 1) * nloc],
                demand(r, t),
                &lam[r * sd..(r + 1) * sd],
                w,
                &mut gx_sim[r * sd..(r + 1) * sd],
                &mut gq[r * nloc..(r + 1) * nloc],
            );
        }
        policy.backward(net, tape, &gq, grads, &mut gx_pol, &mut ws.back)?;
        for ((l, a), p) in lam.iter_mut().zip(&gx_sim).zip(&gx_pol) {
            *l = a + p;
        }
    }
    Ok(loss * w as f64)
}

/// Average cost per store and period (periods `≥ ignore`, all paths) of `policy` on `scen`,
/// with its standard error over the paths. No gradient.
pub fn evaluate_network_cost(
    policy: &NetworkPolicy,
    net: &Network,
    scen: &NetScenarios,
    ignore: usize,
) -> Result<PathCost> {
    policy.check(net)?;
    let (sd, n, nloc) = (net.state_dim(), net.stores(), net.locations());
    let chunk = 1024;
    let mut tape = PeriodTape::default();
    let (mut total, mut count) = (0f64, 0usize);
    let mut per_path = vec![0f64; scen.paths];
    for start in (0..scen.paths).step_by(chunk) {
        let b = chunk.min(scen.paths - start);
        let mut x: Vec<f32> = scen.init[start * sd..(start + b) * sd].to_vec();
        for t in 0..scen.periods {
            policy.forward(net, &x, b, &mut tape)?;
            for r in 0..b {
                let d = &scen.demand[((start + r) * scen.periods + t) * n..][..n];
                let c = net.step(&mut x[r * sd..(r + 1) * sd], &tape.q[r * nloc..(r + 1) * nloc], d);
                if t >= ignore {
                    total += c as f64;
                    count += 1;
                    per_path[start + r] += c as f64;
                }
            }
        }
    }
    let counted = (scen.periods.saturating_sub(ignore).max(1) * n) as f64;
    per_path.iter_mut().for_each(|c| *c /= counted);
    Ok(PathCost::new(total, count * n, &per_path))
}

/// One period of a network on candle tensors: `x` holds the flat state as `[batch, 1]` columns
/// (updated in place), `q` the orders per location and `d` the store demands, as columns.
/// Returns the period's total cost summed over the batch (a scalar). The same dynamics as
/// `Network::step`, written in differentiable tensor ops (`relu`, `minimum`) so that candle's
/// autodiff gives pathwise gradients.
pub fn candle_network_step(
    net: &Network,
    x: &mut [candle_core::Tensor],
    q: &[candle_core::Tensor],
    d: &[candle_core::Tensor],
) -> candle_core::Result<candle_core::Tensor> {
    let cfg = net.config();
    let (m, nloc) = (net.upstream(), net.locations());
    let mut cost: Option<candle_core::Tensor> = None;
    let mut add = |c: candle_core::Tensor| -> candle_core::Result<()> {
        let c = c.sum_all()?;
        cost = Some(match cost.take() {
            None => c,
            Some(s) => (s + c)?,
        });
        Ok(())
    };
    let mut post: Vec<Option<candle_core::Tensor>> = vec![None; nloc];
    let mut inflow: Vec<Option<candle_core::Tensor>> = vec![None; nloc];
    for (i, s) in cfg.stores.iter().enumerate() {
        let a = &x[net.slot(m + i).0];
        let over = (a - &d[i])?.relu()?;
        let under = (&d[i] - a)?.relu()?;
        add(((&over * s.h)? + (&under * s.p)?)?)?;
        post[m + i] = Some(if cfg.backlog { (a - &d[i])? } else { over });
    }
    for k in 0..m {
        let w = &x[net.slot(k).0];
        let ch = net.children(k);
        let mut s = q[ch.start].clone();
        for j in ch.start + 1..ch.end {
            s = (s + &q[j])?;
        }
        let f = (w / &s)?.minimum(1f32)?;
        for j in ch {
            inflow[j] = Some((&q[j] * &f)?);
        }
        let pk = (w - (&s * &f)?)?;
        add((&pk * cfg.upstream[k].h)?)?;
        post[k] = Some(pk);
    }
    inflow[0] = Some(q[0].clone());
    for loc in 0..nloc {
        let (o, l) = net.slot(loc);
        let (p, inn) = (post[loc].take().unwrap(), inflow[loc].take().unwrap());
        if l == 1 {
            x[o] = (p + inn)?;
        } else {
            x[o] = (p + &x[o + 1])?;
            for j in 1..l - 1 {
                x[o + j] = x[o + j + 1].clone();
            }
            x[o + l - 1] = inn;
        }
    }
    Ok(cost.unwrap())
}

/// The same loss and gradient as [`network_loss_and_grad`], with the policy and the simulator
/// ([`candle_network_step`]) in candle ops and candle's autodiff. Slow; the reference.
pub fn candle_network_loss_and_grad(
    policy: &NetworkPolicy,
    net: &Network,
    scen: &NetScenarios,
    idx: &[usize],
) -> Result<(f64, Vec<f32>)> {
    use candle_core::{Device, Tensor, Var};
    policy.check(net)?;
    let ce = |e: candle_core::Error| AlgoError::Tensor(e.into());
    let dev = Device::Cpu;
    let (b, t_len, sd, n, m) = (idx.len(), scen.periods, net.state_dim(), net.stores(), net.upstream());
    let to_vars = |mlp: &Mlp, name: &str| -> Result<Vec<Var>> {
        mlp.to_tensors(name)?
            .into_iter()
            .map(|(_, t)| Var::from_tensor(&t).map_err(ce))
            .collect()
    };
    let vc = to_vars(&policy.context, "c")?;
    let vu = to_vars(&policy.upstream, "u")?;
    let vs = to_vars(&policy.store, "s")?;
    let mlp = super::store::candle_elu_mlp;
    let sig = |t: &Tensor| -> candle_core::Result<Tensor> { (t.neg()?.exp()? + 1.0)?.recip() };
    let column = |vals: Vec<f32>| Tensor::from_vec(vals, (b, 1), &dev);
    let run = || -> candle_core::Result<Tensor> {
        let mut x: Vec<Tensor> = (0..sd)
            .map(|j| column(idx.iter().map(|&i| scen.init[i * sd + j]).collect()))
            .collect::<candle_core::Result<_>>()?;
        let inv = 1.0 / policy.scale as f64;
        let zeros = Tensor::zeros((b, 1), candle_core::DType::F32, &dev)?;
        let mut total: Option<Tensor> = None;
        let up_dim = net.slot(m).0;
        for t in 0..t_len {
            let z = (Tensor::cat(&x, 1)? * inv)?;
            let c = sig(&mlp(&vc, z)?)?;
            let mut u_cols: Vec<Tensor> = x[..up_dim]
                .iter()
                .map(|t| t * inv)
                .collect::<candle_core::Result<_>>()?;
            u_cols.push(c.clone());
            let ou = mlp(&vu, Tensor::cat(&u_cols, 1)?)?;
            let qu = (sig(&ou)? * policy.bound as f64)?;
            let mut q: Vec<Tensor> = (0..m).map(|k| qu.narrow(1, k, 1)).collect::<candle_core::Result<_>>()?;
            for i in 0..n {
                let (o, l) = net.slot(m + i);
                let mut cols: Vec<Tensor> = x[o..o + l]
                    .iter()
                    .map(|t| t * inv)
                    .collect::<candle_core::Result<_>>()?;
                for _ in l..policy.store_width {
                    cols.push(zeros.clone());
                }
                let f = &policy.store_feats[i * FEATS..(i + 1) * FEATS];
                cols.push(Tensor::from_slice(f, (1, FEATS), &dev)?.broadcast_as((b, FEATS))?);
                cols.push(c.clone());
                let os = mlp(&vs, Tensor::cat(&cols, 1)?)?;
                let qi = ((((os + 1.0)?.exp()? + 1.0)?.log()?) * policy.store_means[i] as f64)?;
                q.push(qi);
            }
            let d: Vec<Tensor> = (0..n)
                .map(|i| column(idx.iter().map(|&p| scen.demand[(p * t_len + t) * n + i]).collect()))
                .collect::<candle_core::Result<_>>()?;
            let c = candle_network_step(net, &mut x, &q, &d)?;
            total = Some(match total.take() {
                None => c,
                Some(s) => (s + c)?,
            });
        }
        total.unwrap() / (b * t_len * n) as f64
    };
    let loss = run().map_err(ce)?;
    let gs = loss.backward().map_err(ce)?;
    let mut flat = Vec::with_capacity(policy.num_params());
    for v in vc.iter().chain(&vu).chain(&vs) {
        match gs.get(v.as_tensor()) {
            Some(g) => flat.extend(g.flatten_all().and_then(|g| g.to_vec1::<f32>()).map_err(ce)?),
            None => flat.extend(std::iter::repeat_n(0.0, v.as_tensor().elem_count())),
        }
    }
    Ok((loss.to_scalar::<f32>().map_err(ce)? as f64, flat))
}

/// HDPO for an inventory network.
pub type HdpoNetwork = HdpoLearner<NetworkProblem>;

/// An inventory network as an HDPO [`Problem`] (the policy's `hidden` is the store net's
/// hidden widths).
#[derive(Debug, Clone)]
pub struct NetworkProblem {
    /// The network.
    pub net: Network,
}

impl Problem for NetworkProblem {
    type Policy = NetworkPolicy;
    type Scenarios = NetScenarios;
    type Workspace = NetBpttWorkspace;
    fn from_env(env_id: &str, env_kwargs: &Kwargs) -> Result<Self> {
        Ok(NetworkProblem {
            net: Network::new(taper_envs::registry::network_config(env_id, env_kwargs)?)?,
        })
    }
    fn new_policy(&self, c: &HdpoConfig, rng: &mut ChaCha8Rng) -> Result<NetworkPolicy> {
        NetworkPolicy::new(&self.net, c.context, &c.upstream_hidden, &c.hidden, rng)
    }
    fn num_params(p: &NetworkPolicy) -> usize {
        p.num_params()
    }
    fn sample(&self, paths: usize, periods: usize, rng: &mut ChaCha8Rng) -> NetScenarios {
        NetScenarios::sample(&self.net, paths, periods, rng)
    }
    fn loss_and_grad(
        &self,
        p: &NetworkPolicy,
        scen: &NetScenarios,
        idx: &[usize],
        ws: &mut NetBpttWorkspace,
        grads: &mut [f32],
    ) -> Result<f64> {
        network_loss_and_grad(p, &self.net, scen, idx, ws, grads)
    }
    fn cost(&self, p: &NetworkPolicy, scen: &NetScenarios, ignore: usize, _test: bool) -> Result<PathCost> {
        evaluate_network_cost(p, &self.net, scen, ignore)
    }
    fn set_placement(p: &mut NetworkPolicy, placement: &Placement) {
        for n in [&mut p.context, &mut p.upstream, &mut p.store] {
            n.set_placement(placement.clone());
        }
    }
    fn adam_step(p: &mut NetworkPolicy, opt: &mut Adam, g: &[f32]) -> Result<()> {
        let (nc, nu) = (p.context.num_params(), p.upstream.num_params());
        Ok(opt.step(&mut [
            (p.context.params_mut(), &g[..nc]),
            (p.upstream.params_mut(), &g[nc..nc + nu]),
            (p.store.params_mut(), &g[nc + nu..]),
        ])?)
    }
    fn tensors(p: &NetworkPolicy) -> Result<NamedTensors> {
        p.to_tensors()
    }
    fn load_tensors(p: &mut NetworkPolicy, t: &HashMap<String, candle_core::Tensor>) -> Result<()> {
        for (mlp, name) in [
            (&mut p.context, "context"),
            (&mut p.upstream, "upstream"),
            (&mut p.store, "store"),
        ] {
            mlp.load_tensors(name, t)?;
        }
        Ok(())
    }
    fn model_shape(&self, config: &HdpoConfig) -> ModelShape {
        let n = self.net.locations();
        ModelShape {
            obs_space: Space::uniform_box(self.net.state_dim(), f32::NEG_INFINITY, f32::INFINITY),
            act_space: Space::Box {
                low: vec![0.0; n],
                high: vec![self.net.config().max_order as f32; n],
            },
            hidden: config.hidden.clone(),
        }
    }
    fn order_dim(&self) -> usize {
        self.net.locations()
    }
    fn orders(&self, p: &NetworkPolicy, obs: &[f32], _round: bool, out: &mut [f32]) -> Result<()> {
        p.check(&self.net)?;
        if obs.len() != self.net.state_dim() || out.len() != self.net.locations() {
            return Err(AlgoError::Config {
                field: "obs",
                reason: format!(
                    "the policy reads {} state values and orders for {} locations; got {} and {}",
                    self.net.state_dim(),
                    self.net.locations(),
                    obs.len(),
                    out.len()
                ),
            });
        }
        let mut tape = PeriodTape::default();
        p.forward(&self.net, obs, 1, &mut tape)?;
        let hi = self.net.config().max_order as f32;
        for (qi, t) in out.iter_mut().zip(&tape.q) {
            *qi = t.clamp(0.0, hi);
        }
        Ok(())
    }
    fn rounds(&self) -> bool {
        false
    }
    fn unit(&self) -> &'static str {
        "per store and period"
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use rand::SeedableRng;
    use taper_envs::inventory::{NetStore, NetworkConfig, Stage};
    use taper_tensor::rng::{stream, Purpose};

    fn small(backlog: bool, serial: bool) -> Network {
        let cfg = if serial {
            let mut c = NetworkConfig::serial(9.0, 2);
            c.upstream[1].lead_time = 1;
            c
        } else {
            let mut c = NetworkConfig::one_warehouse(3, 4);
            c.upstream[0] = Stage { h: 0.3, lead_time: 2 };
            c.stores.push(NetStore {
                mean: 4.0,
                std: 1.5,
                h: 1.0,
                p: 9.0,
                lead_time: 1,
            });
            c
        };
        Network::new(NetworkConfig { backlog, ..cfg }).unwrap()
    }

    /// Hand-written BPTT equals candle's autodiff through the candle simulator and policy, on
    /// a warehouse with 4 stores (lead times 1–3) and on a serial chain, lost sales and
    /// backlog.
    #[test]
    fn network_bptt_matches_candle_autodiff() {
        for (backlog, serial) in [(false, false), (true, false), (true, true)] {
            let net = small(backlog, serial);
            let mut rng = stream(5, Purpose::Init, 0);
            let policy = NetworkPolicy::new(&net, 6, &[5], &[7, 4], &mut rng).unwrap();
            let mut srng = rand_chacha::ChaCha8Rng::seed_from_u64(11);
            let scen = NetScenarios::sample(&net, 12, 6, &mut srng);
            let idx = vec![3usize, 0, 7, 11, 5];
            let mut grads = vec![0f32; policy.num_params()];
            let loss = network_loss_and_grad(&policy, &net, &scen, &idx, &mut NetBpttWorkspace::default(), &mut grads)
                .unwrap();
            let (closs, cgrads) = candle_network_loss_and_grad(&policy, &net, &scen, &idx).unwrap();
            assert!((loss - closs).abs() < 1e-4 * (1.0 + closs.abs()), "{loss} vs {closs}");
            let gmax = cgrads.iter().fold(0f32, |a, g| a.max(g.abs()));
            assert!(gmax > 1e-3, "the gradient should not vanish");
            for (i, (a, b)) in grads.iter().zip(&cgrads).enumerate() {
                assert!(
                    (a - b).abs() < 2e-3 * (gmax + b.abs()),
                    "backlog={backlog} serial={serial} grad {i}: {a} vs {b}"
                );
            }
        }
    }

    /// The candle simulator and the env's f32 simulator agree on the same demand paths and
    /// orders, period by period (state and cost).
    #[test]
    fn candle_simulator_agrees_with_the_env() {
        use candle_core::{Device, Tensor};
        for (backlog, serial) in [(false, false), (true, true)] {
            let net = small(backlog, serial);
            let (b, sd, nloc, n) = (8usize, net.state_dim(), net.locations(), net.stores());
            let mut rng = rand_chacha::ChaCha8Rng::seed_from_u64(2);
            let scen = NetScenarios::sample(&net, b, 30, &mut rng);
            let mut xs = scen.init.clone();
            let col = |v: Vec<f32>| Tensor::from_vec(v, (b, 1), &Device::Cpu).unwrap();
            let mut xt: Vec<Tensor> = (0..sd).map(|j| col((0..b).map(|r| xs[r * sd + j]).collect())).collect();
            for t in 0..30 {
                let q: Vec<f32> = (0..b * nloc).map(|_| rng.random_range(0.0..12.0)).collect();
                let mut cost = 0f32;
                for r in 0..b {
                    let d = &scen.demand[(r * 30 + t) * n..][..n];
                    cost += net.step(&mut xs[r * sd..(r + 1) * sd], &q[r * nloc..(r + 1) * nloc], d);
                }
                let qt: Vec<Tensor> = (0..nloc)
                    .map(|k| col((0..b).map(|r| q[r * nloc + k]).collect()))
                    .collect();
                let dt: Vec<Tensor> = (0..n)
                    .map(|i| col((0..b).map(|r| scen.demand[(r * 30 + t) * n + i]).collect()))
                    .collect();
                let ct = candle_network_step(&net, &mut xt, &qt, &dt)
                    .unwrap()
                    .to_scalar::<f32>()
                    .unwrap();
                assert!(
                    (ct - cost).abs() < 1e-3 * (1.0 + cost.abs()),
                    "period {t}: {ct} vs {cost}"
                );
                for j in 0..sd {
                    let col = xt[j].flatten_all().unwrap().to_vec1::<f32>().unwrap();
                    for r in 0..b {
                        assert!((col[r] - xs[r * sd + j]).abs() < 1e-3, "state {j} row {r}");
                    }
                }
            }
        }
    }

    /// A policy for 3 stores refuses a network of 4: a typed error naming both counts.
    #[test]
    fn mismatched_store_counts() {
        let net3 = Network::new(NetworkConfig::one_warehouse(3, 0)).unwrap();
        let net4 = Network::new(NetworkConfig::one_warehouse(4, 0)).unwrap();
        let mut rng = stream(0, Purpose::Init, 0);
        let p = NetworkPolicy::new(&net3, 8, &[4], &[4], &mut rng).unwrap();
        let mut r2 = rand_chacha::ChaCha8Rng::seed_from_u64(0);
        let scen = NetScenarios::sample(&net4, 4, 5, &mut r2);
        let e = evaluate_network_cost(&p, &net4, &scen, 0).unwrap_err();
        assert!(matches!(e, AlgoError::Config { .. }), "{e}");
        assert!(e.to_string().contains("3 stores"), "{e}");
    }
}
