//! `taper solve`: exact or heuristic optima where the crate has a solver.

use crate::error::{CliError, Result};
use crate::{out, SolveArgs};
use serde_json::json;
use taper::envs::inventory::{dp, heuristics};

/// The inventory flags of `taper train` and `taper solve`, all optional. `train` passes the
/// given ones on as env kwargs; for one store `solve` takes the defaults shown, and for
/// networks absent flags keep the setting's own (heterogeneous) values.
#[derive(clap::Args, Debug, Clone, Default)]
pub struct InventoryFlags {
    /// InventoryBacklog-v0: demand distribution, normal (clipped at 0) or poisson [normal].
    #[arg(long)]
    pub demand: Option<String>,
    /// Inventory envs: mean demand per period [5].
    #[arg(long, allow_negative_numbers = true)]
    pub demand_mean: Option<f64>,
    /// Inventory envs: demand standard deviation (normal demand: backlog and networks).
    #[arg(long, allow_negative_numbers = true)]
    pub demand_std: Option<f64>,
    /// Inventory envs: lead time L (Zipkin's convention: an order placed in period t meets
    /// demand from t+L) [one store: 4].
    #[arg(long)]
    pub lead_time: Option<usize>,
    /// Inventory envs: penalty per unit of lost sales (or backlog) [one store: 9].
    #[arg(long, allow_negative_numbers = true)]
    pub p: Option<f64>,
    /// Inventory envs: holding cost per unit per period [one store: 1].
    #[arg(long, allow_negative_numbers = true)]
    pub h: Option<f64>,
    /// Inventory networks: number of stores (InventoryWarehouse-v0) [3].
    #[arg(long)]
    pub stores: Option<usize>,
}

impl InventoryFlags {
    /// The flags given, as env keyword arguments.
    pub fn to_kwargs(&self) -> taper::envs::Kwargs {
        let mut kw = taper::envs::Kwargs::new();
        if let Some(v) = &self.demand {
            kw.insert("demand".into(), v.clone());
        }
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
        if let Some(v) = self.stores {
            kw.insert("stores".into(), v.to_string());
        }
        kw
    }
}

/// Runs `taper solve`: prints the answer as text or one JSON object.
pub fn run(a: SolveArgs) -> Result<()> {
    let kw = match &a.env_kwargs {
        Some(s) => super::parse_kwargs(s)?,
        None => Default::default(),
    };
    let v = solve(&a.env, &a.inventory, &kw)?;
    if a.json {
        out!("{v}");
        return Ok(());
    }
    let method = v["method"].as_str().unwrap_or("");
    match v.get("optimal_return").and_then(|r| r.as_f64()) {
        Some(r) => out!("{}: optimal return {r:.4} ({method})", a.env),
        None => match v["optimal_cost"].as_f64() {
            Some(c) => out!("{}: optimal cost {c:.4} ({method})", a.env),
            None => out!("{}: no exact solver ({method})", a.env),
        },
    }
    if let Some(e) = v.get("echelon_base_stock") {
        out!(
            "  best echelon base-stock: cost {:.4} per store and period, levels {}",
            e["cost"].as_f64().unwrap_or(f64::NAN),
            e["levels"]
        );
    }
    if let Some(c) = v.get("cap_check") {
        out!(
            "  cap on the inventory position {} (Morton's bound {}); the optimal policy reaches {}",
            c["max_position"],
            c["morton_bound"],
            c["highest_position"]
        );
    }
    for (k, name) in [("base_stock", "base-stock"), ("capped_base_stock", "capped base-stock")] {
        if let Some(h) = v.get(k) {
            let cap = h.get("cap").map(|c| format!(", cap {c}")).unwrap_or_default();
            out!(
                "  best {name}: level {}{cap}, exact cost {:.4} ({:+.2}%)",
                h["level"],
                h["cost"].as_f64().unwrap_or(f64::NAN),
                100.0 * h["gap"].as_f64().unwrap_or(f64::NAN)
            );
        }
    }
    if let Some(st) = v.get("stationary_search") {
        let r = st["return"].as_f64().unwrap_or(f64::NAN);
        if st["proven_best"].as_bool() == Some(true) {
            out!("  best stationary policy: return {r:.4} (proven by search)");
        } else {
            out!(
                "  best stationary policy found: return {r:.4}; no stationary policy beats {:.4} (search unfinished)",
                st["upper_bound"].as_f64().unwrap_or(f64::NAN)
            );
        }
    }
    if let Some(p) = v.get("policy") {
        if p.get("orders").is_none() {
            out!("  policy: {p}");
        }
    }
    Ok(())
}

/// Solves `env` and returns the JSON answer.
pub fn solve(env: &str, args: &InventoryFlags, kwargs: &taper::envs::Kwargs) -> Result<serde_json::Value> {
    if taper::envs::registry::is_inventory_network(env) {
        let mut kw = kwargs.clone();
        kw.extend(args.to_kwargs());
        return solve_network(env, &kw);
    }
    if args.stores.is_some() {
        return Err(CliError::Arg {
            arg: "--stores",
            reason: format!("`{env}` has one store; --stores is for InventoryWarehouse-v0"),
        });
    }
    match env {
        "InventoryLostSales-v0" | "InventoryBacklog-v0" => {
            let mut kw = kwargs.clone();
            kw.extend(args.to_kwargs());
            solve_store(env, &taper::envs::registry::inventory_config(env, &kw)?)
        }
        _ => {
            const SOLVABLE: [&str; 3] = ["FrozenLake-v1", "FrozenLake8x8-v1", "CliffWalking-v1"];
            if !SOLVABLE.contains(&env) {
                return Err(CliError::Arg {
                    arg: "--env",
                    reason: format!(
                        "no solver for `{env}`; solvable: InventoryLostSales-v0, InventoryBacklog-v0, InventorySerial-v0, InventoryWarehouse-v0, {}",
                        SOLVABLE.join(", ")
                    ),
                });
            }
            // The env's own errors (bad keyword arguments) as they are.
            let (mdp, limit) = taper::envs::registry::make_tabular(env, kwargs)?;
            use taper::envs::solve::{best_stationary_search, finite_horizon, value_iteration};
            match limit {
                Some(hz) => {
                    let fh = finite_horizon(mdp.as_ref(), hz);
                    let st = best_stationary_search(mdp.as_ref(), hz, 2_000);
                    Ok(json!({
                        "env": env, "horizon": hz,
                        "method": "finite-horizon DP (the best of any policy, which may depend on the time left)",
                        "optimal_cost": -fh.start_value,
                        "optimal_return": fh.start_value,
                        "best_stationary_return": if st.proven { json!(st.value) } else { serde_json::Value::Null },
                        "stationary_search": {
                            "return": st.value,
                            "proven_best": st.proven,
                            "upper_bound": st.upper_bound,
                            "nodes": st.nodes,
                            "method": "branch and bound over stationary deterministic policies from the best greedy policy of value iteration as gamma -> 1, improved one state at a time; each policy's return exact within the limit",
                        },
                        "policy": st.policy,
                        "policy_kind": if st.proven { "the best stationary deterministic policy" } else { "the best stationary deterministic policy found" },
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

/// One store: the exact optimum and the heuristics' exact costs (lost sales), or the optimal
/// base-stock policy (backlog).
fn solve_store(env: &str, cfg: &taper::envs::inventory::StoreConfig) -> Result<serde_json::Value> {
    use taper::envs::inventory::Demand;
    let (h, p, l) = (cfg.h, cfg.p, cfg.lead_time);
    match (cfg.backlog, cfg.demand) {
        (false, Demand::Poisson { mean }) => {
            dp::validate(&dp::LostSalesDp {
                mean,
                h,
                p,
                lead_time: l,
                ..Default::default()
            })?;
            // The solver's states: C(S + L, L) for the cap S ≈ Morton's bound + 2.
            let (morton, _) = heuristics::backlog_poisson_base_stock(mean, h, p, l)?;
            let cap = morton.max(0) as f64 + 2.0;
            let states = (1..=l).fold(1.0f64, |acc, i| acc * (cap + i as f64) / i as f64);
            if states > (dp::MAX_STATES as f64) {
                return Err(CliError::Arg {
                    arg: "--lead-time",
                    reason: format!(
                        "the exact solver would need about {states:.0} states (limit {}); lower the lead time or the penalty",
                        dp::MAX_STATES
                    ),
                });
            }
            if states > 300_000.0 {
                eprintln!(
                    "taper solve: about {states:.0} states; the optimum and the heuristics' search take minutes..."
                );
            }
            let r = dp::lost_sales_optimum(&dp::LostSalesDp {
                mean,
                h,
                p,
                lead_time: l,
                ..Default::default()
            })?;
            let store = heuristics::LostSalesStore {
                mean,
                h,
                p,
                lead_time: l,
            };
            let bs = heuristics::best_lost_sales_base_stock(&store)?;
            let cbs = heuristics::best_lost_sales_capped_base_stock(&store)?;
            let mut state = vec!["on_hand".to_string()];
            state.extend((1..l).map(|j| format!("arriving_in_{j}")));
            let exact = "exact stationary cost of the policy's Markov chain from the empty state";
            Ok(json!({
                "env": env,
                "demand": {"distribution": "poisson", "mean": mean},
                "h": h, "p": p, "lead_time": l,
                "method": "relative value iteration over inventory positions up to a cap that the optimal policy never reaches (exact)",
                "optimal_cost": r.optimal_cost,
                "bounds": [r.bounds.0, r.bounds.1],
                "iterations": r.iterations,
                "cap_check": r.cap_check,
                "policy": {
                    "kind": "order table",
                    "state": state,
                    "max_position": r.cap_check.max_position,
                    "index": "lexicographic over the states with on_hand + arriving_in_* <= max_position, the last slot fastest",
                    "orders": r.policy,
                },
                "base_stock": {"level": bs.level, "cost": bs.cost, "bounds": [bs.bounds.0, bs.bounds.1], "gap": bs.cost / r.optimal_cost - 1.0, "method": exact, "evaluated": bs.evaluated},
                "capped_base_stock": {"level": cbs.level, "cap": cbs.cap, "cost": cbs.cost, "bounds": [cbs.bounds.0, cbs.bounds.1], "gap": cbs.cost / r.optimal_cost - 1.0, "method": exact, "evaluated": cbs.evaluated},
            }))
        }
        (true, Demand::Normal { mean, std }) => {
            let (s, c) = heuristics::backlog_normal_base_stock(mean, std, h, p, l)?;
            Ok(json!({
                "env": env, "demand": {"distribution": "normal", "mean": mean, "std": std},
                "h": h, "p": p, "lead_time": l,
                "method": "base-stock is optimal; closed form (normal approximation, ignoring the env's clip at 0)",
                "optimal_cost": c,
                "policy": {"kind": "base-stock", "level": s},
            }))
        }
        (true, Demand::Poisson { mean }) => {
            let (s, c) = heuristics::backlog_poisson_base_stock(mean, h, p, l)?;
            Ok(json!({
                "env": env, "demand": {"distribution": "poisson", "mean": mean},
                "h": h, "p": p, "lead_time": l,
                "method": "base-stock is optimal; exact newsvendor over L+1 periods",
                "optimal_cost": c,
                "policy": {"kind": "base-stock", "level": s},
            }))
        }
        (false, Demand::Normal { .. }) => Err(CliError::Arg {
            arg: "--env",
            reason: format!("{env}: the exact lost-sales solver takes Poisson demand"),
        }),
    }
}

/// Best echelon base-stock levels of a network, by coordinate search on 512 paths of 300
/// periods (100 ignored), and their cost on separate paths (256 × 2000, 500 ignored).
fn solve_network(env: &str, kw: &taper::envs::Kwargs) -> Result<serde_json::Value> {
    use taper::envs::inventory::network::{best_echelon_base_stock, NetScenarios, Network};
    use taper::tensor::rng::{stream, Purpose};
    let net = Network::new(taper::envs::registry::network_config(env, kw)?)?;
    // The coordinate search costs about (locations)² simulations of every location: 10 stores
    // take about 10 s on one core, and the time grows faster than the square.
    const MAX_STORES: usize = 20;
    if net.stores() > MAX_STORES {
        return Err(CliError::Arg {
            arg: "--stores",
            reason: format!(
                "the echelon base-stock search takes at most {MAX_STORES} stores (its work grows faster than the square of the locations), got {}",
                net.stores()
            ),
        });
    }
    if net.locations() > 6 {
        eprintln!(
            "taper solve: searching echelon base-stock levels for {} locations (about {} s)...",
            net.locations(),
            net.locations() * net.locations() / 10 + 1
        );
    }
    let mut r = stream(0, Purpose::Other(103), 0);
    let search = NetScenarios::sample(&net, 512, 300, &mut r);
    let (levels, search_cost) = best_echelon_base_stock(&net, &search, 100);
    let mut r = stream(0, Purpose::Other(104), 0);
    let check = NetScenarios::sample(&net, 256, 2000, &mut r);
    let cost = check.evaluate(&net, 500, &mut |x, q| net.echelon_orders(x, &levels, q));
    let cfg = net.config();
    let locations: Vec<String> = (0..net.upstream())
        .map(|k| {
            if net.upstream() == 1 {
                "warehouse".to_string()
            } else {
                format!("stage_{k}")
            }
        })
        .chain((0..net.stores()).map(|i| format!("store_{i}")))
        .collect();
    let optimal = cfg.backlog && net.stores() == 1;
    Ok(json!({
        "env": env,
        "network": cfg,
        "method": if optimal {
            "best echelon base-stock by simulation search (the optimal policy class for a serial system, Clark–Scarf)"
        } else {
            "best echelon base-stock by simulation search (a heuristic), proportional allocation"
        },
        "optimal_cost": if optimal { json!(cost) } else { serde_json::Value::Null },
        "echelon_base_stock": {
            "cost": cost,
            "search_cost": search_cost,
            "levels": levels,
            "locations": locations,
            "cost_unit": "per store and period",
            "evaluation": "256 paths x 2000 periods, first 500 ignored",
        },
        "policy": {"kind": "echelon base-stock", "levels": levels, "locations": locations},
    }))
}
