//! `RiskyPointMass-v0`: the toy env of the STAC paper (Özalp 2026), as `rl-warehouse`'s
//! `envs/risky_pointmass.py` codes it (itself adapted from CODAC's). A point in the unit square
//! moves towards a goal at the origin; a danger circle of radius 0.3 centred at (0.5, 0.5)
//! sits across the straight path from most starts, and each step inside it costs a penalty of
//! 10 with probability `0.1·exp(−4d²/r²)` (d the distance to the centre). A risk-neutral
//! policy cuts through the circle; a risk-averse one detours around it.
//!
//! Each step, from the position `p` before the move:
//! - reward `−‖p‖ − 0.1`, minus 10 with the probability above;
//! - the episode terminates if `‖p‖ < 0.05` (the move is still made);
//! - `p ← clip(p + 0.1·(a + u), 0, 1)` with `u` uniform in `[−0.02, 0.02]²`.
//!
//! Starts are uniform in `[0.3, 1]²`. The reference means to reject starts inside the circle
//! but its test never rejects (it checks a tuple, always true), so starts inside the circle
//! happen; this keeps that behaviour. The reference draws the penalty from NumPy's global
//! generator; here every draw comes from the env's seeded generator. Actions are in
//! `[−1, 1]²` (outside is an error, as for every env here; the reference clips). The registry
//! applies the reference's limit of 200 steps. [`Env::render_state`] gives `[x, y, penalised]`
//! (penalised: 1 when the last step's penalty was drawn).

use crate::env::{check_obs, from_snapshot, out_of_space, seeded_rng, to_snapshot, Action, Env, StepOutcome};
use crate::error::{EnvError, Result};
use crate::spaces::Space;
use rand::Rng;
use rand_chacha::ChaCha8Rng;
use serde::{Deserialize, Serialize};

/// See the module doc.
#[derive(Debug, Clone)]
pub struct RiskyPointMass {
    pos: [f64; 2],
    penalised: bool,
    base_risk: f64,
    penalty: f64,
    rng: Option<ChaCha8Rng>,
    obs_space: Space,
    act_space: Space,
    started: bool,
}

impl RiskyPointMass {
    /// The danger circle's centre.
    pub const CENTRE: [f64; 2] = [0.5, 0.5];
    /// Its radius.
    pub const RADIUS: f64 = 0.3;
    /// Distance to the goal that ends an episode.
    pub const GOAL_RADIUS: f64 = 0.05;
    /// Displacement per unit of action.
    pub const SPEED: f64 = 0.1;

    /// The reference's env: penalty probability 0.1 at the centre, penalty 10.
    pub fn new() -> Self {
        Self::with_risk(0.1, 10.0).expect("the reference's risk is valid")
    }

    /// With another base probability (in `[0, 1]`) and penalty (finite, ≥ 0).
    pub fn with_risk(base_risk: f64, penalty: f64) -> Result<Self> {
        if !((0.0..=1.0).contains(&base_risk) && penalty >= 0.0 && penalty.is_finite()) {
            return Err(EnvError::Invalid {
                name: "kwargs",
                reason: format!(
                    "RiskyPointMass-v0 needs base_risk_prob in [0, 1] and a finite risk_penalty ≥ 0, got {base_risk} and {penalty}"
                ),
            });
        }
        Ok(RiskyPointMass {
            pos: [0.0; 2],
            penalised: false,
            base_risk,
            penalty,
            rng: None,
            obs_space: Space::uniform_box(2, 0.0, 1.0),
            act_space: Space::uniform_box(2, -1.0, 1.0),
            started: false,
        })
    }

    /// The probability of a penalty at `p`: `base·exp(−4d²/r²)` inside the circle, 0 outside.
    pub fn risk(&self, p: [f64; 2]) -> f64 {
        let d2 = (p[0] - Self::CENTRE[0]).powi(2) + (p[1] - Self::CENTRE[1]).powi(2);
        if d2 <= Self::RADIUS * Self::RADIUS {
            self.base_risk * (-4.0 * d2 / (Self::RADIUS * Self::RADIUS)).exp()
        } else {
            0.0
        }
    }

    /// The position.
    pub fn position(&self) -> [f64; 2] {
        self.pos
    }

    fn write_obs(&self, obs: &mut [f32]) {
        obs[0] = self.pos[0] as f32;
        obs[1] = self.pos[1] as f32;
    }
}

impl Default for RiskyPointMass {
    fn default() -> Self {
        Self::new()
    }
}

impl Env for RiskyPointMass {
    fn observation_space(&self) -> &Space {
        &self.obs_space
    }
    fn action_space(&self) -> &Space {
        &self.act_space
    }
    fn observe(&self, obs: &mut [f32]) -> Result<()> {
        check_obs(obs, 2)?;
        if !self.started {
            return Err(EnvError::NeedsReset("RiskyPointMass-v0"));
        }
        self.write_obs(obs);
        Ok(())
    }
    fn reset_into(&mut self, seed: Option<u64>, obs: &mut [f32]) -> Result<()> {
        check_obs(obs, 2)?;
        seeded_rng(seed, &mut self.rng);
        let rng = self.rng.as_mut().expect("seeded_rng sets the generator");
        self.pos = [rng.random_range(0.3..1.0), rng.random_range(0.3..1.0)];
        self.penalised = false;
        self.started = true;
        self.write_obs(obs);
        Ok(())
    }
    fn step_into(&mut self, action: Action<'_>, obs: &mut [f32]) -> Result<StepOutcome> {
        check_obs(obs, 2)?;
        let a = match action {
            Action::Continuous(a) if self.act_space.contains(a) => [a[0] as f64, a[1] as f64],
            _ => return Err(out_of_space(action, &self.act_space)),
        };
        if !self.started {
            return Err(EnvError::NeedsReset("RiskyPointMass-v0"));
        }
        let p = self.pos;
        let dist = (p[0] * p[0] + p[1] * p[1]).sqrt();
        let risk = self.risk(p);
        let rng = self.rng.as_mut().expect("a started env has its generator");
        self.penalised = rng.random::<f64>() < risk;
        let mut reward = -dist - 0.1;
        if self.penalised {
            reward -= self.penalty;
        }
        let terminated = dist < Self::GOAL_RADIUS;
        for k in 0..2 {
            let slip: f64 = rng.random_range(-0.02..0.02);
            self.pos[k] = (p[k] + Self::SPEED * (a[k] + slip)).clamp(0.0, 1.0);
        }
        self.write_obs(obs);
        Ok(StepOutcome {
            reward: reward as f32,
            terminated,
            truncated: false,
        })
    }
    fn render_state(&self) -> Option<Vec<f64>> {
        Some(vec![self.pos[0], self.pos[1], self.penalised as u8 as f64])
    }
    fn snapshot(&self) -> Option<serde_json::Value> {
        to_snapshot(&Snap {
            pos: self.pos,
            penalised: self.penalised,
            rng: self.rng.clone(),
            started: self.started,
        })
    }
    fn restore(&mut self, v: &serde_json::Value) -> Result<()> {
        let s: Snap = from_snapshot("RiskyPointMass", v)?;
        (self.pos, self.penalised, self.rng, self.started) = (s.pos, s.penalised, s.rng, s.started);
        Ok(())
    }
}

#[derive(Serialize, Deserialize)]
struct Snap {
    pos: [f64; 2],
    penalised: bool,
    rng: Option<ChaCha8Rng>,
    started: bool,
}

#[cfg(test)]
mod tests {
    use super::*;

    /// The reward, the move and the termination follow the reference's formulas from the
    /// position before the move.
    #[test]
    fn step_follows_the_formulas() {
        let mut env = RiskyPointMass::with_risk(0.0, 10.0).unwrap();
        let mut obs = [0f32; 2];
        env.reset_into(Some(4), &mut obs).unwrap();
        let p = env.position();
        assert!(p.iter().all(|&x| (0.3..1.0).contains(&x)));
        let s = env.step_into(Action::Continuous(&[-1.0, 0.5]), &mut obs).unwrap();
        let want = -(p[0] * p[0] + p[1] * p[1]).sqrt() - 0.1;
        assert!((s.reward as f64 - want).abs() < 1e-6 && !s.terminated);
        let q = env.position();
        assert!((q[0] - (p[0] - 0.1)).abs() <= 0.002 + 1e-12 && (q[1] - (p[1] + 0.05)).abs() <= 0.002 + 1e-12);
        assert!(env.step_into(Action::Continuous(&[1.5, 0.0]), &mut obs).is_err());
    }

    /// The risk is 0.1 at the centre, 0.1·e⁻¹ half-way to the rim and 0 outside; the penalty rate at
    /// the centre is 0.1 (20 000 steps standing still, within 4 standard errors).
    #[test]
    fn penalty_rate_at_the_centre() {
        let env = RiskyPointMass::new();
        assert!((env.risk([0.5, 0.5]) - 0.1).abs() < 1e-12);
        assert!((env.risk([0.65, 0.5]) - 0.1 * (-1f64).exp()).abs() < 1e-9);
        assert_eq!(env.risk([0.81, 0.5]), 0.0);
        let mut env = RiskyPointMass::new();
        let mut obs = [0f32; 2];
        env.reset_into(Some(1), &mut obs).unwrap();
        let n = 20_000;
        let mut hits = 0;
        for _ in 0..n {
            env.pos = [0.5, 0.5];
            let s = env.step_into(Action::Continuous(&[0.0, 0.0]), &mut obs).unwrap();
            if s.reward < -5.0 {
                hits += 1;
            }
        }
        let rate = hits as f64 / n as f64;
        let se = (0.1f64 * 0.9 / n as f64).sqrt();
        assert!((rate - 0.1).abs() < 4.0 * se, "{rate}");
    }

    /// Reaching the goal terminates; the snapshot restores the exact continuation.
    #[test]
    fn goal_terminates_and_snapshots_restore() {
        let mut env = RiskyPointMass::new();
        let mut obs = [0f32; 2];
        env.reset_into(Some(2), &mut obs).unwrap();
        let snap = env.snapshot().unwrap();
        let mut a = Vec::new();
        for _ in 0..30 {
            a.push(env.step_into(Action::Continuous(&[-1.0, -1.0]), &mut obs).unwrap());
        }
        let mut other = RiskyPointMass::new();
        other.restore(&snap).unwrap();
        for s in &a {
            assert_eq!(
                *s,
                other.step_into(Action::Continuous(&[-1.0, -1.0]), &mut obs).unwrap()
            );
        }
        env.pos = [0.03, 0.02];
        assert!(
            env.step_into(Action::Continuous(&[0.0, 0.0]), &mut obs)
                .unwrap()
                .terminated
        );
        assert!(RiskyPointMass::with_risk(1.5, 10.0).is_err());
    }
}
