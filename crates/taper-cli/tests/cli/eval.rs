//! `taper eval`: JSON, success rates, text rendering, recording, and broken checkpoints.

use crate::common::*;
use std::process::Command;

#[test]
fn eval_reports_success_on_gridworlds() {
    let d = tempfile::tempdir().unwrap();
    let out = d.path().join("fl");
    let o = taper(
        &[
            "train",
            "--env",
            "FrozenLake-v1",
            "--total-steps",
            "2048",
            "--out",
            out.to_str().unwrap(),
            "--quiet",
        ],
        &[],
    );
    assert!(o.status.success(), "{}", stderr(&o));
    let o = taper(
        &[
            "eval",
            out.to_str().unwrap(),
            "--episodes",
            "5",
            "--json",
            "--deterministic",
        ],
        &[],
    );
    let v: serde_json::Value = serde_json::from_slice(&o.stdout).unwrap();
    let s = v["success_rate"].as_f64().unwrap();
    assert!((0.0..=1.0).contains(&s));
    // The standard error of the mean return: sample std / √n.
    let (std, n) = (v["std_return"].as_f64().unwrap(), 5.0f64);
    let se = v["se_return"].as_f64().unwrap();
    assert!((se - std * (n / (n - 1.0)).sqrt() / n.sqrt()).abs() < 1e-12, "{se}");
    assert_clean_error(
        &taper(&["eval", out.to_str().unwrap(), "--exact"], &[]),
        "InventoryLostSales-v0",
    );
}

#[test]
fn eval_without_checkpoint() {
    let d = tempfile::tempdir().unwrap();
    assert_clean_error(
        &taper(&["eval", d.path().to_str().unwrap()], &[]),
        "no checkpoint found",
    );
}

#[test]
fn eval_render_and_record() {
    let d = tempfile::tempdir().unwrap();
    let fl = d.path().join("fl");
    train_into(&["--env", "FrozenLake-v1", "--total-steps", "1024"], &fl, &[]);
    let o = taper(
        &["eval", fl.to_str().unwrap(), "--episodes", "1", "--render", "ansi"],
        &[],
    );
    assert!(o.status.success(), "{}", stderr(&o));
    let out = String::from_utf8_lossy(&o.stdout);
    assert!(out.contains("episode 0") && out.contains("[S]"), "{out}");
    assert_clean_error(
        &taper(&["eval", fl.to_str().unwrap(), "--record", "x.gif"], &[]),
        "cannot be drawn",
    );
    let cp = d.path().join("cp");
    train_into(&["--total-steps", "1024"], &cp, &[]);
    assert_clean_error(
        &taper(&["eval", cp.to_str().unwrap(), "--render", "ansi"], &[]),
        "no text rendering",
    );
    let (gif, frames) = (d.path().join("ep.gif"), d.path().join("frames"));
    for target in [&gif, &frames] {
        let o = taper(
            &[
                "eval",
                cp.to_str().unwrap(),
                "--episodes",
                "1",
                "--record",
                target.to_str().unwrap(),
            ],
            &[],
        );
        assert!(o.status.success(), "{}", stderr(&o));
    }
    assert_eq!(&std::fs::read(&gif).unwrap()[..3], b"GIF");
    assert!(frames.join("frame_00000.png").exists());
}

/// Corrupted, truncated or foreign checkpoints give one clear line, and nothing is written.
#[test]
fn bad_checkpoints() {
    let d = tempfile::tempdir().unwrap();
    let a = d.path().join("a");
    train_into(&["--total-steps", "1024"], &a, &[]);
    let ck = a.join("checkpoint");
    let weights = std::fs::read(ck.join("model.safetensors")).unwrap();
    let state = std::fs::read_to_string(ck.join("state.json")).unwrap();
    // Truncated weights, and one flipped bit: the checksum in state.json catches both.
    std::fs::write(ck.join("model.safetensors"), &weights[..weights.len() / 2]).unwrap();
    assert_clean_error(&taper(&["eval", a.to_str().unwrap()], &[]), "damaged: its checksum");
    let mut flipped = weights.clone();
    let last = flipped.len() - 3;
    flipped[last] ^= 0x10;
    std::fs::write(ck.join("model.safetensors"), &flipped).unwrap();
    assert_clean_error(&taper(&["eval", a.to_str().unwrap()], &[]), "damaged: its checksum");
    // Without a checksum (an older checkpoint), truncation is still a clean error.
    let mut v: serde_json::Value = serde_json::from_str(&state).unwrap();
    v["checksums"] = serde_json::json!({});
    let no_sums = serde_json::to_string_pretty(&v).unwrap();
    std::fs::write(ck.join("state.json"), &no_sums).unwrap();
    std::fs::write(ck.join("model.safetensors"), &weights[..weights.len() / 2]).unwrap();
    assert_clean_error(&taper(&["eval", a.to_str().unwrap()], &[]), "unreadable weights");
    std::fs::write(ck.join("state.json"), &state).unwrap();
    std::fs::write(ck.join("model.safetensors"), &weights).unwrap();
    // Corrupted state.
    std::fs::write(ck.join("state.json"), "{ not json").unwrap();
    assert_clean_error(&taper(&["eval", a.to_str().unwrap()], &[]), "unreadable state");
    // A checkpoint that claims another env: the model does not fit it.
    std::fs::write(
        ck.join("state.json"),
        state.replace("\"CartPole-v1\"", "\"Pendulum-v1\""),
    )
    .unwrap();
    assert_clean_error(
        &taper(&["eval", a.to_str().unwrap()], &[]),
        "weights do not match env `Pendulum-v1`",
    );
    // A checkpoint of an algorithm this taper does not have.
    std::fs::write(
        ck.join("state.json"),
        state.replace("\"algo\": \"ppo\"", "\"algo\": \"dqn\""),
    )
    .unwrap();
    assert_clean_error(&taper(&["eval", a.to_str().unwrap()], &[]), "is a `dqn` checkpoint");
    // Weights with other shapes (a 32-32 network) under a 64-64 state.
    std::fs::write(ck.join("state.json"), &state).unwrap();
    let cfg = d.path().join("small.toml");
    std::fs::write(&cfg, "[ppo]\nhidden = [32, 32]\n").unwrap();
    let b = d.path().join("b");
    train_into(&["--config", cfg.to_str().unwrap(), "--total-steps", "1024"], &b, &[]);
    std::fs::copy(b.join("checkpoint/model.safetensors"), ck.join("model.safetensors")).unwrap();
    assert_clean_error(&taper(&["eval", a.to_str().unwrap()], &[]), "damaged: its checksum");
    std::fs::write(ck.join("state.json"), &no_sums).unwrap();
    assert_clean_error(&taper(&["eval", a.to_str().unwrap()], &[]), "has shape");
    std::fs::write(ck.join("state.json"), &state).unwrap();
    // Missing weights.
    std::fs::remove_file(ck.join("model.safetensors")).unwrap();
    assert_clean_error(&taper(&["eval", a.to_str().unwrap()], &[]), "missing weights file");
    assert_eq!(
        std::fs::read_to_string(ck.join("state.json")).unwrap(),
        state,
        "eval writes nothing"
    );
    // Resuming from a corrupted checkpoint fails cleanly and leaves the run alone.
    std::fs::write(ck.join("state.json"), "garbage").unwrap();
    let before = std::fs::read(a.join("metrics.jsonl")).unwrap();
    assert!(!taper(
        &["train", "--resume", a.to_str().unwrap(), "--total-steps", "4096"],
        &[]
    )
    .status
    .success());
    assert_eq!(std::fs::read(a.join("metrics.jsonl")).unwrap(), before);
}

/// Output into a closed pipe ends quietly, without a panic message.
#[test]
fn closed_pipe_is_quiet() {
    use std::io::Read;
    use std::process::Stdio;
    let mut child = Command::new(env!("CARGO_BIN_EXE_taper"))
        .args(["solve", "--env", "InventoryLostSales-v0", "--lead-time", "3", "--json"])
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .unwrap();
    drop(child.stdout.take()); // the reader goes away at once
    let mut err = String::new();
    child.stderr.take().unwrap().read_to_string(&mut err).unwrap();
    child.wait().unwrap();
    assert!(!err.contains("panicked"), "{err}");
}

/// `eval --trace` writes every step's env state as JSON lines (RiskyPointMass: `[x, y,
/// penalised]`, positions in the unit square), one line after each reset and each step.
#[test]
fn eval_traces_every_state() {
    let d = tempfile::tempdir().unwrap();
    let run = d.path().join("stac");
    train_ok(&[
        "train",
        "--algo",
        "stac",
        "--env",
        "RiskyPointMass-v0",
        "--total-steps",
        "300",
        "--out",
        run.to_str().unwrap(),
        "--quiet",
    ]);
    let trace = d.path().join("trace.jsonl");
    let o = taper(
        &[
            "eval",
            run.to_str().unwrap(),
            "--episodes",
            "2",
            "--deterministic",
            "--json",
            "--trace",
            trace.to_str().unwrap(),
        ],
        &[],
    );
    assert!(o.status.success(), "{}", stderr(&o));
    let j: serde_json::Value = serde_json::from_slice(&o.stdout).unwrap();
    let lines: Vec<serde_json::Value> = std::fs::read_to_string(&trace)
        .unwrap()
        .lines()
        .map(|l| serde_json::from_str(l).unwrap())
        .collect();
    let steps = (j["mean_length"].as_f64().unwrap() * 2.0).round() as usize;
    assert_eq!(lines.len(), steps + 2, "one line per step and per reset");
    for l in &lines {
        let s = l["state"].as_array().unwrap();
        assert_eq!(s.len(), 3);
        assert!((0.0..=1.0).contains(&s[0].as_f64().unwrap()) && (0.0..=1.0).contains(&s[1].as_f64().unwrap()));
    }
    assert_eq!(
        (lines[0]["episode"].as_u64(), lines[0]["t"].as_u64()),
        (Some(0), Some(0))
    );
    assert_eq!(lines.last().unwrap()["episode"].as_u64(), Some(1));
}
