//! End-to-end tests of the `taper` binary.

use std::path::Path;
use std::process::{Command, Output};

fn taper(args: &[&str], envs: &[(&str, &str)]) -> Output {
    let mut c = Command::new(env!("CARGO_BIN_EXE_taper"));
    c.args(args);
    for (k, v) in envs {
        c.env(k, v);
    }
    c.output().expect("run taper")
}

fn stderr(o: &Output) -> String {
    String::from_utf8_lossy(&o.stderr).to_string()
}

/// A failing command prints exactly one line, starting with `error:`, and exits non-zero.
fn assert_clean_error(o: &Output, needle: &str) {
    assert!(!o.status.success(), "expected failure");
    let e = stderr(o);
    let lines: Vec<&str> = e.lines().collect();
    assert_eq!(lines.len(), 1, "one line expected, got: {e}");
    assert!(lines[0].starts_with("error: "), "{e}");
    assert!(lines[0].contains(needle), "`{needle}` not in: {e}");
}

#[test]
fn train_then_eval_json() {
    let d = tempfile::tempdir().unwrap();
    let out = d.path().join("run");
    let o = taper(
        &[
            "train",
            "--total-steps",
            "4096",
            "--out",
            out.to_str().unwrap(),
            "--quiet",
        ],
        &[],
    );
    assert!(o.status.success(), "{}", stderr(&o));
    for f in [
        "config.toml",
        "metrics.jsonl",
        "metrics.csv",
        "checkpoint/model.safetensors",
        "checkpoint/state.json",
    ] {
        assert!(out.join(f).exists(), "{f} missing");
    }
    let rows = std::fs::read_to_string(out.join("metrics.jsonl")).unwrap();
    assert_eq!(rows.lines().count(), 8, "4096 / 512 updates");
    let csv = std::fs::read_to_string(out.join("metrics.csv")).unwrap();
    assert_eq!(csv.lines().count(), 9);
    let o = taper(&["eval", out.to_str().unwrap(), "--episodes", "3", "--json"], &[]);
    assert!(o.status.success(), "{}", stderr(&o));
    let v: serde_json::Value = serde_json::from_slice(&o.stdout).unwrap();
    assert_eq!(v["episodes"], 3);
    assert!(v["mean_return"].as_f64().unwrap() > 0.0);
    assert!(v["std_return"].as_f64().is_some());
    assert!(v["success_rate"].is_null());
}

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
}

fn metrics_without_timing(dir: &Path) -> Vec<String> {
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

/// Same seed, same metrics, whatever the thread count.
#[test]
fn same_seed_same_metrics_at_any_thread_count() {
    let d = tempfile::tempdir().unwrap();
    let mut runs = Vec::new();
    for (i, threads) in ["1", "2", "2"].iter().enumerate() {
        let out = d.path().join(format!("r{i}"));
        let o = taper(
            &[
                "train",
                "--env",
                "Pendulum-v1",
                "--seed",
                "7",
                "--total-steps",
                "8192",
                "--out",
                out.to_str().unwrap(),
                "--quiet",
            ],
            &[("RAYON_NUM_THREADS", threads)],
        );
        assert!(o.status.success(), "{}", stderr(&o));
        runs.push(metrics_without_timing(&out));
    }
    assert_eq!(runs[0].len(), 4);
    assert_eq!(runs[0], runs[1]);
    assert_eq!(runs[1], runs[2]);
    // And the raw files differ only in the timing columns: same number of bytes per row is
    // not required, but a different seed must give different numbers.
    let out = d.path().join("other");
    let o = taper(
        &[
            "train",
            "--env",
            "Pendulum-v1",
            "--seed",
            "8",
            "--total-steps",
            "8192",
            "--out",
            out.to_str().unwrap(),
            "--quiet",
        ],
        &[],
    );
    assert!(o.status.success());
    assert_ne!(metrics_without_timing(&out), runs[0]);
}

#[test]
fn unknown_env_and_algo() {
    let d = tempfile::tempdir().unwrap();
    let out = d.path().join("x");
    assert_clean_error(
        &taper(&["train", "--env", "NoSuchEnv-v9", "--out", out.to_str().unwrap()], &[]),
        "unknown env id `NoSuchEnv-v9`",
    );
    assert_clean_error(
        &taper(&["train", "--algo", "dqn-nope", "--out", out.to_str().unwrap()], &[]),
        "unknown algo `dqn-nope`",
    );
    assert!(!out.exists(), "nothing written on bad input");
}

#[test]
fn malformed_toml() {
    let d = tempfile::tempdir().unwrap();
    let cfg = d.path().join("bad.toml");
    std::fs::write(&cfg, "[ppo\nlearning_rate = ").unwrap();
    assert_clean_error(&taper(&["train", "--config", cfg.to_str().unwrap()], &[]), "bad.toml");
    std::fs::write(&cfg, "[ppo]\nlearnin_rate = 0.1\n").unwrap();
    assert_clean_error(
        &taper(&["train", "--config", cfg.to_str().unwrap()], &[]),
        "learnin_rate",
    );
}

#[test]
fn invalid_hyperparameters() {
    let d = tempfile::tempdir().unwrap();
    let cfg = d.path().join("c.toml");
    for (body, needle) in [
        ("[ppo]\nnum_minibatches = 3\n", "num_minibatches"),
        ("[ppo]\nlearning_rate = -0.001\n", "learning_rate"),
        ("[ppo]\ngamma = 1.5\n", "gamma"),
        ("[ppo]\ngamma = -0.1\n", "gamma"),
    ] {
        std::fs::write(&cfg, body).unwrap();
        assert_clean_error(
            &taper(
                &[
                    "train",
                    "--config",
                    cfg.to_str().unwrap(),
                    "--out",
                    d.path().join("o").to_str().unwrap(),
                ],
                &[],
            ),
            needle,
        );
    }
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
fn envs_lists_the_registry() {
    let o = taper(&["envs"], &[]);
    assert!(o.status.success());
    let s = String::from_utf8_lossy(&o.stdout);
    for id in ["CartPole-v1", "Pendulum-v1", "FrozenLake-v1", "CliffWalking-v1"] {
        assert!(s.contains(id));
    }
}

/// A documented default cell ("2.5e-4 / 3e-4", "[64, 64]", "true", "unset") against a value.
fn cell_matches(cell: &str, v: &serde_json::Value) -> bool {
    let cell = cell.trim();
    if cell == "unset" {
        return v.is_null();
    }
    match (serde_json::from_str::<serde_json::Value>(cell), v) {
        (Ok(serde_json::Value::Number(a)), serde_json::Value::Number(b)) => {
            let (a, b) = (a.as_f64().unwrap(), b.as_f64().unwrap());
            (a - b).abs() <= 1e-6 * b.abs().max(1e-12)
        }
        (Ok(a), b) => &a == b,
        (Err(_), _) => false,
    }
}

/// The documented default of every key equals the config structs' defaults (the first value is
/// the discrete / `Default` one, the second, after " / ", the continuous one).
#[test]
fn docs_defaults_match_the_config_structs() {
    let docs = std::fs::read_to_string(concat!(env!("CARGO_MANIFEST_DIR"), "/../../docs/cli.md")).unwrap();
    let (ppo_docs, hdpo_docs) = docs.split_once("## HDPO configuration keys").unwrap();
    let check = |section: &str, defaults: &[serde_json::Value]| {
        let obj = defaults[0].as_object().unwrap();
        for key in obj.keys() {
            let row = section
                .lines()
                .find(|l| l.starts_with(&format!("| `{key}` |")))
                .unwrap();
            let cell = row.split('|').nth(2).unwrap();
            let parts: Vec<&str> = cell.split(" / ").collect();
            for (i, d) in defaults.iter().enumerate() {
                let part = parts.get(i).or(parts.first()).unwrap();
                let part = part.split(" (").next().unwrap();
                assert!(
                    cell_matches(part, &d[key]),
                    "docs/cli.md says `{key}` = `{part}`, the code says {}",
                    d[key]
                );
            }
        }
    };
    use taper::algos::ppo::PpoConfig;
    check(
        ppo_docs,
        &[
            serde_json::to_value(PpoConfig::default()).unwrap(),
            serde_json::to_value(PpoConfig::continuous()).unwrap(),
        ],
    );
    check(
        hdpo_docs,
        &[
            serde_json::to_value(taper::algos::hdpo::HdpoConfig::default()).unwrap(),
            serde_json::to_value(taper::algos::hdpo::HdpoConfig::for_network()).unwrap(),
        ],
    );
}

/// The configuration reference in docs/cli.md lists every PPO key, so it cannot drift.
#[test]
fn docs_list_every_ppo_key() {
    let docs = std::fs::read_to_string(concat!(env!("CARGO_MANIFEST_DIR"), "/../../docs/cli.md")).unwrap();
    let c = taper::algos::ppo::PpoConfig {
        target_kl: Some(0.1),
        ..Default::default()
    };
    let v = serde_json::to_value(&c).unwrap();
    for key in v.as_object().unwrap().keys() {
        assert!(
            docs.contains(&format!("| `{key}` |")),
            "docs/cli.md does not document `{key}`"
        );
    }
}

fn train_ok(args: &[&str]) {
    let o = taper(args, &[]);
    assert!(o.status.success(), "{:?}: {}", args, stderr(&o));
}

fn same_run(a: &Path, b: &Path) {
    let wa = std::fs::read(a.join("checkpoint/model.safetensors")).unwrap();
    let wb = std::fs::read(b.join("checkpoint/model.safetensors")).unwrap();
    assert!(wa == wb, "weights differ between {} and {}", a.display(), b.display());
    assert_eq!(metrics_without_timing(a), metrics_without_timing(b));
}

/// A run interrupted at N steps and resumed to 2N equals the straight 2N run: byte-identical
/// weights and identical metrics rows (timing columns aside), for discrete PPO and for
/// continuous PPO with observation and reward normalisation.
#[test]
fn exact_resume_after_interruption() {
    let d = tempfile::tempdir().unwrap();
    for (env, total, half) in [("CartPole-v1", "8192", "4096"), ("Pendulum-v1", "8192", "4096")] {
        let a = d.path().join(format!("{env}-straight"));
        let b = d.path().join(format!("{env}-resumed"));
        train_ok(&[
            "train",
            "--env",
            env,
            "--seed",
            "3",
            "--total-steps",
            total,
            "--out",
            a.to_str().unwrap(),
            "--quiet",
        ]);
        train_ok(&[
            "train",
            "--env",
            env,
            "--seed",
            "3",
            "--total-steps",
            total,
            "--stop-after",
            half,
            "--out",
            b.to_str().unwrap(),
            "--quiet",
        ]);
        let rows = std::fs::read_to_string(b.join("metrics.jsonl"))
            .unwrap()
            .lines()
            .count();
        assert!(
            rows < metrics_without_timing(&a).len(),
            "the first session stopped early"
        );
        train_ok(&["train", "--resume", b.to_str().unwrap(), "--quiet"]);
        same_run(&a, &b);
    }
}

/// Without LR annealing, a run of N steps resumed for N more equals a straight 2N run.
#[test]
fn exact_resume_extending_the_budget() {
    let d = tempfile::tempdir().unwrap();
    let cfg = d.path().join("c.toml");
    std::fs::write(&cfg, "[ppo]\nanneal_lr = false\n").unwrap();
    let a = d.path().join("a");
    let b = d.path().join("b");
    let c = cfg.to_str().unwrap();
    train_ok(&[
        "train",
        "--config",
        c,
        "--total-steps",
        "6144",
        "--out",
        a.to_str().unwrap(),
        "--quiet",
    ]);
    train_ok(&[
        "train",
        "--config",
        c,
        "--total-steps",
        "3072",
        "--out",
        b.to_str().unwrap(),
        "--quiet",
    ]);
    train_ok(&[
        "train",
        "--resume",
        b.to_str().unwrap(),
        "--total-steps",
        "6144",
        "--quiet",
    ]);
    same_run(&a, &b);
}

/// Periodic checkpoints, pruning, and resuming after a crash from the newest periodic one
/// (metrics rows written after it are replaced).
#[test]
fn periodic_checkpoints_and_crash_recovery() {
    let d = tempfile::tempdir().unwrap();
    let a = d.path().join("a");
    let c = d.path().join("c");
    train_ok(&[
        "train",
        "--total-steps",
        "8192",
        "--out",
        a.to_str().unwrap(),
        "--quiet",
    ]);
    train_ok(&[
        "train",
        "--total-steps",
        "8192",
        "--checkpoint-every",
        "2048",
        "--keep-last",
        "2",
        "--out",
        c.to_str().unwrap(),
        "--quiet",
    ]);
    let mut kept: Vec<String> = std::fs::read_dir(c.join("checkpoints"))
        .unwrap()
        .map(|e| e.unwrap().file_name().to_string_lossy().to_string())
        .collect();
    kept.sort();
    assert_eq!(kept, vec!["step_0000004096", "step_0000006144"]);
    // Simulate a crash after step 6144: the final checkpoint never got written.
    std::fs::remove_dir_all(c.join("checkpoint")).unwrap();
    train_ok(&["train", "--resume", c.to_str().unwrap(), "--quiet"]);
    same_run(&a, &c);
}

#[test]
fn resume_conflicts_are_named() {
    let d = tempfile::tempdir().unwrap();
    let a = d.path().join("a");
    train_ok(&[
        "train",
        "--total-steps",
        "2048",
        "--stop-after",
        "1024",
        "--out",
        a.to_str().unwrap(),
        "--quiet",
    ]);
    let p = a.to_str().unwrap();
    assert_clean_error(
        &taper(&["train", "--resume", p, "--env", "Pendulum-v1"], &[]),
        "--env Pendulum-v1 conflicts",
    );
    assert_clean_error(
        &taper(&["train", "--resume", p, "--seed", "9"], &[]),
        "--seed 9 conflicts",
    );
    assert_clean_error(
        &taper(&["train", "--resume", p, "--total-steps", "1024"], &[]),
        "already at step 1024",
    );
    let empty = d.path().join("empty");
    std::fs::create_dir_all(&empty).unwrap();
    assert!(!taper(&["train", "--resume", empty.to_str().unwrap()], &[])
        .status
        .success());
}

/// A diverging run stops with a message naming the update and the loss term, and keeps the
/// last good checkpoint.
#[test]
fn non_finite_loss_stops_training() {
    let d = tempfile::tempdir().unwrap();
    let cfg = d.path().join("c.toml");
    std::fs::write(
        &cfg,
        "[ppo]\nlearning_rate = 1e30\nmax_grad_norm = 1e30\nanneal_lr = false\n",
    )
    .unwrap();
    let a = d.path().join("a");
    let o = taper(
        &[
            "train",
            "--config",
            cfg.to_str().unwrap(),
            "--total-steps",
            "20480",
            "--checkpoint-every",
            "512",
            "--out",
            a.to_str().unwrap(),
            "--quiet",
        ],
        &[],
    );
    let e = stderr(&o);
    assert!(!o.status.success(), "expected divergence: {e}");
    assert!(e.contains("non-finite") && e.contains("at update"), "{e}");
    assert!(
        !a.join("checkpoint").exists(),
        "no final checkpoint from a diverged run"
    );
}

/// `--seeds` trains sibling runs that `taper plot` groups into one curve; the PNG is written.
#[test]
fn seeds_then_plot() {
    let d = tempfile::tempdir().unwrap();
    let base = d.path().join("multi");
    train_ok(&[
        "train",
        "--seeds",
        "0..3",
        "--total-steps",
        "2048",
        "--out",
        base.to_str().unwrap(),
        "--quiet",
    ]);
    for s in 0..3 {
        assert!(base.join(format!("s{s}/checkpoint/state.json")).exists());
    }
    // Each seed's run equals the same seed trained alone.
    let alone = d.path().join("alone");
    train_ok(&[
        "train",
        "--seed",
        "1",
        "--total-steps",
        "2048",
        "--out",
        alone.to_str().unwrap(),
        "--quiet",
    ]);
    assert_eq!(metrics_without_timing(&base.join("s1")), metrics_without_timing(&alone));
    let png = d.path().join("curve.png");
    let dirs: Vec<String> = (0..3)
        .map(|s| base.join(format!("s{s}")).to_string_lossy().to_string())
        .collect();
    let mut args = vec!["plot"];
    args.extend(dirs.iter().map(|s| s.as_str()));
    args.extend(["--out", png.to_str().unwrap(), "--smooth", "3"]);
    let o = taper(&args, &[]);
    assert!(o.status.success(), "{}", stderr(&o));
    let bytes = std::fs::read(&png).unwrap();
    assert_eq!(&bytes[1..4], b"PNG");
    let svg = d.path().join("curve.svg");
    let o = taper(
        &[
            "plot",
            &dirs[0],
            "--out",
            svg.to_str().unwrap(),
            "--metric",
            "value_loss",
        ],
        &[],
    );
    assert!(o.status.success(), "{}", stderr(&o));
    assert!(std::fs::read_to_string(&svg).unwrap().contains("<svg"));
    assert_clean_error(&taper(&["train", "--seeds", "3..3"], &[]), "--seeds");
    assert_clean_error(&taper(&["train", "--seeds", "1,x"], &[]), "--seeds");
}

#[test]
fn plot_errors_name_the_problem() {
    let d = tempfile::tempdir().unwrap();
    let empty = d.path().join("empty");
    std::fs::create_dir_all(&empty).unwrap();
    assert_clean_error(&taper(&["plot", empty.to_str().unwrap()], &[]), "has no metrics.jsonl");
    let a = d.path().join("a");
    train_ok(&[
        "train",
        "--total-steps",
        "1024",
        "--out",
        a.to_str().unwrap(),
        "--quiet",
    ]);
    let o = taper(
        &[
            "plot",
            a.to_str().unwrap(),
            "--metric",
            "nope",
            "--out",
            d.path().join("x.png").to_str().unwrap(),
        ],
        &[],
    );
    assert_clean_error(&o, "unknown metric `nope`");
    assert!(stderr(&o).contains("available:") && stderr(&o).contains("policy_loss"));
    assert_clean_error(
        &taper(&["plot", a.to_str().unwrap(), "--out", "x.jpg"], &[]),
        ".png or .svg",
    );
}

#[test]
fn eval_render_and_record() {
    let d = tempfile::tempdir().unwrap();
    let fl = d.path().join("fl");
    train_ok(&[
        "train",
        "--env",
        "FrozenLake-v1",
        "--total-steps",
        "1024",
        "--out",
        fl.to_str().unwrap(),
        "--quiet",
    ]);
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
    train_ok(&[
        "train",
        "--total-steps",
        "1024",
        "--out",
        cp.to_str().unwrap(),
        "--quiet",
    ]);
    assert_clean_error(
        &taper(&["eval", cp.to_str().unwrap(), "--render", "ansi"], &[]),
        "no text rendering",
    );
    let gif = d.path().join("ep.gif");
    let o = taper(
        &[
            "eval",
            cp.to_str().unwrap(),
            "--episodes",
            "1",
            "--record",
            gif.to_str().unwrap(),
        ],
        &[],
    );
    assert!(o.status.success(), "{}", stderr(&o));
    assert_eq!(&std::fs::read(&gif).unwrap()[..3], b"GIF");
    let frames = d.path().join("frames");
    let o = taper(
        &[
            "eval",
            cp.to_str().unwrap(),
            "--episodes",
            "1",
            "--record",
            frames.to_str().unwrap(),
        ],
        &[],
    );
    assert!(o.status.success(), "{}", stderr(&o));
    assert!(frames.join("frame_00000.png").exists());
}

/// Corrupted, truncated or foreign checkpoints give one clear line, and nothing is written.
#[test]
fn bad_checkpoints() {
    let d = tempfile::tempdir().unwrap();
    let a = d.path().join("a");
    train_ok(&[
        "train",
        "--total-steps",
        "1024",
        "--out",
        a.to_str().unwrap(),
        "--quiet",
    ]);
    let ck = a.join("checkpoint");
    let weights = std::fs::read(ck.join("model.safetensors")).unwrap();
    let state = std::fs::read_to_string(ck.join("state.json")).unwrap();
    // Truncated weights.
    std::fs::write(ck.join("model.safetensors"), &weights[..weights.len() / 2]).unwrap();
    assert_clean_error(&taper(&["eval", a.to_str().unwrap()], &[]), "unreadable weights");
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
    // A checkpoint of another algorithm.
    std::fs::write(
        ck.join("state.json"),
        state.replace("\"algo\": \"ppo\"", "\"algo\": \"sac\""),
    )
    .unwrap();
    assert_clean_error(&taper(&["eval", a.to_str().unwrap()], &[]), "is a `sac` checkpoint");
    // Weights with other shapes (a 32-32 network) under a 64-64 state.
    std::fs::write(ck.join("state.json"), &state).unwrap();
    let cfg = d.path().join("small.toml");
    std::fs::write(&cfg, "[ppo]\nhidden = [32, 32]\n").unwrap();
    let b = d.path().join("b");
    train_ok(&[
        "train",
        "--config",
        cfg.to_str().unwrap(),
        "--total-steps",
        "1024",
        "--out",
        b.to_str().unwrap(),
        "--quiet",
    ]);
    std::fs::copy(b.join("checkpoint/model.safetensors"), ck.join("model.safetensors")).unwrap();
    assert_clean_error(&taper(&["eval", a.to_str().unwrap()], &[]), "has shape");
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

/// Periodic evaluation writes evaluations.jsonl and best/, and does not change training.
#[test]
fn eval_callback_keeps_the_best() {
    let d = tempfile::tempdir().unwrap();
    let a = d.path().join("a");
    let b = d.path().join("b");
    train_ok(&[
        "train",
        "--total-steps",
        "8192",
        "--out",
        a.to_str().unwrap(),
        "--quiet",
    ]);
    train_ok(&[
        "train",
        "--total-steps",
        "8192",
        "--eval-every",
        "2048",
        "--eval-episodes",
        "3",
        "--out",
        b.to_str().unwrap(),
        "--quiet",
    ]);
    assert_eq!(
        metrics_without_timing(&a),
        metrics_without_timing(&b),
        "evaluation must not disturb training"
    );
    let rows: Vec<serde_json::Value> = std::fs::read_to_string(b.join("evaluations.jsonl"))
        .unwrap()
        .lines()
        .map(|l| serde_json::from_str(l).unwrap())
        .collect();
    assert_eq!(rows.len(), 4, "at 2048, 4096, 6144 and 8192");
    let best = rows
        .iter()
        .map(|r| r["mean_return"].as_f64().unwrap())
        .fold(f64::NEG_INFINITY, f64::max);
    let o = taper(
        &[
            "eval",
            b.join("best").to_str().unwrap(),
            "--episodes",
            "3",
            "--deterministic",
            "--json",
            "--seed",
            "1000000",
        ],
        &[],
    );
    assert!(o.status.success(), "{}", stderr(&o));
    let v: serde_json::Value = serde_json::from_slice(&o.stdout).unwrap();
    assert_eq!(
        v["mean_return"].as_f64().unwrap(),
        best,
        "best/ holds the best-evaluated policy"
    );
}

/// `taper solve` reproduces Zipkin (2008)'s 4.73 and prints the policy; limits are errors.
#[test]
fn solve_inventory_and_gridworlds() {
    let o = taper(
        &[
            "solve",
            "--env",
            "InventoryLostSales-v0",
            "--demand-mean",
            "5",
            "--lead-time",
            "4",
            "--p",
            "4",
            "--json",
        ],
        &[],
    );
    assert!(o.status.success(), "{}", stderr(&o));
    let v: serde_json::Value = serde_json::from_slice(&o.stdout).unwrap();
    assert!((v["optimal_cost"].as_f64().unwrap() - 4.73).abs() < 0.005);
    assert!(v["policy"]["orders"].as_array().unwrap().len() > 1000);
    assert!(v["capped_base_stock"]["cost"].as_f64().unwrap() >= v["optimal_cost"].as_f64().unwrap() - 0.02);
    let o = taper(
        &[
            "solve",
            "--env",
            "InventoryBacklog-v0",
            "--demand-std",
            "1.6",
            "--lead-time",
            "4",
            "--p",
            "9",
            "--json",
        ],
        &[],
    );
    let v: serde_json::Value = serde_json::from_slice(&o.stdout).unwrap();
    assert!((v["policy"]["level"].as_f64().unwrap() - 29.585).abs() < 1e-3);
    let o = taper(&["solve", "--env", "FrozenLake-v1", "--json"], &[]);
    let v: serde_json::Value = serde_json::from_slice(&o.stdout).unwrap();
    assert!((v["optimal_return"].as_f64().unwrap() - 0.7442).abs() < 5e-4);
    assert_clean_error(
        &taper(&["solve", "--env", "InventoryLostSales-v0", "--lead-time", "9"], &[]),
        "1 <= L <= 6",
    );
    assert_clean_error(
        &taper(&["solve", "--env", "InventoryLostSales-v0", "--h", "-1"], &[]),
        "holding cost must be >= 0",
    );
    assert_clean_error(
        &taper(&["solve", "--env", "InventoryBacklog-v0", "--p", "-2"], &[]),
        "penalty must be >= 0",
    );
    assert_clean_error(
        &taper(&["solve", "--env", "CartPole-v1"], &[]),
        "no solver for `CartPole-v1`",
    );
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

/// `taper train --algo hdpo` writes a run folder that `taper eval` reads, with `mean_cost`.
#[test]
fn hdpo_train_and_eval() {
    let d = tempfile::tempdir().unwrap();
    let cfg = d.path().join("small.toml");
    std::fs::write(
        &cfg,
        "[hdpo]\nbatch_size = 64\ntrain_paths = 256\ndev_paths = 128\ntest_paths = 16\ntest_periods = 600\ntest_ignore = 100\neval_every = 10\n",
    )
    .unwrap();
    let out = d.path().join("hd");
    train_ok(&[
        "train",
        "--algo",
        "hdpo",
        "--env",
        "InventoryLostSales-v0",
        "--lead-time",
        "2",
        "--p",
        "9",
        "--total-steps",
        "40",
        "--config",
        cfg.to_str().unwrap(),
        "--out",
        out.to_str().unwrap(),
        "--quiet",
    ]);
    assert_eq!(
        std::fs::read_to_string(out.join("metrics.jsonl"))
            .unwrap()
            .lines()
            .count(),
        4
    );
    assert!(std::fs::read_to_string(out.join("config.toml"))
        .unwrap()
        .contains("[hdpo]"));
    let o = taper(&["eval", out.to_str().unwrap(), "--episodes", "2", "--json"], &[]);
    assert!(o.status.success(), "{}", stderr(&o));
    let v: serde_json::Value = serde_json::from_slice(&o.stdout).unwrap();
    assert!(v["mean_cost"].as_f64().unwrap() > 4.0 && v["mean_cost"].as_f64().unwrap() < 30.0);
    assert_clean_error(
        &taper(&["train", "--algo", "hdpo", "--env", "CartPole-v1"], &[]),
        "inventory envs",
    );
    assert_clean_error(
        &taper(&["train", "--resume", out.to_str().unwrap()], &[]),
        "already at step 40 of a 40-step plan",
    );
    // Stopped half-way and resumed, the run equals the straight one.
    let half = d.path().join("half");
    let args = |out: &Path, extra: &[&str]| {
        let mut v: Vec<String> = [
            "train",
            "--algo",
            "hdpo",
            "--env",
            "InventoryLostSales-v0",
            "--lead-time",
            "2",
            "--p",
            "9",
            "--total-steps",
            "40",
            "--config",
            cfg.to_str().unwrap(),
            "--out",
            out.to_str().unwrap(),
            "--quiet",
        ]
        .iter()
        .map(|s| s.to_string())
        .collect();
        v.extend(extra.iter().map(|s| s.to_string()));
        v
    };
    let a = args(&half, &["--stop-after", "20"]);
    train_ok(&a.iter().map(String::as_str).collect::<Vec<_>>());
    assert_eq!(
        std::fs::read_to_string(half.join("metrics.jsonl"))
            .unwrap()
            .lines()
            .count(),
        2
    );
    train_ok(&["train", "--resume", half.to_str().unwrap(), "--quiet"]);
    same_run(&out, &half);
}

/// HDPO on a warehouse with 3 stores: train, eval `--json` with `mean_cost` per store and
/// period, and `solve` with the echelon base-stock heuristic; a policy for 3 stores refuses 4.
#[test]
fn hdpo_network_train_eval_solve() {
    let d = tempfile::tempdir().unwrap();
    let cfg = d.path().join("small.toml");
    std::fs::write(
        &cfg,
        "[hdpo]\nbatch_size = 32\ntrain_paths = 64\ndev_paths = 32\ntest_paths = 8\ntest_periods = 300\ntest_ignore = 100\neval_every = 5\ncontext = 8\n",
    )
    .unwrap();
    let out = d.path().join("wh");
    train_ok(&[
        "train",
        "--algo",
        "hdpo",
        "--env",
        "InventoryWarehouse-v0",
        "--stores",
        "3",
        "--total-steps",
        "10",
        "--config",
        cfg.to_str().unwrap(),
        "--out",
        out.to_str().unwrap(),
        "--quiet",
    ]);
    let o = taper(&["eval", out.to_str().unwrap(), "--episodes", "2", "--json"], &[]);
    assert!(o.status.success(), "{}", stderr(&o));
    let v: serde_json::Value = serde_json::from_slice(&o.stdout).unwrap();
    let c = v["mean_cost"].as_f64().unwrap();
    assert!(c > 1.0 && c < 100.0, "{c}");
    let o = taper(
        &["solve", "--env", "InventoryWarehouse-v0", "--stores", "3", "--json"],
        &[],
    );
    assert!(o.status.success(), "{}", stderr(&o));
    let v: serde_json::Value = serde_json::from_slice(&o.stdout).unwrap();
    assert_eq!(v["echelon_base_stock"]["levels"].as_array().unwrap().len(), 4);
    assert!(v["optimal_cost"].is_null());
    let o = taper(&["solve", "--env", "InventorySerial-v0", "--json"], &[]);
    assert!(o.status.success(), "{}", stderr(&o));
    let v: serde_json::Value = serde_json::from_slice(&o.stdout).unwrap();
    assert!(v["optimal_cost"].as_f64().unwrap() > 5.0);
    assert_clean_error(
        &taper(&["solve", "--env", "InventoryWarehouse-v0", "--stores", "0"], &[]),
        "at least one store",
    );
    assert_clean_error(
        &taper(&["solve", "--env", "InventoryWarehouse-v0", "--stores", "1001"], &[]),
        "at most 1000 stores",
    );
    assert_clean_error(
        &taper(&["solve", "--env", "InventoryLostSales-v0", "--stores", "3"], &[]),
        "has one store",
    );
}

/// MAPPO, IPPO and MADDPG train on SimpleSpread-v3 and `taper eval --json` reports the
/// per-agent return with the convention-free metrics; `--record` writes a GIF; N = 4 works.
#[test]
fn multi_agent_train_eval_record() {
    let d = tempfile::tempdir().unwrap();
    let cfg = d.path().join("small.toml");
    std::fs::write(
        &cfg,
        "[mappo]\nnum_envs = 4\nnum_steps = 32\n\n[ippo]\nnum_envs = 4\nnum_steps = 32\n\n[maddpg]\nbatch_size = 64\nlearning_starts = 200\ntrain_every = 50\n",
    )
    .unwrap();
    for (algo, agents) in [("mappo", "3"), ("ippo", "4"), ("maddpg", "3")] {
        let out = d.path().join(algo);
        train_ok(&[
            "train",
            "--algo",
            algo,
            "--agents",
            agents,
            "--total-steps",
            "512",
            "--config",
            cfg.to_str().unwrap(),
            "--out",
            out.to_str().unwrap(),
            "--quiet",
        ]);
        let rows = std::fs::read_to_string(out.join("metrics.jsonl")).unwrap();
        let last: serde_json::Value = serde_json::from_str(rows.lines().last().unwrap()).unwrap();
        for k in ["recent_return", "recent_min_distance", "recent_collisions"] {
            assert!(last[k].is_number(), "{algo}: {k} missing in {last}");
        }
        let gif = d.path().join(format!("{algo}.gif"));
        let o = taper(
            &[
                "eval",
                out.to_str().unwrap(),
                "--episodes",
                "3",
                "--json",
                "--record",
                gif.to_str().unwrap(),
            ],
            &[],
        );
        assert!(o.status.success(), "{}", stderr(&o));
        let v: serde_json::Value = serde_json::from_slice(&o.stdout).unwrap();
        assert_eq!(v["agents"].as_u64().unwrap().to_string(), agents);
        let r = v["mean_return"].as_f64().unwrap();
        assert!(r < 0.0 && r > -500.0, "{r}");
        assert!(v["mean_min_distance"].as_f64().unwrap() > 0.0);
        assert!(v["mean_collisions"].as_f64().unwrap() >= 0.0);
        assert!(std::fs::metadata(&gif).unwrap().len() > 1000);
    }
    assert_clean_error(
        &taper(&["train", "--algo", "mappo", "--env", "CartPole-v1"], &[]),
        "multi-agent algorithm",
    );
    assert_clean_error(
        &taper(&["train", "--algo", "ppo", "--env", "SimpleSpread-v3"], &[]),
        "multi-agent",
    );
    assert_clean_error(&taper(&["train", "--algo", "mappo", "--agents", "0"], &[]), "agents");
    assert_clean_error(
        &taper(&["train", "--resume", d.path().join("mappo").to_str().unwrap()], &[]),
        "already at step",
    );
}

/// A multi-agent run stopped half-way (`--stop-after`, with periodic checkpoints) and resumed
/// equals the straight run: byte-identical checkpoints (for MADDPG these hold the target
/// networks and the replay buffer too) and identical metrics rows, timing aside. MAPPO,
/// MADDPG per agent, and MADDPG with shared networks on the continuous env.
#[test]
fn multi_agent_exact_resume() {
    let d = tempfile::tempdir().unwrap();
    let cfg = d.path().join("small.toml");
    std::fs::write(
        &cfg,
        "[mappo]\nnum_envs = 4\nnum_steps = 32\n\n[maddpg]\nbatch_size = 64\nlearning_starts = 200\ntrain_every = 20\nshare_params = false\nhidden = [32, 32]\n",
    )
    .unwrap();
    let shared = d.path().join("shared.toml");
    std::fs::write(
        &shared,
        "env_kwargs = { continuous = true }\n[maddpg]\nbatch_size = 32\nlearning_starts = 200\ntrain_every = 20\nshare_params = true\n",
    )
    .unwrap();
    for (name, algo, c, total, half) in [
        ("mappo", "mappo", &cfg, "1024", "512"),
        ("maddpg", "maddpg", &cfg, "7500", "2500"),
        ("maddpg-shared", "maddpg", &shared, "7500", "2500"),
    ] {
        let a = d.path().join(format!("{name}-straight"));
        let b = d.path().join(format!("{name}-resumed"));
        let common = [
            "train",
            "--algo",
            algo,
            "--env",
            "SimpleSpread-v3",
            "--seed",
            "5",
            "--total-steps",
            total,
            "--config",
            c.to_str().unwrap(),
            "--quiet",
        ];
        let mut args = common.to_vec();
        args.extend(["--out", a.to_str().unwrap()]);
        train_ok(&args);
        let mut args = common.to_vec();
        args.extend([
            "--out",
            b.to_str().unwrap(),
            "--stop-after",
            half,
            "--checkpoint-every",
            "256",
            "--keep-last",
            "1",
        ]);
        train_ok(&args);
        let periodic: Vec<_> = std::fs::read_dir(b.join("checkpoints")).unwrap().flatten().collect();
        assert_eq!(periodic.len(), 1, "{name}: --keep-last 1 keeps one periodic checkpoint");
        assert!(
            metrics_without_timing(&b).len() < metrics_without_timing(&a).len(),
            "{name}: the first session stopped early"
        );
        train_ok(&["train", "--resume", b.to_str().unwrap(), "--quiet"]);
        same_run(&a, &b);
        if algo == "maddpg" {
            assert!(b.join("checkpoint/replay.safetensors").exists());
        }
    }
}

/// A MADDPG run that crashed after its newest periodic checkpoint resumes from it exactly,
/// and the metrics rows written after that checkpoint are replaced, even before learning
/// starts (when every row says update 0).
#[test]
fn maddpg_crash_recovery_replaces_later_rows() {
    let d = tempfile::tempdir().unwrap();
    let cfg = d.path().join("c.toml");
    std::fs::write(
        &cfg,
        "[maddpg]\nbatch_size = 32\nlearning_starts = 6000\ntrain_every = 20\nhidden = [32, 32]\n",
    )
    .unwrap();
    let (a, b) = (d.path().join("a"), d.path().join("b"));
    let run = |out: &Path, extra: &[&str]| {
        let mut args = vec![
            "train",
            "--algo",
            "maddpg",
            "--env",
            "SimpleSpread-v3",
            "--total-steps",
            "7500",
            "--config",
            cfg.to_str().unwrap(),
            "--quiet",
            "--out",
            out.to_str().unwrap(),
        ];
        args.extend_from_slice(extra);
        train_ok(&args);
    };
    run(&a, &[]);
    run(&b, &["--checkpoint-every", "2500"]);
    // The crash: only the checkpoint at step 2500 survives; the rows up to 7500 remain.
    std::fs::remove_dir_all(b.join("checkpoint")).unwrap();
    std::fs::remove_dir_all(b.join("checkpoints/step_0000005000")).unwrap();
    assert_eq!(metrics_without_timing(&b).len(), 3);
    train_ok(&["train", "--resume", b.to_str().unwrap(), "--quiet"]);
    same_run(&a, &b);
}
