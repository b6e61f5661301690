//! `taper`: train, evaluate and inspect reinforcement-learning runs.
//!
//! ```text
//! taper train [--algo ppo] [--env ID] [--seed N] [--total-steps N] [--config FILE] [--out DIR] [--quiet]
//! taper eval DIR [--episodes N] [--seed N] [--deterministic] [--json]
//! taper envs | taper algos
//! ```

mod config;
mod error;
mod marl;
mod plot;
mod render;
mod solve;
mod train;

use clap::{Parser, Subcommand};
use error::{CliError, Result};
use std::path::PathBuf;

#[derive(Parser, Debug)]
#[command(
    name = "taper",
    version,
    about = "Reinforcement learning in Rust: train, evaluate, inspect."
)]
struct Cli {
    #[command(subcommand)]
    command: Command,
}

#[derive(Subcommand, Debug)]
enum Command {
    /// Train an agent; writes a run folder (config.toml, metrics.jsonl, metrics.csv, checkpoint/).
    Train(Box<TrainArgs>),
    /// Evaluate a run's checkpoint.
    Eval(EvalArgs),
    /// Draw learning curves of one or more run folders.
    Plot(PlotArgs),
    /// Print the exact or heuristic optimum of an env, where a solver exists.
    Solve(SolveArgs),
    /// List the env ids.
    Envs,
    /// List the algorithms.
    Algos,
}

#[derive(clap::Args, Debug)]
struct TrainArgs {
    /// The algorithm [default: ppo].
    #[arg(long)]
    algo: Option<String>,
    /// The env id [default: CartPole-v1].
    #[arg(long)]
    env: Option<String>,
    /// Env keyword arguments, `key=value,key=value` (e.g. `is_slippery=false`).
    #[arg(long)]
    env_kwargs: Option<String>,
    /// The seed [default: 1].
    #[arg(long)]
    seed: Option<u64>,
    /// Several seeds, `A..B` (B excluded) or `A,B,C`: one run each, in parallel, into
    /// OUT/s<seed>.
    #[arg(long, conflicts_with = "seed")]
    seeds: Option<String>,
    /// Env steps to train for [default: the env's budget, see `taper envs`].
    #[arg(long)]
    total_steps: Option<u64>,
    /// A TOML config: top-level `algo`, `env`, `seed`, `total_steps`, `[env_kwargs]`, `[ppo]`.
    #[arg(long)]
    config: Option<PathBuf>,
    /// The run folder [default: runs/ENV__ALGO__SEED__UNIXTIME].
    #[arg(long)]
    out: Option<PathBuf>,
    /// No progress output.
    #[arg(long)]
    quiet: bool,
    /// Write a checkpoint to checkpoints/step_N every N env steps.
    #[arg(long, value_name = "N")]
    checkpoint_every: Option<u64>,
    /// Keep only the newest K periodic checkpoints.
    #[arg(long, value_name = "K")]
    keep_last: Option<usize>,
    /// Stop this session after N env steps in all; `--resume` continues the plan.
    #[arg(long, value_name = "N")]
    stop_after: Option<u64>,
    /// Evaluate the policy every N env steps; keep the best in best/ and the results in
    /// evaluations.jsonl.
    #[arg(long, value_name = "N")]
    eval_every: Option<u64>,
    /// Episodes per evaluation.
    #[arg(long, value_name = "K", default_value_t = 10)]
    eval_episodes: usize,
    #[command(flatten)]
    inventory: solve::InventoryFlags,
    /// Multi-agent envs: number of agents N (SimpleSpread-v3; default 3).
    #[arg(long)]
    agents: Option<usize>,
    /// Continue the run in DIR from its newest checkpoint, exactly.
    #[arg(long, value_name = "DIR")]
    resume: Option<PathBuf>,
}

#[derive(clap::Args, Debug)]
struct EvalArgs {
    /// A run folder (or its checkpoint folder).
    dir: PathBuf,
    /// Episodes to run.
    #[arg(long, default_value_t = 10)]
    episodes: usize,
    /// Seed of the first episode (episode k uses seed + k).
    #[arg(long, default_value_t = 0)]
    seed: u64,
    /// Take the most likely action instead of sampling.
    #[arg(long)]
    deterministic: bool,
    /// Print one JSON object.
    #[arg(long)]
    json: bool,
    /// Print each step of each episode as text (gridworlds): `ansi`.
    #[arg(long, value_name = "MODE")]
    render: Option<String>,
    /// Record the first episode: `FILE.gif`, or a folder for PNG frames (CartPole, Pendulum).
    #[arg(long, value_name = "FILE")]
    record: Option<PathBuf>,
}

#[derive(clap::Args, Debug)]
struct SolveArgs {
    /// The env id: InventoryLostSales-v0, InventoryBacklog-v0, FrozenLake-v1, CliffWalking-v1, ...
    #[arg(long)]
    env: String,
    /// Env keyword arguments, `key=value,...` (gridworlds).
    #[arg(long)]
    env_kwargs: Option<String>,
    #[command(flatten)]
    inventory: solve::InventoryFlags,
    /// Print one JSON object.
    #[arg(long)]
    json: bool,
}

#[derive(clap::Args, Debug)]
struct PlotArgs {
    /// Run folders; runs that differ only in seed are averaged.
    #[arg(required = true)]
    dirs: Vec<PathBuf>,
    /// The output image, `.png` or `.svg`.
    #[arg(long, default_value = "plot.png")]
    out: PathBuf,
    /// The metric on the y axis (a column of metrics.jsonl).
    #[arg(long, default_value = plot::DEFAULT_METRIC)]
    metric: String,
    /// Trailing moving average over K updates.
    #[arg(long, default_value_t = 1)]
    smooth: usize,
    /// The column on the x axis: `global_step`, or `time_elapsed` for wall time.
    #[arg(long, default_value = "global_step")]
    x: String,
    /// The y range, `LO,HI` (default: the data's).
    #[arg(long, value_name = "LO,HI", value_parser = parse_range, allow_hyphen_values = true)]
    ylim: Option<(f64, f64)>,
}

fn parse_range(s: &str) -> std::result::Result<(f64, f64), String> {
    let (a, b) = s.split_once(',').ok_or_else(|| format!("`{s}` is not LO,HI"))?;
    let lo: f64 = a.trim().parse().map_err(|_| format!("`{a}` is not a number"))?;
    let hi: f64 = b.trim().parse().map_err(|_| format!("`{b}` is not a number"))?;
    Ok((lo, hi))
}

/// Prints a line to stdout; a closed pipe (`taper eval ... | head`) ends the program quietly.
macro_rules! out {
    ($($t:tt)*) => {{
        use std::io::Write;
        if let Err(e) = writeln!(std::io::stdout().lock(), $($t)*) {
            if e.kind() == std::io::ErrorKind::BrokenPipe {
                std::process::exit(0);
            }
        }
    }};
}

fn main() {
    let cli = Cli::parse();
    let r = match cli.command {
        Command::Train(a) => run_train(*a),
        Command::Eval(a) => run_eval(a),
        Command::Plot(a) => plot::plot(&a.dirs, &a.out, &a.metric, &a.x, a.smooth, a.ylim).map(|_| {
            eprintln!("wrote {}", a.out.display());
        }),
        Command::Solve(a) => run_solve(a),
        Command::Envs => {
            list_envs();
            Ok(())
        }
        Command::Algos => {
            out!("ppo\tProximal Policy Optimization (CleanRL's ppo.py / ppo_continuous_action.py)");
            out!("hdpo\tHindsight Differentiable Policy Optimization (inventory envs; Alvo, Russo & Kanoria)");
            out!("mappo\tMulti-agent PPO: shared actor, centralized critic with value normalisation (SimpleSpread-v3)");
            out!("ippo\tIndependent PPO with parameter sharing (SimpleSpread-v3)");
            out!("maddpg\tMADDPG with Gumbel-softmax actors and centralized tanh critics (SimpleSpread-v3)");
            Ok(())
        }
    };
    if let Err(e) = r {
        eprintln!("error: {e}");
        std::process::exit(1);
    }
}

fn list_envs() {
    out!("{:<22} {:>7} {:>12}  description", "id", "limit", "ppo budget");
    for s in taper::envs::registry::parallel_specs() {
        out!(
            "{:<22} {:>7} {:>12}  {} [kwargs: {}]",
            s.id,
            s.max_episode_steps.unwrap_or(0),
            "-",
            s.description,
            s.kwargs
        );
    }
    for s in taper::envs::registry::specs() {
        let limit = s.max_episode_steps.map(|l| l.to_string()).unwrap_or_else(|| "-".into());
        out!(
            "{:<22} {:>7} {:>12}  {}{}",
            s.id,
            limit,
            taper::algos::ppo::default_budget(s.id),
            s.description,
            if s.kwargs.is_empty() {
                String::new()
            } else {
                format!(" [kwargs: {}]", s.kwargs)
            }
        );
    }
}

fn run_train(a: TrainArgs) -> Result<()> {
    let opts = train::TrainOptions {
        quiet: a.quiet,
        checkpoint_every: a.checkpoint_every.unwrap_or(0),
        keep_last: a.keep_last.unwrap_or(0),
        stop_after: a.stop_after,
        eval_every: a.eval_every.unwrap_or(0),
        eval_episodes: a.eval_episodes,
    };
    let mut kwargs = match &a.env_kwargs {
        Some(s) => Some(config::parse_kwargs(s)?),
        None => None,
    };
    let inv = a.inventory.to_kwargs();
    if !inv.is_empty() {
        kwargs.get_or_insert_with(Default::default).extend(inv);
    }
    if let Some(n) = a.agents {
        kwargs
            .get_or_insert_with(Default::default)
            .insert("agents".into(), n.to_string());
    }
    if let Some(dir) = &a.resume {
        let path = dir.join("config.toml");
        let text = std::fs::read_to_string(&path).map_err(|e| CliError::io(&path, e))?;
        let mut cfg: config::RunConfig = toml::from_str(&text).map_err(|e| CliError::Config {
            path: path.display().to_string(),
            reason: e.message().split_whitespace().collect::<Vec<_>>().join(" "),
        })?;
        // Flags that would change the run conflict with resuming it.
        let conflict = |flag: &str, given: String, run: String| CliError::Arg {
            arg: "--resume",
            reason: format!(
                "{flag} {given} conflicts with the run in {}, which has {run}",
                dir.display()
            ),
        };
        if let Some(e) = &a.env {
            if *e != cfg.env {
                return Err(conflict("--env", e.clone(), cfg.env.clone()));
            }
        }
        if let Some(al) = &a.algo {
            if *al != cfg.algo {
                return Err(conflict("--algo", al.clone(), cfg.algo.clone()));
            }
        }
        if let Some(s) = a.seed {
            if s != cfg.seed {
                return Err(conflict("--seed", s.to_string(), cfg.seed.to_string()));
            }
        }
        if let Some(kw) = &kwargs {
            if *kw != cfg.env_kwargs {
                return Err(conflict(
                    "--env-kwargs",
                    format!("{kw:?}"),
                    format!("{:?}", cfg.env_kwargs),
                ));
            }
        }
        if let Some(c) = &a.config {
            return Err(conflict(
                "--config",
                c.display().to_string(),
                "its own config.toml".into(),
            ));
        }
        if a.out.as_ref().is_some_and(|o| o != dir) {
            return Err(conflict(
                "--out",
                a.out.as_ref().unwrap().display().to_string(),
                "its own folder".into(),
            ));
        }
        cfg.ppo.validate()?;
        if let Some(t) = a.total_steps {
            cfg.total_steps = t;
        }
        return train::resume(&cfg, dir, &opts);
    }
    if let Some(spec) = &a.seeds {
        let seeds = parse_seeds(spec)?;
        let ov = config::Overrides {
            algo: a.algo,
            env: a.env,
            seed: None,
            total_steps: a.total_steps,
            env_kwargs: kwargs.unwrap_or_default(),
        };
        let cfg = config::resolve(a.config.as_deref(), &ov)?;
        let base = a.out.unwrap_or_else(|| {
            let t = std::time::SystemTime::now()
                .duration_since(std::time::UNIX_EPOCH)
                .map(|d| d.as_secs())
                .unwrap_or(0);
            PathBuf::from("runs").join(format!("{}__{}__seeds__{}", cfg.env, cfg.algo, t))
        });
        return train::train_seeds(&cfg, &seeds, &base, &opts);
    }
    let ov = config::Overrides {
        algo: a.algo,
        env: a.env,
        seed: a.seed,
        total_steps: a.total_steps,
        env_kwargs: kwargs.unwrap_or_default(),
    };
    let cfg = config::resolve(a.config.as_deref(), &ov)?;
    let out = a.out.unwrap_or_else(|| {
        let t = std::time::SystemTime::now()
            .duration_since(std::time::UNIX_EPOCH)
            .map(|d| d.as_secs())
            .unwrap_or(0);
        PathBuf::from("runs").join(format!("{}__{}__{}__{}", cfg.env, cfg.algo, cfg.seed, t))
    });
    train::train(&cfg, &out, &opts)
}

fn run_solve(a: SolveArgs) -> Result<()> {
    let kw = match &a.env_kwargs {
        Some(s) => config::parse_kwargs(s)?,
        None => Default::default(),
    };
    let v = solve::solve(&a.env, &a.inventory, &kw)?;
    if a.json {
        out!("{v}");
    } else {
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
        for k in ["base_stock", "capped_base_stock"] {
            if let Some(h) = v.get(k) {
                out!("  best {k}: {h}");
            }
        }
        if let Some(p) = v.get("policy") {
            if p.get("orders").is_none() {
                out!("  policy: {p}");
            }
        }
    }
    Ok(())
}

/// Inventory envs are evaluated on long paths (5000 periods, the HDPO repository's test
/// length), so `mean_cost` is close to the long-run average cost.
fn long_paths(kw: &taper::envs::Kwargs) -> taper::envs::Kwargs {
    let mut kw = kw.clone();
    kw.insert("horizon".into(), "5000".into());
    kw
}

/// `taper eval` for an HDPO checkpoint: the deterministic policy on the inventory env, orders
/// rounded for Poisson demand (as at HDPO's test time).
fn eval_hdpo(a: &EvalArgs) -> Result<()> {
    if a.render.is_some() || a.record.is_some() {
        return Err(CliError::Arg {
            arg: "--record",
            reason: "inventory envs cannot be drawn yet".into(),
        });
    }
    let (_, raw, _) = taper::algos::run::load_raw_checkpoint(&a.dir)?;
    let network = taper::envs::registry::is_inventory_network(&raw.env_id);
    let (eps, state, round) = if network {
        let (net, policy, state) = taper::algos::hdpo_network::load_policy(&a.dir)?;
        let mut env = taper::envs::make_with(&state.env_id, &long_paths(&state.env_kwargs))?;
        let eps = taper::algos::hdpo_network::evaluate_env(&policy, &net, env.as_mut(), a.episodes, a.seed)?;
        (eps, state, false)
    } else {
        let (policy, state) = taper::algos::hdpo::load_policy(&a.dir)?;
        let mut env = taper::envs::make_with(&state.env_id, &long_paths(&state.env_kwargs))?;
        let round = state.env_id == "InventoryLostSales-v0";
        let eps = taper::algos::hdpo::evaluate_env(&policy, env.as_mut(), a.episodes, a.seed, round)?;
        (eps, state, round)
    };
    let sum = taper::algos::eval::summarize(&eps);
    let (mean, std) = (sum.mean_return, sum.std_return);
    let mean_cost = -sum.mean_return / sum.mean_length;
    if a.json {
        let v = serde_json::json!({
            "env": state.env_id, "algo": state.algo, "episodes": eps.len(),
            "mean_return": mean, "std_return": std, "success_rate": null,
            "mean_cost": mean_cost, "mean_length": sum.mean_length, "seed": a.seed,
            "rounded_orders": round, "global_step": state.global_step,
        });
        out!("{v}");
    } else {
        out!(
            "{} (hdpo, {} gradient steps): {} episodes",
            state.env_id,
            state.global_step,
            eps.len()
        );
        out!("  cost per period {mean_cost:.4}  (return {mean:.2} ± {std:.2} per episode)");
    }
    Ok(())
}

/// `taper eval` for a multi-agent checkpoint: per-agent return (PettingZoo's convention) as
/// `mean_return`, plus the mean summed min-distance and the collisions per episode.
fn eval_marl(a: &EvalArgs) -> Result<()> {
    if a.render.is_some() {
        return Err(CliError::Arg {
            arg: "--render",
            reason: "SimpleSpread-v3 has no text rendering; use --record FILE.gif".into(),
        });
    }
    let (policy, spread, state) = marl::load(&a.dir)?;
    let mut frames: Vec<Vec<f64>> = Vec::new();
    let recording = a.record.is_some();
    let eps = marl::evaluate(&policy, spread, a.episodes, a.seed, a.deterministic, &mut |k, e| {
        if recording && k == 0 {
            let mut s: Vec<f64> = e.agent_positions().iter().flat_map(|p| [p[0], p[1]]).collect();
            s.extend(e.landmark_positions().iter().flat_map(|p| [p[0], p[1]]));
            frames.push(s);
        }
    })?;
    if let Some(path) = &a.record {
        render::record(
            path,
            render::Scene::Spread { n: spread.n },
            &frames,
            &format!("{} episode 0, return {:.1}", state.env_id, eps[0].mean_agent_return),
        )?;
        eprintln!("recorded {} frames to {}", frames.len(), path.display());
    }
    let rets: Vec<f64> = eps.iter().map(|e| e.mean_agent_return).collect();
    let (mean, std) = marl::mean_std(&rets);
    let (dist, _) = marl::mean_std(&eps.iter().map(|e| e.stats[0]).collect::<Vec<_>>());
    let (coll, _) = marl::mean_std(&eps.iter().map(|e| e.stats[1]).collect::<Vec<_>>());
    if a.json {
        let v = serde_json::json!({
            "env": state.env_id, "algo": state.algo, "agents": spread.n, "episodes": eps.len(),
            "mean_return": mean, "std_return": std,
            "min_return": rets.iter().cloned().fold(f64::INFINITY, f64::min),
            "max_return": rets.iter().cloned().fold(f64::NEG_INFINITY, f64::max),
            "return_convention": "per-agent episode return, averaged over agents (PettingZoo)",
            "mean_min_distance": dist, "mean_collisions": coll,
            "mean_length": eps.iter().map(|e| e.len as f64).sum::<f64>() / eps.len() as f64,
            "success_rate": null, "deterministic": a.deterministic, "seed": a.seed,
            "global_step": state.global_step,
        });
        out!("{v}");
    } else {
        out!(
            "{} ({}, {} agents, trained {} steps): {} episodes",
            state.env_id,
            state.algo,
            spread.n,
            state.global_step,
            eps.len()
        );
        out!("  per-agent return {mean:.3} ± {std:.3}");
        out!("  summed min-distance per step {dist:.3}, collisions per episode {coll:.2}");
    }
    Ok(())
}

/// `A..B` (B excluded) or `A,B,C`.
fn parse_seeds(spec: &str) -> Result<Vec<u64>> {
    let bad = || CliError::Arg {
        arg: "--seeds",
        reason: format!("`{spec}` is not A..B or A,B,C"),
    };
    let seeds: Vec<u64> = if let Some((a, b)) = spec.split_once("..") {
        let (a, b): (u64, u64) = (
            a.trim().parse().map_err(|_| bad())?,
            b.trim().parse().map_err(|_| bad())?,
        );
        (a..b).collect()
    } else {
        spec.split(',')
            .map(|s| s.trim().parse::<u64>().map_err(|_| bad()))
            .collect::<Result<_>>()?
    };
    if seeds.is_empty() || seeds.len() > 1000 {
        return Err(CliError::Arg {
            arg: "--seeds",
            reason: format!("`{spec}` gives {} seeds (1 to 1000)", seeds.len()),
        });
    }
    let mut uniq = seeds.clone();
    uniq.sort();
    uniq.dedup();
    if uniq.len() != seeds.len() {
        return Err(CliError::Arg {
            arg: "--seeds",
            reason: format!("`{spec}` repeats a seed"),
        });
    }
    Ok(seeds)
}

fn run_eval(a: EvalArgs) -> Result<()> {
    if a.episodes == 0 {
        return Err(CliError::Arg {
            arg: "--episodes",
            reason: "must be at least 1".into(),
        });
    }
    let (_, raw_state, _) = taper::algos::run::load_raw_checkpoint(&a.dir)?;
    if raw_state.algo == "hdpo" {
        return eval_hdpo(&a);
    }
    if config::MULTI_AGENT_ALGOS.contains(&raw_state.algo.as_str()) {
        return eval_marl(&a);
    }
    let (model, state) = taper::algos::run::load_checkpoint(&a.dir)?;
    let kwargs = if state.env_id.starts_with("Inventory") {
        long_paths(&state.env_kwargs)
    } else {
        state.env_kwargs.clone()
    };
    let mut env = taper::envs::make_with(&state.env_id, &kwargs)?;
    if env.observation_space() != &model.obs_space || env.action_space() != &model.act_space {
        return Err(CliError::Algo(taper::algos::AlgoError::Checkpoint {
            path: a.dir.display().to_string(),
            reason: format!("the model's spaces do not match env `{}`", state.env_id),
        }));
    }
    let ansi = match a.render.as_deref() {
        None => false,
        Some("ansi") => {
            env.reset(Some(a.seed))?;
            if env.render_ansi().is_none() {
                return Err(CliError::Arg {
                    arg: "--render",
                    reason: format!("{} has no text rendering", state.env_id),
                });
            }
            true
        }
        Some(other) => {
            return Err(CliError::Arg {
                arg: "--render",
                reason: format!("unknown mode `{other}` (ansi)"),
            })
        }
    };
    let scene = match &a.record {
        None => None,
        Some(_) => Some(render::Scene::for_env(&state.env_id).ok_or_else(|| CliError::Arg {
            arg: "--record",
            reason: format!("{} cannot be drawn yet (CartPole-v1, Pendulum-v1 can)", state.env_id),
        })?),
    };
    let mut frames: Vec<Vec<f64>> = Vec::new();
    let mut last_ep = usize::MAX;
    let mut hook = |k: usize, e: &dyn taper::envs::Env| {
        if ansi {
            if k != last_ep {
                out!("episode {k}");
                last_ep = k;
            }
            if let Some(t) = e.render_ansi() {
                out!("{t}");
            }
        }
        if scene.is_some() && k == 0 {
            if let Some(s) = e.render_state() {
                frames.push(s);
            }
        }
    };
    let eps = taper::algos::ppo::evaluate_with(
        &model,
        env.as_mut(),
        state.normalizer.as_ref(),
        a.episodes,
        a.seed,
        a.deterministic,
        &mut hook,
    )?;
    if let (Some(path), Some(scene)) = (&a.record, scene) {
        render::record(
            path,
            scene,
            &frames,
            &format!("{} episode 0, return {:.1}", state.env_id, eps[0].ret),
        )?;
        eprintln!("recorded {} frames to {}", frames.len(), path.display());
    }
    let sum = taper::algos::eval::summarize(&eps);
    let (mean, std, mean_len, success) = (sum.mean_return, sum.std_return, sum.mean_length, sum.success_rate);
    let (min, max) = (sum.min_return, sum.max_return);
    if a.json {
        let mut v = serde_json::json!({
            "env": state.env_id,
            "algo": state.algo,
            "episodes": eps.len(),
            "mean_return": mean,
            "std_return": std,
            "min_return": min,
            "max_return": max,
            "mean_length": mean_len,
            "success_rate": success,
            "deterministic": a.deterministic,
            "seed": a.seed,
            "global_step": state.global_step,
        });
        if state.env_id.starts_with("Inventory") {
            // The average cost per period over the evaluated paths.
            v["mean_cost"] = serde_json::json!(-sum.mean_return / sum.mean_length);
        }
        out!("{v}");
    } else {
        out!(
            "{} ({}, trained {} steps): {} episodes",
            state.env_id,
            state.algo,
            state.global_step,
            eps.len()
        );
        out!("  return  {mean:.2} ± {std:.2}  (min {min:.2}, max {max:.2})");
        out!("  length  {mean_len:.1}");
        if let Some(s) = success {
            out!("  success {s:.3}");
        }
    }
    Ok(())
}

#[cfg(test)]
mod fuzz {
    use super::*;
    use clap::Parser;
    use proptest::prelude::*;

    proptest! {
        #![proptest_config(ProptestConfig { cases: 500, ..ProptestConfig::default() })]
        /// Arbitrary argument lists never panic the CLI parser or the seed-list parser.
        #[test]
        fn cli_parser_never_panics(args in proptest::collection::vec(
            prop_oneof![
                Just("train".to_string()), Just("eval".to_string()), Just("plot".to_string()),
                Just("--seed".to_string()), Just("--seeds".to_string()), Just("--total-steps".to_string()),
                Just("--resume".to_string()), Just("--episodes".to_string()), Just("--json".to_string()),
                Just("--metric".to_string()), "-{0,2}[a-z0-9.,=-]{0,10}",
            ], 0..8)) {
            let mut v = vec!["taper".to_string()];
            v.extend(args.iter().cloned());
            let _ = Cli::try_parse_from(&v);
            for a in &args {
                let _ = parse_seeds(a);
            }
        }
    }
}
