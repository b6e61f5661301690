//! Golden trajectories recorded with Gymnasium 1.4 itself by `scripts/golden_classic.py`:
//! fixed initial states and fixed actions, so no RNG is involved.

use taper_envs::classic::{CartPole, Pendulum};
use taper_envs::{Action, Env};

fn golden() -> serde_json::Value {
    serde_json::from_str(include_str!("data/classic_golden.json")).unwrap()
}

fn f64s(v: &serde_json::Value) -> Vec<f64> {
    v.as_array().unwrap().iter().map(|x| x.as_f64().unwrap()).collect()
}

#[test]
fn cartpole_matches_gymnasium() {
    let g = golden();
    for case in g["cartpole"].as_array().unwrap() {
        let init = f64s(&case["init"]);
        let mut env = CartPole::new();
        env.set_state([init[0], init[1], init[2], init[3]]);
        let actions = f64s(&case["actions"]);
        let obs = case["obs"].as_array().unwrap();
        let rewards = f64s(&case["rewards"]);
        let terms: Vec<bool> = case["terminated"]
            .as_array()
            .unwrap()
            .iter()
            .map(|b| b.as_bool().unwrap())
            .collect();
        for (t, a) in actions.iter().enumerate() {
            let s = env.step(Action::Discrete(*a as i64)).unwrap();
            let want = f64s(&obs[t]);
            for (x, y) in s.obs.iter().zip(&want) {
                assert!((*x as f64 - y).abs() < 1e-6, "step {t}: {x} vs {y}");
            }
            assert_eq!(s.reward as f64, rewards[t]);
            assert_eq!(s.terminated, terms[t], "step {t}");
        }
    }
}

#[test]
fn pendulum_matches_gymnasium() {
    let g = golden();
    for case in g["pendulum"].as_array().unwrap() {
        let init = f64s(&case["init"]);
        let mut env = Pendulum::new();
        env.set_state(init[0], init[1]);
        let actions = f64s(&case["actions"]);
        let obs = case["obs"].as_array().unwrap();
        let rewards = f64s(&case["rewards"]);
        for (t, a) in actions.iter().enumerate() {
            let s = env.step(Action::Continuous(&[*a as f32])).unwrap();
            let want = f64s(&obs[t]);
            for (x, y) in s.obs.iter().zip(&want) {
                assert!((*x as f64 - y).abs() < 1e-5, "step {t}: {x} vs {y}");
            }
            assert!((s.reward as f64 - rewards[t]).abs() < 1e-5, "step {t}");
        }
    }
}

/// MountainCarContinuous-v0 against Gymnasium 1.4 (NumPy 2): from float64 starts through
/// float32 steps, along the left wall, and up to the goal (termination and its reward of
/// 100). Observations agree to the last bit of an f32.
#[test]
fn mountain_car_continuous_matches_gymnasium() {
    use taper_envs::classic::MountainCarContinuous;
    let g = golden();
    let cases = g["mountain_car"].as_array().unwrap();
    assert!(cases.iter().any(|c| c["terminated"]
        .as_array()
        .unwrap()
        .iter()
        .any(|t| t.as_bool() == Some(true))));
    for case in cases {
        let init = f64s(&case["init"]);
        let mut env = MountainCarContinuous::new();
        env.set_state(init[0], init[1]);
        let actions = f64s(&case["actions"]);
        let obs = case["obs"].as_array().unwrap();
        let rewards = f64s(&case["rewards"]);
        let terms: Vec<bool> = case["terminated"]
            .as_array()
            .unwrap()
            .iter()
            .map(|t| t.as_bool().unwrap())
            .collect();
        for (t, a) in actions.iter().enumerate() {
            let s = env.step(Action::Continuous(&[*a as f32])).unwrap();
            let want = f64s(&obs[t]);
            for (x, y) in s.obs.iter().zip(&want) {
                assert_eq!(*x, *y as f32, "step {t}: {:?} vs {want:?}", s.obs);
            }
            assert!(
                (s.reward as f64 - rewards[t]).abs() < 1e-6,
                "step {t}: {} vs {}",
                s.reward,
                rewards[t]
            );
            assert_eq!(s.terminated, terms[t], "step {t}");
        }
    }
}
