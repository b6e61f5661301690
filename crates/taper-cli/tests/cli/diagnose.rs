//! `taper diagnose`: Patient-0 attribution on a short MADDPG run writes its report, summary
//! and contagion graphs, the same on a second run; bad input is a one-line error.

use crate::common::{assert_clean_error, stderr, taper, train_into};

#[test]
fn diagnose_writes_report_summary_and_graphs() {
    let d = tempfile::tempdir().unwrap();
    let run = d.path().join("m");
    let cfg = d.path().join("m.toml");
    std::fs::write(
        &cfg,
        "algo = \"maddpg\"\n\n[maddpg]\nbatch_size = 64\nbuffer_size = 5000\nlearning_starts = 256\ntrain_every = 20\n",
    )
    .unwrap();
    train_into(
        &[
            "--config",
            cfg.to_str().unwrap(),
            "--seed",
            "3",
            "--total-steps",
            "1500",
        ],
        &run,
        &[],
    );
    let diag = |out: &std::path::Path| {
        let o = taper(
            &[
                "diagnose",
                run.to_str().unwrap(),
                "--episodes",
                "2",
                "--references",
                "8",
                "--k-sigma",
                "2,3",
                "--out",
                out.to_str().unwrap(),
                "--json",
            ],
            &[],
        );
        assert!(o.status.success(), "{}", stderr(&o));
        serde_json::from_slice::<serde_json::Value>(&o.stdout).unwrap()
    };
    let (a, b) = (d.path().join("da"), d.path().join("db"));
    let ja = diag(&a);
    let results = ja["results"].as_array().unwrap();
    assert_eq!(results.len(), 2);
    for r in results {
        let all = &r["all"];
        let cases = all["cases"].as_u64().unwrap();
        // Each case has exactly one outcome.
        let parts: u64 = [
            "no_detection",
            "false_alarm",
            "stage1_correct",
            "traceback_correct",
            "traceback_wrong",
        ]
        .iter()
        .map(|k| all[k].as_u64().unwrap())
        .sum();
        assert_eq!(parts, cases, "{all}");
        assert!(cases <= 2 * 2 * 3 * 2, "at most 2·N(N−1) attacks per seed: {cases}");
        assert_eq!(
            r["high"]["cases"].as_u64().unwrap() + r["low"]["cases"].as_u64().unwrap(),
            cases
        );
        assert_eq!(r["cases"].as_array().unwrap().len() as u64, cases);
    }
    assert!(a.join("report.json").exists() && a.join("summary.md").exists());
    let graphs: Vec<_> = std::fs::read_dir(a.join("graphs"))
        .unwrap()
        .map(|e| e.unwrap().path())
        .collect();
    let svgs = graphs
        .iter()
        .filter(|p| p.extension().is_some_and(|e| e == "svg"))
        .count();
    let dots = graphs
        .iter()
        .filter(|p| p.extension().is_some_and(|e| e == "dot"))
        .count();
    assert_eq!(svgs, dots);
    assert_eq!(svgs as u64, ja["graphs"].as_u64().unwrap());
    // The same run diagnosed again gives the same cases (timing aside).
    let jb = diag(&b);
    assert_eq!(ja["results"], jb["results"]);
    // Bad input: no seeds, an agent that does not exist, a run without Q critics.
    let bad = |args: &[&str], needle: &str| {
        let mut v = vec!["diagnose", run.to_str().unwrap()];
        v.extend_from_slice(args);
        assert_clean_error(&taper(&v, &[]), needle);
    };
    bad(&["--episodes", "0"], "--episodes");
    bad(&["--attacker", "7"], "--attacker");
    bad(&["--k-sigma", "0"], "--k-sigma");
    let ppo = d.path().join("ppo");
    train_into(&["--algo", "ppo", "--total-steps", "512"], &ppo, &[]);
    assert_clean_error(&taper(&["diagnose", ppo.to_str().unwrap()], &[]), "Q critic");
}
