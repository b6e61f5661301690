//! The library API across algorithms: every learner trains through the trainer, saves a run
//! folder, loads back (generically or by type) with the same policy, predicts, evaluates with a
//! step cap, and resumes exactly; a multi-agent env written here trains MAPPO and MADDPG.

use std::path::Path;
use taper_algos::prelude::*;
use taper_algos::{AlgoConfig, AlgoKind};
use taper_envs::parallel::{MultiAction, StepBuffers};
use taper_envs::registry::EnvSpec;
use taper_envs::{ParallelEnv, Space};
use taper_train::Learner;

fn quiet() -> TrainOptions {
    TrainOptions {
        quiet: true,
        ..TrainOptions::default()
    }
}

fn small(kind: AlgoKind, env: &str) -> AlgoConfig {
    let base = kind.default_config(env, &Kwargs::new()).unwrap();
    let keys = match kind {
        AlgoKind::Ppo => serde_json::json!({}),
        AlgoKind::Mappo | AlgoKind::Ippo => serde_json::json!({ "num_envs": 4, "num_steps": 32 }),
        AlgoKind::Maddpg => {
            serde_json::json!({ "batch_size": 32, "learning_starts": 64, "train_every": 20, "buffer_size": 4096 })
        }
        AlgoKind::Grpo => serde_json::json!({
            "sft_steps": 20, "eval_every": 2, "eval_prompts": 16, "prompts_per_step": 4,
            "num_generations": 4, "d_model": 16, "d_ff": 32, "n_layers": 1, "n_heads": 2
        }),
        AlgoKind::Hdpo => serde_json::json!({
            "batch_size": 64, "train_paths": 128, "dev_paths": 32, "test_paths": 4,
            "test_periods": 200, "test_ignore": 50, "eval_every": 2
        }),
        AlgoKind::Sac | AlgoKind::DsacT | AlgoKind::Stac => serde_json::json!({
            "batch_size": 32, "learning_starts": 100, "buffer_size": 4096, "hidden": [32, 32],
            "log_every": 200
        }),
    };
    kind.config_over(&base, &keys).unwrap()
}

fn rows(dir: &Path) -> Vec<String> {
    std::fs::read_to_string(dir.join("metrics.jsonl"))
        .unwrap()
        .lines()
        .map(|l| {
            let mut v: serde_json::Map<String, serde_json::Value> = serde_json::from_str(l).unwrap();
            v.remove("sps");
            v.remove("time_elapsed");
            serde_json::to_string(&v).unwrap()
        })
        .collect()
}

/// Every algorithm: a run folder written by the trainer loads back (with `taper_algos::load`)
/// into a policy that evaluates exactly as the trained learner does, predicts an action of the
/// env's shape, and a run stopped half-way and resumed equals the straight run.
#[test]
fn every_algorithm_saves_loads_evaluates_and_resumes() {
    let d = tempfile::tempdir().unwrap();
    for (kind, env, total, obs) in [
        (AlgoKind::Ppo, "CartPole-v1", 2048, vec![0.0f32; 4]),
        (AlgoKind::Mappo, "SimpleSpread-v3", 512, vec![0.1f32; 3 * 18]),
        (AlgoKind::Ippo, "SimpleSpread-v3", 512, vec![0.1f32; 3 * 18]),
        // MADDPG writes a row (where a session can stop) every 100 episodes: 2500 env steps.
        (AlgoKind::Maddpg, "SimpleSpread-v3", 5100, vec![0.1f32; 3 * 18]),
        (AlgoKind::Hdpo, "InventoryLostSales-v0", 6, vec![5.0f32; 4]),
        // A SeqAddition-v0 prompt, `^7+8=` (token ids of taper_envs::seq::vocab).
        (AlgoKind::Grpo, "SeqAddition-v0", 64, vec![1.0f32, 12.0, 4.0, 13.0, 3.0]),
        // The SAC family: a replay buffer, target networks (DSAC-T: a target policy too) and α.
        (AlgoKind::Sac, "Pendulum-v1", 800, vec![0.5f32; 3]),
        (AlgoKind::DsacT, "Pendulum-v1", 800, vec![0.5f32; 3]),
        (AlgoKind::Stac, "Pendulum-v1", 800, vec![0.5f32; 3]),
    ] {
        let cfg = small(kind, env);
        let name = kind.name();
        let (a, b) = (d.path().join(format!("{name}-a")), d.path().join(format!("{name}-b")));
        let mut l = kind.learner(&cfg, env, &Kwargs::new(), 7).unwrap();
        Trainer::new(&a).options(quiet()).fit(l.as_mut(), total).unwrap();
        let opts = EvalOptions {
            episodes: 2,
            seed: 3,
            deterministic: true,
            max_steps: 500,
            warmup: None,
        };
        let want = l.evaluate(&opts, &mut |_, _| {}).unwrap();
        let mut loaded = taper_algos::load(&a).unwrap();
        let got = loaded.evaluate(&opts, &mut |_, _| {}).unwrap();
        assert_eq!(want.episodes, got.episodes, "{name}");
        assert!(want.episodes.iter().all(|e| e.len <= 500), "{name}: the step cap holds");
        let action = loaded.predict(&obs, true).unwrap();
        let want_len = match kind {
            AlgoKind::Ppo | AlgoKind::Hdpo | AlgoKind::Sac | AlgoKind::DsacT | AlgoKind::Stac => 1,
            // A completion: between one token and the task's budget.
            AlgoKind::Grpo => action.len().clamp(1, 5),
            _ => 3,
        };
        assert_eq!(action.len(), want_len, "{name}");
        assert!(
            loaded.predict(&obs[..obs.len() - 1], true).is_err(),
            "{name}: a wrong observation is an error"
        );
        // Stopped half-way, resumed from the folder: the straight run.
        let mut l = kind.learner(&cfg, env, &Kwargs::new(), 7).unwrap();
        let half = TrainOptions {
            stop_after: Some(total / 2),
            ..quiet()
        };
        let s = Trainer::new(&b).options(half).fit(l.as_mut(), total).unwrap();
        assert!(s.stopped_early, "{name}");
        let mut l = kind.learner(&cfg, env, &Kwargs::new(), 7).unwrap();
        Trainer::new(&b).options(quiet()).resume(l.as_mut(), total).unwrap();
        assert_eq!(rows(&a), rows(&b), "{name}");
        assert_eq!(
            std::fs::read(a.join("checkpoint/model.safetensors")).unwrap(),
            std::fs::read(b.join("checkpoint/model.safetensors")).unwrap(),
            "{name}"
        );
    }
}

/// A second thread kept awake (`TrainOptions::keep_awake`) changes the time only: on a pool of
/// two threads, where each PPO minibatch's policy and value passes run side by side, the run
/// writes the same rows and weights with it and without it, fresh and resumed. (That the
/// poller takes the work is `taper_train::keep_awake`'s own test.)
#[test]
fn a_kept_awake_thread_changes_no_number() {
    let d = tempfile::tempdir().unwrap();
    let pool = rayon::ThreadPoolBuilder::new().num_threads(2).build().unwrap();
    let cfg = small(AlgoKind::Ppo, "CartPole-v1");
    let total = 4096;
    let run = |name: &str, keep_awake: bool| {
        let dir = d.path().join(name);
        let half = TrainOptions {
            keep_awake,
            stop_after: Some(total / 2),
            ..quiet()
        };
        pool.install(|| {
            let mut l = AlgoKind::Ppo.learner(&cfg, "CartPole-v1", &Kwargs::new(), 3).unwrap();
            Trainer::new(&dir).options(half.clone()).fit(l.as_mut(), total).unwrap();
            let mut l = AlgoKind::Ppo.learner(&cfg, "CartPole-v1", &Kwargs::new(), 3).unwrap();
            let rest = TrainOptions {
                stop_after: None,
                ..half
            };
            Trainer::new(&dir).options(rest).resume(l.as_mut(), total).unwrap();
        });
        (
            rows(&dir),
            std::fs::read(dir.join("checkpoint/model.safetensors")).unwrap(),
        )
    };
    let (asleep, awake) = (run("asleep", false), run("awake", true));
    assert_eq!(asleep.0.len(), total as usize / 512);
    assert_eq!(asleep, awake);
}

/// By type: `save`, `load` and `resume` of a PPO learner, and `learn` continuing after a
/// resume.
#[test]
fn typed_save_load_resume() {
    let d = tempfile::tempdir().unwrap();
    let mut p = Ppo::new(PpoConfig::default(), "CartPole-v1", &Kwargs::new(), 1).unwrap();
    p.learn(1024).unwrap();
    p.save(d.path()).unwrap();
    let back = Ppo::load(d.path()).unwrap();
    assert_eq!(back.model(), p.model());
    let mut r = Ppo::resume(d.path()).unwrap();
    assert_eq!(r.progress(), p.progress());
    p.learn(1024).unwrap();
    r.learn(1024).unwrap();
    assert_eq!(r.model(), p.model(), "a resumed learner continues exactly");
    assert!(Ppo::load(&d.path().join("nothing")).is_err());
}

/// Two agents see a target (one-hot of 0 or 1, redrawn every step) and are rewarded 1 each
/// step their action matches it; episodes last 10 steps. A random policy earns 5 per agent
/// and episode, the optimal policy 10.
struct Match {
    agents: Vec<String>,
    obs: Space,
    act: Space,
    target: usize,
    t: usize,
    state: u64,
}

impl Match {
    fn new() -> Self {
        Match {
            agents: vec!["a".into(), "b".into()],
            obs: Space::uniform_box(2, 0.0, 1.0),
            act: Space::Discrete { n: 2 },
            target: 0,
            t: 0,
            state: 0,
        }
    }
    fn draw(&mut self, obs: &mut [f32]) {
        self.state = self
            .state
            .wrapping_mul(6364136223846793005)
            .wrapping_add(1442695040888963407);
        self.target = (self.state >> 40) as usize & 1;
        for a in 0..2 {
            obs[2 * a] = (self.target == 0) as u8 as f32;
            obs[2 * a + 1] = (self.target == 1) as u8 as f32;
        }
    }
}

impl ParallelEnv for Match {
    fn agents(&self) -> &[String] {
        &self.agents
    }
    fn observation_space(&self, _: usize) -> &Space {
        &self.obs
    }
    fn action_space(&self, _: usize) -> &Space {
        &self.act
    }
    fn reset_into(&mut self, seed: Option<u64>, obs: &mut [f32]) -> taper_envs::Result<()> {
        if let Some(s) = seed {
            self.state = s;
        }
        self.t = 0;
        self.draw(obs);
        Ok(())
    }
    fn step_into(
        &mut self,
        actions: MultiAction<'_>,
        obs: &mut [f32],
        out: &mut StepBuffers,
    ) -> taper_envs::Result<()> {
        let MultiAction::Discrete(a) = actions else {
            return Err(taper_envs::EnvError::custom("Match-v0", "discrete actions only"));
        };
        for (r, &ai) in out.rewards.iter_mut().zip(a) {
            *r = (ai as usize == self.target) as u8 as f32;
        }
        self.t += 1;
        out.truncated.fill(self.t >= 10);
        out.terminated.fill(false);
        self.draw(obs);
        Ok(())
    }
    fn snapshot(&self) -> Option<serde_json::Value> {
        Some(serde_json::json!([self.target, self.t, self.state]))
    }
    fn restore(&mut self, v: &serde_json::Value) -> taper_envs::Result<()> {
        let s: (usize, usize, u64) =
            serde_json::from_value(v.clone()).map_err(|e| taper_envs::EnvError::custom("Match-v0", e.to_string()))?;
        (self.target, self.t, self.state) = s;
        Ok(())
    }
}

/// MAPPO and MADDPG learn a multi-agent env written here, registered by id: the mean
/// per-agent return of their last 100 training episodes is at least 9 of the optimal 10
/// (random: 5).
#[test]
fn a_users_parallel_env_trains_mappo_and_maddpg() {
    let spec = EnvSpec {
        id: "Match-v0",
        description: "two agents match a target",
        max_episode_steps: Some(10),
        reward_threshold: None,
        kwargs: "",
    };
    taper_envs::register_parallel(spec, |_| Ok(Box::new(Match::new()))).unwrap();
    let mappo = MappoConfig {
        num_envs: 8,
        num_steps: 32,
        ..MappoConfig::mappo()
    };
    let mut l = MaPpo::new(mappo, "Match-v0", &Kwargs::new(), 0).unwrap();
    l.learn(40_000).unwrap();
    let r = l.recent_return();
    eprintln!("MAPPO on Match-v0: recent per-agent return {r:.2}");
    assert!(r >= 9.0, "MAPPO: {r}");
    let maddpg = MaddpgConfig {
        batch_size: 64,
        learning_starts: 500,
        ..MaddpgConfig::tuned()
    };
    let mut l = Maddpg::new(maddpg, "Match-v0", &Kwargs::new(), 0).unwrap();
    l.learn(8_000).unwrap();
    let r = l.recent_return();
    eprintln!("MADDPG on Match-v0: recent per-agent return {r:.2}");
    assert!(r >= 9.0, "MADDPG: {r}");
}

/// CartPole without `snapshot`: an env of your own that cannot save its state.
struct Forgetful(Box<dyn taper_envs::Env>);

impl taper_envs::Env for Forgetful {
    fn observation_space(&self) -> &Space {
        self.0.observation_space()
    }
    fn action_space(&self) -> &Space {
        self.0.action_space()
    }
    fn reset_into(&mut self, seed: Option<u64>, obs: &mut [f32]) -> taper_envs::Result<()> {
        self.0.reset_into(seed, obs)
    }
    fn step_into(&mut self, a: taper_envs::Action<'_>, obs: &mut [f32]) -> taper_envs::Result<taper_envs::StepOutcome> {
        self.0.step_into(a, obs)
    }
}

/// An env that cannot save its state still checkpoints its learner: the run writes periodic
/// checkpoints without an env state, and a resume restores the learner (its envs start anew
/// from the seed, so it is exact for the learner only).
#[test]
fn an_env_without_snapshots_still_checkpoints_its_learner() {
    let spec = EnvSpec {
        id: "ForgetfulCartPole-v0",
        description: "CartPole that cannot save its state",
        max_episode_steps: Some(500),
        reward_threshold: None,
        kwargs: "",
    };
    taper_envs::register(spec, |_| Ok(Box::new(Forgetful(taper_envs::make("CartPole-v1")?)))).unwrap();
    let d = tempfile::tempdir().unwrap();
    let opts = TrainOptions {
        checkpoint_every: 1024,
        stop_after: Some(2048),
        ..quiet()
    };
    let mut p = Ppo::new(PpoConfig::default(), "ForgetfulCartPole-v0", &Kwargs::new(), 1).unwrap();
    Trainer::new(d.path()).options(opts).fit(&mut p, 4096).unwrap();
    let ck = taper_train::Checkpoint::load(d.path()).unwrap();
    assert!(ck.state.env_state.is_none() && ck.state.algo_state.is_some());
    let mut r = Ppo::resume(d.path()).unwrap();
    assert_eq!(r.progress(), p.progress());
    assert_eq!(r.model(), p.model());
    Trainer::new(d.path()).options(quiet()).resume(&mut r, 4096).unwrap();
    assert_eq!(r.progress().global_step, 4096);
}

/// A run configured from a TOML file, several seeds in parallel, from a program: what
/// `taper train --config FILE --seeds 0..3` does.
#[test]
fn toml_configs_and_seeds_from_a_program() {
    use taper_algos::run_config::{Overrides, RunConfig};
    let d = tempfile::tempdir().unwrap();
    let f = d.path().join("c.toml");
    std::fs::write(
        &f,
        "env = \"CartPole-v1\"\ntotal_steps = 1024\n[ppo]\nlearning_rate = 1e-3\n",
    )
    .unwrap();
    let cfg = RunConfig::resolve(Some(&f), &Overrides::default()).unwrap();
    assert_eq!(cfg.total_steps, 1024);
    taper_train::seeds::run_seeds(&[0, 1, 2], 2, |seed| {
        let c = RunConfig { seed, ..cfg.clone() };
        let mut l = c.learner()?;
        Trainer::new(d.path().join(format!("s{seed}")))
            .options(quiet())
            .fit(l.as_mut(), c.total_steps)?;
        Ok(())
    })
    .unwrap();
    for seed in 0..3 {
        let l = taper_algos::load(&d.path().join(format!("s{seed}"))).unwrap();
        assert_eq!(l.info().seed, seed);
        assert_eq!(l.config_json()["learning_rate"], 1e-3);
    }
}
