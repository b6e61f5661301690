//! [`EvalCallback`]: evaluate the policy every N env steps on a separate env, log the results,
//! and keep the best-by-evaluation checkpoint (SB3's `EvalCallback`).

use crate::callback::{Callback, Control, UpdateContext};
use crate::error::{AlgoError, Result};
use crate::ppo::evaluate;
use crate::run::{learner_checkpoint, save_checkpoint};
use serde::{Deserialize, Serialize};
use std::io::Write;
use std::path::PathBuf;
use taper_envs::wrappers::EpisodeRecord;
use taper_envs::{Env, Kwargs};

/// Statistics of a set of evaluated episodes (population std, as SB3's `evaluate_policy`).
#[derive(Debug, Clone, Copy, PartialEq, Serialize, Deserialize)]
pub struct EpisodeSummary {
    /// Episodes.
    pub episodes: usize,
    /// Mean return.
    pub mean_return: f64,
    /// Population standard deviation of the return.
    pub std_return: f64,
    /// Lowest return.
    pub min_return: f64,
    /// Highest return.
    pub max_return: f64,
    /// Mean length.
    pub mean_length: f64,
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
        min_return: eps.iter().map(|e| e.ret).fold(f64::INFINITY, f64::min),
        max_return: eps.iter().map(|e| e.ret).fold(f64::NEG_INFINITY, f64::max),
        mean_length: eps.iter().map(|e| e.len as f64).sum::<f64>() / n,
        success_rate: if eps.iter().all(|e| e.success.is_some()) {
            Some(eps.iter().filter(|e| e.success == Some(true)).count() as f64 / n)
        } else {
            None
        },
    }
}

/// One evaluation.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct EvalRecord {
    /// Training env steps at the evaluation.
    pub global_step: u64,
    /// Episodes run.
    pub episodes: usize,
    /// Mean raw return.
    pub mean_return: f64,
    /// Population std of the return.
    pub std_return: f64,
    /// Success rate, for envs with the notion.
    pub success_rate: Option<f64>,
}

/// Evaluates every `every` env steps; writes `evaluations.jsonl` and `best/` in a run folder.
pub struct EvalCallback {
    env: Box<dyn Env>,
    env_id: String,
    env_kwargs: Kwargs,
    run_seed: u64,
    every: u64,
    episodes: usize,
    seed: u64,
    next_at: u64,
    best: f64,
    dir: Option<PathBuf>,
    /// Every evaluation so far.
    pub history: Vec<EvalRecord>,
    /// The first error, which also stopped training.
    pub error: Option<AlgoError>,
}

impl EvalCallback {
    /// Evaluates `episodes` deterministic episodes of a fresh `env_id` every `every` env
    /// steps; episode k uses seed `seed + k` each time, so evaluations are comparable.
    pub fn new(
        env_id: &str,
        env_kwargs: &Kwargs,
        run_seed: u64,
        every: u64,
        episodes: usize,
        seed: u64,
    ) -> Result<Self> {
        if every == 0 || episodes == 0 {
            return Err(AlgoError::Config {
                field: "eval",
                reason: "eval interval and episodes must be positive".into(),
            });
        }
        Ok(EvalCallback {
            env: taper_envs::make_with(env_id, env_kwargs)?,
            env_id: env_id.to_string(),
            env_kwargs: env_kwargs.clone(),
            run_seed,
            every,
            episodes,
            seed,
            next_at: every,
            best: f64::NEG_INFINITY,
            dir: None,
            history: Vec::new(),
            error: None,
        })
    }

    /// Writes `evaluations.jsonl` and the best checkpoint (`best/`) into `dir`, continuing
    /// the history already there (rows after `up_to_step` are dropped, for resumed runs).
    pub fn with_run_dir(mut self, dir: PathBuf, up_to_step: u64) -> Result<Self> {
        let p = dir.join("evaluations.jsonl");
        if let Ok(text) = std::fs::read_to_string(&p) {
            self.history = text
                .lines()
                .filter_map(|l| serde_json::from_str::<EvalRecord>(l).ok())
                .filter(|r| r.global_step <= up_to_step)
                .collect();
            let body: String = self
                .history
                .iter()
                .map(|r| format!("{}\n", serde_json::to_string(r).unwrap_or_default()))
                .collect();
            crate::run::write_atomic(&p, body.as_bytes())?;
        }
        self.best = self
            .history
            .iter()
            .map(|r| r.mean_return)
            .fold(f64::NEG_INFINITY, f64::max);
        self.next_at = (up_to_step / self.every + 1) * self.every;
        self.dir = Some(dir);
        Ok(self)
    }

    /// The best mean return so far.
    pub fn best(&self) -> f64 {
        self.best
    }

    fn run(&mut self, ctx: &UpdateContext<'_>) -> Result<()> {
        let step = ctx.learner.global_step();
        if step < self.next_at {
            return Ok(());
        }
        while self.next_at <= step {
            self.next_at += self.every;
        }
        let eps = evaluate(
            ctx.learner.policy(),
            self.env.as_mut(),
            ctx.envs.normalizer(),
            self.episodes,
            self.seed,
            true,
        )?;
        let sum = summarize(&eps);
        let (mean, std, success_rate) = (sum.mean_return, sum.std_return, sum.success_rate);
        let rec = EvalRecord {
            global_step: step,
            episodes: eps.len(),
            mean_return: mean,
            std_return: std,
            success_rate,
        };
        if let Some(dir) = &self.dir {
            let p = dir.join("evaluations.jsonl");
            let mut f = std::fs::OpenOptions::new()
                .create(true)
                .append(true)
                .open(&p)
                .map_err(|e| AlgoError::Io {
                    path: p.display().to_string(),
                    source: e,
                })?;
            writeln!(f, "{}", serde_json::to_string(&rec).unwrap_or_default()).map_err(|e| AlgoError::Io {
                path: p.display().to_string(),
                source: e,
            })?;
            if mean > self.best {
                let state = learner_checkpoint(ctx.learner, ctx.envs, &self.env_id, &self.env_kwargs, self.run_seed)?;
                save_checkpoint(&dir.join("best"), ctx.learner.policy(), &state)?;
            }
        }
        if mean > self.best {
            self.best = mean;
        }
        self.history.push(rec);
        Ok(())
    }
}

impl Callback for EvalCallback {
    fn on_update(&mut self, ctx: &UpdateContext<'_>) -> Control {
        match self.run(ctx) {
            Ok(()) => Control::Continue,
            Err(e) => {
                self.error = Some(e);
                Control::Stop
            }
        }
    }
}
