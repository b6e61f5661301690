//! Data-parallel runs: a config's data blocks in one process, and (with the `mpi` feature)
//! the same run over as many processes under `mpirun`, equal bit for bit.

use crate::common::*;
use std::path::{Path, PathBuf};

/// Writes a config of `algo` on `env` with `[section] keys` into `dir/name.toml`.
fn config(dir: &Path, name: &str, head: &str, section: &str, keys: &str) -> PathBuf {
    let p = dir.join(format!("{name}.toml"));
    std::fs::write(&p, format!("{head}\n[{section}]\n{keys}\n")).unwrap();
    p
}

const PPO: &str = "algo = \"ppo\"\nenv = \"CartPole-v1\"\nseed = 3";

/// Every file of the runs' final checkpoints' `state.json` that describes the learner (the
/// streams, counters, episodes and envs of every block) is equal.
fn same_state(a: &Path, b: &Path) {
    let read = |d: &Path| -> serde_json::Value {
        serde_json::from_str(&std::fs::read_to_string(d.join("checkpoint/state.json")).unwrap()).unwrap()
    };
    let (sa, sb) = (read(a), read(b));
    for key in ["algo_state", "env_state", "global_step", "config"] {
        assert_eq!(
            sa[key],
            sb[key],
            "{key} differs between {} and {}",
            a.display(),
            b.display()
        );
    }
}

#[test]
fn two_blocks_in_one_process_resume_exactly() {
    let d = tempfile::tempdir().unwrap();
    let c = config(d.path(), "c", PPO, "ppo", "num_envs = 8\ndata_blocks = 2");
    let c = c.to_str().unwrap();
    let (whole, cut) = (d.path().join("whole"), d.path().join("cut"));
    let base = ["--config", c, "--total-steps", "6144", "--checkpoint-every", "2048"];
    train_into(&base, &whole, &[]);
    train_into(&base, &cut, &["--stop-after", "3072"]);
    train_ok(&["train", "--resume", cut.to_str().unwrap(), "--quiet"]);
    same_run(&whole, &cut);
    same_state(&whole, &cut);
    // `--data-parallel` in one process is the same run.
    let one = d.path().join("one");
    train_into(&base, &one, &["--data-parallel"]);
    same_run(&whole, &one);
}

#[test]
fn data_parallel_learning_refuses_what_it_cannot_do() {
    let d = tempfile::tempdir().unwrap();
    let out = d.path().join("r");
    let o = taper(
        &[
            "train",
            "--algo",
            "maddpg",
            "--env",
            "SimpleSpread-v3",
            "--data-parallel",
            "--out",
            out.to_str().unwrap(),
        ],
        &[],
    );
    assert_clean_error(&o, "built for ppo, ippo, mappo and grpo");
    let c = config(d.path(), "c", PPO, "ppo", "num_envs = 6\ndata_blocks = 4");
    let o = taper(
        &["train", "--config", c.to_str().unwrap(), "--out", out.to_str().unwrap()],
        &[],
    );
    assert_clean_error(&o, "must divide num_envs = 6");
    if cfg!(not(feature = "mpi")) {
        let o = taper(
            &["train", "--data-parallel", "--out", out.to_str().unwrap()],
            &[("OMPI_COMM_WORLD_SIZE", "2")],
        );
        assert_clean_error(&o, "without the `mpi` feature");
    }
    assert!(!out.exists(), "nothing written");
}

#[cfg(feature = "mpi")]
mod mpi {
    use super::*;

    /// Trains `args` over `np` processes into `out`; panics on failure.
    fn mpi_train(np: usize, args: &[&str], out: &Path) {
        let mut v: Vec<&str> = vec!["train", "--data-parallel"];
        v.extend(args);
        v.extend(["--out", out.to_str().unwrap(), "--quiet"]);
        let o = mpi_run(np, &v);
        assert!(o.status.success(), "{}", stderr(&o));
    }

    #[test]
    fn ppo_over_two_processes_equals_two_blocks_in_one() {
        let d = tempfile::tempdir().unwrap();
        let two = config(d.path(), "two", PPO, "ppo", "num_envs = 8");
        let one = config(d.path(), "one", PPO, "ppo", "num_envs = 8\ndata_blocks = 2");
        let (mpi, alone) = (d.path().join("mpi"), d.path().join("alone"));
        // Evaluations too: the writer's `best/` checkpoint is gathered from every process.
        let steps = [
            "--total-steps",
            "8192",
            "--checkpoint-every",
            "4096",
            "--eval-every",
            "2048",
            "--eval-episodes",
            "2",
        ];
        let mut args = vec!["--config", two.to_str().unwrap()];
        args.extend(steps);
        mpi_train(2, &args, &mpi);
        let mut args = vec!["--config", one.to_str().unwrap()];
        args.extend(steps);
        train_into(&args, &alone, &[]);
        same_run(&mpi, &alone);
        same_state(&mpi, &alone);
        let read = |d: &Path, f: &str| std::fs::read(d.join(f)).unwrap();
        for f in ["config.toml", "evaluations.jsonl", "best/model.safetensors"] {
            assert!(read(&mpi, f) == read(&alone, f), "{f} differs");
        }
    }

    #[test]
    fn mappo_over_two_processes_equals_two_blocks_in_one() {
        let d = tempfile::tempdir().unwrap();
        let head = "algo = \"mappo\"\nenv = \"SimpleSpread-v3\"\nseed = 5";
        let two = config(d.path(), "two", head, "mappo", "num_envs = 128");
        let one = config(d.path(), "one", head, "mappo", "num_envs = 128\ndata_blocks = 2");
        let (mpi, alone) = (d.path().join("mpi"), d.path().join("alone"));
        mpi_train(2, &["--config", two.to_str().unwrap(), "--total-steps", "32768"], &mpi);
        train_into(
            &["--config", one.to_str().unwrap(), "--total-steps", "32768"],
            &alone,
            &[],
        );
        same_run(&mpi, &alone);
        same_state(&mpi, &alone);
    }

    /// GRPO with DAPO's dynamic sampling (whose refills differ between the processes), cut
    /// and resumed over two processes, and resumed in one, equals two blocks in one process.
    #[test]
    fn grpo_over_two_processes_equals_two_blocks_in_one() {
        let d = tempfile::tempdir().unwrap();
        let head = "algo = \"grpo\"\nenv = \"SeqCopy-v0\"\nseed = 7";
        let keys = "learning_rate = 1e-3\nsft_steps = 100\nsft_batch = 16\nsft_target_accuracy = 1.0\n\
                    prompts_per_step = 4\nnum_generations = 8\neval_every = 2\neval_prompts = 16\ndapo = true";
        let two = config(d.path(), "two", head, "grpo", keys);
        let one = config(d.path(), "one", head, "grpo", &format!("{keys}\ndata_blocks = 2"));
        let (mpi, moved, alone) = (d.path().join("mpi"), d.path().join("moved"), d.path().join("alone"));
        let steps = ["--total-steps", "256", "--checkpoint-every", "128"];
        let mut cut = vec!["--config", two.to_str().unwrap()];
        cut.extend(steps);
        cut.extend(["--stop-after", "128"]);
        mpi_train(2, &cut, &mpi);
        mpi_train(2, &cut, &moved);
        let o = mpi_run(
            2,
            &["train", "--data-parallel", "--resume", mpi.to_str().unwrap(), "--quiet"],
        );
        assert!(o.status.success(), "{}", stderr(&o));
        train_ok(&["train", "--resume", moved.to_str().unwrap(), "--quiet"]);
        let mut args = vec!["--config", one.to_str().unwrap()];
        args.extend(steps);
        train_into(&args, &alone, &[]);
        for run in [&mpi, &moved] {
            same_run(run, &alone);
            same_state(run, &alone);
        }
    }

    #[test]
    fn a_run_resumes_over_its_processes_or_in_one_and_refuses_another_count() {
        let d = tempfile::tempdir().unwrap();
        let two = config(d.path(), "two", PPO, "ppo", "num_envs = 8");
        let two = two.to_str().unwrap();
        let (whole, cut, moved) = (d.path().join("whole"), d.path().join("cut"), d.path().join("moved"));
        let base = ["--config", two, "--total-steps", "8192", "--checkpoint-every", "2048"];
        mpi_train(2, &base, &whole);
        let mut stopped = base.to_vec();
        stopped.extend(["--stop-after", "4096"]);
        mpi_train(2, &stopped, &cut);
        mpi_train(2, &stopped, &moved);
        // Over three processes: refused by every process, before anything is written.
        let o = mpi_run(3, &["train", "--data-parallel", "--resume", cut.to_str().unwrap()]);
        assert!(!o.status.success());
        assert!(
            stderr(&o)
                .contains("has 2 data blocks, so it resumes over 2 processes (mpirun -np 2) or in one, not over 3"),
            "{}",
            stderr(&o)
        );
        let o = mpi_run(
            2,
            &["train", "--data-parallel", "--resume", cut.to_str().unwrap(), "--quiet"],
        );
        assert!(o.status.success(), "{}", stderr(&o));
        same_run(&whole, &cut);
        same_state(&whole, &cut);
        // The same run resumes in one process.
        train_ok(&["train", "--resume", moved.to_str().unwrap(), "--quiet"]);
        same_run(&whole, &moved);
    }
}
