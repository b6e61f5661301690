//! One gradient step of PPO and of MAPPO on B samples (one epoch, one minibatch: the
//! distribution, the clipped surrogate, the value loss, the backward passes, gradient clipping
//! and Adam), for B from 64 to 65 536, on every backend this build has: the fast path, the
//! candle graph on the CPU, and with `--features cuda` the candle graph on `cuda:0`.
//!
//! - PPO: CartPole's shapes, actor and critic 4 → 64 → 64 (tanh), 2 actions.
//! - MAPPO: Simple Spread N=3's shapes, actor 18 → 128 → 128 → 5 (tanh), centralized critic
//!   54 → 128 → 128 → 1, value normalisation; B counts agent rows.
//!
//! Run: `cargo bench --bench backends` (`scripts/gpu-check.sh` adds CUDA and prints a table).

use criterion::{black_box, criterion_group, criterion_main, BenchmarkId, Criterion};
use std::time::Duration;
use taper::algos::onpolicy::PpoUpdate;
use taper::algos::policy::ActorCritic;
use taper::algos::ppo::PpoConfig;
use taper::algos::rollout::RolloutBuffer;
use taper::envs::Space;
use taper::tensor::device::{Backend, DeviceSpec, Placement};
use taper::tensor::normalize::ValueNorm;
use taper::tensor::rng::{stream, Purpose};

const SIZES: [usize; 6] = [64, 256, 1024, 4096, 16384, 65536];

/// Every placement this build can run: `fast`, `candle:cpu`, and `candle:cuda:0` where CUDA
/// is compiled in and present.
fn placements() -> Vec<Placement> {
    let mut v = vec![
        Placement::Fast,
        Placement::new(DeviceSpec::Cpu, Some(Backend::Candle)).expect("the CPU"),
    ];
    if let Ok(p) = Placement::new(DeviceSpec::Cuda(0), Some(Backend::Candle)) {
        v.push(p);
    }
    v
}

/// A well-formed synthetic rollout of `b` rows: observations in a unit range, actions and
/// log-probabilities at the initial policy's scale, advantages spread over [−1, 1].
fn rollout(b: usize, od: usize, n_actions: usize, critic_dim: Option<usize>) -> RolloutBuffer {
    let mut rng = stream(0, Purpose::Other(9), 0);
    let mut r = RolloutBuffer::new(b, 1, od, 1, critic_dim);
    r.obs = taper::tensor::init::uniform(&mut rng, b * od, -1.0, 1.0);
    if let Some(cd) = critic_dim {
        r.critic_obs = taper::tensor::init::uniform(&mut rng, b * cd, -1.0, 1.0);
    }
    for i in 0..b {
        r.actions[i] = (i % n_actions) as f32;
        r.logp[i] = -(n_actions as f32).ln();
        r.values[i] = 0.0;
        r.adv[i] = ((i * 37 % 101) as f32 / 50.0) - 1.0;
        r.ret[i] = r.adv[i];
    }
    r.selected = (0..b).collect();
    r
}

struct Case {
    name: &'static str,
    od: usize,
    n_actions: usize,
    hidden: usize,
    critic_dim: Option<usize>,
}

fn bench_backends(c: &mut Criterion) {
    let cases = [
        Case {
            name: "ppo_update",
            od: 4,
            n_actions: 2,
            hidden: 64,
            critic_dim: None,
        },
        Case {
            name: "mappo_update",
            od: 18,
            n_actions: 5,
            hidden: 128,
            critic_dim: Some(54),
        },
    ];
    for case in &cases {
        let mut g = c.benchmark_group(case.name);
        g.sample_size(10).warm_up_time(Duration::from_millis(300));
        g.measurement_time(Duration::from_secs(2));
        for &b in &SIZES {
            let config = PpoConfig {
                num_envs: 1,
                num_steps: b,
                num_minibatches: 1,
                update_epochs: 1,
                ..PpoConfig::default()
            };
            let buf = rollout(b, case.od, case.n_actions, case.critic_dim);
            for placement in placements() {
                let (mut ra, mut rc) = (stream(1, Purpose::Init, 0), stream(1, Purpose::Init, 1));
                let obs = Space::Box {
                    low: vec![-1.0; case.od],
                    high: vec![1.0; case.od],
                };
                let act = Space::Discrete { n: case.n_actions };
                let h = [case.hidden, case.hidden];
                let mut model = match case.critic_dim {
                    None => ActorCritic::new(&obs, &act, &h, 0.0, &mut ra, &mut rc),
                    Some(cd) => ActorCritic::centralized(&obs, &act, &h, cd, &h, 0.0, &mut ra, &mut rc),
                }
                .expect("model");
                model.set_placement(&placement);
                let mut up = PpoUpdate::new(&config, &model, 1);
                let mut vn = case.critic_dim.map(|_| ValueNorm::new(0.99999));
                g.bench_with_input(BenchmarkId::new(placement.label(), b), &b, |bench, _| {
                    bench.iter(|| black_box(up.update(&config, &mut model, vn.as_mut(), &buf, 1).expect("update")))
                });
            }
        }
        g.finish();
    }
}

criterion_group!(benches, bench_backends);
criterion_main!(benches);
