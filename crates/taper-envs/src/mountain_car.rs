//! Gymnasium's `MountainCarContinuous-v0` (`classic_control/continuous_mountain_car.py`),
//! re-exported from [`crate::classic`].
//!
//! Gymnasium keeps the state in a NumPy float32 array after every step (float64 only between
//! a reset and the first step), and NumPy 2 computes `float32 op Python float` in float32. The
//! step here repeats that arithmetic in the same precision, operation by operation, so that
//! trajectories match Gymnasium's to the last bit of an f32 (tested against recorded ones).

use crate::env::{check_obs, from_snapshot, out_of_space, seeded_rng, to_snapshot, Action, Env, StepOutcome};
use crate::error::{EnvError, Result};
use crate::spaces::Space;
use rand::Rng;
use rand_chacha::ChaCha8Rng;
use serde::{Deserialize, Serialize};

/// Gymnasium's `MountainCarContinuous-v0`: a car in a valley, force `a ∈ [−1, 1]` times power
/// 0.0015 against gravity `0.0025·cos(3x)`, speed clipped to ±0.07, position to
/// [−1.2, 0.6] (stopping at the left wall); the episode terminates on reaching x ≥ 0.45 with
/// v ≥ 0, which pays 100; every step costs `0.1·a²`. Starts at x uniform in [−0.6, −0.4],
/// v = 0. Unlike Gymnasium, which clips silently, a force outside [−1, 1] is an error here;
/// wrap with [`crate::wrappers::ClipAction`] to clip. The registry applies Gymnasium's time
/// limit of 999 steps.
#[derive(Debug, Clone)]
pub struct MountainCarContinuous {
    pos: f64,
    vel: f64,
    /// Whether the state is float32 (after a step), as Gymnasium's is.
    single: bool,
    rng: Option<ChaCha8Rng>,
    obs_space: Space,
    act_space: Space,
    started: bool,
}

impl MountainCarContinuous {
    /// The left wall.
    pub const MIN_POSITION: f64 = -1.2;
    /// The right end.
    pub const MAX_POSITION: f64 = 0.6;
    /// The speed limit.
    pub const MAX_SPEED: f64 = 0.07;
    /// Where the goal begins.
    pub const GOAL_POSITION: f64 = 0.45;
    /// Force per unit of action.
    pub const POWER: f64 = 0.0015;

    /// A new env; call `reset` first.
    pub fn new() -> Self {
        MountainCarContinuous {
            pos: 0.0,
            vel: 0.0,
            single: false,
            rng: None,
            obs_space: Space::Box {
                low: vec![Self::MIN_POSITION as f32, -Self::MAX_SPEED as f32],
                high: vec![Self::MAX_POSITION as f32, Self::MAX_SPEED as f32],
            },
            act_space: Space::uniform_box(1, -1.0, 1.0),
            started: false,
        }
    }
    /// The state `(x, v)`.
    pub fn state(&self) -> (f64, f64) {
        (self.pos, self.vel)
    }
    /// Sets the state as a reset does (float64 until the next step), for tests and replays.
    pub fn set_state(&mut self, pos: f64, vel: f64) {
        self.pos = pos;
        self.vel = vel;
        self.single = false;
        self.started = true;
    }
    fn write_obs(&self, obs: &mut [f32]) {
        obs[0] = self.pos as f32;
        obs[1] = self.vel as f32;
    }
    /// One step of Gymnasium's arithmetic: float32 where its state is float32, float64 on the
    /// first step after a reset. Returns whether the car reached the goal.
    fn advance(&mut self, a: f32) -> bool {
        // force * power: a float32 times a Python float, in float32.
        let push = a * Self::POWER as f32;
        let (pos, vel, at_max, at_min);
        if self.single {
            let (x, v) = (self.pos as f32, self.vel as f32);
            // math.cos of the float32 product 3·x, in float64, then weakly cast to float32.
            let gravity = (0.0025 * ((3.0f32 * x) as f64).cos()) as f32;
            let v = (v + (push - gravity)).clamp(-Self::MAX_SPEED as f32, Self::MAX_SPEED as f32);
            let x = x + v;
            at_max = x > Self::MAX_POSITION as f32;
            at_min = x < Self::MIN_POSITION as f32;
            (pos, vel) = (x as f64, v as f64);
        } else {
            let gravity = (0.0025 * (3.0 * self.pos).cos()) as f32;
            let v = (self.vel + (push - gravity) as f64).clamp(-Self::MAX_SPEED, Self::MAX_SPEED);
            let x = self.pos + v;
            at_max = x > Self::MAX_POSITION;
            at_min = x < Self::MIN_POSITION;
            (pos, vel) = (x, v);
        }
        let pos = if at_max {
            Self::MAX_POSITION
        } else if at_min {
            Self::MIN_POSITION
        } else {
            pos
        };
        let vel = if at_min && vel < 0.0 { 0.0 } else { vel };
        let done = if self.single {
            pos as f32 >= Self::GOAL_POSITION as f32 && vel >= 0.0
        } else {
            pos >= Self::GOAL_POSITION && vel >= 0.0
        };
        // The new state is a float32 array.
        self.pos = pos as f32 as f64;
        self.vel = vel as f32 as f64;
        self.single = true;
        done
    }
}

impl Default for MountainCarContinuous {
    fn default() -> Self {
        Self::new()
    }
}

impl Env for MountainCarContinuous {
    fn observation_space(&self) -> &Space {
        &self.obs_space
    }
    fn observe(&self, obs: &mut [f32]) -> Result<()> {
        check_obs(obs, 2)?;
        if !self.started {
            return Err(EnvError::NeedsReset("MountainCarContinuous-v0"));
        }
        self.write_obs(obs);
        Ok(())
    }
    fn action_space(&self) -> &Space {
        &self.act_space
    }
    fn reset_into(&mut self, seed: Option<u64>, obs: &mut [f32]) -> Result<()> {
        check_obs(obs, 2)?;
        seeded_rng(seed, &mut self.rng);
        let rng = self.rng.as_mut().unwrap();
        self.pos = rng.random_range(-0.6..-0.4);
        self.vel = 0.0;
        self.single = false;
        self.started = true;
        self.write_obs(obs);
        Ok(())
    }
    fn step_into(&mut self, action: Action<'_>, obs: &mut [f32]) -> Result<StepOutcome> {
        check_obs(obs, 2)?;
        let a = match action {
            Action::Continuous(a) if a.len() == 1 && self.act_space.contains(a) => a[0],
            _ => return Err(out_of_space(action, &self.act_space)),
        };
        if !self.started {
            return Err(EnvError::NeedsReset("MountainCarContinuous-v0"));
        }
        let done = self.advance(a);
        // The cost uses the action as given, in float64 (math.pow).
        let reward = if done { 100.0 } else { 0.0 } - (a as f64).powi(2) * 0.1;
        self.write_obs(obs);
        Ok(StepOutcome {
            reward: reward as f32,
            terminated: done,
            truncated: false,
        })
    }
    fn render_state(&self) -> Option<Vec<f64>> {
        Some(vec![self.pos, self.vel])
    }
    fn snapshot(&self) -> Option<serde_json::Value> {
        to_snapshot(&MountainCarSnap {
            pos: self.pos,
            vel: self.vel,
            single: self.single,
            rng: self.rng.clone(),
            started: self.started,
        })
    }
    fn restore(&mut self, v: &serde_json::Value) -> Result<()> {
        let s: MountainCarSnap = from_snapshot("MountainCarContinuous", v)?;
        (self.pos, self.vel, self.single, self.rng, self.started) = (s.pos, s.vel, s.single, s.rng, s.started);
        Ok(())
    }
}

#[derive(Serialize, Deserialize)]
struct MountainCarSnap {
    pos: f64,
    vel: f64,
    single: bool,
    rng: Option<ChaCha8Rng>,
    started: bool,
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn bad_actions_are_errors() {
        let mut e = MountainCarContinuous::new();
        assert!(matches!(
            e.step(Action::Continuous(&[0.0])),
            Err(EnvError::NeedsReset(_))
        ));
        e.reset(Some(0)).unwrap();
        assert!(e.step(Action::Continuous(&[1.5])).is_err());
        assert!(e.step(Action::Continuous(&[f32::NAN])).is_err());
        assert!(e.step(Action::Discrete(0)).is_err());
        assert!(e.step(Action::Continuous(&[0.5])).is_ok());
    }

    /// Full throttle from the bottom never reaches the goal (the car is too weak), and the
    /// left wall stops the car.
    #[test]
    fn too_weak_to_climb_directly_and_the_wall_stops_it() {
        let mut e = MountainCarContinuous::new();
        e.set_state(-0.5, 0.0);
        for _ in 0..300 {
            let s = e.step(Action::Continuous(&[1.0])).unwrap();
            assert!(!s.terminated);
        }
        e.set_state(-1.19, -0.07);
        let s = e.step(Action::Continuous(&[-1.0])).unwrap();
        assert_eq!(e.state(), (-1.2f32 as f64, 0.0));
        assert!((s.reward + 0.1).abs() < 1e-7);
    }

    #[test]
    fn reset_is_seeded_and_in_range() {
        let (mut a, mut b) = (MountainCarContinuous::new(), MountainCarContinuous::new());
        assert_eq!(a.reset(Some(4)).unwrap(), b.reset(Some(4)).unwrap());
        for s in 0..50 {
            let o = a.reset(Some(s)).unwrap();
            assert!((-0.6..=-0.4).contains(&o[0]) && o[1] == 0.0);
        }
    }
}
