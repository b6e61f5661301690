//! The critics of the SAC family on `[o, a]` MLPs, and what each asks of an update: the TD
//! targets, the loss with its gradient, and the value the actor climbs with its action
//! gradient ([`CriticKind`]).
//!
//! - `twin` (SAC): two `Q` networks, targets `r + γ(1 − d)(min Q̄ − α log π')`, squared error
//!   ([`taper_critics::soft_td_target`], [`taper_critics::td_loss`]); the actor climbs
//!   `min(Q₁, Q₂)`.
//! - `dsac-t`: two Gaussian critics `(Q, σ)`; the target critic of the smaller mean gives
//!   the mean target and a sampled one ([`gaussian::dsac_t_targets`]); each critic learns by
//!   DSAC-T's clipped, variance-weighted loss ([`gaussian::dsac_t_loss`]) with its own moving
//!   `σ̂`; the actor climbs the smaller mean.
//! - `categorical`: SAC's twin critics with categorical heads ([`Categorical`], HL-Gauss or
//!   two-hot on a fixed support), each learned by cross-entropy against the encoded soft target
//!   ("Stop Regressing"'s classification loss); the value is the softmax mean, and the actor
//!   climbs `min(Q₁, Q₂)` through `∂Q/∂z_i = p_i(c_i − Q)`.
//! - `stac`: one Gaussian critic of the one-step return, the pessimistic target
//!   `r + γ(1 − d)(μ̄ − βσ̄ − α log π')` ([`gaussian::stac_target`]) and the Gaussian NLL; the
//!   actor climbs `μ − βσ`.
//! - `flow`: SAC's twin critics as flow-matching critics ([`Flow`], floq): each `Q` is the
//!   end point of `K` Euler steps of a learned velocity field, learned by flow matching toward
//!   SAC's soft target; the actor climbs `min(Q₁, Q₂)` with the gradient through every step.
//!
//! What a read-out needs besides the networks (a categorical support, a flow's settings)
//! travels in a [`Readout`].

use super::net::{Net, NetCache};
use crate::error::{AlgoError, Result};
use rand::Rng;
use rand_chacha::ChaCha8Rng;
use rand_distr::StandardNormal;
use serde::{Deserialize, Serialize};
use taper_critics::gaussian::{self, GaussianHead, SigmaEma};
use taper_critics::{soft_td_target, td_loss, Categorical, Flow, FlowCache};
use taper_tensor::mlp::Mlp;
use taper_tensor::rng::{stream, Purpose};

/// Where a training-mode forward pass draws its dropout masks: critic `k` uses
/// `stream(seed, Other(7), index + k)`, so each critic's masks are its own whatever thread
/// computes it.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct DropoutKey {
    /// The run's seed.
    pub seed: u64,
    /// The call's index.
    pub index: u64,
}

impl DropoutKey {
    /// Critic `k`'s generator.
    pub fn rng(self, k: usize) -> ChaCha8Rng {
        stream(self.seed, Purpose::Other(7), self.index.wrapping_add(k as u64))
    }
}

fn drop_rng(key: Option<DropoutKey>, k: usize) -> Option<ChaCha8Rng> {
    key.map(|d| d.rng(k))
}

/// Which critic an algorithm of the SAC family learns. See the module doc.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "kebab-case")]
pub enum CriticKind {
    /// Clipped double Q with squared TD error (SAC).
    Twin,
    /// Twin Gaussian critics with DSAC-T's three refinements.
    DsacT,
    /// One Gaussian critic with STAC's pessimistic target.
    Stac,
    /// Twin categorical critics (HL-Gauss or two-hot) with SAC's soft target.
    Categorical,
    /// Twin flow-matching critics (floq) with SAC's soft target.
    Flow,
}

/// What a critic's read-out needs besides its networks: the categorical critic's support,
/// the flow critic's settings.
#[derive(Debug, Clone, Copy, Default)]
pub struct Readout<'a> {
    /// The support of `categorical`.
    pub support: Option<&'a Categorical>,
    /// The settings of `flow`.
    pub flow: Option<&'a Flow>,
}

impl<'a> Readout<'a> {
    /// A categorical critic's.
    pub fn categorical(support: &'a Categorical) -> Self {
        Readout {
            support: Some(support),
            flow: None,
        }
    }
    /// A flow critic's.
    pub fn flow(flow: &'a Flow) -> Self {
        Readout {
            support: None,
            flow: Some(flow),
        }
    }
}

/// The plain MLP under a flow critic (STAC's blocks are not offered there).
fn plain(net: &Net) -> Result<&Mlp> {
    match net {
        Net::Plain(m) => Ok(m),
        Net::Norm(_) => Err(AlgoError::Config {
            field: "layer_norm",
            reason: "the flow critic's field is a plain MLP".into(),
        }),
    }
}

impl CriticKind {
    /// Critic networks.
    pub fn count(self) -> usize {
        match self {
            CriticKind::Twin | CriticKind::DsacT | CriticKind::Categorical | CriticKind::Flow => 2,
            CriticKind::Stac => 1,
        }
    }
    /// Outputs per row: `Q`, a velocity, `(μ, raw σ)`, or one logit per bin of `support`.
    pub fn outputs(self, support: Option<&Categorical>) -> usize {
        match self {
            CriticKind::Twin | CriticKind::Flow => 1,
            CriticKind::Categorical => support.map(|s| s.bins()).unwrap_or(0),
            _ => 2,
        }
    }
    /// How a Gaussian critic's raw output becomes `σ`.
    pub fn head(self) -> GaussianHead {
        match self {
            CriticKind::DsacT => GaussianHead::dsac_t(),
            _ => GaussianHead::stac(),
        }
    }
}

/// One critic's reused buffers.
#[derive(Debug, Default)]
pub struct PerCritic {
    /// Its network's activations.
    pub cache: NetCache,
    mu: Vec<f32>,
    sigma: Vec<f32>,
    dmu: Vec<f32>,
    dsigma: Vec<f32>,
    dout: Vec<f32>,
    dx: Vec<f32>,
    flow: FlowCache,
}

/// Reused buffers of the critic computations.
#[derive(Debug, Default)]
pub struct CriticWs {
    /// One set per critic.
    pub per: Vec<PerCritic>,
    /// Mean targets `[n]`.
    pub y_q: Vec<f32>,
    /// Sampled targets `[n]` (DSAC-T).
    pub y_z: Vec<f32>,
    /// The actor's value per row `[n]`.
    pub v: Vec<f32>,
    /// Its action gradient `[n, action_dim]`.
    pub dv_da: Vec<f32>,
    /// The flow loss's times `t`, critic after critic, `[critics, n·samples]` (the caller
    /// draws them, uniform in `[0, 1]`).
    pub flow_t: Vec<f32>,
    /// The flow loss's noise `z_0`, laid out as `flow_t` (uniform in the noise interval).
    pub flow_z0: Vec<f32>,
}

/// One critic's scale average, gradient buffer and (loss, mean estimate, mean σ).
type LossItem<'a> = (&'a mut SigmaEma, &'a mut Vec<f32>, (f64, f64, f64));

/// Runs `f` on each critic with its buffers (and its item of `extra`): the twins side by side
/// on two threads. Each critic's numbers are computed exactly as alone, so the results do not
/// depend on the thread count.
fn each<T: Send, F>(nets: &[Net], per: &mut [PerCritic], extra: &mut [T], f: F) -> Result<()>
where
    F: Fn(usize, &Net, &mut PerCritic, &mut T) -> Result<()> + Sync,
{
    match (per, extra) {
        ([a, b], [ea, eb]) => {
            let (ra, rb) = rayon::join(|| f(0, &nets[0], a, ea), || f(1, &nets[1], b, eb));
            ra.and(rb)
        }
        (per, extra) => {
            for (k, (p, e)) in per.iter_mut().zip(extra.iter_mut()).enumerate() {
                f(k, &nets[k], p, e)?;
            }
            Ok(())
        }
    }
}

/// One row's transition for a target: reward, terminal flag, the next action's log-probability.
#[derive(Debug, Clone, Copy)]
pub struct NextRow {
    /// The reward.
    pub reward: f32,
    /// Whether the next state is terminal.
    pub done: bool,
    /// `log π(a'|s')` of the sampled next action.
    pub logp: f32,
}

/// The numbers a target needs besides the critics.
#[derive(Debug, Clone, Copy)]
pub struct TargetParams {
    /// The discount.
    pub gamma: f32,
    /// The temperature.
    pub alpha: f32,
    /// STAC's pessimism.
    pub beta: f32,
}

impl CriticKind {
    /// The TD targets of `rows` from the target critics at `xn = [o', a']`, into `ws.y_q`
    /// (and `ws.y_z` for DSAC-T, whose draws come from `rng`: all of the first critic's rows,
    /// then the second's, as the reference draws them).
    #[allow(clippy::too_many_arguments)]
    pub fn targets<R: Rng + ?Sized>(
        self,
        targets: &[Net],
        xn: &[f32],
        rows: &[NextRow],
        p: TargetParams,
        rng: &mut R,
        drop: Option<DropoutKey>,
        readout: Readout<'_>,
        ws: &mut CriticWs,
    ) -> Result<()> {
        let n = rows.len();
        self.split_all(targets, xn, n, drop, readout, false, ws)?;
        ws.y_q.resize(n, 0.0);
        ws.y_z.resize(n, 0.0);
        let (mu, sigma) = (|k: usize| &ws.per[k].mu, |k: usize| &ws.per[k].sigma);
        match self {
            CriticKind::Twin | CriticKind::Categorical | CriticKind::Flow => {
                for (r, t) in rows.iter().enumerate() {
                    ws.y_q[r] = soft_td_target(t.reward, p.gamma, t.done, mu(0)[r], mu(1)[r], p.alpha, t.logp);
                }
            }
            CriticKind::DsacT => {
                let xi: Vec<f32> = (0..2 * n).map(|_| rng.sample(StandardNormal)).collect();
                for (r, t) in rows.iter().enumerate() {
                    let (yq, yz) = gaussian::dsac_t_targets(
                        t.reward,
                        p.gamma,
                        t.done,
                        [mu(0)[r], mu(1)[r]],
                        [sigma(0)[r], sigma(1)[r]],
                        [xi[r], xi[n + r]],
                        p.alpha,
                        t.logp,
                    );
                    (ws.y_q[r], ws.y_z[r]) = (yq, yz);
                }
            }
            CriticKind::Stac => {
                for (r, t) in rows.iter().enumerate() {
                    ws.y_q[r] = gaussian::stac_target(
                        t.reward,
                        p.gamma,
                        t.done,
                        mu(0)[r],
                        sigma(0)[r],
                        p.beta,
                        p.alpha,
                        t.logp,
                    );
                }
            }
        }
        Ok(())
    }

    /// Every critic's loss at `x = [o, a]` against the targets in `ws`, its gradient added to
    /// its buffer in `grads`; returns each critic's loss, mean estimate and mean `σ` (NaN for
    /// `twin`; the flow critic's loss computes no read-out, its mean estimate is NaN too; its
    /// draws come from `ws.flow_t`, `ws.flow_z0`). DSAC-T folds the batch's `σ` into each critic's `emas` entry first, as the
    /// reference does.
    #[allow(clippy::too_many_arguments)]
    pub fn losses(
        self,
        nets: &[Net],
        x: &[f32],
        n: usize,
        emas: &mut [SigmaEma],
        drop: Option<DropoutKey>,
        readout: Readout<'_>,
        ws: &mut CriticWs,
        grads: &mut [Vec<f32>],
    ) -> Result<Vec<(f64, f64, f64)>> {
        let readout = self.check(readout)?;
        let support = readout.support;
        let c = self.count();
        ws.per.resize_with(c, PerCritic::default);
        if emas.len() != c || grads.len() != c {
            return Err(AlgoError::Config {
                field: "critics",
                reason: format!(
                    "{} scale averages and {} gradient buffers for {c} critics",
                    emas.len(),
                    grads.len()
                ),
            });
        }
        let nm = readout.flow.map_or(0, |f| n * f.samples);
        if self == CriticKind::Flow && (ws.flow_t.len() != c * nm || ws.flow_z0.len() != c * nm) {
            return Err(AlgoError::Config {
                field: "flow",
                reason: format!(
                    "the flow loss needs {} draws of t and of z_0, got {} and {}",
                    c * nm,
                    ws.flow_t.len(),
                    ws.flow_z0.len()
                ),
            });
        }
        let (y_q, y_z, flow_t, flow_z0) = (&ws.y_q, &ws.y_z, &ws.flow_t, &ws.flow_z0);
        let mut items: Vec<LossItem<'_>> = emas
            .iter_mut()
            .zip(grads.iter_mut())
            .map(|(e, g)| (e, g, (0.0, 0.0, 0.0)))
            .collect();
        each(nets, &mut ws.per, &mut items, |k, net, p, (ema, grads, out)| {
            if let (CriticKind::Flow, Some(f)) = (self, readout.flow) {
                let (t, z0) = (&flow_t[k * nm..(k + 1) * nm], &flow_z0[k * nm..(k + 1) * nm]);
                let loss = f.loss(plain(net)?, x, x.len() / n.max(1), n, y_q, t, z0, &mut p.flow, grads)?;
                if !loss.is_finite() {
                    return Err(AlgoError::NonFinite {
                        update: 0,
                        term: "critic loss",
                    });
                }
                *out = (loss, f64::NAN, f64::NAN);
                return Ok(());
            }
            let mut r = drop_rng(drop, k);
            let raw = net.forward(x, n, &mut p.cache, r.as_mut().map(|r| r as &mut dyn rand::RngCore))?;
            p.dmu.resize(n, 0.0);
            let (loss, q_mean, s_mean) = match self {
                CriticKind::Twin => {
                    let loss = td_loss(raw, y_q, &mut p.dmu)?;
                    p.dout.clear();
                    p.dout.extend_from_slice(&p.dmu);
                    (loss, mean(raw), f64::NAN)
                }
                CriticKind::Categorical => {
                    let c = support.ok_or_else(no_support)?;
                    p.dout.resize(n * c.bins(), 0.0);
                    let loss = c.loss(raw, y_q, n, &mut p.dout)?;
                    p.mu.resize(n, 0.0);
                    c.values(raw, n, &mut p.mu)?;
                    (loss as f64, mean(&p.mu), f64::NAN)
                }
                _ => {
                    let head = self.head();
                    p.mu.resize(n, 0.0);
                    p.sigma.resize(n, 0.0);
                    head.split(raw, n, &mut p.mu, &mut p.sigma)?;
                    p.dsigma.resize(n, 0.0);
                    let loss = if self == CriticKind::DsacT {
                        let sh = ema.update(&p.sigma);
                        gaussian::dsac_t_loss(&p.mu, &p.sigma, y_q, y_z, sh, &mut p.dmu, &mut p.dsigma)?
                    } else {
                        gaussian::gaussian_nll(&p.mu, &p.sigma, y_q, &mut p.dmu, &mut p.dsigma)?
                    };
                    p.dout.resize(2 * n, 0.0);
                    head.backward(raw, &p.dmu, &p.dsigma, &mut p.dout)?;
                    (loss as f64, mean(&p.mu), mean(&p.sigma))
                }
            };
            if !loss.is_finite() {
                return Err(AlgoError::NonFinite {
                    update: 0,
                    term: "critic loss",
                });
            }
            net.backward(x, &mut p.cache, &p.dout, grads)?;
            *out = (loss, q_mean, s_mean);
            Ok(())
        })?;
        Ok(items.into_iter().map(|(_, _, o)| o).collect())
    }

    /// The value the actor climbs at `x = [o, a]` (`min(Q₁, Q₂)`, the smaller mean, or
    /// `μ − βσ`) into `ws.v`, and its gradient in the actions (the last `ad` columns of `x`)
    /// into `ws.dv_da`. The critics' parameters get no gradient.
    #[allow(clippy::too_many_arguments)]
    pub fn actor_value(
        self,
        nets: &[Net],
        x: &[f32],
        n: usize,
        ad: usize,
        beta: f32,
        drop: Option<DropoutKey>,
        readout: Readout<'_>,
        ws: &mut CriticWs,
    ) -> Result<()> {
        let readout = self.check(readout)?;
        let support = readout.support;
        let xw = self.x_width(&nets[0], readout);
        let od = xw - ad;
        let c = self.count();
        ws.per.resize_with(c, PerCritic::default);
        let outs = self.outputs(support);
        // Each critic's forward pass; then, per row, the minimum's gradient goes to the
        // critic with the smaller value (the first on a tie).
        self.split_all(nets, x, n, drop, readout, true, ws)?;
        ws.v.resize(n, 0.0);
        ws.dv_da.resize(n * ad, 0.0);
        if c == 2 {
            for (k, p) in ws.per.iter_mut().enumerate() {
                p.dout.resize(n * outs, 0.0);
                p.dmu.resize(n, 0.0);
                if let (CriticKind::Categorical, Some(cat)) = (self, support) {
                    let raw = nets[k].output(&p.cache).to_vec();
                    cat.value_grads(&raw, n, &mut p.dout)?;
                }
            }
            for r in 0..n {
                let (a, b) = (ws.per[0].mu[r], ws.per[1].mu[r]);
                ws.v[r] = a.min(b);
                let first = a <= b;
                for (k, p) in ws.per.iter_mut().enumerate() {
                    // The flow critic's read-out gradient starts from ∂V/∂Q_k.
                    p.dmu[r] = if (k == 0) == first { 1.0 } else { 0.0 };
                    let row = &mut p.dout[r * outs..(r + 1) * outs];
                    if (k == 0) != first {
                        row.fill(0.0);
                    } else if self != CriticKind::Categorical {
                        row.fill(0.0);
                        row[0] = 1.0;
                    }
                }
            }
        } else {
            let p = &mut ws.per[0];
            for r in 0..n {
                ws.v[r] = p.mu[r] - beta * p.sigma[r];
            }
            let raw = nets[0].output(&p.cache).to_vec();
            p.dout.resize(n * outs, 0.0);
            self.head()
                .backward(&raw, &vec![1.0; n], &vec![-beta; n], &mut p.dout)?;
        }
        each(nets, &mut ws.per, &mut vec![(); c], |_, net, p, _| {
            p.dx.resize(n * xw, 0.0);
            match readout.flow {
                Some(f) => Ok(f.readout_backward(plain(net)?, x, xw, &mut p.flow, &p.dmu, &mut p.dx)?),
                None => net.backward_input(x, &mut p.cache, &p.dout, &mut p.dx),
            }
        })?;
        for r in 0..n {
            for a in 0..ad {
                ws.dv_da[r * ad + a] = ws.per.iter().map(|p| p.dx[r * xw + od + a]).sum();
            }
        }
        Ok(())
    }

    /// Every critic's forward pass at `x`, split into means (`Q` for `twin`, the read-out for
    /// `flow`, which keeps its steps' activations when `keep`) and scales.
    #[allow(clippy::too_many_arguments)]
    fn split_all(
        self,
        nets: &[Net],
        x: &[f32],
        n: usize,
        drop: Option<DropoutKey>,
        readout: Readout<'_>,
        keep: bool,
        ws: &mut CriticWs,
    ) -> Result<()> {
        let readout = self.check(readout)?;
        let support = readout.support;
        let c = self.count();
        ws.per.resize_with(c, PerCritic::default);
        each(nets, &mut ws.per, &mut vec![(); c], |k, net, p, _| {
            if let Some(f) = readout.flow {
                p.mu.resize(n, 0.0);
                p.flow.keep = keep;
                return Ok(f.readout(plain(net)?, x, x.len() / n.max(1), n, &mut p.flow, &mut p.mu)?);
            }
            let mut r = drop_rng(drop, k);
            let out = net.forward(x, n, &mut p.cache, r.as_mut().map(|r| r as &mut dyn rand::RngCore))?;
            p.mu.resize(n, 0.0);
            p.sigma.resize(n, 0.0);
            match (self, support) {
                (CriticKind::Twin, _) => p.mu.copy_from_slice(out),
                (CriticKind::Categorical, Some(cat)) => cat.values(out, n, &mut p.mu)?,
                (CriticKind::Categorical, None) => return Err(no_support()),
                _ => self.head().split(out, n, &mut p.mu, &mut p.sigma)?,
            }
            Ok(())
        })
    }

    /// The estimates the actor would climb, for `n` rows of `x` (a probe's read-out, in
    /// evaluation mode).
    pub fn estimates(
        self,
        nets: &[Net],
        x: &[f32],
        n: usize,
        beta: f32,
        readout: Readout<'_>,
        ws: &mut CriticWs,
    ) -> Result<Vec<f32>> {
        self.split_all(nets, x, n, None, readout, false, ws)?;
        let p = &ws.per;
        Ok((0..n)
            .map(|r| match self {
                CriticKind::Stac => p[0].mu[r] - beta * p[0].sigma[r],
                _ => p[0].mu[r].min(p[1].mu[r]),
            })
            .collect())
    }
}

impl CriticKind {
    /// What this critic's read-out uses of `r`: the categorical critic's support, the flow
    /// critic's settings (an error without them), nothing for the others.
    fn check(self, r: Readout<'_>) -> Result<Readout<'_>> {
        match (self, r.support, r.flow) {
            (CriticKind::Categorical, None, _) => Err(no_support()),
            (CriticKind::Categorical, s, _) => Ok(Readout { support: s, flow: None }),
            (CriticKind::Flow, _, None) => Err(AlgoError::Config {
                field: "flow",
                reason: "the flow critic needs its settings (`[sac.flow]` with noise and support)".into(),
            }),
            (CriticKind::Flow, _, f) => Ok(Readout { support: None, flow: f }),
            _ => Ok(Readout::default()),
        }
    }

    /// The width of a row `[o, a]` that `net` reads (the flow field reads features besides).
    fn x_width(self, net: &Net, r: Readout<'_>) -> usize {
        net.input_dim() - r.flow.map_or(0, |f| f.feature_dim())
    }
}

fn no_support() -> AlgoError {
    AlgoError::Config {
        field: "q_support",
        reason: "the categorical critic needs a support (`[sac.q_support]` with min, max, bins, encoding)".into(),
    }
}

fn mean(v: &[f32]) -> f64 {
    v.iter().map(|&x| x as f64).sum::<f64>() / v.len().max(1) as f64
}

#[cfg(test)]
mod tests {
    use super::*;
    use taper_tensor::mlp::{Activation, Mlp, MlpInit};
    use taper_tensor::rng::{stream, Purpose};

    fn support() -> Categorical {
        Categorical::hl_gauss(-3.0, 3.0, 21).unwrap()
    }

    fn flow() -> Flow {
        Flow {
            steps: 3,
            samples: 2,
            noise: [-0.5, 0.0],
            support: [-4.0, 1.0],
            z_bins: 9,
            z_sigma: 2.0,
            time_features: 4,
        }
    }

    const KINDS: [CriticKind; 5] = [
        CriticKind::Twin,
        CriticKind::DsacT,
        CriticKind::Stac,
        CriticKind::Categorical,
        CriticKind::Flow,
    ];

    /// Draws for the flow loss, `[critics, n·samples]` each.
    fn flow_draws(n: usize, ws: &mut CriticWs) {
        let nm = 2 * n * flow().samples;
        ws.flow_t = (0..nm).map(|i| ((i * 7 % 11) as f32 + 0.5) / 11.0).collect();
        ws.flow_z0 = (0..nm).map(|i| -0.5 * ((i * 5 % 9) as f32 + 0.5) / 9.0).collect();
    }

    fn nets(kind: CriticKind) -> Vec<Net> {
        (0..kind.count())
            .map(|k| {
                // Smooth networks, so that central differences are accurate (STAC's
                // LayerNorm blocks are checked against candle in taper-tensor).
                let mut rng = stream(5, Purpose::Init, k as u64);
                let extra = if kind == CriticKind::Flow {
                    flow().feature_dim()
                } else {
                    0
                };
                let sizes = [3 + 2 + extra, 12, 12, kind.outputs(Some(&support()))];
                Net::Plain(Mlp::new(&sizes, Activation::Gelu, MlpInit::TorchDefault, &mut rng).unwrap())
            })
            .collect()
    }

    /// The actor's value and its action gradient against central differences, for every
    /// critic kind (rows away from a twin tie).
    #[test]
    fn actor_value_gradient_matches_finite_differences() {
        for kind in KINDS {
            let (sup, fl) = (support(), flow());
            let sup = Readout {
                support: Some(&sup),
                flow: Some(&fl),
            };
            let nets = nets(kind);
            let n = 5;
            let x: Vec<f32> = (0..n * 5).map(|i| ((i * 11 % 7) as f32 - 3.0) * 0.3).collect();
            let mut ws = CriticWs::default();
            kind.actor_value(&nets, &x, n, 2, 0.5, None, sup, &mut ws).unwrap();
            let (v, g) = (ws.v.clone(), ws.dv_da.clone());
            let est = kind.estimates(&nets, &x, n, 0.5, sup, &mut ws).unwrap();
            assert_eq!(est, v);
            let h = 1e-3f32;
            for r in 0..n {
                for a in 0..2 {
                    let (mut xp, mut xm) = (x.clone(), x.clone());
                    xp[r * 5 + 3 + a] += h;
                    xm[r * 5 + 3 + a] -= h;
                    let fp = kind.estimates(&nets, &xp, n, 0.5, sup, &mut ws).unwrap()[r];
                    let fm = kind.estimates(&nets, &xm, n, 0.5, sup, &mut ws).unwrap()[r];
                    let fd = (fp - fm) / (2.0 * h);
                    assert!(
                        (fd - g[r * 2 + a]).abs() < 2e-3,
                        "{kind:?} row {r} action {a}: {fd} vs {}",
                        g[r * 2 + a]
                    );
                }
            }
        }
    }

    /// Each critic's loss gradient against central differences of its parameters. DSAC-T's
    /// loss has stop-gradients, so its check differentiates the surrogate
    /// `Σ ∂L/∂Q·Q(θ) + ∂L/∂σ·σ(θ)` with the reference's `∂L/∂Q`, `∂L/∂σ` held at the current
    /// point (those are checked against the reference's formulas in `taper_critics`).
    #[test]
    fn loss_gradient_matches_finite_differences() {
        for kind in KINDS {
            let (sup, fl) = (support(), flow());
            let sup = Readout {
                support: Some(&sup),
                flow: Some(&fl),
            };
            let mut nets = nets(kind);
            let n = 6;
            let x: Vec<f32> = (0..n * 5).map(|i| ((i * 13 % 9) as f32 - 4.0) * 0.25).collect();
            let mut ws = CriticWs {
                y_q: (0..n).map(|r| r as f32 * 0.3 - 0.5).collect(),
                y_z: (0..n).map(|r| r as f32 * 0.5 - 1.0).collect(),
                ..CriticWs::default()
            };
            flow_draws(n, &mut ws);
            let ema = SigmaEma {
                value: Some(0.6),
                rate: 0.0,
            };
            let mut gs: Vec<Vec<f32>> = nets.iter().map(|q| vec![0f32; q.num_params()]).collect();
            let mut emas = vec![ema; kind.count()];
            kind.losses(&nets, &x, n, &mut emas, None, sup, &mut ws, &mut gs)
                .unwrap();
            let g = gs[0].clone();
            // DSAC-T's fixed output gradients at the current point.
            let fixed = if kind != CriticKind::DsacT {
                (Vec::new(), Vec::new())
            } else {
                let mut c = NetCache::default();
                let out = nets[0].forward(&x, n, &mut c, None).unwrap();
                let (mut mu, mut sigma) = (vec![0f32; n], vec![0f32; n]);
                kind.head().split(out, n, &mut mu, &mut sigma).unwrap();
                let (mut dq, mut ds) = (vec![0f32; n], vec![0f32; n]);
                gaussian::dsac_t_loss(&mu, &sigma, &ws.y_q, &ws.y_z, 0.6, &mut dq, &mut ds).unwrap();
                (dq, ds)
            };
            let objective = |nets: &[Net], ws: &mut CriticWs| -> f64 {
                if kind == CriticKind::DsacT {
                    let mut c = NetCache::default();
                    let out = nets[0].forward(&x, n, &mut c, None).unwrap();
                    let (mut mu, mut sigma) = (vec![0f32; n], vec![0f32; n]);
                    kind.head().split(out, n, &mut mu, &mut sigma).unwrap();
                    (0..n)
                        .map(|r| (fixed.0[r] * mu[r] + fixed.1[r] * sigma[r]) as f64)
                        .sum()
                } else {
                    let mut scratch: Vec<Vec<f32>> = nets.iter().map(|q| vec![0f32; q.num_params()]).collect();
                    let mut emas = vec![ema; kind.count()];
                    kind.losses(nets, &x, n, &mut emas, None, sup, ws, &mut scratch)
                        .unwrap()[0]
                        .0
                }
            };
            let h = 1e-2f32;
            for i in (0..g.len()).step_by(5) {
                let p0 = nets[0].params()[i];
                nets[0].params_mut()[i] = p0 + h;
                let up = objective(&nets, &mut ws);
                nets[0].params_mut()[i] = p0 - h;
                let down = objective(&nets, &mut ws);
                nets[0].params_mut()[i] = p0;
                let fd = (up - down) / (2.0 * h as f64);
                assert!(
                    (fd - g[i] as f64).abs() < 1e-2 * (1.0 + fd.abs()),
                    "{kind:?} param {i}: {fd} vs {}",
                    g[i]
                );
            }
        }
    }

    /// Targets on hand-checked numbers: the twin's is SAC's soft target on the smaller
    /// critic, STAC's subtracts β·σ̄.
    #[test]
    fn targets_follow_the_formulas() {
        for kind in KINDS {
            let (sup, fl) = (support(), flow());
            let sup = Readout {
                support: Some(&sup),
                flow: Some(&fl),
            };
            let nets = nets(kind);
            let xn: Vec<f32> = (0..2 * 5).map(|i| i as f32 * 0.1).collect();
            let rows = [
                NextRow {
                    reward: 1.0,
                    done: false,
                    logp: -0.5,
                },
                NextRow {
                    reward: -2.0,
                    done: true,
                    logp: 0.3,
                },
            ];
            let p = TargetParams {
                gamma: 0.9,
                alpha: 0.2,
                beta: 0.5,
            };
            let mut ws = CriticWs::default();
            kind.targets(
                &nets,
                &xn,
                &rows,
                p,
                &mut stream(1, Purpose::Action, 0),
                None,
                sup,
                &mut ws,
            )
            .unwrap();
            assert_eq!(ws.y_q[1], -2.0, "{kind:?}: a terminal keeps only the reward");
            let est = kind.estimates(&nets, &xn, 2, 0.5, sup, &mut ws).unwrap();
            let want = 1.0 + 0.9 * (est[0] + 0.2 * 0.5);
            let yq = {
                kind.targets(
                    &nets,
                    &xn,
                    &rows,
                    p,
                    &mut stream(1, Purpose::Action, 0),
                    None,
                    sup,
                    &mut ws,
                )
                .unwrap();
                ws.y_q[0]
            };
            assert!((yq - want).abs() < 1e-5, "{kind:?}: {yq} vs {want}");
        }
    }
}
