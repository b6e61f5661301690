//! Helpers of the end-to-end tests of the `taper` binary.
#![allow(dead_code)]

use std::path::Path;
use std::process::{Command, Output};

pub fn taper(args: &[&str], envs: &[(&str, &str)]) -> Output {
    let mut c = Command::new(env!("CARGO_BIN_EXE_taper"));
    c.args(args);
    for (k, v) in envs {
        c.env(k, v);
    }
    c.output().expect("run taper")
}

pub fn stderr(o: &Output) -> String {
    String::from_utf8_lossy(&o.stderr).to_string()
}

/// A failing command prints exactly one line, starting with `error:`, and exits non-zero.
pub fn assert_clean_error(o: &Output, needle: &str) {
    assert!(!o.status.success(), "expected failure");
    let e = stderr(o);
    let lines: Vec<&str> = e.lines().collect();
    assert_eq!(lines.len(), 1, "one line expected, got: {e}");
    assert!(lines[0].starts_with("error: "), "{e}");
    assert!(lines[0].contains(needle), "`{needle}` not in: {e}");
}

pub fn metrics_without_timing(dir: &Path) -> Vec<String> {
    let text = std::fs::read_to_string(dir.join("metrics.jsonl")).unwrap();
    text.lines()
        .map(|l| {
            let mut v: serde_json::Map<String, serde_json::Value> = serde_json::from_str(l).unwrap();
            for c in taper::train::metrics::TIMING_COLUMNS {
                v.remove(*c);
            }
            serde_json::to_string(&v).unwrap()
        })
        .collect()
}

pub fn train_ok(args: &[&str]) {
    let o = taper(args, &[]);
    assert!(o.status.success(), "{:?}: {}", args, stderr(&o));
}

pub fn same_run(a: &Path, b: &Path) {
    let wa = std::fs::read(a.join("checkpoint/model.safetensors")).unwrap();
    let wb = std::fs::read(b.join("checkpoint/model.safetensors")).unwrap();
    assert!(wa == wb, "weights differ between {} and {}", a.display(), b.display());
    assert_eq!(metrics_without_timing(a), metrics_without_timing(b));
}

/// Trains with `base` flags into `out` (quietly), then `extra` flags; panics on failure.
pub fn train_into(base: &[&str], out: &Path, extra: &[&str]) {
    let mut v: Vec<String> = vec!["train".into()];
    v.extend(base.iter().map(|s| s.to_string()));
    v.extend(["--out".to_string(), out.display().to_string(), "--quiet".to_string()]);
    v.extend(extra.iter().map(|s| s.to_string()));
    train_ok(&v.iter().map(String::as_str).collect::<Vec<_>>());
}

/// `mpirun -np N taper ARGS` (Open MPI; as root too, and on fewer cores than ranks).
#[cfg(feature = "mpi")]
pub fn mpirun(np: usize, args: &[&str]) -> Command {
    let mut c = Command::new("mpirun");
    c.args(["--oversubscribe", "-np", &np.to_string(), env!("CARGO_BIN_EXE_taper")])
        .args(args)
        .env("OMPI_ALLOW_RUN_AS_ROOT", "1")
        .env("OMPI_ALLOW_RUN_AS_ROOT_CONFIRM", "1");
    c
}

/// Runs [`mpirun`] to its end.
#[cfg(feature = "mpi")]
pub fn mpi_run(np: usize, args: &[&str]) -> Output {
    mpirun(np, args).output().expect("run mpirun")
}
