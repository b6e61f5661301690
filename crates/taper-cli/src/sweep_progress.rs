//! One progress view of a whole sweep, for the process that speaks for it: the steps of all
//! its runs, read from the runs' `metrics.jsonl` (so the runs of other processes count too,
//! on a shared file system). A bar on a terminal, otherwise a line every tenth of the sweep.

use indicatif::{ProgressBar, ProgressStyle};
use std::io::{IsTerminal, Read, Seek, SeekFrom};
use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::Arc;
use std::time::Duration;

/// How often the runs' files are read.
const POLL: Duration = Duration::from_millis(500);

/// The view, shown by a thread of its own until [`SweepProgress::stop`].
pub struct SweepProgress {
    stop: Arc<AtomicBool>,
    thread: Option<std::thread::JoinHandle<()>>,
}

impl SweepProgress {
    /// Shows the progress of the runs `base/s<seed>`, each planned to end at step `planned`.
    pub fn start(base: PathBuf, seeds: Vec<u64>, planned: u64) -> Self {
        let stop = Arc::new(AtomicBool::new(false));
        let flag = stop.clone();
        let thread = std::thread::spawn(move || show(&base, &seeds, planned, &flag));
        SweepProgress {
            stop,
            thread: Some(thread),
        }
    }

    /// Ends the view (after one last reading).
    pub fn stop(mut self) {
        self.stop.store(true, Ordering::Relaxed);
        if let Some(t) = self.thread.take() {
            let _ = t.join();
        }
    }
}

/// Reads and shows until `stop`, then once more.
fn show(base: &Path, seeds: &[u64], planned: u64, stop: &AtomicBool) {
    let total = planned.saturating_mul(seeds.len() as u64).max(1);
    let bar = std::io::stderr().is_terminal().then(|| {
        let b = ProgressBar::new(total);
        b.set_style(
            ProgressStyle::with_template("sweep [{elapsed_precise}<{eta_precise}] {bar:30} {pos}/{len} | {msg}")
                .unwrap_or_else(|_| ProgressStyle::default_bar()),
        );
        b
    });
    let every = (total / 10).max(1);
    let mut next_line = every;
    loop {
        let last = stop.load(Ordering::Relaxed);
        let steps: Vec<u64> = seeds
            .iter()
            .map(|s| last_step(&base.join(format!("s{s}"))).unwrap_or(0).min(planned))
            .collect();
        let done: u64 = steps.iter().sum();
        let finished = steps.iter().filter(|&&s| s >= planned).count();
        let msg = format!("{finished} of {} runs finished", seeds.len());
        match &bar {
            Some(b) => {
                b.set_position(done);
                b.set_message(msg);
            }
            None if done >= next_line => {
                while next_line <= done {
                    next_line += every;
                }
                eprintln!("sweep {done:>12}/{total} steps | {msg}");
            }
            None => {}
        }
        if last {
            break;
        }
        std::thread::sleep(POLL);
    }
    if let Some(b) = bar {
        b.finish_and_clear();
    }
}

/// The `global_step` of the last row of `dir/metrics.jsonl`, read from the file's tail.
pub fn last_step(dir: &Path) -> Option<u64> {
    let mut f = std::fs::File::open(dir.join("metrics.jsonl")).ok()?;
    let len = f.metadata().ok()?.len();
    let from = len.saturating_sub(16 * 1024);
    f.seek(SeekFrom::Start(from)).ok()?;
    let mut tail = String::new();
    f.read_to_string(&mut tail).ok()?;
    // A row being written may be cut short: take the last complete one.
    tail.lines().rev().find_map(|l| {
        let row: serde_json::Value = serde_json::from_str(l).ok()?;
        row.get("global_step")?.as_u64()
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn reads_the_last_complete_row() {
        let d = tempfile::tempdir().unwrap();
        assert_eq!(last_step(d.path()), None);
        let rows: String = (1..=3000)
            .map(|i| format!("{{\"global_step\":{},\"x\":{}}}\n", i * 512, i))
            .collect();
        std::fs::write(d.path().join("metrics.jsonl"), format!("{rows}{{\"global_step\":99")).unwrap();
        assert_eq!(last_step(d.path()), Some(3000 * 512));
    }
}
