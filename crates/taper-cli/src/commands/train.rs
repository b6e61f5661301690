//! `taper train`: resolve the run's config and hand the learner to the trainer (a fresh run,
//! several seeds, or `--resume`).

use crate::cluster::Cluster;
use crate::error::{CliError, Result};
use crate::sweep_progress::SweepProgress;
use crate::TrainArgs;
use std::path::{Path, PathBuf};
use taper::algos::run_config::{Overrides, RunConfig};
use taper::envs::Kwargs;
use taper::train::seeds::{parse_seeds, run_seeds};
use taper::train::{TrainOptions, Trainer};

/// Runs `taper train`.
pub fn run(a: TrainArgs) -> Result<()> {
    taper::train::interrupt::install();
    for (flag, v) in [
        ("--checkpoint-every", a.checkpoint_every),
        ("--stop-after", a.stop_after),
        ("--eval-every", a.eval_every),
        ("--keep-last", a.keep_last.map(|k| k as u64)),
    ] {
        if v == Some(0) {
            return Err(CliError::Arg {
                arg: flag,
                reason: "must be at least 1 (leave the flag out for none)".into(),
            });
        }
    }
    if a.keep_last.is_some() && a.checkpoint_every.is_none() && a.resume.is_none() {
        return Err(CliError::Arg {
            arg: "--keep-last",
            reason: "keeps periodic checkpoints, so it needs --checkpoint-every".into(),
        });
    }
    if a.data_parallel {
        return super::train_parallel::run(&a, flag_kwargs(&a)?);
    }
    // A single run (fresh, or resumed: a resume is one run) has the machine to itself: a
    // second thread waits awake for its split passes. A sweep's runs share the cores.
    let options = TrainOptions {
        keep_awake: a.resume.is_some() || a.seeds.is_none(),
        ..options_of(&a)
    };
    let kwargs = flag_kwargs(&a)?;
    if a.seeds.is_none() {
        if let Some(n) = crate::cluster::launched_size().filter(|&n| n > 1) {
            return Err(CliError::Cluster(format!(
                "launched as {n} processes, which would all write the same run; share a sweep \
                 over them with --seeds, or train one run over them with --data-parallel"
            )));
        }
    }
    if let Some(dir) = a.resume.clone() {
        return resume(&a, &dir, kwargs, options);
    }
    let cfg = fresh_config(&a, kwargs)?;
    if let Some(spec) = &a.seeds {
        let seeds = parse_seeds(spec)?;
        let cluster = Cluster::start()?;
        if cluster.size() > 1 && a.out.is_none() {
            return Err(CliError::Cluster(
                "the processes must agree on the sweep's folder: give --out".into(),
            ));
        }
        let base = match &a.out {
            Some(o) => o.clone(),
            None => new_default_dir(&cfg, "seeds")?,
        };
        let r = train_seeds(&cfg, &seeds, &base, &options, a.out.is_none(), &cluster);
        remove_if_empty(&base, a.out.is_none());
        return r;
    }
    let mut learner = cfg.learner()?;
    let (out, made) = match &a.out {
        Some(o) => (o.clone(), false),
        None => (new_default_dir(&cfg, &cfg.seed.to_string())?, true),
    };
    let r = Trainer::new(&out)
        .options(options)
        .fit(learner.as_mut(), cfg.total_steps);
    remove_if_empty(&out, made);
    r?;
    Ok(())
}

/// The trainer's options the flags give.
pub(crate) fn options_of(a: &TrainArgs) -> TrainOptions {
    TrainOptions {
        quiet: a.quiet,
        checkpoint_every: a.checkpoint_every.unwrap_or(0),
        keep_last: a.keep_last.unwrap_or(0),
        stop_after: a.stop_after,
        eval_every: a.eval_every.unwrap_or(0),
        eval_episodes: a.eval_episodes,
        overwrite: a.overwrite,
        accept_config_edits: a.accept_config_edits,
        ..TrainOptions::default()
    }
}

/// A fresh run's config: the algorithm's defaults for the env, the `--config` file, the flags.
pub(crate) fn fresh_config(a: &TrainArgs, kwargs: Option<Kwargs>) -> Result<RunConfig> {
    let ov = Overrides {
        algo: a.algo.clone(),
        env: a.env.clone(),
        seed: a.seed,
        total_steps: a.total_steps,
        env_kwargs: kwargs.unwrap_or_default(),
        device: a.device.clone(),
        backend: a.backend.clone(),
        algo_keys: grpo_keys(a)?,
    };
    Ok(RunConfig::resolve(a.config.as_deref(), &ov)?)
}

/// GRPO's flags as keys of its config section; an error when they are given to another
/// algorithm.
fn grpo_keys(a: &TrainArgs) -> Result<serde_json::Map<String, serde_json::Value>> {
    let mut k = serde_json::Map::new();
    if let Some(t) = &a.loss_type {
        k.insert("loss_type".into(), t.clone().into());
    }
    if let Some(s) = &a.scale_rewards {
        k.insert("scale_rewards".into(), s.clone().into());
    }
    for (flag, on) in [("dapo", a.dapo), ("d3s", a.d3s), ("adora", a.adora)] {
        if on {
            k.insert(flag.into(), true.into());
        }
    }
    if !k.is_empty() && a.algo.as_deref().is_some_and(|al| al != "grpo") {
        return Err(CliError::Arg {
            arg: "--loss-type",
            reason: format!(
                "--loss-type, --scale-rewards, --dapo, --d3s and --adora configure grpo, not {}",
                a.algo.as_deref().unwrap_or("ppo")
            ),
        });
    }
    Ok(k)
}

/// Removes a folder this command created if a rejected run left it empty.
fn remove_if_empty(dir: &Path, made: bool) {
    if made {
        let _ = std::fs::remove_dir(dir);
    }
}

/// Creates a fresh default run folder, `runs/ENV__ALGO__TAIL__UNIXTIME`, with `_2`, `_3`, …
/// appended when the name is taken (creation is atomic, so runs started in the same second
/// never share one).
pub(crate) fn new_default_dir(cfg: &RunConfig, tail: &str) -> Result<PathBuf> {
    let base = default_out(cfg, &format!("{tail}__{}", unix_time()));
    if let Some(parent) = base.parent() {
        std::fs::create_dir_all(parent).map_err(|e| CliError::Io {
            path: parent.display().to_string(),
            source: e,
        })?;
    }
    for k in 1..10_000 {
        let p = if k == 1 {
            base.clone()
        } else {
            PathBuf::from(format!("{}_{k}", base.display()))
        };
        match std::fs::create_dir(&p) {
            Ok(()) => return Ok(p),
            Err(e) if e.kind() == std::io::ErrorKind::AlreadyExists => continue,
            Err(e) => {
                return Err(CliError::Io {
                    path: p.display().to_string(),
                    source: e,
                })
            }
        }
    }
    Err(CliError::Arg {
        arg: "--out",
        reason: format!("no free folder name next to {}", base.display()),
    })
}

fn unix_time() -> u64 {
    std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map(|d| d.as_secs())
        .unwrap_or(0)
}

fn default_out(cfg: &RunConfig, tail: &str) -> PathBuf {
    PathBuf::from("runs").join(format!("{}__{}__{tail}", cfg.env, cfg.algo.name()))
}

/// The env keyword arguments given by flags (`--env-kwargs`, the inventory flags, `--agents`);
/// `None` when none is given.
fn flag_kwargs(a: &TrainArgs) -> Result<Option<Kwargs>> {
    let mut kwargs = match &a.env_kwargs {
        Some(s) => Some(super::parse_kwargs(s)?),
        None => None,
    };
    let mut flags = a.inventory.to_kwargs();
    if let Some(n) = a.agents {
        flags.insert("agents".into(), n.to_string());
    }
    for (k, v) in flags {
        let kw = kwargs.get_or_insert_with(Default::default);
        match kw.get(&k) {
            Some(old) if *old != v => {
                return Err(CliError::Arg {
                    arg: "--env-kwargs",
                    reason: format!("{k}={old} contradicts the flag that sets {k} to {v}"),
                })
            }
            _ => {
                kw.insert(k, v);
            }
        }
    }
    Ok(kwargs)
}

/// Trains one run per seed into `base/s<seed>`, as many at once as there are cores (each run
/// is single-threaded; its numbers do not depend on what runs beside it). Under an MPI launch
/// the seeds are shared out over the processes ([`Cluster::share`]); rank 0 prepares the
/// folder and prints the summary.
///
/// Running the same sweep again into the same folder continues it: finished runs are kept,
/// unfinished ones resume from their newest checkpoint, and runs never started (or stopped
/// before their first checkpoint) start afresh.
fn train_seeds(
    cfg: &RunConfig,
    seeds: &[u64],
    base: &Path,
    options: &TrainOptions,
    fresh: bool,
    cluster: &Cluster,
) -> Result<()> {
    if seeds.len() < cluster.size() {
        return Err(CliError::Cluster(format!(
            "{} seeds for {} processes: give at least one seed per process",
            seeds.len(),
            cluster.size()
        )));
    }
    let prepared = if cluster.is_root() {
        prepare_sweep(cfg, seeds, base, options, fresh)
    } else {
        Ok(())
    };
    let everyone = cluster.all(prepared.is_ok());
    prepared?;
    if !everyone {
        return Err(CliError::Cluster(
            "rank 0 could not prepare the sweep's folder (its message says why)".into(),
        ));
    }
    let mine = cluster.share(seeds);
    // Processes on one machine split its cores.
    let local = crate::cluster::local_processes().clamp(1, cluster.size());
    let threads = (rayon::current_num_threads() / local).max(1);
    let workers = (std::thread::available_parallelism().map(|n| n.get()).unwrap_or(1) / local).max(1);
    let speak = !options.quiet && cluster.is_root();
    if speak {
        let over = if cluster.size() > 1 {
            format!(" over {} processes,", cluster.size())
        } else {
            String::new()
        };
        eprintln!(
            "taper train: {} seeds of {} on {},{over} {} at a time -> {}/s<seed>",
            seeds.len(),
            cfg.algo.name(),
            cfg.env,
            (workers * cluster.size()).min(seeds.len()),
            base.display()
        );
    }
    let quiet = TrainOptions {
        quiet: true,
        ..options.clone()
    };
    let lines = std::sync::Mutex::new(Vec::new());
    let one = |seed: u64| -> taper::train::Result<()> {
        let c = RunConfig { seed, ..cfg.clone() };
        let out = base.join(format!("s{seed}"));
        let mut learner = c.learner()?;
        let what = match sweep_state(&c, &out)? {
            SeedState::Finished => "finished already",
            SeedState::Unfinished => {
                Trainer::new(&out)
                    .options(quiet.clone())
                    .resume(learner.as_mut(), c.total_steps)?;
                "resumed and done"
            }
            SeedState::New => {
                let opts = TrainOptions {
                    overwrite: true,
                    ..quiet.clone()
                };
                Trainer::new(&out).options(opts).fit(learner.as_mut(), c.total_steps)?;
                "done"
            }
        };
        if speak {
            eprintln!("seed {seed} {what} -> {}", out.display());
        }
        let line = match what {
            "finished already" => format!("{seed}\tseed {seed}: {what}"),
            _ => format!("{seed}\tseed {seed}: {what}; {}", learner.summary()),
        };
        lines.lock().unwrap_or_else(|p| p.into_inner()).push(line);
        Ok(())
    };
    // Rank 0's one view of the whole sweep, from the runs' metrics files.
    let view = if speak {
        let first = RunConfig {
            seed: seeds[0],
            ..cfg.clone()
        };
        let planned = first.learner().and_then(|mut l| Ok(l.plan(first.total_steps)?));
        planned
            .ok()
            .map(|p| SweepProgress::start(base.to_path_buf(), seeds.to_vec(), p))
    } else {
        None
    };
    let r = match rayon::ThreadPoolBuilder::new().num_threads(threads).build() {
        Ok(pool) => pool.install(|| run_seeds(&mine, workers, one)),
        Err(_) => run_seeds(&mine, workers, one),
    };
    if let Some(v) = view {
        v.stop();
    }
    // Each line is "seed<TAB>text"; rank 0 lists them in seed order.
    let mut all: Vec<(u64, String)> = cluster
        .gather(lines.into_inner().unwrap_or_else(|p| p.into_inner()))
        .into_iter()
        .filter_map(|l| {
            let (s, text) = l.split_once('\t')?;
            Some((s.parse().ok()?, text.to_owned()))
        })
        .collect();
    all.sort();
    if speak && cluster.size() > 1 {
        eprintln!("taper train: {} of {} seeds trained:", all.len(), seeds.len());
        for (_, l) in &all {
            eprintln!("  {l}");
        }
    }
    let everyone = cluster.all(r.is_ok());
    r?;
    if !everyone {
        return Err(CliError::Cluster(
            "another process's seeds failed (rank 0 lists the runs that finished); run the same \
             command again to continue the sweep"
                .into(),
        ));
    }
    Ok(())
}

/// Where one seed of a sweep stands in its folder.
enum SeedState {
    /// Trained to its end.
    Finished,
    /// Stopped after a checkpoint: resume from it.
    Unfinished,
    /// Not started, or stopped before its first checkpoint: start afresh.
    New,
}

/// Reads `out`, the folder of the run `c`.
fn sweep_state(c: &RunConfig, out: &Path) -> taper::train::Result<SeedState> {
    if !taper::train::run_dir::holds_run(out) {
        return Ok(SeedState::New);
    }
    let Ok((ckpt, _)) = taper::train::checkpoint::newest_intact(out) else {
        return Ok(SeedState::New);
    };
    let end = c.learner()?.plan(c.total_steps)?;
    Ok(if ckpt.state.global_step >= end {
        SeedState::Finished
    } else {
        SeedState::Unfinished
    })
}

/// Readies `base` for the sweep `seeds` of `cfg`. A seeds folder is replaced whole or not at
/// all, so that plots never mix two sweeps: with `--overwrite` its runs are removed; without
/// it, the folder may hold only runs of this same sweep (which then continues).
fn prepare_sweep(cfg: &RunConfig, seeds: &[u64], base: &Path, options: &TrainOptions, fresh: bool) -> Result<()> {
    if fresh || !base.is_dir() {
        return Ok(());
    }
    let old: Vec<PathBuf> = std::fs::read_dir(base)
        .map_err(|e| CliError::Io {
            path: base.display().to_string(),
            source: e,
        })?
        .flatten()
        .map(|e| e.path())
        .filter(|p| taper::train::run_dir::holds_run(p))
        .collect();
    if old.is_empty() {
        return Ok(());
    }
    if !options.overwrite {
        if old.iter().all(|p| same_sweep(cfg, seeds, base, p)) {
            return Ok(());
        }
        return Err(CliError::Arg {
            arg: "--out",
            reason: format!(
                "{} already holds {} runs of another sweep; replace them all with --overwrite",
                base.display(),
                old.len()
            ),
        });
    }
    for p in &old {
        std::fs::remove_dir_all(p).map_err(|e| CliError::Io {
            path: p.display().to_string(),
            source: e,
        })?;
    }
    Ok(())
}

/// Whether the run in `dir` is one of the sweep's: `base/s<seed>` for one of `seeds`, with
/// the sweep's config for that seed (the device aside: checkpoints load on any).
fn same_sweep(cfg: &RunConfig, seeds: &[u64], base: &Path, dir: &Path) -> bool {
    let Some(seed) = seeds.iter().copied().find(|s| dir == base.join(format!("s{s}"))) else {
        return false;
    };
    match RunConfig::from_run_dir(dir) {
        Ok(mut old) => {
            old.device = cfg.device;
            old.backend = cfg.backend;
            old == RunConfig { seed, ..cfg.clone() }
        }
        Err(_) => false,
    }
}

/// Continues the run in `dir`; flags that would change the run are refused.
fn resume(a: &TrainArgs, dir: &Path, kwargs: Option<Kwargs>, options: TrainOptions) -> Result<()> {
    let cfg = resume_config(a, dir, kwargs)?;
    let mut learner = cfg.learner()?;
    Trainer::new(dir)
        .options(options)
        .resume(learner.as_mut(), cfg.total_steps)?;
    Ok(())
}

/// The config of the run in `dir` to resume, with the budget and device the flags give; flags
/// that would change the run are refused.
pub(crate) fn resume_config(a: &TrainArgs, dir: &Path, kwargs: Option<Kwargs>) -> Result<RunConfig> {
    let mut cfg = RunConfig::from_run_dir(dir)?;
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
        if al != cfg.algo.name() {
            return Err(conflict("--algo", al.clone(), cfg.algo.name().into()));
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
    if a.seeds.is_some() {
        return Err(conflict(
            "--seeds",
            a.seeds.clone().unwrap_or_default(),
            "one seed".into(),
        ));
    }
    if let Some(o) = a.out.as_ref().filter(|o| *o != dir) {
        return Err(conflict("--out", o.display().to_string(), "its own folder".into()));
    }
    if !grpo_keys(a)?.is_empty() {
        return Err(conflict(
            "--loss-type/--scale-rewards/--dapo/--d3s/--adora",
            "given".into(),
            "its own config.toml".into(),
        ));
    }
    if let Some(t) = a.total_steps {
        cfg.set_total_steps(t);
    }
    // The device is not part of the run: a run trained on one resumes on any other.
    cfg.set_compute(a.device.as_deref(), a.backend.as_deref())?;
    Ok(cfg)
}
