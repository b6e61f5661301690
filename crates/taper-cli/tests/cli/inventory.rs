//! Inventory envs: `taper solve`, and HDPO (one store and networks) through train, eval and resume.

use crate::common::*;

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
    let c = cfg.to_str().unwrap();
    let base = [
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
        c,
    ];
    train_into(&base, &out, &[]);
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
    assert!(v["se_cost"].as_f64().unwrap() > 0.0 && v["se_return"].as_f64().unwrap() > 0.0);
    assert_eq!(v["warmup_periods"], 1000);
    // The exact cost of the trained policy is at or above the optimum (6.0936 for L = 2,
    // p = 9), and within four standard errors of a long simulation of the env.
    let o = taper(
        &["eval", out.to_str().unwrap(), "--exact", "--episodes", "200", "--json"],
        &[],
    );
    assert!(o.status.success(), "{}", stderr(&o));
    let v: serde_json::Value = serde_json::from_slice(&o.stdout).unwrap();
    let x = &v["exact"];
    let (cost, opt) = (x["cost"].as_f64().unwrap(), x["optimal_cost"].as_f64().unwrap());
    assert!((opt - 6.0936).abs() < 1e-4, "{opt}");
    assert!(cost >= opt - 1e-9 && x["gap"].as_f64().unwrap() >= -1e-9, "{x}");
    let (sim, se) = (v["mean_cost"].as_f64().unwrap(), v["se_cost"].as_f64().unwrap());
    assert!((sim - cost).abs() < 4.0 * se, "exact {cost} vs simulated {sim} ± {se}");
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
    train_into(&base, &half, &["--stop-after", "20"]);
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
    train_into(
        &[
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
        ],
        &out,
        &[],
    );
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
