//! `taper train --resume`: exact resume after an interruption or a crash, periodic checkpoints, evaluation during training.

use crate::common::*;

/// A run interrupted at N steps and resumed to 2N equals the straight 2N run: byte-identical
/// weights and identical metrics rows (timing columns aside), for discrete PPO and for
/// continuous PPO with observation and reward normalisation.
#[test]
fn exact_resume_after_interruption() {
    let d = tempfile::tempdir().unwrap();
    for (env, total, half) in [("CartPole-v1", "8192", "4096"), ("Pendulum-v1", "8192", "4096")] {
        let a = d.path().join(format!("{env}-straight"));
        let b = d.path().join(format!("{env}-resumed"));
        train_into(&["--env", env, "--seed", "3", "--total-steps", total], &a, &[]);
        train_into(
            &[
                "--env",
                env,
                "--seed",
                "3",
                "--total-steps",
                total,
                "--stop-after",
                half,
            ],
            &b,
            &[],
        );
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
    train_into(&["--config", c, "--total-steps", "6144"], &a, &[]);
    train_into(&["--config", c, "--total-steps", "3072"], &b, &[]);
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
    train_into(&["--total-steps", "8192"], &a, &[]);
    train_into(
        &[
            "--total-steps",
            "8192",
            "--checkpoint-every",
            "2048",
            "--keep-last",
            "2",
        ],
        &c,
        &[],
    );
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
    train_into(&["--total-steps", "2048", "--stop-after", "1024"], &a, &[]);
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

/// Periodic evaluation writes evaluations.jsonl and best/, and does not change training.
#[test]
fn eval_callback_keeps_the_best() {
    let d = tempfile::tempdir().unwrap();
    let a = d.path().join("a");
    let b = d.path().join("b");
    train_into(&["--total-steps", "8192"], &a, &[]);
    train_into(
        &["--total-steps", "8192", "--eval-every", "2048", "--eval-episodes", "3"],
        &b,
        &[],
    );
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

/// PPO with an HL-Gauss value head (set in the config file): the head is written back into
/// the run's `config.toml`, the critic's checkpoint has one output per bin, a run interrupted
/// and resumed equals the straight run, and `eval --json` reads the run back.
#[test]
fn hl_gauss_value_head_resumes_exactly_and_evaluates() {
    let d = tempfile::tempdir().unwrap();
    let cfg = d.path().join("hl.toml");
    std::fs::write(
        &cfg,
        "algo = \"ppo\"\nenv = \"CartPole-v1\"\n\n[ppo.value_head]\nkind = \"hl_gauss\"\nmin = 0.0\nmax = 100.0\n",
    )
    .unwrap();
    let (a, b) = (d.path().join("straight"), d.path().join("resumed"));
    let base = [
        "--config",
        cfg.to_str().unwrap(),
        "--seed",
        "2",
        "--total-steps",
        "4096",
    ];
    train_into(&base, &a, &[]);
    train_into(&base, &b, &["--stop-after", "2048"]);
    train_ok(&["train", "--resume", b.to_str().unwrap(), "--quiet"]);
    same_run(&a, &b);
    let written = std::fs::read_to_string(a.join("config.toml")).unwrap();
    assert!(
        written.contains("kind = \"hl_gauss\"") && written.contains("bins = 51"),
        "{written}"
    );
    let o = taper(&["eval", a.to_str().unwrap(), "--episodes", "2", "--json"], &[]);
    assert!(o.status.success(), "{}", stderr(&o));
    let j: serde_json::Value = serde_json::from_slice(&o.stdout).unwrap();
    assert!(j["mean_return"].as_f64().is_some(), "{j}");
    // A support that cannot hold any return is refused before training.
    std::fs::write(
        &cfg,
        "algo = \"ppo\"\n\n[ppo.value_head]\nkind = \"hl_gauss\"\nmin = 5.0\nmax = 5.0\n",
    )
    .unwrap();
    let o = taper(
        &[
            "train",
            "--config",
            cfg.to_str().unwrap(),
            "--out",
            d.path().join("bad").to_str().unwrap(),
            "--quiet",
        ],
        &[],
    );
    assert_clean_error(&o, "value_head");
}

/// The SAC family through the CLI: for each of `sac`, `dsac-t` and `stac`, and SAC with the
/// categorical and the flow critics, a run interrupted
/// and resumed (replay buffer, target networks, α and the random streams from the checkpoint)
/// equals the straight run, with periodic evaluations; `eval --json` reads it back; bad
/// settings and a discrete env are clean errors.
#[test]
fn sac_family_resumes_exactly_and_evaluates() {
    let d = tempfile::tempdir().unwrap();
    // SAC with twin HL-Gauss critics: the same learner with `critic = "categorical"`.
    let hl = "critic = \"categorical\"\n[sac.q_support]\nmin = -1700.0\nmax = 200.0\nbins = 51\nencoding = { hl_gauss = { sigma_ratio = 0.75 } }\n";
    // SAC with twin flow-matching critics, floq's settings but for fewer samples and steps.
    let flow =
        "critic = \"flow\"\n[sac.flow]\nsteps = 2\nsamples = 2\nnoise = [-163.0, 0.0]\nsupport = [-1631.0, 1.0]\n";
    for (name, algo, extra) in [
        ("sac", "sac", ""),
        ("dsac-t", "dsac-t", ""),
        ("stac", "stac", ""),
        ("sac-hl", "sac", hl),
        ("sac-flow", "sac", flow),
    ] {
        let cfg = d.path().join(format!("{name}.toml"));
        std::fs::write(
            &cfg,
            format!(
                "algo = \"{algo}\"\nenv = \"Pendulum-v1\"\n\n[{algo}]\nbatch_size = 32\nlearning_starts = 200\nhidden = [32, 32]\nlog_every = 250\n{extra}"
            ),
        )
        .unwrap();
        let (a, b) = (d.path().join(format!("{name}-a")), d.path().join(format!("{name}-b")));
        let base = [
            "--config",
            cfg.to_str().unwrap(),
            "--seed",
            "3",
            "--total-steps",
            "1000",
            "--eval-every",
            "500",
            "--eval-episodes",
            "1",
        ];
        train_into(&base, &a, &[]);
        train_into(&base, &b, &["--stop-after", "500"]);
        train_ok(&["train", "--resume", b.to_str().unwrap(), "--quiet"]);
        same_run(&a, &b);
        let evals = |p: &std::path::Path| std::fs::read_to_string(p.join("evaluations.jsonl")).unwrap();
        assert_eq!(evals(&a), evals(&b), "{name}");
        assert_eq!(evals(&a).lines().count(), 2, "{name}");
        assert!(b.join("checkpoint/replay.safetensors").exists(), "{name}");
        let o = taper(&["eval", a.to_str().unwrap(), "--episodes", "2", "--json"], &[]);
        assert!(o.status.success(), "{name}: {}", stderr(&o));
        let j: serde_json::Value = serde_json::from_slice(&o.stdout).unwrap();
        assert!(j["mean_return"].as_f64().is_some(), "{name}: {j}");
    }
    let bad = |text: &str, field: &str| {
        let cfg = d.path().join("bad.toml");
        std::fs::write(&cfg, text).unwrap();
        let o = taper(
            &[
                "train",
                "--config",
                cfg.to_str().unwrap(),
                "--out",
                d.path().join("bad").to_str().unwrap(),
                "--quiet",
            ],
            &[],
        );
        assert_clean_error(&o, field);
    };
    bad("algo = \"dsac-t\"\n[dsac-t]\ntau = 0.0\n", "tau");
    bad("algo = \"sac\"\n[sac]\nbuffer_size = 10\n", "buffer_size");
    bad("algo = \"stac\"\n[stac]\nbeta = -1.0\n", "beta");
    bad("algo = \"sac\"\n[sac]\ncritic = \"categorical\"\n", "q_support");
    bad(
        "algo = \"sac\"\n[sac]\ncritic = \"categorical\"\n[sac.q_support]\nmin = 1.0\nmax = 0.0\nbins = 51\nencoding = \"two_hot\"\n",
        "q_support",
    );
    bad("algo = \"stac\"\n[stac]\ncritic_dropout = 1.0\n", "critic_dropout");
    bad("algo = \"sac\"\n[sac]\ncritic = \"flow\"\n", "flow");
    bad(
        "algo = \"sac\"\n[sac]\ncritic = \"flow\"\n[sac.flow]\nnoise = [0.0, -1.0]\nsupport = [-10.0, 1.0]\n",
        "noise",
    );
    bad(
        "algo = \"sac\"\n[sac]\ncritic = \"flow\"\n[sac.flow]\nsteps = 0\nnoise = [-1.0, 0.0]\nsupport = [-10.0, 1.0]\n",
        "steps",
    );
    bad(
        "algo = \"sac\"\n[sac]\n[sac.flow]\nnoise = [-1.0, 0.0]\nsupport = [-10.0, 1.0]\n",
        "flow",
    );
    bad("algo = \"sac\"\nenv = \"CartPole-v1\"\n", "Box");
}
