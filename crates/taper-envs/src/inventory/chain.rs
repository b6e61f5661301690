//! The exact long-run cost of any integer policy for one store with lost sales and Poisson
//! demand, by the Markov chain the policy induces on the states reachable from the empty
//! state (nothing on hand or in the pipeline).
//!
//! The chain is built by a search from the empty state: each state `(x_0, x_1, …, x_{L−1})`
//! asks the policy for its order `q`, and moves to `(k + x_1, x_2, …, x_{L−1}, q)` with
//! probability `P(post-demand on-hand = k | x_0)` (`k + q` when L = 1), as in
//! [`dp`](crate::inventory::dp). The average cost is then found by relative value iteration
//! on the chain (damped, so periodic chains converge too), whose span gives a lower and an
//! upper bound: the cost is exact to the tolerance, and the bounds say how exact. A policy
//! whose reachable states exceed the limit gets a typed error; estimate it by simulation
//! instead.
//!
//! ```
//! use taper_envs::inventory::chain::{policy_cost, ChainOptions};
//! use taper_envs::inventory::heuristics::LostSalesStore;
//! let store = LostSalesStore { mean: 5.0, h: 1.0, p: 4.0, lead_time: 1 };
//! // Base-stock 12: order up to 12 on hand plus on order.
//! let c = policy_cost(&store, &mut |x: &[u16]| Ok(12u16.saturating_sub(x.iter().sum())), &ChainOptions::default())?;
//! assert!((c.cost - 4.1628).abs() < 1e-4, "{}", c.cost);
//! assert!(c.bounds.1 - c.bounds.0 < 1e-7);
//! # Ok::<(), taper_envs::EnvError>(())
//! ```

use crate::error::{EnvError, Result};
use crate::inventory::dp::{period_tables, poisson_pmf, MAX_LEAD_TIME};
use crate::inventory::heuristics::LostSalesStore;
use serde::{Deserialize, Serialize};
use std::collections::HashMap;

/// Largest quantity per state coordinate (10 bits each in the search's keys).
pub const MAX_UNITS: u16 = 1023;

/// Limits of the exact evaluation.
#[derive(Debug, Clone, Copy, PartialEq, Serialize, Deserialize)]
pub struct ChainOptions {
    /// Most reachable states.
    pub max_states: usize,
    /// Stop when the bounds on the cost are closer than this.
    pub tol: f64,
    /// Most sweeps.
    pub max_iters: usize,
}

impl Default for ChainOptions {
    fn default() -> Self {
        ChainOptions {
            max_states: 2_000_000,
            tol: 1e-8,
            max_iters: 100_000,
        }
    }
}

/// A policy's exact long-run average cost per period.
#[derive(Debug, Clone, Copy, PartialEq, Serialize, Deserialize)]
pub struct PolicyCost {
    /// The cost (midpoint of the bounds).
    pub cost: f64,
    /// Lower and upper bounds on it.
    pub bounds: (f64, f64),
    /// States reachable from the empty state.
    pub states: usize,
    /// Sweeps of value iteration.
    pub iterations: usize,
}

fn key(x: &[u16]) -> u64 {
    x.iter().fold(0u64, |k, &v| (k << 10) | v as u64)
}

/// The long-run average cost of `policy` (state → order, both in units) on `store`, from the
/// empty state. Errors: bad store parameters, an order or state beyond [`MAX_UNITS`], more
/// than `max_states` reachable states, an error of the policy, or no convergence.
pub fn policy_cost(
    store: &LostSalesStore,
    policy: &mut dyn FnMut(&[u16]) -> Result<u16>,
    opts: &ChainOptions,
) -> Result<PolicyCost> {
    let l = store.lead_time;
    if l == 0 || l > MAX_LEAD_TIME {
        return Err(EnvError::Invalid {
            name: "lead_time",
            reason: format!("exact policy evaluation takes 1 <= L <= {MAX_LEAD_TIME}, got {l}"),
        });
    }
    crate::inventory::dp::validate(&crate::inventory::dp::LostSalesDp {
        mean: store.mean,
        h: store.h,
        p: store.p,
        lead_time: l,
        ..Default::default()
    })?;
    let pmf = poisson_pmf(store.mean, 1e-12);
    let (post, cost) = period_tables(&pmf, store.h, store.p, MAX_UNITS as usize);
    let too_big = |what: &str| EnvError::Invalid {
        name: "policy",
        reason: format!("{what} exceeds {MAX_UNITS} units; exact evaluation stops there"),
    };
    // Search from the empty state.
    let mut index: HashMap<u64, u32> = HashMap::new();
    let mut states: Vec<u16> = Vec::new();
    let mut orders: Vec<u16> = Vec::new();
    let mut first: Vec<u32> = vec![0];
    let mut to: Vec<u32> = Vec::new();
    let mut prob: Vec<f64> = Vec::new();
    states.extend(std::iter::repeat_n(0u16, l));
    index.insert(0, 0);
    let mut next = vec![0u16; l];
    let mut s = 0;
    while s < states.len() / l {
        let x: Vec<u16> = states[s * l..(s + 1) * l].to_vec();
        let q = policy(&x)?;
        if q > MAX_UNITS {
            return Err(too_big("an order"));
        }
        orders.push(q);
        for (k, &pk) in post[x[0] as usize].iter().enumerate() {
            if pk == 0.0 {
                continue;
            }
            if l >= 2 {
                next[0] = k as u16 + x[1];
                next[1..l - 1].copy_from_slice(&x[2..]);
                next[l - 1] = q;
            } else {
                next[0] = k as u16 + q;
            }
            if next[0] > MAX_UNITS {
                return Err(too_big("on-hand stock"));
            }
            let n = states.len() / l;
            let t = *index.entry(key(&next)).or_insert(n as u32);
            if t as usize == n {
                if n >= opts.max_states {
                    return Err(EnvError::Invalid {
                        name: "max_states",
                        reason: format!(
                            "the policy reaches more than {} states; estimate its cost by simulation",
                            opts.max_states
                        ),
                    });
                }
                states.extend_from_slice(&next);
            }
            to.push(t);
            prob.push(pk);
        }
        first.push(to.len() as u32);
        s += 1;
    }
    let n = states.len() / l;
    let c: Vec<f64> = (0..n).map(|s| cost[states[s * l] as usize]).collect();
    // Damped relative value iteration: v ← v + τ(c + Pv − v − g), bounds from c + Pv − v.
    let tau = 0.9;
    let mut v = vec![0f64; n];
    let mut d = vec![0f64; n];
    let mut bounds = (f64::NEG_INFINITY, f64::INFINITY);
    let mut iterations = 0;
    for it in 0..opts.max_iters {
        let (mut lo, mut hi) = (f64::INFINITY, f64::NEG_INFINITY);
        for s in 0..n {
            let (a, b) = (first[s] as usize, first[s + 1] as usize);
            let ev: f64 = to[a..b].iter().zip(&prob[a..b]).map(|(&t, &p)| p * v[t as usize]).sum();
            d[s] = c[s] + ev - v[s];
            lo = lo.min(d[s]);
            hi = hi.max(d[s]);
        }
        bounds = (lo, hi);
        iterations = it + 1;
        if hi - lo < opts.tol {
            break;
        }
        let r = d[0];
        for (vs, ds) in v.iter_mut().zip(&d) {
            *vs += tau * (ds - r);
        }
    }
    if !(bounds.1 - bounds.0 < opts.tol) {
        return Err(EnvError::Invalid {
            name: "max_iters",
            reason: format!(
                "the policy's cost did not settle in {} sweeps (bounds {:.6}..{:.6}); it may have \
                 several recurrent classes",
                opts.max_iters, bounds.0, bounds.1
            ),
        });
    }
    Ok(PolicyCost {
        cost: 0.5 * (bounds.0 + bounds.1),
        bounds,
        states: n,
        iterations,
    })
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::inventory::dp::{lost_sales_optimum, LostSalesDp};

    #[test]
    fn the_optimal_policy_costs_the_optimum() {
        // The DP's own policy, looked up by state, evaluated by the chain.
        for (l, p) in [(1usize, 9.0), (2, 4.0), (3, 39.0)] {
            let r = lost_sales_optimum(&LostSalesDp {
                mean: 5.0,
                h: 1.0,
                p,
                lead_time: l,
                ..Default::default()
            })
            .unwrap();
            let lat = crate::inventory::lattice::Lattice::new(l, r.cap_check.max_position, usize::MAX).unwrap();
            let store = LostSalesStore {
                mean: 5.0,
                h: 1.0,
                p,
                lead_time: l,
            };
            let c = policy_cost(
                &store,
                &mut |x: &[u16]| {
                    let xs: Vec<usize> = x.iter().map(|&v| v as usize).collect();
                    Ok(r.policy[lat.rank(&xs)])
                },
                &ChainOptions::default(),
            )
            .unwrap();
            assert!(
                (c.cost - r.optimal_cost).abs() < 1e-6,
                "L={l} p={p}: {} vs {}",
                c.cost,
                r.optimal_cost
            );
            assert_eq!(c.states, r.cap_check.reachable_states);
        }
    }

    #[test]
    fn ordering_nothing_loses_every_sale() {
        let store = LostSalesStore {
            mean: 3.0,
            h: 1.0,
            p: 2.0,
            lead_time: 2,
        };
        let c = policy_cost(&store, &mut |_| Ok(0), &ChainOptions::default()).unwrap();
        assert!((c.cost - 6.0).abs() < 1e-9, "{}", c.cost);
        assert_eq!(c.states, 1);
    }

    #[test]
    fn bad_policies_are_typed_errors() {
        let store = LostSalesStore {
            mean: 5.0,
            h: 1.0,
            p: 4.0,
            lead_time: 2,
        };
        // Orders 40 every period: stock grows without bound.
        assert!(policy_cost(&store, &mut |_| Ok(40), &ChainOptions::default()).is_err());
        assert!(policy_cost(&store, &mut |_| Ok(2000), &ChainOptions::default()).is_err());
        let small = ChainOptions {
            max_states: 10,
            ..Default::default()
        };
        assert!(policy_cost(&store, &mut |x| Ok(20u16.saturating_sub(x.iter().sum())), &small).is_err());
        let e = policy_cost(
            &store,
            &mut |_| {
                Err(EnvError::Invalid {
                    name: "policy",
                    reason: "no".into(),
                })
            },
            &ChainOptions::default(),
        );
        assert!(e.is_err());
        let l0 = LostSalesStore { lead_time: 0, ..store };
        assert!(policy_cost(&l0, &mut |_| Ok(0), &ChainOptions::default()).is_err());
    }
}
