//! Sweeps: `--seeds` continued after an interruption, and launches over several processes
//! (MPI). The `mpi` feature's tests run the binary under `mpirun` (Open MPI).

use crate::common::*;
use std::path::Path;

/// Every seed's run in `a` equals the same seed's in `b`: weights and metrics.
fn same_sweep(a: &Path, b: &Path, seeds: std::ops::Range<u64>) {
    for s in seeds {
        same_run(&a.join(format!("s{s}")), &b.join(format!("s{s}")));
    }
}

#[test]
fn running_a_sweep_again_continues_it() {
    let d = tempfile::tempdir().unwrap();
    let (cut, whole) = (d.path().join("cut"), d.path().join("whole"));
    let base = ["--seeds", "0..3", "--total-steps", "4096", "--checkpoint-every", "1024"];
    train_into(&base, &whole, &[]);
    // The first session stops each run halfway; one seed's folder is then lost entirely.
    train_into(&base, &cut, &["--stop-after", "2048"]);
    std::fs::remove_dir_all(cut.join("s2")).unwrap();
    let o = taper(
        &[
            "train",
            "--seeds",
            "0..3",
            "--total-steps",
            "4096",
            "--checkpoint-every",
            "1024",
            "--out",
            cut.to_str().unwrap(),
        ],
        &[],
    );
    assert!(o.status.success(), "{}", stderr(&o));
    let e = stderr(&o);
    assert!(
        e.contains("seed 0 resumed and done") && e.contains("seed 2 done"),
        "{e}"
    );
    same_sweep(&cut, &whole, 0..3);
    // Once finished, a third time trains nothing.
    let again = taper(
        &[
            "train",
            "--seeds",
            "0..3",
            "--total-steps",
            "4096",
            "--out",
            cut.to_str().unwrap(),
        ],
        &[],
    );
    assert!(again.status.success(), "{}", stderr(&again));
    assert_eq!(
        stderr(&again).matches("finished already").count(),
        3,
        "{}",
        stderr(&again)
    );
    same_sweep(&cut, &whole, 0..3);
    // Another sweep's settings into the same folder are refused.
    assert_clean_error(
        &taper(
            &[
                "train",
                "--seeds",
                "0..3",
                "--total-steps",
                "8192",
                "--out",
                cut.to_str().unwrap(),
                "--quiet",
            ],
            &[],
        ),
        "runs of another sweep",
    );
}

#[test]
fn a_launch_over_several_processes_needs_a_sweep() {
    let d = tempfile::tempdir().unwrap();
    let out = d.path().join("r");
    let one = [
        "train",
        "--total-steps",
        "1024",
        "--out",
        out.to_str().unwrap(),
        "--quiet",
    ];
    assert_clean_error(&taper(&one, &[("OMPI_COMM_WORLD_SIZE", "2")]), "--seeds");
    assert!(!out.exists(), "nothing written");
    if cfg!(not(feature = "mpi")) {
        let sweep = [
            "train",
            "--seeds",
            "0..2",
            "--total-steps",
            "1024",
            "--out",
            out.to_str().unwrap(),
            "--quiet",
        ];
        assert_clean_error(&taper(&sweep, &[("PMI_SIZE", "2")]), "without the `mpi` feature");
        assert!(!out.exists(), "nothing written");
    }
}

/// The last metrics row's `global_step` of the run in `dir`, if it has one.
#[cfg_attr(not(feature = "mpi"), allow(dead_code))]
fn last_step(dir: &Path) -> Option<u64> {
    let text = std::fs::read_to_string(dir.join("metrics.jsonl")).ok()?;
    let row: serde_json::Value = serde_json::from_str(text.lines().last()?).ok()?;
    row["global_step"].as_u64()
}

#[cfg(feature = "mpi")]
mod mpi {
    use super::*;
    use std::process::{Command, Stdio};
    use std::time::{Duration, Instant};

    #[test]
    fn a_sweep_over_two_processes_equals_each_seed_alone() {
        let d = tempfile::tempdir().unwrap();
        let (mpi, alone) = (d.path().join("mpi"), d.path().join("alone"));
        let args = ["train", "--seeds", "0..6", "--total-steps", "4096", "--out"];
        let mut a: Vec<&str> = args.to_vec();
        a.push(mpi.to_str().unwrap());
        let o = mpi_run(2, &a);
        assert!(o.status.success(), "{}", stderr(&o));
        let e = stderr(&o);
        assert!(
            e.contains("over 2 processes") && e.contains("6 of 6 seeds trained"),
            "{e}"
        );
        train_into(&["--seeds", "0..6", "--total-steps", "4096"], &alone, &[]);
        same_sweep(&mpi, &alone, 0..6);
        // Fewer seeds than processes: one line from each process, nothing written.
        let few = d.path().join("few");
        let o = mpi_run(
            2,
            &[
                "train",
                "--seeds",
                "0..1",
                "--total-steps",
                "1024",
                "--out",
                few.to_str().unwrap(),
                "--quiet",
            ],
        );
        assert!(!o.status.success());
        assert!(stderr(&o).contains("1 seeds for 2 processes"), "{}", stderr(&o));
        assert!(!few.exists());
    }

    #[test]
    fn a_killed_process_loses_nothing_and_the_sweep_completes() {
        let d = tempfile::tempdir().unwrap();
        let (cut, alone) = (d.path().join("cut"), d.path().join("alone"));
        let steps = [
            "--seeds",
            "0..6",
            "--total-steps",
            "150000",
            "--checkpoint-every",
            "10240",
        ];
        let mut args: Vec<&str> = vec!["train"];
        args.extend(steps);
        args.extend(["--out", cut.to_str().unwrap(), "--quiet"]);
        let mut job = mpirun(2, &args)
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .spawn()
            .unwrap();
        // Kill one process once some seed has a periodic checkpoint and none has finished
        // all six: mid-sweep.
        let t = Instant::now();
        loop {
            let ckpts = (0..6).any(|s| cut.join(format!("s{s}/checkpoints")).is_dir());
            if ckpts {
                break;
            }
            assert!(t.elapsed() < Duration::from_secs(60), "no checkpoint appeared");
            std::thread::sleep(Duration::from_millis(20));
        }
        let ranks = Command::new("pgrep")
            .args(["-P", &job.id().to_string()])
            .output()
            .unwrap();
        let pids = String::from_utf8_lossy(&ranks.stdout).to_string();
        let victim = pids.lines().last().expect("a rank process").trim().to_string();
        Command::new("kill").args(["-9", &victim]).status().unwrap();
        let status = job.wait().unwrap();
        assert!(!status.success(), "the job fails when a process is killed");
        // The plan's end: 292 iterations of 512 steps.
        let finished = (0..6)
            .filter(|s| last_step(&cut.join(format!("s{s}"))) == Some(149_504))
            .count();
        assert!(finished < 6, "the kill came after the sweep's end");
        // The same command again completes the sweep.
        let o = mpi_run(2, &args);
        assert!(o.status.success(), "{}", stderr(&o));
        train_into(&steps, &alone, &[]);
        same_sweep(&cut, &alone, 0..6);
    }
}
