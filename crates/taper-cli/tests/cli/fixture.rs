//! Nothing learned changes: short seeded runs of every algorithm, compared with a committed
//! fixture (`tests/data/fixture.json`) of their metrics rows (timing columns dropped), the
//! SHA-256 of their final weights, and their evaluation.
//!
//! Numbers are bit-exact on one CPU class only: the matrix kernels and the vectorised `tanh`
//! pick their instructions at run time (AVX-512, AVX2+FMA or the baseline), and each sums in its
//! own order. The fixture records the class it was written on; elsewhere the test says so and
//! compares nothing. To rewrite the fixture after a deliberate change of numbers:
//! `TAPER_WRITE_FIXTURE=1 cargo test --release -p taper-cli --test cli fixture`.

use sha2::{Digest, Sha256};
use std::path::Path;
use std::process::Command;

/// One fixture run: a name, the `taper train` flags, and an optional config file's text.
struct Case {
    name: &'static str,
    args: &'static [&'static str],
    config: &'static str,
}

const CASES: &[Case] = &[
    Case {
        name: "ppo-cartpole",
        args: &["--env", "CartPole-v1", "--seed", "3", "--total-steps", "2048"],
        config: "",
    },
    Case {
        name: "ppo-pendulum",
        args: &["--env", "Pendulum-v1", "--seed", "3", "--total-steps", "2048"],
        config: "[ppo]\nnum_steps = 512\nnum_minibatches = 8\n",
    },
    Case {
        name: "ppo-frozenlake",
        args: &["--env", "FrozenLake-v1", "--seed", "3", "--total-steps", "2048"],
        config: "",
    },
    Case {
        name: "ippo",
        args: &["--algo", "ippo", "--seed", "3", "--total-steps", "512"],
        config: "[ippo]\nnum_envs = 4\nnum_steps = 32\n",
    },
    Case {
        name: "mappo",
        args: &["--algo", "mappo", "--seed", "3", "--total-steps", "512"],
        config: "[mappo]\nnum_envs = 4\nnum_steps = 32\n",
    },
    Case {
        name: "maddpg-per-agent",
        args: &["--algo", "maddpg", "--seed", "3", "--total-steps", "5100"],
        config: "[maddpg]\nshare_params = false\nhidden = [64, 64]\nlearning_rate = 0.01\n\
                 batch_size = 64\nbuffer_size = 5000\nlearning_starts = 256\ntrain_every = 20\n",
    },
    Case {
        name: "maddpg-shared",
        args: &["--algo", "maddpg", "--seed", "3", "--total-steps", "5100"],
        config: "[maddpg]\nbatch_size = 64\nbuffer_size = 5000\nlearning_starts = 256\ntrain_every = 20\n",
    },
    Case {
        name: "maddpg-shared-continuous",
        args: &["--algo", "maddpg", "--seed", "3", "--total-steps", "2600"],
        config: "[env_kwargs]\ncontinuous = true\n\n[maddpg]\nbatch_size = 64\nbuffer_size = 5000\n\
                 learning_starts = 256\ntrain_every = 20\n",
    },
    Case {
        name: "hdpo-one-store",
        args: &["--algo", "hdpo", "--env", "InventoryLostSales-v0", "--seed", "3"],
        config: "[hdpo]\nsteps = 20\neval_every = 5\nbatch_size = 128\ntrain_paths = 512\ndev_paths = 128\n\
                 test_paths = 32\ntest_periods = 500\ntest_ignore = 100\n",
    },
    Case {
        name: "hdpo-warehouse",
        args: &[
            "--algo",
            "hdpo",
            "--env",
            "InventoryWarehouse-v0",
            "--stores",
            "3",
            "--seed",
            "3",
        ],
        config: "[hdpo]\nsteps = 10\neval_every = 5\nbatch_size = 64\ntrain_paths = 256\ndev_paths = 64\n\
                 test_paths = 16\ntest_periods = 300\ntest_ignore = 100\n",
    },
    Case {
        name: "grpo-addition",
        args: &[
            "--algo",
            "grpo",
            "--env",
            "SeqAddition-v0",
            "--seed",
            "3",
            "--total-steps",
            "256",
        ],
        config: "[env_kwargs]\ndigits = 2\n\n[grpo]\nsft_steps = 100\nsft_batch = 16\nprompts_per_step = 4\n\
                 num_generations = 8\neval_every = 2\neval_prompts = 16\n",
    },
];

/// The evaluation fields compared (others may be added without changing what was learned).
const EVAL_KEYS: &[&str] = &["episodes", "mean_return", "std_return", "success_rate", "mean_cost"];

/// The instruction set the kernels dispatch to on this machine.
fn cpu_class() -> &'static str {
    #[cfg(target_arch = "x86_64")]
    {
        if std::arch::is_x86_feature_detected!("avx512f") {
            return "x86_64-avx512";
        }
        if std::arch::is_x86_feature_detected!("avx2") && std::arch::is_x86_feature_detected!("fma") {
            return "x86_64-avx2";
        }
        "x86_64"
    }
    #[cfg(not(target_arch = "x86_64"))]
    {
        std::env::consts::ARCH
    }
}

fn taper(args: &[&str]) -> std::process::Output {
    Command::new(env!("CARGO_BIN_EXE_taper"))
        .args(args)
        .output()
        .expect("run taper")
}

/// The metrics rows without their timing columns, as written (column order kept): the
/// writer prints flat objects of numbers and nulls, so pairs split at commas.
fn rows(dir: &Path) -> Vec<String> {
    let text = std::fs::read_to_string(dir.join("metrics.jsonl")).unwrap();
    text.lines()
        .map(|l| {
            let body = l.trim().trim_start_matches('{').trim_end_matches('}');
            let kept: Vec<&str> = body
                .split(',')
                .filter(|kv| !matches!(kv.split(':').next(), Some("\"sps\"") | Some("\"time_elapsed\"")))
                .collect();
            format!("{{{}}}", kept.join(","))
        })
        .collect()
}

/// SHA-256 over the final checkpoint's weights: every tensor of `model.safetensors` in name
/// order, as its name, its shape and its little-endian f32 values.
fn weights_sha256(dir: &Path) -> String {
    let t = candle_core::safetensors::load(dir.join("checkpoint/model.safetensors"), &candle_core::Device::Cpu)
        .expect("read the weights");
    let mut names: Vec<&String> = t.keys().collect();
    names.sort();
    let mut h = Sha256::new();
    for n in names {
        let x = &t[n];
        h.update(n.as_bytes());
        h.update(format!("{:?}", x.dims()).as_bytes());
        let v: Vec<f32> = x.flatten_all().unwrap().to_vec1().unwrap();
        for f in v {
            h.update(f.to_le_bytes());
        }
    }
    h.finalize().iter().map(|b| format!("{b:02x}")).collect()
}

/// Trains one case and returns its record.
fn run_case(c: &Case, tmp: &Path) -> serde_json::Value {
    let out = tmp.join(c.name);
    let mut args: Vec<String> = vec!["train".into()];
    args.extend(c.args.iter().map(|s| s.to_string()));
    if !c.config.is_empty() {
        let p = tmp.join(format!("{}.toml", c.name));
        std::fs::write(&p, c.config).unwrap();
        args.push("--config".into());
        args.push(p.display().to_string());
    }
    args.extend(["--out".into(), out.display().to_string(), "--quiet".into()]);
    let a: Vec<&str> = args.iter().map(String::as_str).collect();
    let o = taper(&a);
    assert!(o.status.success(), "{}: {}", c.name, String::from_utf8_lossy(&o.stderr));
    let o = taper(&[
        "eval",
        out.to_str().unwrap(),
        "--episodes",
        "3",
        "--deterministic",
        "--json",
    ]);
    assert!(o.status.success(), "{}: {}", c.name, String::from_utf8_lossy(&o.stderr));
    let ev: serde_json::Value = serde_json::from_slice(&o.stdout).unwrap();
    let eval: serde_json::Map<String, serde_json::Value> = EVAL_KEYS
        .iter()
        .filter_map(|k| ev.get(*k).map(|v| (k.to_string(), v.clone())))
        .collect();
    serde_json::json!({
        "name": c.name,
        "metrics": rows(&out),
        "weights_sha256": weights_sha256(&out),
        "eval": eval,
    })
}

#[test]
fn short_runs_reproduce_the_fixture() {
    let path = Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/data/fixture.json");
    let tmp = tempfile::tempdir().unwrap();
    let runs: Vec<serde_json::Value> = CASES.iter().map(|c| run_case(c, tmp.path())).collect();
    if std::env::var_os("TAPER_WRITE_FIXTURE").is_some() {
        let v = serde_json::json!({ "cpu_class": cpu_class(), "runs": runs });
        std::fs::write(&path, serde_json::to_string_pretty(&v).unwrap() + "\n").unwrap();
        eprintln!("wrote {}", path.display());
        return;
    }
    let want: serde_json::Value = serde_json::from_str(&std::fs::read_to_string(&path).unwrap()).unwrap();
    if want["cpu_class"] != cpu_class() {
        eprintln!(
            "fixture written on {}, this machine is {}: its kernels sum in another order; nothing compared",
            want["cpu_class"],
            cpu_class()
        );
        return;
    }
    let want_runs = want["runs"].as_array().unwrap();
    assert_eq!(want_runs.len(), runs.len(), "the fixture lists other cases");
    for (w, g) in want_runs.iter().zip(&runs) {
        let name = &w["name"];
        assert_eq!(name, &g["name"]);
        let (wm, gm) = (w["metrics"].as_array().unwrap(), g["metrics"].as_array().unwrap());
        assert_eq!(wm.len(), gm.len(), "{name}: number of metrics rows");
        for (i, (a, b)) in wm.iter().zip(gm).enumerate() {
            assert_eq!(a, b, "{name}: metrics row {i}");
        }
        assert_eq!(w["weights_sha256"], g["weights_sha256"], "{name}: final weights");
        assert_eq!(w["eval"], g["eval"], "{name}: evaluation");
    }
}
