//! Several seeds of one run, in parallel: `--seeds 0..5` and its library form.
//!
//! Each run is single-threaded, so runs side by side use the cores; the numbers of a seed do
//! not depend on what runs beside it.
//!
//! ```
//! use taper_train::seeds::{parse_seeds, run_seeds};
//! let seeds = parse_seeds("0..4")?;
//! assert_eq!(seeds, vec![0, 1, 2, 3]);
//! let done = std::sync::Mutex::new(Vec::new());
//! run_seeds(&seeds, 2, |s| { done.lock().unwrap().push(s); Ok(()) })?;
//! assert_eq!(done.into_inner().unwrap().len(), 4);
//! # Ok::<(), taper_train::TrainError>(())
//! ```

use crate::error::{Result, TrainError};

/// The most seeds one command runs.
pub const MAX_SEEDS: usize = 1000;

/// Parses `A..B` (B excluded) or `A,B,C` into distinct seeds, at most [`MAX_SEEDS`]; the
/// range is checked before anything is allocated.
pub fn parse_seeds(spec: &str) -> Result<Vec<u64>> {
    let bad = |reason: String| TrainError::Invalid {
        what: "--seeds",
        reason,
    };
    let not_form = || bad(format!("`{spec}` is not A..B or A,B,C"));
    let seeds: Vec<u64> = if let Some((a, b)) = spec.split_once("..") {
        let (a, b): (u64, u64) = (
            a.trim().parse().map_err(|_| not_form())?,
            b.trim().parse().map_err(|_| not_form())?,
        );
        let count = b.saturating_sub(a);
        if count == 0 || count > MAX_SEEDS as u64 {
            return Err(bad(format!("`{spec}` gives {count} seeds (1 to {MAX_SEEDS})")));
        }
        (a..b).collect()
    } else {
        let parts: Vec<&str> = spec.split(',').collect();
        if parts.len() > MAX_SEEDS {
            return Err(bad(format!("`{spec}` gives {} seeds (1 to {MAX_SEEDS})", parts.len())));
        }
        parts
            .iter()
            .map(|s| s.trim().parse::<u64>().map_err(|_| not_form()))
            .collect::<Result<_>>()?
    };
    let mut uniq = seeds.clone();
    uniq.sort_unstable();
    uniq.dedup();
    if uniq.len() != seeds.len() {
        return Err(bad(format!("`{spec}` repeats a seed")));
    }
    Ok(seeds)
}

/// Runs `run(seed)` for every seed, `workers` at a time (at least one), and returns the first
/// error (naming its seed) once all have ended; the other seeds' runs are kept.
///
/// Each worker runs its seeds inside its own rayon pool, with an equal share of rayon's
/// threads (at least one), so that a run's fork-joins stay on its own threads instead of
/// queueing on the shared pool behind the other workers' (measured: 16 PPO seeds on 2 cores
/// took twice as long through the shared pool). Results do not depend on the share.
pub fn run_seeds<F>(seeds: &[u64], workers: usize, run: F) -> Result<()>
where
    F: Fn(u64) -> Result<()> + Sync,
{
    let workers = workers.clamp(1, seeds.len().max(1));
    let share = (rayon::current_num_threads() / workers).max(1);
    let next = std::sync::atomic::AtomicUsize::new(0);
    let errors = std::sync::Mutex::new(Vec::new());
    let record = |i: usize, e: String| {
        errors.lock().unwrap_or_else(|p| p.into_inner()).push((i, e));
    };
    std::thread::scope(|sc| {
        for w in 0..workers {
            let (next, run, record) = (&next, &run, &record);
            sc.spawn(move || {
                let work = || loop {
                    let i = next.fetch_add(1, std::sync::atomic::Ordering::SeqCst);
                    let Some(&seed) = seeds.get(i) else { break };
                    if let Err(e) = run(seed) {
                        record(i, format!("seed {seed}: {e}"));
                    }
                };
                match rayon::ThreadPoolBuilder::new()
                    .num_threads(share)
                    .thread_name(move |t| format!("taper-seeds-{w}-{t}"))
                    .build()
                {
                    Ok(pool) => pool.install(work),
                    // Without a pool of its own the worker still runs, on the shared one.
                    Err(_) => work(),
                }
            });
        }
    });
    let mut errors = errors.into_inner().unwrap_or_else(|p| p.into_inner());
    errors.sort();
    match errors.into_iter().next() {
        Some((_, e)) => Err(TrainError::Invalid {
            what: "--seeds",
            reason: e,
        }),
        None => Ok(()),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn seed_lists() {
        assert_eq!(parse_seeds("3,1,2").unwrap(), vec![3, 1, 2]);
        for bad in [
            "",
            "1..1",
            "5..2",
            "0..18446744073709551615",
            "1,1",
            "a..b",
            "1,x",
            "0..1001",
        ] {
            assert!(parse_seeds(bad).is_err(), "{bad}");
        }
        assert_eq!(parse_seeds("0..1000").unwrap().len(), 1000);
    }

    #[test]
    fn errors_name_their_seed_and_spare_the_others() {
        let done = std::sync::Mutex::new(Vec::new());
        let r = run_seeds(&[0, 1, 2], 2, |s| {
            if s == 1 {
                return Err(TrainError::Invalid {
                    what: "x",
                    reason: "boom".into(),
                });
            }
            done.lock().unwrap().push(s);
            Ok(())
        });
        assert!(r.unwrap_err().to_string().contains("seed 1"));
        let mut d = done.into_inner().unwrap();
        d.sort();
        assert_eq!(d, vec![0, 2]);
    }
}
