//! `taper train` and `taper eval` for the multi-agent algorithms (MAPPO, IPPO, MADDPG) on
//! `SimpleSpread-v3`: the same run folder (config.toml, metrics.jsonl/csv, TensorBoard events,
//! a final checkpoint) and the same `eval --json` shape as the single-agent path.

use crate::config::RunConfig;
use crate::error::{CliError, Result};
use crate::train::TrainOptions;
use std::path::Path;
use taper::algos::callback::Control;
use taper::algos::maddpg::{evaluate_maddpg, Maddpg, MaddpgConfig};
use taper::algos::marl::{evaluate_spread, MaPpo, MappoConfig};
use taper::algos::metrics::Metrics;
use taper::algos::run::{load_raw_checkpoint, save_tensors_checkpoint, CheckpointState, MetricsWriter, ModelShape};
use taper::algos::tensorboard::EventWriter;
use taper::envs::mpe::{SimpleSpread, SpreadConfig, SpreadEpisode};

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

/// Trains MAPPO, IPPO or MADDPG per `cfg` into `out`.
pub fn train_marl(cfg: &RunConfig, out: &Path, opts: &TrainOptions) -> Result<()> {
    if opts.checkpoint_every > 0 || opts.stop_after.is_some() || opts.eval_every > 0 {
        return Err(CliError::Arg {
            arg: "--checkpoint-every",
            reason: format!(
                "{} runs write one final checkpoint; periodic checkpoints, --stop-after and --eval-every are not supported yet",
                cfg.algo
            ),
        });
    }
    let spread = taper::envs::registry::spread_config(&cfg.env, &cfg.env_kwargs)?;
    let mut writer = MetricsWriter::create(out)?;
    let mut tb = EventWriter::create(out)?;
    if !opts.quiet {
        eprintln!(
            "taper train: {} on {} with {} agents (seed {}), {} env steps -> {}",
            cfg.algo,
            cfg.env,
            spread.n,
            cfg.seed,
            cfg.total_steps,
            out.display()
        );
    }
    let mut err: Option<CliError> = None;
    let total = cfg.total_steps;
    let mut next_print = 0u64;
    let mut log = |m: &Metrics| -> Control {
        let step = m.get("global_step").unwrap_or(0.0) as u64;
        if let Err(e) = writer
            .write(m)
            .and_then(|_| tb.add_metrics(m, step as i64))
            .and_then(|_| tb.flush())
        {
            err.get_or_insert(e.into());
            return Control::Stop;
        }
        if !opts.quiet && (step >= next_print || step >= total) {
            next_print = step + total / 20;
            eprintln!(
                "step {step:>10}/{total} | recent return {:8.3} | min-distance {:.3} | collisions {:.2} | {:.0} steps/s",
                m.get("recent_return").unwrap_or(f64::NAN),
                m.get("recent_min_distance").unwrap_or(f64::NAN),
                m.get("recent_collisions").unwrap_or(f64::NAN),
                m.get("sps").unwrap_or(f64::NAN),
            );
        }
        Control::Continue
    };
    let (tensors, state, recent) = if cfg.algo == "maddpg" {
        let c = cfg.maddpg.clone().unwrap_or_default();
        let mut l = Maddpg::new(c.clone(), spread, cfg.seed)?;
        let mut last = Metrics::new();
        l.learn(total, &mut |m, _| {
            last = m.clone();
            log(m)
        })?;
        let mut t = Vec::new();
        for (i, (a, q)) in l.nets.actors.iter().zip(&l.nets.critics).enumerate() {
            t.extend(
                a.to_tensors(&format!("actor_{i}"))
                    .map_err(taper::algos::AlgoError::from)?,
            );
            t.extend(
                q.to_tensors(&format!("critic_{i}"))
                    .map_err(taper::algos::AlgoError::from)?,
            );
        }
        let st = state_for(
            cfg,
            &spread,
            serde_json::to_value(&c).unwrap_or_default(),
            (l.global_step(), l.updates(), l.episodes()),
        );
        (t, st, last.get("recent_return"))
    } else {
        let c = if cfg.algo == "mappo" {
            cfg.mappo.clone().unwrap_or_else(MappoConfig::mappo)
        } else {
            cfg.ippo.clone().unwrap_or_else(MappoConfig::ippo)
        };
        let mut l = MaPpo::new(c.clone(), spread, cfg.seed)?;
        let mut last = Metrics::new();
        l.learn(total, &mut |m, _| {
            last = m.clone();
            log(m)
        })?;
        let st = state_for(
            cfg,
            &spread,
            serde_json::to_value(&c).unwrap_or_default(),
            (l.global_step(), l.updates(), l.episodes()),
        );
        (l.model().to_tensors()?, st, last.get("recent_return"))
    };
    if let Some(e) = err {
        return Err(e);
    }
    save_tensors_checkpoint(&out.join("checkpoint"), tensors, &state)?;
    if !opts.quiet {
        eprintln!(
            "done: {} env steps; recent per-agent return {:.3} (last 100 episodes); run folder {}",
            state.global_step,
            recent.unwrap_or(f64::NAN),
            out.display()
        );
    }
    Ok(())
}

/// A trained multi-agent policy, loaded for evaluation.
pub enum MaPolicy {
    /// MAPPO or IPPO: the shared actor (and critic).
    Shared(Box<taper::algos::policy::ActorCritic>),
    /// MADDPG: one actor and critic per agent.
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
        for i in 0..spread.n {
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
) -> Result<Vec<SpreadEpisode>> {
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
