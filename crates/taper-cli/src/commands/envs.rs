//! `taper envs`: the env registry, with each env's time limit and default PPO budget.

use crate::error::Result;
use crate::out;
use taper::algos::AlgoKind;

/// Lists every env, multi-agent first.
pub fn run() -> Result<()> {
    out!("{:<24} {:>5} {:>12}  description", "id", "limit", "budget");
    for s in taper::envs::registry::parallel_specs() {
        out!(
            "{:<24} {:>5} {:>12}  {} [kwargs: {}] (--algo mappo|ippo|maddpg)",
            s.id,
            s.max_episode_steps.map(|l| l.to_string()).unwrap_or_else(|| "-".into()),
            AlgoKind::Mappo.default_budget(s.id),
            s.description,
            s.kwargs
        );
    }
    for s in taper::envs::registry::specs() {
        let limit = s.max_episode_steps.map(|l| l.to_string()).unwrap_or_else(|| "-".into());
        out!(
            "{:<24} {:>5} {:>12}  {}{}",
            s.id,
            limit,
            AlgoKind::Ppo.default_budget(s.id),
            s.description,
            if s.kwargs.is_empty() {
                String::new()
            } else {
                format!(" [kwargs: {}]", s.kwargs)
            }
        );
    }
    Ok(())
}
