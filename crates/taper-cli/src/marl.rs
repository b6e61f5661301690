//! `taper train` and `taper eval` for the multi-agent algorithms (MAPPO, IPPO, MADDPG) on
//! `SimpleSpread-v3`: the same run folder (config.toml, metrics.jsonl/csv, TensorBoard events,
//! periodic and final checkpoints), exact `--resume`, and the same `eval --json` shape as the
//! single-agent path.

use crate::config::RunConfig;
use crate::error::{CliError, Result};
use crate::train::TrainOptions;
use std::path::Path;
use taper::algos::callback::Control;
use taper::algos::maddpg::{evaluate_maddpg, Maddpg, MaddpgConfig};
use taper::algos::marl::{evaluate_spread, MaPpo, MappoConfig};
use taper::algos::metrics::Metrics;
use taper::algos::run::{load_raw_checkpoint, save_checkpoint_files, CheckpointState, MetricsWriter, ModelShape};
use taper::algos::tensorboard::EventWriter;
use taper::envs::mpe::{SimpleSpread, SpreadConfig};
use taper::envs::parallel::MaEpisode;

fn state_for(
    cfg: &RunConfig,
    spread: &SpreadConfig,
    config: serde_json::Value,
    counts: (u64, u64, u64),
) -> CheckpointState {
    let od = 6 * spread.n;
    CheckpointState {
        taper_version: env!("CARGO_PKG_VERSION").to_string(),
        algo: cfg.algo.clone(),
        env_id: cfg.env.clone(),
        env_kwargs: cfg.env_kwargs.clone(),
        seed: cfg.seed,
        config,
        model_shape: ModelShape {
            obs_space: taper::envs::Space::uniform_box(od, f32::NEG_INFINITY, f32::INFINITY),
            act_space: taper::envs::Space::Discrete { n: 5 },
            hidden: Vec::new(),
        },
        normalizer: None,
        algo_state: None,
        env_state: None,
        global_step: counts.0,
        updates: counts.1,
        episodes: counts.2,
    }
}

/// A multi-agent learner of either kind.
enum MaLearner {
    Ppo(Box<MaPpo>),
    Ddpg(Box<Maddpg>),
}

use taper::algos::run::NamedTensors as Tensors;

/// A checkpoint to write: the model's tensors, the state, and further tensor files.
type Checkpoint = (Tensors, CheckpointState, Vec<(&'static str, Tensors)>);

/// A checkpoint of a learner: its config, counters `(step, updates, episodes)` and whole
/// state as JSON, its tensors, and further tensor files.
fn checkpoint_of(
    cfg: &RunConfig,
    spread: &SpreadConfig,
    (config, counts, algo_state): (
        serde_json::Result<serde_json::Value>,
        (u64, u64, u64),
        serde_json::Result<serde_json::Value>,
    ),
    tensors: Tensors,
    extra: Vec<(&'static str, Tensors)>,
) -> Result<Checkpoint> {
    let mut st = state_for(cfg, spread, config.map_err(|e| bad_state(e.to_string()))?, counts);
    st.algo_state = Some(algo_state.map_err(|e| bad_state(e.to_string()))?);
    Ok((tensors, st, extra))
}

/// A MAPPO/IPPO learner's checkpoint: the model and the learner's whole state.
fn mappo_checkpoint(l: &MaPpo, cfg: &RunConfig, spread: &SpreadConfig) -> Result<Checkpoint> {
    let counts = (l.global_step(), l.updates(), l.episodes());
    let json = (serde_json::to_value(&l.config), counts, serde_json::to_value(l.state()));
    checkpoint_of(cfg, spread, json, l.model().to_tensors()?, Vec::new())
}

/// A MADDPG learner's checkpoint: online and target networks, the state, and the replay
/// buffer in its own file (`replay.safetensors`, read only by `--resume`).
fn maddpg_checkpoint(l: &Maddpg, cfg: &RunConfig, spread: &SpreadConfig) -> Result<Checkpoint> {
    let counts = (l.global_step(), l.updates(), l.episodes());
    let json = (serde_json::to_value(&l.config), counts, serde_json::to_value(l.state()));
    checkpoint_of(
        cfg,
        spread,
        json,
        l.tensors()?,
        vec![(REPLAY_FILE, l.replay_tensors()?)],
    )
}

/// The file of a MADDPG checkpoint that holds the replay buffer.
const REPLAY_FILE: &str = "replay.safetensors";

fn save(dir: &Path, (t, st, extra): Checkpoint) -> Result<()> {
    let extra: Vec<(&str, Tensors)> = extra;
    save_checkpoint_files(dir, t, &st, &extra)?;
    Ok(())
}

/// The learner config of a multi-agent run (`[mappo]`, `[ippo]` or `[maddpg]`, else the
/// algorithm's CLI default).
fn mappo_config(cfg: &RunConfig) -> MappoConfig {
    if cfg.algo == "mappo" {
        cfg.mappo.clone().unwrap_or_else(MappoConfig::mappo)
    } else {
        cfg.ippo.clone().unwrap_or_else(MappoConfig::ippo)
    }
}

fn check_options(cfg: &RunConfig, opts: &TrainOptions) -> Result<()> {
    if opts.eval_every > 0 {
        return Err(CliError::Arg {
            arg: "--eval-every",
            reason: format!(
                "{} runs log the last 100 training episodes; periodic evaluation is not supported yet (use `taper eval` on a checkpoint)",
                cfg.algo
            ),
        });
    }
    Ok(())
}

fn bad_state(reason: String) -> CliError {
    CliError::Algo(taper::algos::AlgoError::Checkpoint {
        path: "state".into(),
        reason,
    })
}

/// What happens at every metrics row: logging, progress, periodic checkpoints, `--stop-after`.
struct Hooks<'a> {
    out: &'a Path,
    opts: &'a TrainOptions,
    total: u64,
    writer: MetricsWriter,
    tb: EventWriter,
    next_print: u64,
    next_checkpoint: u64,
    err: Option<CliError>,
}

impl Hooks<'_> {
    fn on_row(&mut self, m: &Metrics, checkpoint: &dyn Fn() -> Result<Checkpoint>) -> Control {
        match self.handle(m, checkpoint) {
            Ok(c) => c,
            Err(e) => {
                self.err.get_or_insert(e);
                Control::Stop
            }
        }
    }

    fn handle(&mut self, m: &Metrics, checkpoint: &dyn Fn() -> Result<Checkpoint>) -> Result<Control> {
        let step = m.get("global_step").unwrap_or(0.0) as u64;
        self.writer.write(m)?;
        self.tb.add_metrics(m, step as i64)?;
        self.tb.flush()?;
        if !self.opts.quiet && (step >= self.next_print || step >= self.total) {
            self.next_print = step + self.total / 20;
            eprintln!(
                "step {step:>10}/{} | recent return {:8.3} | min-distance {:.3} | collisions {:.2} | {:.0} steps/s",
                self.total,
                m.get("recent_return").unwrap_or(f64::NAN),
                m.get("recent_min_distance").unwrap_or(f64::NAN),
                m.get("recent_collisions").unwrap_or(f64::NAN),
                m.get("sps").unwrap_or(f64::NAN),
            );
        }
        let every = self.opts.checkpoint_every;
        if every > 0 && step >= self.next_checkpoint && step < self.total {
            self.next_checkpoint = (step / every + 1) * every;
            let dir = self.out.join("checkpoints").join(format!("step_{step:010}"));
            save(&dir, checkpoint()?)?;
            crate::train::prune_checkpoints(self.out, self.opts.keep_last)?;
        }
        if self.opts.stop_after.is_some_and(|s| step >= s) {
            return Ok(Control::Stop);
        }
        Ok(Control::Continue)
    }
}

/// Trains MAPPO, IPPO or MADDPG per `cfg` into `out`, from scratch.
pub fn train_marl(cfg: &RunConfig, out: &Path, opts: &TrainOptions) -> Result<()> {
    check_options(cfg, opts)?;
    let spread = taper::envs::registry::spread_config(&cfg.env, &cfg.env_kwargs)?;
    let learner = if cfg.algo == "maddpg" {
        let c = cfg.maddpg.clone().unwrap_or_else(MaddpgConfig::tuned);
        MaLearner::Ddpg(Box::new(Maddpg::new(c, spread, cfg.seed)?))
    } else {
        MaLearner::Ppo(Box::new(MaPpo::new(mappo_config(cfg), spread, cfg.seed)?))
    };
    run_marl(cfg, out, opts, spread, learner, MetricsWriter::create(out)?)
}

/// Continues the multi-agent run in `out` from its newest checkpoint, exactly.
pub fn resume_marl(cfg: &RunConfig, out: &Path, opts: &TrainOptions) -> Result<()> {
    check_options(cfg, opts)?;
    let ckpt = crate::train::newest_checkpoint(out)?;
    let (tensors, state, mp) = load_raw_checkpoint(&ckpt)?;
    let bad = |reason: String| CliError::Arg {
        arg: "--resume",
        reason: format!("checkpoint {} cannot be resumed: {reason}", ckpt.display()),
    };
    if state.env_id != cfg.env || state.algo != cfg.algo || state.env_kwargs != cfg.env_kwargs {
        return Err(bad(format!(
            "it is {} on {} {:?}, but the run's config says {} on {} {:?}",
            state.algo, state.env_id, state.env_kwargs, cfg.algo, cfg.env, cfg.env_kwargs
        )));
    }
    let algo_state = state
        .algo_state
        .clone()
        .ok_or_else(|| bad("it holds no learner state (written by an older taper)".into()))?;
    let spread = taper::envs::registry::spread_config(&cfg.env, &cfg.env_kwargs)?;
    let (learner, done) = if cfg.algo == "maddpg" {
        let c = cfg.maddpg.clone().unwrap_or_else(MaddpgConfig::tuned);
        let st = serde_json::from_value(algo_state).map_err(|e| bad(e.to_string()))?;
        let dir = mp.parent().unwrap_or(Path::new("."));
        let replay = taper::algos::run::load_checkpoint_file(dir, REPLAY_FILE)?;
        let l = Maddpg::restore(c, spread, &tensors, &replay, st)?;
        let done = l.global_step() >= cfg.total_steps;
        (MaLearner::Ddpg(Box::new(l)), done)
    } else {
        let c = mappo_config(cfg);
        let st = serde_json::from_value(algo_state).map_err(|e| bad(e.to_string()))?;
        let mut model = MaPpo::new(c.clone(), spread, state.seed)?.model().clone();
        model
            .load_tensors(&tensors)
            .map_err(|e| bad(format!("{}: {e}", mp.display())))?;
        let l = MaPpo::restore(c.clone(), spread, model, st)?;
        let done = cfg.total_steps / c.batch_size() as u64 <= l.updates();
        (MaLearner::Ppo(Box::new(l)), done)
    };
    crate::train::begin_resume(cfg, out, opts, done, state.global_step, &ckpt)?;
    let writer = match &learner {
        MaLearner::Ppo(_) => MetricsWriter::resume(out, state.updates)?,
        // MADDPG writes a row every 100 episodes, not one per update.
        MaLearner::Ddpg(_) => MetricsWriter::resume_at_step(out, state.global_step)?,
    };
    run_marl(cfg, out, opts, spread, learner, writer)
}

fn run_marl(
    cfg: &RunConfig,
    out: &Path,
    opts: &TrainOptions,
    spread: SpreadConfig,
    mut learner: MaLearner,
    writer: MetricsWriter,
) -> Result<()> {
    // The step the run ends at: whole rollouts for MAPPO/IPPO, whole vector steps for MADDPG.
    let (start, total) = match &learner {
        MaLearner::Ppo(l) => {
            let b = l.config.batch_size() as u64;
            (l.global_step(), cfg.total_steps / b * b)
        }
        MaLearner::Ddpg(l) => {
            let m = l.config.num_envs as u64;
            (l.global_step(), cfg.total_steps.div_ceil(m) * m)
        }
    };
    if !opts.quiet {
        eprintln!(
            "taper train: {} on {} with {} agents (seed {}), {} env steps -> {}",
            cfg.algo,
            cfg.env,
            spread.n,
            cfg.seed,
            total,
            out.display()
        );
    }
    let every = opts.checkpoint_every.max(1);
    let mut hooks = Hooks {
        out,
        opts,
        total,
        writer,
        tb: EventWriter::create(out)?,
        next_print: 0,
        next_checkpoint: (start / every + 1) * every,
        err: None,
    };
    let mut last = Metrics::new();
    let ckpt = match &mut learner {
        MaLearner::Ddpg(l) => {
            l.learn(total, &mut |m, l| {
                last = m.clone();
                hooks.on_row(m, &|| maddpg_checkpoint(l, cfg, &spread))
            })?;
            maddpg_checkpoint(l, cfg, &spread)?
        }
        MaLearner::Ppo(l) => {
            l.learn(total, &mut |m, l| {
                last = m.clone();
                hooks.on_row(m, &|| mappo_checkpoint(l, cfg, &spread))
            })?;
            mappo_checkpoint(l, cfg, &spread)?
        }
    };
    if let Some(e) = hooks.err {
        return Err(e);
    }
    let step = ckpt.1.global_step;
    save(&out.join("checkpoint"), ckpt)?;
    if !opts.quiet {
        eprintln!(
            "done: {step} env steps; recent per-agent return {:.3} (last 100 episodes); run folder {}",
            last.get("recent_return").unwrap_or(f64::NAN),
            out.display()
        );
    }
    Ok(())
}

/// A trained multi-agent policy, loaded for evaluation.
pub enum MaPolicy {
    /// MAPPO or IPPO: the shared actor (and critic).
    Shared(Box<taper::algos::policy::ActorCritic>),
    /// MADDPG: the actors and critics (one per agent, or one shared).
    PerAgent(taper::algos::maddpg::MaddpgNets),
}

/// Loads a multi-agent checkpoint: the policy, the env config and the state.
pub fn load(dir: &Path) -> Result<(MaPolicy, SpreadConfig, CheckpointState)> {
    let (tensors, state, mp) = load_raw_checkpoint(dir)?;
    let bad = |reason: String| {
        CliError::Algo(taper::algos::AlgoError::Checkpoint {
            path: mp.display().to_string(),
            reason,
        })
    };
    let spread = taper::envs::registry::spread_config(&state.env_id, &state.env_kwargs)?;
    let policy = if state.algo == "maddpg" {
        let c: MaddpgConfig = serde_json::from_value(state.config.clone()).map_err(|e| bad(e.to_string()))?;
        let mut l = Maddpg::new(c, spread, state.seed)?;
        for i in 0..l.nets.actors.len() {
            l.nets.actors[i]
                .load_tensors(&format!("actor_{i}"), &tensors)
                .map_err(|e| bad(e.to_string()))?;
            l.nets.critics[i]
                .load_tensors(&format!("critic_{i}"), &tensors)
                .map_err(|e| bad(e.to_string()))?;
        }
        MaPolicy::PerAgent(l.nets)
    } else {
        let c: MappoConfig = serde_json::from_value(state.config.clone()).map_err(|e| bad(e.to_string()))?;
        let l = MaPpo::new(c, spread, state.seed)?;
        let mut model = l.model().clone();
        model.load_tensors(&tensors).map_err(|e| bad(e.to_string()))?;
        MaPolicy::Shared(Box::new(model))
    };
    Ok((policy, spread, state))
}

/// Runs the evaluation episodes; `on_step` sees the env after each step.
pub fn evaluate(
    policy: &MaPolicy,
    spread: SpreadConfig,
    episodes: usize,
    seed: u64,
    deterministic: bool,
    on_step: &mut dyn FnMut(usize, &SimpleSpread),
) -> Result<Vec<MaEpisode>> {
    Ok(match policy {
        MaPolicy::Shared(m) => evaluate_spread(m, spread, episodes, seed, deterministic, on_step)?,
        MaPolicy::PerAgent(n) => evaluate_maddpg(n, spread, episodes, seed, deterministic, on_step)?,
    })
}

/// Mean and (population) standard deviation.
pub fn mean_std(v: &[f64]) -> (f64, f64) {
    let n = v.len().max(1) as f64;
    let m = v.iter().sum::<f64>() / n;
    (m, (v.iter().map(|x| (x - m) * (x - m)).sum::<f64>() / n).sqrt())
}
