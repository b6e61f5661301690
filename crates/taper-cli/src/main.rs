//! `taper`: train, evaluate and inspect reinforcement-learning runs.
//!
//! ```text
//! taper train [--algo A] [--env ID] [--seed N | --seeds LIST] [--total-steps N] [--config FILE] [--out DIR] [--quiet]
//! taper train --resume DIR [--total-steps N]
//! taper eval DIR [--episodes N] [--seed N] [--deterministic] [--json] [--render ansi] [--record FILE]
//! taper plot DIR... [--out FILE] [--metric NAME] [--smooth K]
//! taper solve --env ID [env flags] [--json]
//! taper diagnose DIR [--episodes N] [--k-sigma K,...] [--json]
//! taper envs | taper algos
//! ```
//!
//! Each subcommand lives in its own file under `commands/`; the CLI holds no training loop and
//! builds no checkpoint (the trainer does both), and dispatches algorithms through
//! `taper::algos::AlgoKind`.

mod cluster;
mod commands;
mod error;
mod render;
mod sweep_progress;

use clap::{Parser, Subcommand};
use commands::solve::InventoryFlags;
use std::path::PathBuf;

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
pub(crate) use out;

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
    /// Patient-0 attribution on a multi-agent run with centralized Q critics (MADDPG):
    /// fault injection, detection, traceback, contagion graphs.
    Diagnose(DiagnoseArgs),
    /// List the env ids.
    Envs,
    /// List the algorithms.
    Algos,
}

/// The flags of `taper train`.
#[derive(clap::Args, Debug)]
pub struct TrainArgs {
    /// The algorithm [default: ppo].
    #[arg(long)]
    pub algo: Option<String>,
    /// The env id [default: the algorithm's, e.g. CartPole-v1 for ppo].
    #[arg(long)]
    pub env: Option<String>,
    /// Env keyword arguments, `key=value,key=value` (e.g. `is_slippery=false`).
    #[arg(long)]
    pub env_kwargs: Option<String>,
    /// The seed [default: 1].
    #[arg(long)]
    pub seed: Option<u64>,
    /// Several seeds, `A..B` (B excluded) or `A,B,C`: one run each, in parallel, into
    /// OUT/s<seed>.
    #[arg(long, conflicts_with = "seed")]
    pub seeds: Option<String>,
    /// Train one run over the processes of an MPI launch (`mpirun -np P`, with the `mpi`
    /// feature): each process steps its share of the envs, or samples its share of GRPO's
    /// prompts (the config's `data_blocks` is P), and the gradients are summed in process
    /// order, so the run equals, bit for bit, the same config with `data_blocks = P` in one
    /// process. PPO, IPPO, MAPPO and GRPO.
    #[arg(long, conflicts_with = "seeds")]
    pub data_parallel: bool,
    /// Env steps to train for (HDPO: gradient steps) [default: the algorithm's budget for the
    /// env, see `taper envs` and `taper algos`].
    #[arg(long)]
    pub total_steps: Option<u64>,
    /// A TOML config: top-level `algo`, `env`, `seed`, `total_steps`, `[env_kwargs]`, and the
    /// algorithm's section (`[ppo]`, `[hdpo]`, `[mappo]`, `[ippo]`, `[maddpg]`, `[grpo]`, `[sac]`, `[dsac-t]`, `[stac]`).
    #[arg(long)]
    pub config: Option<PathBuf>,
    /// The run folder [default: runs/ENV__ALGO__SEED__UNIXTIME].
    #[arg(long)]
    pub out: Option<PathBuf>,
    /// No progress output.
    #[arg(long)]
    pub quiet: bool,
    /// Write a checkpoint to checkpoints/step_N every N steps.
    #[arg(long, value_name = "N")]
    pub checkpoint_every: Option<u64>,
    /// Keep only the newest K periodic checkpoints.
    #[arg(long, value_name = "K")]
    pub keep_last: Option<usize>,
    /// Stop this session after N steps in all; `--resume` continues the plan.
    #[arg(long, value_name = "N")]
    pub stop_after: Option<u64>,
    /// Evaluate the policy every N steps; keep the best in best/ and the results in
    /// evaluations.jsonl.
    #[arg(long, value_name = "N")]
    pub eval_every: Option<u64>,
    /// Episodes per evaluation.
    #[arg(long, value_name = "K", default_value_t = 10)]
    pub eval_episodes: usize,
    #[command(flatten)]
    pub inventory: InventoryFlags,
    /// Multi-agent envs: number of agents N (SimpleSpread-v3; default 3).
    #[arg(long)]
    pub agents: Option<usize>,
    /// GRPO: how per-token losses are aggregated: grpo, bnpo, dr_grpo or dapo (TRL's).
    #[arg(long, value_name = "TYPE")]
    pub loss_type: Option<String>,
    /// GRPO: how advantages are scaled: group, batch or none (Dr. GRPO: none).
    #[arg(long, value_name = "HOW")]
    pub scale_rewards: Option<String>,
    /// GRPO: DAPO's clip-higher, dynamic sampling, token-level loss and overlong shaping.
    #[arg(long)]
    pub dapo: bool,
    /// GRPO: D³S's sample- and token-level down-sampling.
    #[arg(long)]
    pub d3s: bool,
    /// GRPO: ADORA's advantage weights.
    #[arg(long)]
    pub adora: bool,
    /// Where the networks compute: cpu, cuda, cuda:N or metal (the GPUs need taper built with
    /// `--features cuda` or `--features metal`) [default: cpu, or the config's `device`].
    #[arg(long, value_name = "DEVICE")]
    pub device: Option<String>,
    /// How they compute: fast (the flat-buffer MLPs and the transformer's host kernels, CPU
    /// only) or candle (candle graphs, the path GPUs take) [default: fast on the CPU, candle on
    /// a GPU].
    #[arg(long, value_name = "BACKEND")]
    pub backend: Option<String>,
    /// Continue the run in DIR from its newest checkpoint, exactly.
    #[arg(long, value_name = "DIR")]
    pub resume: Option<PathBuf>,
    /// Replace the run already in `--out` (without it, an existing run is an error).
    #[arg(long, conflicts_with = "resume")]
    pub overwrite: bool,
    /// With `--resume`: train on with a `config.toml` edited since the checkpoint (refused
    /// otherwise).
    #[arg(long, requires = "resume")]
    pub accept_config_edits: bool,
}

/// The flags of `taper eval`.
#[derive(clap::Args, Debug)]
pub struct EvalArgs {
    /// A run folder (or its checkpoint folder).
    pub dir: PathBuf,
    /// Episodes to run [10; inventory envs: 500 of 5000 periods, so that the standard error of
    /// `mean_cost` is about 0.1% of it].
    #[arg(long)]
    pub episodes: Option<usize>,
    /// Seed of the first episode (episode k uses seed + k).
    #[arg(long, default_value_t = 0)]
    pub seed: u64,
    /// Take the most likely action instead of sampling.
    #[arg(long)]
    pub deterministic: bool,
    /// Print one JSON object.
    #[arg(long)]
    pub json: bool,
    /// Print each step of each episode as text (gridworlds): `ansi`.
    #[arg(long, value_name = "MODE")]
    pub render: Option<String>,
    /// Record the first episode: `FILE.gif`, or a folder for PNG frames (CartPole, Pendulum,
    /// Simple Spread).
    #[arg(long, value_name = "FILE")]
    pub record: Option<PathBuf>,
    /// Write the env's state after the reset and after every step of every episode to FILE as
    /// JSON lines, `{"episode": k, "t": i, "state": [...]}` (envs that report a state:
    /// CartPole, Pendulum, RiskyPointMass `[x, y, penalised]`, Simple Spread).
    #[arg(long, value_name = "FILE")]
    pub trace: Option<PathBuf>,
    /// Cut an episode after this many steps (an env without a time limit still ends).
    #[arg(long, value_name = "N", default_value_t = 100_000)]
    pub max_steps: u64,
    /// Leave the first N steps of each episode out of the average-cost figures (`mean_cost`,
    /// `se_cost`) [inventory envs: 1000].
    #[arg(long, value_name = "N")]
    pub warmup: Option<u64>,
    /// InventoryLostSales-v0 runs: also the policy's exact long-run cost per period (orders
    /// rounded to integers), from the Markov chain it induces, and its gap to the optimum.
    #[arg(long)]
    pub exact: bool,
}

/// The flags of `taper diagnose`.
#[derive(clap::Args, Debug)]
pub struct DiagnoseArgs {
    /// A multi-agent run folder whose algorithm has a centralized Q critic per agent (maddpg).
    pub dir: PathBuf,
    /// Reset seeds to diagnose (the paper's 500 "episodes"), each with its reference
    /// episodes and up to 2·N·(N − 1) attacked episodes.
    #[arg(long, default_value_t = 500)]
    pub episodes: usize,
    /// The first seed (seeds `first_seed .. first_seed + episodes`).
    #[arg(long, default_value_t = 0)]
    pub first_seed: u64,
    /// Flag thresholds K_σ, comma-separated; every one is scored on the same episodes.
    #[arg(long, value_delimiter = ',', default_value = "2")]
    pub k_sigma: Vec<f64>,
    /// Reference episodes per seed for the calibration bands.
    #[arg(long, default_value_t = 100)]
    pub references: usize,
    /// Only attacks by this agent.
    #[arg(long, value_name = "I")]
    pub attacker: Option<usize>,
    /// Write the contagion graphs (DOT and SVG) of the first K attacked episodes.
    #[arg(long, value_name = "K", default_value_t = 4)]
    pub graphs: usize,
    /// Where to write report.json, summary.md and graphs/ [default: DIR/diagnosis].
    #[arg(long, value_name = "DIR")]
    pub out: Option<PathBuf>,
    /// Print the report as one JSON object.
    #[arg(long)]
    pub json: bool,
    /// No progress bar.
    #[arg(long)]
    pub quiet: bool,
}

/// The flags of `taper solve`.
#[derive(clap::Args, Debug)]
pub struct SolveArgs {
    /// The env id: InventoryLostSales-v0, InventoryBacklog-v0, FrozenLake-v1, CliffWalking-v1, ...
    #[arg(long)]
    pub env: String,
    /// Env keyword arguments, `key=value,...` (gridworlds).
    #[arg(long)]
    pub env_kwargs: Option<String>,
    #[command(flatten)]
    pub inventory: InventoryFlags,
    /// Print one JSON object.
    #[arg(long)]
    pub json: bool,
}

/// The flags of `taper plot`.
#[derive(clap::Args, Debug)]
pub struct PlotArgs {
    /// Run folders; runs that differ only in seed are averaged.
    #[arg(required = true)]
    pub dirs: Vec<PathBuf>,
    /// The output image, `.png` or `.svg`.
    #[arg(long, default_value = "plot.png")]
    pub out: PathBuf,
    /// The metric on the y axis (a column of metrics.jsonl).
    #[arg(long, default_value = commands::plot::DEFAULT_METRIC)]
    pub metric: String,
    /// Trailing moving average over K rows.
    #[arg(long, default_value_t = 1)]
    pub smooth: usize,
    /// The column on the x axis: `global_step`, `time_elapsed` for wall time, or any other
    /// column (e.g. GRPO's `samples_trained` and `tokens_trained`).
    #[arg(long, default_value = "global_step")]
    pub x: String,
    /// The y range, `LO,HI` (default: the data's).
    #[arg(long, value_name = "LO,HI", value_parser = parse_range, allow_hyphen_values = true)]
    pub ylim: Option<(f64, f64)>,
}

fn parse_range(s: &str) -> std::result::Result<(f64, f64), String> {
    let (a, b) = s.split_once(',').ok_or_else(|| format!("`{s}` is not LO,HI"))?;
    let lo: f64 = a.trim().parse().map_err(|_| format!("`{a}` is not a number"))?;
    let hi: f64 = b.trim().parse().map_err(|_| format!("`{b}` is not a number"))?;
    Ok((lo, hi))
}

fn main() {
    let cli = Cli::parse();
    if let Command::Train(a) = &cli.command {
        if a.data_parallel {
            commands::train_parallel::share_cores();
        }
    }
    // The command runs on a thread of rayon's pool, so that the networks' fork-joins (the two
    // halves of a large pass) hand work to the other thread without waking this one from
    // outside the pool each time.
    let r = rayon::scope(|_| match cli.command {
        Command::Train(a) => commands::train::run(*a),
        Command::Eval(a) => commands::eval::run(a),
        Command::Plot(a) => commands::plot::run(a),
        Command::Solve(a) => commands::solve::run(a),
        Command::Diagnose(a) => commands::diagnose::run(a),
        Command::Envs => commands::envs::run(),
        Command::Algos => commands::algos::run(),
    });
    if let Err(e) = r {
        eprintln!("error: {e}");
        // A run stopped by a signal exits as shells expect of SIGINT.
        let interrupted = e.to_string().starts_with("interrupted at step");
        std::process::exit(if interrupted { 130 } else { 1 });
    }
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
                let _ = taper::train::seeds::parse_seeds(a);
            }
        }
    }
}
