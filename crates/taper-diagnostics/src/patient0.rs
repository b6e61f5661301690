//! Patient-0 attribution in cooperative multi-agent runs ("Interpretable Failure Analysis in
//! Multi-Agent Reinforcement Learning Systems"), end to end on a [`ParallelEnv`] with discrete
//! actions, decentralized softmax actors ([`Actor`]) and one centralized critic per agent
//! ([`QCritic`] on the joint observation and the joint one-hot actions):
//!
//! 1. **Calibration** ([`reference_band`]): `references` greedy episodes from the seed's reset,
//!    each observation with `N(0, (1e-4)²)` noise (used for acting and for the statistic),
//!    give the per-step band of each agent's smoothed Taylor remainder ([`crate::taylor`]).
//! 2. **Fault injection** ([`diagnose_seed`]): a clean greedy episode gives each step's
//!    `G` and `D` ([`crate::influence`]); for every ordered pair (attacker `i`, observed
//!    `j`) the high-influence start is the step of largest `G_{j,i}` among those with
//!    `D_{j,i} > 0`, the low-influence start the step of smallest `G_{j,i}` among those with
//!    `D_{j,i} < 0`, both within the first quarter of the episode (a pair without both is
//!    skipped). From each start the attacker plays its least-preferred action (smallest logit)
//!    for 5 steps.
//! 3. **Detection**: in the attacked episode (clean observations) the first step `t_d` at
//!    which some agent leaves its band, the flagged set `C`, and the candidate of largest
//!    `|T − μ|` among them. Statistics at a step are computed before the attack's substitution,
//!    at the greedy actions, so an attack at `t_a` shows from `t_a + 1`.
//! 4. **Traceback** ([`crate::traceback`]) on the attacked episode's own `G`, `D` (at the
//!    greedy actions), from the candidate.
//!
//! Each attacked episode is a case, scored as the authors' fixed code does ([`Outcome`]): no
//! flag; a flag before the attack (a false alarm); the attacker in `C` (Stage 1 correct); or
//! else the traceback's final agent against the attacker. [`Scores`] gives the final accuracy
//! (over all cases) and Stage 1's accuracy over the cases with a detection, split by high and
//! low influence.

use crate::error::{DiagnosticsError, Result};
use crate::influence::{pair_influence, PairInfluence};
use crate::taylor::{argmin, taylor_remainder, Band, Smoother};
use crate::traceback::{traceback, ContagionGraph};
use rand::Rng;
use rand_distr::StandardNormal;
use serde::{Deserialize, Serialize};
use std::collections::HashMap;
use taper_critics::{Actor, QCritic};
use taper_envs::parallel::{MultiAction, ParallelEnv, StepBuffers};
use taper_envs::Space;
use taper_tensor::rng::{stream, Purpose};

/// The method's settings; the defaults are the authors' MADDPG code's.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct Patient0Config {
    /// Taylor step `ε` (0.01).
    pub eps: f32,
    /// Trailing smoothing window of the remainder (5).
    pub smooth: usize,
    /// Observation noise σ of the reference episodes (1e-4).
    pub reference_noise: f64,
    /// Reference episodes per seed (100).
    pub references: usize,
    /// Steps an attacker plays its least-preferred action (5).
    pub attack_len: usize,
    /// Attack starts are chosen among the first `ceil(fraction · T)` steps (0.25).
    pub start_fraction: f64,
    /// Causal window of the traceback (5).
    pub causal_window: usize,
    /// Finite-difference step of the curvature `D` along a unit direction (5e-3).
    pub curvature_step: f32,
}

impl Default for Patient0Config {
    fn default() -> Self {
        Patient0Config {
            eps: 0.01,
            smooth: 5,
            reference_noise: 1e-4,
            references: 100,
            attack_len: 5,
            start_fraction: 0.25,
            causal_window: 5,
            curvature_step: 5e-3,
        }
    }
}

/// The agents' networks: `actors[i]` reads agent `i`'s observation, `critics[i]` is agent
/// `i`'s centralized critic on all observations and all one-hot actions, in agent order.
pub struct Team<'a> {
    /// One softmax actor per agent.
    pub actors: Vec<&'a dyn Actor>,
    /// One centralized critic per agent.
    pub critics: Vec<&'a dyn QCritic>,
}

impl Team<'_> {
    /// Errors unless the team fits the env: as many actors and critics as agents, discrete
    /// action spaces of one size, and widths that match.
    pub fn check(&self, env: &dyn ParallelEnv) -> Result<usize> {
        let n = env.num_agents();
        let bad = |reason: String| Err(DiagnosticsError::Invalid { name: "team", reason });
        if self.actors.len() != n || self.critics.len() != n {
            return bad(format!(
                "{n} agents, {} actors and {} critics",
                self.actors.len(),
                self.critics.len()
            ));
        }
        let k = match env.action_space(0) {
            Space::Discrete { n } => *n,
            other => return bad(format!("Patient-0 attribution needs discrete actions, not {other}")),
        };
        for i in 0..n {
            if !matches!(env.action_space(i), Space::Discrete { n } if *n == k) {
                return bad("every agent needs the same discrete action set".into());
            }
            let od = env.observation_space(i).flat_dim();
            if self.actors[i].obs_dim() != od || self.actors[i].logits_dim() != k {
                return bad(format!(
                    "agent {i}'s actor does not read its observation or write its logits"
                ));
            }
            if self.critics[i].obs_dim() != env.obs_width() || self.critics[i].action_dim() != n * k {
                return bad(format!(
                    "agent {i}'s critic does not read the joint observation and actions"
                ));
            }
        }
        Ok(k)
    }
}

/// An attack: `agent` plays its least-preferred action from step `start` for `len` steps.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
pub struct Attack {
    /// The attacker.
    pub agent: usize,
    /// Its first attacked step.
    pub start: usize,
    /// Steps attacked.
    pub len: usize,
}

/// One episode's per-step statistics.
#[derive(Debug, Clone, Default)]
pub struct Trace {
    /// Agents.
    pub agents: usize,
    /// Raw remainders `T` `[steps, agents]`.
    pub raw: Vec<f64>,
    /// Smoothed remainders `S` `[steps, agents]`.
    pub smooth: Vec<f64>,
    /// `G` and `D` of each step (empty unless asked for).
    pub influence: Vec<PairInfluence>,
    /// The team's summed reward.
    pub reward: f64,
}

impl Trace {
    /// Steps recorded.
    pub fn steps(&self) -> usize {
        self.raw.len() / self.agents.max(1)
    }
}

/// Runs one greedy episode from `reset(seed)`: with `noise`, each observation gets Gaussian
/// noise of that σ from `rng` before the agents read it; with `attack`, the attacker's action
/// is replaced; with `influence`, `G` and `D` are recorded at the greedy actions.
#[allow(clippy::too_many_arguments)]
pub fn run_episode(
    env: &mut dyn ParallelEnv,
    team: &Team<'_>,
    seed: u64,
    cfg: &Patient0Config,
    noise: Option<(&mut dyn rand::RngCore, f64)>,
    attack: Option<Attack>,
    influence: bool,
) -> Result<Trace> {
    let k = team.check(env)?;
    let n = env.num_agents();
    let ow = env.obs_width();
    let od: Vec<usize> = (0..n).map(|i| env.observation_space(i).flat_dim()).collect();
    let mut obs = vec![0f32; ow];
    env.reset_into(Some(seed), &mut obs)?;
    let mut out = StepBuffers::new(n);
    let mut smoothers = vec![Smoother::new(cfg.smooth); n];
    let mut trace = Trace {
        agents: n,
        ..Trace::default()
    };
    let mut noise = noise;
    let mut seen = obs.clone();
    let mut logits = vec![0f32; k];
    let mut one_hot = vec![0f32; n * k];
    let mut idx = vec![0i64; n];
    for t in 0.. {
        seen.copy_from_slice(&obs);
        if let Some((rng, sigma)) = noise.as_mut() {
            for v in seen.iter_mut() {
                let z: f64 = rng.sample(StandardNormal);
                *v += (*sigma * z) as f32;
            }
        }
        one_hot.fill(0.0);
        let mut off = 0;
        for i in 0..n {
            let o = &seen[off..off + od[i]];
            off += od[i];
            let r = taylor_remainder(team.actors[i], o, cfg.eps)?;
            trace.raw.push(r.value);
            trace.smooth.push(smoothers[i].push(r.value));
            one_hot[i * k + r.action] = 1.0;
            idx[i] = r.action as i64;
            if let Some(a) = attack {
                if a.agent == i && t >= a.start && t < a.start + a.len {
                    team.actors[i].logits(o, 1, &mut logits)?;
                    idx[i] = argmin(&logits) as i64;
                }
            }
        }
        if influence {
            trace
                .influence
                .push(pair_influence(&team.critics, &seen, &one_hot, k, cfg.curvature_step)?);
        }
        env.step_into(MultiAction::Discrete(&idx), &mut obs, &mut out)?;
        trace.reward += out.rewards.iter().map(|&r| r as f64).sum::<f64>();
        if out.terminated.iter().chain(&out.truncated).any(|&d| d) {
            break;
        }
        if t > 100_000 {
            return Err(DiagnosticsError::Invalid {
                name: "env",
                reason: "an episode ran past 100 000 steps: Patient-0 attribution needs episodes that end".into(),
            });
        }
    }
    Ok(trace)
}

/// The calibration band of `seed`: `cfg.references` noisy greedy episodes from its reset, the
/// noise from `stream(seed, Other(11), 0)`.
pub fn reference_band(env: &mut dyn ParallelEnv, team: &Team<'_>, seed: u64, cfg: &Patient0Config) -> Result<Band> {
    let mut rng = stream(seed, Purpose::Other(11), 0);
    let mut episodes = Vec::with_capacity(cfg.references);
    for _ in 0..cfg.references {
        let tr = run_episode(env, team, seed, cfg, Some((&mut rng, cfg.reference_noise)), None, false)?;
        episodes.push(tr.smooth);
    }
    Band::of(&episodes, env.num_agents())
}

/// The first step at which some agent leaves its band.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Detection {
    /// `t_d`.
    pub step: usize,
    /// The agents flagged at `t_d`.
    pub flagged: Vec<usize>,
    /// The Stage-1 candidate: the flagged agent of largest `|T − μ|` at `t_d`.
    pub candidate: usize,
    /// Each agent's first flagged step in the episode.
    pub first_flag: Vec<Option<usize>>,
}

/// Stage 1 on an episode's trace against a band.
pub fn detect(trace: &Trace, band: &Band, k_sigma: f64) -> Option<Detection> {
    let n = trace.agents;
    let steps = trace.steps().min(band.steps);
    let mut first_flag = vec![None; n];
    for t in 0..steps {
        for i in 0..n {
            if first_flag[i].is_none() && band.flags(t, i, trace.smooth[t * n + i], k_sigma) {
                first_flag[i] = Some(t);
            }
        }
    }
    let step = first_flag.iter().flatten().min().copied()?;
    let flagged: Vec<usize> = (0..n).filter(|&i| first_flag[i] == Some(step)).collect();
    let dev = |i: usize| (trace.raw[step * n + i] - band.mean[step * n + i]).abs();
    let mut candidate = flagged[0];
    for &i in &flagged[1..] {
        if dev(i) > dev(candidate) {
            candidate = i;
        }
    }
    Some(Detection {
        step,
        flagged,
        candidate,
        first_flag,
    })
}

/// How an attacked episode was judged.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum Outcome {
    /// No agent left its band.
    NoDetection,
    /// The first flag came before the attack started.
    FalseAlarm,
    /// The attacker was among the agents flagged first.
    Stage1Correct,
    /// The attacker was not flagged first, and the traceback found it.
    TracebackCorrect,
    /// The attacker was not flagged first, and the traceback ended elsewhere.
    TracebackWrong,
}

/// Whether an attack started where the attacker's influence on the observed agent peaks or
/// where it is least.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum Influence {
    /// `argmax G` among the steps with `D > 0`.
    High,
    /// `argmin G` among the steps with `D < 0`.
    Low,
}

/// One attacked episode, judged at one `K_σ`.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Case {
    /// The reset seed.
    pub seed: u64,
    /// The attacker `i`.
    pub attacker: usize,
    /// The observed agent `j` whose critic chose the start.
    pub observed: usize,
    /// High or low influence.
    pub influence: Influence,
    /// The attack's first step.
    pub start: usize,
    /// The verdict.
    pub outcome: Outcome,
    /// The detection, if any.
    pub detection: Option<Detection>,
    /// The traceback chain (from the candidate upstream), when Stage 1 missed after the attack.
    pub chain: Vec<usize>,
    /// The episode's summed team reward, and the clean episode's.
    pub reward: (f64, f64),
}

/// Everything one seed's diagnosis produced, at every `K_σ` asked for.
#[derive(Debug, Clone)]
pub struct SeedDiagnosis {
    /// The seed.
    pub seed: u64,
    /// The cases per `K_σ`, in the order asked.
    pub cases: Vec<Vec<Case>>,
    /// The contagion graph of each attacked episode at the first `K_σ`, keyed by the
    /// attacker and start.
    pub graphs: Vec<(Attack, ContagionGraph)>,
}

/// The three stages on one seed, every ordered pair, both influences, judged at each of
/// `k_sigmas` (see the module doc). Attacks with the same attacker and start share one
/// episode.
pub fn diagnose_seed(
    env: &mut dyn ParallelEnv,
    team: &Team<'_>,
    seed: u64,
    cfg: &Patient0Config,
    k_sigmas: &[f64],
) -> Result<SeedDiagnosis> {
    if k_sigmas.is_empty() || k_sigmas.iter().any(|k| !(*k > 0.0 && k.is_finite())) {
        return Err(DiagnosticsError::Invalid {
            name: "k_sigma",
            reason: format!("needs one or more positive thresholds, got {k_sigmas:?}"),
        });
    }
    let n = env.num_agents();
    let band = reference_band(env, team, seed, cfg)?;
    let clean = run_episode(env, team, seed, cfg, None, None, true)?;
    let horizon = ((cfg.start_fraction * clean.steps() as f64).ceil() as usize).min(clean.steps());
    let mut episodes: HashMap<Attack, Trace> = HashMap::new();
    let mut plan = Vec::new();
    for i in 0..n {
        for j in (0..n).filter(|&j| j != i) {
            let pick = |want_pos: bool| -> Option<usize> {
                let steps = (0..horizon).filter(|&t| {
                    let d = clean.influence[t].d(j, i);
                    if want_pos {
                        d > 0.0
                    } else {
                        d < 0.0
                    }
                });
                let g = |t: &usize| clean.influence[*t].g(j, i);
                if want_pos {
                    steps.fold(None, |b: Option<usize>, t| match b {
                        Some(b) if g(&b) >= g(&t) => Some(b),
                        _ => Some(t),
                    })
                } else {
                    steps.fold(None, |b: Option<usize>, t| match b {
                        Some(b) if g(&b) <= g(&t) => Some(b),
                        _ => Some(t),
                    })
                }
            };
            let (Some(hi), Some(lo)) = (pick(true), pick(false)) else {
                continue;
            };
            for (inf, start) in [(Influence::High, hi), (Influence::Low, lo)] {
                let a = Attack {
                    agent: i,
                    start,
                    len: cfg.attack_len,
                };
                if let std::collections::hash_map::Entry::Vacant(e) = episodes.entry(a) {
                    e.insert(run_episode(env, team, seed, cfg, None, Some(a), true)?);
                }
                plan.push((i, j, inf, a));
            }
        }
    }
    let mut cases = Vec::with_capacity(k_sigmas.len());
    let mut graphs = Vec::new();
    for (ki, &k_sigma) in k_sigmas.iter().enumerate() {
        let mut list = Vec::with_capacity(plan.len());
        for &(i, j, inf, a) in &plan {
            let tr = &episodes[&a];
            let det = detect(tr, &band, k_sigma);
            let (outcome, chain) = judge(tr, det.as_ref(), a, cfg.causal_window);
            if ki == 0 && !graphs.iter().any(|(g, _): &(Attack, ContagionGraph)| *g == a) {
                let flags = det.as_ref().map_or(vec![None; n], |d| d.first_flag.clone());
                let title = format!(
                    "seed {seed}: agent {i} attacked from t={} for {} steps; {}",
                    a.start,
                    a.len,
                    verdict(outcome, &chain, det.as_ref())
                );
                graphs.push((
                    a,
                    ContagionGraph::build(&tr.influence, flags, chain.clone(), cfg.causal_window, Some(i), title),
                ));
            }
            list.push(Case {
                seed,
                attacker: i,
                observed: j,
                influence: inf,
                start: a.start,
                outcome,
                detection: det,
                chain,
                reward: (tr.reward, clean.reward),
            });
        }
        cases.push(list);
    }
    Ok(SeedDiagnosis { seed, cases, graphs })
}

fn verdict(o: Outcome, chain: &[usize], det: Option<&Detection>) -> String {
    match (o, det) {
        (Outcome::NoDetection, _) | (_, None) => "no agent flagged".into(),
        (Outcome::FalseAlarm, Some(d)) => format!("false alarm at t={}", d.step),
        (Outcome::Stage1Correct, Some(d)) => format!("flagged first at t={}: correct", d.step),
        (Outcome::TracebackCorrect, Some(d)) => {
            format!(
                "flagged t={}, traced back to agent {}: correct",
                d.step,
                chain.last().unwrap_or(&d.candidate)
            )
        }
        (Outcome::TracebackWrong, Some(d)) => {
            format!(
                "flagged t={}, traced back to agent {}: wrong",
                d.step,
                chain.last().unwrap_or(&d.candidate)
            )
        }
    }
}

/// The verdict of an attacked episode and the traceback chain it used (empty when none ran).
fn judge(tr: &Trace, det: Option<&Detection>, a: Attack, window: usize) -> (Outcome, Vec<usize>) {
    let Some(d) = det else {
        return (Outcome::NoDetection, Vec::new());
    };
    if d.step < a.start {
        return (Outcome::FalseAlarm, Vec::new());
    }
    let (chain, _) = traceback(&tr.influence, d.candidate, d.step, window);
    if d.flagged.contains(&a.agent) {
        return (Outcome::Stage1Correct, chain);
    }
    let ok = chain.last() == Some(&a.agent);
    (
        if ok {
            Outcome::TracebackCorrect
        } else {
            Outcome::TracebackWrong
        },
        chain,
    )
}

/// Counts and rates over cases.
#[derive(Debug, Clone, Copy, Default, PartialEq, Serialize, Deserialize)]
pub struct Scores {
    /// Attacked episodes judged.
    pub cases: usize,
    /// With no flag.
    pub no_detection: usize,
    /// Flagged before the attack.
    pub false_alarm: usize,
    /// The attacker flagged first.
    pub stage1_correct: usize,
    /// Found by the traceback.
    pub traceback_correct: usize,
    /// Missed by the traceback.
    pub traceback_wrong: usize,
    /// `(stage1_correct + traceback_correct) / cases`: the final accuracy.
    pub final_accuracy: f64,
    /// `stage1_correct / (cases − no_detection)`: Stage 1's accuracy among detections.
    pub stage1_accuracy: f64,
    /// `false_alarm / cases`.
    pub false_alarm_rate: f64,
    /// `no_detection / cases`.
    pub no_detection_rate: f64,
    /// Cases whose single Stage-1 candidate (after the tie-break) is the attacker, at or after
    /// the attack's start: a stricter reading than "the attacker among the first flagged".
    pub candidate_correct: usize,
    /// `candidate_correct / cases`.
    pub candidate_accuracy: f64,
    /// The mean number of agents flagged at the first flag, over the cases with a detection.
    pub mean_flagged: f64,
}

impl Scores {
    /// The scores of `cases`.
    pub fn of<'a>(cases: impl IntoIterator<Item = &'a Case>) -> Self {
        let mut s = Scores::default();
        let mut flagged = 0usize;
        for c in cases {
            s.cases += 1;
            if let Some(d) = &c.detection {
                flagged += d.flagged.len();
                if d.step >= c.start && d.candidate == c.attacker {
                    s.candidate_correct += 1;
                }
            }
            match c.outcome {
                Outcome::NoDetection => s.no_detection += 1,
                Outcome::FalseAlarm => s.false_alarm += 1,
                Outcome::Stage1Correct => s.stage1_correct += 1,
                Outcome::TracebackCorrect => s.traceback_correct += 1,
                Outcome::TracebackWrong => s.traceback_wrong += 1,
            }
        }
        let rate = |a: usize, b: usize| if b == 0 { f64::NAN } else { a as f64 / b as f64 };
        s.final_accuracy = rate(s.stage1_correct + s.traceback_correct, s.cases);
        s.stage1_accuracy = rate(s.stage1_correct, s.cases - s.no_detection);
        s.false_alarm_rate = rate(s.false_alarm, s.cases);
        s.no_detection_rate = rate(s.no_detection, s.cases);
        s.candidate_accuracy = rate(s.candidate_correct, s.cases);
        s.mean_flagged = rate(flagged, s.cases - s.no_detection);
        s
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn case(outcome: Outcome) -> Case {
        Case {
            seed: 0,
            attacker: 0,
            observed: 1,
            influence: Influence::High,
            start: 2,
            outcome,
            detection: None,
            chain: vec![],
            reward: (0.0, 0.0),
        }
    }

    /// Both denominators on a hand-made list: 10 cases, 1 without a flag, 1 false alarm, 6
    /// correct at Stage 1, 1 found by the traceback, 1 missed.
    #[test]
    fn scores_by_hand() {
        let mut v = vec![case(Outcome::NoDetection), case(Outcome::FalseAlarm)];
        v.extend((0..6).map(|_| case(Outcome::Stage1Correct)));
        v.push(case(Outcome::TracebackCorrect));
        v.push(case(Outcome::TracebackWrong));
        let s = Scores::of(&v);
        assert_eq!(s.cases, 10);
        assert!((s.final_accuracy - 0.7).abs() < 1e-12);
        assert!((s.stage1_accuracy - 6.0 / 9.0).abs() < 1e-12);
        assert!((s.false_alarm_rate - 0.1).abs() < 1e-12 && (s.no_detection_rate - 0.1).abs() < 1e-12);
        assert!(Scores::of(&[]).final_accuracy.is_nan());
    }

    /// Detection and judgement on a hand-built trace: agent 1 leaves the band at step 3,
    /// agent 2 at step 4; an attack by agent 1 from step 2 is a Stage-1 hit, one from step 5
    /// is a false alarm, and one by agent 2 from step 2 goes to the traceback.
    #[test]
    fn detection_and_judgement() {
        let n = 3;
        let band = Band {
            agents: n,
            steps: 6,
            mean: vec![1.0; 6 * n],
            std: vec![0.1; 6 * n],
        };
        let mut smooth = vec![1.0; 6 * n];
        smooth[3 * n + 1] = 2.0;
        smooth[4 * n + 2] = 2.0;
        let tr = Trace {
            agents: n,
            raw: smooth.clone(),
            smooth,
            influence: (0..6)
                .map(|_| PairInfluence {
                    agents: 3,
                    g: vec![0.0; 9],
                    d: vec![0.0; 9],
                })
                .collect(),
            reward: 0.0,
        };
        let d = detect(&tr, &band, 2.0).unwrap();
        assert_eq!((d.step, d.flagged.clone(), d.candidate), (3, vec![1], 1));
        assert_eq!(d.first_flag, vec![None, Some(3), Some(4)]);
        let a = |agent, start| Attack { agent, start, len: 5 };
        assert_eq!(judge(&tr, Some(&d), a(1, 2), 5).0, Outcome::Stage1Correct);
        assert_eq!(judge(&tr, Some(&d), a(1, 5), 5).0, Outcome::FalseAlarm);
        // No accelerating influence anywhere: the chain stays at the candidate, agent 1.
        assert_eq!(judge(&tr, Some(&d), a(2, 2), 5), (Outcome::TracebackWrong, vec![1]));
        assert_eq!(judge(&tr, None, a(2, 2), 5).0, Outcome::NoDetection);
        assert!(detect(&tr, &band, 20.0).is_none());
    }
}
