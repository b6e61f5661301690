//! The docs and the registry stay in step with the code.

use crate::common::*;

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
