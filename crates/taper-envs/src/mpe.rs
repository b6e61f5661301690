//! Multi-agent particle environments: `SimpleSpread`, as PettingZoo's `simple_spread_v3`
//! (identical in mpe2 1.1): N agents cover N landmarks; every agent acts in every step
//! (PettingZoo's Parallel API shape).
//!
//! Faithful to the v3 physics (`dt` 0.1, damping 0.25, contact force 100 with margin 1e-3,
//! position updated with the *old* velocity before damping and force), the reward
//! `(1 − local_ratio)·(−Σ_landmarks min_agents dist) + local_ratio·(−#other agents in
//! collision)`, and the 6N-wide observation (own velocity, own position, landmarks relative,
//! other agents relative, other agents' communication, always 0). Episodes are truncated after
//! `max_cycles` steps. Checked against mpe2 itself (`tests/mpe_golden.rs`).
//!
//! Deliberate differences: positions are drawn from taper's seeded ChaCha stream, not NumPy's
//! PCG64, so a seed gives different (equally distributed) starts than PettingZoo; continuous
//! actions outside [0, 1] and NaN are errors rather than clipped with a warning.
//!
//! ```
//! use taper_envs::mpe::{MultiAction, SimpleSpread, SpreadConfig};
//! use taper_envs::ParallelEnv;
//! let mut env = SimpleSpread::new(SpreadConfig::default())?;
//! let mut obs = vec![0f32; 3 * 18];
//! env.reset_into(Some(0), &mut obs)?;
//! let mut out = taper_envs::mpe::StepBuffers::new(3);
//! env.step_into(MultiAction::Discrete(&[0, 1, 4]), &mut obs, &mut out)?;
//! assert_eq!(out.rewards.len(), 3);
//! # Ok::<(), taper_envs::EnvError>(())
//! ```

use crate::error::{EnvError, Result};
use crate::parallel::{EpisodeStat, ParallelEnv, Reduce, VecParallel};
pub use crate::parallel::{MultiAction, StepBuffers};
use crate::spaces::Space;
use rand::{Rng, SeedableRng};
use rand_chacha::ChaCha8Rng;
use serde::{Deserialize, Serialize};

const DT: f64 = 0.1;
const DAMPING: f64 = 0.25;
const CONTACT_FORCE: f64 = 100.0;
const CONTACT_MARGIN: f64 = 1e-3;
const SENSITIVITY: f64 = 5.0;
const AGENT_RADIUS: f64 = 0.15;

/// Simple Spread's parameters (PettingZoo's defaults).
#[derive(Debug, Clone, Copy, PartialEq, Serialize, Deserialize)]
pub struct SpreadConfig {
    /// Agents (= landmarks); PettingZoo's default 3.
    pub n: usize,
    /// Weight of the local (collision) reward; default 0.5.
    pub local_ratio: f64,
    /// Steps per episode; default 25.
    pub max_cycles: usize,
    /// `Box(0, 1, (5,))` actions instead of `Discrete(5)`.
    pub continuous: bool,
}

impl Default for SpreadConfig {
    fn default() -> Self {
        SpreadConfig {
            n: 3,
            local_ratio: 0.5,
            max_cycles: 25,
            continuous: false,
        }
    }
}

/// The state of one [`SimpleSpread`], as its [`ParallelEnv::snapshot`] writes it.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
struct SpreadSnapshot {
    pos: Vec<[f64; 2]>,
    vel: Vec<[f64; 2]>,
    landmarks: Vec<[f64; 2]>,
    t: usize,
    rng: Option<ChaCha8Rng>,
    started: bool,
}

/// Simple Spread.
#[derive(Debug, Clone)]
pub struct SimpleSpread {
    cfg: SpreadConfig,
    pos: Vec<[f64; 2]>,
    vel: Vec<[f64; 2]>,
    landmarks: Vec<[f64; 2]>,
    t: usize,
    rng: Option<ChaCha8Rng>,
    started: bool,
    obs_space: Space,
    act_space: Space,
    force: Vec<[f64; 2]>,
    agents: Vec<String>,
}

impl SimpleSpread {
    /// A new env; `n ≥ 1`, `local_ratio ∈ [0, 1]`, `max_cycles ≥ 1`.
    pub fn new(cfg: SpreadConfig) -> Result<Self> {
        if cfg.n == 0 || cfg.n > 1000 {
            return Err(EnvError::Invalid {
                name: "n",
                reason: format!("need 1..=1000 agents, got {}", cfg.n),
            });
        }
        if !(0.0..=1.0).contains(&cfg.local_ratio) {
            return Err(EnvError::Invalid {
                name: "local_ratio",
                reason: format!("must be in [0, 1], got {}", cfg.local_ratio),
            });
        }
        if cfg.max_cycles == 0 {
            return Err(EnvError::Invalid {
                name: "max_cycles",
                reason: "must be at least 1".into(),
            });
        }
        let n = cfg.n;
        let act_space = if cfg.continuous {
            Space::uniform_box(5, 0.0, 1.0)
        } else {
            Space::Discrete { n: 5 }
        };
        Ok(SimpleSpread {
            cfg,
            pos: vec![[0.0; 2]; n],
            vel: vec![[0.0; 2]; n],
            landmarks: vec![[0.0; 2]; n],
            t: 0,
            rng: None,
            started: false,
            obs_space: Space::uniform_box(6 * n, f32::NEG_INFINITY, f32::INFINITY),
            act_space,
            force: vec![[0.0; 2]; n],
            agents: (0..n).map(|i| format!("agent_{i}")).collect(),
        })
    }
    /// The parameters.
    pub fn config(&self) -> &SpreadConfig {
        &self.cfg
    }
    /// Width of one agent's observation.
    pub fn obs_dim(&self) -> usize {
        6 * self.cfg.n
    }
    /// Agent positions.
    pub fn agent_positions(&self) -> &[[f64; 2]] {
        &self.pos
    }
    /// Agent velocities.
    pub fn agent_velocities(&self) -> &[[f64; 2]] {
        &self.vel
    }
    /// Landmark positions.
    pub fn landmark_positions(&self) -> &[[f64; 2]] {
        &self.landmarks
    }

    /// Starts an episode at given positions (velocities 0), e.g. to replay a recorded one.
    pub fn reset_to(&mut self, agents: &[[f64; 2]], landmarks: &[[f64; 2]], obs: &mut [f32]) -> Result<()> {
        let still = vec![[0.0; 2]; agents.len()];
        self.set_state(agents, &still, landmarks, 0, obs)
    }

    /// Puts the env in a given state: agent positions and velocities, landmark positions and
    /// the step count `t` (the episode is cut at `max_cycles`), and writes the observations.
    /// The random stream is kept.
    pub fn set_state(
        &mut self,
        agents: &[[f64; 2]],
        velocities: &[[f64; 2]],
        landmarks: &[[f64; 2]],
        t: usize,
        obs: &mut [f32],
    ) -> Result<()> {
        let n = self.cfg.n;
        for (what, got) in [
            ("agent positions", agents.len()),
            ("agent velocities", velocities.len()),
            ("landmark positions", landmarks.len()),
        ] {
            if got != n {
                return Err(EnvError::Shape { what, expected: n, got });
            }
        }
        if agents
            .iter()
            .chain(velocities)
            .chain(landmarks)
            .flatten()
            .any(|v| !v.is_finite())
        {
            return Err(EnvError::Invalid {
                name: "state",
                reason: "positions and velocities must be finite".into(),
            });
        }
        self.pos.copy_from_slice(agents);
        self.vel.copy_from_slice(velocities);
        self.landmarks.copy_from_slice(landmarks);
        self.t = t;
        self.started = true;
        self.write_obs(obs)
    }

    /// Starts an episode: agents, then landmarks, uniform in [−1, 1]². `Some(seed)` reseeds.
    fn reset_random(&mut self, seed: Option<u64>, obs: &mut [f32]) -> Result<()> {
        match seed {
            Some(s) => self.rng = Some(ChaCha8Rng::seed_from_u64(s)),
            None if self.rng.is_none() => self.rng = Some(ChaCha8Rng::seed_from_u64(0)),
            None => {}
        }
        let rng = self.rng.as_mut().unwrap();
        let mut draw = || [rng.random_range(-1.0..1.0), rng.random_range(-1.0..1.0)];
        let agents: Vec<[f64; 2]> = (0..self.cfg.n).map(|_| draw()).collect();
        let lms: Vec<[f64; 2]> = (0..self.cfg.n).map(|_| draw()).collect();
        self.reset_to(&agents, &lms, obs)
    }

    fn decode(&self, actions: MultiAction<'_>, i: usize) -> Result<[f64; 2]> {
        let u = match actions {
            MultiAction::Discrete(a) => match a[i] {
                0 => [0.0, 0.0],
                1 => [-1.0, 0.0],
                2 => [1.0, 0.0],
                3 => [0.0, -1.0],
                4 => [0.0, 1.0],
                other => {
                    return Err(EnvError::ActionOutOfSpace {
                        action: format!("agent {i}: {other}"),
                        space: self.act_space.to_string(),
                    })
                }
            },
            MultiAction::Continuous(a) => {
                let v = &a[i * 5..(i + 1) * 5];
                if !self.act_space.contains(v) {
                    return Err(EnvError::ActionOutOfSpace {
                        action: format!("agent {i}: {v:?}"),
                        space: self.act_space.to_string(),
                    });
                }
                [(v[2] - v[1]) as f64, (v[4] - v[3]) as f64]
            }
        };
        Ok([u[0] * SENSITIVITY, u[1] * SENSITIVITY])
    }

    /// One parallel step: every agent acts, then the world moves. Writes the next
    /// observations `[N, 6N]` and the per-agent rewards and flags.
    fn step_world(&mut self, actions: MultiAction<'_>, obs: &mut [f32], out: &mut StepBuffers) -> Result<()> {
        let n = self.cfg.n;
        match actions {
            MultiAction::Discrete(a) if a.len() != n => {
                return Err(EnvError::Shape {
                    what: "actions (one per agent)",
                    expected: n,
                    got: a.len(),
                })
            }
            MultiAction::Continuous(a) if a.len() != 5 * n => {
                return Err(EnvError::Shape {
                    what: "actions (five per agent)",
                    expected: 5 * n,
                    got: a.len(),
                })
            }
            MultiAction::Discrete(_) if self.cfg.continuous => {
                return Err(EnvError::ActionOutOfSpace {
                    action: "discrete actions".into(),
                    space: self.act_space.to_string(),
                })
            }
            MultiAction::Continuous(_) if !self.cfg.continuous => {
                return Err(EnvError::ActionOutOfSpace {
                    action: "continuous actions".into(),
                    space: self.act_space.to_string(),
                })
            }
            _ => {}
        }
        if !self.started || self.t >= self.cfg.max_cycles {
            return Err(EnvError::NeedsReset("SimpleSpread"));
        }
        for i in 0..n {
            self.force[i] = self.decode(actions, i)?;
        }
        // Agent–agent contact forces, each unordered pair once.
        let dmin = 2.0 * AGENT_RADIUS;
        for a in 0..n {
            for b in a + 1..n {
                let dx = self.pos[a][0] - self.pos[b][0];
                let dy = self.pos[a][1] - self.pos[b][1];
                let d = (dx * dx + dy * dy).sqrt();
                // k·softplus(−(d − dmin)/k), as np.logaddexp(0, x).
                let x = -(d - dmin) / CONTACT_MARGIN;
                let pen = CONTACT_MARGIN
                    * if x > 0.0 {
                        x + (-x).exp().ln_1p()
                    } else {
                        x.exp().ln_1p()
                    };
                let f = [CONTACT_FORCE * dx / d * pen, CONTACT_FORCE * dy / d * pen];
                self.force[a][0] += f[0];
                self.force[a][1] += f[1];
                self.force[b][0] -= f[0];
                self.force[b][1] -= f[1];
            }
        }
        // v3 order: position with the old velocity, then damping, then force (mass 1).
        for i in 0..n {
            for k in 0..2 {
                self.pos[i][k] += self.vel[i][k] * DT;
                self.vel[i][k] = self.vel[i][k] * (1.0 - DAMPING) + self.force[i][k] * DT;
            }
        }
        self.t += 1;
        let global = -self.min_distance_sum();
        let lr = self.cfg.local_ratio;
        for i in 0..n {
            let local = -(self.collisions_of(i) as f64);
            out.rewards[i] = ((1.0 - lr) * global + lr * local) as f32;
            out.terminated[i] = false;
            out.truncated[i] = self.t >= self.cfg.max_cycles;
        }
        self.write_obs(obs)
    }

    /// `Σ_landmarks min_agents dist`, the coverage term (convention-free metric).
    pub fn min_distance_sum(&self) -> f64 {
        self.landmarks
            .iter()
            .map(|l| {
                self.pos
                    .iter()
                    .map(|p| ((p[0] - l[0]).powi(2) + (p[1] - l[1]).powi(2)).sqrt())
                    .fold(f64::INFINITY, f64::min)
            })
            .sum()
    }

    /// Number of other agents that agent `i` overlaps (distance strictly below 0.3).
    pub fn collisions_of(&self, i: usize) -> usize {
        let p = self.pos[i];
        (0..self.cfg.n)
            .filter(|&j| {
                j != i
                    && ((p[0] - self.pos[j][0]).powi(2) + (p[1] - self.pos[j][1]).powi(2)).sqrt() < 2.0 * AGENT_RADIUS
            })
            .count()
    }

    /// Colliding unordered pairs now.
    pub fn colliding_pairs(&self) -> usize {
        (0..self.cfg.n).map(|i| self.collisions_of(i)).sum::<usize>() / 2
    }

    fn write_obs(&self, obs: &mut [f32]) -> Result<()> {
        let n = self.cfg.n;
        let od = self.obs_dim();
        if obs.len() != n * od {
            return Err(EnvError::Shape {
                what: "observation buffer",
                expected: n * od,
                got: obs.len(),
            });
        }
        for i in 0..n {
            let o = &mut obs[i * od..(i + 1) * od];
            let p = self.pos[i];
            o[0] = self.vel[i][0] as f32;
            o[1] = self.vel[i][1] as f32;
            o[2] = p[0] as f32;
            o[3] = p[1] as f32;
            let mut k = 4;
            for l in &self.landmarks {
                o[k] = (l[0] - p[0]) as f32;
                o[k + 1] = (l[1] - p[1]) as f32;
                k += 2;
            }
            for j in (0..n).filter(|&j| j != i) {
                o[k] = (self.pos[j][0] - p[0]) as f32;
                o[k + 1] = (self.pos[j][1] - p[1]) as f32;
                k += 2;
            }
            for v in o[k..].iter_mut() {
                *v = 0.0; // other agents' communication: silent agents
            }
        }
        Ok(())
    }
}

/// M Simple Spread envs stepped together.
pub type VecSpread = VecParallel<SimpleSpread>;

/// `m` Simple Spread envs with the same config, stepped together.
pub fn vec_spread(cfg: SpreadConfig, m: usize) -> Result<VecSpread> {
    VecParallel::new((0..m).map(|_| SimpleSpread::new(cfg)).collect::<Result<Vec<_>>>()?)
}

/// Simple Spread's per-step statistics: the coverage distance (mean per step) and the
/// colliding pairs (summed over the episode).
const SPREAD_STATS: &[EpisodeStat] = &[
    EpisodeStat {
        name: "min_distance",
        reduce: Reduce::MeanPerStep,
    },
    EpisodeStat {
        name: "collisions",
        reduce: Reduce::Sum,
    },
];

impl ParallelEnv for SimpleSpread {
    fn agents(&self) -> &[String] {
        &self.agents
    }
    fn observe(&self, obs: &mut [f32]) -> Result<()> {
        if !self.started {
            return Err(EnvError::NeedsReset("SimpleSpread-v3"));
        }
        self.write_obs(obs)
    }
    fn num_agents(&self) -> usize {
        self.cfg.n
    }
    /// Every agent's observation space (`6N` wide).
    fn observation_space(&self, _agent: usize) -> &Space {
        &self.obs_space
    }
    /// Every agent's action space: `Discrete(5)`, or `Box(0, 1, (5,))` when continuous.
    fn action_space(&self, _agent: usize) -> &Space {
        &self.act_space
    }
    fn obs_width(&self) -> usize {
        self.cfg.n * self.obs_dim()
    }
    fn reset_into(&mut self, seed: Option<u64>, obs: &mut [f32]) -> Result<()> {
        self.reset_random(seed, obs)
    }
    fn step_into(&mut self, actions: MultiAction<'_>, obs: &mut [f32], out: &mut StepBuffers) -> Result<()> {
        self.step_world(actions, obs, out)
    }
    fn episode_stats(&self) -> &'static [EpisodeStat] {
        SPREAD_STATS
    }
    fn step_stats(&self, out: &mut [f64]) {
        out[0] = self.min_distance_sum();
        out[1] = self.colliding_pairs() as f64;
    }
    /// Positions, velocities, landmarks, step and generator.
    fn snapshot(&self) -> Option<serde_json::Value> {
        crate::env::to_snapshot(&SpreadSnapshot {
            pos: self.pos.clone(),
            vel: self.vel.clone(),
            landmarks: self.landmarks.clone(),
            t: self.t,
            rng: self.rng.clone(),
            started: self.started,
        })
    }
    fn restore(&mut self, v: &serde_json::Value) -> Result<()> {
        let s: SpreadSnapshot = crate::env::from_snapshot("SimpleSpread", v)?;
        let n = self.cfg.n;
        for (what, got) in [
            ("positions", s.pos.len()),
            ("velocities", s.vel.len()),
            ("landmarks", s.landmarks.len()),
        ] {
            if got != n {
                return Err(EnvError::Shape { what, expected: n, got });
            }
        }
        if s.t > self.cfg.max_cycles {
            return Err(EnvError::Invalid {
                name: "snapshot",
                reason: format!("step {} is past max_cycles {}", s.t, self.cfg.max_cycles),
            });
        }
        (self.pos, self.vel, self.landmarks) = (s.pos, s.vel, s.landmarks);
        (self.t, self.rng, self.started) = (s.t, s.rng, s.started);
        Ok(())
    }
    /// Agent positions, then landmark positions, as `x, y` pairs.
    fn render_state(&self) -> Option<Vec<f64>> {
        let mut v: Vec<f64> = self.pos.iter().flat_map(|p| [p[0], p[1]]).collect();
        v.extend(self.landmarks.iter().flat_map(|p| [p[0], p[1]]));
        Some(v)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn bad_actions_are_typed_errors() {
        let mut env = SimpleSpread::new(SpreadConfig::default()).unwrap();
        let mut obs = vec![0f32; 54];
        let mut out = StepBuffers::new(3);
        assert!(matches!(
            env.step_into(MultiAction::Discrete(&[0, 0, 0]), &mut obs, &mut out),
            Err(EnvError::NeedsReset(_))
        ));
        env.reset_into(Some(1), &mut obs).unwrap();
        assert!(matches!(
            env.step_into(MultiAction::Discrete(&[0, 0]), &mut obs, &mut out),
            Err(EnvError::Shape { .. })
        ));
        assert!(matches!(
            env.step_into(MultiAction::Discrete(&[0, 5, 0]), &mut obs, &mut out),
            Err(EnvError::ActionOutOfSpace { .. })
        ));
        let mut c = SimpleSpread::new(SpreadConfig {
            continuous: true,
            ..SpreadConfig::default()
        })
        .unwrap();
        c.reset_into(Some(1), &mut obs).unwrap();
        let mut a = vec![0.5f32; 15];
        a[7] = f32::NAN;
        assert!(matches!(
            c.step_into(MultiAction::Continuous(&a), &mut obs, &mut out),
            Err(EnvError::ActionOutOfSpace { .. })
        ));
        a[7] = 1.5;
        assert!(c.step_into(MultiAction::Continuous(&a), &mut obs, &mut out).is_err());
        assert!(SimpleSpread::new(SpreadConfig {
            local_ratio: 1.5,
            ..SpreadConfig::default()
        })
        .is_err());
    }

    /// [derived in the reference] Under a constant action the speed tends to 0.5/0.25 = 2.
    #[test]
    fn terminal_speed_is_two() {
        let mut env = SimpleSpread::new(SpreadConfig {
            n: 1,
            max_cycles: 200,
            ..SpreadConfig::default()
        })
        .unwrap();
        let mut obs = vec![0f32; 6];
        env.reset_into(Some(0), &mut obs).unwrap();
        let mut out = StepBuffers::new(1);
        for _ in 0..150 {
            env.step_into(MultiAction::Discrete(&[2]), &mut obs, &mut out).unwrap();
        }
        assert!((env.agent_velocities()[0][0] - 2.0).abs() < 1e-9);
    }
}
