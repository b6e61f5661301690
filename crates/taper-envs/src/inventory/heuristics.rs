//! Heuristic policies for a single store and their best parameters: base-stock and capped
//! base-stock for lost sales (each candidate's cost exact, by the Markov chain of
//! [`chain`](crate::inventory::chain)), and the optimal base-stock level and cost for backlogged
//! demand (exact for Poisson demand, closed form for normal demand).
//!
//! ```
//! use taper_envs::inventory::heuristics::backlog_normal_base_stock;
//! // environments reference §2.6: L = 4, p = 9, Normal(5, 1.6): S* = 29.585, C* = 6.279.
//! let (s, c) = backlog_normal_base_stock(5.0, 1.6, 1.0, 9.0, 4).unwrap();
//! assert!((s - 29.585).abs() < 1e-3 && (c - 6.279).abs() < 1e-3);
//! ```

use crate::error::{EnvError, Result};
use crate::inventory::chain::{policy_cost, ChainOptions, PolicyCost, MAX_UNITS};
use rand::SeedableRng;
use rand_distr::{Distribution, Poisson};
use serde::{Deserialize, Serialize};

/// Standard normal density.
pub fn phi(z: f64) -> f64 {
    (-0.5 * z * z).exp() / (2.0 * std::f64::consts::PI).sqrt()
}

/// Standard normal CDF (Abramowitz–Stegun 7.1.26 through erf, |error| < 1.5e-7).
pub fn big_phi(z: f64) -> f64 {
    let x = z / std::f64::consts::SQRT_2;
    let t = 1.0 / (1.0 + 0.327_591_1 * x.abs());
    let y = 1.0
        - (((((1.061_405_429 * t - 1.453_152_027) * t) + 1.421_413_741) * t - 0.284_496_736) * t + 0.254_829_592)
            * t
            * (-x * x).exp();
    let erf = if x >= 0.0 { y } else { -y };
    0.5 * (1.0 + erf)
}

/// Inverse standard normal CDF by bisection on [`big_phi`] (to 1e-10).
pub fn inv_phi(p: f64) -> f64 {
    let (mut lo, mut hi) = (-10.0, 10.0);
    for _ in 0..200 {
        let mid = 0.5 * (lo + hi);
        if big_phi(mid) < p {
            lo = mid;
        } else {
            hi = mid;
        }
    }
    0.5 * (lo + hi)
}

fn check_costs(h: f64, p: f64) -> Result<()> {
    if !(h >= 0.0 && h.is_finite()) {
        return Err(EnvError::Invalid {
            name: "h",
            reason: format!("holding cost must be >= 0, got {h}"),
        });
    }
    if !(p >= 0.0 && p.is_finite()) {
        return Err(EnvError::Invalid {
            name: "p",
            reason: format!("penalty must be >= 0, got {p}"),
        });
    }
    if h + p <= 0.0 {
        return Err(EnvError::Invalid {
            name: "p",
            reason: "h + p must be positive".into(),
        });
    }
    Ok(())
}

/// Backlogged demand, Normal(mean, std) i.i.d. (normal approximation, ignoring the clip at 0):
/// the optimal base-stock level `S* = (L+1)μ + z*σ√(L+1)` and cost `(h+p)σ√(L+1)φ(z*)`,
/// `z* = Φ⁻¹(p/(p+h))`.
pub fn backlog_normal_base_stock(mean: f64, std: f64, h: f64, p: f64, lead_time: usize) -> Result<(f64, f64)> {
    check_costs(h, p)?;
    let s = std * ((lead_time + 1) as f64).sqrt();
    let z = inv_phi(p / (p + h));
    Ok(((lead_time + 1) as f64 * mean + z * s, (h + p) * s * phi(z)))
}

/// Backlogged demand, Poisson(mean) i.i.d.: the exact optimal integer base-stock level and
/// its cost, from the distribution of demand over L+1 periods, Poisson((L+1)·mean).
pub fn backlog_poisson_base_stock(mean: f64, h: f64, p: f64, lead_time: usize) -> Result<(i64, f64)> {
    check_costs(h, p)?;
    let lam = (lead_time + 1) as f64 * mean;
    let kmax = (lam + 20.0 * lam.sqrt() + 20.0) as usize;
    let mut pmf = vec![(-lam).exp()];
    for k in 1..=kmax {
        let prev = pmf[k - 1];
        pmf.push(prev * lam / k as f64);
    }
    let cost = |s: i64| -> f64 {
        pmf.iter()
            .enumerate()
            .map(|(d, &pd)| {
                let x = s - d as i64;
                pd * if x >= 0 { h * x as f64 } else { p * (-x) as f64 }
            })
            .sum()
    };
    let mut best = (0i64, cost(0));
    for s in 1..=kmax as i64 {
        let c = cost(s);
        if c < best.1 {
            best = (s, c);
        }
    }
    Ok(best)
}

/// A lost-sales heuristic's best parameters.
#[derive(Debug, Clone, Copy, PartialEq, Serialize, Deserialize)]
pub struct HeuristicResult {
    /// Base-stock level S: order up to S minus the inventory position.
    pub level: i64,
    /// Order cap (capped base-stock), if any.
    pub cap: Option<i64>,
    /// Exact long-run average cost per period (midpoint of `bounds`).
    pub cost: f64,
    /// Lower and upper bounds on the cost from the chain's value iteration.
    pub bounds: (f64, f64),
    /// Policies evaluated in the search.
    pub evaluated: usize,
}

/// One store with Poisson demand and lost sales.
#[derive(Debug, Clone, Copy, PartialEq, Serialize, Deserialize)]
pub struct LostSalesStore {
    /// Mean demand per period (Poisson).
    pub mean: f64,
    /// Holding cost.
    pub h: f64,
    /// Lost-sales penalty.
    pub p: f64,
    /// Lead time (Zipkin's convention).
    pub lead_time: usize,
}

/// Average cost per period of a (capped) base-stock policy `(level, cap)` for lost sales,
/// simulated over `periods` periods after a warm-up of 1000, with demand from `seed` (an
/// estimate; [`base_stock_cost`] is exact).
pub fn simulate_lost_sales(store: &LostSalesStore, level: i64, cap: Option<i64>, periods: usize, seed: u64) -> f64 {
    let LostSalesStore { mean, h, p, lead_time } = *store;
    // The env's own dynamics (integer quantities are exact in f64).
    let cfg = crate::inventory::StoreConfig {
        demand: crate::inventory::Demand::Poisson { mean },
        h,
        p,
        lead_time,
        backlog: false,
        horizon: usize::MAX,
        max_order: f64::MAX,
    };
    let mut rng = rand_chacha::ChaCha8Rng::seed_from_u64(seed);
    let pois = Poisson::new(mean).expect("positive mean");
    let mut x = vec![0f64; cfg.state_dim()]; // x[0] on hand, x[j] arrives in j periods
    let warm = 1000;
    let mut total = 0.0;
    for t in 0..warm + periods {
        let ip: f64 = x.iter().sum();
        let mut q = (level as f64 - ip).max(0.0);
        if let Some(c) = cap {
            q = q.min(c as f64);
        }
        let d: f64 = pois.sample(&mut rng);
        let c = crate::inventory::single::store_step(&cfg, &mut x, q, d);
        if t >= warm {
            total += c;
        }
    }
    total / periods as f64
}

/// The exact long-run cost of the (capped) base-stock policy `(level, cap)`.
pub fn base_stock_cost(store: &LostSalesStore, level: i64, cap: Option<i64>) -> Result<PolicyCost> {
    if level < 0 || level > MAX_UNITS as i64 || cap.is_some_and(|c| c < 0) {
        return Err(EnvError::Invalid {
            name: "level",
            reason: format!("base-stock level and cap must be in 0..={MAX_UNITS}, got {level} and {cap:?}"),
        });
    }
    let s = level as u16;
    let cap = cap.map(|c| c.min(MAX_UNITS as i64) as u16);
    policy_cost(
        store,
        &mut |x: &[u16]| {
            let q = s.saturating_sub(x.iter().sum());
            Ok(cap.map_or(q, |c| q.min(c)))
        },
        &ChainOptions::default(),
    )
}

/// The exact costs of the candidates, searched in parallel; the first of the cheapest wins,
/// so the answer does not depend on the thread count.
fn best_of(store: &LostSalesStore, candidates: &[(i64, Option<i64>)]) -> Result<HeuristicResult> {
    use rayon::prelude::*;
    let costs = candidates
        .par_iter()
        .map(|&(s, c)| base_stock_cost(store, s, c))
        .collect::<Result<Vec<_>>>()?;
    let mut best: Option<HeuristicResult> = None;
    for (&(level, cap), c) in candidates.iter().zip(&costs) {
        if best.is_none_or(|b| c.cost < b.cost) {
            best = Some(HeuristicResult {
                level,
                cap,
                cost: c.cost,
                bounds: c.bounds,
                evaluated: candidates.len(),
            });
        }
    }
    best.ok_or_else(|| EnvError::Invalid {
        name: "level",
        reason: "no candidate policies".into(),
    })
}

/// Morton's bound for the store: the backlog system's optimal base-stock level.
fn morton_level(store: &LostSalesStore) -> Result<i64> {
    Ok(backlog_poisson_base_stock(store.mean, store.h, store.p, store.lead_time)?.0)
}

/// The best base-stock level for lost sales: every integer level from 0 to Morton's bound + 4
/// (the backlog system's optimal level; the search widens while its best is at the top),
/// each evaluated exactly.
pub fn best_lost_sales_base_stock(store: &LostSalesStore) -> Result<HeuristicResult> {
    check_costs(store.h, store.p)?;
    let mut hi = morton_level(store)? + 4;
    loop {
        let cands: Vec<_> = (0..=hi).map(|s| (s, None)).collect();
        let mut best = best_of(store, &cands)?;
        if best.level < hi {
            best.evaluated = cands.len();
            return Ok(best);
        }
        hi += 4;
    }
}

/// The best capped base-stock policy for lost sales: levels from the best base-stock level
/// to Morton's bound + 4 and caps from ⌊mean⌋ to ⌈mean + 4√mean⌉, every pair evaluated
/// exactly; a range widens while the best pair is on its upper edge.
pub fn best_lost_sales_capped_base_stock(store: &LostSalesStore) -> Result<HeuristicResult> {
    let base = best_lost_sales_base_stock(store)?;
    let (m, sd) = (store.mean, store.mean.sqrt());
    let lo_cap = (m.floor() as i64).max(1);
    let (mut hi_s, mut hi_cap) = (morton_level(store)?.max(base.level) + 4, (m + 4.0 * sd).ceil() as i64);
    let mut evaluated = base.evaluated;
    loop {
        let cands: Vec<_> = (base.level..=hi_s)
            .flat_map(|s| (lo_cap..=hi_cap).map(move |c| (s, Some(c))))
            .collect();
        let best = best_of(store, &cands)?;
        evaluated += cands.len();
        let (s_edge, cap_edge) = (best.level == hi_s, best.cap == Some(hi_cap));
        if !s_edge && !cap_edge {
            let best = if base.cost <= best.cost { base } else { best };
            return Ok(HeuristicResult { evaluated, ..best });
        }
        hi_s += 4 * s_edge as i64;
        hi_cap += 4 * cap_edge as i64;
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// environments reference §2.6 table (closed form): L = 1, p = 4 → 3.167; L = 20,
    /// p = 39 → 17.141; L = 10, p = 19 → 10.946.
    #[test]
    fn backlog_closed_form_table() {
        for (l, p, want) in [
            (1usize, 4.0, 3.167),
            (20, 39.0, 17.141),
            (10, 19.0, 10.946),
            (4, 9.0, 6.279),
        ] {
            let (_, c) = backlog_normal_base_stock(5.0, 1.6, 1.0, p, l).unwrap();
            assert!((c - want).abs() < 2e-3, "L={l} p={p}: {c} vs {want}");
        }
    }

    #[test]
    fn normal_cdf_and_inverse() {
        assert!((big_phi(0.0) - 0.5).abs() < 1e-7);
        assert!((big_phi(1.96) - 0.975).abs() < 1e-4);
        assert!((inv_phi(0.9) - 1.281_551_6).abs() < 1e-5);
    }

    #[test]
    fn poisson_backlog_is_a_newsvendor() {
        // L = 0: one period of Poisson(5) demand, critical ratio 0.8. Hand-computed:
        // E[(S−D)⁺] + 4E[(D−S)⁺] is 3.466488 at S = 6, 3.277405 at S = 7, 3.610546 at S = 8.
        let (s, c) = backlog_poisson_base_stock(5.0, 1.0, 4.0, 0).unwrap();
        assert_eq!(s, 7);
        assert!((c - 3.277405).abs() < 1e-5, "{c}");
        assert!(backlog_poisson_base_stock(5.0, -1.0, 4.0, 0).is_err());
    }
}
