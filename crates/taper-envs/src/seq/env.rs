//! A sequence task as an [`Env`]: the observation is the context so far (prompt, then the
//! completion's tokens, padded to a fixed window), an action appends one token, and the
//! episode ends with the stop token (terminated) or when the token budget is spent
//! (truncated); the verifier's score is the reward of that last step, every other reward 0.

use super::vocab::{self, EOS, PAD};
use super::{SeqTask, Split};
use crate::env::{from_snapshot, out_of_space, seeded_rng, to_snapshot, Action, Env, StepOutcome};
use crate::error::{EnvError, Result};
use crate::spaces::Space;
use rand_chacha::ChaCha8Rng;
use serde::{Deserialize, Serialize};

/// A task as an env: see the module doc.
#[derive(Debug)]
pub struct SeqEnv {
    task: Box<dyn SeqTask>,
    split: Split,
    obs_space: Space,
    act_space: Space,
    rng: Option<ChaCha8Rng>,
    prompt: Vec<u32>,
    completion: Vec<u32>,
    done: bool,
}

#[derive(Serialize, Deserialize)]
struct Snap {
    rng: Option<ChaCha8Rng>,
    prompt: Vec<u32>,
    completion: Vec<u32>,
    done: bool,
}

impl SeqEnv {
    /// `task`'s prompts of `split` as an env.
    pub fn new(task: Box<dyn SeqTask>, split: Split) -> Self {
        let window = task.max_prompt_len() + task.max_new_tokens();
        SeqEnv {
            task,
            split,
            obs_space: Space::MultiDiscrete {
                nvec: vec![vocab::SIZE; window],
            },
            act_space: Space::Discrete { n: vocab::SIZE },
            rng: None,
            prompt: Vec::new(),
            completion: Vec::new(),
            done: true,
        }
    }

    /// The task.
    pub fn task(&self) -> &dyn SeqTask {
        self.task.as_ref()
    }

    /// The current prompt and the completion so far.
    pub fn context(&self) -> (&[u32], &[u32]) {
        (&self.prompt, &self.completion)
    }

    fn write_obs(&self, obs: &mut [f32]) -> Result<()> {
        crate::env::check_obs(obs, self.obs_space.flat_dim())?;
        obs.fill(PAD as f32);
        for (o, &t) in obs.iter_mut().zip(self.prompt.iter().chain(&self.completion)) {
            *o = t as f32;
        }
        Ok(())
    }
}

impl Env for SeqEnv {
    fn observation_space(&self) -> &Space {
        &self.obs_space
    }
    fn action_space(&self) -> &Space {
        &self.act_space
    }
    fn reset_into(&mut self, seed: Option<u64>, obs: &mut [f32]) -> Result<()> {
        seeded_rng(seed, &mut self.rng);
        let rng = self.rng.as_mut().expect("seeded above");
        self.prompt = self.task.sample_prompt(rng, self.split)?;
        self.completion.clear();
        self.done = false;
        self.write_obs(obs)
    }
    fn step_into(&mut self, action: Action<'_>, obs: &mut [f32]) -> Result<StepOutcome> {
        if self.done {
            return Err(EnvError::Invalid {
                name: "step",
                reason: "the episode has ended: call reset".into(),
            });
        }
        let t = match action {
            Action::Discrete(a) if (0..vocab::SIZE as i64).contains(&a) => a as u32,
            other => return Err(out_of_space(other, &self.act_space)),
        };
        let mut out = StepOutcome::default();
        if t == EOS {
            out.terminated = true;
        } else {
            self.completion.push(t);
            out.truncated = self.completion.len() >= self.task.max_new_tokens();
        }
        if out.terminated || out.truncated {
            out.reward = self.task.score(&self.prompt, &self.completion);
            self.done = true;
        }
        self.write_obs(obs)?;
        Ok(out)
    }
    fn is_success(&self) -> Option<bool> {
        self.done
            .then(|| self.task.score(&self.prompt, &self.completion) == 1.0)
    }
    fn render_ansi(&self) -> Option<String> {
        Some(format!(
            "{}{}",
            vocab::render(&self.prompt),
            vocab::render(&self.completion)
        ))
    }
    fn observe(&self, obs: &mut [f32]) -> Result<()> {
        if self.prompt.is_empty() {
            return Err(EnvError::Invalid {
                name: "observe",
                reason: "no episode yet: call reset".into(),
            });
        }
        self.write_obs(obs)
    }
    fn snapshot(&self) -> Option<serde_json::Value> {
        to_snapshot(&Snap {
            rng: self.rng.clone(),
            prompt: self.prompt.clone(),
            completion: self.completion.clone(),
            done: self.done,
        })
    }
    fn restore(&mut self, v: &serde_json::Value) -> Result<()> {
        let s: Snap = from_snapshot("sequence task", v)?;
        if s.prompt.len() > self.task.max_prompt_len() || s.completion.len() > self.task.max_new_tokens() {
            return Err(EnvError::Invalid {
                name: "snapshot",
                reason: "the context does not fit this task's window".into(),
            });
        }
        (self.rng, self.prompt, self.completion, self.done) = (s.rng, s.prompt, s.completion, s.done);
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::seq::make_task;

    /// The answer typed token by token, then the stop token, earns 1; a wrong digit earns 0;
    /// the budget truncates; the window holds the whole context.
    #[test]
    fn typing_the_answer_scores_one() {
        let task = make_task("SeqAddition-v0", &Default::default()).unwrap();
        let mut env = SeqEnv::new(task, Split::Train);
        let obs = env.reset(Some(3)).unwrap();
        assert_eq!(obs.len(), 9 + 5);
        let answer = env.task().answer(env.context().0).unwrap();
        for &t in &answer {
            let s = env.step(Action::Discrete(t as i64)).unwrap();
            assert_eq!((s.reward, s.terminated), (0.0, false));
        }
        let s = env.step(Action::Discrete(EOS as i64)).unwrap();
        assert_eq!((s.reward, s.terminated, s.truncated), (1.0, true, false));
        assert_eq!(env.is_success(), Some(true));
        assert!(env.step(Action::Discrete(EOS as i64)).is_err());
        // Never stopping: truncated at the budget, scored as it stands.
        env.reset(None).unwrap();
        let mut last = None;
        for _ in 0..env.task().max_new_tokens() {
            last = Some(env.step(Action::Discrete(vocab::digit(1) as i64)).unwrap());
        }
        let last = last.unwrap();
        assert!(last.truncated && !last.terminated);
        assert_eq!(last.reward, 0.0);
        assert!(env.step(Action::Discrete(99)).is_err());
        // Snapshots restore exactly.
        env.reset(Some(5)).unwrap();
        env.step(Action::Discrete(vocab::digit(4) as i64)).unwrap();
        let snap = env.snapshot().unwrap();
        let mut other = SeqEnv::new(make_task("SeqAddition-v0", &Default::default()).unwrap(), Split::Train);
        other.restore(&snap).unwrap();
        assert_eq!(other.context(), env.context());
        assert_eq!(other.reset(None).unwrap(), env.reset(None).unwrap());
    }
}
