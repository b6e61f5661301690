//! An env of your own, through the facade: implement `Env`, register it under an id, train PPO
//! on it, save the run, load it back, evaluate it, and resume it exactly.
//!
//! ```text
//! cargo run --release --example custom_env -- runs/corridor
//! taper eval runs/corridor    # works in a program that registers Corridor-v0 too
//! ```

use serde::{Deserialize, Serialize};
use taper::envs::env::{check_obs, out_of_space, seeded_rng};
use taper::envs::registry::EnvSpec;
use taper::envs::Result as EnvResult;
use taper::prelude::*;
use taper::rand::Rng;

/// A corridor of `len` cells: the agent starts in a random cell of the left half, steps left
/// or right, and is rewarded +1 on reaching the right end (minus 0.01 a step). Episodes are
/// cut after `4·len` steps.
pub struct Corridor {
    len: usize,
    pos: usize,
    t: usize,
    rng: Option<ChaCha8Rng>,
    obs_space: Space,
    act_space: Space,
}

#[derive(Serialize, Deserialize)]
struct CorridorState {
    pos: usize,
    t: usize,
    rng: Option<ChaCha8Rng>,
}

impl Corridor {
    pub fn new(len: usize) -> Self {
        Corridor {
            len,
            pos: 0,
            t: 0,
            rng: None,
            obs_space: Space::uniform_box(1, 0.0, 1.0),
            act_space: Space::Discrete { n: 2 },
        }
    }
}

impl Env for Corridor {
    fn observation_space(&self) -> &Space {
        &self.obs_space
    }
    fn action_space(&self) -> &Space {
        &self.act_space
    }
    fn reset_into(&mut self, seed: Option<u64>, obs: &mut [f32]) -> EnvResult<()> {
        check_obs(obs, 1)?;
        seeded_rng(seed, &mut self.rng);
        let half = self.len / 2;
        self.pos = self.rng.as_mut().expect("seeded above").random_range(0..half.max(1));
        self.t = 0;
        obs[0] = self.pos as f32 / (self.len - 1) as f32;
        Ok(())
    }
    fn step_into(&mut self, action: Action<'_>, obs: &mut [f32]) -> EnvResult<StepOutcome> {
        check_obs(obs, 1)?;
        match action {
            Action::Discrete(0) => self.pos = self.pos.saturating_sub(1),
            Action::Discrete(1) => self.pos = (self.pos + 1).min(self.len - 1),
            other => return Err(out_of_space(other, &self.act_space)),
        }
        self.t += 1;
        obs[0] = self.pos as f32 / (self.len - 1) as f32;
        let done = self.pos == self.len - 1;
        Ok(StepOutcome {
            reward: if done { 1.0 } else { -0.01 },
            terminated: done,
            truncated: !done && self.t >= 4 * self.len,
        })
    }
    fn snapshot(&self) -> Option<serde_json::Value> {
        serde_json::to_value(CorridorState {
            pos: self.pos,
            t: self.t,
            rng: self.rng.clone(),
        })
        .ok()
    }
    fn restore(&mut self, v: &serde_json::Value) -> EnvResult<()> {
        let s: CorridorState =
            serde_json::from_value(v.clone()).map_err(|e| EnvError::custom("Corridor-v0", e.to_string()))?;
        (self.pos, self.t, self.rng) = (s.pos, s.t, s.rng);
        Ok(())
    }
}

/// Registers `Corridor-v0` (keyword argument `len`, default 10); a second call is a no-op.
pub fn register_corridor() {
    let spec = EnvSpec {
        id: "Corridor-v0",
        description: "walk right along a corridor (an env defined in examples/custom_env.rs)",
        max_episode_steps: Some(40),
        reward_threshold: None,
        kwargs: "len",
    };
    let _ = register(spec, |kw| {
        let len =
            match kw.get("len") {
                Some(v) => v.parse::<usize>().ok().filter(|&l| l >= 2).ok_or_else(|| {
                    EnvError::custom("Corridor-v0", format!("len must be an integer >= 2, got `{v}`"))
                })?,
                None => 10,
            };
        Ok(Box::new(Corridor::new(len)))
    });
}

#[allow(dead_code)]
fn main() -> Result<(), Box<dyn std::error::Error>> {
    let dir = std::path::PathBuf::from(std::env::args().nth(1).unwrap_or_else(|| "runs/corridor".into()));
    register_corridor();
    let mut agent = Ppo::new(PpoConfig::default(), "Corridor-v0", &Kwargs::new(), 0)?;
    agent.learn(20_000)?;
    agent.save(&dir)?;
    let loaded = Ppo::load(&dir)?;
    let opts = EvalOptions {
        episodes: 20,
        deterministic: true,
        ..EvalOptions::default()
    };
    let s = loaded.evaluate(&opts, &mut |_, _| {})?.summary();
    println!(
        "greedy return {:.3} over {} episodes, mean length {:.1}",
        s.mean_return, s.episodes, s.mean_length
    );
    Ok(())
}
