//! The single-agent [`Env`] trait: Gymnasium's contract in Rust.
//!
//! `reset(seed)` starts an episode; `step(action)` returns the next observation, the reward,
//! `terminated` (an MDP terminal state: bootstrap with 0) and `truncated` (a limit outside the
//! MDP, usually time: bootstrap from the final observation). After either, call `reset`.
//!
//! Observations are flat `f32` vectors; a `Discrete` observation is its index as one value.
//! The `*_into` methods write into caller buffers and never allocate; [`Env::reset`] and
//! [`Env::step`] are allocating conveniences.
//!
//! ```
//! use taper_envs::{make, Action, Env};
//! let mut env = make("CartPole-v1")?;
//! let obs = env.reset(Some(42))?;
//! assert_eq!(obs.len(), 4);
//! let step = env.step(Action::Discrete(1))?;
//! assert_eq!(step.reward, 1.0);
//! # Ok::<(), taper_envs::EnvError>(())
//! ```

use crate::error::Result;
use crate::spaces::Space;

/// An action, borrowed.
#[derive(Debug, Clone, Copy, PartialEq)]
pub enum Action<'a> {
    /// An index into a `Discrete` space.
    Discrete(i64),
    /// A vector in a `Box` space.
    Continuous(&'a [f32]),
    /// Indices into a `MultiDiscrete` space.
    MultiDiscrete(&'a [i64]),
}

impl std::fmt::Display for Action<'_> {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            Action::Discrete(a) => write!(f, "{a}"),
            Action::Continuous(a) => write!(f, "{a:?}"),
            Action::MultiDiscrete(a) => write!(f, "{a:?}"),
        }
    }
}

/// The scalar part of a step's result.
#[derive(Debug, Clone, Copy, PartialEq, Default)]
pub struct StepOutcome {
    /// The reward for the transition.
    pub reward: f32,
    /// An MDP terminal state was reached.
    pub terminated: bool,
    /// The episode was cut by a limit outside the MDP (time).
    pub truncated: bool,
}

/// A step's full result, from [`Env::step`].
#[derive(Debug, Clone, PartialEq)]
pub struct Step {
    /// The next observation.
    pub obs: Vec<f32>,
    /// The reward.
    pub reward: f32,
    /// Terminal state reached.
    pub terminated: bool,
    /// Cut by a limit.
    pub truncated: bool,
}

/// A single-agent environment.
pub trait Env: Send {
    /// The observation space.
    fn observation_space(&self) -> &Space;
    /// The action space.
    fn action_space(&self) -> &Space;
    /// Starts an episode and writes the first observation. `Some(seed)` reseeds the env's
    /// generator; `None` continues its stream (an env never seeded starts from seed 0, so runs
    /// are reproducible by default).
    fn reset_into(&mut self, seed: Option<u64>, obs: &mut [f32]) -> Result<()>;
    /// Applies an action and writes the next observation.
    fn step_into(&mut self, action: Action<'_>, obs: &mut [f32]) -> Result<StepOutcome>;
    /// Whether the episode that just ended was a success, for envs with such a notion
    /// (reaching the goal of a gridworld); `None` otherwise.
    fn is_success(&self) -> Option<bool> {
        None
    }
    /// A text picture of the current state, for envs that can draw one.
    fn render_ansi(&self) -> Option<String> {
        None
    }
    /// The raw state for envs that can draw a frame (e.g. cart position and pole angle).
    fn render_state(&self) -> Option<Vec<f64>> {
        None
    }

    /// Writes the observation of the current state, for envs that can (every env in this
    /// crate): after [`Env::restore`] or a state setter such as `CartPole::set_state`, this is
    /// what the policy would see. An error before the first reset, or for envs that cannot.
    /// The snapshot layouts are in `docs/snapshots.md`.
    ///
    /// ```
    /// use taper_envs::{make, Env};
    /// let mut env = make("CartPole-v1")?;
    /// env.reset(Some(0))?;
    /// let mut snap = env.snapshot().unwrap();
    /// snap["inner"]["state"] = serde_json::json!([0.0, 0.0, 0.1, 0.0]); // tilt the pole
    /// env.restore(&snap)?;
    /// let mut obs = [0f32; 4];
    /// env.observe(&mut obs)?;
    /// assert_eq!(obs, [0.0, 0.0, 0.1, 0.0]);
    /// # Ok::<(), taper_envs::EnvError>(())
    /// ```
    fn observe(&self, obs: &mut [f32]) -> Result<()> {
        let _ = obs;
        Err(crate::EnvError::Invalid {
            name: "observe",
            reason: "this env writes observations only from reset and step".into(),
        })
    }

    /// The env's full state (dynamics, generator, counters) as JSON, for exact resume;
    /// `None` for envs that cannot save it.
    fn snapshot(&self) -> Option<serde_json::Value> {
        None
    }
    /// Restores a state saved by [`Env::snapshot`].
    fn restore(&mut self, snapshot: &serde_json::Value) -> Result<()> {
        let _ = snapshot;
        Err(crate::EnvError::Invalid {
            name: "snapshot",
            reason: "this env cannot restore a saved state".into(),
        })
    }

    /// Allocating form of [`Env::reset_into`].
    fn reset(&mut self, seed: Option<u64>) -> Result<Vec<f32>> {
        let mut obs = vec![0.0; self.observation_space().flat_dim()];
        self.reset_into(seed, &mut obs)?;
        Ok(obs)
    }
    /// Allocating form of [`Env::step_into`].
    fn step(&mut self, action: Action<'_>) -> Result<Step> {
        let mut obs = vec![0.0; self.observation_space().flat_dim()];
        let o = self.step_into(action, &mut obs)?;
        Ok(Step {
            obs,
            reward: o.reward,
            terminated: o.terminated,
            truncated: o.truncated,
        })
    }
}

impl<E: Env + ?Sized> Env for Box<E> {
    fn observation_space(&self) -> &Space {
        (**self).observation_space()
    }
    fn action_space(&self) -> &Space {
        (**self).action_space()
    }
    fn reset_into(&mut self, seed: Option<u64>, obs: &mut [f32]) -> Result<()> {
        (**self).reset_into(seed, obs)
    }
    fn step_into(&mut self, action: Action<'_>, obs: &mut [f32]) -> Result<StepOutcome> {
        (**self).step_into(action, obs)
    }
    fn is_success(&self) -> Option<bool> {
        (**self).is_success()
    }
    fn render_ansi(&self) -> Option<String> {
        (**self).render_ansi()
    }
    fn render_state(&self) -> Option<Vec<f64>> {
        (**self).render_state()
    }
    fn observe(&self, obs: &mut [f32]) -> Result<()> {
        (**self).observe(obs)
    }
    fn snapshot(&self) -> Option<serde_json::Value> {
        (**self).snapshot()
    }
    fn restore(&mut self, snapshot: &serde_json::Value) -> Result<()> {
        (**self).restore(snapshot)
    }
}

/// Gymnasium's seeding rule for an env's generator: `Some(seed)` reseeds it, `None` keeps the
/// current stream, and an env never seeded starts from seed 0.
///
/// ```
/// use taper_envs::env::seeded_rng;
/// let mut rng = None;
/// seeded_rng(None, &mut rng);
/// assert!(rng.is_some());
/// ```
pub fn seeded_rng(seed: Option<u64>, current: &mut Option<rand_chacha::ChaCha8Rng>) {
    use rand::SeedableRng;
    match seed {
        Some(s) => *current = Some(rand_chacha::ChaCha8Rng::seed_from_u64(s)),
        None => {
            if current.is_none() {
                *current = Some(rand_chacha::ChaCha8Rng::seed_from_u64(0));
            }
        }
    }
}

/// A typed error unless the caller's observation buffer holds `dim` values.
pub fn check_obs(obs: &[f32], dim: usize) -> Result<()> {
    if obs.len() != dim {
        return Err(crate::EnvError::Shape {
            what: "observation buffer",
            expected: dim,
            got: obs.len(),
        });
    }
    Ok(())
}

/// The error for an action outside the env's action space.
pub fn out_of_space(action: Action<'_>, space: &Space) -> crate::EnvError {
    crate::EnvError::ActionOutOfSpace {
        action: action.to_string(),
        space: space.to_string(),
    }
}

/// Serialises a snapshot struct (for [`Env::snapshot`]).
pub fn to_snapshot<T: serde::Serialize>(v: &T) -> Option<serde_json::Value> {
    serde_json::to_value(v).ok()
}

/// Every env's snapshot, or an error if one of them cannot save its state (for the vector
/// wrappers' snapshots).
pub(crate) fn all_snapshots(snaps: impl Iterator<Item = Option<serde_json::Value>>) -> Result<Vec<serde_json::Value>> {
    snaps
        .map(|s| {
            s.ok_or_else(|| crate::EnvError::Invalid {
                name: "snapshot",
                reason: "an env cannot save its state".into(),
            })
        })
        .collect()
}

/// Deserialises a snapshot struct with a typed error naming the env (for [`Env::restore`]).
pub fn from_snapshot<T: serde::de::DeserializeOwned>(env: &'static str, v: &serde_json::Value) -> Result<T> {
    serde_json::from_value(v.clone()).map_err(|e| crate::EnvError::Invalid {
        name: "snapshot",
        reason: format!("not a {env} state: {e}"),
    })
}
