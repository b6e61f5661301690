//! A run that goes non-finite mid-training stops with an error naming the update and the
//! loss term, and the last checkpoint written before it stays intact and finite.

use taper_algos::callback::{Callback, Control, UpdateContext};
use taper_algos::ppo::{Ppo, PpoConfig};
use taper_algos::run::{learner_checkpoint, load_checkpoint, save_checkpoint};
use taper_algos::AlgoError;
use taper_envs::classic::CartPole;
use taper_envs::{Action, Env, Space, StepOutcome, VecEnv};

/// CartPole whose reward turns NaN after `after` steps.
struct Poisoned {
    inner: CartPole,
    steps: usize,
    after: usize,
}

impl Env for Poisoned {
    fn observation_space(&self) -> &Space {
        self.inner.observation_space()
    }
    fn action_space(&self) -> &Space {
        self.inner.action_space()
    }
    fn reset_into(&mut self, seed: Option<u64>, obs: &mut [f32]) -> taper_envs::Result<()> {
        self.inner.reset_into(seed, obs)
    }
    fn step_into(&mut self, action: Action<'_>, obs: &mut [f32]) -> taper_envs::Result<StepOutcome> {
        let mut o = self.inner.step_into(action, obs)?;
        self.steps += 1;
        if self.steps > self.after {
            o.reward = f32::NAN;
        }
        Ok(o)
    }
    fn snapshot(&self) -> Option<serde_json::Value> {
        self.inner.snapshot()
    }
}

struct CheckpointEveryUpdate {
    dir: std::path::PathBuf,
    saved: u64,
}

impl Callback for CheckpointEveryUpdate {
    fn on_update(&mut self, ctx: &UpdateContext<'_>) -> Control {
        let st = learner_checkpoint(ctx.learner, ctx.envs, "CartPole-v1", &Default::default(), 0).unwrap();
        save_checkpoint(&self.dir, ctx.learner.policy(), &st).unwrap();
        self.saved = ctx.learner.updates();
        Control::Continue
    }
}

#[test]
fn divergence_keeps_the_last_good_checkpoint() {
    let config = PpoConfig::default();
    // 4 envs x 128 steps per update; the rewards turn NaN during the 3rd rollout.
    let envs: Vec<Box<dyn Env>> = (0..4)
        .map(|_| {
            Box::new(Poisoned {
                inner: CartPole::new(),
                steps: 0,
                after: 300,
            }) as Box<dyn Env>
        })
        .collect();
    let mut venv = VecEnv::new(envs).unwrap();
    let mut ppo = Ppo::new(config, venv.observation_space(), venv.action_space(), 0).unwrap();
    let dir = std::env::temp_dir().join(format!("taper-divergence-{}", std::process::id()));
    let _ = std::fs::remove_dir_all(&dir);
    let mut cb = CheckpointEveryUpdate {
        dir: dir.join("checkpoint"),
        saved: 0,
    };
    let err = ppo.learn(&mut venv, 5120, &mut cb).unwrap_err();
    match &err {
        AlgoError::NonFinite { update, term } => {
            assert_eq!(*update, 3, "{err}");
            assert!(!term.is_empty());
        }
        other => panic!("expected a non-finite error, got {other}"),
    }
    assert!(err.to_string().contains("at update 3"), "{err}");
    assert_eq!(cb.saved, 2, "updates 1 and 2 were checkpointed, 3 was not");
    let (model, state) = load_checkpoint(&dir).unwrap();
    assert_eq!(state.updates, 2);
    assert!(model
        .actor
        .params()
        .iter()
        .chain(model.critic.net.params())
        .all(|v| v.is_finite()));
    let _ = std::fs::remove_dir_all(&dir);
}
