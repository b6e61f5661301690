//! Patient-0 attribution end to end on a toy with a known answer: three agents on a line who
//! each look only at their own position, so an attacked agent is the only one whose Taylor
//! remainder moves; and critics whose curvature in each other agent's action changes sign in
//! the first quarter of the episode, so every ordered pair gets a high- and a low-influence
//! attack. Every one of the 12 attacks per seed must be caught at Stage 1, the attacker alone
//! flagged first, while the attack lasts.
#![allow(clippy::needless_range_loop)] // per-agent index loops over parallel arrays read best

use taper_critics::{Actor, QCritic};
use taper_diagnostics::patient0::{diagnose_seed, Outcome, Patient0Config, Scores, Team};
use taper_envs::parallel::{MultiAction, ParallelEnv, StepBuffers};
use taper_envs::Space;

const N: usize = 3;
const K: usize = 3;
const T: usize = 12;
const OBS: usize = N + 1;

/// Positions on a line; actions move by −0.1, 0 or +0.1. Agent `i` observes every position,
/// its own first, and the time `t/T`.
struct Line {
    names: Vec<String>,
    obs_space: Space,
    act_space: Space,
    p: [f32; N],
    t: usize,
}

impl Line {
    fn new() -> Self {
        Line {
            names: (0..N).map(|i| format!("agent_{i}")).collect(),
            obs_space: Space::Box {
                low: vec![-10.0; OBS],
                high: vec![10.0; OBS],
            },
            act_space: Space::Discrete { n: K },
            p: [0.0; N],
            t: 0,
        }
    }
    fn write(&self, obs: &mut [f32]) {
        for i in 0..N {
            for k in 0..N {
                obs[i * OBS + k] = self.p[(i + k) % N];
            }
            obs[i * OBS + N] = self.t as f32 / T as f32;
        }
    }
}

impl ParallelEnv for Line {
    fn agents(&self) -> &[String] {
        &self.names
    }
    fn observation_space(&self, _: usize) -> &Space {
        &self.obs_space
    }
    fn action_space(&self, _: usize) -> &Space {
        &self.act_space
    }
    fn reset_into(&mut self, seed: Option<u64>, obs: &mut [f32]) -> taper_envs::Result<()> {
        let s = seed.unwrap_or(0);
        for i in 0..N {
            self.p[i] = 0.05 * ((s as usize + 2 * i) % 5) as f32 - 0.1;
        }
        self.t = 0;
        self.write(obs);
        Ok(())
    }
    fn step_into(
        &mut self,
        actions: MultiAction<'_>,
        obs: &mut [f32],
        out: &mut StepBuffers,
    ) -> taper_envs::Result<()> {
        let MultiAction::Discrete(a) = actions else {
            unreachable!()
        };
        for i in 0..N {
            self.p[i] += 0.1 * (a[i] as f32 - 1.0);
            out.rewards[i] = -self.p[i].abs();
            out.terminated[i] = false;
        }
        self.t += 1;
        out.truncated.fill(self.t >= T);
        self.write(obs);
        Ok(())
    }
}

/// Logits of the own position `x` only: `[−3(x + 0.2)², 0.3 − 3x² + x, −3(x − 0.2)²]`, so
/// staying is greedy near 0, moving is least preferred, and `∂ log π(stay)/∂x` stays away from 0
/// on the positions an episode reaches (where it vanishes the remainder's step `ε/‖g‖` blows
/// up, and so does the band).
struct Stay;

impl Actor for Stay {
    fn obs_dim(&self) -> usize {
        OBS
    }
    fn logits_dim(&self) -> usize {
        K
    }
    fn action_dim(&self) -> usize {
        K
    }
    fn logits(&self, obs: &[f32], n: usize, out: &mut [f32]) -> taper_critics::Result<()> {
        for r in 0..n {
            let x = obs[r * OBS];
            out[r * K..(r + 1) * K].copy_from_slice(&[
                -3.0 * (x + 0.2).powi(2),
                0.3 - 3.0 * x * x + x,
                -3.0 * (x - 0.2).powi(2),
            ]);
        }
        Ok(())
    }
    fn sample(
        &self,
        _: &[f32],
        _: usize,
        _: &mut dyn rand::RngCore,
        _: bool,
        _: &mut [f32],
        _: &mut [f32],
    ) -> taper_critics::Result<()> {
        unreachable!("attribution acts greedily")
    }
    fn log_prob_entropy(
        &self,
        _: &[f32],
        _: &[f32],
        _: usize,
        _: &mut [f32],
        _: &mut [f32],
    ) -> taper_critics::Result<()> {
        unreachable!("attribution reads logits")
    }
    fn obs_gradient(&self, obs: &[f32], n: usize, dl: &[f32], dobs: &mut [f32]) -> taper_critics::Result<()> {
        dobs.fill(0.0);
        for r in 0..n {
            let x = obs[r * OBS];
            let d = [-6.0 * (x + 0.2), -6.0 * x + 1.0, -6.0 * (x - 0.2)];
            dobs[r * OBS] = (0..K).map(|k| dl[r * K + k] * d[k]).sum();
        }
        Ok(())
    }
}

/// Agent `j`'s critic: `Q_j = Σ_{i≠j} s(t)·(wᵀa_i)³/3 + 0.1·wᵀa_i` with `s(t) = 0.5 − t` at step `t`
/// read from agent 0's time feature: `D_{j,i} = −(∇ᵀw)²·2s·(wᵀa_i)‖w‖²` is negative at
/// step 0 and positive from step 1.
struct Critic {
    owner: usize,
}

const W: [f32; K] = [0.2, 1.0, 0.3];

impl QCritic for Critic {
    fn obs_dim(&self) -> usize {
        N * OBS
    }
    fn action_dim(&self) -> usize {
        N * K
    }
    fn q_values(&self, obs: &[f32], a: &[f32], n: usize, out: &mut [f32]) -> taper_critics::Result<()> {
        for r in 0..n {
            let s = 0.5 - T as f32 * obs[r * N * OBS + N];
            out[r] = (0..N)
                .filter(|&i| i != self.owner)
                .map(|i| {
                    let u: f32 = (0..K).map(|k| W[k] * a[r * N * K + i * K + k]).sum();
                    s * u.powi(3) / 3.0 + 0.1 * u
                })
                .sum();
        }
        Ok(())
    }
    fn action_gradient(&self, obs: &[f32], a: &[f32], n: usize, out: &mut [f32]) -> taper_critics::Result<()> {
        out.fill(0.0);
        for r in 0..n {
            let s = 0.5 - T as f32 * obs[r * N * OBS + N];
            for i in (0..N).filter(|&i| i != self.owner) {
                let u: f32 = (0..K).map(|k| W[k] * a[r * N * K + i * K + k]).sum();
                for k in 0..K {
                    out[r * N * K + i * K + k] = (s * u * u + 0.1) * W[k];
                }
            }
        }
        Ok(())
    }
}

#[test]
fn every_attack_on_the_toy_is_caught_at_stage_one() {
    let mut env = Line::new();
    let actors = [Stay, Stay, Stay];
    let critics = [Critic { owner: 0 }, Critic { owner: 1 }, Critic { owner: 2 }];
    let team = Team {
        actors: actors.iter().map(|a| a as &dyn Actor).collect(),
        critics: critics.iter().map(|c| c as &dyn QCritic).collect(),
    };
    let cfg = Patient0Config {
        references: 20,
        ..Patient0Config::default()
    };
    let mut all = Vec::new();
    for seed in 0..4 {
        let d = diagnose_seed(&mut env, &team, seed, &cfg, &[2.0, 3.0]).unwrap();
        for cases in &d.cases {
            // Every ordered pair, both influences.
            assert_eq!(cases.len(), N * (N - 1) * 2, "seed {seed}");
            for c in cases {
                let det = c.detection.as_ref().expect("every attack is detected");
                assert_eq!(c.outcome, Outcome::Stage1Correct, "{c:?}");
                assert_eq!(
                    (det.flagged.clone(), det.candidate),
                    (vec![c.attacker], c.attacker),
                    "{c:?}"
                );
                // After the attack starts (it shows in the observations a step later), while it
                // lasts.
                assert!(det.step > c.start && det.step <= c.start + cfg.attack_len, "{c:?}");
            }
            all.extend(cases.iter().cloned());
        }
        // High-influence starts are the steps with D > 0 (from step 1), low ones step 0.
        assert!(d.cases[0]
            .iter()
            .all(|c| (c.start == 0) == (c.influence == taper_diagnostics::patient0::Influence::Low)));
    }
    let s = Scores::of(&all);
    assert_eq!(
        (s.final_accuracy, s.stage1_accuracy, s.candidate_accuracy),
        (1.0, 1.0, 1.0)
    );
    assert_eq!((s.false_alarm, s.no_detection), (0, 0));
}
