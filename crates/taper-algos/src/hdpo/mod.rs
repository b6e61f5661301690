//! Hindsight Differentiable Policy Optimization (Alvo, Russo & Kanoria, arXiv 2306.11246):
//! sample demand paths up front, simulate the policy on them, and descend the gradient of the
//! total cost straight through the simulator (a pathwise gradient, not a score-function one).
//!
//! HDPO replaces the rollout and the advantage estimate of the on-policy stages with a
//! differentiable simulation whose loss is the cost. One learner ([`HdpoLearner`]) runs the
//! descent for any [`Problem`]: one store ([`store`], [`Hdpo`]) or an inventory network
//! ([`network`], [`HdpoNetwork`]). Each [`taper_train::Learner::step`] takes the gradient
//! steps up to the next development evaluation, which keeps the best parameters; when the plan
//! ends, the best policy's cost on held-out test paths is measured.
//!
//! ```no_run
//! use taper_algos::hdpo::{Hdpo, HdpoConfig};
//! use taper_algos::Algorithm;
//! let mut h = Hdpo::new(HdpoConfig::default(), "InventoryLostSales-v0", &Default::default(), 0)?;
//! h.learn(1500)?; // gradient steps
//! println!("test cost {:.4}", h.summary_costs().test_cost);
//! # Ok::<(), taper_algos::AlgoError>(())
//! ```

pub mod network;
pub mod store;

pub use network::{HdpoNetwork, NetworkPolicy, NetworkProblem};
pub use store::{Hdpo, OneStore, Scenarios, StorePolicy};

use crate::error::{AlgoError, Result};
use rand::Rng;
use rand_chacha::ChaCha8Rng;
use serde::{Deserialize, Serialize};
use std::collections::HashMap;
use std::time::Instant;
use taper_envs::Kwargs;
use taper_tensor::device::Placement;
use taper_tensor::optim::{Adam, AdamConfig, AdamState};
use taper_tensor::rng::{stream, Purpose};
use taper_train::checkpoint::{Checkpoint, ModelShape, NamedTensors};
use taper_train::eval::{EnvView, EvalOptions, Evaluation};
use taper_train::{Learner, LearnerState, Metrics, Progress, RunInfo};

/// HDPO hyperparameters; defaults follow the HDPO repository's one-store configs where they
/// exist (3 × 32 ELU, 50 training periods, dev 100 periods with 60 ignored, test 5000 with 3000
/// ignored), are smaller where the repository's sizes would only cost time, and take a larger
/// learning rate (measured; see the field).
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct HdpoConfig {
    /// Adam learning rate (taper: 1e-2; the repository uses 3e-3, which in 1500 steps of
    /// 1024 paths leaves L = 1 cells about 1% above the optimum, against 0.1–0.2% at 1e-2).
    pub learning_rate: f64,
    /// Hidden widths (repository: 32, 32, 32).
    pub hidden: Vec<usize>,
    /// Demand paths per gradient step (repository: 8192; 1024 also tested there).
    pub batch_size: usize,
    /// Training paths (repository: 32768).
    pub train_paths: usize,
    /// Periods per training path (repository: 50).
    pub train_periods: usize,
    /// Development paths, for choosing the parameters to keep.
    pub dev_paths: usize,
    /// Periods per development path (repository: 100).
    pub dev_periods: usize,
    /// Development periods left out of the reported cost (repository: 60).
    pub dev_ignore: usize,
    /// Test paths.
    pub test_paths: usize,
    /// Periods per test path (repository: 5000).
    pub test_periods: usize,
    /// Test periods left out of the reported cost (repository: 3000).
    pub test_ignore: usize,
    /// Gradient steps.
    pub steps: usize,
    /// Evaluate on the development set every this many steps.
    pub eval_every: usize,
    /// Networks only: width of the symmetry-aware policy's context (repository: 256).
    pub context: usize,
    /// Networks only: hidden widths of the upstream net (repository: 16, 16).
    pub upstream_hidden: Vec<usize>,
}

impl Default for HdpoConfig {
    fn default() -> Self {
        HdpoConfig {
            learning_rate: 1e-2,
            hidden: vec![32, 32, 32],
            batch_size: 1024,
            train_paths: 8192,
            train_periods: 50,
            dev_paths: 2048,
            dev_periods: 100,
            dev_ignore: 60,
            test_paths: 512,
            test_periods: 5000,
            test_ignore: 3000,
            steps: 1500,
            eval_every: 25,
            context: 64,
            upstream_hidden: vec![16, 16],
        }
    }
}

impl HdpoConfig {
    /// The defaults for inventory networks: the repository's symmetry-aware store net
    /// (2 × 32), learning rate 3e-3 (measured on `InventoryWarehouse-v0` with 3 stores: the
    /// repository's 1e-3 reaches a dev cost of 6.72 at step 100 where 3e-3 reaches 6.26),
    /// 1000 steps, test paths of 2000 periods with 500 ignored (the 2024 configs used 500 with
    /// 300 ignored).
    pub fn for_network() -> Self {
        HdpoConfig {
            learning_rate: 3e-3,
            hidden: vec![32, 32],
            steps: 1000,
            test_paths: 256,
            test_periods: 2000,
            test_ignore: 500,
            ..Self::default()
        }
    }

    /// Checks the ranges.
    pub fn validate(&self) -> Result<()> {
        use crate::checks::{at_least_one, bad, positive, widths};
        positive("learning_rate", self.learning_rate)?;
        at_least_one(&[
            ("batch_size", self.batch_size),
            ("train_paths", self.train_paths),
            ("train_periods", self.train_periods),
            ("dev_paths", self.dev_paths),
            ("test_paths", self.test_paths),
            ("steps", self.steps),
            ("eval_every", self.eval_every),
            ("context", self.context),
        ])?;
        for (f, what, v) in [
            (
                "train_paths",
                "train_paths x train_periods",
                self.train_paths.saturating_mul(self.train_periods),
            ),
            (
                "dev_paths",
                "dev_paths x dev_periods",
                self.dev_paths.saturating_mul(self.dev_periods),
            ),
            (
                "test_paths",
                "test_paths x test_periods",
                self.test_paths.saturating_mul(self.test_periods),
            ),
        ] {
            crate::checks::at_most(f, what, v, crate::checks::MAX_ROWS)?;
        }
        if self.batch_size > self.train_paths {
            return bad(
                "batch_size",
                format!("{} exceeds train_paths {}", self.batch_size, self.train_paths),
            );
        }
        if self.dev_ignore >= self.dev_periods {
            return bad("dev_ignore", "must be below dev_periods".into());
        }
        if self.test_ignore >= self.test_periods {
            return bad("test_ignore", "must be below test_periods".into());
        }
        widths("hidden", &self.hidden)?;
        widths("upstream_hidden", &self.upstream_hidden)
    }
}

/// Reads a cost written as `null` (JSON has no NaN) back as NaN.
fn nan_from_null<'de, D: serde::Deserializer<'de>>(d: D) -> std::result::Result<f64, D::Error> {
    Ok(Option::<f64>::deserialize(d)?.unwrap_or(f64::NAN))
}

/// A cost per period measured on simulated paths.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct PathCost {
    /// The mean over all paths and counted periods.
    pub mean: f64,
    /// Its standard error: the sample standard deviation of the paths' own means over √paths
    /// (none for one path).
    pub se: Option<f64>,
}

impl PathCost {
    /// The mean of `total` over `count` values, and the standard error from per-path means.
    pub(crate) fn new(total: f64, count: usize, per_path: &[f64]) -> Self {
        PathCost {
            mean: total / count.max(1) as f64,
            se: taper_train::eval::standard_error(per_path),
        }
    }
}

/// What an HDPO run found (costs per period; per store and period for networks).
#[derive(Debug, Clone, Copy, PartialEq, Serialize, Deserialize)]
pub struct HdpoSummary {
    /// Best development cost per period (NaN before the first evaluation).
    #[serde(deserialize_with = "nan_from_null")]
    pub best_dev_cost: f64,
    /// The step that gave it.
    pub best_step: usize,
    /// Test cost per period of the best-dev parameters, orders rounded (Poisson demand) or
    /// not (normal demand); NaN until the plan is done.
    #[serde(deserialize_with = "nan_from_null")]
    pub test_cost: f64,
    /// The standard error of `test_cost` over the test paths.
    #[serde(default)]
    pub test_cost_se: Option<f64>,
    /// Gradient steps taken.
    pub steps: usize,
}

/// An inventory problem HDPO can descend on: its policy, its simulated paths, and the
/// simulation's cost and gradient.
pub trait Problem: Sized {
    /// The policy.
    type Policy: Clone + std::fmt::Debug;
    /// Demand paths sampled up front.
    type Scenarios;
    /// Scratch space of the gradient.
    type Workspace: Default + std::fmt::Debug;
    /// The problem of a registered env id with its keyword arguments.
    fn from_env(env_id: &str, env_kwargs: &Kwargs) -> Result<Self>;
    /// A policy with seeded initial weights.
    fn new_policy(&self, config: &HdpoConfig, rng: &mut ChaCha8Rng) -> Result<Self::Policy>;
    /// The policy's parameters.
    fn num_params(policy: &Self::Policy) -> usize;
    /// `paths` paths of `periods` periods.
    fn sample(&self, paths: usize, periods: usize, rng: &mut ChaCha8Rng) -> Self::Scenarios;
    /// The mean cost over the paths `idx`, and its gradient into `grads`.
    fn loss_and_grad(
        &self,
        policy: &Self::Policy,
        scen: &Self::Scenarios,
        idx: &[usize],
        ws: &mut Self::Workspace,
        grads: &mut [f32],
    ) -> Result<f64>;
    /// The mean cost per period (from period `ignore` on) over all paths, and its standard
    /// error over the paths (independent demand); no gradient. `test` asks for the test-time
    /// policy (orders rounded where demand is integral).
    fn cost(&self, policy: &Self::Policy, scen: &Self::Scenarios, ignore: usize, test: bool) -> Result<PathCost>;
    /// Sets where the policy's networks compute.
    fn set_placement(policy: &mut Self::Policy, placement: &Placement);
    /// One Adam step of the policy's parameters.
    fn adam_step(policy: &mut Self::Policy, opt: &mut Adam, grads: &[f32]) -> Result<()>;
    /// The policy's weights as named tensors.
    fn tensors(policy: &Self::Policy) -> Result<NamedTensors>;
    /// Loads weights written by [`Problem::tensors`].
    fn load_tensors(policy: &mut Self::Policy, t: &HashMap<String, candle_core::Tensor>) -> Result<()>;
    /// The model's shape for checkpoints (state width, order bounds, hidden widths).
    fn model_shape(&self, config: &HdpoConfig) -> ModelShape;
    /// The orders of a deterministic policy for one observation (test-time rounding where
    /// `round`), clipped to the env's orders.
    fn orders(&self, policy: &Self::Policy, obs: &[f32], round: bool, out: &mut [f32]) -> Result<()>;
    /// Orders per decision (one per location).
    fn order_dim(&self) -> usize;
    /// Whether test-time orders are rounded.
    fn rounds(&self) -> bool;
    /// What costs are per ("per period", "per store and period").
    fn unit(&self) -> &'static str;
}

/// Where the descent stands (what a checkpoint keeps besides the weights).
#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct DescentState {
    /// The run's seed.
    pub seed: u64,
    /// Adam's state.
    pub optimizer: Option<AdamState>,
    /// The minibatch stream.
    pub shuffle_rng: ChaCha8Rng,
    /// The permutation of the training paths the minibatches are drawn from.
    pub perm: Vec<usize>,
    /// Gradient steps taken.
    pub step: usize,
    /// The best development cost and its step (before the first step: the initial policy's).
    pub best: Option<(f64, usize)>,
    /// The run's summary.
    pub summary: HdpoSummary,
}

/// The data of a run: training, development and test paths.
struct Data<S> {
    train: S,
    dev: S,
}

/// The HDPO learner for a [`Problem`]. See the module doc.
pub struct HdpoLearner<P: Problem> {
    /// The config.
    pub config: HdpoConfig,
    /// The problem.
    pub problem: P,
    /// The current policy.
    pub policy: P::Policy,
    /// The best-by-dev policy so far (what checkpoints keep for evaluation).
    pub best: P::Policy,
    seed: u64,
    run: RunInfo,
    opt: Option<Adam>,
    shuffle_rng: ChaCha8Rng,
    perm: Vec<usize>,
    step: usize,
    top: Option<(f64, usize)>,
    total: usize,
    summary: HdpoSummary,
    data: Option<Data<P::Scenarios>>,
    ws: P::Workspace,
    grads: Vec<f32>,
    started_at: Instant,
}

impl<P: Problem> std::fmt::Debug for HdpoLearner<P> {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("HdpoLearner")
            .field("config", &self.config)
            .field("step", &self.step)
            .field("summary", &self.summary)
            .finish()
    }
}

impl<P: Problem> HdpoLearner<P> {
    /// A learner for the registered inventory env `env_id`; all randomness from `seed`.
    pub fn new(config: HdpoConfig, env_id: &str, env_kwargs: &Kwargs, seed: u64) -> Result<Self> {
        let mut l = Self::with_problem(config, P::from_env(env_id, env_kwargs)?, seed)?;
        (l.run.env_id, l.run.env_kwargs) = (env_id.to_string(), env_kwargs.clone());
        Ok(l)
    }

    /// A learner for a problem built by hand (named `custom`).
    pub fn with_problem(config: HdpoConfig, problem: P, seed: u64) -> Result<Self> {
        config.validate()?;
        let mut rng = stream(seed, Purpose::Init, 0);
        let policy = problem.new_policy(&config, &mut rng)?;
        Ok(HdpoLearner {
            best: policy.clone(),
            grads: vec![0.0; P::num_params(&policy)],
            perm: (0..config.train_paths).collect(),
            summary: HdpoSummary {
                best_dev_cost: f64::NAN,
                best_step: 0,
                test_cost: f64::NAN,
                test_cost_se: None,
                steps: 0,
            },
            config,
            problem,
            policy,
            seed,
            run: RunInfo {
                algo: "hdpo".into(),
                env_id: "custom".into(),
                env_kwargs: Kwargs::new(),
                seed,
            },
            opt: None,
            shuffle_rng: stream(seed, Purpose::Shuffle, 0),
            step: 0,
            top: None,
            total: 0,
            data: None,
            ws: P::Workspace::default(),
            started_at: Instant::now(),
        })
    }

    /// The costs found so far.
    pub fn summary_costs(&self) -> HdpoSummary {
        self.summary
    }

    /// The test paths of this learner's seed (those the test cost is measured on), for
    /// comparing other policies on the same paths.
    pub fn test_scenarios(&self) -> P::Scenarios {
        let mut r = stream(self.seed, Purpose::Other(102), 0);
        self.problem
            .sample(self.config.test_paths, self.config.test_periods, &mut r)
    }

    fn ensure_data(&mut self) {
        if self.data.is_none() {
            let c = &self.config;
            let mut r = stream(self.seed, Purpose::Other(100), 0);
            let train = self.problem.sample(c.train_paths, c.train_periods, &mut r);
            let mut r = stream(self.seed, Purpose::Other(101), 0);
            let dev = self.problem.sample(c.dev_paths, c.dev_periods, &mut r);
            self.data = Some(Data { train, dev });
        }
    }

    /// The gradient steps up to the next development evaluation (every `eval_every` steps and
    /// at the plan's end); returns its row.
    fn descend_to_row(&mut self) -> Result<Metrics> {
        let c = self.config.clone();
        self.ensure_data();
        if self.top.is_none() {
            let d = self.data.as_ref().expect("made above");
            let dev = self.problem.cost(&self.policy, &d.dev, c.dev_ignore, false)?.mean;
            self.top = Some((dev, 0));
            self.best = self.policy.clone();
        }
        let opt = self.opt.get_or_insert_with(|| {
            Adam::new(
                AdamConfig {
                    lr: c.learning_rate as f32,
                    ..AdamConfig::default()
                },
                P::num_params(&self.policy),
            )
        });
        let _ = opt;
        let data = self.data.as_ref().expect("made above");
        let mut loss = f64::NAN;
        while self.step < self.total {
            self.step += 1;
            for i in 0..c.batch_size {
                let j = self.shuffle_rng.random_range(i..c.train_paths);
                self.perm.swap(i, j);
            }
            loss = self.problem.loss_and_grad(
                &self.policy,
                &data.train,
                &self.perm[..c.batch_size],
                &mut self.ws,
                &mut self.grads,
            )?;
            if !loss.is_finite() || self.grads.iter().any(|g| !g.is_finite()) {
                return Err(AlgoError::NonFinite {
                    update: self.step as u64,
                    term: "total cost",
                });
            }
            P::adam_step(&mut self.policy, self.opt.as_mut().expect("made above"), &self.grads)?;
            if self.step.is_multiple_of(c.eval_every) || self.step == self.total {
                break;
            }
        }
        let dev = self.problem.cost(&self.policy, &data.dev, c.dev_ignore, false)?.mean;
        let top = self.top.get_or_insert((dev, 0));
        if dev < top.0 {
            *top = (dev, self.step);
            self.best = self.policy.clone();
        }
        let top = *top;
        self.summary.best_dev_cost = top.0;
        self.summary.best_step = top.1;
        self.summary.steps = self.step;
        let mut m = Metrics::new();
        m.push("global_step", self.step as f64);
        m.push("train_cost", loss);
        m.push("dev_cost", dev);
        m.push("best_dev_cost", top.0);
        m.push("time_elapsed", self.started_at.elapsed().as_secs_f64());
        Ok(m)
    }
}

impl<P: Problem> Learner for HdpoLearner<P> {
    fn info(&self) -> RunInfo {
        self.run.clone()
    }
    fn set_placement(&mut self, placement: &Placement) -> taper_train::Result<()> {
        P::set_placement(&mut self.policy, placement);
        P::set_placement(&mut self.best, placement);
        Ok(())
    }
    fn config_json(&self) -> serde_json::Value {
        serde_json::to_value(&self.config).unwrap_or_default()
    }
    fn progress(&self) -> Progress {
        Progress {
            global_step: self.step as u64,
            updates: self.step as u64,
            episodes: 0,
        }
    }
    /// The plan counts gradient steps.
    fn plan(&mut self, total_steps: u64) -> taper_train::Result<u64> {
        if total_steps as usize <= self.step {
            return Err(AlgoError::Config {
                field: "total_steps",
                reason: format!(
                    "the run is already at step {} of a {total_steps}-step plan; give a larger budget to continue",
                    self.step
                ),
            }
            .into());
        }
        self.total = total_steps as usize;
        self.summary.test_cost = f64::NAN;
        self.started_at = Instant::now();
        Ok(total_steps)
    }
    fn step(&mut self) -> taper_train::Result<Metrics> {
        Ok(self.descend_to_row()?)
    }
    fn is_done(&self) -> bool {
        self.step >= self.total
    }
    /// Measures the best-by-dev policy on the test paths.
    fn finish(&mut self) -> taper_train::Result<()> {
        let test = self.test_scenarios();
        let round = self.problem.rounds();
        let c = self.problem.cost(&self.best, &test, self.config.test_ignore, round)?;
        (self.summary.test_cost, self.summary.test_cost_se) = (c.mean, c.se);
        Ok(())
    }
    fn export(&self) -> taper_train::Result<LearnerState> {
        let st = DescentState {
            seed: self.seed,
            optimizer: self.opt.as_ref().map(|o| o.state().clone()),
            shuffle_rng: self.shuffle_rng.clone(),
            perm: self.perm.clone(),
            step: self.step,
            best: self.top,
            summary: self.summary,
        };
        let mut s = LearnerState::new(
            serde_json::to_value(st).map_err(taper_train::TrainError::learner)?,
            P::tensors(&self.best)?,
        );
        s.model_shape = Some(self.problem.model_shape(&self.config));
        s.files = vec![(CURRENT_FILE.to_string(), P::tensors(&self.policy)?)];
        Ok(s)
    }
    fn import(&mut self, ckpt: &Checkpoint, resume: bool) -> taper_train::Result<()> {
        let bad = |e: AlgoError| taper_train::TrainError::checkpoint(&ckpt.dir, e.to_string());
        P::load_tensors(&mut self.best, &ckpt.tensors).map_err(bad)?;
        if !resume {
            self.policy = self.best.clone();
            if let Ok(st) = ckpt.algo_state::<DescentState>() {
                self.summary = st.summary;
            }
            return Ok(());
        }
        P::load_tensors(&mut self.policy, &ckpt.file(CURRENT_FILE)?).map_err(bad)?;
        let st: DescentState = ckpt.algo_state()?;
        if st.perm.len() != self.config.train_paths {
            return Err(bad(AlgoError::Checkpoint {
                path: "state".into(),
                reason: format!(
                    "{} training paths for a config of {}",
                    st.perm.len(),
                    self.config.train_paths
                ),
            }));
        }
        self.opt = match st.optimizer {
            Some(s) => {
                if s.m.len() != P::num_params(&self.policy) {
                    return Err(bad(AlgoError::Checkpoint {
                        path: "state".into(),
                        reason: "the optimiser state does not fit the policy".into(),
                    }));
                }
                Some(
                    Adam::from_state(
                        AdamConfig {
                            lr: self.config.learning_rate as f32,
                            ..AdamConfig::default()
                        },
                        s,
                    )
                    .map_err(AlgoError::from)?,
                )
            }
            None => None,
        };
        self.shuffle_rng = st.shuffle_rng;
        self.perm = st.perm;
        self.step = st.step;
        self.top = st.best;
        self.summary = st.summary;
        Ok(())
    }
    /// The best-by-dev policy on long paths of the env (5000 periods), orders rounded where
    /// demand is integral; adds `mean_cost` (the mean over episodes of the cost per period
    /// after the warm-up) and its standard error `se_cost`.
    fn evaluate(
        &self,
        opts: &EvalOptions,
        on_step: &mut dyn FnMut(usize, EnvView<'_>),
    ) -> taper_train::Result<Evaluation> {
        let mut env = crate::eval_env(&self.run.env_id, &self.run.env_kwargs)?;
        let round = self.problem.rounds();
        let (problem, best) = (&self.problem, &self.best);
        let opts = crate::with_env_warmup(&self.run.env_id, opts);
        let (eps, tails) = taper_train::eval::run_episodes_after_warmup(
            env.as_mut(),
            &opts,
            &mut |obs, q| {
                problem
                    .orders(best, obs, round, q)
                    .map_err(taper_train::TrainError::learner)
            },
            on_step,
        )?;
        let mut ev = crate::single_agent_evaluation(&self.run.env_id, eps, &tails, opts.warmup.unwrap_or(0));
        ev.extra.push(("rounded_orders".into(), round.into()));
        Ok(ev)
    }
    fn predict(&mut self, obs: &[f32], _deterministic: bool) -> taper_train::Result<Vec<f32>> {
        let mut q = vec![0f32; self.problem.order_dim()];
        self.problem.orders(&self.best, obs, self.problem.rounds(), &mut q)?;
        Ok(q)
    }
    fn guarded_columns(&self) -> &'static [&'static str] {
        &["train_cost", "dev_cost"]
    }
    fn headline(&self) -> &'static [&'static str] {
        &["train_cost", "dev_cost", "best_dev_cost"]
    }
    fn step_unit(&self) -> &'static str {
        "gradient steps"
    }
    fn summary(&self) -> String {
        let s = &self.summary;
        format!(
            "best dev cost {:.4} at step {}; test cost {:.4} ± {:.4} (s.e.) {} (best-dev policy, {} paths x {} periods, first {} left out)",
            s.best_dev_cost,
            s.best_step,
            s.test_cost,
            s.test_cost_se.unwrap_or(f64::NAN),
            self.problem.unit(),
            self.config.test_paths,
            self.config.test_periods,
            self.config.test_ignore
        )
    }
}

/// The file of an HDPO checkpoint that holds the current (not the best) policy, read only to
/// resume.
pub const CURRENT_FILE: &str = "current.safetensors";
