//! A run that goes non-finite mid-training stops with an error naming the update and the
//! loss term, and the last checkpoint written before it stays intact and finite.

use taper_algos::ppo::{Ppo, PpoConfig};
use taper_envs::classic::CartPole;
use taper_envs::{Action, Env, Space, StepOutcome, VecEnv};
use taper_train::checkpoint::{newest, Checkpoint};
use taper_train::{TrainError, TrainOptions, Trainer};

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

#[test]
fn divergence_keeps_the_last_good_checkpoint() {
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
    let mut ppo = Ppo::with_envs(PpoConfig::default(), VecEnv::new(envs).unwrap(), 0).unwrap();
    let dir = tempfile::tempdir().unwrap();
    let options = TrainOptions {
        quiet: true,
        checkpoint_every: 512,
        ..TrainOptions::default()
    };
    let err = Trainer::new(dir.path())
        .options(options)
        .fit(&mut ppo, 5120)
        .unwrap_err();
    match &err {
        TrainError::NonFinite { update, term } => {
            assert_eq!(*update, 3, "{err}");
            assert!(!term.is_empty());
        }
        other => panic!("expected a non-finite error, got {other}"),
    }
    assert!(err.to_string().contains("at update 3"), "{err}");
    assert!(
        !dir.path().join("checkpoint").exists(),
        "no final checkpoint from a diverged run"
    );
    let ck = Checkpoint::load(&newest(dir.path()).unwrap()).unwrap();
    assert_eq!(ck.state.updates, 2, "updates 1 and 2 were checkpointed, 3 was not");
    for (name, t) in &ck.tensors {
        let v: Vec<f32> = t.flatten_all().unwrap().to_vec1().unwrap();
        assert!(v.iter().all(|x| x.is_finite()), "{name}");
    }
}
