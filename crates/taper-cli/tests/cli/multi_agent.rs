//! Multi-agent runs (MAPPO, IPPO, MADDPG): train, eval, record, exact resume.

use crate::common::*;

/// The part of a presets file that one algorithm reads: its top-level keys and its own
/// section (a run refuses other algorithms' sections), written beside it.
fn for_algo(presets: &std::path::Path, algo: &str) -> String {
    let text = std::fs::read_to_string(presets).unwrap();
    let mut keep = true;
    let mut out = String::new();
    for line in text.lines() {
        if let Some(name) = line.strip_prefix('[').and_then(|l| l.strip_suffix(']')) {
            keep = name == algo;
        }
        if keep {
            out.push_str(line);
            out.push('\n');
        }
    }
    let p = presets.with_file_name(format!(
        "{}-{algo}.toml",
        presets.file_stem().unwrap().to_string_lossy()
    ));
    std::fs::write(&p, out).unwrap();
    p.display().to_string()
}
use std::path::Path;

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
        train_into(
            &[
                "--algo",
                algo,
                "--agents",
                agents,
                "--total-steps",
                "512",
                "--config",
                &for_algo(&cfg, algo),
            ],
            &out,
            &[],
        );
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
/// MADDPG per agent, MADDPG with shared networks on the continuous env, and MAPPO with the
/// GRU network (whose rows' memory is part of the saved state); the resumed GRU run then
/// evaluates.
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
    let gru = d.path().join("gru.toml");
    std::fs::write(
        &gru,
        "[mappo]\nnetwork = \"gru\"\nnum_envs = 4\nnum_steps = 32\nhidden = [16, 24]\ncritic_hidden = [16, 24]\n",
    )
    .unwrap();
    for (name, algo, c, total, half) in [
        ("mappo", "mappo", &cfg, "1024", "512"),
        ("mappo-gru", "mappo", &gru, "1024", "640"),
        ("maddpg", "maddpg", &cfg, "7500", "2500"),
        ("maddpg-shared", "maddpg", &shared, "7500", "2500"),
    ] {
        let a = d.path().join(format!("{name}-straight"));
        let b = d.path().join(format!("{name}-resumed"));
        let c = for_algo(c, algo);
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
            &c,
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
        if name == "mappo-gru" {
            let state = std::fs::read_to_string(b.join("checkpoint/state.json")).unwrap();
            assert!(state.contains("last_done"), "the GRU memory is saved");
            let o = taper(&["eval", b.to_str().unwrap(), "--episodes", "2", "--json"], &[]);
            assert!(o.status.success(), "{}", stderr(&o));
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

/// Evaluation during training works for every algorithm the trainer drives: a MAPPO and a
/// MADDPG run with `--eval-every` write `evaluations.jsonl` and keep `best/`, and the
/// evaluation changes nothing the run learns.
#[test]
fn eval_every_works_for_multi_agent_runs() {
    let d = tempfile::tempdir().unwrap();
    let cfg = d.path().join("small.toml");
    std::fs::write(
        &cfg,
        "[mappo]\nnum_envs = 4\nnum_steps = 32\n\n[maddpg]\nbatch_size = 64\nlearning_starts = 200\ntrain_every = 50\n",
    )
    .unwrap();
    for (algo, total, every) in [("mappo", "1024", "256"), ("maddpg", "5100", "2500")] {
        let (a, b) = (d.path().join(format!("{algo}-a")), d.path().join(format!("{algo}-b")));
        let c = for_algo(&cfg, algo);
        let base = ["--algo", algo, "--total-steps", total, "--config", &c];
        train_into(&base, &a, &[]);
        train_into(&base, &b, &["--eval-every", every, "--eval-episodes", "3"]);
        let evals = std::fs::read_to_string(b.join("evaluations.jsonl")).unwrap();
        assert!(evals.lines().count() >= 2, "{algo}: {evals}");
        for l in evals.lines() {
            let v: serde_json::Value = serde_json::from_str(l).unwrap();
            assert_eq!(v["episodes"], 3);
            assert!(v["mean_return"].as_f64().unwrap() < 0.0);
        }
        assert!(b.join("best/model.safetensors").exists());
        same_run(&a, &b);
    }
}
