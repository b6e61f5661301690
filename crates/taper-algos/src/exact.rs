//! The exact long-run cost of any learner's policy on one store with lost sales and Poisson
//! demand (`InventoryLostSales-v0`), and its gap to the optimum.
//!
//! The policy is asked for its order in every state reachable from the empty state, the order
//! is rounded to an integer and clipped to the env's action bounds, and the Markov chain these
//! orders induce gives the cost ([`taper_envs::inventory::chain`]); the optimum comes from the
//! exact solver ([`taper_envs::inventory::dp`]). The env itself starts from random stock; the
//! long-run cost of a policy with one recurrent class does not depend on the start.

use crate::error::{AlgoError, Result};
use serde::{Deserialize, Serialize};
use taper_envs::inventory::chain::{policy_cost, ChainOptions};
use taper_envs::inventory::dp::{lost_sales_optimum, LostSalesDp};
use taper_envs::inventory::heuristics::LostSalesStore;
use taper_envs::inventory::Demand;
use taper_envs::{EnvError, Kwargs};
use taper_train::Learner;

/// A policy's exact cost and gap.
#[derive(Debug, Clone, Copy, PartialEq, Serialize, Deserialize)]
pub struct ExactCost {
    /// Long-run average cost per period of the policy, orders rounded (midpoint of `bounds`).
    pub cost: f64,
    /// Lower and upper bounds on it.
    pub bounds: (f64, f64),
    /// States reachable from the empty state under the policy.
    pub states: usize,
    /// The optimal long-run average cost per period.
    pub optimal_cost: f64,
    /// `cost / optimal_cost − 1`.
    pub gap: f64,
}

/// The exact cost of `learner`'s deterministic policy on the one-store lost-sales env `env_id`
/// with `kwargs`; an error for other envs.
pub fn exact_store_cost(learner: &mut dyn Learner, env_id: &str, kwargs: &Kwargs) -> Result<ExactCost> {
    let unsupported = || AlgoError::Unsupported {
        algo: "exact evaluation",
        what: format!("{env_id}: it takes one store with lost sales and Poisson demand (InventoryLostSales-v0)"),
    };
    if !taper_envs::registry::is_inventory(env_id) || taper_envs::registry::is_inventory_network(env_id) {
        return Err(unsupported());
    }
    let cfg = taper_envs::registry::inventory_config(env_id, kwargs)?;
    let mean = match (cfg.backlog, cfg.demand) {
        (false, Demand::Poisson { mean }) => mean,
        _ => return Err(unsupported()),
    };
    let store = LostSalesStore {
        mean,
        h: cfg.h,
        p: cfg.p,
        lead_time: cfg.lead_time,
    };
    let mut obs = vec![0f32; cfg.lead_time];
    let max_order = cfg.max_order;
    let c = policy_cost(
        &store,
        &mut |x: &[u16]| {
            for (o, &v) in obs.iter_mut().zip(x) {
                *o = v as f32;
            }
            let a = learner.predict(&obs, true).map_err(|e| EnvError::Invalid {
                name: "policy",
                reason: e.to_string(),
            })?;
            let q = a.first().copied().unwrap_or(0.0) as f64;
            if !q.is_finite() {
                return Err(EnvError::Invalid {
                    name: "policy",
                    reason: format!("the policy ordered {q} in state {x:?}"),
                });
            }
            Ok(q.round().clamp(0.0, max_order) as u16)
        },
        &ChainOptions::default(),
    )?;
    let opt = lost_sales_optimum(&LostSalesDp {
        mean,
        h: cfg.h,
        p: cfg.p,
        lead_time: cfg.lead_time,
        ..Default::default()
    })?;
    Ok(ExactCost {
        cost: c.cost,
        bounds: c.bounds,
        states: c.states,
        optimal_cost: opt.optimal_cost,
        gap: c.cost / opt.optimal_cost - 1.0,
    })
}
