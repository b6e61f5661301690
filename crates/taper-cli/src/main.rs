//! `taper`: train, evaluate and inspect reinforcement-learning runs.
//!
//! ```text
//! taper train [--algo ppo] [--env ID] [--seed N] [--total-steps N] [--config FILE] [--out DIR] [--quiet]
//! taper eval DIR [--episodes N] [--seed N] [--deterministic] [--json]
//! taper envs | taper algos
//! ```

mod config;
mod error;
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
    Train(TrainArgs),
    /// Evaluate a run's checkpoint.
    Eval(EvalArgs),
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
}

fn main() {
    let cli = Cli::parse();
    let r = match cli.command {
        Command::Train(a) => run_train(a),
        Command::Eval(a) => run_eval(a),
        Command::Envs => {
            list_envs();
            Ok(())
        }
        Command::Algos => {
            println!("ppo\tProximal Policy Optimization (CleanRL's ppo.py / ppo_continuous_action.py)");
            Ok(())
        }
    };
    if let Err(e) = r {
        eprintln!("error: {e}");
        std::process::exit(1);
    }
}

fn list_envs() {
    println!("{:<20} {:>7} {:>12}  description", "id", "limit", "ppo budget");
    for s in taper::envs::registry::specs() {
        let limit = s.max_episode_steps.map(|l| l.to_string()).unwrap_or_else(|| "-".into());
        println!(
            "{:<20} {:>7} {:>12}  {}{}",
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
    };
    let kwargs = match &a.env_kwargs {
        Some(s) => Some(config::parse_kwargs(s)?),
        None => None,
    };
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

fn run_eval(a: EvalArgs) -> Result<()> {
    if a.episodes == 0 {
        return Err(CliError::Arg {
            arg: "--episodes",
            reason: "must be at least 1".into(),
        });
    }
    let (model, state) = taper::algos::run::load_checkpoint(&a.dir)?;
    let mut env = taper::envs::make_with(&state.env_id, &state.env_kwargs)?;
    if env.observation_space() != &model.obs_space || env.action_space() != &model.act_space {
        return Err(CliError::Algo(taper::algos::AlgoError::Checkpoint {
            path: a.dir.display().to_string(),
            reason: format!("the model's spaces do not match env `{}`", state.env_id),
        }));
    }
    let eps = taper::algos::ppo::evaluate(
        &model,
        env.as_mut(),
        state.normalizer.as_ref(),
        a.episodes,
        a.seed,
        a.deterministic,
    )?;
    let n = eps.len() as f64;
    let mean = eps.iter().map(|e| e.ret).sum::<f64>() / n;
    let std = (eps.iter().map(|e| (e.ret - mean).powi(2)).sum::<f64>() / n).sqrt();
    let mean_len = eps.iter().map(|e| e.len as f64).sum::<f64>() / n;
    let success = if eps.iter().all(|e| e.success.is_some()) {
        Some(eps.iter().filter(|e| e.success == Some(true)).count() as f64 / n)
    } else {
        None
    };
    let min = eps.iter().map(|e| e.ret).fold(f64::INFINITY, f64::min);
    let max = eps.iter().map(|e| e.ret).fold(f64::NEG_INFINITY, f64::max);
    if a.json {
        let v = serde_json::json!({
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
        println!("{v}");
    } else {
        println!(
            "{} ({}, trained {} steps): {} episodes",
            state.env_id,
            state.algo,
            state.global_step,
            eps.len()
        );
        println!("  return  {mean:.2} ± {std:.2}  (min {min:.2}, max {max:.2})");
        println!("  length  {mean_len:.1}");
        if let Some(s) = success {
            println!("  success {s:.3}");
        }
    }
    Ok(())
}
