//! `taper train`: resolve the config, train (or resume), and write the run folder.

use crate::config::RunConfig;
use crate::error::{CliError, Result};
use indicatif::{ProgressBar, ProgressStyle};
use std::io::IsTerminal;
use std::path::{Path, PathBuf};
use taper::algos::callback::{Callback, CallbackList, Control, UpdateContext};
use taper::algos::eval::EvalCallback;
use taper::algos::ppo::{make_env, Ppo, PpoState};
use taper::algos::run::{learner_checkpoint, load_checkpoint, save_checkpoint, CheckpointState, MetricsWriter};
use taper::algos::tensorboard::EventWriter;

/// How to run: the options of `taper train` besides the config.
#[derive(Debug, Clone, Default)]
pub struct TrainOptions {
    /// No progress output.
    pub quiet: bool,
    /// Write `checkpoints/step_N` every this many env steps (0: never).
    pub checkpoint_every: u64,
    /// Keep only the newest K periodic checkpoints (0: keep all).
    pub keep_last: usize,
    /// Stop this session once this many env steps are done in all (the plan stays
    /// `total_steps`; `--resume` continues it).
    pub stop_after: Option<u64>,
    /// Evaluate every this many env steps (0: never).
    pub eval_every: u64,
    /// Episodes per evaluation.
    pub eval_episodes: usize,
}

/// Trains per `cfg` into the run folder `out`, from scratch.
pub fn train(cfg: &RunConfig, out: &Path, opts: &TrainOptions) -> Result<()> {
    std::fs::create_dir_all(out).map_err(|e| CliError::io(out, e))?;
    write_config(cfg, out)?;
    if let Some(h) = &cfg.hdpo {
        return train_hdpo(cfg, h, out, opts);
    }
    if crate::config::MULTI_AGENT_ALGOS.contains(&cfg.algo.as_str()) {
        return crate::marl::train_marl(cfg, out, opts);
    }
    let mut venv = make_env(&cfg.env, &cfg.env_kwargs, &cfg.ppo)?;
    let ppo = Ppo::new(cfg.ppo.clone(), venv.observation_space(), venv.action_space(), cfg.seed)?;
    let writer = MetricsWriter::create(out)?;
    run(cfg, out, opts, ppo, &mut venv, writer)
}

/// Trains one run per seed into `base/s<seed>`, several at once (each run is
/// single-threaded, so runs in parallel use the cores; the results do not depend on it).
pub fn train_seeds(cfg: &RunConfig, seeds: &[u64], base: &Path, opts: &TrainOptions) -> Result<()> {
    let workers = std::thread::available_parallelism()
        .map(|n| n.get())
        .unwrap_or(1)
        .min(seeds.len());
    if !opts.quiet {
        eprintln!(
            "taper train: {} seeds of {} on {}, {workers} at a time -> {}/s<seed>",
            seeds.len(),
            cfg.algo,
            cfg.env,
            base.display()
        );
    }
    let next = std::sync::atomic::AtomicUsize::new(0);
    let errors = std::sync::Mutex::new(Vec::new());
    let quiet = TrainOptions {
        quiet: true,
        ..opts.clone()
    };
    std::thread::scope(|sc| {
        for _ in 0..workers {
            sc.spawn(|| loop {
                let i = next.fetch_add(1, std::sync::atomic::Ordering::SeqCst);
                let Some(&seed) = seeds.get(i) else { break };
                let c = RunConfig { seed, ..cfg.clone() };
                let out = base.join(format!("s{seed}"));
                match train(&c, &out, &quiet) {
                    Ok(()) => {
                        if !opts.quiet {
                            eprintln!("seed {seed} done -> {}", out.display());
                        }
                    }
                    Err(e) => errors.lock().unwrap().push(format!("seed {seed}: {e}")),
                }
            });
        }
    });
    let errors = errors.into_inner().unwrap();
    if let Some(e) = errors.first() {
        return Err(CliError::Arg {
            arg: "--seeds",
            reason: e.clone(),
        });
    }
    Ok(())
}

/// HDPO on an inventory env (one store or a network): metrics rows at each development
/// evaluation, the best-by-dev policy as the checkpoint, its test cost at the end.
fn train_hdpo(cfg: &RunConfig, h: &taper::algos::hdpo::HdpoConfig, out: &Path, opts: &TrainOptions) -> Result<()> {
    use taper::algos::{hdpo, hdpo_network};
    let network = taper::envs::registry::is_inventory_network(&cfg.env);
    let mut writer = MetricsWriter::create(out)?;
    let mut tb = EventWriter::create(out)?;
    if !opts.quiet {
        eprintln!(
            "taper train: hdpo on {} (seed {}), {} gradient steps -> {}",
            cfg.env,
            cfg.seed,
            h.steps,
            out.display()
        );
    }
    let mut err: Option<CliError> = None;
    let every = (h.steps / h.eval_every / 10).max(1);
    let mut k = 0usize;
    let unit = if network { "per store and period" } else { "per period" };
    let mut on_eval = |m: &taper::algos::metrics::Metrics| {
        let step = m.get("global_step").unwrap_or(0.0);
        if let Err(e) = writer
            .write(m)
            .and_then(|_| tb.add_metrics(m, step as i64))
            .and_then(|_| tb.flush())
        {
            err.get_or_insert(e.into());
        }
        k += 1;
        if !opts.quiet && (k % every == 0 || step as usize >= h.steps) {
            eprintln!(
                "step {:>6}/{} | train cost {:.4} | dev cost {:.4} (best {:.4})",
                step,
                h.steps,
                m.get("train_cost").unwrap_or(f64::NAN),
                m.get("dev_cost").unwrap_or(f64::NAN),
                m.get("best_dev_cost").unwrap_or(f64::NAN)
            );
        }
    };
    let (best_dev, best_step, test_cost) = if network {
        let net =
            taper::envs::inventory::Network::new(taper::envs::registry::network_config(&cfg.env, &cfg.env_kwargs)?)?;
        let mut learner = hdpo_network::HdpoNetwork::new(h.clone(), net, cfg.seed)?;
        let summary = learner.train(&mut on_eval)?;
        if let Some(e) = err {
            return Err(e);
        }
        let state = hdpo_network::checkpoint_state(&learner, &cfg.env, &cfg.env_kwargs, cfg.seed, &summary);
        hdpo_network::save_checkpoint(&out.join("checkpoint"), &learner, &state)?;
        (summary.best_dev_cost, summary.best_step, summary.test_cost)
    } else {
        let store = taper::envs::registry::inventory_config(&cfg.env, &cfg.env_kwargs)?;
        let mut learner = hdpo::Hdpo::new(h.clone(), store, cfg.seed)?;
        let summary = learner.train(&mut on_eval)?;
        if let Some(e) = err {
            return Err(e);
        }
        let state = hdpo::checkpoint_state(&learner, &cfg.env, &cfg.env_kwargs, cfg.seed, &summary);
        hdpo::save_checkpoint(&out.join("checkpoint"), &learner, &state)?;
        (summary.best_dev_cost, summary.best_step, summary.test_cost)
    };
    if !opts.quiet {
        eprintln!(
            "done: best dev cost {best_dev:.4} at step {best_step}; test cost {test_cost:.4} {unit} (best-dev policy, {} paths x {} periods); run folder {}",
            h.test_paths,
            h.test_periods,
            out.display()
        );
    }
    Ok(())
}

/// Continues the run in `out` from its newest checkpoint.
pub fn resume(cfg: &RunConfig, out: &Path, opts: &TrainOptions) -> Result<()> {
    if crate::config::MULTI_AGENT_ALGOS.contains(&cfg.algo.as_str()) {
        return crate::marl::resume_marl(cfg, out, opts);
    }
    if cfg.hdpo.is_some() {
        return Err(CliError::Arg {
            arg: "--resume",
            reason: "HDPO runs cannot be resumed yet".into(),
        });
    }
    let ckpt = newest_checkpoint(out)?;
    let (model, state) = load_checkpoint(&ckpt)?;
    if state.env_id != cfg.env || state.algo != cfg.algo {
        return Err(CliError::Arg {
            arg: "--resume",
            reason: format!(
                "checkpoint {} is {} on {}, but the run's config says {} on {}",
                ckpt.display(),
                state.algo,
                state.env_id,
                cfg.algo,
                cfg.env
            ),
        });
    }
    let bad = |why: &str| CliError::Arg {
        arg: "--resume",
        reason: format!("checkpoint {} cannot be resumed: {why}", ckpt.display()),
    };
    let algo_state: PpoState = serde_json::from_value(state.algo_state.clone().ok_or_else(|| bad("no learner state"))?)
        .map_err(|e| bad(&e.to_string()))?;
    let env_state = state.env_state.clone().ok_or_else(|| bad("no env state"))?;
    let mut venv = make_env(&cfg.env, &cfg.env_kwargs, &cfg.ppo)?;
    venv.restore(&env_state)?;
    let ppo = Ppo::restore(cfg.ppo.clone(), model, algo_state)?;
    let done = cfg.total_steps / cfg.ppo.batch_size() as u64 <= ppo.updates();
    begin_resume(cfg, out, opts, done, state.global_step, &ckpt)?;
    let writer = MetricsWriter::resume(out, state.updates)?;
    run(cfg, out, opts, ppo, &mut venv, writer)
}

/// What every `--resume` does once the learner is restored from `ckpt` at `step`: refuse a
/// run that is `done` with its plan, rewrite `config.toml`, and say where it resumes.
pub fn begin_resume(
    cfg: &RunConfig,
    out: &Path,
    opts: &TrainOptions,
    done: bool,
    step: u64,
    ckpt: &Path,
) -> Result<()> {
    if done {
        return Err(CliError::Arg {
            arg: "--total-steps",
            reason: format!(
                "the run is already at step {step} of {}; give a larger --total-steps to continue",
                cfg.total_steps
            ),
        });
    }
    write_config(cfg, out)?;
    if !opts.quiet {
        eprintln!(
            "taper train: resuming {} at step {step} from {}",
            out.display(),
            ckpt.display()
        );
    }
    Ok(())
}

/// Writes the run's resolved config as `config.toml`, atomically.
pub fn write_config(cfg: &RunConfig, out: &Path) -> Result<()> {
    let text = toml::to_string(cfg).map_err(|e| CliError::Config {
        path: out.display().to_string(),
        reason: e.to_string(),
    })?;
    taper::algos::run::write_atomic(&out.join("config.toml"), text.as_bytes())?;
    Ok(())
}

/// The newest checkpoint of a run folder: `checkpoint/` or `checkpoints/step_*`, whichever
/// has the most steps.
pub fn newest_checkpoint(out: &Path) -> Result<PathBuf> {
    let mut best: Option<(u64, PathBuf)> = None;
    let mut consider = |p: PathBuf| {
        if let Ok(bytes) = std::fs::read(p.join("state.json")) {
            if let Ok(v) = serde_json::from_slice::<serde_json::Value>(&bytes) {
                let s = v.get("global_step").and_then(|x| x.as_u64()).unwrap_or(0);
                if best.as_ref().is_none_or(|(b, _)| s > *b) {
                    best = Some((s, p));
                }
            }
        }
    };
    consider(out.join("checkpoint"));
    if let Ok(rd) = std::fs::read_dir(out.join("checkpoints")) {
        for e in rd.flatten() {
            consider(e.path());
        }
    }
    best.map(|b| b.1).ok_or_else(|| {
        CliError::Algo(taper::algos::AlgoError::Checkpoint {
            path: out.display().to_string(),
            reason: "no checkpoint to resume from (checkpoint/ or checkpoints/step_*)".into(),
        })
    })
}

struct RunCallback<'a> {
    cfg: &'a RunConfig,
    out: &'a Path,
    opts: &'a TrainOptions,
    writer: MetricsWriter,
    tb: EventWriter,
    bar: Option<ProgressBar>,
    planned: u64,
    every: u64,
    error: Option<CliError>,
}

impl RunCallback<'_> {
    fn handle(&mut self, ctx: &UpdateContext<'_>) -> Result<Control> {
        let m = ctx.metrics;
        self.writer.write(m)?;
        let step = m.get("global_step").unwrap_or(0.0) as u64;
        self.tb.add_metrics(m, step as i64)?;
        self.tb.flush()?;
        let sps = m.get("sps").unwrap_or(0.0);
        let ret = m.get("recent_return").unwrap_or(f64::NAN);
        let msg = format!("sps {sps:.0} | return {ret:.1}");
        if let Some(b) = &self.bar {
            b.set_position(step);
            b.set_message(msg);
        } else if !self.opts.quiet {
            let u = m.get("update").unwrap_or(0.0) as u64;
            if u % self.every == 0 || step >= self.planned {
                eprintln!("step {step:>9}/{} | {msg}", self.planned);
            }
        }
        let batch = self.cfg.ppo.batch_size() as u64;
        let n = self.opts.checkpoint_every;
        if n > 0 && step % n < batch && step < self.planned {
            let state = learner_checkpoint(
                ctx.learner,
                ctx.envs,
                &self.cfg.env,
                &self.cfg.env_kwargs,
                self.cfg.seed,
            )?;
            let dir = self.out.join("checkpoints").join(format!("step_{step:010}"));
            save_checkpoint(&dir, ctx.learner.policy(), &state)?;
            self.prune()?;
        }
        if self.opts.stop_after.is_some_and(|s| step >= s) {
            return Ok(Control::Stop);
        }
        Ok(Control::Continue)
    }

    fn prune(&self) -> Result<()> {
        prune_checkpoints(self.out, self.opts.keep_last)
    }
}

/// Keeps only the newest `keep_last` periodic checkpoints of the run in `out` (0: all).
pub fn prune_checkpoints(out: &Path, keep_last: usize) -> Result<()> {
    if keep_last == 0 {
        return Ok(());
    }
    let dir = out.join("checkpoints");
    let mut all: Vec<PathBuf> = std::fs::read_dir(&dir)
        .map_err(|e| CliError::io(&dir, e))?
        .flatten()
        .map(|e| e.path())
        .filter(|p| {
            p.file_name()
                .and_then(|n| n.to_str())
                .is_some_and(|n| n.starts_with("step_") && !n.ends_with(".old"))
        })
        .collect();
    all.sort();
    while all.len() > keep_last {
        let p = all.remove(0);
        std::fs::remove_dir_all(&p).map_err(|e| CliError::io(&p, e))?;
    }
    Ok(())
}

impl Callback for RunCallback<'_> {
    fn on_update(&mut self, ctx: &UpdateContext<'_>) -> Control {
        match self.handle(ctx) {
            Ok(c) => c,
            Err(e) => {
                self.error = Some(e);
                Control::Stop
            }
        }
    }
}

fn run(
    cfg: &RunConfig,
    out: &Path,
    opts: &TrainOptions,
    mut ppo: Ppo,
    venv: &mut taper::envs::VecEnv,
    writer: MetricsWriter,
) -> Result<()> {
    let batch = cfg.ppo.batch_size() as u64;
    let planned = (cfg.total_steps / batch) * batch;
    let tty = std::io::stderr().is_terminal();
    let bar = if !opts.quiet && tty {
        let b = ProgressBar::new(planned);
        b.set_style(
            ProgressStyle::with_template(
                "{spinner} [{elapsed_precise}<{eta_precise}] {bar:30} {pos}/{len} steps | {msg}",
            )
            .unwrap_or_else(|_| ProgressStyle::default_bar()),
        );
        b.set_position(ppo.global_step());
        Some(b)
    } else {
        None
    };
    if !opts.quiet {
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
    let mut cb = RunCallback {
        cfg,
        out,
        opts,
        writer,
        tb: EventWriter::create(out)?,
        bar,
        planned,
        every: (iters / 10).max(1),
        error: None,
    };
    let mut eval = if opts.eval_every > 0 {
        Some(
            EvalCallback::new(
                &cfg.env,
                &cfg.env_kwargs,
                cfg.seed,
                opts.eval_every,
                opts.eval_episodes,
                1_000_000,
            )?
            .with_run_dir(out.to_path_buf(), ppo.global_step())?,
        )
    } else {
        None
    };
    let result = {
        let mut list = CallbackList::new();
        if let Some(e) = eval.as_mut() {
            list.push(e);
        }
        list.push(&mut cb);
        ppo.learn_until(venv, cfg.total_steps, &mut list)
    };
    if let Some(e) = eval.as_mut().and_then(|e| e.error.take()) {
        return Err(e.into());
    }
    if let (Some(e), false) = (&eval, opts.quiet) {
        if let Some(last) = e.history.last() {
            eprintln!(
                "evaluation at step {}: mean return {:.1} (best {:.1}, in best/)",
                last.global_step,
                last.mean_return,
                e.best()
            );
        }
    }
    if let Some(b) = &cb.bar {
        b.finish_and_clear();
    }
    if let Some(e) = cb.error.take() {
        return Err(e);
    }
    // On a non-finite loss the error names the update and the term; the last good
    // checkpoint stays as it was.
    let summary = result?;
    let state: CheckpointState = learner_checkpoint(&ppo, venv, &cfg.env, &cfg.env_kwargs, cfg.seed)?;
    save_checkpoint(&out.join("checkpoint"), ppo.model(), &state)?;
    if !opts.quiet {
        let what = if summary.stopped_early { "stopped" } else { "done" };
        eprintln!(
            "{what}: {} steps, {} updates, {} episodes; mean return of the last 20 episodes {:.1}; run folder {}",
            summary.global_step,
            summary.updates,
            ppo.episodes(),
            summary.recent_return,
            out.display()
        );
    }
    Ok(())
}
