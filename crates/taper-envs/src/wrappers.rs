//! Env wrappers: [`TimeLimit`], [`ClipAction`] and [`RecordEpisodeStatistics`].
//!
//! Observation and reward normalisation live on the vectorised side, in
//! [`crate::vec_env::NormalizeConfig`], where their statistics can be saved and frozen.
//!
//! ```
//! use taper_envs::{classic::CartPole, wrappers::TimeLimit, Action, Env};
//! let mut env = TimeLimit::new(CartPole::new(), 3);
//! env.reset(Some(0))?;
//! env.step(Action::Discrete(0))?;
//! env.step(Action::Discrete(1))?;
//! assert!(env.step(Action::Discrete(0))?.truncated);
//! # Ok::<(), taper_envs::EnvError>(())
//! ```

use crate::env::{Action, Env, StepOutcome};
use crate::error::Result;
use crate::spaces::Space;

/// The `Env` methods a wrapper passes straight to `self.inner`.
/// `inner`, `inner_mut` and `into_inner` of a wrapper whose env is the field `inner`.
macro_rules! inner_access {
    () => {
        /// The wrapped env.
        pub fn inner(&self) -> &E {
            &self.inner
        }
        /// The wrapped env, mutably (to set its state; the wrapper's own counters stay).
        pub fn inner_mut(&mut self) -> &mut E {
            &mut self.inner
        }
        /// Unwraps the env.
        pub fn into_inner(self) -> E {
            self.inner
        }
    };
}

macro_rules! forward_to_inner {
    () => {
        fn observation_space(&self) -> &Space {
            self.inner.observation_space()
        }
        fn action_space(&self) -> &Space {
            self.inner.action_space()
        }
        fn is_success(&self) -> Option<bool> {
            self.inner.is_success()
        }
        fn render_ansi(&self) -> Option<String> {
            self.inner.render_ansi()
        }
        fn render_state(&self) -> Option<Vec<f64>> {
            self.inner.render_state()
        }
        fn observe(&self, obs: &mut [f32]) -> Result<()> {
            self.inner.observe(obs)
        }
    };
}

/// Sets `truncated` once `max_steps` steps have elapsed in an episode (Gymnasium's
/// `TimeLimit`).
#[derive(Debug, Clone)]
pub struct TimeLimit<E> {
    inner: E,
    max_steps: usize,
    elapsed: usize,
}

impl<E: Env> TimeLimit<E> {
    /// Wraps `inner` with a limit of `max_steps` steps.
    pub fn new(inner: E, max_steps: usize) -> Self {
        TimeLimit {
            inner,
            max_steps,
            elapsed: 0,
        }
    }
    inner_access!();
    /// The limit.
    pub fn max_steps(&self) -> usize {
        self.max_steps
    }
}

impl<E: Env> Env for TimeLimit<E> {
    forward_to_inner!();
    fn reset_into(&mut self, seed: Option<u64>, obs: &mut [f32]) -> Result<()> {
        self.elapsed = 0;
        self.inner.reset_into(seed, obs)
    }
    fn snapshot(&self) -> Option<serde_json::Value> {
        Some(serde_json::json!({ "elapsed": self.elapsed, "inner": self.inner.snapshot()? }))
    }
    fn restore(&mut self, v: &serde_json::Value) -> Result<()> {
        let elapsed = v
            .get("elapsed")
            .and_then(|e| e.as_u64())
            .ok_or_else(|| snapshot_err("TimeLimit"))?;
        self.inner
            .restore(v.get("inner").ok_or_else(|| snapshot_err("TimeLimit"))?)?;
        self.elapsed = elapsed as usize;
        Ok(())
    }
    fn step_into(&mut self, action: Action<'_>, obs: &mut [f32]) -> Result<StepOutcome> {
        let mut o = self.inner.step_into(action, obs)?;
        self.elapsed += 1;
        if self.elapsed >= self.max_steps {
            o.truncated = true;
        }
        Ok(o)
    }
}

/// Clips continuous actions to the `Box` bounds before passing them on (Gymnasium's
/// `ClipAction`); NaN actions are still rejected by the env.
#[derive(Debug, Clone)]
pub struct ClipAction<E> {
    inner: E,
    buf: Vec<f32>,
}

impl<E: Env> ClipAction<E> {
    /// Wraps `inner`.
    pub fn new(inner: E) -> Self {
        let n = inner.action_space().flat_dim();
        ClipAction {
            inner,
            buf: vec![0.0; n],
        }
    }
    inner_access!();
}

impl<E: Env> Env for ClipAction<E> {
    forward_to_inner!();
    fn reset_into(&mut self, seed: Option<u64>, obs: &mut [f32]) -> Result<()> {
        self.inner.reset_into(seed, obs)
    }
    fn snapshot(&self) -> Option<serde_json::Value> {
        self.inner.snapshot()
    }
    fn restore(&mut self, v: &serde_json::Value) -> Result<()> {
        self.inner.restore(v)
    }
    fn step_into(&mut self, action: Action<'_>, obs: &mut [f32]) -> Result<StepOutcome> {
        match (action, self.inner.action_space()) {
            (Action::Continuous(a), Space::Box { low, high }) if a.len() == low.len() => {
                for i in 0..a.len() {
                    self.buf[i] = if a[i].is_nan() {
                        a[i]
                    } else {
                        a[i].clamp(low[i], high[i])
                    };
                }
                let buf = std::mem::take(&mut self.buf);
                let r = self.inner.step_into(Action::Continuous(&buf), obs);
                self.buf = buf;
                r
            }
            _ => self.inner.step_into(action, obs),
        }
    }
}

/// A finished episode's statistics.
#[derive(Debug, Clone, Copy, PartialEq, Default, serde::Serialize, serde::Deserialize)]
pub struct EpisodeRecord {
    /// Sum of raw rewards.
    pub ret: f64,
    /// Number of steps.
    pub len: u64,
    /// Success, where the env has the notion.
    pub success: Option<bool>,
}

/// Records each episode's return and length (Gymnasium's `RecordEpisodeStatistics`); the last
/// finished episode is in [`RecordEpisodeStatistics::last_episode`].
#[derive(Debug, Clone)]
pub struct RecordEpisodeStatistics<E> {
    inner: E,
    ret: f64,
    len: u64,
    last: Option<EpisodeRecord>,
}

impl<E: Env> RecordEpisodeStatistics<E> {
    /// Wraps `inner`.
    pub fn new(inner: E) -> Self {
        RecordEpisodeStatistics {
            inner,
            ret: 0.0,
            len: 0,
            last: None,
        }
    }
    /// The last finished episode.
    pub fn last_episode(&self) -> Option<EpisodeRecord> {
        self.last
    }
    inner_access!();
}

impl<E: Env> Env for RecordEpisodeStatistics<E> {
    forward_to_inner!();
    fn reset_into(&mut self, seed: Option<u64>, obs: &mut [f32]) -> Result<()> {
        self.ret = 0.0;
        self.len = 0;
        self.inner.reset_into(seed, obs)
    }
    fn snapshot(&self) -> Option<serde_json::Value> {
        Some(
            serde_json::json!({ "ret": self.ret, "len": self.len, "last": self.last, "inner": self.inner.snapshot()? }),
        )
    }
    fn restore(&mut self, v: &serde_json::Value) -> Result<()> {
        let err = || snapshot_err("RecordEpisodeStatistics");
        let ret = v.get("ret").and_then(|x| x.as_f64()).ok_or_else(err)?;
        let len = v.get("len").and_then(|x| x.as_u64()).ok_or_else(err)?;
        let last: Option<EpisodeRecord> =
            serde_json::from_value(v.get("last").cloned().unwrap_or_default()).map_err(|_| err())?;
        self.inner.restore(v.get("inner").ok_or_else(err)?)?;
        (self.ret, self.len, self.last) = (ret, len, last);
        Ok(())
    }
    fn step_into(&mut self, action: Action<'_>, obs: &mut [f32]) -> Result<StepOutcome> {
        let o = self.inner.step_into(action, obs)?;
        self.ret += o.reward as f64;
        self.len += 1;
        if o.terminated || o.truncated {
            self.last = Some(EpisodeRecord {
                ret: self.ret,
                len: self.len,
                success: self.inner.is_success(),
            });
        }
        Ok(o)
    }
}

fn snapshot_err(what: &str) -> crate::EnvError {
    crate::EnvError::Invalid {
        name: "snapshot",
        reason: format!("not a {what} state"),
    }
}
