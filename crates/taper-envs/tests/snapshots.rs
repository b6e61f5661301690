//! Snapshots of every built-in env: the JSON layout documented in `docs/snapshots.md`, an
//! exact round trip through text (restored, an env observes what the original saw and then
//! steps identically), and `observe()` after a state setter.

use rand::{Rng, SeedableRng};
use taper_envs::registry::{make_parallel, specs, MULTI_AGENT_SPECS};
use taper_envs::{make, Action, Env, MultiAction, ParallelEnv, Space, StepBuffers};

/// The top-level keys of each env's snapshot, as documented.
fn documented_keys(id: &str) -> &'static [&'static str] {
    match id {
        "CartPole-v1" => &["state", "rng", "done", "started"],
        "Pendulum-v1" => &["th", "thdot", "last_u", "rng", "started"],
        "MountainCarContinuous-v0" => &["pos", "vel", "single", "rng", "started"],
        "RiskyPointMass-v0" => &["pos", "penalised", "rng", "started"],
        "FrozenLake-v1" | "FrozenLake8x8-v1" | "CliffWalking-v1" => {
            &["state", "last_success", "done", "started", "rng"]
        }
        "InventoryLostSales-v0" | "InventoryBacklog-v0" | "InventorySerial-v0" | "InventoryWarehouse-v0" => {
            &["x", "t", "rng", "started"]
        }
        "SimpleSpread-v3" => &["pos", "vel", "landmarks", "t", "rng", "started"],
        "SeqCopy-v0" | "SeqReverse-v0" | "SeqSort-v0" | "SeqAddition-v0" => &["rng", "prompt", "completion", "done"],
        _ => panic!("no documented layout for {id}"),
    }
}

/// The snapshot with the wrappers the registry adds peeled off: `{elapsed, inner}` for the
/// time limit.
fn core_snapshot(v: &serde_json::Value) -> &serde_json::Value {
    match v.get("inner") {
        Some(inner) if v.get("elapsed").is_some() => core_snapshot(inner),
        _ => v,
    }
}

fn random_action(space: &Space, rng: &mut impl Rng, buf: &mut Vec<f32>) -> Option<i64> {
    match space {
        Space::Discrete { n } => Some(rng.random_range(0..*n as i64)),
        Space::Box { low, high } => {
            buf.clear();
            buf.extend(low.iter().zip(high).map(|(&l, &h)| {
                let (l, h) = (l.max(-10.0), h.min(10.0));
                l + (h - l) * rng.random::<f32>()
            }));
            None
        }
        Space::MultiDiscrete { .. } => unreachable!("no built-in env has MultiDiscrete actions"),
    }
}

#[test]
fn single_agent_snapshots_round_trip_exactly() {
    for spec in specs() {
        let id = spec.id;
        let mut a = make(id).unwrap();
        let mut obs = a.reset(Some(7)).unwrap();
        let mut rng = rand_chacha::ChaCha8Rng::seed_from_u64(1);
        let mut buf = Vec::new();
        let space = a.action_space().clone();
        for _ in 0..5 {
            let d = random_action(&space, &mut rng, &mut buf);
            let s = a.step(d.map_or(Action::Continuous(&buf), Action::Discrete)).unwrap();
            obs = s.obs;
            if s.terminated || s.truncated {
                obs = a.reset(None).unwrap();
            }
        }
        let snap = a.snapshot().unwrap_or_else(|| panic!("{id} saves its state"));
        let core = core_snapshot(&snap);
        let mut keys: Vec<&str> = core.as_object().unwrap().keys().map(String::as_str).collect();
        let mut want = documented_keys(id).to_vec();
        keys.sort();
        want.sort();
        assert_eq!(keys, want, "{id}: snapshot layout");
        // Through text, into a fresh env.
        let text = serde_json::to_string(&snap).unwrap();
        let mut b = make(id).unwrap();
        b.restore(&serde_json::from_str(&text).unwrap()).unwrap();
        let mut seen = vec![0f32; obs.len()];
        b.observe(&mut seen).unwrap();
        assert_eq!(seen, obs, "{id}: observe() after restore");
        for _ in 0..20 {
            let d = random_action(&space, &mut rng, &mut buf);
            fn act(d: Option<i64>, buf: &[f32]) -> Action<'_> {
                d.map_or(Action::Continuous(buf), Action::Discrete)
            }
            let (x, y) = (a.step(act(d, &buf)).unwrap(), b.step(act(d, &buf)).unwrap());
            assert_eq!(x.obs, y.obs, "{id}");
            assert_eq!(x.reward.to_bits(), y.reward.to_bits(), "{id}");
            assert_eq!((x.terminated, x.truncated), (y.terminated, y.truncated), "{id}");
            if x.terminated || x.truncated {
                assert_eq!(a.reset(None).unwrap(), b.reset(None).unwrap(), "{id}");
            }
        }
        assert_eq!(a.snapshot(), b.snapshot(), "{id}");
        // A fresh env cannot observe before a reset.
        assert!(make(id).unwrap().observe(&mut seen).is_err(), "{id}");
    }
}

#[test]
fn multi_agent_snapshots_round_trip_exactly() {
    for spec in MULTI_AGENT_SPECS {
        let id = spec.id;
        let mut kw = taper_envs::Kwargs::new();
        kw.insert("agents".into(), "3".into());
        let mut a = make_parallel(id, &kw).unwrap();
        let n = a.num_agents();
        let w = a.obs_width();
        let mut obs = vec![0f32; w];
        a.reset_into(Some(3), &mut obs).unwrap();
        let mut rng = rand_chacha::ChaCha8Rng::seed_from_u64(2);
        let step = |e: &mut Box<dyn ParallelEnv>, acts: &[i64], obs: &mut [f32]| {
            let mut out = StepBuffers::new(n);
            e.step_into(MultiAction::Discrete(acts), obs, &mut out).unwrap();
            (out.rewards.clone(), out.truncated.iter().any(|&t| t))
        };
        for _ in 0..7 {
            let acts: Vec<i64> = (0..n).map(|_| rng.random_range(0..5)).collect();
            step(&mut a, &acts, &mut obs);
        }
        let snap = a.snapshot().unwrap();
        let mut keys: Vec<&str> = snap.as_object().unwrap().keys().map(String::as_str).collect();
        let mut want = documented_keys(id).to_vec();
        keys.sort();
        want.sort();
        assert_eq!(keys, want, "{id}: snapshot layout");
        let mut b = make_parallel(id, &kw).unwrap();
        b.restore(&serde_json::from_str(&serde_json::to_string(&snap).unwrap()).unwrap())
            .unwrap();
        let mut seen = vec![0f32; w];
        b.observe(&mut seen).unwrap();
        assert_eq!(seen, obs, "{id}: observe() after restore");
        let mut obs_b = obs.clone();
        for _ in 0..30 {
            let acts: Vec<i64> = (0..n).map(|_| rng.random_range(0..5)).collect();
            let (ra, ta) = step(&mut a, &acts, &mut obs);
            let (rb, tb) = step(&mut b, &acts, &mut obs_b);
            assert_eq!(obs, obs_b, "{id}");
            assert_eq!(ra, rb, "{id}");
            if ta || tb {
                assert_eq!(ta, tb);
                a.reset_into(None, &mut obs).unwrap();
                b.reset_into(None, &mut obs_b).unwrap();
            }
        }
        assert_eq!(a.snapshot(), b.snapshot(), "{id}");
    }
}

/// State setters followed by `observe()`: CartPole, Pendulum, and Simple Spread with
/// velocities (its step from a moving start differs from a still one).
#[test]
fn observe_after_setting_the_state() {
    use taper_envs::classic::{CartPole, Pendulum};
    use taper_envs::mpe::{SimpleSpread, SpreadConfig};
    let mut c = CartPole::new();
    c.set_state([0.1, -0.2, 0.03, 0.4]);
    let mut o = [0f32; 4];
    c.observe(&mut o).unwrap();
    assert_eq!(o, [0.1, -0.2, 0.03, 0.4]);
    let mut p = Pendulum::new();
    p.set_state(std::f64::consts::FRAC_PI_2, 1.5);
    let mut o = [0f32; 3];
    p.observe(&mut o).unwrap();
    assert!((o[0]).abs() < 1e-7 && (o[1] - 1.0).abs() < 1e-7 && o[2] == 1.5);
    let cfg = SpreadConfig::default();
    let (mut s, mut still) = (SimpleSpread::new(cfg).unwrap(), SimpleSpread::new(cfg).unwrap());
    let (agents, lms) = (
        [[0.1, 0.2], [-0.3, 0.4], [0.5, -0.6]],
        [[0.0, 0.0], [0.7, 0.7], [-0.7, 0.1]],
    );
    let vel = [[0.5, 0.0], [0.0, -0.5], [0.2, 0.2]];
    let mut obs = vec![0f32; 3 * 18];
    s.set_state(&agents, &vel, &lms, 0, &mut obs).unwrap();
    let mut seen = vec![0f32; 3 * 18];
    s.observe(&mut seen).unwrap();
    assert_eq!(seen, obs);
    assert_eq!(s.agent_velocities(), &vel);
    // The observation carries the velocities: (vx, vy) first.
    assert_eq!((obs[0], obs[1]), (0.5, 0.0));
    let mut obs2 = vec![0f32; 3 * 18];
    still.reset_to(&agents, &lms, &mut obs2).unwrap();
    assert_ne!(obs, obs2);
    assert!(s.set_state(&agents, &vel[..2], &lms, 0, &mut obs).is_err());
    assert!(s.set_state(&agents, &[[f64::NAN, 0.0]; 3], &lms, 0, &mut obs).is_err());
}

/// The wrappers give their env back, mutably or by value.
#[test]
fn wrappers_give_their_env_back() {
    use taper_envs::classic::CartPole;
    use taper_envs::wrappers::{ClipAction, RecordEpisodeStatistics, TimeLimit};
    let mut w = RecordEpisodeStatistics::new(ClipAction::new(TimeLimit::new(CartPole::new(), 500)));
    w.inner_mut().inner_mut().inner_mut().set_state([0.0, 0.0, 0.05, 0.0]);
    let mut o = [0f32; 4];
    w.observe(&mut o).unwrap();
    assert_eq!(o[2], 0.05);
    let cart: CartPole = w.into_inner().into_inner().into_inner();
    assert_eq!(cart.state()[2], 0.05);
}
