//! [`VecEnv`]: N copies of an env stepped into flat preallocated buffers, with same-step
//! autoreset, episode statistics, and optional observation/reward normalisation.
//!
//! After [`VecEnv::step`], for each env `i`:
//! - `obs()[i]` is the observation to act on next: the first observation of a new episode if
//!   env `i` just ended (autoreset in the same step, Gymnasium's `SAME_STEP` mode);
//! - `final_obs()[i]` is the last observation of the ended episode, valid where
//!   `terminated()[i] || truncated()[i]`, so truncated episodes can bootstrap from it;
//! - `finished()` lists the episodes that ended this step with their raw return and length.
//!
//! Nothing is allocated per step.
//!
//! ```
//! use taper_envs::{make_vec, VecAction};
//! let mut venv = make_vec("CartPole-v1", 4)?;
//! venv.reset(0)?;
//! for _ in 0..600 {
//!     venv.step(VecAction::Discrete(&[0, 1, 0, 1]))?;
//! }
//! assert_eq!(venv.obs().len(), 4 * 4);
//! # Ok::<(), taper_envs::EnvError>(())
//! ```

use crate::env::{Action, Env};
use crate::error::{EnvError, Result};
use crate::normalize::RunningMeanStd;
use crate::spaces::Space;
use crate::wrappers::EpisodeRecord;
use serde::{Deserialize, Serialize};

/// A batch of actions, one per env, flat.
#[derive(Debug, Clone, Copy)]
pub enum VecAction<'a> {
    /// `[N]` indices.
    Discrete(&'a [i64]),
    /// `[N, action_dim]` vectors.
    Continuous(&'a [f32]),
}

/// Normalisation applied by the [`VecEnv`]: CleanRL's continuous-control stack
/// (`NormalizeObservation` → clip to ±10 → `NormalizeReward(γ)` → clip to ±10). Statistics are
/// shared across the N envs, as in SB3's `VecNormalize`; with one env (CleanRL's continuous
/// default) this is exactly CleanRL's per-env wrappers.
#[derive(Debug, Clone, Copy, PartialEq, Serialize, Deserialize)]
pub struct NormalizeConfig {
    /// Normalise observations by their running mean and std.
    pub obs: bool,
    /// Scale rewards by the running std of the discounted return.
    pub reward: bool,
    /// Clip normalised observations to ±this.
    pub clip_obs: f32,
    /// Clip scaled rewards to ±this.
    pub clip_reward: f32,
    /// The discount of the return whose std scales rewards.
    pub gamma: f32,
    /// ε under the square root.
    pub eps: f64,
}

impl Default for NormalizeConfig {
    /// CleanRL's `ppo_continuous_action.py`: both on, clip 10, γ 0.99, ε 1e-8.
    fn default() -> Self {
        NormalizeConfig {
            obs: true,
            reward: true,
            clip_obs: 10.0,
            clip_reward: 10.0,
            gamma: 0.99,
            eps: 1e-8,
        }
    }
}

/// Saved normaliser statistics.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct NormalizerState {
    /// The configuration.
    pub config: NormalizeConfig,
    /// Observation statistics.
    pub obs_rms: RunningMeanStd,
    /// Statistics of the discounted return.
    pub ret_rms: RunningMeanStd,
    /// The running discounted return per env.
    pub returns: Vec<f64>,
}

/// A [`VecEnv`]'s full state, for exact resume: every env's snapshot, the current
/// observations, running episode statistics and the normaliser.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct VecEnvState {
    /// Each env's [`Env::snapshot`].
    pub envs: Vec<serde_json::Value>,
    /// Current (normalised) observations.
    pub obs: Vec<f32>,
    /// Current raw observations.
    pub raw_obs: Vec<f32>,
    /// Running episode returns.
    pub ep_ret: Vec<f64>,
    /// Running episode lengths.
    pub ep_len: Vec<u64>,
    /// Normaliser statistics.
    pub normalizer: Option<NormalizerState>,
    /// Whether `reset` has been called.
    pub started: bool,
}

/// N envs stepped together.
pub struct VecEnv {
    envs: Vec<Box<dyn Env>>,
    obs_space: Space,
    act_space: Space,
    obs_dim: usize,
    act_dim: usize,
    obs: Vec<f32>,
    raw_obs: Vec<f32>,
    final_obs: Vec<f32>,
    raw_final_obs: Vec<f32>,
    rewards: Vec<f32>,
    raw_rewards: Vec<f32>,
    terminated: Vec<bool>,
    truncated: Vec<bool>,
    ep_ret: Vec<f64>,
    ep_len: Vec<u64>,
    finished: Vec<(usize, EpisodeRecord)>,
    norm: Option<NormalizerState>,
    training: bool,
    parallel: bool,
    started: bool,
    errors: Vec<Option<EnvError>>,
    ret_buf: Vec<f32>,
    id: Option<(String, crate::Kwargs)>,
}

impl std::fmt::Debug for VecEnv {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("VecEnv")
            .field("num_envs", &self.envs.len())
            .field("observation_space", &self.obs_space)
            .field("action_space", &self.act_space)
            .finish()
    }
}

impl VecEnv {
    /// Batches envs that share their spaces.
    pub fn new(envs: Vec<Box<dyn Env>>) -> Result<Self> {
        let first = envs.first().ok_or_else(|| EnvError::Invalid {
            name: "num_envs",
            reason: "need at least one env".into(),
        })?;
        let obs_space = first.observation_space().clone();
        let act_space = first.action_space().clone();
        if envs
            .iter()
            .any(|e| e.observation_space() != &obs_space || e.action_space() != &act_space)
        {
            return Err(EnvError::Invalid {
                name: "envs",
                reason: "all envs must share their spaces".into(),
            });
        }
        let n = envs.len();
        let obs_dim = obs_space.flat_dim();
        let act_dim = act_space.flat_dim();
        Ok(VecEnv {
            envs,
            obs_space,
            act_space,
            obs_dim,
            act_dim,
            obs: vec![0.0; n * obs_dim],
            raw_obs: vec![0.0; n * obs_dim],
            final_obs: vec![0.0; n * obs_dim],
            raw_final_obs: vec![0.0; n * obs_dim],
            rewards: vec![0.0; n],
            raw_rewards: vec![0.0; n],
            terminated: vec![false; n],
            truncated: vec![false; n],
            ep_ret: vec![0.0; n],
            ep_len: vec![0; n],
            finished: Vec::with_capacity(n),
            norm: None,
            training: true,
            parallel: false,
            started: false,
            errors: (0..n).map(|_| None).collect(),
            ret_buf: vec![0.0; n],
            id: None,
        })
    }

    /// Records the registry id and keyword arguments the envs were built from (what
    /// checkpoints name, and what a learner rebuilds to evaluate).
    pub fn with_id(mut self, id: &str, kwargs: &crate::Kwargs) -> Self {
        self.id = Some((id.to_string(), kwargs.clone()));
        self
    }
    /// The registry id and keyword arguments, when built from the registry.
    pub fn id(&self) -> Option<(&str, &crate::Kwargs)> {
        self.id.as_ref().map(|(i, k)| (i.as_str(), k))
    }

    /// Steps the envs on rayon's pool. Off by default: for cheap envs such as CartPole the
    /// fork-join costs more than the step (see `benches/envs.rs`).
    pub fn set_parallel(&mut self, on: bool) {
        self.parallel = on;
    }

    /// Turns on normalisation with fresh statistics.
    pub fn set_normalize(&mut self, config: NormalizeConfig) {
        let n = self.envs.len();
        self.norm = Some(NormalizerState {
            config,
            obs_rms: RunningMeanStd::new(self.obs_dim),
            ret_rms: RunningMeanStd::new(1),
            returns: vec![0.0; n],
        });
    }
    /// The normaliser's statistics, if normalising.
    pub fn normalizer(&self) -> Option<&NormalizerState> {
        self.norm.as_ref()
    }
    /// Restores saved statistics.
    pub fn load_normalizer(&mut self, state: NormalizerState) -> Result<()> {
        if state.obs_rms.dim() != self.obs_dim {
            return Err(EnvError::Shape {
                what: "normalizer statistics",
                expected: self.obs_dim,
                got: state.obs_rms.dim(),
            });
        }
        let mut state = state;
        state.returns.resize(self.envs.len(), 0.0);
        self.norm = Some(state);
        Ok(())
    }
    /// The full state, for exact resume. Fails if an env cannot save its state.
    pub fn snapshot(&self) -> Result<VecEnvState> {
        let envs = crate::env::all_snapshots(self.envs.iter().map(|e| e.snapshot()))?;
        Ok(VecEnvState {
            envs,
            obs: self.obs.clone(),
            raw_obs: self.raw_obs.clone(),
            ep_ret: self.ep_ret.clone(),
            ep_len: self.ep_len.clone(),
            normalizer: self.norm.clone(),
            started: self.started,
        })
    }

    /// Restores a state saved by [`VecEnv::snapshot`] on a `VecEnv` built the same way.
    pub fn restore(&mut self, s: &VecEnvState) -> Result<()> {
        let n = self.envs.len();
        if s.envs.len() != n {
            return Err(EnvError::Shape {
                what: "saved envs",
                expected: n,
                got: s.envs.len(),
            });
        }
        for (what, got, want) in [
            ("saved observations", s.obs.len(), self.obs.len()),
            ("saved raw observations", s.raw_obs.len(), self.raw_obs.len()),
            ("saved episode returns", s.ep_ret.len(), n),
            ("saved episode lengths", s.ep_len.len(), n),
        ] {
            if got != want {
                return Err(EnvError::Shape {
                    what,
                    expected: want,
                    got,
                });
            }
        }
        if let Some(norm) = &s.normalizer {
            if norm.obs_rms.dim() != self.obs_dim || norm.returns.len() != n {
                return Err(EnvError::Shape {
                    what: "saved normalizer",
                    expected: self.obs_dim,
                    got: norm.obs_rms.dim(),
                });
            }
        }
        for (e, v) in self.envs.iter_mut().zip(&s.envs) {
            e.restore(v)?;
        }
        self.obs.copy_from_slice(&s.obs);
        self.raw_obs.copy_from_slice(&s.raw_obs);
        self.ep_ret.copy_from_slice(&s.ep_ret);
        self.ep_len.copy_from_slice(&s.ep_len);
        self.norm = s.normalizer.clone();
        self.started = s.started;
        self.finished.clear();
        Ok(())
    }

    /// In evaluation mode (`false`) the normaliser's statistics are frozen.
    pub fn set_training(&mut self, training: bool) {
        self.training = training;
    }

    /// Number of envs.
    pub fn num_envs(&self) -> usize {
        self.envs.len()
    }
    /// One env's observation space.
    pub fn observation_space(&self) -> &Space {
        &self.obs_space
    }
    /// One env's action space.
    pub fn action_space(&self) -> &Space {
        &self.act_space
    }
    /// Width of one observation.
    pub fn obs_dim(&self) -> usize {
        self.obs_dim
    }
    /// Current observations `[N, obs_dim]` (normalised if normalising).
    pub fn obs(&self) -> &[f32] {
        &self.obs
    }
    /// Final observations of episodes that ended in the last step `[N, obs_dim]`.
    pub fn final_obs(&self) -> &[f32] {
        &self.final_obs
    }
    /// Rewards of the last step `[N]` (scaled if normalising rewards).
    pub fn rewards(&self) -> &[f32] {
        &self.rewards
    }
    /// Raw rewards of the last step `[N]`.
    pub fn raw_rewards(&self) -> &[f32] {
        &self.raw_rewards
    }
    /// Terminated flags of the last step.
    pub fn terminated(&self) -> &[bool] {
        &self.terminated
    }
    /// Truncated flags of the last step.
    pub fn truncated(&self) -> &[bool] {
        &self.truncated
    }
    /// Episodes that ended in the last step: `(env index, record)`.
    pub fn finished(&self) -> &[(usize, EpisodeRecord)] {
        &self.finished
    }
    /// The envs.
    pub fn envs(&self) -> &[Box<dyn Env>] {
        &self.envs
    }

    /// Resets every env; env `i` gets seed `seed + i` (Gymnasium's convention).
    pub fn reset(&mut self, seed: u64) -> Result<()> {
        let d = self.obs_dim;
        for (i, env) in self.envs.iter_mut().enumerate() {
            env.reset_into(Some(seed.wrapping_add(i as u64)), &mut self.raw_obs[i * d..(i + 1) * d])?;
        }
        self.ep_ret.fill(0.0);
        self.ep_len.fill(0);
        self.finished.clear();
        self.started = true;
        self.obs.copy_from_slice(&self.raw_obs);
        if let Some(norm) = self.norm.as_mut() {
            if norm.config.obs {
                if self.training {
                    norm.obs_rms.update(&self.raw_obs, self.envs.len());
                }
                norm.obs_rms
                    .normalize(&mut self.obs, norm.config.eps, norm.config.clip_obs);
            }
        }
        Ok(())
    }

    /// Steps every env with its action, autoresetting those that end.
    pub fn step(&mut self, actions: VecAction<'_>) -> Result<()> {
        if !self.started {
            return Err(EnvError::NeedsReset("VecEnv: call reset first"));
        }
        let n = self.envs.len();
        let (d, ad) = (self.obs_dim, self.act_dim);
        match actions {
            VecAction::Discrete(a) if a.len() != n => {
                return Err(EnvError::Shape {
                    what: "actions",
                    expected: n,
                    got: a.len(),
                })
            }
            VecAction::Continuous(a) if a.len() != n * ad => {
                return Err(EnvError::Shape {
                    what: "actions",
                    expected: n * ad,
                    got: a.len(),
                })
            }
            _ => {}
        }
        self.finished.clear();
        let step_one = |i: usize,
                        env: &mut Box<dyn Env>,
                        obs: &mut [f32],
                        fin: &mut [f32],
                        rew: &mut f32,
                        term: &mut bool,
                        trunc: &mut bool,
                        ret: &mut f64,
                        len: &mut u64,
                        err: &mut Option<EnvError>|
         -> Option<EpisodeRecord> {
            let act = match actions {
                VecAction::Discrete(a) => Action::Discrete(a[i]),
                VecAction::Continuous(a) => Action::Continuous(&a[i * ad..(i + 1) * ad]),
            };
            match env.step_into(act, obs) {
                Ok(o) => {
                    *rew = o.reward;
                    *term = o.terminated;
                    *trunc = o.truncated;
                    *ret += o.reward as f64;
                    *len += 1;
                    if o.terminated || o.truncated {
                        let rec = EpisodeRecord {
                            ret: *ret,
                            len: *len,
                            success: env.is_success(),
                        };
                        fin.copy_from_slice(obs);
                        *ret = 0.0;
                        *len = 0;
                        if let Err(e) = env.reset_into(None, obs) {
                            *err = Some(e);
                        }
                        Some(rec)
                    } else {
                        None
                    }
                }
                Err(e) => {
                    *err = Some(e);
                    None
                }
            }
        };
        if self.parallel && n > 1 {
            use rayon::prelude::*;
            let recs: Vec<Option<EpisodeRecord>> = self
                .envs
                .par_iter_mut()
                .zip(self.raw_obs.par_chunks_mut(d))
                .zip(self.raw_final_obs.par_chunks_mut(d))
                .zip(self.raw_rewards.par_iter_mut())
                .zip(self.terminated.par_iter_mut())
                .zip(self.truncated.par_iter_mut())
                .zip(self.ep_ret.par_iter_mut())
                .zip(self.ep_len.par_iter_mut())
                .zip(self.errors.par_iter_mut())
                .enumerate()
                .map(|(i, ((((((((env, o), f), r), te), tr), ret), len), err))| {
                    step_one(i, env, o, f, r, te, tr, ret, len, err)
                })
                .collect();
            for (i, r) in recs.into_iter().enumerate() {
                if let Some(r) = r {
                    self.finished.push((i, r));
                }
            }
        } else {
            for i in 0..n {
                let rec = step_one(
                    i,
                    &mut self.envs[i],
                    &mut self.raw_obs[i * d..(i + 1) * d],
                    &mut self.raw_final_obs[i * d..(i + 1) * d],
                    &mut self.raw_rewards[i],
                    &mut self.terminated[i],
                    &mut self.truncated[i],
                    &mut self.ep_ret[i],
                    &mut self.ep_len[i],
                    &mut self.errors[i],
                );
                if let Some(r) = rec {
                    self.finished.push((i, r));
                }
            }
        }
        if let Some(e) = self.errors.iter_mut().find_map(|e| e.take()) {
            self.errors.iter_mut().for_each(|e| *e = None);
            return Err(e);
        }
        self.apply_normalization();
        Ok(())
    }

    fn apply_normalization(&mut self) {
        let n = self.envs.len();
        let d = self.obs_dim;
        self.obs.copy_from_slice(&self.raw_obs);
        self.rewards.copy_from_slice(&self.raw_rewards);
        for &(i, _) in &self.finished {
            self.final_obs[i * d..(i + 1) * d].copy_from_slice(&self.raw_final_obs[i * d..(i + 1) * d]);
        }
        let Some(norm) = self.norm.as_mut() else {
            return;
        };
        let cfg = norm.config;
        if cfg.obs {
            if self.training {
                // The observations the step produced: final ones where an episode ended...
                for &(i, _) in &self.finished {
                    self.obs[i * d..(i + 1) * d].copy_from_slice(&self.raw_final_obs[i * d..(i + 1) * d]);
                }
                norm.obs_rms.update(&self.obs, n);
                // ...then the reset observations of those envs.
                for &(i, _) in &self.finished {
                    norm.obs_rms.update(&self.raw_obs[i * d..(i + 1) * d], 1);
                }
                self.obs.copy_from_slice(&self.raw_obs);
            }
            norm.obs_rms.normalize(&mut self.obs, cfg.eps, cfg.clip_obs);
            for &(i, _) in &self.finished {
                norm.obs_rms
                    .normalize(&mut self.final_obs[i * d..(i + 1) * d], cfg.eps, cfg.clip_obs);
            }
        }
        if cfg.reward {
            for i in 0..n {
                let cont = if self.terminated[i] { 0.0 } else { 1.0 };
                norm.returns[i] = norm.returns[i] * cfg.gamma as f64 * cont + self.raw_rewards[i] as f64;
            }
            if self.training {
                for (b, &v) in self.ret_buf.iter_mut().zip(&norm.returns) {
                    *b = v as f32;
                }
                norm.ret_rms.update(&self.ret_buf, n);
            }
            let scale = 1.0 / (norm.ret_rms.var()[0] + cfg.eps).sqrt();
            for r in self.rewards.iter_mut() {
                *r = ((*r as f64 * scale) as f32).clamp(-cfg.clip_reward, cfg.clip_reward);
            }
        }
    }
}
