//! Classic control: `CartPole-v1` and `Pendulum-v1`, with Gymnasium's dynamics, reset ranges
//! and termination. The state is kept in f64 as Gymnasium's NumPy state is; observations are
//! f32. The time limits (500 and 200 steps) are applied by the registry's
//! [`crate::wrappers::TimeLimit`], as `gymnasium.make` does. `MountainCarContinuous-v0`
//! (float32 state, as Gymnasium's) lives in [`crate::mountain_car`] and is re-exported here.

pub use crate::mountain_car::MountainCarContinuous;

use crate::env::{check_obs, from_snapshot, out_of_space, seeded_rng, to_snapshot, Action, Env, StepOutcome};
use crate::error::{EnvError, Result};
use crate::spaces::Space;
use rand::Rng;
use rand_chacha::ChaCha8Rng;
use serde::{Deserialize, Serialize};

/// Gymnasium's `CartPole-v1` (`classic_control/cartpole.py`): Euler integration, force ±10,
/// termination at |x| > 2.4 or |θ| > 12°, reward 1 per step (also on the terminating step).
#[derive(Debug, Clone)]
pub struct CartPole {
    state: [f64; 4],
    rng: Option<ChaCha8Rng>,
    obs_space: Space,
    act_space: Space,
    done: bool,
    started: bool,
}

impl CartPole {
    /// Gravity, m/s².
    pub const GRAVITY: f64 = 9.8;
    /// Cart mass.
    pub const MASS_CART: f64 = 1.0;
    /// Pole mass.
    pub const MASS_POLE: f64 = 0.1;
    /// Half the pole's length.
    pub const LENGTH: f64 = 0.5;
    /// Force magnitude.
    pub const FORCE_MAG: f64 = 10.0;
    /// Seconds per step.
    pub const TAU: f64 = 0.02;
    /// Pole angle limit, radians (12°).
    pub const THETA_THRESHOLD: f64 = 12.0 * 2.0 * std::f64::consts::PI / 360.0;
    /// Cart position limit.
    pub const X_THRESHOLD: f64 = 2.4;

    /// A new env; call `reset` first.
    pub fn new() -> Self {
        let high = [
            (Self::X_THRESHOLD * 2.0) as f32,
            f32::MAX,
            (Self::THETA_THRESHOLD * 2.0) as f32,
            f32::MAX,
        ];
        CartPole {
            state: [0.0; 4],
            rng: None,
            obs_space: Space::Box {
                low: high.iter().map(|h| -h).collect(),
                high: high.to_vec(),
            },
            act_space: Space::Discrete { n: 2 },
            done: false,
            started: false,
        }
    }

    /// The state `[x, ẋ, θ, θ̇]`.
    pub fn state(&self) -> [f64; 4] {
        self.state
    }
    /// Sets the state (for tests and replays) and marks the episode as running.
    pub fn set_state(&mut self, s: [f64; 4]) {
        self.state = s;
        self.done = false;
        self.started = true;
    }

    fn write_obs(&self, obs: &mut [f32]) {
        for (o, s) in obs.iter_mut().zip(self.state) {
            *o = s as f32;
        }
    }
}

impl Default for CartPole {
    fn default() -> Self {
        Self::new()
    }
}

impl Env for CartPole {
    fn observation_space(&self) -> &Space {
        &self.obs_space
    }
    fn observe(&self, obs: &mut [f32]) -> Result<()> {
        check_obs(obs, 4)?;
        if !self.started {
            return Err(EnvError::NeedsReset("CartPole-v1"));
        }
        self.write_obs(obs);
        Ok(())
    }
    fn action_space(&self) -> &Space {
        &self.act_space
    }
    fn reset_into(&mut self, seed: Option<u64>, obs: &mut [f32]) -> Result<()> {
        check_obs(obs, 4)?;
        seeded_rng(seed, &mut self.rng);
        let rng = self.rng.as_mut().unwrap();
        for s in self.state.iter_mut() {
            *s = rng.random_range(-0.05..0.05);
        }
        self.done = false;
        self.started = true;
        self.write_obs(obs);
        Ok(())
    }
    fn step_into(&mut self, action: Action<'_>, obs: &mut [f32]) -> Result<StepOutcome> {
        check_obs(obs, 4)?;
        let a = match action {
            Action::Discrete(a) if a == 0 || a == 1 => a,
            _ => return Err(out_of_space(action, &self.act_space)),
        };
        if !self.started || self.done {
            return Err(EnvError::NeedsReset("CartPole-v1"));
        }
        let [x, x_dot, theta, theta_dot] = self.state;
        let force = if a == 1 { Self::FORCE_MAG } else { -Self::FORCE_MAG };
        let total_mass = Self::MASS_POLE + Self::MASS_CART;
        let polemass_length = Self::MASS_POLE * Self::LENGTH;
        let (sin, cos) = theta.sin_cos();
        let temp = (force + polemass_length * theta_dot * theta_dot * sin) / total_mass;
        let theta_acc = (Self::GRAVITY * sin - cos * temp)
            / (Self::LENGTH * (4.0 / 3.0 - Self::MASS_POLE * cos * cos / total_mass));
        let x_acc = temp - polemass_length * theta_acc * cos / total_mass;
        let x = x + Self::TAU * x_dot;
        let x_dot = x_dot + Self::TAU * x_acc;
        let theta = theta + Self::TAU * theta_dot;
        let theta_dot = theta_dot + Self::TAU * theta_acc;
        self.state = [x, x_dot, theta, theta_dot];
        let terminated = !(-Self::X_THRESHOLD..=Self::X_THRESHOLD).contains(&x)
            || !(-Self::THETA_THRESHOLD..=Self::THETA_THRESHOLD).contains(&theta);
        self.done = terminated;
        self.write_obs(obs);
        Ok(StepOutcome {
            reward: 1.0,
            terminated,
            truncated: false,
        })
    }
    fn render_state(&self) -> Option<Vec<f64>> {
        Some(self.state.to_vec())
    }
    fn snapshot(&self) -> Option<serde_json::Value> {
        to_snapshot(&CartPoleSnap {
            state: self.state,
            rng: self.rng.clone(),
            done: self.done,
            started: self.started,
        })
    }
    fn restore(&mut self, v: &serde_json::Value) -> Result<()> {
        let s: CartPoleSnap = from_snapshot("CartPole", v)?;
        (self.state, self.rng, self.done, self.started) = (s.state, s.rng, s.done, s.started);
        Ok(())
    }
}

#[derive(Serialize, Deserialize)]
struct CartPoleSnap {
    state: [f64; 4],
    rng: Option<ChaCha8Rng>,
    done: bool,
    started: bool,
}

/// Gymnasium's `Pendulum-v1` (`classic_control/pendulum.py`): torque clipped to ±2,
/// `θ̇ ← clip(θ̇ + (3g/2l·sin θ + 3/(ml²)·u)·dt, ±8)`, `θ ← θ + θ̇·dt`, reward
/// `−(norm(θ)² + 0.1θ̇² + 0.001u²)` computed on the state before the step; it never
/// terminates. Unlike Gymnasium, which clips silently, a torque outside [−2, 2] is an error
/// here; wrap with [`crate::wrappers::ClipAction`] to clip (CleanRL's stack does).
#[derive(Debug, Clone)]
pub struct Pendulum {
    th: f64,
    thdot: f64,
    last_u: f64,
    rng: Option<ChaCha8Rng>,
    obs_space: Space,
    act_space: Space,
    started: bool,
}

impl Pendulum {
    /// Maximum angular speed.
    pub const MAX_SPEED: f64 = 8.0;
    /// Maximum torque.
    pub const MAX_TORQUE: f64 = 2.0;
    /// Seconds per step.
    pub const DT: f64 = 0.05;
    /// Gravity (Gymnasium's default `g=10.0`).
    pub const G: f64 = 10.0;
    /// Mass.
    pub const M: f64 = 1.0;
    /// Length.
    pub const L: f64 = 1.0;

    /// A new env; call `reset` first.
    pub fn new() -> Self {
        Pendulum {
            th: 0.0,
            thdot: 0.0,
            last_u: 0.0,
            rng: None,
            obs_space: Space::Box {
                low: vec![-1.0, -1.0, -8.0],
                high: vec![1.0, 1.0, 8.0],
            },
            act_space: Space::uniform_box(1, -2.0, 2.0),
            started: false,
        }
    }
    /// The state `(θ, θ̇)`.
    pub fn state(&self) -> (f64, f64) {
        (self.th, self.thdot)
    }
    /// Sets the state (for tests and replays).
    pub fn set_state(&mut self, th: f64, thdot: f64) {
        self.th = th;
        self.thdot = thdot;
        self.started = true;
    }
    fn write_obs(&self, obs: &mut [f32]) {
        obs[0] = self.th.cos() as f32;
        obs[1] = self.th.sin() as f32;
        obs[2] = self.thdot as f32;
    }
}

impl Default for Pendulum {
    fn default() -> Self {
        Self::new()
    }
}

/// `((x + π) mod 2π) − π` with a non-negative modulo, as NumPy's `%`.
pub fn angle_normalize(x: f64) -> f64 {
    let two_pi = 2.0 * std::f64::consts::PI;
    (x + std::f64::consts::PI).rem_euclid(two_pi) - std::f64::consts::PI
}

impl Env for Pendulum {
    fn observation_space(&self) -> &Space {
        &self.obs_space
    }
    fn observe(&self, obs: &mut [f32]) -> Result<()> {
        check_obs(obs, 3)?;
        if !self.started {
            return Err(EnvError::NeedsReset("Pendulum-v1"));
        }
        self.write_obs(obs);
        Ok(())
    }
    fn action_space(&self) -> &Space {
        &self.act_space
    }
    fn reset_into(&mut self, seed: Option<u64>, obs: &mut [f32]) -> Result<()> {
        check_obs(obs, 3)?;
        seeded_rng(seed, &mut self.rng);
        let rng = self.rng.as_mut().unwrap();
        self.th = rng.random_range(-std::f64::consts::PI..std::f64::consts::PI);
        self.thdot = rng.random_range(-1.0..1.0);
        self.last_u = 0.0;
        self.started = true;
        self.write_obs(obs);
        Ok(())
    }
    fn step_into(&mut self, action: Action<'_>, obs: &mut [f32]) -> Result<StepOutcome> {
        check_obs(obs, 3)?;
        let u = match action {
            Action::Continuous(a) if a.len() == 1 && self.act_space.contains(a) => a[0] as f64,
            _ => return Err(out_of_space(action, &self.act_space)),
        };
        if !self.started {
            return Err(EnvError::NeedsReset("Pendulum-v1"));
        }
        let u = u.clamp(-Self::MAX_TORQUE, Self::MAX_TORQUE);
        self.last_u = u;
        let (th, thdot) = (self.th, self.thdot);
        let costs = angle_normalize(th).powi(2) + 0.1 * thdot * thdot + 0.001 * u * u;
        let mut newthdot =
            thdot + (3.0 * Self::G / (2.0 * Self::L) * th.sin() + 3.0 / (Self::M * Self::L * Self::L) * u) * Self::DT;
        newthdot = newthdot.clamp(-Self::MAX_SPEED, Self::MAX_SPEED);
        self.th = th + newthdot * Self::DT;
        self.thdot = newthdot;
        self.write_obs(obs);
        Ok(StepOutcome {
            reward: -costs as f32,
            terminated: false,
            truncated: false,
        })
    }
    fn render_state(&self) -> Option<Vec<f64>> {
        Some(vec![self.th, self.thdot, self.last_u])
    }
    fn snapshot(&self) -> Option<serde_json::Value> {
        to_snapshot(&PendulumSnap {
            th: self.th,
            thdot: self.thdot,
            last_u: self.last_u,
            rng: self.rng.clone(),
            started: self.started,
        })
    }
    fn restore(&mut self, v: &serde_json::Value) -> Result<()> {
        let s: PendulumSnap = from_snapshot("Pendulum", v)?;
        (self.th, self.thdot, self.last_u, self.rng, self.started) = (s.th, s.thdot, s.last_u, s.rng, s.started);
        Ok(())
    }
}

#[derive(Serialize, Deserialize)]
struct PendulumSnap {
    th: f64,
    thdot: f64,
    last_u: f64,
    rng: Option<ChaCha8Rng>,
    started: bool,
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn cartpole_bad_actions() {
        let mut e = CartPole::new();
        assert!(matches!(e.step(Action::Discrete(0)), Err(EnvError::NeedsReset(_))));
        e.reset(Some(0)).unwrap();
        assert!(matches!(
            e.step(Action::Discrete(2)),
            Err(EnvError::ActionOutOfSpace { .. })
        ));
        assert!(matches!(
            e.step(Action::Continuous(&[0.0])),
            Err(EnvError::ActionOutOfSpace { .. })
        ));
    }

    #[test]
    fn pendulum_bad_actions() {
        let mut e = Pendulum::new();
        e.reset(Some(0)).unwrap();
        assert!(e.step(Action::Continuous(&[2.5])).is_err());
        assert!(e.step(Action::Continuous(&[f32::NAN])).is_err());
        assert!(e.step(Action::Discrete(0)).is_err());
        assert!(e.step(Action::Continuous(&[1.0])).is_ok());
    }

    #[test]
    fn reset_is_seeded_and_in_range() {
        let mut a = CartPole::new();
        let mut b = CartPole::new();
        assert_eq!(a.reset(Some(3)).unwrap(), b.reset(Some(3)).unwrap());
        assert!(a.reset(None).unwrap().iter().all(|v| v.abs() <= 0.05));
        let mut p = Pendulum::new();
        let o = p.reset(Some(1)).unwrap();
        assert!((o[0] * o[0] + o[1] * o[1] - 1.0).abs() < 1e-6 && o[2].abs() <= 1.0);
    }

    #[test]
    fn angle_normalize_matches_numpy_modulo() {
        let pi = std::f64::consts::PI;
        assert!((angle_normalize(3.0 * pi / 2.0) + pi / 2.0).abs() < 1e-12);
        assert!((angle_normalize(-3.0 * pi / 2.0) - pi / 2.0).abs() < 1e-12);
        assert!((angle_normalize(0.5) - 0.5).abs() < 1e-12);
    }
}
