//! Inventory networks: a serial (multi-echelon) chain, and one warehouse supplying many
//! heterogeneous stores (the HDPO repository's `serial_system` and `one_warehouse_lost_demand`).
//!
//! A network has `m ≥ 1` *upstream* stages in a chain, from the top (supplied by an unlimited
//! external supplier) down, and `n ≥ 1` *stores* that the last upstream stage supplies. With one
//! store it is a serial system; with one upstream stage it is a warehouse with many stores.
//! Locations are numbered upstream first (0 = top), then the stores (`m + i`).
//!
//! Every location ℓ has a lead time `L_ℓ ≥ 1` and a state `(x_0, …, x_{L−1})`: on hand, then what
//! arrives in 1, …, L−1 periods. The flat state is the locations' states one after the other.
//!
//! One period, given the orders `q_ℓ ≥ 0` of every location (the policy acts first):
//! 1. demand `d_i` hits each store: cost `h_i·(x_0 − d)⁺ + p_i·(d − x_0)⁺`; the rest is
//!    lost (`post = (x_0 − d)⁺`) or backlogged (`post = x_0 − d`);
//! 2. each upstream stage ships its children's orders from its on-hand `W = x_0`. When they ask
//!    for more than it has (`S = Σ q > W`), every child gets the same fraction `W/S` of its
//!    order (proportional allocation; for one child, `min(q, W)`). What stays, `W − shipped`,
//!    costs `h` per unit. The top stage's order is always filled;
//! 3. every pipeline shifts as in the one-store env and what was shipped enters slot `L − 1`, so
//!    it is on hand `L` periods later (Zipkin's convention).
//!
//! Cost is reported per store and period (the repository's convention), and the env's reward is
//! minus that. Upstream stages start empty; store entries start U(0, 1) × the store's mean.
//!
//! [`Network::step`] is the f32 dynamics the env runs; [`Network::step_vjp`] is its exact
//! vector–Jacobian product (the subgradient of `min`/`max` is 1 on the active branch), which
//! HDPO's backpropagation through time uses.

use crate::env::{check_obs, from_snapshot, out_of_space, seeded_rng, to_snapshot, Action, Env, StepOutcome};
use crate::error::{EnvError, Result};
use crate::spaces::Space;
use rand::{Rng, SeedableRng};
use rand_chacha::ChaCha8Rng;
use rand_distr::StandardNormal;
use serde::{Deserialize, Serialize};

/// An upstream stage (warehouse or echelon).
#[derive(Debug, Clone, Copy, PartialEq, Serialize, Deserialize)]
pub struct Stage {
    /// Holding cost per unit kept after shipping.
    pub h: f64,
    /// Lead time from its supplier, ≥ 1.
    pub lead_time: usize,
}

/// A store of a network.
#[derive(Debug, Clone, Copy, PartialEq, Serialize, Deserialize)]
pub struct NetStore {
    /// Mean demand per period.
    pub mean: f64,
    /// Standard deviation of demand (normal, clipped at 0).
    pub std: f64,
    /// Holding cost.
    pub h: f64,
    /// Penalty per unit of unmet demand.
    pub p: f64,
    /// Lead time from the last upstream stage, ≥ 1.
    pub lead_time: usize,
}

/// A network's parameters. See the module doc.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct NetworkConfig {
    /// Upstream stages from the top down; the last supplies every store.
    pub upstream: Vec<Stage>,
    /// The stores.
    pub stores: Vec<NetStore>,
    /// Pairwise correlation of store demands, in [0, 1): `d_i = μ_i + σ_i(√ρ·z_0 + √(1−ρ)·z_i)`,
    /// clipped at 0.
    pub correlation: f64,
    /// Unmet store demand is backlogged (true) or lost (false).
    pub backlog: bool,
    /// Periods per episode.
    pub horizon: usize,
    /// Largest order accepted per location.
    pub max_order: f64,
}

impl NetworkConfig {
    /// The repository's serial system: supplier → echelon 0 (h 0.1, L 2) → echelon 1 (h 0.2,
    /// L 4) → warehouse (h 0.5, L 3) → store (h 1, p, backlogged, Normal(5, 2) clipped at 0).
    pub fn serial(p: f64, store_lead_time: usize) -> Self {
        NetworkConfig {
            upstream: vec![
                Stage { h: 0.1, lead_time: 2 },
                Stage { h: 0.2, lead_time: 4 },
                Stage { h: 0.5, lead_time: 3 },
            ],
            stores: vec![NetStore {
                mean: 5.0,
                std: 2.0,
                h: 1.0,
                p,
                lead_time: store_lead_time,
            }],
            correlation: 0.0,
            backlog: true,
            horizon: 100,
            max_order: 100.0,
        }
    }

    /// The repository's one warehouse with `n` heterogeneous stores and lost sales: store means
    /// U(2.5, 7.5), coefficient of variation U(0.25, 0.5), h U(0.7, 1.3), p U(6.3, 11.7) (each
    /// rounded to 3 decimals), store lead times 2 or 3, all drawn from `params_seed`; warehouse
    /// h 0.3 and lead time 3; demand correlation 0.5.
    pub fn one_warehouse(n: usize, params_seed: u64) -> Self {
        let mut rng = ChaCha8Rng::seed_from_u64(params_seed);
        let r3 = |v: f64| (v * 1000.0).round() / 1000.0;
        let stores = (0..n)
            .map(|_| {
                let mean = r3(rng.random_range(2.5..7.5));
                let cv = r3(rng.random_range(0.25..0.5));
                NetStore {
                    mean,
                    std: r3(mean * cv),
                    h: r3(rng.random_range(0.7..1.3)),
                    p: r3(rng.random_range(6.3..11.7)),
                    lead_time: rng.random_range(2..=3),
                }
            })
            .collect();
        NetworkConfig {
            upstream: vec![Stage { h: 0.3, lead_time: 3 }],
            stores,
            correlation: 0.5,
            backlog: false,
            horizon: 100,
            max_order: 200.0,
        }
    }

    /// Checks the parameters: non-negative costs, lead times in 1..=30, at least one stage and
    /// one store.
    pub fn validate(&self) -> Result<()> {
        let bad = |name: &'static str, reason: String| Err(EnvError::Invalid { name, reason });
        if self.upstream.is_empty() {
            return bad("upstream", "a network needs at least one upstream stage".into());
        }
        if self.stores.is_empty() {
            return bad("stores", "a network needs at least one store".into());
        }
        if self.stores.len() > 1000 {
            return bad("stores", format!("at most 1000 stores, got {}", self.stores.len()));
        }
        for (k, s) in self.upstream.iter().enumerate() {
            if !(s.h >= 0.0 && s.h.is_finite()) {
                return bad(
                    "h",
                    format!("upstream stage {k}: holding cost must be >= 0, got {}", s.h),
                );
            }
            if !(1..=30).contains(&s.lead_time) {
                return bad(
                    "lead_time",
                    format!("upstream stage {k}: must be in 1..=30, got {}", s.lead_time),
                );
            }
        }
        for (i, s) in self.stores.iter().enumerate() {
            if !(s.h >= 0.0 && s.h.is_finite()) {
                return bad("h", format!("store {i}: holding cost must be >= 0, got {}", s.h));
            }
            if !(s.p >= 0.0 && s.p.is_finite()) {
                return bad("p", format!("store {i}: penalty must be >= 0, got {}", s.p));
            }
            if !(s.mean > 0.0 && s.mean.is_finite() && s.std >= 0.0 && s.std.is_finite()) {
                return bad(
                    "demand",
                    format!("store {i}: needs mean > 0 and std >= 0, got ({}, {})", s.mean, s.std),
                );
            }
            if !(1..=30).contains(&s.lead_time) {
                return bad(
                    "lead_time",
                    format!("store {i}: must be in 1..=30, got {}", s.lead_time),
                );
            }
        }
        if !(0.0..1.0).contains(&self.correlation) {
            return bad("correlation", format!("must be in [0, 1), got {}", self.correlation));
        }
        if self.horizon == 0 {
            return bad("horizon", "must be at least 1".into());
        }
        if !(self.max_order > 0.0 && self.max_order.is_finite()) {
            return bad("max_order", format!("must be > 0, got {}", self.max_order));
        }
        Ok(())
    }

    /// Samples one period's store demands into `out` (`n` values).
    pub fn sample_demand<R: Rng + ?Sized>(&self, rng: &mut R, out: &mut [f32]) {
        let rho = self.correlation;
        let z0: f64 = if rho > 0.0 { rng.sample(StandardNormal) } else { 0.0 };
        let (a, b) = (rho.sqrt(), (1.0 - rho).sqrt());
        for (o, s) in out.iter_mut().zip(&self.stores) {
            let zi: f64 = rng.sample(StandardNormal);
            *o = (s.mean + s.std * (a * z0 + b * zi)).max(0.0) as f32;
        }
    }
}

/// Networks up to this many locations keep a step's per-location scratch on the stack.
const STACK_LOCATIONS: usize = 64;

/// Two zeroed per-location buffers of length `n`: in `stack` when they fit, else in `heap`.
fn scratch_pair<'a>(n: usize, stack: &'a mut [f32], heap: &'a mut Vec<f32>) -> (&'a mut [f32], &'a mut [f32]) {
    let buf: &mut [f32] = if 2 * n <= stack.len() {
        &mut stack[..2 * n]
    } else {
        heap.resize(2 * n, 0.0);
        &mut heap[..]
    };
    buf.split_at_mut(n)
}

/// The layout and dynamics of a validated [`NetworkConfig`].
#[derive(Debug, Clone, PartialEq)]
pub struct Network {
    cfg: NetworkConfig,
    offs: Vec<usize>,
    lens: Vec<usize>,
    h: Vec<f32>,
    p: Vec<f32>,
    dim: usize,
}

impl Network {
    /// Validates `cfg` and lays out its state.
    pub fn new(cfg: NetworkConfig) -> Result<Self> {
        cfg.validate()?;
        let lens: Vec<usize> = cfg
            .upstream
            .iter()
            .map(|s| s.lead_time)
            .chain(cfg.stores.iter().map(|s| s.lead_time))
            .collect();
        let mut offs = Vec::with_capacity(lens.len());
        let mut dim = 0;
        for l in &lens {
            offs.push(dim);
            dim += l;
        }
        let h = cfg
            .upstream
            .iter()
            .map(|s| s.h as f32)
            .chain(cfg.stores.iter().map(|s| s.h as f32))
            .collect();
        let p = cfg.stores.iter().map(|s| s.p as f32).collect();
        Ok(Network {
            cfg,
            offs,
            lens,
            h,
            p,
            dim,
        })
    }
    /// The parameters.
    pub fn config(&self) -> &NetworkConfig {
        &self.cfg
    }
    /// Upstream stages `m`.
    pub fn upstream(&self) -> usize {
        self.cfg.upstream.len()
    }
    /// Stores `n`.
    pub fn stores(&self) -> usize {
        self.cfg.stores.len()
    }
    /// Locations `m + n` (the number of orders per period).
    pub fn locations(&self) -> usize {
        self.lens.len()
    }
    /// Length of the flat state.
    pub fn state_dim(&self) -> usize {
        self.dim
    }
    /// Where location ℓ's state starts in the flat state, and its length.
    pub fn slot(&self, loc: usize) -> (usize, usize) {
        (self.offs[loc], self.lens[loc])
    }
    /// The locations supplied by location ℓ (none for a store).
    pub fn children(&self, loc: usize) -> std::ops::Range<usize> {
        let m = self.upstream();
        if loc + 1 < m {
            loc + 1..loc + 2
        } else if loc + 1 == m {
            m..m + self.stores()
        } else {
            0..0
        }
    }
    /// Writes an initial state: upstream empty, store entries U(0, 1) × mean demand.
    pub fn initial_state<R: Rng + ?Sized>(&self, rng: &mut R, x: &mut [f32]) {
        let m = self.upstream();
        x.iter_mut().for_each(|v| *v = 0.0);
        for (i, s) in self.cfg.stores.iter().enumerate() {
            let (o, l) = self.slot(m + i);
            for v in &mut x[o..o + l] {
                *v = (rng.random::<f64>() * s.mean) as f32;
            }
        }
    }

    /// One period on a flat state row `x` (updated in place) with orders `q` (one per location)
    /// and store demands `d`; returns the period's total cost (all locations, not per store).
    pub fn step(&self, x: &mut [f32], q: &[f32], d: &[f32]) -> f32 {
        let m = self.upstream();
        let nloc = self.locations();
        let mut cost = 0f32;
        // post[ℓ] and inflow[ℓ] are computed before any slot is shifted.
        let mut stack = [0f32; 2 * STACK_LOCATIONS];
        let mut heap = Vec::new();
        let (post, inflow) = scratch_pair(nloc, &mut stack, &mut heap);
        for i in 0..self.stores() {
            let a = x[self.offs[m + i]];
            let dd = d[i];
            cost += self.h[m + i] * (a - dd).max(0.0) + self.p[i] * (dd - a).max(0.0);
            post[m + i] = if self.cfg.backlog { a - dd } else { (a - dd).max(0.0) };
        }
        for k in 0..m {
            let w = x[self.offs[k]];
            let ch = self.children(k);
            let s: f32 = q[ch.clone()].iter().sum();
            if s > w {
                let f = w / s;
                for j in ch {
                    inflow[j] = q[j] * f;
                }
                post[k] = 0.0;
            } else {
                for j in ch {
                    inflow[j] = q[j];
                }
                post[k] = w - s;
            }
            cost += self.h[k] * post[k];
        }
        inflow[0] = q[0];
        for loc in 0..nloc {
            let (o, l) = (self.offs[loc], self.lens[loc]);
            let xs = &mut x[o..o + l];
            if l == 1 {
                xs[0] = post[loc] + inflow[loc];
            } else {
                xs[0] = post[loc] + xs[1];
                xs.copy_within(2..l, 1);
                xs[l - 1] = inflow[loc];
            }
        }
        cost
    }

    /// The vector–Jacobian product of [`Network::step`] at `(x, q, d)` (`x` the state *before*
    /// the step): given `lam = ∂L/∂x_after` and `wcost = ∂L/∂cost`, writes `gx = ∂L/∂x` and
    /// `gq = ∂L/∂q` (overwriting both).
    // A math kernel: the point (x, q, d), the cotangents (lam, wcost) and the two outputs.
    #[allow(clippy::too_many_arguments)]
    pub fn step_vjp(&self, x: &[f32], q: &[f32], d: &[f32], lam: &[f32], wcost: f32, gx: &mut [f32], gq: &mut [f32]) {
        let m = self.upstream();
        let nloc = self.locations();
        gx.iter_mut().for_each(|v| *v = 0.0);
        gq.iter_mut().for_each(|v| *v = 0.0);
        let mut stack = [0f32; 2 * STACK_LOCATIONS];
        let mut heap = Vec::new();
        let (g_in, g_post) = scratch_pair(nloc, &mut stack, &mut heap);
        // The shift: x'_0 = post + x_1 (or + inflow when L = 1), x'_j = x_{j+1}, x'_{L−1} = inflow.
        for loc in 0..nloc {
            let (o, l) = (self.offs[loc], self.lens[loc]);
            g_post[loc] = lam[o];
            if l == 1 {
                g_in[loc] = lam[o];
            } else {
                gx[o + 1] += lam[o];
                for j in 1..l - 1 {
                    gx[o + j + 1] += lam[o + j];
                }
                g_in[loc] = lam[o + l - 1];
            }
        }
        for i in 0..self.stores() {
            let o = self.offs[m + i];
            let (a, dd) = (x[o], d[i]);
            let dc = if a > dd {
                self.h[m + i]
            } else if a < dd {
                -self.p[i]
            } else {
                0.0
            };
            let dpost = if self.cfg.backlog || a > dd { g_post[m + i] } else { 0.0 };
            gx[o] += wcost * dc + dpost;
        }
        for k in 0..m {
            let o = self.offs[k];
            let w = x[o];
            let ch = self.children(k);
            let s: f32 = q[ch.clone()].iter().sum();
            if s > w {
                let g: f32 = ch.clone().map(|j| q[j] * g_in[j]).sum();
                gx[o] += g / s;
                for j in ch {
                    gq[j] += (w / s) * g_in[j] - (w / (s * s)) * g;
                }
            } else {
                let gp = g_post[k] + wcost * self.h[k];
                gx[o] += gp;
                for j in ch {
                    gq[j] += g_in[j] - gp;
                }
            }
        }
        gq[0] += g_in[0];
    }

    /// Echelon base-stock orders for levels `levels` (one per location): a store orders up to
    /// its level from its inventory position (on hand + pipeline); an upstream stage orders up
    /// to its level from its echelon inventory position (everything at or below it, pipelines
    /// included).
    pub fn echelon_orders(&self, x: &[f32], levels: &[f32], q: &mut [f32]) {
        let m = self.upstream();
        let pos = |loc: usize| -> f32 {
            let (o, l) = self.slot(loc);
            x[o..o + l].iter().sum()
        };
        let stores_ip: f32 = (m..self.locations()).map(pos).sum();
        let mut below = stores_ip;
        for k in (0..m).rev() {
            below += pos(k);
            q[k] = (levels[k] - below).max(0.0);
        }
        for loc in m..self.locations() {
            q[loc] = (levels[loc] - pos(loc)).max(0.0);
        }
    }
}

/// Demand paths and initial states for a network, sampled up front.
#[derive(Debug, Clone, PartialEq)]
pub struct NetScenarios {
    /// Paths.
    pub paths: usize,
    /// Periods per path.
    pub periods: usize,
    /// Store demands `[paths, periods, stores]`.
    pub demand: Vec<f32>,
    /// Initial states `[paths, state_dim]`.
    pub init: Vec<f32>,
}

impl NetScenarios {
    /// Samples `paths` paths of `periods` periods.
    pub fn sample(net: &Network, paths: usize, periods: usize, rng: &mut ChaCha8Rng) -> Self {
        let (n, sd) = (net.stores(), net.state_dim());
        let mut init = vec![0f32; paths * sd];
        for row in init.chunks_mut(sd) {
            net.initial_state(rng, row);
        }
        let mut demand = vec![0f32; paths * periods * n];
        for row in demand.chunks_mut(n) {
            net.config().sample_demand(rng, row);
        }
        NetScenarios {
            paths,
            periods,
            demand,
            init,
        }
    }

    /// Average cost per store and period (periods `≥ ignore`) of a policy that maps a state row
    /// to orders.
    pub fn evaluate(&self, net: &Network, ignore: usize, policy: &mut dyn FnMut(&[f32], &mut [f32])) -> f64 {
        let (n, sd) = (net.stores(), net.state_dim());
        let mut q = vec![0f32; net.locations()];
        let (mut total, mut count) = (0f64, 0usize);
        for r in 0..self.paths {
            let mut x = self.init[r * sd..(r + 1) * sd].to_vec();
            for t in 0..self.periods {
                policy(&x, &mut q);
                let d = &self.demand[(r * self.periods + t) * n..][..n];
                let c = net.step(&mut x, &q, d);
                if t >= ignore {
                    total += c as f64;
                    count += 1;
                }
            }
        }
        total / (count.max(1) * n) as f64
    }
}

/// The best echelon base-stock levels found by coordinate search on common random numbers, and
/// their cost per store and period on `scen`.
///
/// Starts from each store's newsvendor level over `L + 1` periods (and, upstream, the sum of
/// the levels below plus the mean demand over the stage's lead time), then repeats line
/// searches along each level with steps 4, 2, 1, 0.5, 0.25, 0.1 until none improves.
pub fn best_echelon_base_stock(net: &Network, scen: &NetScenarios, ignore: usize) -> (Vec<f32>, f64) {
    let m = net.upstream();
    let cfg = net.config();
    let mut levels = vec![0f32; net.locations()];
    let mut below = 0f32;
    for (i, s) in cfg.stores.iter().enumerate() {
        let z = crate::inventory::heuristics::inv_phi(s.p / (s.p + s.h));
        let l1 = (s.lead_time + 1) as f64;
        levels[m + i] = (s.mean * l1 + z * s.std * l1.sqrt()) as f32;
        below += levels[m + i];
    }
    let total_mean: f64 = cfg.stores.iter().map(|s| s.mean).sum();
    for k in (0..m).rev() {
        below += (total_mean * cfg.upstream[k].lead_time as f64) as f32;
        levels[k] = below;
    }
    let cost_of = |lv: &[f32]| scen.evaluate(net, ignore, &mut |x, q| net.echelon_orders(x, lv, q));
    let mut best = cost_of(&levels);
    for &step in &[4.0f32, 2.0, 1.0, 0.5, 0.25, 0.1] {
        loop {
            let mut improved = false;
            for j in 0..levels.len() {
                for dir in [1.0f32, -1.0] {
                    loop {
                        let mut trial = levels.clone();
                        trial[j] = (trial[j] + dir * step).max(0.0);
                        let c = cost_of(&trial);
                        if c < best - 1e-9 {
                            best = c;
                            levels = trial;
                            improved = true;
                        } else {
                            break;
                        }
                    }
                }
            }
            if !improved {
                break;
            }
        }
    }
    (levels, best)
}

/// A network behind the [`Env`] API: the observation is the flat state, the action the orders
/// of every location (Box `[0, max_order]^{m+n}`), the reward minus the cost per store.
#[derive(Debug, Clone)]
pub struct NetworkEnv {
    net: Network,
    x: Vec<f32>,
    d: Vec<f32>,
    t: usize,
    rng: Option<ChaCha8Rng>,
    started: bool,
    obs_space: Space,
    act_space: Space,
}

impl NetworkEnv {
    /// The env; errors on invalid parameters.
    pub fn new(cfg: NetworkConfig) -> Result<Self> {
        let net = Network::new(cfg)?;
        let (sd, nl) = (net.state_dim(), net.locations());
        let mut lows = vec![0f32; sd];
        if net.config().backlog {
            for i in 0..net.stores() {
                lows[net.slot(net.upstream() + i).0] = f32::NEG_INFINITY;
            }
        }
        let max = net.config().max_order as f32;
        Ok(NetworkEnv {
            x: vec![0.0; sd],
            d: vec![0.0; net.stores()],
            t: 0,
            rng: None,
            started: false,
            obs_space: Space::Box {
                low: lows,
                high: vec![f32::INFINITY; sd],
            },
            act_space: Space::Box {
                low: vec![0.0; nl],
                high: vec![max; nl],
            },
            net,
        })
    }
    /// The network.
    pub fn network(&self) -> &Network {
        &self.net
    }
    /// The flat state.
    pub fn state(&self) -> &[f32] {
        &self.x
    }
}

impl Env for NetworkEnv {
    fn observation_space(&self) -> &Space {
        &self.obs_space
    }
    fn observe(&self, obs: &mut [f32]) -> Result<()> {
        check_obs(obs, self.x.len())?;
        if !self.started {
            return Err(EnvError::NeedsReset("inventory network"));
        }
        obs.copy_from_slice(&self.x);
        Ok(())
    }
    fn action_space(&self) -> &Space {
        &self.act_space
    }
    fn reset_into(&mut self, seed: Option<u64>, obs: &mut [f32]) -> Result<()> {
        check_obs(obs, self.x.len())?;
        seeded_rng(seed, &mut self.rng);
        self.net.initial_state(self.rng.as_mut().unwrap(), &mut self.x);
        self.t = 0;
        self.started = true;
        obs.copy_from_slice(&self.x);
        Ok(())
    }
    fn step_into(&mut self, action: Action<'_>, obs: &mut [f32]) -> Result<StepOutcome> {
        check_obs(obs, self.x.len())?;
        let q = match action {
            Action::Continuous(a) if self.act_space.contains(a) => a,
            Action::Continuous(a) if a.len() != self.net.locations() => {
                return Err(EnvError::Shape {
                    what: "network orders (one per location)",
                    expected: self.net.locations(),
                    got: a.len(),
                })
            }
            _ => return Err(out_of_space(action, &self.act_space)),
        };
        if !self.started {
            return Err(EnvError::NeedsReset("inventory network"));
        }
        self.net.config().sample_demand(self.rng.as_mut().unwrap(), &mut self.d);
        let cost = self.net.step(&mut self.x, q, &self.d);
        self.t += 1;
        obs.copy_from_slice(&self.x);
        Ok(StepOutcome {
            reward: -cost / self.net.stores() as f32,
            terminated: false,
            truncated: self.t >= self.net.config().horizon,
        })
    }
    fn snapshot(&self) -> Option<serde_json::Value> {
        to_snapshot(&NetSnap {
            x: self.x.clone(),
            t: self.t,
            rng: self.rng.clone(),
            started: self.started,
        })
    }
    fn restore(&mut self, v: &serde_json::Value) -> Result<()> {
        let s: NetSnap = from_snapshot("inventory network", v)?;
        if s.x.len() != self.x.len() {
            return Err(EnvError::Shape {
                what: "inventory network state",
                expected: self.x.len(),
                got: s.x.len(),
            });
        }
        (self.x, self.t, self.rng, self.started) = (s.x, s.t, s.rng, s.started);
        Ok(())
    }
}

#[derive(Serialize, Deserialize)]
struct NetSnap {
    x: Vec<f32>,
    t: usize,
    rng: Option<ChaCha8Rng>,
    started: bool,
}

#[cfg(test)]
mod tests {
    use super::*;

    fn small_warehouse() -> Network {
        Network::new(NetworkConfig {
            upstream: vec![Stage { h: 0.5, lead_time: 2 }],
            stores: vec![
                NetStore {
                    mean: 5.0,
                    std: 1.0,
                    h: 1.0,
                    p: 9.0,
                    lead_time: 1,
                },
                NetStore {
                    mean: 3.0,
                    std: 1.0,
                    h: 2.0,
                    p: 4.0,
                    lead_time: 2,
                },
            ],
            correlation: 0.0,
            backlog: false,
            horizon: 10,
            max_order: 50.0,
        })
        .unwrap()
    }

    /// Hand-computed periods: proportional allocation when the warehouse is short.
    #[test]
    fn warehouse_order_of_events() {
        let net = small_warehouse();
        // warehouse (W0=6, W1=10), store 0 (3), store 1 (2, 1).
        let mut x = vec![6.0, 10.0, 3.0, 2.0, 1.0];
        // stores ask 4 and 8: S = 12 > 6, so each gets half: 2 and 4; warehouse keeps 0.
        // store 0: on hand 3, demand 5 → cost 9·2 = 18, lost; next 0 + 2.
        // store 1: on hand 2, demand 1 → cost 2·1 = 2; next 1 + 1 = 2, pipeline 4.
        // warehouse: next on hand 0 + 10, pipeline ← its order 7.
        let c = net.step(&mut x, &[7.0, 4.0, 8.0], &[5.0, 1.0]);
        assert_eq!(c, 20.0);
        assert_eq!(x, vec![10.0, 7.0, 2.0, 2.0, 4.0]);
        // Now S = 1 + 2 = 3 ≤ 10: filled; warehouse keeps 7 at 0.5 = 3.5.
        // store 0: on hand 2, demand 2 → 0; next 0 + 1. store 1: 2 − 3 → lost 1, cost 4.
        let c = net.step(&mut x, &[0.0, 1.0, 2.0], &[2.0, 3.0]);
        assert_eq!(c, 7.5);
        assert_eq!(x, vec![14.0, 0.0, 1.0, 4.0, 2.0]);
    }

    /// The serial chain: each stage ships `min(order, on hand)` to the next.
    #[test]
    fn serial_order_of_events() {
        let net = Network::new(NetworkConfig {
            upstream: vec![Stage { h: 0.1, lead_time: 1 }, Stage { h: 0.5, lead_time: 1 }],
            stores: vec![NetStore {
                mean: 5.0,
                std: 2.0,
                h: 1.0,
                p: 9.0,
                lead_time: 1,
            }],
            correlation: 0.0,
            backlog: true,
            horizon: 10,
            max_order: 50.0,
        })
        .unwrap();
        let mut x = vec![4.0, 3.0, 1.0];
        // echelon 1 asks 6 of echelon 0's 4: gets 4, e0 keeps 0. store asks 2 of 3: gets 2,
        // e1 keeps 1 (0.5). store: 1 − 6 = −5 backlogged, cost 45. e0 receives its order 9.
        let c = net.step(&mut x, &[9.0, 6.0, 2.0], &[6.0]);
        assert_eq!(c, 45.5);
        assert_eq!(x, vec![9.0, 5.0, -3.0]);
    }

    /// The VJP equals central finite differences of the step (away from kinks), in f64-ish
    /// precision via small random problems.
    #[test]
    fn vjp_matches_finite_differences() {
        for backlog in [false, true] {
            let mut cfg = small_warehouse().config().clone();
            cfg.backlog = backlog;
            cfg.upstream.insert(0, Stage { h: 0.2, lead_time: 3 });
            let net = Network::new(cfg).unwrap();
            let mut rng = ChaCha8Rng::seed_from_u64(7);
            for _ in 0..50 {
                let sd = net.state_dim();
                let x: Vec<f32> = (0..sd).map(|_| rng.random_range(0.0..10.0)).collect();
                let q: Vec<f32> = (0..net.locations()).map(|_| rng.random_range(0.0..10.0)).collect();
                let d: Vec<f32> = (0..2).map(|_| rng.random_range(0.0..10.0)).collect();
                let lam: Vec<f32> = (0..sd).map(|_| rng.random_range(-1.0..1.0)).collect();
                let wc = 0.7f32;
                let f = |x: &[f32], q: &[f32]| -> f64 {
                    let mut y = x.to_vec();
                    let c = net.step(&mut y, q, &d);
                    wc as f64 * c as f64 + y.iter().zip(&lam).map(|(a, b)| (*a * *b) as f64).sum::<f64>()
                };
                let (mut gx, mut gq) = (vec![0f32; sd], vec![0f32; net.locations()]);
                net.step_vjp(&x, &q, &d, &lam, wc, &mut gx, &mut gq);
                let eps = 1e-3f32;
                for j in 0..sd {
                    let (mut a, mut b) = (x.clone(), x.clone());
                    a[j] += eps;
                    b[j] -= eps;
                    let fd = (f(&a, &q) - f(&b, &q)) / (2.0 * eps as f64);
                    assert!((fd - gx[j] as f64).abs() < 2e-2, "x[{j}]: fd {fd} vs {}", gx[j]);
                }
                for j in 0..net.locations() {
                    let (mut a, mut b) = (q.clone(), q.clone());
                    a[j] += eps;
                    b[j] -= eps;
                    let fd = (f(&x, &a) - f(&x, &b)) / (2.0 * eps as f64);
                    assert!((fd - gq[j] as f64).abs() < 2e-2, "q[{j}]: fd {fd} vs {}", gq[j]);
                }
            }
        }
    }

    #[test]
    fn bad_configs_and_actions() {
        let mut c = NetworkConfig::one_warehouse(3, 0);
        c.stores[1].p = -1.0;
        assert!(NetworkEnv::new(c).is_err());
        let mut c = NetworkConfig::one_warehouse(3, 0);
        c.upstream[0].lead_time = 0;
        assert!(NetworkEnv::new(c).is_err());
        let mut c = NetworkConfig::serial(9.0, 4);
        c.correlation = 1.0;
        assert!(NetworkEnv::new(c).is_err());
        let mut env = NetworkEnv::new(NetworkConfig::one_warehouse(3, 0)).unwrap();
        env.reset(Some(0)).unwrap();
        let e = env.step(Action::Continuous(&[1.0, 1.0])).unwrap_err();
        assert!(
            matches!(
                e,
                EnvError::Shape {
                    expected: 4,
                    got: 2,
                    ..
                }
            ),
            "{e}"
        );
        assert!(env.step(Action::Continuous(&[1.0, f32::NAN, 1.0, 1.0])).is_err());
        assert!(env.step(Action::Continuous(&[1.0, -1.0, 1.0, 1.0])).is_err());
        let s = env.step(Action::Continuous(&[10.0, 5.0, 5.0, 5.0])).unwrap();
        assert!(s.reward <= 0.0);
    }

    /// The correlated generator has the asked-for correlation (before clipping, which is rare
    /// at these coefficients of variation).
    #[test]
    fn demand_correlation() {
        let cfg = NetworkConfig::one_warehouse(3, 1);
        let mut rng = ChaCha8Rng::seed_from_u64(3);
        let n = 200_000;
        let mut d = vec![0f32; 3];
        let (mut s0, mut s1, mut s00, mut s11, mut s01) = (0f64, 0f64, 0f64, 0f64, 0f64);
        for _ in 0..n {
            cfg.sample_demand(&mut rng, &mut d);
            let (a, b) = (d[0] as f64, d[1] as f64);
            s0 += a;
            s1 += b;
            s00 += a * a;
            s11 += b * b;
            s01 += a * b;
        }
        let nf = n as f64;
        let (m0, m1) = (s0 / nf, s1 / nf);
        let cov = s01 / nf - m0 * m1;
        let r = cov / ((s00 / nf - m0 * m0).sqrt() * (s11 / nf - m1 * m1).sqrt());
        assert!((r - 0.5).abs() < 0.01, "correlation {r}");
        assert!((m0 - cfg.stores[0].mean).abs() < 0.02, "{m0}");
    }

    /// The echelon search returns finite levels far better than ordering nothing.
    #[test]
    fn echelon_search_improves() {
        let net = Network::new(NetworkConfig::one_warehouse(3, 0)).unwrap();
        let mut rng = ChaCha8Rng::seed_from_u64(5);
        let scen = NetScenarios::sample(&net, 64, 200, &mut rng);
        let (levels, cost) = best_echelon_base_stock(&net, &scen, 50);
        assert!(cost.is_finite() && cost > 0.0);
        let zero = scen.evaluate(&net, 50, &mut |_, q| q.iter_mut().for_each(|v| *v = 0.0));
        assert!(cost < 0.5 * zero, "{cost} vs ordering nothing {zero}");
        assert_eq!(levels.len(), 4);
    }
}
