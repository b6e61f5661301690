//! `kill -9` at 30 seeded random moments of checkpointed runs: every run resumes to the same
//! metrics and final weights as an uninterrupted one, and no temporary debris is left.

use crate::common::*;
use std::path::Path;
use std::process::{Command, Stdio};
use std::time::Duration;

const ARGS: [&str; 9] = [
    "train",
    "--env",
    "Pendulum-v1",
    "--seed",
    "2",
    "--total-steps",
    "40960",
    "--checkpoint-every",
    "4096",
];

/// Entries whose names mark a temporary of an interrupted write, anywhere under `dir`.
fn debris(dir: &Path) -> Vec<String> {
    let mut found = Vec::new();
    let mut stack = vec![dir.to_path_buf()];
    while let Some(d) = stack.pop() {
        for e in std::fs::read_dir(&d).unwrap().flatten() {
            let name = e.file_name().to_string_lossy().into_owned();
            if name.contains(".tmp") {
                found.push(e.path().display().to_string());
            }
            if e.path().is_dir() {
                stack.push(e.path());
            }
        }
    }
    found
}

#[test]
fn kill_9_then_resume_equals_the_straight_run() {
    let d = tempfile::tempdir().unwrap();
    let straight = d.path().join("straight");
    let mut a = ARGS.to_vec();
    a.extend(["--out", straight.to_str().unwrap(), "--quiet"]);
    train_ok(&a);
    let mut state = 0x2545_f491_4f6c_dd1du64;
    let (mut resumed, mut restarted, mut finished) = (0, 0, 0);
    for trial in 0..30 {
        state = state
            .wrapping_mul(6_364_136_223_846_793_005)
            .wrapping_add(1_442_695_040_888_963_407);
        let delay = Duration::from_millis(30 + (state >> 33) % 700);
        let out = d.path().join(format!("t{trial}"));
        let mut child = Command::new(env!("CARGO_BIN_EXE_taper"))
            .args(ARGS)
            .args(["--out", out.to_str().unwrap(), "--quiet"])
            .stderr(Stdio::null())
            .spawn()
            .unwrap();
        std::thread::sleep(delay);
        let _ = child.kill(); // SIGKILL; it may have finished already
        child.wait().unwrap();
        let done = std::fs::read_to_string(out.join("checkpoint/state.json"))
            .map(|s| s.contains("\"global_step\": 40960"))
            .unwrap_or(false);
        if done {
            finished += 1;
        } else if taper::train::checkpoint::candidates(&out).is_empty() {
            // Killed before its first checkpoint: nothing to resume, so start again.
            let mut a = ARGS.to_vec();
            a.extend(["--out", out.to_str().unwrap(), "--overwrite", "--quiet"]);
            train_ok(&a);
            restarted += 1;
        } else {
            train_ok(&["train", "--resume", out.to_str().unwrap(), "--quiet"]);
            resumed += 1;
        }
        same_run(&straight, &out);
        assert!(debris(&out).is_empty(), "trial {trial}: {:?}", debris(&out));
    }
    eprintln!("30 kills: {resumed} resumed, {restarted} restarted before a checkpoint, {finished} already done");
    assert!(resumed >= 10, "most kills must land mid-run ({resumed} resumed)");
}
