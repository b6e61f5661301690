//! The fast f32 simulator of one store, behind the [`Env`] API so any learner can run on it.
//!
//! The period's order of events (the HDPO repository's `environment.py`, Zipkin's lead time):
//! 1. the policy sees the state `(x_0, x_1, …, x_{L−1})`: on-hand `x_0` and the orders that
//!    arrive in 1, …, L−1 periods, and orders `q ≥ 0`;
//! 2. with L = 0 the order arrives at once: `x_0 += q`;
//! 3. demand `d` occurs; the cost is `h·(x_0 − d)⁺ + p·(d − x_0)⁺`;
//! 4. unmet demand is lost (`x_0 ← (x_0 − d)⁺`) or backlogged (`x_0 ← x_0 − d`, may go negative);
//! 5. the pipeline shifts: `x_0 ← x_0 + x_1`, `x_j ← x_{j+1}`, and the new order enters the last
//!    slot, so an order placed in period t meets demand from period t + L on.
//!
//! The reward is minus the cost. Episodes are cut (truncated, not terminated) after `horizon`
//! periods; the problem itself is infinite-horizon average cost.

use crate::env::{check_obs, from_snapshot, out_of_space, seeded_rng, to_snapshot, Action, Env, StepOutcome};
use crate::error::{EnvError, Result};
use crate::spaces::Space;
use rand::Rng;
use rand_chacha::ChaCha8Rng;
use rand_distr::{Distribution, Normal, Poisson};
use serde::{Deserialize, Serialize};
use std::ops::{Add, Mul, Sub};

/// Demand per period.
#[derive(Debug, Clone, Copy, PartialEq, Serialize, Deserialize)]
pub enum Demand {
    /// Poisson(mean).
    Poisson {
        /// Mean.
        mean: f64,
    },
    /// Normal(mean, std), truncated at 0.
    Normal {
        /// Mean.
        mean: f64,
        /// Standard deviation.
        std: f64,
    },
}

impl Demand {
    /// The mean of the untruncated distribution.
    pub fn mean(&self) -> f64 {
        match *self {
            Demand::Poisson { mean } | Demand::Normal { mean, .. } => mean,
        }
    }
    /// One draw.
    pub fn sample<R: Rng + ?Sized>(&self, rng: &mut R) -> f64 {
        match *self {
            Demand::Poisson { mean } => Poisson::new(mean).map(|d| d.sample(rng)).unwrap_or(0.0),
            Demand::Normal { mean, std } => Normal::new(mean, std).map(|d| d.sample(rng)).unwrap_or(mean).max(0.0),
        }
    }
    fn validate(&self) -> Result<()> {
        let bad = |reason: String| Err(EnvError::Invalid { name: "demand", reason });
        match *self {
            Demand::Poisson { mean } if !(mean > 0.0 && mean < 1e6) => {
                bad(format!("Poisson mean must be in (0, 1e6), got {mean}"))
            }
            Demand::Normal { mean, std } if !(mean.is_finite() && std > 0.0 && std.is_finite()) => bad(format!(
                "normal demand needs a finite mean and std > 0, got ({mean}, {std})"
            )),
            _ => Ok(()),
        }
    }
}

/// A single store's parameters.
#[derive(Debug, Clone, Copy, PartialEq, Serialize, Deserialize)]
pub struct StoreConfig {
    /// Demand per period.
    pub demand: Demand,
    /// Holding cost per unit left at the end of a period.
    pub h: f64,
    /// Penalty per unit of unmet demand.
    pub p: f64,
    /// Lead time L (0 = immediate).
    pub lead_time: usize,
    /// Unmet demand is backlogged (true) or lost (false).
    pub backlog: bool,
    /// Periods per episode.
    pub horizon: usize,
    /// Largest order accepted.
    pub max_order: f64,
}

impl StoreConfig {
    /// The HDPO repository's one-store lost-sales setting: Poisson(5), h = 1, p = 9, L = 4.
    pub fn lost_sales() -> Self {
        StoreConfig {
            demand: Demand::Poisson { mean: 5.0 },
            h: 1.0,
            p: 9.0,
            lead_time: 4,
            backlog: false,
            horizon: 100,
            max_order: 30.0,
        }
    }
    /// The backlogged setting: Normal(5, 1.6) clipped at 0, h = 1, p = 9, L = 4.
    pub fn backlogged() -> Self {
        StoreConfig {
            demand: Demand::Normal { mean: 5.0, std: 1.6 },
            backlog: true,
            ..Self::lost_sales()
        }
    }
    /// Checks the parameters; costs must be non-negative, `L ≤ 30`.
    pub fn validate(&self) -> Result<()> {
        self.demand.validate()?;
        let bad = |name: &'static str, reason: String| Err(EnvError::Invalid { name, reason });
        if !(self.h >= 0.0 && self.h.is_finite()) {
            return bad("h", format!("holding cost must be >= 0, got {}", self.h));
        }
        if !(self.p >= 0.0 && self.p.is_finite()) {
            return bad("p", format!("penalty must be >= 0, got {}", self.p));
        }
        if self.lead_time > 30 {
            return bad("lead_time", format!("must be at most 30, got {}", self.lead_time));
        }
        if self.horizon == 0 {
            return bad("horizon", "must be at least 1".into());
        }
        if !(self.max_order > 0.0 && self.max_order.is_finite()) {
            return bad("max_order", format!("must be > 0, got {}", self.max_order));
        }
        Ok(())
    }
    /// Width of the state: `max(L, 1)`.
    pub fn state_dim(&self) -> usize {
        self.lead_time.max(1)
    }
}

/// One store, one period per step. See the module doc for the order of events.
#[derive(Debug, Clone)]
pub struct SingleStore {
    cfg: StoreConfig,
    x: Vec<f64>,
    t: usize,
    rng: Option<ChaCha8Rng>,
    started: bool,
    obs_space: Space,
    act_space: Space,
}

/// The number types the store's dynamics run on: `f64` in the env, `f32` in HDPO's
/// differentiable simulator. Both run the same [`store_step`].
pub trait Quantity: Copy + PartialOrd + Add<Output = Self> + Sub<Output = Self> + Mul<Output = Self> {
    /// Zero.
    const ZERO: Self;
    /// A parameter (a cost) in this type.
    fn from_f64(v: f64) -> Self;
    /// The larger of two values.
    fn max(self, other: Self) -> Self;
}

impl Quantity for f64 {
    const ZERO: Self = 0.0;
    fn from_f64(v: f64) -> Self {
        v
    }
    fn max(self, other: Self) -> Self {
        f64::max(self, other)
    }
}

impl Quantity for f32 {
    const ZERO: Self = 0.0;
    fn from_f64(v: f64) -> Self {
        v as f32
    }
    fn max(self, other: Self) -> Self {
        f32::max(self, other)
    }
}

/// The on-hand inventory that meets this period's demand: `x_0`, plus the order when it
/// arrives at once (L = 0).
pub fn on_hand_before_demand<T: Quantity>(cfg: &StoreConfig, x: &[T], q: T) -> T {
    if cfg.lead_time == 0 {
        x[0] + q
    } else {
        x[0]
    }
}

/// One period of the dynamics (the module doc's order of events) on a state vector: applies
/// the order `q` and the demand `d` in place and returns the period's cost. The env and HDPO's
/// simulator both run it.
pub fn store_step<T: Quantity>(cfg: &StoreConfig, x: &mut [T], q: T, d: T) -> T {
    let l = cfg.lead_time;
    if l == 0 {
        x[0] = x[0] + q;
    }
    let a = x[0];
    let (h, p) = (T::from_f64(cfg.h), T::from_f64(cfg.p));
    let cost = h * (a - d).max(T::ZERO) + p * (d - a).max(T::ZERO);
    let post = if cfg.backlog { a - d } else { (a - d).max(T::ZERO) };
    match l {
        0 => x[0] = post,
        1 => x[0] = post + q,
        _ => {
            x[0] = post + x[1];
            for j in 1..l - 1 {
                x[j] = x[j + 1];
            }
            x[l - 1] = q;
        }
    }
    cost
}

/// The vector–Jacobian product of [`store_step`] for a loss `L` that weighs the period's cost
/// by `w` and reads the next state through `lam = ∂L/∂x'`: writes `∂L/∂x` into `gx` and
/// returns `∂L/∂q`. `a` is [`on_hand_before_demand`] and `d` the demand. `min`/`max` take
/// their usual subgradients (1 on the active branch, 0 at ties), as PyTorch's autodiff does.
pub fn store_step_vjp(cfg: &StoreConfig, a: f32, d: f32, lam: &[f32], w: f32, gx: &mut [f32]) -> f32 {
    let l = cfg.lead_time;
    let (h, p) = (cfg.h as f32, cfg.p as f32);
    let g_post = lam[0];
    let mut gq = match l {
        0 => 0.0,
        1 => lam[0],
        _ => lam[l - 1],
    };
    let (pos, neg) = (a > d, a < d);
    let dcost = w * (if pos { h } else { 0.0 } - if neg { p } else { 0.0 });
    let dpost = if cfg.backlog || pos { g_post } else { 0.0 };
    let ga = dcost + dpost;
    gx.iter_mut().for_each(|v| *v = 0.0);
    gx[0] = ga;
    if l == 0 {
        gq += ga;
    }
    if l >= 2 {
        gx[1] = lam[0];
        gx[2..l].copy_from_slice(&lam[1..l - 1]);
    }
    gq
}

impl SingleStore {
    /// A store; errors on invalid parameters.
    pub fn new(cfg: StoreConfig) -> Result<Self> {
        cfg.validate()?;
        let n = cfg.state_dim();
        let low = if cfg.backlog { f32::NEG_INFINITY } else { 0.0 };
        let mut lows = vec![0.0f32; n];
        lows[0] = low;
        Ok(SingleStore {
            cfg,
            x: vec![0.0; n],
            t: 0,
            rng: None,
            started: false,
            obs_space: Space::Box {
                low: lows,
                high: vec![f32::INFINITY; n],
            },
            act_space: Space::Box {
                low: vec![0.0],
                high: vec![cfg.max_order as f32],
            },
        })
    }
    /// The parameters.
    pub fn config(&self) -> &StoreConfig {
        &self.cfg
    }
    /// The state `(x_0, …)`.
    pub fn state(&self) -> &[f64] {
        &self.x
    }
    fn write_obs(&self, obs: &mut [f32]) {
        for (o, x) in obs.iter_mut().zip(&self.x) {
            *o = *x as f32;
        }
    }
}

impl Env for SingleStore {
    fn observation_space(&self) -> &Space {
        &self.obs_space
    }
    fn observe(&self, obs: &mut [f32]) -> Result<()> {
        check_obs(obs, self.x.len())?;
        if !self.started {
            return Err(EnvError::NeedsReset("inventory store"));
        }
        self.write_obs(obs);
        Ok(())
    }
    fn action_space(&self) -> &Space {
        &self.act_space
    }
    fn reset_into(&mut self, seed: Option<u64>, obs: &mut [f32]) -> Result<()> {
        check_obs(obs, self.x.len())?;
        seeded_rng(seed, &mut self.rng);
        let rng = self.rng.as_mut().unwrap();
        let m = self.cfg.demand.mean();
        // The HDPO repository's initial state: every entry U(0, 1) × mean demand.
        for v in self.x.iter_mut() {
            *v = rng.random::<f64>() * m;
        }
        self.t = 0;
        self.started = true;
        self.write_obs(obs);
        Ok(())
    }
    fn step_into(&mut self, action: Action<'_>, obs: &mut [f32]) -> Result<StepOutcome> {
        check_obs(obs, self.x.len())?;
        let q = match action {
            Action::Continuous(a) if a.len() == 1 && self.act_space.contains(a) => a[0] as f64,
            _ => return Err(out_of_space(action, &self.act_space)),
        };
        if !self.started {
            return Err(EnvError::NeedsReset("inventory store"));
        }
        let d = self.cfg.demand.sample(self.rng.as_mut().unwrap());
        let cost = store_step(&self.cfg, &mut self.x, q, d);
        self.t += 1;
        self.write_obs(obs);
        Ok(StepOutcome {
            reward: -cost as f32,
            terminated: false,
            truncated: self.t >= self.cfg.horizon,
        })
    }
    fn snapshot(&self) -> Option<serde_json::Value> {
        to_snapshot(&StoreSnap {
            x: self.x.clone(),
            t: self.t,
            rng: self.rng.clone(),
            started: self.started,
        })
    }
    fn restore(&mut self, v: &serde_json::Value) -> Result<()> {
        let s: StoreSnap = from_snapshot("inventory store", v)?;
        if s.x.len() != self.x.len() {
            return Err(EnvError::Shape {
                what: "inventory state",
                expected: self.x.len(),
                got: s.x.len(),
            });
        }
        (self.x, self.t, self.rng, self.started) = (s.x, s.t, s.rng, s.started);
        Ok(())
    }
}

#[derive(Serialize, Deserialize)]
struct StoreSnap {
    x: Vec<f64>,
    t: usize,
    rng: Option<ChaCha8Rng>,
    started: bool,
}

#[cfg(test)]
mod tests {
    use super::*;

    /// Hand-computed periods, lost sales, L = 2, h = 1, p = 9.
    #[test]
    fn order_of_events_lost_sales() {
        let cfg = StoreConfig {
            lead_time: 2,
            ..StoreConfig::lost_sales()
        };
        let mut x = vec![3.0, 4.0];
        // on hand 3, demand 5: cost 9·2 = 18, lost; next on-hand 0 + 4, pipeline ← q = 6.
        assert_eq!(store_step(&cfg, &mut x, 6.0, 5.0), 18.0);
        assert_eq!(x, vec![4.0, 6.0]);
        // on hand 4, demand 1: cost 3; next on-hand 3 + 6 = 9, pipeline ← 0.
        assert_eq!(store_step(&cfg, &mut x, 0.0, 1.0), 3.0);
        assert_eq!(x, vec![9.0, 0.0]);
    }

    #[test]
    fn backlog_and_zero_lead_time() {
        let cfg = StoreConfig {
            lead_time: 0,
            backlog: true,
            ..StoreConfig::backlogged()
        };
        let mut x = vec![1.0];
        // L = 0: the order of 2 arrives first; on hand 3, demand 5: cost 18, backlog −2.
        assert_eq!(store_step(&cfg, &mut x, 2.0, 5.0), 18.0);
        assert_eq!(x, vec![-2.0]);
        let cfg1 = StoreConfig { lead_time: 1, ..cfg };
        let mut y = vec![-2.0];
        // L = 1: on hand −2 meets demand 1: cost 27, then the order of 4 arrives: 1.
        assert_eq!(store_step(&cfg1, &mut y, 4.0, 1.0), 27.0);
        assert_eq!(y, vec![1.0]);
    }

    /// The VJP equals central finite differences of the f64 dynamics, for every lead time,
    /// both demand rules, away from the kinks.
    #[test]
    fn vjp_matches_finite_differences() {
        use rand::SeedableRng;
        let mut rng = ChaCha8Rng::seed_from_u64(4);
        for backlog in [false, true] {
            for l in [0usize, 1, 2, 4] {
                let cfg = StoreConfig {
                    lead_time: l,
                    backlog,
                    ..StoreConfig::lost_sales()
                };
                let sd = cfg.state_dim();
                for _ in 0..20 {
                    let x: Vec<f64> = (0..sd).map(|_| rng.random_range(-3.0..8.0)).collect();
                    let q: f64 = rng.random_range(0.0..9.0);
                    let d: f64 = rng.random_range(0.0..9.0);
                    let a = on_hand_before_demand(&cfg, &x, q);
                    if (a - d).abs() < 1e-2 || (!backlog && x[0] < 0.0) {
                        continue;
                    }
                    let lam: Vec<f64> = (0..sd).map(|_| rng.random_range(-1.0..1.0)).collect();
                    let w = 0.3;
                    let loss = |x: &[f64], q: f64| {
                        let mut y = x.to_vec();
                        let c = store_step(&cfg, &mut y, q, d);
                        w * c + y.iter().zip(&lam).map(|(a, b)| a * b).sum::<f64>()
                    };
                    let lam32: Vec<f32> = lam.iter().map(|&v| v as f32).collect();
                    let mut gx = vec![0f32; sd];
                    let gq = store_step_vjp(&cfg, a as f32, d as f32, &lam32, w as f32, &mut gx);
                    let e = 1e-5;
                    let fd_q = (loss(&x, q + e) - loss(&x, q - e)) / (2.0 * e);
                    assert!(
                        (fd_q - gq as f64).abs() < 1e-4,
                        "L={l} backlog={backlog}: dq {fd_q} vs {gq}"
                    );
                    for j in 0..sd {
                        let (mut xp, mut xm) = (x.clone(), x.clone());
                        xp[j] += e;
                        xm[j] -= e;
                        let fd = (loss(&xp, q) - loss(&xm, q)) / (2.0 * e);
                        assert!(
                            (fd - gx[j] as f64).abs() < 1e-4,
                            "L={l} backlog={backlog}: dx{j} {fd} vs {}",
                            gx[j]
                        );
                    }
                }
            }
        }
    }

    /// The f32 and f64 forms of the one dynamics agree on a long random path.
    #[test]
    fn f32_and_f64_dynamics_agree() {
        use rand::SeedableRng;
        let mut rng = ChaCha8Rng::seed_from_u64(9);
        for (backlog, l) in [(false, 0usize), (false, 3), (true, 1), (true, 4)] {
            let cfg = StoreConfig {
                lead_time: l,
                backlog,
                ..StoreConfig::lost_sales()
            };
            let mut x32 = vec![2.0f32; cfg.state_dim()];
            let mut x64 = vec![2.0f64; cfg.state_dim()];
            for _ in 0..200 {
                let q = rng.random_range(0.0..12.0f32);
                let d = cfg.demand.sample(&mut rng) as f32;
                let c32 = store_step(&cfg, &mut x32, q, d);
                let c64 = store_step(&cfg, &mut x64, q as f64, d as f64);
                assert!((c32 as f64 - c64).abs() < 1e-3 * (1.0 + c64.abs()));
            }
            for (a, b) in x32.iter().zip(&x64) {
                assert!((*a as f64 - b).abs() < 1e-2);
            }
        }
    }

    #[test]
    fn bad_parameters_and_actions() {
        assert!(SingleStore::new(StoreConfig {
            h: -1.0,
            ..StoreConfig::lost_sales()
        })
        .is_err());
        assert!(SingleStore::new(StoreConfig {
            p: f64::NAN,
            ..StoreConfig::lost_sales()
        })
        .is_err());
        assert!(SingleStore::new(StoreConfig {
            demand: Demand::Poisson { mean: -5.0 },
            ..StoreConfig::lost_sales()
        })
        .is_err());
        let mut s = SingleStore::new(StoreConfig::lost_sales()).unwrap();
        s.reset(Some(0)).unwrap();
        assert!(s.step(Action::Continuous(&[-1.0])).is_err());
        assert!(s.step(Action::Continuous(&[f32::NAN])).is_err());
        let st = s.step(Action::Continuous(&[5.0])).unwrap();
        assert!(st.reward <= 0.0 && !st.terminated);
    }
}
