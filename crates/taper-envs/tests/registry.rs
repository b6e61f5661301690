//! Registry keyword arguments shared by the classic-control envs.

use taper_envs::{make_with, Action, Kwargs};

/// `max_episode_steps` moves the time limit (truncation, not termination, at the new step);
/// 0, a non-number and an unknown key are errors naming the problem.
#[test]
fn max_episode_steps_sets_the_time_limit() {
    let kw = |pairs: &[(&str, &str)]| -> Kwargs { pairs.iter().map(|(k, v)| (k.to_string(), v.to_string())).collect() };
    for (id, default) in [
        ("Pendulum-v1", 200usize),
        ("MountainCarContinuous-v0", 999),
        ("CartPole-v1", 500),
    ] {
        // CartPole falls long before its default limit under any open-loop policy.
        let cases: &[(Option<&str>, usize)] = if id == "CartPole-v1" {
            &[(Some("7"), 7)]
        } else {
            &[(None, default), (Some("7"), 7)]
        };
        assert_eq!(taper_envs::registry::spec(id).unwrap().max_episode_steps, Some(default));
        for &(limit, want) in cases {
            let args = match limit {
                Some(l) => kw(&[("max_episode_steps", l)]),
                None => Kwargs::new(),
            };
            let mut env = make_with(id, &args).unwrap();
            let mut obs = vec![0f32; env.observation_space().flat_dim()];
            env.reset_into(Some(3), &mut obs).unwrap();
            let mut steps = 0;
            loop {
                let s = if id == "CartPole-v1" {
                    // Alternate pushes keep the pole up for seven steps.
                    env.step_into(Action::Discrete((steps % 2) as i64), &mut obs).unwrap()
                } else {
                    env.step_into(Action::Continuous(&[0.0]), &mut obs).unwrap()
                };
                steps += 1;
                if s.terminated || s.truncated {
                    assert!(s.truncated && !s.terminated, "{id}: ended by the limit at {steps}");
                    break;
                }
            }
            assert_eq!(steps, want, "{id} with {limit:?}");
        }
        let err = |v: &str| {
            make_with(id, &kw(&[("max_episode_steps", v)]))
                .err()
                .unwrap()
                .to_string()
        };
        assert!(err("0").contains("at least one step"), "{}", err("0"));
        assert!(err("x").contains("must be a number"), "{}", err("x"));
        let e = make_with(id, &kw(&[("foo", "1")])).err().unwrap().to_string();
        assert!(e.contains("max_episode_steps"), "{e}");
    }
}
