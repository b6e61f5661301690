//! `--device` and `--backend`: every algorithm trains on the candle backend; a run resumes
//! exactly on the backend it was trained on and continues on the other (checkpoints do not
//! depend on where they were computed); devices that are absent or not compiled in are clean
//! errors that name the feature to build with.

use crate::common::*;

/// Each algorithm trains a short run with `--backend candle`, and its run folder evaluates
/// with `taper eval --json` (on the default fast path).
#[test]
fn every_algorithm_trains_with_the_candle_backend() {
    let d = tempfile::tempdir().unwrap();
    for (algo, env, steps, extra) in [
        ("ppo", "CartPole-v1", "1024", ""),
        ("ppo", "Pendulum-v1", "2048", ""),
        ("ippo", "SimpleSpread-v3", "3072", "--env-kwargs=max_cycles=25"),
        ("mappo", "SimpleSpread-v3", "3072", "--env-kwargs=max_cycles=25"),
        ("maddpg", "SimpleSpread-v3", "600", ""),
        ("hdpo", "InventoryLostSales-v0", "4", ""),
        ("hdpo", "InventoryWarehouse-v0", "2", ""),
    ] {
        let out = d.path().join(format!("{algo}-{env}"));
        let mut args = vec![
            "--algo",
            algo,
            "--env",
            env,
            "--total-steps",
            steps,
            "--backend",
            "candle",
        ];
        if !extra.is_empty() {
            args.push(extra);
        }
        train_into(&args, &out, &[]);
        let o = taper(&["eval", out.to_str().unwrap(), "--episodes", "2", "--json"], &[]);
        assert!(o.status.success(), "{algo} {env}: {}", stderr(&o));
        let v: serde_json::Value = serde_json::from_slice(&o.stdout).unwrap();
        assert!(v.get("episodes").is_some() || v.get("mean_return").is_some(), "{v}");
    }
}

/// On the candle backend, a run stopped half-way and resumed equals the straight run byte for
/// byte; a run stopped on one backend continues on the other.
#[test]
fn candle_runs_resume_exactly_and_move_between_backends() {
    let d = tempfile::tempdir().unwrap();
    let base = [
        "--env",
        "CartPole-v1",
        "--seed",
        "2",
        "--total-steps",
        "2048",
        "--backend",
        "candle",
    ];
    let (a, b) = (d.path().join("straight"), d.path().join("resumed"));
    train_into(&base, &a, &[]);
    train_into(&base, &b, &["--stop-after", "1024"]);
    train_ok(&[
        "train",
        "--resume",
        b.to_str().unwrap(),
        "--backend",
        "candle",
        "--quiet",
    ]);
    same_run(&a, &b);
    // Candle to fast, and fast to candle.
    for (first, then) in [("candle", "fast"), ("fast", "candle")] {
        let c = d.path().join(format!("{first}-{then}"));
        train_into(
            &["--env", "CartPole-v1", "--total-steps", "2048", "--backend", first],
            &c,
            &["--stop-after", "1024"],
        );
        train_ok(&["train", "--resume", c.to_str().unwrap(), "--backend", then, "--quiet"]);
        assert_eq!(metrics_without_timing(&c).len(), 4, "{first} then {then}");
    }
}

/// Bad devices and backends: one clean line each, naming the way out.
#[test]
fn bad_devices_are_clean_errors() {
    let d = tempfile::tempdir().unwrap();
    let out = d.path().join("x");
    let o = out.to_str().unwrap();
    for (flags, needle) in [
        (
            vec!["--device", "tpu"],
            "unknown device `tpu` (cpu, cuda, cuda:N, metal)",
        ),
        (vec!["--device", "cuda:x"], "unknown device `cuda:x`"),
        (vec!["--backend", "jax"], "unknown backend `jax` (fast, candle)"),
        #[cfg(not(feature = "cuda"))]
        (vec!["--device", "cuda"], "--features cuda"),
        #[cfg(not(feature = "cuda"))]
        (vec!["--device", "cuda:1", "--backend", "candle"], "--features cuda"),
        #[cfg(not(feature = "metal"))]
        (vec!["--device", "metal"], "--features metal"),
        (
            vec!["--device", "cuda", "--backend", "fast"],
            "the fast backend runs on the CPU only",
        ),
    ] {
        let mut args = vec!["train", "--total-steps", "512", "--out", o, "--quiet"];
        args.extend(flags.iter().copied());
        assert_clean_error(&taper(&args, &[]), needle);
        assert!(!out.exists(), "{flags:?} left a folder");
    }
    let cfg = d.path().join("c.toml");
    std::fs::write(&cfg, "device = \"gpu\"\n").unwrap();
    assert_clean_error(
        &taper(
            &["train", "--config", cfg.to_str().unwrap(), "--out", o, "--quiet"],
            &[],
        ),
        "unknown device `gpu`",
    );
    // The recurrent networks run on the fast path only.
    std::fs::write(&cfg, "algo = \"mappo\"\n[mappo]\nnetwork = \"gru\"\n").unwrap();
    assert_clean_error(
        &taper(
            &[
                "train",
                "--config",
                cfg.to_str().unwrap(),
                "--backend",
                "candle",
                "--total-steps",
                "512",
                "--out",
                o,
                "--quiet",
            ],
            &[],
        ),
        "the candle backend or a device with the GRU network",
    );
    assert!(!out.exists(), "the GRU on candle left a folder");
}

/// A run trained on a CUDA device resumes and evaluates on the CPU, and the reverse. Built
/// with `--features cuda` only; `scripts/gpu-check.sh` runs it.
#[cfg(feature = "cuda")]
#[test]
fn cuda_runs_move_to_the_cpu_and_back() {
    let d = tempfile::tempdir().unwrap();
    for (first, then) in [("cuda:0", "cpu"), ("cpu", "cuda:0")] {
        let c = d.path().join(format!("{first}-{then}"));
        train_into(
            &["--env", "CartPole-v1", "--total-steps", "2048", "--device", first],
            &c,
            &["--stop-after", "1024"],
        );
        train_ok(&["train", "--resume", c.to_str().unwrap(), "--device", then, "--quiet"]);
        assert_eq!(metrics_without_timing(&c).len(), 4, "{first} then {then}");
        let o = taper(&["eval", c.to_str().unwrap(), "--episodes", "2", "--json"], &[]);
        assert!(o.status.success(), "{}", stderr(&o));
    }
}
