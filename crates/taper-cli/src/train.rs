//! `taper train`: resolve the config, train, and write the run folder.

use crate::config::RunConfig;
use crate::error::{CliError, Result};
use indicatif::{ProgressBar, ProgressStyle};
use std::io::IsTerminal;
use std::path::Path;
use taper::algos::callback::Control;
use taper::algos::metrics::Metrics;
use taper::algos::ppo::{make_env, Ppo};
use taper::algos::run::{save_checkpoint, CheckpointState, MetricsWriter, ModelShape};

/// Trains per `cfg` into the run folder `out`.
pub fn train(cfg: &RunConfig, out: &Path, quiet: bool) -> Result<()> {
    std::fs::create_dir_all(out).map_err(|e| CliError::io(out, e))?;
    let toml_text = toml::to_string(cfg).map_err(|e| CliError::Config {
        path: out.display().to_string(),
        reason: e.to_string(),
    })?;
    std::fs::write(out.join("config.toml"), toml_text)
        .map_err(|e| CliError::io(out.join("config.toml"), e))?;

    let mut venv = make_env(&cfg.env, &cfg.env_kwargs, &cfg.ppo)?;
    let mut ppo = Ppo::new(
        cfg.ppo.clone(),
        venv.observation_space(),
        venv.action_space(),
        cfg.seed,
    )?;
    let mut writer = MetricsWriter::create(out)?;
    let batch = cfg.ppo.batch_size() as u64;
    let planned = (cfg.total_steps / batch) * batch;
    let tty = std::io::stderr().is_terminal();
    let bar = if !quiet && tty {
        let b = ProgressBar::new(planned);
        b.set_style(
            ProgressStyle::with_template(
                "{spinner} [{elapsed_precise}] {bar:30} {pos}/{len} steps | {msg}",
            )
            .unwrap_or_else(|_| ProgressStyle::default_bar()),
        );
        Some(b)
    } else {
        None
    };
    if !quiet {
        eprintln!(
            "taper train: {} on {} (seed {}), {} steps -> {}",
            cfg.algo,
            cfg.env,
            cfg.seed,
            planned,
            out.display()
        );
    }
    let iters = (cfg.total_steps / batch).max(1);
    let every = (iters / 10).max(1);
    let mut io_err: Option<CliError> = None;
    let mut cb = |m: &Metrics| {
        if let Err(e) = writer.write(m) {
            io_err = Some(e.into());
            return Control::Stop;
        }
        let step = m.get("global_step").unwrap_or(0.0);
        let sps = m.get("sps").unwrap_or(0.0);
        let ret = m.get("recent_return").unwrap_or(f64::NAN);
        let msg = format!("sps {sps:.0} | return {ret:.1}");
        if let Some(b) = &bar {
            b.set_position(step as u64);
            b.set_message(msg);
        } else if !quiet {
            let u = m.get("update").unwrap_or(0.0) as u64;
            if u % every == 0 || u == iters {
                eprintln!("step {step:>9.0}/{planned} | {msg}");
            }
        }
        Control::Continue
    };
    let result = ppo.learn(&mut venv, cfg.total_steps, &mut cb);
    if let Some(b) = &bar {
        b.finish_and_clear();
    }
    if let Some(e) = io_err {
        return Err(e);
    }
    let summary = result?;
    let state = CheckpointState {
        taper_version: taper::VERSION.to_string(),
        algo: cfg.algo.clone(),
        env_id: cfg.env.clone(),
        env_kwargs: cfg.env_kwargs.clone(),
        seed: cfg.seed,
        config: serde_json::to_value(&cfg.ppo).map_err(|e| CliError::Config {
            path: "ppo".into(),
            reason: e.to_string(),
        })?,
        model_shape: ModelShape {
            obs_space: ppo.model().obs_space.clone(),
            act_space: ppo.model().act_space.clone(),
            hidden: cfg.ppo.hidden.clone(),
        },
        normalizer: venv.normalizer().cloned(),
        optimizer: Some(ppo.optimizer().state().clone()),
        global_step: ppo.global_step(),
        updates: ppo.updates(),
        episodes: ppo.episodes(),
    };
    save_checkpoint(&out.join("checkpoint"), ppo.model(), &state)?;
    if !quiet {
        eprintln!(
            "done: {} steps, {} updates, {} episodes; mean return of the last 20 episodes {:.1}; run folder {}",
            summary.global_step,
            summary.updates,
            ppo.episodes(),
            summary.recent_return,
            out.display()
        );
    }
    Ok(())
}
