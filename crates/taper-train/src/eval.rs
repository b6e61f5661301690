//! Evaluation: run a policy for some episodes on a single-agent ([`run_episodes`]) or
//! multi-agent env ([`run_parallel_episodes`]), with a cap on the steps of an episode (an env
//! without a time limit still ends), and summarise the episodes as SB3's `evaluate_policy`
//! does ([`summarize`]).
//!
//! ```
//! use taper_envs::{make, Env};
//! use taper_train::eval::{run_episodes, summarize, EvalOptions};
//! let mut env = make("CartPole-v1")?;
//! // Always push right: the pole falls within a few dozen steps.
//! let opts = EvalOptions { episodes: 3, ..EvalOptions::default() };
//! let eps = run_episodes(env.as_mut(), &opts, &mut |_obs, a| { a[0] = 1.0; Ok(()) }, &mut |_, _| {})?;
//! let s = summarize(&eps);
//! assert_eq!(s.episodes, 3);
//! assert!(s.mean_return > 5.0 && s.mean_return < 100.0);
//! # Ok::<(), taper_train::TrainError>(())
//! ```

use crate::error::{Result, TrainError};
use serde::{Deserialize, Serialize};
use taper_envs::parallel::{MaEpisode, MultiAction, ParallelEnv, StepBuffers, MAX_EPISODE_STATS};
use taper_envs::wrappers::EpisodeRecord;
use taper_envs::{Action, Env, Space};

/// How to evaluate.
#[derive(Debug, Clone, Copy, PartialEq, Serialize, Deserialize)]
pub struct EvalOptions {
    /// Episodes to run.
    pub episodes: usize,
    /// Episode k is reset with `seed + k`; the policy's own sampling stream derives from it.
    pub seed: u64,
    /// Take the most likely action instead of sampling.
    pub deterministic: bool,
    /// Cut an episode after this many steps (as a truncation), so an env without a time limit
    /// ends.
    pub max_steps: u64,
    /// Steps at the start of each episode that [`run_episodes_after_warmup`] leaves out of its
    /// second tally (the start-up transient of an average-cost problem); `None` leaves the
    /// choice to the learner, which takes the env's own
    /// (`taper_envs::registry::evaluation_warmup`), and the functions here read it as 0.
    #[serde(default)]
    pub warmup: Option<u64>,
}

impl Default for EvalOptions {
    /// 10 episodes from seed 0, sampled actions, at most 100 000 steps an episode, the env's
    /// warm-up.
    fn default() -> Self {
        EvalOptions {
            episodes: 10,
            seed: 0,
            deterministic: false,
            max_steps: 100_000,
            warmup: None,
        }
    }
}

impl EvalOptions {
    /// Checks the options: at least one episode, at least one step.
    pub fn validate(&self) -> Result<()> {
        if self.episodes == 0 || self.max_steps == 0 {
            return Err(TrainError::Invalid {
                what: "evaluation",
                reason: "needs at least one episode of at least one step".into(),
            });
        }
        Ok(())
    }
}

/// The env being evaluated, as an evaluation hook sees it after a reset and after each step
/// (to draw it or print it).
#[derive(Clone, Copy)]
pub enum EnvView<'a> {
    /// A single-agent env.
    Single(&'a dyn Env),
    /// A multi-agent env.
    Parallel(&'a dyn ParallelEnv),
}

/// What an evaluation found: every episode, and the algorithm's or env's further figures
/// (a multi-agent env's statistics, an inventory env's cost per period).
#[derive(Debug, Clone, Default)]
pub struct Evaluation {
    /// Each episode's return (per agent, averaged over agents, for multi-agent envs), length
    /// and success.
    pub episodes: Vec<EpisodeRecord>,
    /// Further figures, in order, as `eval --json` prints them.
    pub extra: Vec<(String, serde_json::Value)>,
}

impl Evaluation {
    /// The summary of the episodes.
    pub fn summary(&self) -> EpisodeSummary {
        summarize(&self.episodes)
    }
    /// An extra figure by name.
    pub fn get(&self, name: &str) -> Option<&serde_json::Value> {
        self.extra.iter().find(|(k, _)| k == name).map(|(_, v)| v)
    }
}

/// Statistics of a set of episodes (population std, as SB3's `evaluate_policy`).
#[derive(Debug, Clone, Copy, PartialEq, Serialize, Deserialize)]
pub struct EpisodeSummary {
    /// Episodes.
    pub episodes: usize,
    /// Mean return.
    pub mean_return: f64,
    /// Population standard deviation of the return.
    pub std_return: f64,
    /// Standard error of the mean return, `s/√n` with the sample standard deviation `s`
    /// (none for one episode).
    pub se_return: Option<f64>,
    /// Lowest return.
    pub min_return: f64,
    /// Highest return.
    pub max_return: f64,
    /// Mean length.
    pub mean_length: f64,
    /// Standard error of the mean length (none for one episode).
    pub se_length: Option<f64>,
    /// Fraction of successes, where every episode reports success.
    pub success_rate: Option<f64>,
}

/// Summarises episodes; the mean cost per period of an inventory run is
/// `−mean_return / mean_length`.
pub fn summarize(eps: &[EpisodeRecord]) -> EpisodeSummary {
    let n = eps.len().max(1) as f64;
    let mean = eps.iter().map(|e| e.ret).sum::<f64>() / n;
    EpisodeSummary {
        episodes: eps.len(),
        mean_return: mean,
        std_return: (eps.iter().map(|e| (e.ret - mean).powi(2)).sum::<f64>() / n).sqrt(),
        se_return: standard_error(&eps.iter().map(|e| e.ret).collect::<Vec<_>>()),
        min_return: eps.iter().map(|e| e.ret).fold(f64::INFINITY, f64::min),
        max_return: eps.iter().map(|e| e.ret).fold(f64::NEG_INFINITY, f64::max),
        mean_length: eps.iter().map(|e| e.len as f64).sum::<f64>() / n,
        se_length: standard_error(&eps.iter().map(|e| e.len as f64).collect::<Vec<_>>()),
        success_rate: if !eps.is_empty() && eps.iter().all(|e| e.success.is_some()) {
            Some(eps.iter().filter(|e| e.success == Some(true)).count() as f64 / n)
        } else {
            None
        },
    }
}

/// The standard error of the mean of independent values, `s/√n` with the sample standard
/// deviation `s`; none for fewer than two values.
pub fn standard_error(v: &[f64]) -> Option<f64> {
    if v.len() < 2 {
        return None;
    }
    let n = v.len() as f64;
    let m = v.iter().sum::<f64>() / n;
    Some((v.iter().map(|x| (x - m) * (x - m)).sum::<f64>() / (n - 1.0) / n).sqrt())
}

/// The mean and (population) standard deviation of some values.
pub fn mean_std(v: &[f64]) -> (f64, f64) {
    let n = v.len().max(1) as f64;
    let m = v.iter().sum::<f64>() / n;
    (m, (v.iter().map(|x| (x - m) * (x - m)).sum::<f64>() / n).sqrt())
}

/// A policy for [`run_episodes`]: the observation in, the action out (`flat_dim` of the
/// action space wide: a discrete action as its index).
pub type PolicyFn<'a> = dyn FnMut(&[f32], &mut [f32]) -> Result<()> + 'a;

/// Runs `opts.episodes` episodes of `act` on `env` (episode k reset with `opts.seed + k`) and
/// returns each episode's return, length and success. `on_step` sees the env after the reset
/// and after every step. An episode longer than `opts.max_steps` is cut there.
pub fn run_episodes(
    env: &mut dyn Env,
    opts: &EvalOptions,
    act: &mut PolicyFn<'_>,
    on_step: &mut dyn FnMut(usize, EnvView<'_>),
) -> Result<Vec<EpisodeRecord>> {
    Ok(run_episodes_after_warmup(env, opts, act, on_step)?.0)
}

/// [`run_episodes`], and beside each episode's record the same record without its first
/// `opts.warmup` steps (return and length of the rest; an episode no longer than the warm-up
/// has length 0 there).
pub fn run_episodes_after_warmup(
    env: &mut dyn Env,
    opts: &EvalOptions,
    act: &mut PolicyFn<'_>,
    on_step: &mut dyn FnMut(usize, EnvView<'_>),
) -> Result<(Vec<EpisodeRecord>, Vec<EpisodeRecord>)> {
    opts.validate()?;
    let mut obs = vec![0f32; env.observation_space().flat_dim()];
    let space = env.action_space().clone();
    let mut action = vec![0f32; space.flat_dim()];
    let mut md = vec![0i64; space.flat_dim()];
    let mut out = Vec::with_capacity(opts.episodes);
    let mut tails = Vec::with_capacity(opts.episodes);
    for k in 0..opts.episodes {
        env.reset_into(Some(opts.seed.wrapping_add(k as u64)), &mut obs)?;
        on_step(k, EnvView::Single(&*env));
        let (mut ret, mut len) = (0f64, 0u64);
        let (mut tail_ret, mut tail_len) = (0f64, 0u64);
        loop {
            act(&obs, &mut action)?;
            let a = match &space {
                Space::Discrete { .. } => Action::Discrete(action[0] as i64),
                Space::Box { .. } => Action::Continuous(&action),
                Space::MultiDiscrete { .. } => {
                    for (m, &x) in md.iter_mut().zip(&action) {
                        *m = x as i64;
                    }
                    Action::MultiDiscrete(&md)
                }
            };
            let s = env.step_into(a, &mut obs)?;
            ret += s.reward as f64;
            if len >= opts.warmup.unwrap_or(0) {
                tail_ret += s.reward as f64;
                tail_len += 1;
            }
            len += 1;
            on_step(k, EnvView::Single(&*env));
            if s.terminated || s.truncated || len >= opts.max_steps {
                let success = if s.terminated || s.truncated {
                    env.is_success()
                } else {
                    None
                };
                out.push(EpisodeRecord { ret, len, success });
                tails.push(EpisodeRecord {
                    ret: tail_ret,
                    len: tail_len,
                    success,
                });
                break;
            }
        }
    }
    Ok((out, tails))
}

/// A policy for [`run_parallel_episodes`]: all agents' observations in, all agents' actions
/// out (one index per agent for discrete actions, the action vectors concatenated otherwise).
pub type ParallelPolicyFn<'a> = dyn FnMut(&[f32], &mut [f32]) -> Result<()> + 'a;

/// Runs `opts.episodes` episodes of `act` on a multi-agent env (episode k reset with
/// `opts.seed + k`) and returns each episode's per-agent return (averaged over agents), length
/// and the env's episode statistics. An episode ends when every agent is done, or after
/// `opts.max_steps` steps.
pub fn run_parallel_episodes(
    env: &mut dyn ParallelEnv,
    opts: &EvalOptions,
    act: &mut ParallelPolicyFn<'_>,
    on_step: &mut dyn FnMut(usize, EnvView<'_>),
) -> Result<Vec<MaEpisode>> {
    opts.validate()?;
    let n = env.num_agents();
    let discrete = (0..n).all(|i| matches!(env.action_space(i), Space::Discrete { .. }));
    let aw = if discrete {
        n
    } else {
        (0..n).map(|i| env.action_space(i).flat_dim()).sum()
    };
    let stats = env.episode_stats();
    let k_stats = stats.len().min(MAX_EPISODE_STATS);
    let mut obs = vec![0f32; env.obs_width()];
    let mut actions = vec![0f32; aw];
    let mut idx = vec![0i64; n];
    let mut out = StepBuffers::new(n);
    let mut step_vals = [0f64; MAX_EPISODE_STATS];
    let mut res = Vec::with_capacity(opts.episodes);
    for k in 0..opts.episodes {
        env.reset_into(Some(opts.seed.wrapping_add(k as u64)), &mut obs)?;
        on_step(k, EnvView::Parallel(&*env));
        let (mut ret, mut len) = (0f64, 0u64);
        let mut sums = [0f64; MAX_EPISODE_STATS];
        loop {
            act(&obs, &mut actions)?;
            let a = if discrete {
                for (i, &x) in idx.iter_mut().zip(&actions) {
                    *i = x as i64;
                }
                MultiAction::Discrete(&idx)
            } else {
                MultiAction::Continuous(&actions)
            };
            env.step_into(a, &mut obs, &mut out)?;
            on_step(k, EnvView::Parallel(&*env));
            ret += out.rewards.iter().map(|&r| r as f64).sum::<f64>() / n as f64;
            if k_stats > 0 {
                env.step_stats(&mut step_vals[..k_stats]);
                for j in 0..k_stats {
                    sums[j] += step_vals[j];
                }
            }
            len += 1;
            let done = (0..n).all(|a| out.terminated[a] || out.truncated[a]);
            if done || len >= opts.max_steps {
                let mut ep = MaEpisode {
                    mean_agent_return: ret,
                    len,
                    stats: [0.0; MAX_EPISODE_STATS],
                };
                for (j, s) in stats.iter().take(k_stats).enumerate() {
                    ep.stats[j] = match s.reduce {
                        taper_envs::parallel::Reduce::MeanPerStep => sums[j] / len as f64,
                        taper_envs::parallel::Reduce::Sum => sums[j],
                    };
                }
                res.push(ep);
                break;
            }
        }
    }
    Ok(res)
}

/// An [`Evaluation`] of multi-agent episodes: the per-agent return as the return, and the
/// mean of each episode statistic as `mean_<name>`, with the agent count and the return's
/// convention.
pub fn parallel_evaluation(env: &dyn ParallelEnv, eps: &[MaEpisode]) -> Evaluation {
    let mut extra: Vec<(String, serde_json::Value)> = vec![
        ("agents".into(), env.num_agents().into()),
        (
            "return_convention".into(),
            "per-agent episode return, averaged over agents (PettingZoo)".into(),
        ),
    ];
    for (j, s) in env.episode_stats().iter().take(MAX_EPISODE_STATS).enumerate() {
        let v: Vec<f64> = eps.iter().map(|e| e.stats[j]).collect();
        extra.push((format!("mean_{}", s.name), mean_std(&v).0.into()));
        extra.push((format!("se_{}", s.name), standard_error(&v).into()));
    }
    Evaluation {
        episodes: eps
            .iter()
            .map(|e| EpisodeRecord {
                ret: e.mean_agent_return,
                len: e.len,
                success: None,
            })
            .collect(),
        extra,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// An env that never ends: the step cap ends its episodes.
    struct Endless {
        obs: Space,
        act: Space,
    }

    impl Env for Endless {
        fn observation_space(&self) -> &Space {
            &self.obs
        }
        fn action_space(&self) -> &Space {
            &self.act
        }
        fn reset_into(&mut self, _seed: Option<u64>, obs: &mut [f32]) -> taper_envs::Result<()> {
            obs[0] = 0.0;
            Ok(())
        }
        fn step_into(&mut self, _a: Action<'_>, obs: &mut [f32]) -> taper_envs::Result<taper_envs::StepOutcome> {
            obs[0] += 1.0;
            Ok(taper_envs::StepOutcome {
                reward: 1.0,
                terminated: false,
                truncated: false,
            })
        }
    }

    #[test]
    fn the_step_cap_ends_endless_episodes() {
        let mut env = Endless {
            obs: Space::uniform_box(1, 0.0, f32::INFINITY),
            act: Space::Discrete { n: 2 },
        };
        let opts = EvalOptions {
            episodes: 2,
            max_steps: 50,
            ..EvalOptions::default()
        };
        let eps = run_episodes(
            &mut env,
            &opts,
            &mut |_, a| {
                a[0] = 0.0;
                Ok(())
            },
            &mut |_, _| {},
        )
        .unwrap();
        assert_eq!(eps.len(), 2);
        assert!(eps.iter().all(|e| e.len == 50 && e.ret == 50.0));
        let bad = EvalOptions { episodes: 0, ..opts };
        assert!(run_episodes(&mut env, &bad, &mut |_, _| Ok(()), &mut |_, _| {}).is_err());
        let s = summarize(&eps);
        assert_eq!((s.mean_return, s.std_return, s.success_rate), (50.0, 0.0, None));
    }
}
