//! Simple Spread against mpe2 1.1.1 itself (`scripts/golden_mpe.py`): from the recorded
//! initial positions, the same actions give the same positions, velocities, observations,
//! rewards and truncations, to 1e-5.

use taper_envs::mpe::{vec_spread, MultiAction, SimpleSpread, SpreadConfig, StepBuffers};
use taper_envs::parallel::{ParallelEnv, VecParallelState};

fn f(v: &serde_json::Value) -> f64 {
    v.as_f64().unwrap()
}

#[test]
fn replays_mpe2_episodes() {
    let g: serde_json::Value = serde_json::from_str(include_str!("data/mpe_golden.json")).unwrap();
    let mut saw_collision = false;
    for case in g["cases"].as_array().unwrap() {
        let n = case["n"].as_u64().unwrap() as usize;
        let continuous = case["continuous"].as_bool().unwrap();
        let mut env = SimpleSpread::new(SpreadConfig {
            n,
            continuous,
            ..SpreadConfig::default()
        })
        .unwrap();
        let pts = |k: &str| -> Vec<[f64; 2]> {
            case[k]
                .as_array()
                .unwrap()
                .iter()
                .map(|p| [f(&p[0]), f(&p[1])])
                .collect()
        };
        let mut obs = vec![0f32; n * 6 * n];
        env.reset_to(&pts("init_agents"), &pts("init_landmarks"), &mut obs)
            .unwrap();
        let mut out = StepBuffers::new(n);
        for (t, s) in case["steps"].as_array().unwrap().iter().enumerate() {
            if continuous {
                let a: Vec<f32> = s["actions"]
                    .as_array()
                    .unwrap()
                    .iter()
                    .flat_map(|v| v.as_array().unwrap().iter().map(|x| f(x) as f32))
                    .collect();
                env.step_into(MultiAction::Continuous(&a), &mut obs, &mut out).unwrap();
            } else {
                let a: Vec<i64> = s["actions"]
                    .as_array()
                    .unwrap()
                    .iter()
                    .map(|x| x.as_i64().unwrap())
                    .collect();
                env.step_into(MultiAction::Discrete(&a), &mut obs, &mut out).unwrap();
            }
            for i in 0..n {
                let p = &s["agent_pos"][i];
                let v = &s["agent_vel"][i];
                assert!(
                    (env.agent_positions()[i][0] - f(&p[0])).abs() < 1e-9
                        && (env.agent_positions()[i][1] - f(&p[1])).abs() < 1e-9,
                    "n={n} t={t} pos"
                );
                assert!(
                    (env.agent_velocities()[i][0] - f(&v[0])).abs() < 1e-9,
                    "n={n} t={t} vel"
                );
                let want: Vec<f64> = s["obs"][i].as_array().unwrap().iter().map(f).collect();
                for (k, w) in want.iter().enumerate() {
                    assert!(
                        (obs[i * 6 * n + k] as f64 - w).abs() < 1e-5,
                        "n={n} t={t} agent {i} obs[{k}]"
                    );
                }
                let r = f(&s["rewards"][i]);
                assert!(
                    (out.rewards[i] as f64 - r).abs() < 1e-5,
                    "n={n} t={t} agent {i} reward {} vs {r}",
                    out.rewards[i]
                );
                assert_eq!(out.truncated[i], s["truncated"][i].as_bool().unwrap());
            }
            if env.colliding_pairs() > 0 {
                saw_collision = true;
            }
        }
    }
    assert!(saw_collision, "the golden episodes should exercise the collision terms");
}

/// The vectorised form equals M single envs, at any thread count, and reports episodes.
#[test]
fn vectorised_equals_single_envs() {
    let cfg = SpreadConfig::default();
    let m = 130;
    let mut v1 = vec_spread(cfg, m).unwrap();
    let mut v2 = vec_spread(cfg, m).unwrap();
    v2.set_parallel(true);
    v1.set_track_states(true);
    v2.set_track_states(true);
    v1.reset(5).unwrap();
    v2.reset(5).unwrap();
    let mut singles: Vec<SimpleSpread> = (0..m).map(|_| SimpleSpread::new(cfg).unwrap()).collect();
    let mut sobs = vec![vec![0f32; 54]; m];
    for (i, e) in singles.iter_mut().enumerate() {
        e.reset_into(Some(5 + i as u64), &mut sobs[i]).unwrap();
    }
    let mut out = StepBuffers::new(3);
    let mut episodes = 0;
    for t in 0..60 {
        let acts: Vec<i64> = (0..m * 3).map(|k| ((k * 7 + t * 3) % 5) as i64).collect();
        v1.step(MultiAction::Discrete(&acts)).unwrap();
        v2.step(MultiAction::Discrete(&acts)).unwrap();
        assert_eq!(v1.obs(), v2.obs());
        assert_eq!(v1.finished(), v2.finished());
        assert_eq!(
            (v1.rewards(), v1.terminated(), v1.truncated()),
            (v2.rewards(), v2.terminated(), v2.truncated())
        );
        assert_eq!((v1.ended(), v1.states()), (v2.ended(), v2.states()));
        assert_eq!((v1.final_obs(), v1.final_states()), (v2.final_obs(), v2.final_states()));
        // The global state of Simple Spread is every agent's observation, in agent order.
        assert_eq!(v1.states(), v1.obs());
        for &(i, _) in v1.finished() {
            assert!(v1.ended()[i]);
            assert_eq!(
                &v1.final_states()[i * 54..(i + 1) * 54],
                &v1.final_obs()[i * 54..(i + 1) * 54]
            );
        }
        assert_eq!(v1.ended().iter().filter(|&&e| e).count(), v1.finished().len());
        for i in 0..m {
            singles[i]
                .step_into(MultiAction::Discrete(&acts[i * 3..i * 3 + 3]), &mut sobs[i], &mut out)
                .unwrap();
            assert_eq!(&v1.rewards()[i * 3..i * 3 + 3], &out.rewards[..]);
            if out.truncated[0] {
                assert_eq!(&v1.final_obs()[i * 54..(i + 1) * 54], &sobs[i][..]);
                singles[i].reset_into(None, &mut sobs[i]).unwrap();
            }
            assert_eq!(&v1.obs()[i * 54..(i + 1) * 54], &sobs[i][..]);
        }
        episodes += v1.finished().len();
    }
    assert_eq!(episodes, 2 * m, "two 25-step episodes per env in 60 steps");
    let ep = v1.finished().first().map(|e| e.1);
    assert!(ep.is_none() || ep.unwrap().len == 25);
    assert!(v1.step(MultiAction::Discrete(&[0; 3])).is_err());
}

/// A snapshot taken mid-episode and restored into fresh envs (through JSON) continues exactly:
/// the same observations, rewards and finished episodes (with their statistics) as the
/// original, across episode ends and resets.
#[test]
fn vec_snapshot_restores_exactly() {
    let cfg = SpreadConfig::default();
    let acts = |t: usize| -> Vec<i64> { (0..4 * 3).map(|k| ((k * 3 + t * 7) % 5) as i64).collect() };
    let mut a = vec_spread(cfg, 4).unwrap();
    a.reset(11).unwrap();
    for t in 0..13 {
        a.step(MultiAction::Discrete(&acts(t))).unwrap();
    }
    let json = serde_json::to_string(&a.snapshot().unwrap()).unwrap();
    let snap: VecParallelState = serde_json::from_str(&json).unwrap();
    let mut b = vec_spread(cfg, 4).unwrap();
    b.restore(&snap).unwrap();
    assert_eq!(a.obs(), b.obs());
    let mut ended = 0;
    for t in 13..70 {
        a.step(MultiAction::Discrete(&acts(t))).unwrap();
        b.step(MultiAction::Discrete(&acts(t))).unwrap();
        assert_eq!(
            (a.obs(), a.rewards(), a.finished()),
            (b.obs(), b.rewards(), b.finished())
        );
        ended += a.finished().len();
    }
    assert_eq!(ended, 8);
    // A snapshot of other envs is refused with a typed error.
    let mut c = vec_spread(cfg, 3).unwrap();
    assert!(c.restore(&snap).is_err());
    let five = SpreadConfig { n: 5, ..cfg };
    let mut d = vec_spread(five, 4).unwrap();
    assert!(d.restore(&snap).is_err());
}
