//! Bring your own algorithm: REINFORCE (Williams 1992, with the batch mean return as its
//! baseline) written against the `Learner` trait alone. The trainer gives it a run folder,
//! metrics logs, TensorBoard events, checkpoints, exact resume and evaluation; `taper plot`
//! draws its runs. The learner below holds no training infrastructure of its own.
//!
//! ```text
//! cargo run --release --example reinforce -- runs/reinforce
//! taper plot runs/reinforce --out reinforce.png
//! ```

use serde::{Deserialize, Serialize};
use std::collections::VecDeque;
use taper::prelude::*;
use taper::tensor::distributions::Categorical;
use taper::tensor::mlp::{Activation, Mlp, MlpCache, MlpInit};
use taper::tensor::optim::{Adam, AdamConfig, AdamState};
use taper::train::eval::{run_episodes, EnvView};

/// REINFORCE's settings.
#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct Config {
    pub learning_rate: f64,
    pub gamma: f64,
    pub episodes_per_update: usize,
    pub hidden: usize,
}

/// What a checkpoint keeps besides the weights.
#[derive(Serialize, Deserialize)]
struct State {
    rng: ChaCha8Rng,
    opt: AdamState,
    progress: Progress,
    recent: VecDeque<f64>,
    env: serde_json::Value,
    started: bool,
}

/// REINFORCE on a registered single-agent env with discrete actions.
pub struct Reinforce {
    cfg: Config,
    env_id: String,
    seed: u64,
    env: Box<dyn Env>,
    net: Mlp,
    opt: Adam,
    rng: ChaCha8Rng,
    progress: Progress,
    recent: VecDeque<f64>,
    started: bool,
    total: u64,
}

impl Reinforce {
    pub fn new(cfg: Config, env_id: &str, seed: u64) -> Result<Self, Box<dyn std::error::Error>> {
        let env = make(env_id)?;
        let (od, Space::Discrete { n }) = (env.observation_space().flat_dim(), env.action_space().clone()) else {
            return Err("REINFORCE here needs discrete actions".into());
        };
        let mut init = stream(seed, Purpose::Init, 0);
        let net = Mlp::new(
            &[od, cfg.hidden, n],
            Activation::Tanh,
            MlpInit::orthogonal(1.0, 0.01),
            &mut init,
        )?;
        let opt = Adam::new(
            AdamConfig {
                lr: cfg.learning_rate as f32,
                ..AdamConfig::default()
            },
            net.num_params(),
        );
        let (rng, recent, started, total) = (stream(seed, Purpose::Action, 0), VecDeque::new(), false, 0);
        Ok(Reinforce {
            cfg,
            env_id: env_id.into(),
            seed,
            env,
            net,
            opt,
            rng,
            progress: Progress::default(),
            recent,
            started,
            total,
        })
    }
}

type R<T> = taper::train::Result<T>;
fn err(e: impl std::fmt::Display) -> TrainError {
    TrainError::learner(e.to_string())
}

impl Learner for Reinforce {
    fn info(&self) -> RunInfo {
        RunInfo {
            algo: "reinforce".into(),
            env_id: self.env_id.clone(),
            env_kwargs: Kwargs::new(),
            seed: self.seed,
        }
    }
    fn config_json(&self) -> serde_json::Value {
        serde_json::to_value(&self.cfg).unwrap_or_default()
    }
    fn progress(&self) -> Progress {
        self.progress
    }
    fn plan(&mut self, total_steps: u64) -> R<u64> {
        if total_steps <= self.progress.global_step {
            return Err(err(format!("the run is already at step {}", self.progress.global_step)));
        }
        self.total = total_steps;
        Ok(total_steps)
    }
    /// One update from `episodes_per_update` whole episodes.
    fn step(&mut self) -> R<Metrics> {
        let n = self.net.output_dim();
        let (mut xs, mut acts, mut rets, mut ep_returns) = (Vec::new(), Vec::new(), Vec::new(), Vec::new());
        let (mut cache, mut cat) = (MlpCache::default(), Categorical::new(n));
        for _ in 0..self.cfg.episodes_per_update {
            let seed = (!self.started).then_some(self.seed);
            self.started = true;
            let mut obs = self.env.reset(seed)?;
            let mut rewards = Vec::new();
            loop {
                cat.set_logits(self.net.forward(&obs, 1, &mut cache)?, None);
                let a = cat.sample(&mut self.rng);
                xs.extend_from_slice(&obs);
                acts.push(a);
                let s = self.env.step(Action::Discrete(a as i64))?;
                rewards.push(s.reward as f64);
                obs = s.obs;
                if s.terminated || s.truncated {
                    break;
                }
            }
            let mut g = 0.0;
            let mut ret: Vec<f64> = rewards
                .iter()
                .rev()
                .map(|r| {
                    g = r + self.cfg.gamma * g;
                    g
                })
                .collect();
            ret.reverse();
            rets.extend(ret);
            ep_returns.push(rewards.iter().sum::<f64>());
        }
        // Loss −mean_t (G_t − mean G)/std G · log π(a_t|s_t); its gradient in the logits.
        let t = acts.len();
        let mean = rets.iter().sum::<f64>() / t as f64;
        let sd = (rets.iter().map(|g| (g - mean).powi(2)).sum::<f64>() / t as f64).sqrt() + 1e-8;
        let logits = self.net.forward(&xs, t, &mut cache)?.to_vec();
        let mut dout = vec![0f32; t * n];
        let mut loss = 0.0;
        for k in 0..t {
            cat.set_logits(&logits[k * n..(k + 1) * n], None);
            let adv = ((rets[k] - mean) / sd) as f32;
            loss -= (adv * cat.log_prob(acts[k])) as f64 / t as f64;
            cat.add_log_prob_grad(acts[k], -adv / t as f32, &mut dout[k * n..(k + 1) * n]);
        }
        let mut grads = vec![0f32; self.net.num_params()];
        self.net.backward(&xs, &mut cache, &dout, &mut grads)?;
        self.opt.step(&mut [(self.net.params_mut(), &grads[..])])?;
        self.progress.global_step += t as u64;
        self.progress.updates += 1;
        self.progress.episodes += ep_returns.len() as u64;
        for r in &ep_returns {
            if self.recent.len() == 20 {
                self.recent.pop_front();
            }
            self.recent.push_back(*r);
        }
        let mut m = Metrics::new();
        m.push("global_step", self.progress.global_step as f64);
        m.push("update", self.progress.updates as f64);
        m.push("loss", loss);
        m.push(
            "episodic_return",
            ep_returns.iter().sum::<f64>() / ep_returns.len() as f64,
        );
        m.push(
            "recent_return",
            self.recent.iter().sum::<f64>() / self.recent.len() as f64,
        );
        Ok(m)
    }
    fn is_done(&self) -> bool {
        self.progress.global_step >= self.total
    }
    fn export(&self) -> R<LearnerState> {
        let env = self
            .env
            .snapshot()
            .ok_or_else(|| err("the env cannot save its state"))?;
        let st = State {
            rng: self.rng.clone(),
            opt: self.opt.state().clone(),
            progress: self.progress,
            recent: self.recent.clone(),
            env,
            started: self.started,
        };
        Ok(LearnerState::new(
            serde_json::to_value(st).map_err(err)?,
            self.net.to_tensors("policy")?,
        ))
    }
    fn import(&mut self, ck: &Checkpoint, resume: bool) -> R<()> {
        self.net.load_tensors("policy", &ck.tensors)?;
        if resume {
            let st: State = ck.algo_state()?;
            self.opt = Adam::from_state(*self.opt.config(), st.opt).map_err(err)?;
            self.env.restore(&st.env)?;
            (self.rng, self.progress, self.recent, self.started) = (st.rng, st.progress, st.recent, st.started);
        }
        Ok(())
    }
    fn evaluate(&self, opts: &EvalOptions, on_step: &mut dyn FnMut(usize, EnvView<'_>)) -> R<Evaluation> {
        let (mut env, mut rng) = (make(&self.env_id)?, stream(opts.seed, Purpose::Eval, 0));
        let (mut cache, mut cat) = (MlpCache::default(), Categorical::new(self.net.output_dim()));
        let episodes = run_episodes(
            env.as_mut(),
            opts,
            &mut |obs, a| {
                cat.set_logits(self.net.forward(obs, 1, &mut cache).map_err(err)?, None);
                a[0] = if opts.deterministic {
                    cat.mode()
                } else {
                    cat.sample(&mut rng)
                } as f32;
                Ok(())
            },
            on_step,
        )?;
        Ok(Evaluation {
            episodes,
            extra: Vec::new(),
        })
    }
    fn predict(&mut self, obs: &[f32], deterministic: bool) -> R<Vec<f32>> {
        let mut cat = Categorical::new(self.net.output_dim());
        cat.set_logits(self.net.forward(obs, 1, &mut MlpCache::default())?, None);
        Ok(vec![if deterministic {
            cat.mode()
        } else {
            cat.sample(&mut self.rng)
        } as f32])
    }
}

/// The settings the test and `main` use: a 32-unit policy, Adam 0.01, 8 episodes an update.
pub fn config() -> Config {
    Config {
        learning_rate: 0.01,
        gamma: 0.99,
        episodes_per_update: 8,
        hidden: 32,
    }
}

#[allow(dead_code)]
fn main() -> Result<(), Box<dyn std::error::Error>> {
    let dir = std::env::args().nth(1).unwrap_or_else(|| "runs/reinforce".into());
    let total = 300_000;
    // Stop half-way, then resume from the checkpoint: the run is the one an uninterrupted
    // session would have made.
    let mut learner = Reinforce::new(config(), "CartPole-v1", 1)?;
    let half = TrainOptions {
        stop_after: Some(total / 2),
        ..TrainOptions::default()
    };
    Trainer::new(&dir).options(half).fit(&mut learner, total)?;
    let mut learner = Reinforce::new(config(), "CartPole-v1", 1)?;
    let s = Trainer::new(&dir).resume(&mut learner, total)?;
    let ev = learner.evaluate(
        &EvalOptions {
            deterministic: true,
            ..Default::default()
        },
        &mut |_, _| {},
    )?;
    println!(
        "{} env steps; greedy return {:.1}; plot: taper plot {dir}",
        s.progress.global_step,
        ev.summary().mean_return
    );
    Ok(())
}
