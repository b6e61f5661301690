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
//! let mut env = SimpleSpread::new(SpreadConfig::default())?;
//! let mut obs = vec![0f32; 3 * 18];
//! env.reset_into(Some(0), &mut obs)?;
//! let mut out = taper_envs::mpe::StepBuffers::new(3);
//! env.step_into(MultiAction::Discrete(&[0, 1, 4]), &mut obs, &mut out)?;
//! assert_eq!(out.rewards.len(), 3);
//! # Ok::<(), taper_envs::EnvError>(())
//! ```

use crate::error::{EnvError, Result};
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

/// One step's actions for all agents.
#[derive(Debug, Clone, Copy)]
pub enum MultiAction<'a> {
    /// `[N]` indices in 0..5: no-op, left, right, down, up.
    Discrete(&'a [i64]),
    /// `[N, 5]` values in [0, 1].
    Continuous(&'a [f32]),
}

/// Per-agent results of a step, preallocated.
#[derive(Debug, Clone, PartialEq)]
pub struct StepBuffers {
    /// `[N]` rewards.
    pub rewards: Vec<f32>,
    /// `[N]` terminations (always false).
    pub terminated: Vec<bool>,
    /// `[N]` truncations (true after `max_cycles` steps).
    pub truncated: Vec<bool>,
}

impl StepBuffers {
    /// Buffers for `n` agents.
    pub fn new(n: usize) -> Self {
        StepBuffers {
            rewards: vec![0.0; n],
            terminated: vec![false; n],
            truncated: vec![false; n],
        }
    }
}

/// The state of one [`SimpleSpread`] (see [`SimpleSpread::snapshot`]).
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct SpreadSnapshot {
    /// Agent positions.
    pub pos: Vec<[f64; 2]>,
    /// Agent velocities.
    pub vel: Vec<[f64; 2]>,
    /// Landmark positions.
    pub landmarks: Vec<[f64; 2]>,
    /// Steps into the episode.
    pub t: usize,
    /// The reset stream (`None` before the first reset).
    pub rng: Option<ChaCha8Rng>,
    /// Whether an episode has started.
    pub started: bool,
}

/// The state of a [`VecSpread`] (see [`VecSpread::snapshot`]).
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct VecSpreadSnapshot {
    /// Each env's state.
    pub envs: Vec<SpreadSnapshot>,
    /// Each env's running episode statistics: return, min-distance sum, collisions.
    pub stats: Vec<(f64, f64, u64)>,
    /// The current observations `[M, N, 6N]`.
    pub obs: Vec<f32>,
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
        })
    }
    /// The parameters.
    pub fn config(&self) -> &SpreadConfig {
        &self.cfg
    }
    /// Number of agents.
    pub fn num_agents(&self) -> usize {
        self.cfg.n
    }
    /// One agent's observation space (`6N` wide).
    pub fn observation_space(&self) -> &Space {
        &self.obs_space
    }
    /// One agent's action space.
    pub fn action_space(&self) -> &Space {
        &self.act_space
    }
    /// Width of one agent's observation.
    pub fn obs_dim(&self) -> usize {
        6 * self.cfg.n
    }
    /// Width of the global state: all observations concatenated (PettingZoo's `state()`).
    pub fn state_dim(&self) -> usize {
        self.cfg.n * self.obs_dim()
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

    /// The env's whole state (positions, velocities, landmarks, step, RNG), for an exact
    /// resume.
    pub fn snapshot(&self) -> SpreadSnapshot {
        SpreadSnapshot {
            pos: self.pos.clone(),
            vel: self.vel.clone(),
            landmarks: self.landmarks.clone(),
            t: self.t,
            rng: self.rng.clone(),
            started: self.started,
        }
    }

    /// Restores a [`SimpleSpread::snapshot`] of an env with the same number of agents.
    pub fn restore(&mut self, s: &SpreadSnapshot) -> Result<()> {
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
        self.pos.clone_from(&s.pos);
        self.vel.clone_from(&s.vel);
        self.landmarks.clone_from(&s.landmarks);
        self.t = s.t;
        self.rng.clone_from(&s.rng);
        self.started = s.started;
        Ok(())
    }

    /// Starts an episode at given positions (velocities 0), e.g. to replay a recorded one.
    pub fn reset_to(&mut self, agents: &[[f64; 2]], landmarks: &[[f64; 2]], obs: &mut [f32]) -> Result<()> {
        let n = self.cfg.n;
        if agents.len() != n || landmarks.len() != n {
            return Err(EnvError::Shape {
                what: "positions",
                expected: n,
                got: agents.len().min(landmarks.len()),
            });
        }
        self.pos.copy_from_slice(agents);
        self.landmarks.copy_from_slice(landmarks);
        self.vel.iter_mut().for_each(|v| *v = [0.0; 2]);
        self.t = 0;
        self.started = true;
        self.write_obs(obs)
    }

    /// Starts an episode: agents, then landmarks, uniform in [−1, 1]². `Some(seed)` reseeds.
    pub fn reset_into(&mut self, seed: Option<u64>, obs: &mut [f32]) -> Result<()> {
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
    pub fn step_into(&mut self, actions: MultiAction<'_>, obs: &mut [f32], out: &mut StepBuffers) -> Result<()> {
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

/// A finished Simple Spread episode's statistics.
#[derive(Debug, Clone, Copy, PartialEq, Default, Serialize, Deserialize)]
pub struct SpreadEpisode {
    /// Per-agent episode return, averaged over agents (PettingZoo's convention).
    pub mean_agent_return: f64,
    /// Mean over steps of `Σ_landmarks min_agents dist`.
    pub mean_min_distance: f64,
    /// Colliding agent pairs summed over the episode's steps.
    pub collisions: u64,
    /// Steps.
    pub len: u64,
}

/// M Simple Spread envs × N agents stepped together into flat buffers, with same-step
/// autoreset (the last observations of an ended episode stay in `final_obs`). Env `i` resets
/// with seed `seed + i`. Parallel over envs in fixed chunks of 64 when asked; the numbers do not
/// depend on the thread count.
#[derive(Debug)]
pub struct VecSpread {
    envs: Vec<SimpleSpread>,
    outs: Vec<StepBuffers>,
    slots: Vec<Slot>,
    /// Observations `[M, N, 6N]`.
    pub obs: Vec<f32>,
    /// Last observations of episodes that ended in the last step `[M, N, 6N]`.
    pub final_obs: Vec<f32>,
    /// Rewards `[M, N]`.
    pub rewards: Vec<f32>,
    /// Whether env m's episode was truncated in the last step `[M]`.
    pub truncated: Vec<bool>,
    finished: Vec<(usize, SpreadEpisode)>,
    parallel: bool,
}

const CHUNK: usize = 64;

/// One env's running episode statistics (return, min-distance sum, collisions) and the
/// outcome of its last step.
#[derive(Debug, Default)]
struct Slot {
    stats: (f64, f64, u64),
    done: Option<SpreadEpisode>,
    error: Option<EnvError>,
}

impl VecSpread {
    /// `m` envs with the same config.
    pub fn new(cfg: SpreadConfig, m: usize) -> Result<Self> {
        if m == 0 {
            return Err(EnvError::Invalid {
                name: "num_envs",
                reason: "need at least one env".into(),
            });
        }
        let envs = (0..m).map(|_| SimpleSpread::new(cfg)).collect::<Result<Vec<_>>>()?;
        let n = cfg.n;
        let od = 6 * n;
        Ok(VecSpread {
            envs,
            outs: (0..m).map(|_| StepBuffers::new(n)).collect(),
            slots: (0..m).map(|_| Slot::default()).collect(),
            obs: vec![0.0; m * n * od],
            final_obs: vec![0.0; m * n * od],
            rewards: vec![0.0; m * n],
            truncated: vec![false; m],
            finished: Vec::with_capacity(m),
            parallel: false,
        })
    }
    /// Step envs on rayon's pool, in fixed chunks.
    pub fn set_parallel(&mut self, on: bool) {
        self.parallel = on;
    }
    /// Number of envs.
    pub fn num_envs(&self) -> usize {
        self.envs.len()
    }
    /// Agents per env.
    pub fn num_agents(&self) -> usize {
        self.envs[0].num_agents()
    }
    /// Episodes that ended in the last step.
    pub fn finished(&self) -> &[(usize, SpreadEpisode)] {
        &self.finished
    }
    /// Every env's state and running episode statistics, for an exact resume.
    pub fn snapshot(&self) -> VecSpreadSnapshot {
        VecSpreadSnapshot {
            envs: self.envs.iter().map(SimpleSpread::snapshot).collect(),
            stats: self.slots.iter().map(|s| s.stats).collect(),
            obs: self.obs.clone(),
        }
    }

    /// Restores a [`VecSpread::snapshot`] taken of envs of the same count and config.
    pub fn restore(&mut self, s: &VecSpreadSnapshot) -> Result<()> {
        let m = self.envs.len();
        for (what, got) in [("snapshot envs", s.envs.len()), ("snapshot statistics", s.stats.len())] {
            if got != m {
                return Err(EnvError::Shape { what, expected: m, got });
            }
        }
        if s.obs.len() != self.obs.len() {
            return Err(EnvError::Shape {
                what: "snapshot observations",
                expected: self.obs.len(),
                got: s.obs.len(),
            });
        }
        for (e, es) in self.envs.iter_mut().zip(&s.envs) {
            e.restore(es)?;
        }
        for (slot, &st) in self.slots.iter_mut().zip(&s.stats) {
            *slot = Slot {
                stats: st,
                ..Slot::default()
            };
        }
        self.obs.copy_from_slice(&s.obs);
        self.finished.clear();
        Ok(())
    }

    /// Resets every env (env `i` with `seed + i`).
    pub fn reset(&mut self, seed: u64) -> Result<()> {
        let w = self.envs[0].num_agents() * self.envs[0].obs_dim();
        for (i, (e, o)) in self.envs.iter_mut().zip(self.obs.chunks_mut(w)).enumerate() {
            e.reset_into(Some(seed.wrapping_add(i as u64)), o)?;
        }
        self.slots.iter_mut().for_each(|s| *s = Slot::default());
        Ok(())
    }
    /// Steps every env: discrete actions `[M, N]` or continuous `[M, N, 5]`.
    pub fn step(&mut self, actions: MultiAction<'_>) -> Result<()> {
        let m = self.envs.len();
        let n = self.envs[0].num_agents();
        let w = n * self.envs[0].obs_dim();
        let per = match actions {
            MultiAction::Discrete(a) => {
                if a.len() != m * n {
                    return Err(EnvError::Shape {
                        what: "actions",
                        expected: m * n,
                        got: a.len(),
                    });
                }
                n
            }
            MultiAction::Continuous(a) => {
                if a.len() != m * n * 5 {
                    return Err(EnvError::Shape {
                        what: "actions",
                        expected: m * n * 5,
                        got: a.len(),
                    });
                }
                5 * n
            }
        };
        // Each env writes its ended episode (or error) into its own preallocated slot, so a
        // step allocates nothing.
        let step_one =
            |i: usize, e: &mut SimpleSpread, o: &mut [f32], fo: &mut [f32], out: &mut StepBuffers, slot: &mut Slot| {
                let a = match actions {
                    MultiAction::Discrete(a) => MultiAction::Discrete(&a[i * per..(i + 1) * per]),
                    MultiAction::Continuous(a) => MultiAction::Continuous(&a[i * per..(i + 1) * per]),
                };
                slot.done = None;
                if let Err(err) = e.step_into(a, o, out) {
                    slot.error = Some(err);
                    return;
                }
                let st = &mut slot.stats;
                st.0 += out.rewards.iter().map(|&r| r as f64).sum::<f64>() / n as f64;
                st.1 += e.min_distance_sum();
                st.2 += e.colliding_pairs() as u64;
                if out.truncated[0] {
                    let len = e.t as u64;
                    slot.done = Some(SpreadEpisode {
                        mean_agent_return: st.0,
                        mean_min_distance: st.1 / len as f64,
                        collisions: st.2,
                        len,
                    });
                    fo.copy_from_slice(o);
                    *st = (0.0, 0.0, 0);
                    if let Err(err) = e.reset_into(None, o) {
                        slot.error = Some(err);
                    }
                }
            };
        self.finished.clear();
        if self.parallel && m > CHUNK {
            use rayon::prelude::*;
            self.envs
                .par_chunks_mut(CHUNK)
                .zip(self.obs.par_chunks_mut(CHUNK * w))
                .zip(self.final_obs.par_chunks_mut(CHUNK * w))
                .zip(self.outs.par_chunks_mut(CHUNK))
                .zip(self.slots.par_chunks_mut(CHUNK))
                .enumerate()
                .for_each(|(c, ((((es, os), fos), outs), slots))| {
                    for (k, ((((e, o), fo), out), slot)) in es
                        .iter_mut()
                        .zip(os.chunks_mut(w))
                        .zip(fos.chunks_mut(w))
                        .zip(outs.iter_mut())
                        .zip(slots.iter_mut())
                        .enumerate()
                    {
                        step_one(c * CHUNK + k, e, o, fo, out, slot);
                    }
                });
        } else {
            for (i, ((((e, o), fo), out), slot)) in self
                .envs
                .iter_mut()
                .zip(self.obs.chunks_mut(w))
                .zip(self.final_obs.chunks_mut(w))
                .zip(self.outs.iter_mut())
                .zip(self.slots.iter_mut())
                .enumerate()
            {
                step_one(i, e, o, fo, out, slot);
            }
        }
        if let Some(err) = self.slots.iter_mut().find_map(|s| s.error.take()) {
            self.slots.iter_mut().for_each(|s| s.error = None);
            return Err(err);
        }
        for (i, slot) in self.slots.iter().enumerate() {
            if let Some(ep) = slot.done {
                self.finished.push((i, ep));
            }
        }
        for (i, out) in self.outs.iter().enumerate() {
            self.rewards[i * n..(i + 1) * n].copy_from_slice(&out.rewards);
            self.truncated[i] = out.truncated[0];
        }
        Ok(())
    }
}
