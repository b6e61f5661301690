//! `taper train --data-parallel`: one run over the processes of an MPI launch, each holding
//! one data block (a share of the envs, or of GRPO's prompts; see `taper::algos::blocks`).
//! Rank 0 writes the run folder; the others follow it.

use crate::cluster::Cluster;
use crate::error::{CliError, Result};
use crate::TrainArgs;
use std::path::PathBuf;
use taper::algos::blocks::BlockLink;
use taper::algos::run_config::RunConfig;
use taper::envs::Kwargs;
use taper::train::{TrainError, Trainer};

/// Runs `taper train --data-parallel`, fresh or with `--resume`.
pub fn run(a: &TrainArgs, kwargs: Option<Kwargs>) -> Result<()> {
    let options = super::train::options_of(a);
    let cluster = Cluster::start()?;
    let p = cluster.size();
    // Every process checks the run alone; all go on only if all can.
    let prepared = prepare(a, kwargs, p);
    agree(&cluster, prepared.as_ref().map(|_| ()).map_err(|e| e.to_string()))?;
    let (cfg, out) = prepared?;
    let built = match cluster.link() {
        Some(link) => same_run_everywhere(&*link, &cfg).and_then(|()| Ok(cfg.data_parallel_learner(link)?)),
        None => cfg.learner().map_err(CliError::from),
    };
    agree(&cluster, built.as_ref().map(|_| ()).map_err(|e| e.to_string()))?;
    let mut learner = built?;
    // Stop together: a signal may reach the processes at different updates.
    let any = |flag: bool| !cluster.all(!flag);
    let trainer = if cluster.is_root() {
        Trainer::new(&out)
    } else {
        Trainer::follower(&out)
    };
    let mut trainer = trainer.options(options).agreement(&any);
    let r = match &a.resume {
        Some(_) => trainer.resume(learner.as_mut(), cfg.total_steps),
        None => trainer.fit(learner.as_mut(), cfg.total_steps),
    };
    match r {
        Ok(_) => {
            // Leave together, once the writer has written everything.
            cluster.all(true);
            Ok(())
        }
        // A signal stopped every process at the same update, with a checkpoint.
        Err(e @ TrainError::Interrupted { .. }) => {
            cluster.all(true);
            Err(e.into())
        }
        // The other processes would wait for this one: end them all.
        Err(e) if p > 1 => {
            eprintln!("taper: process {} of the data-parallel run: {e}", cluster.rank());
            cluster.abort(1)
        }
        Err(e) => Err(e.into()),
    }
}

/// The run's config (its data blocks set to the processes `p` for a fresh run) and folder;
/// errors for what a data-parallel run cannot do.
fn prepare(a: &TrainArgs, kwargs: Option<Kwargs>, p: usize) -> Result<(RunConfig, PathBuf)> {
    let resume = a.resume.clone();
    let mut cfg = match &resume {
        Some(dir) => super::train::resume_config(a, dir, kwargs)?,
        None => super::train::fresh_config(a, kwargs)?,
    };
    let Some(blocks) = cfg.data_blocks() else {
        return Err(CliError::Arg {
            arg: "--data-parallel",
            reason: format!(
                "{} trains in one process; data-parallel learning is built for ppo, ippo, mappo and grpo",
                cfg.algo.name()
            ),
        });
    };
    match &resume {
        Some(dir) if blocks == 1 && p > 1 => {
            return Err(CliError::Cluster(format!(
                "the run in {} has one data block: resume it in one process (taper train --resume {0})",
                dir.display()
            )));
        }
        // A run's blocks are fixed: it resumes over as many processes, or in one.
        Some(dir) if blocks != p && p > 1 => {
            return Err(CliError::Cluster(format!(
                "the run in {} has {blocks} data blocks, so it resumes over {blocks} processes \
                 (mpirun -np {blocks}) or in one, not over {p}",
                dir.display()
            )));
        }
        Some(_) => {}
        None if blocks == 1 => cfg.set_data_blocks(p)?,
        None if blocks != p && p > 1 => {
            return Err(CliError::Cluster(format!(
                "the config sets data_blocks = {blocks} but the launch has {p} processes; \
                 launch one process per block (mpirun -np {blocks})"
            )));
        }
        None => {}
    }
    let out = match (&resume, &a.out) {
        (Some(dir), _) => dir.clone(),
        (None, Some(o)) => o.clone(),
        (None, None) if p == 1 => super::train::new_default_dir(&cfg, &cfg.seed.to_string())?,
        (None, None) => {
            return Err(CliError::Cluster(
                "the processes must agree on the run's folder: give --out".into(),
            ))
        }
    };
    Ok((cfg, out))
}

/// Whether every process got on with `mine`; when another failed, an error saying so (its
/// own message is its process's). Collective.
fn agree(cluster: &Cluster, mine: std::result::Result<(), String>) -> Result<()> {
    let everyone = cluster.all(mine.is_ok());
    match mine {
        Ok(()) if !everyone => Err(CliError::Cluster(
            "another process could not start the run (its message says why)".into(),
        )),
        _ => Ok(()),
    }
}

/// An error unless every process resolved the same run (algorithm, env, seed, config): a
/// process given another config file or seed would learn from other data.
fn same_run_everywhere(link: &dyn BlockLink, cfg: &RunConfig) -> Result<()> {
    let mine = cfg.to_run_file().to_toml()?;
    let all = link.all_gather_bytes(mine.as_bytes())?;
    if let Some(r) = all.iter().position(|other| *other != mine.as_bytes()) {
        return Err(CliError::Cluster(format!(
            "process {r} resolved another run than process {} (another config, env, seed or budget); \
             give every process the same command and files",
            link.rank()
        )));
    }
    Ok(())
}

/// Before rayon's pool starts: the processes of a data-parallel launch on one machine split
/// its cores, each pool taking its share (the bits do not depend on the threads). Does nothing
/// when `RAYON_NUM_THREADS` is set or the launch has one process per machine.
pub fn share_cores() {
    let local = crate::cluster::local_processes();
    if local < 2 || std::env::var_os("RAYON_NUM_THREADS").is_some() {
        return;
    }
    let threads = (std::thread::available_parallelism().map(|n| n.get()).unwrap_or(1) / local).max(1);
    // Fails only if the pool was built already, and then it keeps its size.
    let _ = rayon::ThreadPoolBuilder::new().num_threads(threads).build_global();
}
