//! `VecEnv` behaviour: same-step autoreset with final observations, episode statistics,
//! typed errors, normalisation frozen in evaluation.

use taper_envs::classic::CartPole;
use taper_envs::{make_vec, Env, EnvError, NormalizeConfig, VecAction};

#[test]
fn autoreset_keeps_the_final_observation() {
    let mut venv = make_vec("CartPole-v1", 2).unwrap();
    venv.reset(5).unwrap();
    // Push env 0 left until it terminates; env 1 alternates and survives longer.
    let mut twin = CartPole::new();
    let mut obs = [0f32; 4];
    twin.reset_into(Some(5), &mut obs).unwrap();
    assert_eq!(&venv.obs()[..4], &obs);
    for t in 0..200 {
        venv.step(VecAction::Discrete(&[0, (t % 2) as i64])).unwrap();
        let o = twin.step_into(taper_envs::Action::Discrete(0), &mut obs).unwrap();
        if o.terminated {
            assert!(venv.terminated()[0]);
            assert_eq!(&venv.final_obs()[..4], &obs, "final obs is the terminal one");
            assert_ne!(&venv.obs()[..4], &obs, "obs is the reset one");
            assert!(venv.obs()[..4].iter().all(|v| v.abs() <= 0.05));
            let (i, rec) = venv.finished()[0];
            assert_eq!(i, 0);
            assert_eq!(rec.len, t as u64 + 1);
            assert_eq!(rec.ret, (t + 1) as f64);
            return;
        }
        assert_eq!(&venv.obs()[..4], &obs);
    }
    panic!("env 0 never terminated");
}

#[test]
fn time_limit_truncates() {
    let mut venv = make_vec("Pendulum-v1", 1).unwrap();
    venv.reset(0).unwrap();
    for t in 0..200 {
        venv.step(VecAction::Continuous(&[0.0])).unwrap();
        assert_eq!(venv.truncated()[0], t == 199);
        assert!(!venv.terminated()[0]);
    }
    assert_eq!(venv.finished()[0].1.len, 200);
}

#[test]
fn bad_actions_are_typed_errors() {
    let mut venv = make_vec("CartPole-v1", 2).unwrap();
    assert!(matches!(
        venv.step(VecAction::Discrete(&[0, 1])),
        Err(EnvError::NeedsReset(_))
    ));
    venv.reset(0).unwrap();
    assert!(matches!(
        venv.step(VecAction::Discrete(&[0])),
        Err(EnvError::Shape { .. })
    ));
    assert!(matches!(
        venv.step(VecAction::Discrete(&[0, 7])),
        Err(EnvError::ActionOutOfSpace { .. })
    ));
    assert!(matches!(
        venv.step(VecAction::Continuous(&[0.0, 0.0])),
        Err(EnvError::ActionOutOfSpace { .. })
    ));
    let mut p = make_vec("Pendulum-v1", 1).unwrap();
    p.reset(0).unwrap();
    assert!(matches!(
        p.step(VecAction::Continuous(&[f32::NAN])),
        Err(EnvError::ActionOutOfSpace { .. })
    ));
    assert!(matches!(
        p.step(VecAction::Continuous(&[3.0])),
        Err(EnvError::ActionOutOfSpace { .. })
    ));
}

#[test]
fn normalisation_updates_in_training_and_freezes_in_eval() {
    let mut venv = make_vec("Pendulum-v1", 1).unwrap();
    venv.set_normalize(NormalizeConfig::default());
    venv.reset(0).unwrap();
    for _ in 0..50 {
        venv.step(VecAction::Continuous(&[1.0])).unwrap();
    }
    let before = venv.normalizer().unwrap().clone();
    assert!(before.obs_rms.count() > 50.0);
    assert!(venv.obs().iter().all(|v| v.abs() <= 10.0));
    venv.set_training(false);
    for _ in 0..10 {
        venv.step(VecAction::Continuous(&[1.0])).unwrap();
    }
    assert_eq!(venv.normalizer().unwrap().obs_rms, before.obs_rms);
    assert_eq!(venv.normalizer().unwrap().ret_rms, before.ret_rms);
    // Raw rewards are kept for episode statistics.
    assert!(venv.raw_rewards()[0] <= 0.0);
}

#[test]
fn unknown_ids_and_kwargs() {
    assert!(matches!(taper_envs::make("Nope-v0"), Err(EnvError::UnknownEnv { .. })));
    let mut kw = taper_envs::Kwargs::new();
    kw.insert("is_slippery".into(), "maybe".into());
    assert!(taper_envs::make_with("FrozenLake-v1", &kw).is_err());
    kw.insert("is_slippery".into(), "false".into());
    assert!(taper_envs::make_with("FrozenLake-v1", &kw).is_ok());
    kw.insert("colour".into(), "blue".into());
    assert!(taper_envs::make_with("FrozenLake-v1", &kw).is_err());
    let mut kw = taper_envs::Kwargs::new();
    kw.insert("desc".into(), "SFF/FHF/FFG".into());
    let mut e = taper_envs::make_with("FrozenLake-v1", &kw).unwrap();
    assert_eq!(e.observation_space(), &taper_envs::Space::Discrete { n: 9 });
    e.reset(Some(0)).unwrap();
}

/// A snapshot taken mid-episode and restored into a fresh VecEnv continues identically.
#[test]
fn snapshot_restore_continues_identically() {
    for id in ["CartPole-v1", "Pendulum-v1", "FrozenLake-v1", "CliffWalking-v1"] {
        let mut a = make_vec(id, 3).unwrap();
        if id == "Pendulum-v1" {
            a.set_normalize(NormalizeConfig::default());
        }
        a.reset(11).unwrap();
        let cont = id == "Pendulum-v1";
        let act = |t: usize| -> (Vec<i64>, Vec<f32>) {
            (
                (0..3)
                    .map(|i| ((t * 7 + i * 3) % if id == "CartPole-v1" { 2 } else { 4 }) as i64)
                    .collect(),
                (0..3).map(|i| ((t + i) as f32 * 0.37).sin() * 2.0).collect(),
            )
        };
        let step = |v: &mut taper_envs::VecEnv, t: usize| {
            let (d, c) = act(t);
            if cont {
                v.step(VecAction::Continuous(&c)).unwrap()
            } else {
                v.step(VecAction::Discrete(&d)).unwrap()
            }
        };
        for t in 0..37 {
            step(&mut a, t);
        }
        let snap = a.snapshot().unwrap();
        let json = serde_json::to_string(&snap).unwrap();
        let mut b = make_vec(id, 3).unwrap();
        b.restore(&serde_json::from_str(&json).unwrap()).unwrap();
        for t in 37..400 {
            step(&mut a, t);
            step(&mut b, t);
            assert_eq!(a.obs(), b.obs(), "{id} step {t}");
            assert_eq!(a.rewards(), b.rewards());
            assert_eq!(a.finished(), b.finished());
        }
    }
}
