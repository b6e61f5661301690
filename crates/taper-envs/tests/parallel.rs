//! A multi-agent env written outside the crate: it implements `ParallelEnv`, is vectorised by
//! `VecParallel` (heterogeneous agents, global state, episode statistics, snapshots), and is
//! built by id once registered.

use taper_envs::parallel::{EpisodeStat, MultiAction, ParallelEnv, Reduce, StepBuffers, VecParallel};
use taper_envs::registry::{self, EnvSpec};
use taper_envs::{EnvError, Result, Space};

/// Two agents guess a hidden coin: agent 0 sees a 2-value observation, agent 1 a 3-value one;
/// each is rewarded for guessing the coin. Episodes last `len` steps; the global state is the
/// coin and the step count.
#[derive(Clone)]
struct Coins {
    agents: Vec<String>,
    spaces: Vec<Space>,
    act: Space,
    coin: u64,
    t: usize,
    len: usize,
    seed_state: u64,
    fail_at: Option<usize>,
}

impl Coins {
    fn new(len: usize) -> Self {
        Coins {
            agents: vec!["left".into(), "right".into()],
            spaces: vec![Space::uniform_box(2, 0.0, 1.0), Space::uniform_box(3, 0.0, 1.0)],
            act: Space::Discrete { n: 2 },
            coin: 0,
            t: 0,
            len,
            seed_state: 0,
            fail_at: None,
        }
    }
    fn draw(&mut self) {
        self.seed_state = self
            .seed_state
            .wrapping_mul(6364136223846793005)
            .wrapping_add(1442695040888963407);
        self.coin = (self.seed_state >> 63) & 1;
    }
    fn write(&self, obs: &mut [f32]) {
        obs.copy_from_slice(&[self.t as f32, 1.0, 0.5, self.t as f32, 0.0]);
    }
}

impl ParallelEnv for Coins {
    fn agents(&self) -> &[String] {
        &self.agents
    }
    fn observation_space(&self, agent: usize) -> &Space {
        &self.spaces[agent]
    }
    fn action_space(&self, _agent: usize) -> &Space {
        &self.act
    }
    fn state_dim(&self) -> usize {
        2
    }
    fn write_state(&self, _obs: &[f32], state: &mut [f32]) {
        state.copy_from_slice(&[self.coin as f32, self.t as f32]);
    }
    fn reset_into(&mut self, seed: Option<u64>, obs: &mut [f32]) -> Result<()> {
        if let Some(s) = seed {
            self.seed_state = s;
        }
        self.t = 0;
        self.draw();
        self.write(obs);
        Ok(())
    }
    fn step_into(&mut self, actions: MultiAction<'_>, obs: &mut [f32], out: &mut StepBuffers) -> Result<()> {
        let MultiAction::Discrete(a) = actions else {
            return Err(EnvError::custom("Coins", "discrete actions only"));
        };
        for (r, &ai) in out.rewards.iter_mut().zip(a) {
            *r = if ai as u64 == self.coin { 1.0 } else { 0.0 };
        }
        self.t += 1;
        self.draw();
        let end = self.t >= self.len;
        out.truncated.fill(end);
        out.terminated.fill(false);
        if self.fail_at == Some(self.t) {
            out.truncated[1] = !end;
        }
        self.write(obs);
        Ok(())
    }
    fn episode_stats(&self) -> &'static [EpisodeStat] {
        &[
            EpisodeStat {
                name: "heads",
                reduce: Reduce::Sum,
            },
            EpisodeStat {
                name: "heads_rate",
                reduce: Reduce::MeanPerStep,
            },
        ]
    }
    fn step_stats(&self, out: &mut [f64]) {
        out[0] = self.coin as f64;
        out[1] = self.coin as f64;
    }
    fn snapshot(&self) -> Option<serde_json::Value> {
        Some(serde_json::json!([self.coin, self.t, self.seed_state]))
    }
    fn restore(&mut self, v: &serde_json::Value) -> Result<()> {
        let a: (u64, usize, u64) =
            serde_json::from_value(v.clone()).map_err(|e| EnvError::custom("Coins", e.to_string()))?;
        (self.coin, self.t, self.seed_state) = a;
        Ok(())
    }
}

#[test]
fn a_users_parallel_env_vectorises() {
    let mut v = VecParallel::new(vec![Coins::new(4), Coins::new(4), Coins::new(4)]).unwrap();
    assert_eq!(
        (v.num_envs(), v.num_agents(), v.obs_width(), v.state_dim()),
        (3, 2, 5, 2)
    );
    v.set_track_states(true);
    v.reset(1).unwrap();
    let mut heads = [0f64; 3];
    let mut ended = 0;
    for t in 0..8 {
        let coins: Vec<f32> = (0..3).map(|m| v.states()[m * 2]).collect();
        for (h, c) in heads.iter_mut().zip(&coins) {
            *h += *c as f64;
        }
        // Agent 0 guesses the coin (read from the state), agent 1 always 0.
        let acts: Vec<i64> = coins.iter().flat_map(|&c| [c as i64, 0]).collect();
        v.step(MultiAction::Discrete(&acts)).unwrap();
        for m in 0..3 {
            assert_eq!(v.rewards()[m * 2], 1.0, "t {t}: agent 0 always guesses right");
        }
        if t % 4 == 3 {
            assert_eq!(v.finished().len(), 3);
            assert!(v.ended().iter().all(|&e| e));
            for &(m, ep) in v.finished() {
                assert_eq!(ep.len, 4);
                // Step stats are the coin after each step; the sum counts the heads drawn.
                assert!(ep.stats[0] >= 0.0 && ep.stats[0] <= 4.0);
                assert_eq!(ep.stats[1], ep.stats[0] / 4.0);
                assert_eq!(
                    v.final_states()[m * 2 + 1],
                    4.0,
                    "the final state is the episode's last"
                );
                assert!(ep.mean_agent_return >= 2.0);
            }
            ended += 3;
        } else {
            assert!(v.finished().is_empty());
        }
    }
    assert_eq!(ended, 6);
    // Snapshots restore exactly.
    let snap = v.snapshot().unwrap();
    let mut w = VecParallel::new(vec![Coins::new(4), Coins::new(4), Coins::new(4)]).unwrap();
    w.restore(&snap).unwrap();
    let acts = [1i64; 6];
    v.step(MultiAction::Discrete(&acts)).unwrap();
    w.step(MultiAction::Discrete(&acts)).unwrap();
    assert_eq!((v.obs(), v.rewards()), (w.obs(), w.rewards()));
    // Bad input: wrong action count, wrong action kind, agents ending apart.
    assert!(matches!(
        v.step(MultiAction::Discrete(&[0; 5])),
        Err(EnvError::Shape { .. })
    ));
    assert!(matches!(
        v.step(MultiAction::Continuous(&[0.0; 6])),
        Err(EnvError::ActionOutOfSpace { .. })
    ));
    let mut bad = Coins::new(4);
    bad.fail_at = Some(2);
    let mut b = VecParallel::new(vec![bad]).unwrap();
    b.reset(0).unwrap();
    b.step(MultiAction::Discrete(&[0, 0])).unwrap();
    let e = b.step(MultiAction::Discrete(&[0, 0])).unwrap_err();
    assert!(e.to_string().contains("end in the same step"), "{e}");
}

#[test]
fn registered_parallel_envs_build_by_id() {
    let spec = EnvSpec {
        id: "Coins-v0",
        description: "two agents guess a coin",
        max_episode_steps: Some(4),
        reward_threshold: None,
        kwargs: "len",
    };
    registry::register_parallel(spec, |kw| {
        let len = kw.get("len").map(|v| v.parse().unwrap_or(4)).unwrap_or(4);
        Ok(Box::new(Coins::new(len)))
    })
    .unwrap();
    assert!(registry::is_multi_agent("Coins-v0"));
    assert!(registry::register_parallel(spec, |_| Ok(Box::new(Coins::new(1)))).is_err());
    let mut kw = taper_envs::Kwargs::new();
    kw.insert("len".into(), "2".into());
    let mut env = taper_envs::make_parallel("Coins-v0", &kw).unwrap();
    let mut obs = vec![0f32; env.obs_width()];
    env.reset_into(Some(3), &mut obs).unwrap();
    let mut out = StepBuffers::new(2);
    env.step_into(MultiAction::Discrete(&[0, 1]), &mut obs, &mut out)
        .unwrap();
    env.step_into(MultiAction::Discrete(&[0, 1]), &mut obs, &mut out)
        .unwrap();
    assert!(out.truncated.iter().all(|&t| t), "len=2 from the kwargs");
    assert!(
        taper_envs::make("Coins-v0").is_err(),
        "a multi-agent id is not a single-agent env"
    );
    assert!(taper_envs::make_parallel("NoSuch-v0", &kw).is_err());
}
