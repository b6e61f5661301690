//! Never lose a run: run-folder ownership, rejected commands that write nothing, interrupts,
//! bounded inputs, and a resume that trusts nothing. Each test reproduces a way runs used to
//! be lost or inputs silently ignored.

use crate::common::*;
use std::collections::BTreeMap;
use std::path::Path;
use std::process::{Command, Stdio};
use std::time::{Duration, Instant};

/// Every file under `dir` with its bytes.
fn snapshot(dir: &Path) -> BTreeMap<String, Vec<u8>> {
    let mut out = BTreeMap::new();
    let mut stack = vec![dir.to_path_buf()];
    while let Some(d) = stack.pop() {
        for e in std::fs::read_dir(&d).unwrap().flatten() {
            let p = e.path();
            if p.is_dir() {
                stack.push(p);
            } else {
                out.insert(
                    p.strip_prefix(dir).unwrap().display().to_string(),
                    std::fs::read(&p).unwrap(),
                );
            }
        }
    }
    out
}

fn p(d: &Path) -> &str {
    d.to_str().unwrap()
}

#[test]
fn rejected_commands_leave_an_existing_run_as_it_was() {
    let d = tempfile::tempdir().unwrap();
    let r = d.path().join("R");
    train_into(&["--total-steps", "4096", "--checkpoint-every", "2048"], &r, &[]);
    let before = snapshot(&r);
    for (args, needle) in [
        (vec!["--total-steps", "0"], "total_steps"),
        (vec!["--eval-every", "512", "--eval-episodes", "0"], "--eval-episodes"),
        (vec!["--algo", "mappo", "--eval-every", "0"], "--eval-every"),
        (vec!["--seed", "9"], "already holds a run"),
        (vec!["--total-steps", "4096"], "already holds a run"),
    ] {
        let mut a = vec!["train", "--out", p(&r), "--quiet"];
        a.extend(args);
        assert_clean_error(&taper(&a, &[]), needle);
        assert!(snapshot(&r) == before, "{a:?} changed the run");
    }
    // Resume still works afterwards.
    train_ok(&["train", "--resume", p(&r), "--total-steps", "6144", "--quiet"]);
}

#[test]
fn an_existing_run_is_replaced_only_on_request_and_whole() {
    let d = tempfile::tempdir().unwrap();
    let r = d.path().join("R");
    train_into(&["--total-steps", "4096", "--checkpoint-every", "1024"], &r, &[]);
    assert!(r.join("checkpoints").exists());
    train_into(&["--seed", "7", "--total-steps", "2048", "--overwrite"], &r, &[]);
    assert!(!r.join("checkpoints").exists(), "the old run's checkpoints are gone");
    let cfg = std::fs::read_to_string(r.join("config.toml")).unwrap();
    assert!(cfg.contains("seed = 7"));
    // A seeds folder is replaced whole or not at all.
    let s = d.path().join("S");
    train_into(&["--seeds", "0..3", "--total-steps", "1024"], &s, &[]);
    assert_clean_error(
        &taper(
            &[
                "train",
                "--seeds",
                "5..7",
                "--total-steps",
                "1024",
                "--out",
                p(&s),
                "--quiet",
            ],
            &[],
        ),
        "already holds 3 runs",
    );
    train_into(&["--seeds", "5..7", "--total-steps", "1024", "--overwrite"], &s, &[]);
    let mut names: Vec<String> = std::fs::read_dir(&s)
        .unwrap()
        .flatten()
        .map(|e| e.file_name().to_string_lossy().into_owned())
        .collect();
    names.sort();
    assert_eq!(names, ["s5", "s6"]);
}

/// Waits until `path` exists (at most 20 s).
fn wait_for(path: &Path) {
    let t = Instant::now();
    while !path.exists() {
        assert!(
            t.elapsed() < Duration::from_secs(20),
            "{} never appeared",
            path.display()
        );
        std::thread::sleep(Duration::from_millis(10));
    }
}

#[test]
fn a_second_writer_is_refused_while_the_first_runs() {
    let d = tempfile::tempdir().unwrap();
    let w = d.path().join("W");
    let mut first = Command::new(env!("CARGO_BIN_EXE_taper"))
        .args([
            "train",
            "--env",
            "Pendulum-v1",
            "--total-steps",
            "300000",
            "--out",
            p(&w),
            "--quiet",
        ])
        .stderr(Stdio::piped())
        .spawn()
        .unwrap();
    wait_for(&w.join("metrics.jsonl"));
    let o = taper(
        &[
            "train",
            "--env",
            "Pendulum-v1",
            "--total-steps",
            "4096",
            "--out",
            p(&w),
            "--overwrite",
            "--quiet",
        ],
        &[],
    );
    assert_clean_error(
        &o,
        &format!("being written by another taper process (pid {})", first.id()),
    );
    assert_clean_error(&taper(&["train", "--resume", p(&w), "--quiet"], &[]), "being written");
    first.kill().unwrap();
    first.wait().unwrap();
    // Once the writer is gone (even killed), the folder is free again.
    let o = taper(&["train", "--resume", p(&w), "--quiet", "--total-steps", "4096"], &[]);
    assert!(!stderr(&o).contains("being written"), "{}", stderr(&o));
}

#[test]
fn default_folders_of_runs_started_together_never_collide() {
    let d = tempfile::tempdir().unwrap();
    let spawn = || {
        Command::new(env!("CARGO_BIN_EXE_taper"))
            .args(["train", "--total-steps", "1024", "--quiet"])
            .current_dir(d.path())
            .spawn()
            .unwrap()
    };
    let (mut a, mut b, mut c) = (spawn(), spawn(), spawn());
    for ch in [&mut a, &mut b, &mut c] {
        assert!(ch.wait().unwrap().success());
    }
    let runs: Vec<_> = std::fs::read_dir(d.path().join("runs")).unwrap().flatten().collect();
    assert_eq!(runs.len(), 3, "three runs, three folders");
    for r in runs {
        assert!(r.path().join("checkpoint/model.safetensors").exists());
    }
}

#[test]
fn sigint_writes_a_checkpoint_and_resume_finishes_the_run_exactly() {
    let d = tempfile::tempdir().unwrap();
    let (straight, cut) = (d.path().join("straight"), d.path().join("cut"));
    let base = [
        "train",
        "--env",
        "Pendulum-v1",
        "--seed",
        "4",
        "--total-steps",
        "61440",
        "--quiet",
    ];
    let mut a = base.to_vec();
    a.extend(["--out", p(&straight)]);
    train_ok(&a);
    let child = Command::new(env!("CARGO_BIN_EXE_taper"))
        .args(base)
        .args(["--out", p(&cut)])
        .stderr(Stdio::piped())
        .spawn()
        .unwrap();
    wait_for(&cut.join("metrics.jsonl"));
    let ok = Command::new("kill")
        .args(["-INT", &child.id().to_string()])
        .status()
        .unwrap();
    assert!(ok.success());
    let out = child.wait_with_output().unwrap();
    let err = String::from_utf8_lossy(&out.stderr);
    assert_eq!(out.status.code(), Some(130), "{err}");
    assert!(err.contains("interrupted at step") && err.contains("--resume"), "{err}");
    assert!(
        cut.join("checkpoint/state.json").exists(),
        "no checkpoint without --checkpoint-every, still saved"
    );
    train_ok(&["train", "--resume", p(&cut), "--quiet"]);
    same_run(&straight, &cut);
}

#[test]
fn resume_keeps_the_runs_checkpoint_settings() {
    let d = tempfile::tempdir().unwrap();
    let r = d.path().join("R");
    train_into(
        &[
            "--total-steps",
            "8192",
            "--checkpoint-every",
            "1024",
            "--keep-last",
            "2",
            "--stop-after",
            "2048",
        ],
        &r,
        &[],
    );
    train_ok(&["train", "--resume", p(&r), "--quiet"]);
    let mut steps: Vec<String> = std::fs::read_dir(r.join("checkpoints"))
        .unwrap()
        .flatten()
        .map(|e| e.file_name().to_string_lossy().into_owned())
        .collect();
    steps.sort();
    assert_eq!(
        steps,
        ["step_0000006144", "step_0000007168"],
        "periodic checkpoints went on, two kept"
    );
}

#[test]
fn eval_reads_a_run_that_has_only_periodic_checkpoints() {
    let d = tempfile::tempdir().unwrap();
    let r = d.path().join("R");
    train_into(&["--total-steps", "4096", "--checkpoint-every", "1024"], &r, &[]);
    std::fs::remove_dir_all(r.join("checkpoint")).unwrap();
    let o = taper(&["eval", p(&r), "--episodes", "1", "--json"], &[]);
    assert!(o.status.success(), "{}", stderr(&o));
    let v: serde_json::Value = serde_json::from_slice(&o.stdout).unwrap();
    assert_eq!(v["global_step"], 3072);
}

#[test]
fn resume_passes_over_a_damaged_checkpoint_and_cleans_debris() {
    let d = tempfile::tempdir().unwrap();
    let r = d.path().join("R");
    train_into(
        &[
            "--total-steps",
            "8192",
            "--checkpoint-every",
            "1024",
            "--stop-after",
            "4096",
        ],
        &r,
        &[],
    );
    // A flipped bit in the newest checkpoint's weights, and debris of an interrupted write.
    let w = r.join("checkpoint/model.safetensors");
    let mut bytes = std::fs::read(&w).unwrap();
    let n = bytes.len() - 5;
    bytes[n] ^= 1;
    std::fs::write(&w, bytes).unwrap();
    std::fs::create_dir_all(r.join(".checkpoint.tmp99999/x")).unwrap();
    std::fs::create_dir_all(r.join("checkpoints/.step_0000009999.tmp99999")).unwrap();
    let o = taper(&["train", "--resume", p(&r)], &[]);
    assert!(o.status.success(), "{}", stderr(&o));
    let e = stderr(&o);
    assert!(
        e.contains("passing over a damaged checkpoint") && e.contains("checksum"),
        "{e}"
    );
    assert!(e.contains("resuming") && e.contains("step_0000004096"), "{e}");
    assert!(!r.join(".checkpoint.tmp99999").exists() && !r.join("checkpoints/.step_0000009999.tmp99999").exists());
    // The run went on from the intact periodic checkpoint to the end.
    let rows = metrics_without_timing(&r);
    assert!(
        rows.last().unwrap().contains("\"global_step\":8192"),
        "{:?}",
        rows.last()
    );
}

#[test]
fn resume_refuses_edited_files() {
    let d = tempfile::tempdir().unwrap();
    let r = d.path().join("R");
    train_into(&["--total-steps", "4096", "--stop-after", "2048"], &r, &[]);
    let cfg = r.join("config.toml");
    let text = std::fs::read_to_string(&cfg).unwrap();
    std::fs::write(&cfg, text.replace("learning_rate = 0.00025", "learning_rate = 0.001")).unwrap();
    assert_clean_error(
        &taper(&["train", "--resume", p(&r), "--quiet"], &[]),
        "learning_rate: 0.00025 -> 0.001",
    );
    std::fs::write(&cfg, &text).unwrap();
    let st = r.join("checkpoint/state.json");
    let s = std::fs::read_to_string(&st).unwrap();
    let mut v: serde_json::Value = serde_json::from_str(&s).unwrap();
    v["global_step"] = 3000.into();
    std::fs::write(&st, serde_json::to_string_pretty(&v).unwrap()).unwrap();
    assert_clean_error(&taper(&["train", "--resume", p(&r), "--quiet"], &[]), "was it edited?");
    std::fs::write(&st, &s).unwrap();
    // Taken on request.
    std::fs::write(&cfg, text.replace("learning_rate = 0.00025", "learning_rate = 0.001")).unwrap();
    train_ok(&["train", "--resume", p(&r), "--accept-config-edits", "--quiet"]);
}

#[test]
fn inputs_without_effect_and_unbounded_sizes_are_errors() {
    let d = tempfile::tempdir().unwrap();
    let out = d.path().join("never");
    let big = d.path().join("big.toml");
    std::fs::write(&big, "[ppo]\nnum_envs = 1000000000\n").unwrap();
    let wide = d.path().join("wide.toml");
    std::fs::write(&wide, "[ppo]\nhidden = [100000000, 100000000]\n").unwrap();
    let other = d.path().join("other.toml");
    std::fs::write(&other, "[ppo]\nlearning_rate = 0.001\n").unwrap();
    let cases: Vec<(Vec<&str>, &str)> = vec![
        (vec!["train", "--keep-last", "0"], "--keep-last"),
        (vec!["train", "--stop-after", "0"], "--stop-after"),
        (vec!["train", "--eval-every", "0"], "--eval-every"),
        (vec!["train", "--checkpoint-every", "0"], "--checkpoint-every"),
        (vec!["train", "--keep-last", "2"], "needs --checkpoint-every"),
        (vec!["train", "--seeds", "0..18446744073709551615"], "--seeds"),
        (vec!["train", "--seeds", "0..1000000000000"], "--seeds"),
        (vec!["train", "--config", p(&big)], "num_envs is 1000000000"),
        (
            vec!["train", "--config", p(&wide)],
            "at most 16 layers of at most 16384 units",
        ),
        (
            vec!["train", "--algo", "mappo", "--config", p(&other)],
            "[ppo] configures ppo, but this run is mappo",
        ),
        (
            vec![
                "train",
                "--env",
                "InventoryLostSales-v0",
                "--env-kwargs",
                "lead_time=3",
                "--lead-time",
                "2",
            ],
            "contradicts",
        ),
        (vec!["train", "--algo", "dqn"], "ppo, hdpo, mappo, ippo, maddpg"),
        (
            vec!["solve", "--env", "FrozenLake-v1", "--env-kwargs", "foo=1"],
            "takes no argument `foo`",
        ),
        (
            vec!["solve", "--env", "InventoryWarehouse-v0", "--stores", "50"],
            "at most 20 stores",
        ),
        (
            vec!["solve", "--env", "InventoryLostSales-v0", "--demand-mean", "1e-300"],
            "[0.01, 50]",
        ),
    ];
    for (mut args, needle) in cases {
        if args[0] == "train" {
            args.extend(["--out", p(&out), "--quiet"]);
        }
        assert_clean_error(&taper(&args, &[]), needle);
        assert!(!out.exists(), "{args:?} wrote {}", out.display());
    }
    let o = taper(&["train", "--resume", p(&out), "--seeds", "0..2"], &[]);
    assert!(!o.status.success());
    // eval and plot options that would change nothing.
    let r = d.path().join("R");
    train_into(&["--total-steps", "1024"], &r, &[]);
    assert_clean_error(&taper(&["eval", p(&r), "--warmup", "5"], &[]), "reports none");
    assert_clean_error(&taper(&["plot", p(&r), "--smooth", "0"], &[]), "--smooth");
    assert_clean_error(
        &taper(&["plot", p(&r), "--x", "nope"], &[]),
        "--x: unknown column `nope`",
    );
}
