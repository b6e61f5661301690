//! One registry of env ids, as `gymnasium.make` and `gymnasium.register`: each built-in id
//! builds the env with its registered time limit, and a program adds its own envs with
//! [`register`] (single-agent) or [`register_parallel`] (multi-agent), after which every part
//! of taper (the learners, `load` and `resume`, evaluation) builds them by id.
//!
//! ```
//! use taper_envs::registry::{self, EnvSpec};
//! let ids: Vec<&str> = registry::specs().iter().map(|s| s.id).collect();
//! assert!(ids.contains(&"CartPole-v1"));
//! assert!(taper_envs::make("NoSuchEnv-v0").is_err());
//!
//! // A program's own env, registered under an id of its own.
//! registry::register(
//!     EnvSpec { id: "MyCartPole-v0", description: "CartPole with a 100-step limit", max_episode_steps: Some(100), reward_threshold: None, kwargs: "" },
//!     |_kwargs| Ok(Box::new(taper_envs::wrappers::TimeLimit::new(taper_envs::classic::CartPole::new(), 100))),
//! )?;
//! let mut env = taper_envs::make("MyCartPole-v0")?;
//! env.reset(Some(0))?;
//! assert!(registry::register(registry::spec("CartPole-v1")?, |_| taper_envs::make("CartPole-v1")).is_err());
//! # Ok::<(), taper_envs::EnvError>(())
//! ```

use crate::classic::{CartPole, MountainCarContinuous, Pendulum};
use crate::env::Env;
use crate::error::{EnvError, Result};
use crate::parallel::ParallelEnv;
use crate::toy_text::{CliffWalking, FrozenLake, TabularMdp};
use crate::vec_env::VecEnv;
use crate::wrappers::TimeLimit;
use std::collections::BTreeMap;
use std::sync::RwLock;

/// Builds a registered single-agent env from keyword arguments.
pub type EnvFactory = Box<dyn Fn(&Kwargs) -> Result<Box<dyn Env>> + Send + Sync>;
/// Builds a registered multi-agent env from keyword arguments.
pub type ParallelEnvFactory = Box<dyn Fn(&Kwargs) -> Result<Box<dyn ParallelEnv>> + Send + Sync>;

/// Envs registered by the program (after the built-ins).
static USER_ENVS: RwLock<Vec<(EnvSpec, EnvFactory)>> = RwLock::new(Vec::new());
/// Multi-agent envs registered by the program.
static USER_PARALLEL_ENVS: RwLock<Vec<(EnvSpec, ParallelEnvFactory)>> = RwLock::new(Vec::new());

fn taken(id: &str) -> bool {
    SPECS.iter().chain(MULTI_AGENT_SPECS).any(|s| s.id == id)
        || USER_ENVS
            .read()
            .map(|v| v.iter().any(|(s, _)| s.id == id))
            .unwrap_or(false)
        || USER_PARALLEL_ENVS
            .read()
            .map(|v| v.iter().any(|(s, _)| s.id == id))
            .unwrap_or(false)
}

fn check_new_id(id: &str) -> Result<()> {
    if id.is_empty() || id.chars().any(|c| c.is_whitespace() || c == ',') {
        return Err(EnvError::Invalid {
            name: "id",
            reason: format!("`{id}` is not a usable env id (non-empty, no spaces or commas)"),
        });
    }
    if taken(id) {
        return Err(EnvError::Invalid {
            name: "id",
            reason: format!("`{id}` is already registered"),
        });
    }
    Ok(())
}

/// Registers a single-agent env under `spec.id`, built by `factory` from keyword arguments
/// (as `gymnasium.register`). An id already taken (by a built-in or an earlier call) is an
/// error.
pub fn register(
    spec: EnvSpec,
    factory: impl Fn(&Kwargs) -> Result<Box<dyn Env>> + Send + Sync + 'static,
) -> Result<()> {
    check_new_id(spec.id)?;
    let mut v = USER_ENVS.write().unwrap_or_else(|p| p.into_inner());
    v.push((spec, Box::new(factory)));
    Ok(())
}

/// Registers a multi-agent env under `spec.id` (see [`register`]).
pub fn register_parallel(
    spec: EnvSpec,
    factory: impl Fn(&Kwargs) -> Result<Box<dyn ParallelEnv>> + Send + Sync + 'static,
) -> Result<()> {
    check_new_id(spec.id)?;
    let mut v = USER_PARALLEL_ENVS.write().unwrap_or_else(|p| p.into_inner());
    v.push((spec, Box::new(factory)));
    Ok(())
}

/// What the registry knows about an id.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct EnvSpec {
    /// The id, as Gymnasium spells it.
    pub id: &'static str,
    /// One line on what it is.
    pub description: &'static str,
    /// The registered time limit.
    pub max_episode_steps: Option<usize>,
    /// Gymnasium's `reward_threshold`, where registered.
    pub reward_threshold: Option<f64>,
    /// Keyword arguments the id accepts (`key=value`).
    pub kwargs: &'static str,
}

const SPECS: &[EnvSpec] = &[
    EnvSpec {
        id: "CartPole-v1",
        description: "balance a pole on a cart (Gymnasium classic control)",
        max_episode_steps: Some(500),
        reward_threshold: Some(475.0),
        kwargs: "max_episode_steps (the time limit, as gymnasium.make takes it)",
    },
    EnvSpec {
        id: "Pendulum-v1",
        description: "swing up a pendulum, continuous torque (Gymnasium classic control)",
        max_episode_steps: Some(200),
        reward_threshold: None,
        kwargs: "max_episode_steps (the time limit, as gymnasium.make takes it)",
    },
    EnvSpec {
        id: "MountainCarContinuous-v0",
        description: "drive an underpowered car up a hill, continuous force (Gymnasium classic control)",
        max_episode_steps: Some(999),
        reward_threshold: Some(90.0),
        kwargs: "max_episode_steps (the time limit, as gymnasium.make takes it)",
    },
    EnvSpec {
        id: "RiskyPointMass-v0",
        description: "reach the origin past a circle of random penalties (the STAC paper's toy env)",
        max_episode_steps: Some(200),
        reward_threshold: None,
        kwargs: "base_risk_prob, risk_penalty, max_episode_steps",
    },
    EnvSpec {
        id: "FrozenLake-v1",
        description: "cross a slippery 4x4 lake (Gymnasium toy text)",
        max_episode_steps: Some(100),
        reward_threshold: Some(0.70),
        kwargs: "map_name=4x4|8x8, is_slippery=true|false, desc=ROW/ROW/...",
    },
    EnvSpec {
        id: "FrozenLake8x8-v1",
        description: "cross a slippery 8x8 lake (Gymnasium toy text)",
        max_episode_steps: Some(200),
        reward_threshold: Some(0.85),
        kwargs: "is_slippery=true|false",
    },
    EnvSpec {
        id: "InventoryLostSales-v0",
        description: "one store, lost sales, Poisson demand (HDPO benchmark; L=4, p=9 by default)",
        max_episode_steps: Some(100),
        reward_threshold: None,
        kwargs: "demand_mean, lead_time, p, h, horizon",
    },
    EnvSpec {
        id: "InventoryBacklog-v0",
        description:
            "one store, backlogged demand, Normal(5, 1.6) clipped at 0 or Poisson (HDPO benchmark; L=4, p=9 by default)",
        max_episode_steps: Some(100),
        reward_threshold: None,
        kwargs: "demand=normal|poisson, demand_mean, demand_std, lead_time, p, h, horizon",
    },
    EnvSpec {
        id: "InventorySerial-v0",
        description: "serial system: 3 upstream echelons and a backlogging store, Normal(5, 2) (HDPO benchmark)",
        max_episode_steps: Some(100),
        reward_threshold: None,
        kwargs: "demand_mean, demand_std, lead_time, p, h, horizon",
    },
    EnvSpec {
        id: "InventoryWarehouse-v0",
        description: "one warehouse, n heterogeneous lost-sales stores, correlated demand (HDPO benchmark)",
        max_episode_steps: Some(100),
        reward_threshold: None,
        kwargs:
            "stores, params_seed, correlation, warehouse_lead_time, warehouse_h, demand_mean, lead_time, p, h, horizon",
    },
    EnvSpec {
        id: "SeqCopy-v0",
        description: "copy a string of digits, token by token; verifier scores 0/1 (sequence task)",
        max_episode_steps: None,
        reward_threshold: None,
        kwargs: "min_len, max_len, partial, max_new_tokens, split=train|test",
    },
    EnvSpec {
        id: "SeqReverse-v0",
        description: "reverse a string of digits (sequence task)",
        max_episode_steps: None,
        reward_threshold: None,
        kwargs: "min_len, max_len, partial, max_new_tokens, split=train|test",
    },
    EnvSpec {
        id: "SeqSort-v0",
        description: "sort a string of digits (sequence task)",
        max_episode_steps: None,
        reward_threshold: None,
        kwargs: "min_len, max_len, partial, max_new_tokens, split=train|test",
    },
    EnvSpec {
        id: "SeqAddition-v0",
        description: "add two numbers of up to `digits` digits, answer most significant digit first (sequence task)",
        max_episode_steps: None,
        reward_threshold: None,
        kwargs: "digits, partial, max_new_tokens, split=train|test",
    },
    EnvSpec {
        id: "CliffWalking-v1",
        description: "walk along a cliff edge, 4x12 grid (Gymnasium toy text; no time limit)",
        max_episode_steps: None,
        reward_threshold: None,
        kwargs: "",
    },
];

/// The multi-agent envs (PettingZoo Parallel shape; built by [`spread_config`], not [`make`]).
pub const MULTI_AGENT_SPECS: &[EnvSpec] = &[EnvSpec {
    id: "SimpleSpread-v3",
    description: "N agents cover N landmarks (PettingZoo MPE simple_spread_v3; multi-agent)",
    max_episode_steps: Some(25),
    reward_threshold: None,
    kwargs: "agents (N, default 3), local_ratio, max_cycles, continuous",
}];

/// Whether `id` is a multi-agent env (built-in or registered).
pub fn is_multi_agent(id: &str) -> bool {
    parallel_specs().iter().any(|s| s.id == id)
}

/// Every multi-agent env: the built-ins, then those registered with [`register_parallel`].
pub fn parallel_specs() -> Vec<EnvSpec> {
    let mut v = MULTI_AGENT_SPECS.to_vec();
    if let Ok(u) = USER_PARALLEL_ENVS.read() {
        v.extend(u.iter().map(|(s, _)| *s));
    }
    v
}

/// Builds the multi-agent env `id` with keyword arguments.
pub fn make_parallel(id: &str, kw: &Kwargs) -> Result<Box<dyn ParallelEnv>> {
    if id == "SimpleSpread-v3" {
        return Ok(Box::new(crate::mpe::SimpleSpread::new(spread_config(id, kw)?)?));
    }
    let v = USER_PARALLEL_ENVS.read().unwrap_or_else(|p| p.into_inner());
    match v.iter().find(|(s, _)| s.id == id) {
        Some((_, f)) => f(kw),
        None => Err(EnvError::UnknownEnv {
            id: id.to_string(),
            known: parallel_specs().iter().map(|s| s.id).collect::<Vec<_>>().join(", "),
        }),
    }
}

/// The Simple Spread configuration of `SimpleSpread-v3` with keyword arguments `agents`,
/// `local_ratio`, `max_cycles`, `continuous`.
pub fn spread_config(id: &str, kw: &Kwargs) -> Result<crate::mpe::SpreadConfig> {
    if id != "SimpleSpread-v3" {
        return Err(EnvError::Invalid {
            name: "env",
            reason: format!("`{id}` is not a multi-agent env (known: SimpleSpread-v3)"),
        });
    }
    check_keys(id, kw, &["agents", "local_ratio", "max_cycles", "continuous"])?;
    let mut c = crate::mpe::SpreadConfig::default();
    if let Some(n) = parse_num::<usize>(kw, "agents")? {
        c.n = n;
    }
    if let Some(r) = parse_num::<f64>(kw, "local_ratio")? {
        c.local_ratio = r;
    }
    if let Some(m) = parse_num::<usize>(kw, "max_cycles")? {
        c.max_cycles = m;
    }
    if let Some(v) = kw.get("continuous") {
        c.continuous = parse_bool("continuous", v)?;
    }
    crate::mpe::SimpleSpread::new(c)?;
    Ok(c)
}

/// Every single-agent env: the built-ins, then those registered with [`register`].
pub fn specs() -> Vec<EnvSpec> {
    let mut v = SPECS.to_vec();
    if let Ok(u) = USER_ENVS.read() {
        v.extend(u.iter().map(|(s, _)| *s));
    }
    v
}

/// The spec of the single-agent env `id`.
pub fn spec(id: &str) -> Result<EnvSpec> {
    specs().into_iter().find(|s| s.id == id).ok_or_else(|| unknown(id))
}

fn unknown(id: &str) -> EnvError {
    let hint = if is_multi_agent(id) {
        " (it is multi-agent: see make_parallel)"
    } else {
        ""
    };
    EnvError::UnknownEnv {
        id: format!("{id}{hint}"),
        known: specs().iter().map(|s| s.id).collect::<Vec<_>>().join(", "),
    }
}

/// Keyword arguments for [`make_with`].
pub type Kwargs = BTreeMap<String, String>;

/// Builds `id` with its registered time limit.
pub fn make(id: &str) -> Result<Box<dyn Env>> {
    make_with(id, &Kwargs::new())
}

pub(crate) fn parse_bool(k: &str, v: &str) -> Result<bool> {
    match v {
        "true" | "True" | "1" => Ok(true),
        "false" | "False" | "0" => Ok(false),
        _ => Err(EnvError::Invalid {
            name: "kwargs",
            reason: format!("`{k}` must be true or false, got `{v}`"),
        }),
    }
}

pub(crate) fn check_keys(id: &str, kw: &Kwargs, allowed: &[&str]) -> Result<()> {
    if let Some(k) = kw.keys().find(|k| !allowed.contains(&k.as_str())) {
        return Err(EnvError::Invalid {
            name: "kwargs",
            reason: format!(
                "`{id}` takes no argument `{k}` (accepted: {})",
                if allowed.is_empty() {
                    "none".to_string()
                } else {
                    allowed.join(", ")
                }
            ),
        });
    }
    Ok(())
}

fn frozen_lake(id: &str, kw: &Kwargs) -> Result<(FrozenLake, usize)> {
    let allowed: &[&str] = if id == "FrozenLake-v1" {
        &["map_name", "is_slippery", "desc"]
    } else {
        &["is_slippery"]
    };
    check_keys(id, kw, allowed)?;
    let slippery = match kw.get("is_slippery") {
        Some(v) => parse_bool("is_slippery", v)?,
        None => true,
    };
    let map = if id == "FrozenLake8x8-v1" {
        "8x8"
    } else {
        kw.get("map_name").map(|s| s.as_str()).unwrap_or("4x4")
    };
    if let Some(desc) = kw.get("desc") {
        let rows: Vec<&str> = desc.split('/').collect();
        let lake = FrozenLake::from_map(&rows, slippery)?;
        // Gymnasium's FrozenLake-v1 registration keeps 100 steps whatever the map.
        return Ok((lake, 100));
    }
    match map {
        "4x4" => Ok((
            FrozenLake::new_4x4(slippery),
            if id == "FrozenLake-v1" { 100 } else { 200 },
        )),
        "8x8" => Ok((
            FrozenLake::new_8x8(slippery),
            if id == "FrozenLake-v1" { 100 } else { 200 },
        )),
        other => Err(EnvError::Invalid {
            name: "map_name",
            reason: format!("unknown map `{other}` (4x4 or 8x8)"),
        }),
    }
}

pub(crate) fn parse_num<T: std::str::FromStr>(kw: &Kwargs, key: &str) -> Result<Option<T>> {
    match kw.get(key) {
        None => Ok(None),
        Some(v) => v.parse::<T>().map(Some).map_err(|_| EnvError::Invalid {
            name: "kwargs",
            reason: format!("`{key}` must be a number, got `{v}`"),
        }),
    }
}

/// The store configuration of an inventory id with its keyword arguments: the one source of
/// the one-store defaults, for the env and for `taper solve` alike. `InventoryBacklog-v0`
/// takes `demand=normal` (the default, with `demand_std`) or `demand=poisson`.
pub fn inventory_config(id: &str, kw: &Kwargs) -> Result<crate::inventory::StoreConfig> {
    use crate::inventory::{Demand, StoreConfig};
    let backlog = id == "InventoryBacklog-v0";
    let allowed: &[&str] = if backlog {
        &["demand", "demand_mean", "demand_std", "lead_time", "p", "h", "horizon"]
    } else {
        &["demand_mean", "lead_time", "p", "h", "horizon"]
    };
    check_keys(id, kw, allowed)?;
    let mut c = if backlog {
        StoreConfig::backlogged()
    } else {
        StoreConfig::lost_sales()
    };
    let mean = parse_num::<f64>(kw, "demand_mean")?.unwrap_or(c.demand.mean());
    let std = parse_num::<f64>(kw, "demand_std")?;
    c.demand = match (kw.get("demand").map(String::as_str), c.demand) {
        (None | Some("normal"), Demand::Normal { std: default_std, .. }) => Demand::Normal {
            mean,
            std: std.unwrap_or(default_std),
        },
        (Some("poisson"), _) | (None, Demand::Poisson { .. }) => {
            if std.is_some() {
                return Err(EnvError::Invalid {
                    name: "demand_std",
                    reason: format!("{id} with Poisson demand takes no demand_std (its variance is its mean)"),
                });
            }
            Demand::Poisson { mean }
        }
        (Some(other), _) => {
            return Err(EnvError::Invalid {
                name: "demand",
                reason: format!("unknown demand `{other}` for {id} (poisson or normal)"),
            })
        }
    };
    if let Some(l) = parse_num::<usize>(kw, "lead_time")? {
        c.lead_time = l;
    }
    if let Some(p) = parse_num::<f64>(kw, "p")? {
        c.p = p;
    }
    if let Some(h) = parse_num::<f64>(kw, "h")? {
        c.h = h;
    }
    if let Some(hz) = parse_num::<usize>(kw, "horizon")? {
        c.horizon = hz;
    }
    c.max_order = (6.0 * mean).max(10.0);
    c.validate()?;
    Ok(c)
}

/// Whether `id` is an inventory env (one store or a network): its reward is minus a cost, and
/// evaluation reports the mean cost per period.
pub fn is_inventory(id: &str) -> bool {
    matches!(
        id,
        "InventoryLostSales-v0" | "InventoryBacklog-v0" | "InventorySerial-v0" | "InventoryWarehouse-v0"
    )
}

/// The keyword arguments an env is evaluated with: inventory envs run 5000-period paths (the
/// HDPO repository's test length), so the mean cost per period is close to the long-run
/// average; sequence tasks draw their held-apart test prompts; other envs as given.
pub fn evaluation_kwargs(id: &str, kw: &Kwargs) -> Kwargs {
    let mut kw = kw.clone();
    if is_inventory(id) {
        kw.insert("horizon".into(), "5000".into());
    }
    if is_sequence(id) {
        kw.insert("split".into(), "test".into());
    }
    kw
}

/// Whether `id` is a sequence task (`taper_envs::seq`).
pub fn is_sequence(id: &str) -> bool {
    crate::seq::tasks::IDS.contains(&id)
}

/// A sequence task's task and split from its keyword arguments (`split` is `train`, the
/// default, or `test`; the rest go to the task).
pub fn seq_task(id: &str, kw: &Kwargs) -> Result<(Box<dyn crate::seq::SeqTask>, crate::seq::Split)> {
    let mut kw = kw.clone();
    let split = match kw.remove("split").as_deref() {
        None | Some("train") => crate::seq::Split::Train,
        Some("test") => crate::seq::Split::Test,
        Some(other) => {
            return Err(EnvError::Invalid {
                name: "kwargs",
                reason: format!("`split` must be train or test, got `{other}`"),
            })
        }
    };
    Ok((crate::seq::make_task(id, &kw)?, split))
}

/// The steps at the start of an evaluation episode that an env's average-cost figures leave
/// out: 1000 periods for inventory envs (their start-up transient, from a random initial
/// stock; the HDPO repository leaves out 3000 of 5000 test periods), 0 otherwise.
pub fn evaluation_warmup(id: &str) -> u64 {
    if is_inventory(id) {
        1000
    } else {
        0
    }
}

/// Whether `id` is an inventory network (serial or one warehouse) rather than one store.
pub fn is_inventory_network(id: &str) -> bool {
    matches!(id, "InventorySerial-v0" | "InventoryWarehouse-v0")
}

/// The network configuration of a network id with its keyword arguments. `demand_mean`, `p`,
/// `h` and `lead_time` set every store's value when given.
pub fn network_config(id: &str, kw: &Kwargs) -> Result<crate::inventory::NetworkConfig> {
    use crate::inventory::NetworkConfig;
    spec(id)?;
    let mut c = match id {
        "InventorySerial-v0" => {
            check_keys(id, kw, &["demand_mean", "demand_std", "lead_time", "p", "h", "horizon"])?;
            NetworkConfig::serial(9.0, 4)
        }
        "InventoryWarehouse-v0" => {
            check_keys(
                id,
                kw,
                &[
                    "stores",
                    "params_seed",
                    "correlation",
                    "warehouse_lead_time",
                    "warehouse_h",
                    "demand_mean",
                    "lead_time",
                    "p",
                    "h",
                    "horizon",
                ],
            )?;
            let n = parse_num::<usize>(kw, "stores")?.unwrap_or(3);
            let seed = parse_num::<u64>(kw, "params_seed")?.unwrap_or(0);
            let mut c = NetworkConfig::one_warehouse(n, seed);
            if let Some(r) = parse_num::<f64>(kw, "correlation")? {
                c.correlation = r;
            }
            if let Some(l) = parse_num::<usize>(kw, "warehouse_lead_time")? {
                c.upstream[0].lead_time = l;
            }
            if let Some(h) = parse_num::<f64>(kw, "warehouse_h")? {
                c.upstream[0].h = h;
            }
            c
        }
        _ => {
            return Err(EnvError::Invalid {
                name: "env",
                reason: format!("`{id}` is not an inventory network"),
            })
        }
    };
    let mean = parse_num::<f64>(kw, "demand_mean")?;
    let std = parse_num::<f64>(kw, "demand_std")?;
    let l = parse_num::<usize>(kw, "lead_time")?;
    let p = parse_num::<f64>(kw, "p")?;
    let h = parse_num::<f64>(kw, "h")?;
    for s in &mut c.stores {
        if let Some(m) = mean {
            // Keep the coefficient of variation when only the mean is given.
            s.std *= m / s.mean;
            s.mean = m;
        }
        if let Some(v) = std {
            s.std = v;
        }
        if let Some(v) = l {
            s.lead_time = v;
        }
        if let Some(v) = p {
            s.p = v;
        }
        if let Some(v) = h {
            s.h = v;
        }
    }
    if let Some(hz) = parse_num::<usize>(kw, "horizon")? {
        c.horizon = hz;
    }
    let total: f64 = c.stores.iter().map(|s| s.mean).sum();
    c.max_order = (10.0 * total).max(50.0);
    c.validate()?;
    Ok(c)
}

/// A classic-control env's time limit: `max_episode_steps` where given (a positive count, as
/// `gymnasium.make` takes it), else the registered one. No other keyword is accepted.
fn time_limit(id: &str, kw: &Kwargs, default: usize) -> Result<usize> {
    check_keys(id, kw, &["max_episode_steps"])?;
    match parse_num::<usize>(kw, "max_episode_steps")? {
        Some(0) => Err(EnvError::Invalid {
            name: "max_episode_steps",
            reason: format!("`{id}` needs a time limit of at least one step"),
        }),
        Some(n) => Ok(n),
        None => Ok(default),
    }
}

/// Builds `id` with keyword arguments (e.g. `is_slippery=false` for FrozenLake).
pub fn make_with(id: &str, kw: &Kwargs) -> Result<Box<dyn Env>> {
    if !SPECS.iter().any(|s| s.id == id) {
        let v = USER_ENVS.read().unwrap_or_else(|p| p.into_inner());
        return match v.iter().find(|(s, _)| s.id == id) {
            Some((_, f)) => f(kw),
            None => {
                drop(v);
                Err(unknown(id))
            }
        };
    }
    Ok(match id {
        "CartPole-v1" => Box::new(TimeLimit::new(CartPole::new(), time_limit(id, kw, 500)?)),
        "Pendulum-v1" => Box::new(TimeLimit::new(Pendulum::new(), time_limit(id, kw, 200)?)),
        "MountainCarContinuous-v0" => Box::new(TimeLimit::new(MountainCarContinuous::new(), time_limit(id, kw, 999)?)),
        "RiskyPointMass-v0" => {
            check_keys(id, kw, &["base_risk_prob", "risk_penalty", "max_episode_steps"])?;
            let mut rest = kw.clone();
            let risk = parse_num::<f64>(kw, "base_risk_prob")?.unwrap_or(0.1);
            let penalty = parse_num::<f64>(kw, "risk_penalty")?.unwrap_or(10.0);
            rest.remove("base_risk_prob");
            rest.remove("risk_penalty");
            let env = crate::risky_point_mass::RiskyPointMass::with_risk(risk, penalty)?;
            Box::new(TimeLimit::new(env, time_limit(id, &rest, 200)?))
        }
        "FrozenLake-v1" | "FrozenLake8x8-v1" => {
            let (lake, limit) = frozen_lake(id, kw)?;
            Box::new(TimeLimit::new(lake, limit))
        }
        "CliffWalking-v1" => {
            check_keys(id, kw, &[])?;
            Box::new(CliffWalking::new())
        }
        "InventoryLostSales-v0" | "InventoryBacklog-v0" => {
            Box::new(crate::inventory::SingleStore::new(inventory_config(id, kw)?)?)
        }
        "InventorySerial-v0" | "InventoryWarehouse-v0" => {
            Box::new(crate::inventory::NetworkEnv::new(network_config(id, kw)?)?)
        }
        id if is_sequence(id) => {
            let (task, split) = seq_task(id, kw)?;
            Box::new(crate::seq::SeqEnv::new(task, split))
        }
        _ => return Err(unknown(id)),
    })
}

/// The exact model of a tabular env id, for the solvers, with its step limit.
pub fn make_tabular(id: &str, kw: &Kwargs) -> Result<(Box<dyn TabularMdp>, Option<usize>)> {
    spec(id)?;
    match id {
        "FrozenLake-v1" | "FrozenLake8x8-v1" => {
            let (lake, limit) = frozen_lake(id, kw)?;
            Ok((Box::new(lake), Some(limit)))
        }
        "CliffWalking-v1" => Ok((Box::new(CliffWalking::new()), None)),
        _ => Err(EnvError::Invalid {
            name: "env",
            reason: format!("`{id}` has no tabular model"),
        }),
    }
}

/// `n` copies of `id` in a [`VecEnv`].
pub fn make_vec(id: &str, n: usize) -> Result<VecEnv> {
    make_vec_with(id, n, &Kwargs::new())
}

/// `n` copies of `id` with keyword arguments.
pub fn make_vec_with(id: &str, n: usize, kw: &Kwargs) -> Result<VecEnv> {
    let envs = (0..n).map(|_| make_with(id, kw)).collect::<Result<Vec<_>>>()?;
    Ok(VecEnv::new(envs)?.with_id(id, kw))
}
