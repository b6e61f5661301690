//! `taper train --algo grpo` on the sequence tasks: every variant and combination trains,
//! runs resume exactly, `eval --json` reports the accuracy on held-apart test prompts, the
//! warm start leaves rewards strictly between 0 and 1, and bad settings are clean errors.

use crate::common::*;

/// A small model and short schedule, so that each run takes about a second.
const SMALL: &str = "[env_kwargs]\nmin_len = 2\nmax_len = 4\n[grpo]\nsft_steps = 60\neval_every = 2\neval_prompts = 64\nprompts_per_step = 8\nnum_generations = 4\nd_model = 32\nd_ff = 64\nn_layers = 1\n";

/// The small config with `edit` applied (`(from, to)` replaced once), written to a file.
fn config(d: &std::path::Path, edit: (&str, &str)) -> String {
    let p = d.join(format!("grpo-{}.toml", edit.1.len()));
    std::fs::write(&p, SMALL.replacen(edit.0, edit.1, 1)).unwrap();
    p.display().to_string()
}

/// `taper train --algo grpo --env ENV --config CFG --total-steps STEPS FLAGS` into `out`.
fn train_grpo(env: &str, cfg: &str, steps: &str, flags: &[&str], out: &std::path::Path) {
    let mut args = vec!["--algo", "grpo", "--env", env, "--config", cfg, "--total-steps", steps];
    args.extend_from_slice(flags);
    train_into(&args, out, &[]);
}

#[test]
fn every_variant_trains_and_evaluates() {
    let d = tempfile::tempdir().unwrap();
    let cfg = config(d.path(), ("", ""));
    for flags in [
        &[][..],
        &["--loss-type", "dr_grpo", "--scale-rewards", "none"],
        &["--loss-type", "bnpo"],
        &["--dapo"],
        &["--d3s"],
        &["--adora"],
        &[
            "--dapo",
            "--d3s",
            "--adora",
            "--loss-type",
            "grpo",
            "--scale-rewards",
            "batch",
        ],
    ] {
        let out = d.path().join(flags.join("_"));
        train_grpo("SeqCopy-v0", &cfg, "128", flags, &out);
        let rows = metrics_without_timing(&out);
        assert_eq!(rows.len(), 2, "{flags:?}");
        let last: serde_json::Value = serde_json::from_str(rows.last().unwrap()).unwrap();
        for k in [
            "test_accuracy",
            "samples_trained",
            "tokens_trained",
            "loss",
            "kept_samples",
        ] {
            assert!(last[k].as_f64().is_some_and(f64::is_finite), "{flags:?} {k}: {last}");
        }
        // The warm start leaves the policy neither always wrong nor always right.
        let ws = last["warm_start_accuracy"].as_f64().unwrap();
        assert!(ws > 0.0 && ws < 1.0, "{flags:?}: warm start accuracy {ws}");
        if flags.contains(&"--d3s") {
            assert!(
                last["kept_samples"].as_f64().unwrap() < 1.0,
                "D³S keeps a subset early on"
            );
        }
        let o = taper(
            &[
                "eval",
                out.to_str().unwrap(),
                "--episodes",
                "16",
                "--deterministic",
                "--json",
            ],
            &[],
        );
        assert!(o.status.success(), "{}", stderr(&o));
        let v: serde_json::Value = serde_json::from_slice(&o.stdout).unwrap();
        let acc = v["accuracy"].as_f64().unwrap();
        assert!((0.0..=1.0).contains(&acc) && v["episodes"] == 16, "{v}");
    }
}

/// A run stopped half-way and resumed equals the straight run, byte for byte (weights, Adam's
/// moments, random streams), on the transformer's host kernels (the CPU's default) and on
/// candle's graph.
#[test]
fn grpo_resumes_exactly() {
    let d = tempfile::tempdir().unwrap();
    let cfg = config(d.path(), ("", ""));
    let base = [
        "--algo",
        "grpo",
        "--env",
        "SeqReverse-v0",
        "--config",
        &cfg,
        "--total-steps",
        "256",
        "--adora",
    ];
    for backend in ["fast", "candle"] {
        let (a, b) = (
            d.path().join(format!("straight-{backend}")),
            d.path().join(format!("resumed-{backend}")),
        );
        train_into(&base, &a, &["--backend", backend]);
        train_into(&base, &b, &["--backend", backend, "--stop-after", "128"]);
        assert_eq!(metrics_without_timing(&b).len(), 2);
        train_ok(&[
            "train",
            "--resume",
            b.to_str().unwrap(),
            "--backend",
            backend,
            "--quiet",
        ]);
        same_run(&a, &b);
    }
}

/// The warm start stops at the first check where the greedy accuracy on train prompts
/// reaches `sft_target_accuracy`, and takes every step when the target is out of reach.
#[test]
fn warm_start_stops_at_its_target_accuracy() {
    let d = tempfile::tempdir().unwrap();
    for (target, max_steps) in [(0.25, 600), (1.0, 40)] {
        let edit = format!("sft_steps = {max_steps}\nsft_target_accuracy = {target}\nsft_check_every = 20");
        let cfg = config(d.path(), ("sft_steps = 60", &edit));
        let out = d.path().join(format!("t{target}"));
        train_grpo("SeqCopy-v0", &cfg, "64", &[], &out);
        let rows = metrics_without_timing(&out);
        let last: serde_json::Value = serde_json::from_str(rows.last().unwrap()).unwrap();
        let steps = last["warm_start_steps"].as_f64().unwrap() as u64;
        let acc = last["warm_start_train_accuracy"].as_f64().unwrap();
        if target < 1.0 {
            assert!(
                steps < max_steps && steps.is_multiple_of(20) && steps > 0,
                "stopped after {steps} steps"
            );
            assert!(acc >= target, "stopped at train accuracy {acc}");
        } else {
            assert_eq!(steps, max_steps);
            assert!(acc < 1.0);
        }
    }
}

#[test]
fn bad_grpo_settings_are_clean_errors() {
    let d = tempfile::tempdir().unwrap();
    let out = d.path().join("x");
    let o = out.to_str().unwrap();
    for (edit, flags, needle) in [
        (
            ("num_generations = 4", "num_generations = 1"),
            &["--env", "SeqCopy-v0"][..],
            "at least 2 completions",
        ),
        (
            ("max_len = 4", "max_len = 4\nmax_new_tokens = 0"),
            &["--env", "SeqCopy-v0"][..],
            "token budget of 0",
        ),
        (
            ("", ""),
            &["--env", "SeqCopy-v0", "--loss-type", "sum"][..],
            "unknown variant `sum`",
        ),
        (
            ("sft_steps = 60", "sft_steps = 60\nsft_target_accuracy = 0"),
            &["--env", "SeqCopy-v0"][..],
            "sft_target_accuracy",
        ),
        (
            ("sft_steps = 60", "sft_steps = 60\nsft_check_every = 0"),
            &["--env", "SeqCopy-v0"][..],
            "sft_check_every",
        ),
        (
            ("[env_kwargs]\nmin_len = 2\nmax_len = 4\n", ""),
            &["--env", "CartPole-v1"][..],
            "grpo trains the sequence tasks",
        ),
    ] {
        let cfg = config(d.path(), edit);
        let mut args = vec!["train", "--algo", "grpo", "--config", &cfg, "--out", o, "--quiet"];
        args.extend_from_slice(flags);
        assert_clean_error(&taper(&args, &[]), needle);
        assert!(!out.exists());
    }
    assert_clean_error(
        &taper(&["train", "--algo", "ppo", "--d3s", "--out", o, "--quiet"], &[]),
        "configure grpo, not ppo",
    );
}
