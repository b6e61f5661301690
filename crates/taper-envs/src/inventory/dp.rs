//! Exact average-cost optimum of a single store with lost sales, by relative value iteration
//! on the on-hand-plus-pipeline state (the instances of Zipkin 2008, "Old and new methods for
//! lost-sales inventory systems", Operations Research 56(5)).
//!
//! State at the start of a period: `(x_0, x_1, …, x_{L−1})`, with `x_0` on hand and `x_j` the
//! order that arrives `j` periods from now. The store orders `q`, demand `D` occurs, the cost
//! `h·(x_0 − D)⁺ + p·(D − x_0)⁺` is charged, unmet demand is lost, and the next state is
//! `((x_0 − D)⁺ + x_1, x_2, …, x_{L−1}, q)`: an order placed in period t meets demand from
//! period t + L on (Zipkin's convention; L = 1 means next period).
//!
//! **The state space is finite without changing the problem.** Morton (1971, "The near-myopic
//! nature of the lagged-proportional-cost inventory problem with lost sales", Operations
//! Research 19(7)) shows that an optimal lost-sales policy never raises the inventory position
//! `x_0 + … + x_{L−1} + q` above `S̄`, the optimal base-stock level of the same store with
//! backlogged demand (the `p/(p+h)` quantile of demand over L+1 periods). The solver keeps the
//! states and orders with inventory position at most a cap `S ≥ S̄ + 2`; that set is closed
//! under those orders, so nothing is clamped or thrown away, and restricting the orders can only
//! raise the cost. It then follows the optimal policy from the empty state and checks that no
//! reachable state orders up to the cap: if one does, the cap is raised and the problem solved
//! again, and with a cap fixed by the caller the answer is a typed error. The Poisson tail
//! beyond `P(D > d) < 1e-12` is folded into its last point. The state count is
//! `C(S + L, L)` (82 251 for L = 4, p = 39); [`MAX_STATES`] bounds it.
//!
//! ```
//! use taper_envs::inventory::dp::{lost_sales_optimum, LostSalesDp};
//! // Zipkin (2008), Table 3(a): Poisson(5), h = 1, p = 4, L = 1.
//! let r = lost_sales_optimum(&LostSalesDp { mean: 5.0, h: 1.0, p: 4.0, lead_time: 1, ..Default::default() })?;
//! assert!(r.optimal_cost > 4.0 && r.optimal_cost < 4.1);
//! assert!(r.cap_check.highest_position < r.cap_check.max_position);
//! # Ok::<(), taper_envs::EnvError>(())
//! ```

use crate::error::{EnvError, Result};
use crate::inventory::lattice::Lattice;
use serde::{Deserialize, Serialize};

/// The largest lead time the exact solver takes.
pub const MAX_LEAD_TIME: usize = 6;

/// The most states the exact solver keeps.
pub const MAX_STATES: usize = 4_000_000;

/// A lost-sales instance and the solver's settings.
#[derive(Debug, Clone, Copy, PartialEq, Serialize, Deserialize)]
pub struct LostSalesDp {
    /// Mean of the Poisson demand.
    pub mean: f64,
    /// Holding cost per unit left at the end of a period.
    pub h: f64,
    /// Penalty per unit of lost sales.
    pub p: f64,
    /// Lead time L ≥ 1 (Zipkin's convention).
    pub lead_time: usize,
    /// The cap on the inventory position after ordering; 0 starts from Morton's bound + 2 and
    /// raises it until the optimal policy never reaches it. A cap given here is kept, and the
    /// solver fails if the policy reaches it.
    pub max_position: usize,
    /// Stop when the span of the value update is below this.
    pub tol: f64,
    /// Most sweeps.
    pub max_iters: usize,
}

impl Default for LostSalesDp {
    fn default() -> Self {
        LostSalesDp {
            mean: 5.0,
            h: 1.0,
            p: 4.0,
            lead_time: 4,
            max_position: 0,
            tol: 1e-7,
            max_iters: 20_000,
        }
    }
}

/// The check that the cap on the inventory position did not bind.
#[derive(Debug, Clone, Copy, PartialEq, Serialize, Deserialize)]
pub struct CapCheck {
    /// The cap `S` on the inventory position after ordering.
    pub max_position: usize,
    /// Morton's bound `S̄` (the backlog system's optimal base-stock level).
    pub morton_bound: usize,
    /// The highest inventory position after ordering that the optimal policy reaches from the
    /// empty state (below `max_position` when the cap does not bind).
    pub highest_position: usize,
    /// States reachable from the empty state under the optimal policy.
    pub reachable_states: usize,
    /// Caps tried before this one passed.
    pub raised: usize,
}

/// The solver's answer.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct LostSalesSolution {
    /// The optimal long-run average cost per period (midpoint of the final bounds).
    pub optimal_cost: f64,
    /// Lower and upper bounds on it from the last sweep.
    pub bounds: (f64, f64),
    /// Sweeps done (last cap).
    pub iterations: usize,
    /// The cap and its check.
    pub cap_check: CapCheck,
    /// The optimal order in each state with inventory position ≤ the cap, states in
    /// lexicographic order of `(x_0, x_1, …, x_{L−1})`.
    pub policy: Vec<u16>,
}

pub(crate) fn poisson_pmf(mean: f64, tol: f64) -> Vec<f64> {
    let mut pmf = vec![(-mean).exp()];
    let mut cdf = pmf[0];
    let mut k = 0usize;
    while 1.0 - cdf > tol && k < 10_000 {
        k += 1;
        let next = pmf[k - 1] * mean / k as f64;
        pmf.push(next);
        cdf += next;
    }
    let last = pmf.len() - 1;
    pmf[last] += (1.0 - cdf).max(0.0);
    pmf
}

/// Post-demand on-hand distributions `P(k | x_0)` and expected period costs `c(x_0)` for
/// on-hand levels `0..=max_on_hand`.
pub(crate) fn period_tables(pmf: &[f64], h: f64, p: f64, max_on_hand: usize) -> (Vec<Vec<f64>>, Vec<f64>) {
    let mut post = Vec::with_capacity(max_on_hand + 1);
    let mut cost = Vec::with_capacity(max_on_hand + 1);
    for x0 in 0..=max_on_hand {
        let mut pk = vec![0f64; x0 + 1];
        let mut c = 0.0;
        for (d, &pd) in pmf.iter().enumerate() {
            if d <= x0 {
                pk[x0 - d] += pd;
                c += pd * h * (x0 - d) as f64;
            } else {
                pk[0] += pd;
                c += pd * p * (d - x0) as f64;
            }
        }
        post.push(pk);
        cost.push(c);
    }
    (post, cost)
}

/// Checks an instance's parameters.
pub fn validate(c: &LostSalesDp) -> Result<()> {
    let bad = |name: &'static str, reason: String| Err(EnvError::Invalid { name, reason });
    if !(c.h >= 0.0 && c.h.is_finite()) {
        return bad("h", format!("holding cost must be >= 0, got {}", c.h));
    }
    if !(c.p >= 0.0 && c.p.is_finite()) {
        return bad("p", format!("lost-sales penalty must be >= 0, got {}", c.p));
    }
    if c.h + c.p <= 0.0 {
        return bad("p", "h + p must be positive".into());
    }
    if !(c.mean >= 0.01 && c.mean <= 50.0) {
        return bad(
            "demand_mean",
            format!("the exact solver takes a Poisson mean in [0.01, 50], got {}", c.mean),
        );
    }
    if c.lead_time == 0 || c.lead_time > MAX_LEAD_TIME {
        return bad(
            "lead_time",
            format!(
                "the exact solver takes 1 <= L <= {MAX_LEAD_TIME}, got {}: its state count grows as \
                 C(S + L, L) with S the cap on the inventory position",
                c.lead_time
            ),
        );
    }
    if !(c.tol > 0.0) || c.max_iters == 0 {
        return bad("tol", "needs tol > 0 and max_iters >= 1".into());
    }
    Ok(())
}

/// One cap's solution: the value iteration and the reach of its policy.
struct Solved {
    bounds: (f64, f64),
    iterations: usize,
    policy: Vec<u16>,
    highest: usize,
    reachable: usize,
}

/// Solves the instance by relative value iteration over the states with inventory position at
/// most the cap, raising the cap until the optimal policy does not reach it.
pub fn lost_sales_optimum(c: &LostSalesDp) -> Result<LostSalesSolution> {
    validate(c)?;
    let (morton, _) = crate::inventory::heuristics::backlog_poisson_base_stock(c.mean, c.h, c.p, c.lead_time)?;
    let morton = morton.max(0) as usize;
    let fixed = c.max_position > 0;
    let mut cap = if fixed { c.max_position } else { morton + 2 };
    let pmf = poisson_pmf(c.mean, 1e-12);
    let mut raised = 0;
    loop {
        let lattice = Lattice::new(c.lead_time, cap, MAX_STATES)?;
        let s = solve_capped(c, &lattice, &pmf)?;
        if s.highest < cap {
            return Ok(LostSalesSolution {
                optimal_cost: 0.5 * (s.bounds.0 + s.bounds.1),
                bounds: s.bounds,
                iterations: s.iterations,
                cap_check: CapCheck {
                    max_position: cap,
                    morton_bound: morton,
                    highest_position: s.highest,
                    reachable_states: s.reachable,
                    raised,
                },
                policy: s.policy,
            });
        }
        if fixed {
            return Err(EnvError::Invalid {
                name: "max_position",
                reason: format!(
                    "the optimal policy orders up to the cap {cap} on the inventory position, so the cap binds; \
                     leave it at 0 to let the solver choose it"
                ),
            });
        }
        cap += (cap / 8).max(2);
        raised += 1;
    }
}

fn solve_capped(c: &LostSalesDp, lat: &Lattice, pmf: &[f64]) -> Result<Solved> {
    let l = c.lead_time;
    let cap = lat.cap();
    let n = lat.len();
    let (post, cost) = period_tables(pmf, c.h, c.p, cap);
    // Per state: on-hand, inventory position, and for L ≥ 2 the next state's number for each
    // post-demand on-hand k with a new order of 0 (the order q adds q).
    let mut x0s = vec![0u16; n];
    let mut ips = vec![0u16; n];
    let mut first = vec![0u32; n + 1];
    let mut next0: Vec<u32> = Vec::new();
    for s in 0..n {
        let x = lat.state(s);
        x0s[s] = x[0];
        ips[s] = x.iter().sum();
        first[s] = next0.len() as u32;
        if l >= 2 {
            for k in 0..=x[0] as usize {
                let y0 = k + x[1] as usize;
                let base = lat.rank_prefix(std::iter::once(y0).chain(x[2..].iter().map(|&v| v as usize)));
                next0.push(base as u32);
            }
        }
    }
    first[n] = next0.len() as u32;
    let mut v = vec![0f64; n];
    let mut v_new = vec![0f64; n];
    let mut policy = vec![0u16; n];
    let mut buf = vec![0f64; cap + 1];
    let mut bounds = (f64::NEG_INFINITY, f64::INFINITY);
    let mut iterations = 0;
    for it in 0..c.max_iters {
        for s in 0..n {
            let x0 = x0s[s] as usize;
            let qmax = cap - ips[s] as usize;
            let buf = &mut buf[..=qmax];
            buf.iter_mut().for_each(|b| *b = 0.0);
            let pk = &post[x0];
            if l >= 2 {
                let bases = &next0[first[s] as usize..first[s + 1] as usize];
                for (&pkk, &base) in pk.iter().zip(bases) {
                    if pkk == 0.0 {
                        continue;
                    }
                    let row = &v[base as usize..base as usize + qmax + 1];
                    for (b, &vv) in buf.iter_mut().zip(row) {
                        *b += pkk * vv;
                    }
                }
            } else {
                // L = 1: the order joins on-hand next period, next state k + q.
                for (k, &pkk) in pk.iter().enumerate() {
                    if pkk == 0.0 {
                        continue;
                    }
                    for (b, &vv) in buf.iter_mut().zip(&v[k..k + qmax + 1]) {
                        *b += pkk * vv;
                    }
                }
            }
            let (mut best, mut bq) = (f64::INFINITY, 0usize);
            for (q, &b) in buf.iter().enumerate() {
                if b < best - 1e-12 {
                    best = b;
                    bq = q;
                }
            }
            v_new[s] = cost[x0] + best;
            policy[s] = bq as u16;
        }
        let (mut lo, mut hi) = (f64::INFINITY, f64::NEG_INFINITY);
        for (a, b) in v_new.iter().zip(&v) {
            let d = a - b;
            lo = lo.min(d);
            hi = hi.max(d);
        }
        bounds = (lo, hi);
        iterations = it + 1;
        let r = v_new[0];
        for (dst, src) in v.iter_mut().zip(&v_new) {
            *dst = src - r;
        }
        if hi - lo < c.tol {
            break;
        }
    }
    if !(bounds.1 - bounds.0 < c.tol) {
        return Err(EnvError::Invalid {
            name: "max_iters",
            reason: format!(
                "relative value iteration did not converge in {} sweeps (bounds {:.6}..{:.6})",
                c.max_iters, bounds.0, bounds.1
            ),
        });
    }
    // Follow the policy from the empty state (number 0).
    let mut seen = vec![false; n];
    let mut stack = vec![0usize];
    seen[0] = true;
    let (mut highest, mut reachable) = (0usize, 0usize);
    while let Some(s) = stack.pop() {
        reachable += 1;
        let q = policy[s] as usize;
        highest = highest.max(ips[s] as usize + q);
        let pk = &post[x0s[s] as usize];
        for (k, &pkk) in pk.iter().enumerate() {
            if pkk == 0.0 {
                continue;
            }
            let t = if l >= 2 {
                next0[first[s] as usize + k] as usize + q
            } else {
                k + q
            };
            if !seen[t] {
                seen[t] = true;
                stack.push(t);
            }
        }
    }
    Ok(Solved {
        bounds,
        iterations,
        policy,
        highest,
        reachable,
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn limits_are_typed_errors() {
        let e = lost_sales_optimum(&LostSalesDp {
            lead_time: 9,
            ..Default::default()
        })
        .unwrap_err();
        assert!(e.to_string().contains("1 <= L <= 6"), "{e}");
        assert!(lost_sales_optimum(&LostSalesDp {
            h: -1.0,
            ..Default::default()
        })
        .is_err());
        assert!(lost_sales_optimum(&LostSalesDp {
            p: f64::NAN,
            ..Default::default()
        })
        .is_err());
        assert!(lost_sales_optimum(&LostSalesDp {
            lead_time: 0,
            ..Default::default()
        })
        .is_err());
    }
}
