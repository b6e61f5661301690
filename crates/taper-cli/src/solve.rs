//! `taper solve`: exact or heuristic optima where the crate has a solver.

use crate::error::{CliError, Result};
use serde_json::json;
use taper::envs::inventory::{dp, heuristics};

/// Inventory flags shared by every inventory command.
#[derive(clap::Args, Debug, Clone)]
pub struct InventoryArgs {
    /// Mean demand per period.
    #[arg(long, default_value_t = 5.0, allow_negative_numbers = true)]
    pub demand_mean: f64,
    /// Demand standard deviation (normal demand; backlog only).
    #[arg(long)]
    pub demand_std: Option<f64>,
    /// Lead time L (Zipkin's convention: an order placed in period t meets demand from t+L).
    #[arg(long, default_value_t = 4)]
    pub lead_time: usize,
    /// Penalty per unit of lost sales (or backlog).
    #[arg(long, default_value_t = 4.0, allow_negative_numbers = true)]
    pub p: f64,
    /// Holding cost per unit per period.
    #[arg(long, default_value_t = 1.0, allow_negative_numbers = true)]
    pub h: f64,
}

/// The inventory flags of `taper train`, all optional; given ones become env kwargs.
#[derive(clap::Args, Debug, Clone, Default)]
pub struct InventoryFlags {
    /// Inventory envs: mean demand per period.
    #[arg(long, allow_negative_numbers = true)]
    pub demand_mean: Option<f64>,
    /// Inventory envs: demand standard deviation (backlog).
    #[arg(long, allow_negative_numbers = true)]
    pub demand_std: Option<f64>,
    /// Inventory envs: lead time L.
    #[arg(long)]
    pub lead_time: Option<usize>,
    /// Inventory envs: penalty per unit short.
    #[arg(long, allow_negative_numbers = true)]
    pub p: Option<f64>,
    /// Inventory envs: holding cost.
    #[arg(long, allow_negative_numbers = true)]
    pub h: Option<f64>,
}

impl InventoryFlags {
    /// The flags given, as env keyword arguments.
    pub fn to_kwargs(&self) -> taper::envs::Kwargs {
        let mut kw = taper::envs::Kwargs::new();
        if let Some(v) = self.demand_mean {
            kw.insert("demand_mean".into(), v.to_string());
        }
        if let Some(v) = self.demand_std {
            kw.insert("demand_std".into(), v.to_string());
        }
        if let Some(v) = self.lead_time {
            kw.insert("lead_time".into(), v.to_string());
        }
        if let Some(v) = self.p {
            kw.insert("p".into(), v.to_string());
        }
        if let Some(v) = self.h {
            kw.insert("h".into(), v.to_string());
        }
        kw
    }
}

/// Solves `env` and returns the JSON answer.
pub fn solve(env: &str, inv: &InventoryArgs, kwargs: &taper::envs::Kwargs) -> Result<serde_json::Value> {
    match env {
        "InventoryLostSales-v0" => {
            if inv.demand_std.is_some() {
                return Err(CliError::Arg {
                    arg: "--demand-std",
                    reason: "lost sales uses Poisson demand".into(),
                });
            }
            let r = dp::lost_sales_optimum(&dp::LostSalesDp {
                mean: inv.demand_mean,
                h: inv.h,
                p: inv.p,
                lead_time: inv.lead_time,
                ..Default::default()
            })?;
            let (m, h, p, l) = (inv.demand_mean, inv.h, inv.p, inv.lead_time);
            let bs = heuristics::best_lost_sales_base_stock(m, h, p, l, 200_000, 1)?;
            let cbs = heuristics::best_lost_sales_capped_base_stock(m, h, p, l, 200_000, 1)?;
            let mut state = vec!["on_hand".to_string()];
            state.extend((1..l).map(|j| format!("arriving_in_{j}")));
            Ok(json!({
                "env": env,
                "demand": {"distribution": "poisson", "mean": m},
                "h": h, "p": p, "lead_time": l,
                "method": "relative value iteration (exact)",
                "optimal_cost": r.optimal_cost,
                "bounds": [r.bounds.0, r.bounds.1],
                "iterations": r.iterations,
                "policy": {
                    "kind": "order table",
                    "state": state,
                    "max_order": r.caps.0,
                    "max_on_hand": r.caps.1,
                    "index": "row-major over the state, on_hand slowest",
                    "orders": r.policy,
                },
                "base_stock": {"level": bs.level, "cost": bs.cost, "method": "simulation, 200000 periods"},
                "capped_base_stock": {"level": cbs.level, "cap": cbs.cap, "cost": cbs.cost, "method": "simulation, 200000 periods"},
            }))
        }
        "InventoryBacklog-v0" => {
            let (m, h, p, l) = (inv.demand_mean, inv.h, inv.p, inv.lead_time);
            match inv.demand_std {
                Some(sd) => {
                    if sd.is_nan() || sd <= 0.0 {
                        return Err(CliError::Arg {
                            arg: "--demand-std",
                            reason: format!("must be > 0, got {sd}"),
                        });
                    }
                    let (s, c) = heuristics::backlog_normal_base_stock(m, sd, h, p, l)?;
                    Ok(json!({
                        "env": env, "demand": {"distribution": "normal", "mean": m, "std": sd},
                        "h": h, "p": p, "lead_time": l,
                        "method": "base-stock is optimal; closed form (normal approximation)",
                        "optimal_cost": c,
                        "policy": {"kind": "base-stock", "level": s},
                    }))
                }
                None => {
                    let (s, c) = heuristics::backlog_poisson_base_stock(m, h, p, l)?;
                    Ok(json!({
                        "env": env, "demand": {"distribution": "poisson", "mean": m},
                        "h": h, "p": p, "lead_time": l,
                        "method": "base-stock is optimal; exact newsvendor over L+1 periods",
                        "optimal_cost": c,
                        "policy": {"kind": "base-stock", "level": s},
                    }))
                }
            }
        }
        _ => {
            let (mdp, limit) = taper::envs::registry::make_tabular(env, kwargs).map_err(|_| CliError::Arg {
                arg: "--env",
                reason: format!(
                    "no solver for `{env}`; solvable: InventoryLostSales-v0, InventoryBacklog-v0, FrozenLake-v1, FrozenLake8x8-v1, CliffWalking-v1"
                ),
            })?;
            use taper::envs::solve::{best_stationary, finite_horizon, value_iteration};
            match limit {
                Some(hz) => {
                    let fh = finite_horizon(mdp.as_ref(), hz);
                    let (best, pol) = best_stationary(mdp.as_ref(), hz);
                    Ok(json!({
                        "env": env, "horizon": hz,
                        "method": "finite-horizon DP (any policy) and value iteration as gamma -> 1 (stationary)",
                        "optimal_cost": -fh.start_value,
                        "optimal_return": fh.start_value,
                        "best_stationary_return": best,
                        "policy": pol,
                    }))
                }
                None => {
                    let vi = value_iteration(mdp.as_ref(), 1.0, 1e-9, 100_000);
                    let start = mdp.start_state();
                    Ok(json!({
                        "env": env, "method": "value iteration (undiscounted)",
                        "optimal_cost": -vi.values[start],
                        "optimal_return": vi.values[start],
                        "policy": vi.policy,
                    }))
                }
            }
        }
    }
}
