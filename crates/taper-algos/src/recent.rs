//! The window of recently finished episodes behind the `recent_*` metrics, for single-agent
//! episodes ([`EpisodeRecord`]: return, length, success) and multi-agent ones ([`MaEpisode`]:
//! per-agent return and the env's episode statistics).

use serde::Serialize;
use std::collections::VecDeque;
use taper_envs::parallel::{EpisodeStat, MaEpisode};
use taper_envs::wrappers::EpisodeRecord;
use taper_train::metrics::Metrics;

/// Episodes in the single-agent `recent_*` metrics (CleanRL's convention of a short window).
pub const RECENT_EPISODES: usize = 20;
/// Episodes in the multi-agent `recent_*` metrics (the mean of the last 100 episodes).
pub const RECENT_MA_EPISODES: usize = 100;

/// The mean of `f` over episodes (NaN for none).
pub fn mean_of<'a, E: 'a>(eps: impl Iterator<Item = &'a E>, f: impl Fn(&E) -> f64) -> f64 {
    let (s, k) = eps.fold((0.0, 0usize), |a, e| (a.0 + f(e), a.1 + 1));
    if k == 0 {
        f64::NAN
    } else {
        s / k as f64
    }
}

/// An episode kind the on-policy learners log.
pub trait LoggedEpisode: Copy + std::fmt::Debug + Serialize + serde::de::DeserializeOwned + Send {
    /// How many recent episodes the `recent_*` metrics average.
    const WINDOW: usize;
    /// The metrics of the episodes finished in one update (`episodes`, `episodic_*`).
    fn iteration_metrics(this: &[Self], m: &mut Metrics);
    /// The `recent_*` metrics of a window; `stats` names a multi-agent env's statistics.
    fn recent_metrics(window: &VecDeque<Self>, stats: &[EpisodeStat], m: &mut Metrics);
}

impl LoggedEpisode for EpisodeRecord {
    const WINDOW: usize = RECENT_EPISODES;
    fn iteration_metrics(this: &[Self], m: &mut Metrics) {
        m.push("episodes", this.len() as f64);
        m.push("episodic_return", mean_of(this.iter(), |e| e.ret));
        m.push("episodic_length", mean_of(this.iter(), |e| e.len as f64));
    }
    fn recent_metrics(window: &VecDeque<Self>, _stats: &[EpisodeStat], m: &mut Metrics) {
        m.push("recent_return", mean_of(window.iter(), |e| e.ret));
        if window.iter().any(|e| e.success.is_some()) {
            m.push(
                "success_rate",
                mean_of(window.iter(), |e| if e.success == Some(true) { 1.0 } else { 0.0 }),
            );
        }
    }
}

impl LoggedEpisode for MaEpisode {
    const WINDOW: usize = RECENT_MA_EPISODES;
    fn iteration_metrics(this: &[Self], m: &mut Metrics) {
        m.push("episodes", this.len() as f64);
        m.push("episodic_return", mean_of(this.iter(), |e| e.mean_agent_return));
    }
    fn recent_metrics(window: &VecDeque<Self>, stats: &[EpisodeStat], m: &mut Metrics) {
        m.push("recent_return", mean_of(window.iter(), |e| e.mean_agent_return));
        for (j, s) in stats.iter().enumerate() {
            m.push(format!("recent_{}", s.name), mean_of(window.iter(), |e| e.stats[j]));
        }
    }
}

/// The last [`LoggedEpisode::WINDOW`] finished episodes.
#[derive(Debug, Clone)]
pub struct RecentEpisodes<E> {
    window: VecDeque<E>,
}

impl<E> Default for RecentEpisodes<E> {
    fn default() -> Self {
        RecentEpisodes {
            window: VecDeque::new(),
        }
    }
}

impl<E: LoggedEpisode> RecentEpisodes<E> {
    /// A window holding the last of `v`.
    pub fn from_vec(v: Vec<E>) -> Self {
        let mut r = RecentEpisodes::default();
        for e in v {
            r.push(e);
        }
        r
    }
    /// The episodes, oldest first.
    pub fn to_vec(&self) -> Vec<E> {
        self.window.iter().copied().collect()
    }
    /// Adds an episode, dropping the oldest beyond the window.
    pub fn push(&mut self, ep: E) {
        if self.window.len() == E::WINDOW {
            self.window.pop_front();
        }
        self.window.push_back(ep);
    }
    /// The `recent_*` metrics.
    pub fn write_metrics(&self, stats: &[EpisodeStat], m: &mut Metrics) {
        E::recent_metrics(&self.window, stats, m)
    }
    /// The mean return over the window (NaN when empty).
    pub fn mean_return(&self) -> f64 {
        let mut m = Metrics::new();
        E::recent_metrics(&self.window, &[], &mut m);
        m.get("recent_return").unwrap_or(f64::NAN)
    }
}
