//! Gridworlds: Gymnasium's `FrozenLake-v1` (4x4, 8x8, custom maps, slippery or not) and
//! `CliffWalking-v1`. Both expose their exact transition model through [`TabularMdp`], which
//! the solvers in [`crate::solve`] use.

use crate::env::{check_obs, from_snapshot, out_of_space, seeded_rng, to_snapshot, Action, Env, StepOutcome};
use crate::error::{EnvError, Result};
use crate::spaces::Space;
use rand::Rng;
use rand_chacha::ChaCha8Rng;
use serde::{Deserialize, Serialize};

/// One possible outcome of `(state, action)`.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct Transition {
    /// Probability.
    pub prob: f64,
    /// Next state.
    pub next: usize,
    /// Reward.
    pub reward: f64,
    /// Whether the next state is terminal.
    pub terminal: bool,
}

/// A finite MDP with a known model.
pub trait TabularMdp {
    /// Number of states.
    fn num_states(&self) -> usize;
    /// Number of actions.
    fn num_actions(&self) -> usize;
    /// Outcomes of taking `a` in `s` (probabilities sum to 1).
    fn transitions(&self, s: usize, a: usize) -> &[Transition];
    /// The start state.
    fn start_state(&self) -> usize;
    /// Whether `s` is terminal (absorbing, no further reward).
    fn is_terminal(&self, s: usize) -> bool;
}

/// Gymnasium's two FrozenLake maps.
pub const MAP_4X4: [&str; 4] = ["SFFF", "FHFH", "FFFH", "HFFG"];
/// The 8x8 map.
pub const MAP_8X8: [&str; 8] = [
    "SFFFFFFF", "FFFFFFFF", "FFFHFFFF", "FFFFFHFF", "FFFHFFFF", "FHHFFFHF", "FHFFHFHF", "FFFHFFFG",
];

/// `FrozenLake-v1`: reach `G` from `S` without falling into an `H`. Actions 0 left, 1 down,
/// 2 right, 3 up; on slippery ice the move goes in the intended direction or either
/// perpendicular one with probability 1/3 each. Reward 1 on entering `G`; `G` and `H`
/// terminate. The registry adds the 100-step (4x4) or 200-step (8x8) limit.
#[derive(Debug, Clone)]
pub struct FrozenLake {
    desc: Vec<Vec<u8>>,
    nrow: usize,
    ncol: usize,
    start: usize,
    model: Vec<Vec<Transition>>, // [s * 4 + a]
    state: usize,
    last_success: Option<bool>,
    done: bool,
    started: bool,
    rng: Option<ChaCha8Rng>,
    obs_space: Space,
    act_space: Space,
}

impl FrozenLake {
    /// A lake from map rows of `S`, `F`, `H`, `G` (exactly one `S`, at least one `G`).
    pub fn from_map(rows: &[&str], slippery: bool) -> Result<Self> {
        let desc: Vec<Vec<u8>> = rows.iter().map(|r| r.trim().as_bytes().to_vec()).collect();
        let nrow = desc.len();
        let ncol = desc.first().map(|r| r.len()).unwrap_or(0);
        let invalid = |reason: String| EnvError::Invalid { name: "map", reason };
        if nrow == 0 || ncol == 0 || desc.iter().any(|r| r.len() != ncol) {
            return Err(invalid("rows must be non-empty and of equal length".into()));
        }
        if let Some(c) = desc.iter().flatten().find(|c| !b"SFHG".contains(c)) {
            return Err(invalid(format!("unknown tile `{}` (use S, F, H, G)", *c as char)));
        }
        let starts: Vec<usize> = (0..nrow * ncol).filter(|&s| desc[s / ncol][s % ncol] == b'S').collect();
        if starts.len() != 1 {
            return Err(invalid(format!("need exactly one S, found {}", starts.len())));
        }
        if !desc.iter().flatten().any(|&c| c == b'G') {
            return Err(invalid("need at least one G".into()));
        }
        let ns = nrow * ncol;
        let mut model = Vec::with_capacity(ns * 4);
        let tile = |s: usize| desc[s / ncol][s % ncol];
        for s in 0..ns {
            for a in 0..4usize {
                let mut outs: Vec<Transition> = Vec::new();
                if tile(s) == b'G' || tile(s) == b'H' {
                    outs.push(Transition {
                        prob: 1.0,
                        next: s,
                        reward: 0.0,
                        terminal: true,
                    });
                } else {
                    let dirs: Vec<(usize, f64)> = if slippery {
                        vec![((a + 3) % 4, 1.0 / 3.0), (a, 1.0 / 3.0), ((a + 1) % 4, 1.0 / 3.0)]
                    } else {
                        vec![(a, 1.0)]
                    };
                    for (d, p) in dirs {
                        let (r, c) = (s / ncol, s % ncol);
                        let (r, c) = match d {
                            0 => (r, c.saturating_sub(1)),
                            1 => ((r + 1).min(nrow - 1), c),
                            2 => (r, (c + 1).min(ncol - 1)),
                            _ => (r.saturating_sub(1), c),
                        };
                        let next = r * ncol + c;
                        let t = tile(next);
                        outs.push(Transition {
                            prob: p,
                            next,
                            reward: if t == b'G' { 1.0 } else { 0.0 },
                            terminal: t == b'G' || t == b'H',
                        });
                    }
                }
                model.push(outs);
            }
        }
        Ok(FrozenLake {
            desc,
            nrow,
            ncol,
            start: starts[0],
            model,
            state: starts[0],
            last_success: None,
            done: false,
            started: false,
            rng: None,
            obs_space: Space::Discrete { n: ns },
            act_space: Space::Discrete { n: 4 },
        })
    }
    /// The standard 4x4 lake.
    pub fn new_4x4(slippery: bool) -> Self {
        Self::from_map(&MAP_4X4, slippery).expect("built-in map")
    }
    /// The standard 8x8 lake.
    pub fn new_8x8(slippery: bool) -> Self {
        Self::from_map(&MAP_8X8, slippery).expect("built-in map")
    }
    /// Current state index.
    pub fn state(&self) -> usize {
        self.state
    }
}

impl TabularMdp for FrozenLake {
    fn num_states(&self) -> usize {
        self.nrow * self.ncol
    }
    fn num_actions(&self) -> usize {
        4
    }
    fn transitions(&self, s: usize, a: usize) -> &[Transition] {
        &self.model[s * 4 + a]
    }
    fn start_state(&self) -> usize {
        self.start
    }
    fn is_terminal(&self, s: usize) -> bool {
        let t = self.desc[s / self.ncol][s % self.ncol];
        t == b'G' || t == b'H'
    }
}

/// Gymnasium's `categorical_sample`: the first index whose cumulative probability exceeds a
/// uniform draw.
fn categorical_sample(ts: &[Transition], rng: &mut ChaCha8Rng) -> usize {
    let u: f64 = rng.random();
    let mut c = 0.0;
    for (i, t) in ts.iter().enumerate() {
        c += t.prob;
        if c > u {
            return i;
        }
    }
    ts.len() - 1
}

impl Env for FrozenLake {
    fn observation_space(&self) -> &Space {
        &self.obs_space
    }
    fn observe(&self, obs: &mut [f32]) -> Result<()> {
        check_obs(obs, 1)?;
        if !self.started {
            return Err(EnvError::NeedsReset("FrozenLake-v1"));
        }
        obs[0] = self.state as f32;
        Ok(())
    }
    fn action_space(&self) -> &Space {
        &self.act_space
    }
    fn reset_into(&mut self, seed: Option<u64>, obs: &mut [f32]) -> Result<()> {
        check_obs(obs, 1)?;
        seeded_rng(seed, &mut self.rng);
        self.state = self.start;
        self.done = false;
        self.started = true;
        self.last_success = None;
        obs[0] = self.state as f32;
        Ok(())
    }
    fn step_into(&mut self, action: Action<'_>, obs: &mut [f32]) -> Result<StepOutcome> {
        check_obs(obs, 1)?;
        let a = match action {
            Action::Discrete(a) if (0..4).contains(&a) => a as usize,
            _ => return Err(out_of_space(action, &self.act_space)),
        };
        if !self.started || self.done {
            return Err(EnvError::NeedsReset("FrozenLake-v1"));
        }
        let ts = &self.model[self.state * 4 + a];
        let i = categorical_sample(ts, self.rng.as_mut().unwrap());
        let t = ts[i];
        self.state = t.next;
        self.done = t.terminal;
        if t.terminal {
            self.last_success = Some(t.reward > 0.0);
        }
        obs[0] = self.state as f32;
        Ok(StepOutcome {
            reward: t.reward as f32,
            terminated: t.terminal,
            truncated: false,
        })
    }
    fn is_success(&self) -> Option<bool> {
        Some(self.last_success.unwrap_or(false))
    }
    fn snapshot(&self) -> Option<serde_json::Value> {
        to_snapshot(&GridSnap {
            state: self.state,
            last_success: self.last_success,
            done: self.done,
            started: self.started,
            rng: self.rng.clone(),
        })
    }
    fn restore(&mut self, v: &serde_json::Value) -> Result<()> {
        let s: GridSnap = from_snapshot("FrozenLake", v)?;
        if s.state >= self.nrow * self.ncol {
            return Err(EnvError::Invalid {
                name: "snapshot",
                reason: format!("state {} outside the map", s.state),
            });
        }
        (self.state, self.last_success, self.done, self.started, self.rng) =
            (s.state, s.last_success, s.done, s.started, s.rng);
        Ok(())
    }
    fn render_ansi(&self) -> Option<String> {
        let mut s = String::new();
        for r in 0..self.nrow {
            for c in 0..self.ncol {
                let ch = self.desc[r][c] as char;
                if r * self.ncol + c == self.state {
                    s.push('[');
                    s.push(ch);
                    s.push(']');
                } else {
                    s.push(' ');
                    s.push(ch);
                    s.push(' ');
                }
            }
            s.push('\n');
        }
        Some(s)
    }
}

/// `CliffWalking-v1`: a 4x12 grid, start (3,0), goal (3,11), the cliff between them. Actions
/// 0 up, 1 right, 2 down, 3 left. Every move costs −1; stepping into the cliff costs −100 and
/// returns to the start without ending the episode; reaching the goal terminates. No time
/// limit is registered, as in Gymnasium.
#[derive(Debug, Clone)]
pub struct CliffWalking {
    model: Vec<Vec<Transition>>,
    state: usize,
    done: bool,
    started: bool,
    rng: Option<ChaCha8Rng>,
    obs_space: Space,
    act_space: Space,
}

impl CliffWalking {
    /// Rows.
    pub const NROW: usize = 4;
    /// Columns.
    pub const NCOL: usize = 12;
    /// Start state (3, 0).
    pub const START: usize = 36;
    /// Goal state (3, 11).
    pub const GOAL: usize = 47;

    /// A new env.
    pub fn new() -> Self {
        let mut model = Vec::with_capacity(48 * 4);
        for s in 0..48 {
            for a in 0..4 {
                let (r, c) = (s / 12, s % 12);
                if s == Self::GOAL {
                    model.push(vec![Transition {
                        prob: 1.0,
                        next: s,
                        reward: 0.0,
                        terminal: true,
                    }]);
                    continue;
                }
                let (r, c) = match a {
                    0 => (r.saturating_sub(1), c),
                    1 => (r, (c + 1).min(11)),
                    2 => ((r + 1).min(3), c),
                    _ => (r, c.saturating_sub(1)),
                };
                let next = r * 12 + c;
                let cliff = r == 3 && (1..=10).contains(&c);
                model.push(vec![if cliff {
                    Transition {
                        prob: 1.0,
                        next: Self::START,
                        reward: -100.0,
                        terminal: false,
                    }
                } else {
                    Transition {
                        prob: 1.0,
                        next,
                        reward: -1.0,
                        terminal: next == Self::GOAL,
                    }
                }]);
            }
        }
        CliffWalking {
            model,
            state: Self::START,
            done: false,
            started: false,
            rng: None,
            obs_space: Space::Discrete { n: 48 },
            act_space: Space::Discrete { n: 4 },
        }
    }
}

impl Default for CliffWalking {
    fn default() -> Self {
        Self::new()
    }
}

impl TabularMdp for CliffWalking {
    fn num_states(&self) -> usize {
        48
    }
    fn num_actions(&self) -> usize {
        4
    }
    fn transitions(&self, s: usize, a: usize) -> &[Transition] {
        &self.model[s * 4 + a]
    }
    fn start_state(&self) -> usize {
        Self::START
    }
    fn is_terminal(&self, s: usize) -> bool {
        s == Self::GOAL
    }
}

impl Env for CliffWalking {
    fn observation_space(&self) -> &Space {
        &self.obs_space
    }
    fn observe(&self, obs: &mut [f32]) -> Result<()> {
        check_obs(obs, 1)?;
        if !self.started {
            return Err(EnvError::NeedsReset("CliffWalking-v1"));
        }
        obs[0] = self.state as f32;
        Ok(())
    }
    fn action_space(&self) -> &Space {
        &self.act_space
    }
    fn reset_into(&mut self, seed: Option<u64>, obs: &mut [f32]) -> Result<()> {
        check_obs(obs, 1)?;
        seeded_rng(seed, &mut self.rng);
        self.state = Self::START;
        self.done = false;
        self.started = true;
        obs[0] = self.state as f32;
        Ok(())
    }
    fn step_into(&mut self, action: Action<'_>, obs: &mut [f32]) -> Result<StepOutcome> {
        check_obs(obs, 1)?;
        let a = match action {
            Action::Discrete(a) if (0..4).contains(&a) => a as usize,
            _ => return Err(out_of_space(action, &self.act_space)),
        };
        if !self.started || self.done {
            return Err(EnvError::NeedsReset("CliffWalking-v1"));
        }
        let t = self.model[self.state * 4 + a][0];
        self.state = t.next;
        self.done = t.terminal;
        obs[0] = self.state as f32;
        Ok(StepOutcome {
            reward: t.reward as f32,
            terminated: t.terminal,
            truncated: false,
        })
    }
    fn is_success(&self) -> Option<bool> {
        Some(self.done)
    }
    fn snapshot(&self) -> Option<serde_json::Value> {
        to_snapshot(&GridSnap {
            state: self.state,
            last_success: None,
            done: self.done,
            started: self.started,
            rng: self.rng.clone(),
        })
    }
    fn restore(&mut self, v: &serde_json::Value) -> Result<()> {
        let s: GridSnap = from_snapshot("CliffWalking", v)?;
        if s.state >= 48 {
            return Err(EnvError::Invalid {
                name: "snapshot",
                reason: format!("state {} outside the grid", s.state),
            });
        }
        (self.state, self.done, self.started, self.rng) = (s.state, s.done, s.started, s.rng);
        Ok(())
    }
    fn render_ansi(&self) -> Option<String> {
        let mut s = String::new();
        for r in 0..4 {
            for c in 0..12 {
                let i = r * 12 + c;
                let ch = if i == self.state {
                    'x'
                } else if i == Self::GOAL {
                    'T'
                } else if r == 3 && (1..=10).contains(&c) {
                    'C'
                } else {
                    'o'
                };
                s.push(' ');
                s.push(ch);
            }
            s.push('\n');
        }
        Some(s)
    }
}

#[derive(Serialize, Deserialize)]
struct GridSnap {
    state: usize,
    last_success: Option<bool>,
    done: bool,
    started: bool,
    rng: Option<ChaCha8Rng>,
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn non_slippery_path_reaches_goal() {
        let mut e = FrozenLake::new_4x4(false);
        e.reset(Some(0)).unwrap();
        // down, down, right, right, down, right
        let mut last = None;
        for a in [1, 1, 2, 2, 1, 2] {
            last = Some(e.step(Action::Discrete(a)).unwrap());
        }
        let s = last.unwrap();
        assert_eq!(s.obs, vec![15.0]);
        assert!(s.terminated && s.reward == 1.0);
        assert_eq!(e.is_success(), Some(true));
    }

    #[test]
    fn slippery_outcomes_are_thirds() {
        let e = FrozenLake::new_4x4(true);
        let ts = e.transitions(0, 1);
        assert_eq!(ts.len(), 3);
        // From 0, action down: left (stay 0), down (4), right (1).
        let nexts: Vec<usize> = ts.iter().map(|t| t.next).collect();
        assert_eq!(nexts, vec![0, 4, 1]);
    }

    #[test]
    fn bad_maps() {
        assert!(FrozenLake::from_map(&["SFF", "FG"], true).is_err());
        assert!(FrozenLake::from_map(&["FFF", "FFG"], true).is_err());
        assert!(FrozenLake::from_map(&["SXF", "FFG"], true).is_err());
        assert!(FrozenLake::from_map(&["SF", "HG"], true).is_ok());
    }

    #[test]
    fn cliff_teleports_and_optimal_path_is_13() {
        let mut e = CliffWalking::new();
        e.reset(Some(0)).unwrap();
        let s = e.step(Action::Discrete(1)).unwrap();
        assert_eq!((s.obs[0], s.reward, s.terminated), (36.0, -100.0, false));
        let mut total = 0.0;
        let mut acts = vec![0];
        acts.extend(std::iter::repeat_n(1, 11));
        acts.push(2);
        for a in acts {
            let s = e.step(Action::Discrete(a)).unwrap();
            total += s.reward;
            if s.terminated {
                break;
            }
        }
        assert_eq!(total, -13.0);
    }
}
