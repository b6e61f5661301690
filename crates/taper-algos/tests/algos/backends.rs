//! The candle backend on the CPU against the fast path, learner by learner: the same seed
//! gives the same weights after one update (PPO, MADDPG) and the same metrics rows (PPO on
//! CartPole: the first 20), within 1e-5 relative. The two backends round differently (candle's
//! matrix products and `tanh` against the hand-written ones), so runs agree to float rounding
//! until a sampled action falls on the other side of a probability boundary; the budgets here
//! stay short of that. Every learner also trains with the candle backend.

use taper_algos::prelude::*;
use taper_algos::AlgoKind;
use taper_tensor::device::{Backend, DeviceSpec, Placement};

/// The tolerance on the CPU (relative, with 1 added to the magnitude).
const TOL: f64 = 1e-5;

fn close(a: f64, b: f64, tol: f64) -> bool {
    (a - b).abs() <= tol * (1.0 + b.abs())
}

fn fast() -> Placement {
    Placement::Fast
}

fn candle_cpu() -> Placement {
    Placement::new(DeviceSpec::Cpu, Some(Backend::Candle)).unwrap()
}

/// A learner of `algo` on `env` with `keys` over its default config, placed on `placement`.
fn learner(algo: &str, env: &str, keys: serde_json::Value, placement: Placement) -> Box<dyn Learner> {
    let kind = AlgoKind::from_name(algo).unwrap();
    let base = kind.default_config(env, &Kwargs::new()).unwrap();
    let config = kind.config_over(&base, &keys).unwrap();
    let mut l = kind.learner(&config, env, &Kwargs::new(), 3).unwrap();
    l.set_placement(&placement).unwrap();
    l
}

/// The metrics rows (timing columns left out) of `steps` env steps.
fn run(l: &mut dyn Learner, steps: u64) -> Vec<Vec<(String, f64)>> {
    l.plan(steps).unwrap();
    let mut rows = Vec::new();
    while !l.is_done() {
        let m = l.step().unwrap();
        rows.push(
            m.entries()
                .filter(|(k, _)| !taper_train::metrics::TIMING_COLUMNS.contains(k))
                .map(|(k, v)| (k.to_string(), v))
                .collect(),
        );
    }
    rows
}

/// Every weight of the two learners, within the tolerance; returns the largest difference.
fn same_weights(a: &dyn Learner, b: &dyn Learner, tol: f64) -> f64 {
    let (ta, tb) = (a.export().unwrap().tensors, b.export().unwrap().tensors);
    assert_eq!(ta.len(), tb.len());
    let mut worst = 0f64;
    for ((na, x), (nb, y)) in ta.iter().zip(&tb) {
        assert_eq!(na, nb);
        let x = x.flatten_all().unwrap().to_vec1::<f32>().unwrap();
        let y = y.flatten_all().unwrap().to_vec1::<f32>().unwrap();
        for (u, v) in x.iter().zip(&y) {
            let (u, v) = (*u as f64, *v as f64);
            assert!(close(u, v, tol), "{na}: candle {v} vs fast {u}");
            worst = worst.max((u - v).abs());
        }
    }
    worst
}

fn same_rows(fast: &[Vec<(String, f64)>], candle: &[Vec<(String, f64)>], tol: f64) {
    assert_eq!(fast.len(), candle.len());
    for (i, (a, b)) in fast.iter().zip(candle).enumerate() {
        assert_eq!(a.len(), b.len());
        for ((ka, x), (kb, y)) in a.iter().zip(b) {
            assert_eq!(ka, kb);
            assert!(close(*x, *y, tol), "row {i} {ka}: fast {x} vs candle {y}");
        }
    }
}

/// One PPO update (one rollout and its update epochs) on CartPole and on Pendulum, on
/// `placement` against the fast path.
fn one_ppo_update(placement: Placement, tol: f64) {
    for (env, steps) in [("CartPole-v1", 512), ("Pendulum-v1", 2048)] {
        let mut f = learner("ppo", env, serde_json::json!({}), fast());
        let mut c = learner("ppo", env, serde_json::json!({}), placement.clone());
        same_rows(&run(f.as_mut(), steps), &run(c.as_mut(), steps), tol);
        assert_eq!(f.progress().updates, 1);
        same_weights(f.as_ref(), c.as_ref(), tol);
    }
}

#[test]
fn one_ppo_update_is_the_same_on_both_backends() {
    one_ppo_update(candle_cpu(), TOL);
}

/// The first 20 metrics rows of PPO on CartPole (CleanRL's defaults: 4 envs × 128 steps per
/// update), and the weights after them.
#[test]
fn ppo_cartpole_first_20_rows_are_the_same_on_both_backends() {
    let mut f = learner("ppo", "CartPole-v1", serde_json::json!({}), fast());
    let mut c = learner("ppo", "CartPole-v1", serde_json::json!({}), candle_cpu());
    let (rf, rc) = (run(f.as_mut(), 20 * 512), run(c.as_mut(), 20 * 512));
    assert_eq!(rf.len(), 20);
    same_rows(&rf, &rc, TOL);
    same_weights(f.as_ref(), c.as_ref(), TOL);
}

/// One MADDPG update (critic, actor, Polyak targets) on Simple Spread, per-agent and shared
/// networks, on `placement` against the fast path.
fn one_maddpg_update(placement: Placement, tol: f64) {
    for share in [false, true] {
        let keys = serde_json::json!({
            "batch_size": 32, "learning_starts": 64, "train_every": 64, "buffer_size": 1024,
            "num_envs": 1, "share_params": share
        });
        let mut f = learner("maddpg", "SimpleSpread-v3", keys.clone(), fast());
        let mut c = learner("maddpg", "SimpleSpread-v3", keys, placement.clone());
        same_rows(&run(f.as_mut(), 64), &run(c.as_mut(), 64), tol);
        assert_eq!(f.progress().updates, 1, "share_params {share}");
        same_weights(f.as_ref(), c.as_ref(), tol);
    }
}

#[test]
fn one_maddpg_update_is_the_same_on_both_backends() {
    one_maddpg_update(candle_cpu(), TOL);
}

/// On a CUDA device: the same updates within 1e-4 (cuBLAS sums in another order than the CPU
/// kernels, and a PPO update chains 16 gradient steps). Built with `--features cuda` only;
/// `scripts/gpu-check.sh` runs it.
#[cfg(feature = "cuda")]
#[test]
fn cuda_updates_match_the_fast_path() {
    let cuda = Placement::new(DeviceSpec::Cuda(0), None).expect("a CUDA device");
    one_ppo_update(cuda.clone(), 1e-4);
    one_maddpg_update(cuda, 1e-4);
}

/// IPPO, MAPPO and HDPO (one store, and a warehouse network) train with the candle backend
/// and stay equal to the fast path over their first rows.
#[test]
fn every_other_learner_trains_on_the_candle_backend() {
    let hdpo = serde_json::json!({
        "batch_size": 32, "train_paths": 64, "dev_paths": 16, "test_paths": 4,
        "test_periods": 100, "test_ignore": 20, "eval_every": 2
    });
    let cases = [
        (
            "ippo",
            "SimpleSpread-v3",
            serde_json::json!({"num_envs": 4, "num_steps": 32}),
            4 * 32 * 3 * 3,
        ),
        (
            "mappo",
            "SimpleSpread-v3",
            serde_json::json!({"num_envs": 4, "num_steps": 32}),
            4 * 32 * 3 * 3,
        ),
        ("hdpo", "InventoryLostSales-v0", hdpo.clone(), 4),
        ("hdpo", "InventoryWarehouse-v0", hdpo, 4),
    ];
    for (algo, env, keys, steps) in cases {
        let mut f = learner(algo, env, keys.clone(), fast());
        let mut c = learner(algo, env, keys, candle_cpu());
        let (rf, rc) = (run(f.as_mut(), steps), run(c.as_mut(), steps));
        assert!(!rc.is_empty(), "{algo} on {env}");
        same_rows(&rf, &rc, TOL);
        same_weights(f.as_ref(), c.as_ref(), TOL);
    }
}

/// GRPO: the transformer's host kernels (the fast path) against candle's graph on the CPU, over
/// a short warm start and three iterations of sampling and training: the same metrics rows
/// and weights.
#[test]
fn grpo_host_kernels_match_the_candle_graph() {
    let keys = serde_json::json!({
        "sft_steps": 20, "sft_batch": 16, "prompts_per_step": 4, "num_generations": 4,
        "eval_every": 1, "eval_prompts": 16
    });
    let mut f = learner("grpo", "SeqAddition-v0", keys.clone(), fast());
    let mut c = learner("grpo", "SeqAddition-v0", keys, candle_cpu());
    let (rf, rc) = (run(f.as_mut(), 3 * 16), run(c.as_mut(), 3 * 16));
    assert_eq!(rf.len(), 3);
    same_rows(&rf, &rc, TOL);
    same_weights(f.as_ref(), c.as_ref(), TOL);
}
