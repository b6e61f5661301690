//! One PPO update on a CartPole rollout: batch 512 (4 envs × 128 steps), 4 epochs,
//! 4 minibatches, CleanRL's defaults; and a whole iteration (rollout + GAE + update).
//!
//! Run: `cargo bench --bench ppo`.

use criterion::{black_box, criterion_group, criterion_main, Criterion};
use taper::algos::ppo::{Ppo, PpoConfig};
use taper::algos::rollout::RolloutBuffer;
use taper::algos::Algorithm;
use taper::tensor::rng::{stream, Purpose};

fn bench_update(c: &mut Criterion) {
    let config = PpoConfig::default();
    let mut ppo = Ppo::new(config.clone(), "CartPole-v1", &Default::default(), 1).unwrap();
    // A synthetic but well-formed rollout: observations in CartPole's range, actions and
    // log-probabilities from the initial policy's scale.
    let bs = config.batch_size();
    let mut rng = stream(0, Purpose::Other(4), 0);
    let mut b = RolloutBuffer::new(config.num_steps, config.num_envs, 4, 1, None);
    for (i, o) in b.obs.iter_mut().enumerate() {
        *o = taper::tensor::init::uniform(&mut rng, 1, -0.2, 0.2)[0] * if i % 4 == 1 { 5.0 } else { 1.0 };
    }
    for i in 0..bs {
        b.actions[i] = (i % 2) as f32;
        b.logp[i] = -std::f32::consts::LN_2;
        b.values[i] = 0.0;
        b.adv[i] = ((i * 37 % 101) as f32 / 50.0) - 1.0;
        b.ret[i] = b.adv[i];
    }
    let mut g = c.benchmark_group("ppo");
    g.bench_function("update_b512_4epochs_4mb", |bench| {
        bench.iter(|| black_box(ppo.update(&b).unwrap()))
    });
    let mut ppo2 = Ppo::new(config, "CartPole-v1", &Default::default(), 1).unwrap();
    g.bench_function("iteration_rollout512_gae_update", |bench| {
        bench.iter(|| black_box(ppo2.learn(512).unwrap().progress.global_step))
    });
    g.finish();
}

criterion_group!(benches, bench_update);
criterion_main!(benches);
