//! Ownership of a run folder: one writer at a time (an advisory lock held while a run
//! writes, released by the system when the process ends, even by `kill -9`), no silent
//! overwrite of an existing run, and the removal of temporary folders that an interrupted
//! write left behind.
//!
//! ```
//! use taper_train::run_dir::{holds_run, RunLock};
//! let d = tempfile::tempdir()?;
//! assert!(!holds_run(d.path()));
//! let lock = RunLock::acquire(d.path())?;
//! assert!(RunLock::acquire(d.path()).is_err()); // a second writer is refused
//! drop(lock);
//! assert!(RunLock::acquire(d.path()).is_ok());
//! # Ok::<(), Box<dyn std::error::Error>>(())
//! ```

use crate::error::{Result, TrainError};
use std::path::{Path, PathBuf};

/// The lock file's name inside a run folder.
pub const LOCK_FILE: &str = ".taper.lock";

/// The files and folders a run writes (what `--overwrite` removes).
pub const RUN_ENTRIES: &[&str] = &[
    "config.toml",
    "metrics.jsonl",
    "metrics.csv",
    "evaluations.jsonl",
    "train_options.json",
    "checkpoint",
    "checkpoint.old",
    "checkpoints",
    "best",
];

/// Whether `dir` holds a run (its config, metrics or checkpoints).
pub fn holds_run(dir: &Path) -> bool {
    RUN_ENTRIES.iter().any(|e| dir.join(e).exists())
}

/// Removes a run's files from `dir` (for an explicit overwrite): every entry of
/// [`RUN_ENTRIES`] and the TensorBoard event files.
pub fn clear_run(dir: &Path) -> Result<()> {
    for e in RUN_ENTRIES {
        let p = dir.join(e);
        if p.is_dir() {
            std::fs::remove_dir_all(&p).map_err(|err| TrainError::io(&p, err))?;
        } else if p.exists() {
            std::fs::remove_file(&p).map_err(|err| TrainError::io(&p, err))?;
        }
    }
    for e in std::fs::read_dir(dir)
        .map_err(|err| TrainError::io(dir, err))?
        .flatten()
    {
        if e.file_name().to_string_lossy().starts_with("events.out.tfevents.") {
            std::fs::remove_file(e.path()).map_err(|err| TrainError::io(e.path(), err))?;
        }
    }
    Ok(())
}

/// Whether a file name is a temporary of an atomic write (`.NAME.tmpPID` folders, `NAME.tmpPID`
/// files).
fn is_temporary(name: &str) -> bool {
    match name.rfind(".tmp") {
        Some(i) => {
            let pid = &name[i + 4..];
            !pid.is_empty() && pid.bytes().all(|b| b.is_ascii_digit())
        }
        None => false,
    }
}

/// Removes the temporaries that interrupted writes left in `dir`, `dir/checkpoints` and
/// `dir/best`; call it while holding the folder's [`RunLock`], so that no live writer owns
/// them. Returns what it removed.
pub fn clean_debris(dir: &Path) -> Result<Vec<PathBuf>> {
    let mut removed = Vec::new();
    for d in [
        dir.to_path_buf(),
        dir.join("checkpoints"),
        dir.join("checkpoint"),
        dir.join("best"),
    ] {
        let Ok(rd) = std::fs::read_dir(&d) else { continue };
        for e in rd.flatten() {
            if !is_temporary(&e.file_name().to_string_lossy()) {
                continue;
            }
            let p = e.path();
            let r = if p.is_dir() {
                std::fs::remove_dir_all(&p)
            } else {
                std::fs::remove_file(&p)
            };
            r.map_err(|err| TrainError::io(&p, err))?;
            removed.push(p);
        }
    }
    Ok(removed)
}

/// An exclusive hold on a run folder while a run writes it; released when dropped or when
/// the process ends.
#[derive(Debug)]
pub struct RunLock {
    #[allow(dead_code)]
    file: std::fs::File,
}

impl RunLock {
    /// Takes the lock of `dir` (created if missing), or fails at once naming the process that
    /// holds it.
    pub fn acquire(dir: &Path) -> Result<Self> {
        std::fs::create_dir_all(dir).map_err(|e| TrainError::io(dir, e))?;
        let path = dir.join(LOCK_FILE);
        let file = std::fs::OpenOptions::new()
            .read(true)
            .write(true)
            .create(true)
            .truncate(false)
            .open(&path)
            .map_err(|e| TrainError::io(&path, e))?;
        lock_exclusive(&file).map_err(|holder| TrainError::Invalid {
            what: "run folder",
            reason: format!(
                "{} is being written by another taper process{holder}; wait for it or choose another --out",
                dir.display()
            ),
        })?;
        use std::io::{Seek, Write};
        let mut f = &file;
        let _ = f.set_len(0);
        let _ = f.seek(std::io::SeekFrom::Start(0));
        let _ = writeln!(f, "{}", std::process::id());
        Ok(RunLock { file })
    }
}

#[cfg(unix)]
fn lock_exclusive(file: &std::fs::File) -> std::result::Result<(), String> {
    use std::os::unix::io::AsRawFd;
    // SAFETY: flock on a file descriptor this process owns; no memory is involved.
    let r = unsafe { libc::flock(file.as_raw_fd(), libc::LOCK_EX | libc::LOCK_NB) };
    if r == 0 {
        return Ok(());
    }
    let mut pid = String::new();
    let _ = std::io::Read::read_to_string(&mut &*file, &mut pid);
    let pid = pid.trim();
    Err(if pid.is_empty() {
        String::new()
    } else {
        format!(" (pid {pid})")
    })
}

#[cfg(not(unix))]
fn lock_exclusive(_file: &std::fs::File) -> std::result::Result<(), String> {
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn temporaries_are_recognised_and_removed() {
        assert!(is_temporary(".checkpoint.tmp1234"));
        assert!(is_temporary("state.tmp77"));
        assert!(!is_temporary("metrics.jsonl"));
        assert!(!is_temporary("step_00100"));
        assert!(!is_temporary("x.tmp"));
        let d = tempfile::tempdir().unwrap();
        std::fs::create_dir_all(d.path().join(".checkpoint.tmp42/inner")).unwrap();
        std::fs::create_dir_all(d.path().join("checkpoints/.step_00010.tmp42")).unwrap();
        std::fs::write(d.path().join("metrics.jsonl"), "{}\n").unwrap();
        let removed = clean_debris(d.path()).unwrap();
        assert_eq!(removed.len(), 2);
        assert!(d.path().join("metrics.jsonl").exists());
        assert!(holds_run(d.path()));
        clear_run(d.path()).unwrap();
        assert!(!holds_run(d.path()));
    }
}
