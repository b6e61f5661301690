//! The [`Trainer`]: the one training loop. It drives any [`Learner`] and owns what every run
//! needs: the run folder (`config.toml`, `metrics.jsonl`, `metrics.csv`, TensorBoard events),
//! the progress display, periodic and final checkpoints, `stop_after`, exact resume,
//! evaluation every N steps with the best policy kept in `best/`, callbacks, and the guard that
//! stops a run whose losses are no longer finite.
//!
//! A budget is checked (by [`Learner::plan`]) before any file is touched, so a rejected
//! command leaves an existing run as it was.

use crate::callback::{Callback, Control, RowContext};
use crate::checkpoint::{self, CheckpointState, NamedTensors};
use crate::error::{Result, TrainError};
use crate::eval::{EvalOptions, Evaluation};
use crate::learner::{Learner, Progress};
use crate::metrics::Metrics;
use crate::progress::ProgressView;
use crate::run_dir::{self, RunLock};
use crate::run_file::RunFile;
use crate::sinks::MetricsWriter;
use crate::tensorboard::EventWriter;
use serde::{Deserialize, Serialize};
use std::io::Write;
use std::path::{Path, PathBuf};

/// How a run is driven, besides its learner and budget.
#[derive(Debug, Clone, PartialEq)]
pub struct TrainOptions {
    /// No progress output.
    pub quiet: bool,
    /// Write a checkpoint to `checkpoints/step_N` every this many steps (0: never).
    pub checkpoint_every: u64,
    /// Keep only the newest K periodic checkpoints (0: all).
    pub keep_last: usize,
    /// End this session once this many steps are done in all; [`Trainer::resume`] continues
    /// the plan.
    pub stop_after: Option<u64>,
    /// Evaluate the policy every this many steps (0: never); results go to
    /// `evaluations.jsonl`, the best policy to `best/`.
    pub eval_every: u64,
    /// Episodes per evaluation.
    pub eval_episodes: usize,
    /// The first evaluation episode's seed (episode k uses `eval_seed + k`, so evaluations
    /// are comparable).
    pub eval_seed: u64,
    /// Write TensorBoard event files.
    pub tensorboard: bool,
    /// Replace a run already in the folder ([`Trainer::fit`] refuses otherwise).
    pub overwrite: bool,
    /// On resume, take a config that differs from the one the checkpoint was trained with
    /// (refused otherwise, so that an edited `config.toml` is never used silently).
    pub accept_config_edits: bool,
    /// Keep a second thread of rayon's pool polling for work while the run trains, instead of
    /// sleeping between the networks' split passes ([`crate::keep_awake`]): the same numbers,
    /// faster where a thread's wake-up is dear, at the price of a core kept busy. For a run
    /// that has the machine to itself, trained on a thread of rayon's pool (inside
    /// `rayon::scope`), and one such run per pool (another run's work could reach its poller);
    /// elsewhere it does nothing. `taper train` sets it for a single run; off by
    /// default.
    pub keep_awake: bool,
}

impl Default for TrainOptions {
    fn default() -> Self {
        TrainOptions {
            quiet: false,
            checkpoint_every: 0,
            keep_last: 0,
            stop_after: None,
            eval_every: 0,
            eval_episodes: 10,
            eval_seed: 1_000_000,
            tensorboard: true,
            overwrite: false,
            accept_config_edits: false,
            keep_awake: false,
        }
    }
}

impl TrainOptions {
    /// Checks the options.
    pub fn validate(&self) -> Result<()> {
        if self.eval_every > 0 && self.eval_episodes == 0 {
            return Err(TrainError::Invalid {
                what: "--eval-episodes",
                reason: "evaluation needs at least one episode".into(),
            });
        }
        Ok(())
    }
}

/// One periodic evaluation (a line of `evaluations.jsonl`).
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct EvalRecord {
    /// Training steps at the evaluation.
    pub global_step: u64,
    /// Episodes run.
    pub episodes: usize,
    /// Mean return.
    pub mean_return: f64,
    /// Population std of the return.
    pub std_return: f64,
    /// Standard error of the mean return (none for one episode).
    #[serde(default)]
    pub se_return: Option<f64>,
    /// Success rate, for envs with the notion.
    pub success_rate: Option<f64>,
}

/// What a session of training did.
#[derive(Debug, Clone, Default)]
pub struct RunSummary {
    /// The counters at the end.
    pub progress: Progress,
    /// The step the plan ends at.
    pub planned: u64,
    /// Whether the session stopped before the plan's end (`stop_after`, a callback, a signal).
    pub stopped_early: bool,
    /// Whether a signal stopped it ([`crate::interrupt`]).
    pub interrupted: bool,
    /// The last metrics row.
    pub last_row: Option<Metrics>,
    /// Every evaluation of the run (earlier sessions' included).
    pub evaluations: Vec<EvalRecord>,
}

/// A checkpoint ready to write: the weights, `state.json`, and further tensor files.
pub type CheckpointParts = (NamedTensors, CheckpointState, Vec<(String, NamedTensors)>);

/// The checkpoint of a learner as it is now. Every checkpoint of every algorithm is built here.
pub fn checkpoint_of(learner: &dyn Learner) -> Result<CheckpointParts> {
    let info = learner.info();
    let p = learner.progress();
    let ls = learner.export()?;
    let state = CheckpointState {
        taper_version: env!("CARGO_PKG_VERSION").to_string(),
        algo: info.algo,
        env_id: info.env_id,
        env_kwargs: info.env_kwargs,
        seed: info.seed,
        config: learner.config_json(),
        model_shape: ls.model_shape,
        normalizer: ls.normalizer,
        algo_state: Some(ls.algo_state),
        env_state: ls.env_state,
        global_step: p.global_step,
        updates: p.updates,
        episodes: p.episodes,
        checksums: Default::default(),
    };
    Ok((ls.tensors, state, ls.files))
}

/// Saves a learner's checkpoint as the folder `dir`, atomically.
pub fn save_checkpoint(learner: &dyn Learner, dir: &Path) -> Result<()> {
    let (t, st, files) = checkpoint_of(learner)?;
    checkpoint::save(dir, t, &st, &files)
}

/// Writes the run folder's `config.toml` for `learner` with the budget `total_steps`.
pub fn write_config(learner: &dyn Learner, dir: &Path, total_steps: u64) -> Result<()> {
    let info = learner.info();
    let text = RunFile {
        algo: info.algo,
        env: info.env_id,
        seed: info.seed,
        total_steps,
        env_kwargs: info.env_kwargs,
        config: learner.config_json(),
    }
    .to_toml()?;
    checkpoint::write_atomic(&dir.join("config.toml"), text.as_bytes())
}

/// The file of a run folder that keeps its checkpoint and evaluation settings, so that a
/// resume goes on with them.
pub const OPTIONS_FILE: &str = "train_options.json";

/// The settings a resume carries over (0: none).
#[derive(Debug, Clone, Copy, PartialEq, Serialize, Deserialize)]
struct SavedOptions {
    checkpoint_every: u64,
    keep_last: usize,
    eval_every: u64,
    eval_episodes: usize,
}

impl SavedOptions {
    fn of(o: &TrainOptions) -> Self {
        SavedOptions {
            checkpoint_every: o.checkpoint_every,
            keep_last: o.keep_last,
            eval_every: o.eval_every,
            eval_episodes: o.eval_episodes,
        }
    }
    fn write(&self, dir: &Path) -> Result<()> {
        let text = serde_json::to_string_pretty(self).map_err(|e| TrainError::checkpoint(dir, e.to_string()))?;
        checkpoint::write_atomic(&dir.join(OPTIONS_FILE), text.as_bytes())
    }
    /// The saved settings where `o` sets none.
    fn fill(dir: &Path, o: &mut TrainOptions) {
        let Ok(text) = std::fs::read_to_string(dir.join(OPTIONS_FILE)) else {
            return;
        };
        let Ok(s) = serde_json::from_str::<SavedOptions>(&text) else {
            return;
        };
        if o.checkpoint_every == 0 {
            o.checkpoint_every = s.checkpoint_every;
        }
        if o.keep_last == 0 {
            o.keep_last = s.keep_last;
        }
        if o.eval_every == 0 {
            o.eval_every = s.eval_every;
            o.eval_episodes = s.eval_episodes;
        }
    }
}

/// The sinks of a run with a folder.
struct Sinks {
    dir: PathBuf,
    writer: MetricsWriter,
    tb: Option<EventWriter>,
    evals: Vec<EvalRecord>,
    best: f64,
}

/// Drives a [`Learner`]; see the module doc.
///
/// ```no_run
/// use taper_train::{Trainer, TrainOptions};
/// # fn demo(learner: &mut dyn taper_train::Learner) -> taper_train::Result<()> {
/// let options = TrainOptions { checkpoint_every: 100_000, ..TrainOptions::default() };
/// Trainer::new("runs/demo").options(options).fit(learner, 500_000)?;
/// // Later, or after a crash: continue from the newest checkpoint, exactly.
/// Trainer::new("runs/demo").resume(learner, 500_000)?;
/// # Ok(()) }
/// ```
pub struct Trainer<'a> {
    dir: Option<PathBuf>,
    options: TrainOptions,
    callbacks: Vec<&'a mut dyn Callback>,
    /// A process of a data-parallel run that follows the writer (see [`Trainer::follower`]).
    follower: bool,
    /// How the processes of a data-parallel run agree to stop (see [`Trainer::agreement`]).
    agree: Option<&'a dyn Fn(bool) -> bool>,
    /// A follower's record of the best evaluation so far (the writer's is in its sinks).
    follow_best: f64,
}

impl<'a> Trainer<'a> {
    /// A trainer writing the run folder `dir`.
    pub fn new(dir: impl Into<PathBuf>) -> Self {
        Trainer {
            dir: Some(dir.into()),
            options: TrainOptions::default(),
            callbacks: Vec::new(),
            follower: false,
            agree: None,
            follow_best: f64::NEG_INFINITY,
        }
    }

    /// A trainer for a process of a data-parallel run other than the one that writes the run
    /// folder `dir`: it reads the folder to resume, but writes and prints nothing; it still
    /// builds each checkpoint's state at the writer's steps (those of `best/` included: it
    /// runs the same evaluations), since gathering the processes' state is collective.
    pub fn follower(dir: impl Into<PathBuf>) -> Self {
        Trainer {
            dir: Some(dir.into()),
            options: TrainOptions {
                quiet: true,
                ..TrainOptions::default()
            },
            callbacks: Vec::new(),
            follower: true,
            agree: None,
            follow_best: f64::NEG_INFINITY,
        }
    }
    /// A trainer without a run folder: no files, no checkpoints; rows go to callbacks only.
    pub fn in_memory() -> Self {
        Trainer {
            dir: None,
            options: TrainOptions {
                quiet: true,
                ..TrainOptions::default()
            },
            callbacks: Vec::new(),
            follower: false,
            agree: None,
            follow_best: f64::NEG_INFINITY,
        }
    }
    /// Sets the options (a follower stays quiet).
    pub fn options(mut self, options: TrainOptions) -> Self {
        self.options = options;
        if self.follower {
            self.options.quiet = true;
        }
        self
    }
    /// For a data-parallel run: `any` combines every process's wish to stop after an update
    /// (a signal reaches the processes at different times), so that all stop at the same
    /// update. It is called after every update, on every process (collective).
    pub fn agreement(mut self, any: &'a dyn Fn(bool) -> bool) -> Self {
        self.agree = Some(any);
        self
    }
    /// Adds a callback (called in the order added).
    pub fn callback(mut self, cb: &'a mut dyn Callback) -> Self {
        self.callbacks.push(cb);
        self
    }
    /// The run folder.
    pub fn dir(&self) -> Option<&Path> {
        self.dir.as_deref()
    }

    /// Trains `learner` until `total_steps` from where it stands, into a fresh run folder
    /// (its metrics files are created anew). A folder that already holds a run is refused
    /// unless the options say `overwrite`; the folder is locked while the run writes it.
    /// Everything is checked before anything is written.
    pub fn fit(&mut self, learner: &mut dyn Learner, total_steps: u64) -> Result<RunSummary> {
        self.options.validate()?;
        let end = learner.plan(total_steps)?;
        let mut _lock = None;
        let sinks = match self.dir.clone() {
            _ if self.follower => None,
            None => None,
            Some(dir) => {
                if run_dir::holds_run(&dir) && !self.options.overwrite {
                    return Err(TrainError::Invalid {
                        what: "--out",
                        reason: format!(
                            "{} already holds a run; continue it with --resume {0}, or replace it with --overwrite",
                            dir.display()
                        ),
                    });
                }
                _lock = Some(RunLock::acquire(&dir)?);
                if self.options.overwrite {
                    run_dir::clear_run(&dir)?;
                }
                run_dir::clean_debris(&dir)?;
                write_config(&*learner, &dir, total_steps)?;
                SavedOptions::of(&self.options).write(&dir)?;
                Some(Sinks {
                    writer: MetricsWriter::create(&dir)?,
                    tb: if self.options.tensorboard {
                        Some(EventWriter::create(&dir)?)
                    } else {
                        None
                    },
                    evals: Vec::new(),
                    best: f64::NEG_INFINITY,
                    dir,
                })
            }
        };
        if !self.options.quiet {
            let info = learner.info();
            eprintln!(
                "taper train: {} on {} (seed {}), {end} {} -> {}",
                info.algo,
                info.env_id,
                info.seed,
                learner.step_unit(),
                self.dir
                    .as_ref()
                    .map(|d| d.display().to_string())
                    .unwrap_or_else(|| "no folder".into())
            );
        }
        self.run(learner, end, sinks)
    }

    /// Continues the run in the trainer's folder from its newest checkpoint, exactly: the
    /// learner (built with the run's config) takes the checkpoint's whole state, metrics rows
    /// written after the checkpoint are dropped, and training goes on to `total_steps`.
    pub fn resume(&mut self, learner: &mut dyn Learner, total_steps: u64) -> Result<RunSummary> {
        let dir = self.dir.clone().ok_or_else(|| TrainError::Invalid {
            what: "resume",
            reason: "resuming needs a run folder".into(),
        })?;
        self.options.validate()?;
        if self.follower {
            // The writer's checkpoint schedule, so that both build each checkpoint together.
            SavedOptions::fill(&dir, &mut self.options);
            let (ckpt, _) = checkpoint::newest_intact(&dir)?;
            learner.import(&ckpt, true)?;
            self.follow_best = kept_evaluations(&dir, ckpt.state.global_step)
                .iter()
                .map(|r| r.mean_return)
                .fold(f64::NEG_INFINITY, f64::max);
            let end = learner.plan(total_steps)?;
            return self.run(learner, end, None);
        }
        let _lock = RunLock::acquire(&dir)?;
        for p in run_dir::clean_debris(&dir)? {
            if !self.options.quiet {
                eprintln!("taper train: removed {}, left by an interrupted write", p.display());
            }
        }
        SavedOptions::fill(&dir, &mut self.options);
        self.options.validate()?;
        let (ckpt, skipped) = checkpoint::newest_intact(&dir)?;
        for why in &skipped {
            eprintln!("taper train: passing over a damaged checkpoint: {why}");
        }
        let path = ckpt.dir.clone();
        let info = learner.info();
        let st = &ckpt.state;
        if st.algo != info.algo || st.env_id != info.env_id || st.env_kwargs != info.env_kwargs {
            return Err(TrainError::checkpoint(
                &path,
                format!(
                    "it is {} on {} {:?}, but the learner is {} on {} {:?}",
                    st.algo, st.env_id, st.env_kwargs, info.algo, info.env_id, info.env_kwargs
                ),
            ));
        }
        let (now, then) = (learner.config_json(), &ckpt.state.config);
        if now != *then && !self.options.accept_config_edits {
            let changed: Vec<String> = match (now.as_object(), then.as_object()) {
                (Some(a), Some(b)) => a
                    .keys()
                    .chain(b.keys())
                    .filter(|k| a.get(*k) != b.get(*k))
                    .map(|k| {
                        format!(
                            "{k}: {} -> {}",
                            b.get(k).map(|v| v.to_string()).unwrap_or("unset".into()),
                            a.get(k).map(|v| v.to_string()).unwrap_or("unset".into())
                        )
                    })
                    .collect::<std::collections::BTreeSet<_>>()
                    .into_iter()
                    .collect(),
                _ => vec!["the whole section".into()],
            };
            return Err(TrainError::checkpoint(
                &path,
                format!(
                    "config.toml differs from the config this checkpoint was trained with ({}); \
                     undo the edit, or pass --accept-config-edits to train on with it",
                    changed.join(", ")
                ),
            ));
        }
        learner.import(&ckpt, true)?;
        if learner.progress().global_step != ckpt.state.global_step {
            return Err(TrainError::checkpoint(
                &path,
                format!(
                    "state.json says global_step {} but the learner's saved counters say {}; was it edited?",
                    ckpt.state.global_step,
                    learner.progress().global_step
                ),
            ));
        }
        let end = learner.plan(total_steps)?;
        let step = ckpt.state.global_step;
        let writer = MetricsWriter::resume(&dir, step)?;
        let evals = read_evaluations(&dir, step)?;
        let best = evals.iter().map(|r| r.mean_return).fold(f64::NEG_INFINITY, f64::max);
        write_config(&*learner, &dir, total_steps)?;
        SavedOptions::of(&self.options).write(&dir)?;
        if !self.options.quiet {
            eprintln!(
                "taper train: resuming {} at step {step} from {}",
                dir.display(),
                path.display()
            );
        }
        let sinks = Sinks {
            writer,
            tb: if self.options.tensorboard {
                Some(EventWriter::create(&dir)?)
            } else {
                None
            },
            evals,
            best,
            dir,
        };
        self.run(learner, end, Some(sinks))
    }

    fn run(&mut self, learner: &mut dyn Learner, end: u64, sinks: Option<Sinks>) -> Result<RunSummary> {
        if self.options.keep_awake {
            crate::keep_awake::keep_awake(|| self.run_steps(learner, end, sinks))
        } else {
            self.run_steps(learner, end, sinks)
        }
    }

    /// The training loop of [`Self::run`].
    fn run_steps(&mut self, learner: &mut dyn Learner, end: u64, mut sinks: Option<Sinks>) -> Result<RunSummary> {
        let o = self.options.clone();
        let start = learner.progress().global_step;
        let mut view = ProgressView::new(o.quiet, start, end, learner.headline());
        let next = |s: u64, every: u64| (s / every + 1) * every;
        let mut next_ckpt = if o.checkpoint_every > 0 {
            next(start, o.checkpoint_every)
        } else {
            u64::MAX
        };
        let mut next_eval = if o.eval_every > 0 {
            next(start, o.eval_every)
        } else {
            u64::MAX
        };
        let mut summary = RunSummary {
            planned: end,
            ..RunSummary::default()
        };
        let result = (|| -> Result<()> {
            while !learner.is_done() {
                let row = learner.step()?;
                guard(&row, learner.guarded_columns(), learner.progress().updates)?;
                let step = row.get("global_step").unwrap_or(0.0) as u64;
                if let Some(s) = sinks.as_mut() {
                    s.writer.write(&row)?;
                    if let Some(tb) = s.tb.as_mut() {
                        tb.add_metrics(&row, step as i64)?;
                        tb.flush()?;
                    }
                }
                view.row(&row);
                if step >= next_eval {
                    next_eval = next(step, o.eval_every);
                    if self.follower {
                        // The writer's evaluation, to build its `best/` checkpoint with it.
                        let mean = evaluate(&*learner, &o)?.summary().mean_return;
                        if mean > self.follow_best {
                            self.follow_best = mean;
                            checkpoint_of(&*learner)?;
                        }
                    } else {
                        evaluate_now(&*learner, &o, step, sinks.as_mut(), &mut summary)?;
                    }
                }
                let mut stop = false;
                for cb in self.callbacks.iter_mut() {
                    let ctx = RowContext {
                        metrics: &row,
                        learner: &*learner,
                    };
                    if cb.on_row(&ctx) == Control::Stop {
                        stop = true;
                    }
                }
                if step >= next_ckpt && step < end {
                    next_ckpt = next(step, o.checkpoint_every);
                    if let Some(s) = sinks.as_ref() {
                        save_checkpoint(&*learner, &s.dir.join("checkpoints").join(format!("step_{step:010}")))?;
                        checkpoint::prune(&s.dir, o.keep_last)?;
                    } else if self.follower {
                        checkpoint_of(&*learner)?;
                    }
                }
                if o.stop_after.is_some_and(|s| step >= s) {
                    stop = true;
                }
                let mut signal = crate::interrupt::requested();
                if let Some(any) = self.agree {
                    signal = any(signal);
                }
                if signal && !learner.is_done() {
                    stop = true;
                    summary.interrupted = true;
                }
                summary.last_row = Some(row);
                if stop && !learner.is_done() {
                    summary.stopped_early = true;
                    break;
                }
            }
            Ok(())
        })();
        view.finish();
        result?;
        if learner.is_done() {
            learner.finish()?;
        }
        if let Some(s) = sinks.as_ref() {
            save_checkpoint(&*learner, &s.dir.join("checkpoint"))?;
            summary.evaluations = s.evals.clone();
        } else if self.follower {
            checkpoint_of(&*learner)?;
        }
        summary.progress = learner.progress();
        if !o.quiet {
            if let Some(last) = summary.evaluations.last() {
                let best = summary
                    .evaluations
                    .iter()
                    .map(|r| r.mean_return)
                    .fold(f64::NEG_INFINITY, f64::max);
                eprintln!(
                    "evaluation at step {}: mean return {:.2} (best {best:.2}, in best/)",
                    last.global_step, last.mean_return
                );
            }
            let what = if summary.interrupted {
                "interrupted"
            } else if summary.stopped_early {
                "stopped"
            } else {
                "done"
            };
            let folder = sinks
                .as_ref()
                .map(|s| format!("; run folder {}", s.dir.display()))
                .unwrap_or_default();
            eprintln!("{what}: {}{folder}", learner.summary());
        }
        if summary.interrupted {
            return Err(TrainError::Interrupted {
                step: summary.progress.global_step,
                resume: match sinks.as_ref() {
                    Some(s) => format!(
                        "a checkpoint is written; continue with: taper train --resume {}",
                        s.dir.display()
                    ),
                    None if self.follower => "the writing process wrote a checkpoint".into(),
                    None => "the run had no folder, so nothing was saved".into(),
                },
            });
        }
        Ok(summary)
    }
}

/// Stops a run whose losses stopped being finite: any of the `watched` columns that is NaN or
/// infinite.
fn guard(row: &Metrics, watched: &[&str], update: u64) -> Result<()> {
    for (name, v) in row.entries() {
        if watched.contains(&name) && !v.is_finite() {
            return Err(TrainError::NonFinite {
                update,
                term: name.replace('_', " "),
            });
        }
    }
    Ok(())
}

fn evaluate_now(
    learner: &dyn Learner,
    o: &TrainOptions,
    step: u64,
    sinks: Option<&mut Sinks>,
    summary: &mut RunSummary,
) -> Result<()> {
    let s = evaluate(learner, o)?.summary();
    let rec = EvalRecord {
        global_step: step,
        episodes: s.episodes,
        mean_return: s.mean_return,
        std_return: s.std_return,
        se_return: s.se_return,
        success_rate: s.success_rate,
    };
    match sinks {
        Some(sk) => {
            let p = sk.dir.join("evaluations.jsonl");
            let mut f = std::fs::OpenOptions::new()
                .create(true)
                .append(true)
                .open(&p)
                .map_err(|e| TrainError::io(&p, e))?;
            let line = serde_json::to_string(&rec).map_err(|e| TrainError::checkpoint(&p, e.to_string()))?;
            writeln!(f, "{line}").map_err(|e| TrainError::io(&p, e))?;
            if s.mean_return > sk.best {
                sk.best = s.mean_return;
                save_checkpoint(learner, &sk.dir.join("best"))?;
            }
            sk.evals.push(rec);
        }
        None => summary.evaluations.push(rec),
    }
    Ok(())
}

/// One periodic evaluation of the policy, as the options say.
fn evaluate(learner: &dyn Learner, o: &TrainOptions) -> Result<Evaluation> {
    let opts = EvalOptions {
        episodes: o.eval_episodes,
        seed: o.eval_seed,
        deterministic: true,
        ..EvalOptions::default()
    };
    learner.evaluate(&opts, &mut |_, _| {})
}

/// The evaluations of a run folder up to `step`, read only.
fn kept_evaluations(dir: &Path, step: u64) -> Vec<EvalRecord> {
    let Ok(text) = std::fs::read_to_string(dir.join("evaluations.jsonl")) else {
        return Vec::new();
    };
    text.lines()
        .filter_map(|l| serde_json::from_str::<EvalRecord>(l).ok())
        .filter(|r| r.global_step <= step)
        .collect()
}

/// The evaluations of a run folder up to `step` (rewriting the file without later ones).
fn read_evaluations(dir: &Path, step: u64) -> Result<Vec<EvalRecord>> {
    let p = dir.join("evaluations.jsonl");
    if !p.exists() {
        return Ok(Vec::new());
    }
    let kept = kept_evaluations(dir, step);
    let body: String = kept
        .iter()
        .filter_map(|r| serde_json::to_string(r).ok())
        .map(|l| l + "\n")
        .collect();
    checkpoint::write_atomic(&p, body.as_bytes())?;
    Ok(kept)
}
