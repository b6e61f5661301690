//! `taper train`: a run folder, reproducibility at any thread count, and bad input as one-line errors.

use crate::common::*;

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

/// Learners whose passes are large enough to run as two blocks of rows on rayon's pool (SAC's
/// 256-row batches, MADDPG's 192-row shared batches), and MAPPO with the GRU network (whose
/// actor and critic passes run side by side), learn the same bits at 1 and 2 threads:
/// metrics and final weights.
#[test]
fn two_block_passes_same_bits_at_any_thread_count() {
    let d = tempfile::tempdir().unwrap();
    let cases: [(&str, &[&str], &str); 3] = [
        (
            "sac",
            &["--algo", "sac", "--env", "Pendulum-v1", "--total-steps", "700"],
            "[sac]\nlearning_starts = 300\nlog_every = 100\n",
        ),
        (
            "maddpg",
            &["--algo", "maddpg", "--total-steps", "2600"],
            "[maddpg]\nbatch_size = 64\nbuffer_size = 5000\nlearning_starts = 256\ntrain_every = 20\n",
        ),
        (
            "mappo-gru",
            &["--algo", "mappo", "--total-steps", "512"],
            "[mappo]\nnetwork = \"gru\"\nnum_envs = 4\nnum_steps = 64\n",
        ),
    ];
    for (name, args, config) in cases {
        let cfg = d.path().join(format!("{name}.toml"));
        std::fs::write(&cfg, config).unwrap();
        let mut runs = Vec::new();
        for threads in ["1", "2"] {
            let out = d.path().join(format!("{name}-{threads}"));
            let mut a: Vec<&str> = vec!["train", "--seed", "5", "--config", cfg.to_str().unwrap()];
            a.extend(args);
            a.extend(["--out", out.to_str().unwrap(), "--quiet"]);
            let o = taper(&a, &[("RAYON_NUM_THREADS", threads)]);
            assert!(o.status.success(), "{name}: {}", stderr(&o));
            let weights = std::fs::read(out.join("checkpoint/model.safetensors")).unwrap();
            runs.push((metrics_without_timing(&out), weights));
        }
        assert!(runs[0].0.len() >= 2, "{name}: {} rows", runs[0].0.len());
        assert!(runs[0] == runs[1], "{name}: 1 and 2 threads differ");
    }
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

/// A run's `config.toml` holds only the section its algorithm reads, and reads back: `--resume`
/// continues from it.
#[test]
fn config_toml_holds_only_the_algorithms_section() {
    let d = tempfile::tempdir().unwrap();
    let sections = ["[ppo]", "[hdpo]", "[mappo]", "[ippo]", "[maddpg]"];
    for (algo, env, steps) in [
        ("ppo", "CartPole-v1", "512"),
        ("maddpg", "SimpleSpread-v3", "100"),
        ("hdpo", "InventoryLostSales-v0", "2"),
    ] {
        let out = d.path().join(algo);
        let mut args = vec!["train", "--algo", algo, "--env", env, "--total-steps", steps];
        let small = d.path().join(format!("small-{algo}.toml"));
        let section = match algo {
            "hdpo" => "[hdpo]\nbatch_size = 64\ntrain_paths = 128\ndev_paths = 32\ntest_paths = 4\ntest_periods = 200\ntest_ignore = 50\neval_every = 1\n",
            "maddpg" => "[maddpg]\nbatch_size = 32\nlearning_starts = 64\n",
            _ => "",
        };
        std::fs::write(&small, section).unwrap();
        args.extend([
            "--config",
            small.to_str().unwrap(),
            "--out",
            out.to_str().unwrap(),
            "--quiet",
        ]);
        train_ok(&args);
        let text = std::fs::read_to_string(out.join("config.toml")).unwrap();
        for s in sections {
            assert_eq!(text.contains(s), s == format!("[{algo}]"), "{algo}: {s} in\n{text}");
        }
        assert!(text.contains(&format!("algo = \"{algo}\"")), "{text}");
    }
    // Another algorithm's section would be ignored: it is an error, and so is a typo.
    let bad = d.path().join("bad.toml");
    std::fs::write(&bad, "[mappo]\nnum_envs = 4\n").unwrap();
    assert_clean_error(
        &taper(&["train", "--config", bad.to_str().unwrap()], &[]),
        "[mappo] configures mappo, but this run is ppo",
    );
    std::fs::write(&bad, "algo = \"mappo\"\n[mappo]\nnum_envz = 4\n").unwrap();
    assert_clean_error(&taper(&["train", "--config", bad.to_str().unwrap()], &[]), "num_envz");
}
