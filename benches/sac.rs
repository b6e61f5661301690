//! Gradient steps of the SAC family on Pendulum-v1's shapes (3 observations, 1 action), batch
//! 256, from a replay buffer of 10 000 random transitions: SAC as CleanRL's
//! `sac_continuous_action.py` (256 × 256 ReLU; on average one actor and one temperature update
//! per step, as its policy_frequency 2 with two actor updates does), and DSAC-T as its code
//! (256 × 3 GELU, twin Gaussian critics, the actor every second step). The PyTorch peer of the
//! SAC step is `benches/peers/bench_sac_torch.py`.
//!
//! Each measured call runs on a thread of rayon's pool, as `taper train` runs a learner, so the
//! networks' fork-joins hand their second halves to the other thread cheaply.
//!
//! `sac_2steps_b256_256x256_in_pool` runs the same steps on one thread of the pool entered
//! once, and `sac_2steps_b256_256x256_kept_awake` likewise with the pool's other thread kept
//! polling between them (`taper_train::keep_awake`), as `taper train` runs a single run.
//!
//! Run: `cargo bench --bench sac`.

use criterion::{criterion_group, criterion_main, Criterion};
use taper::algos::sac::{Sac, SacConfig};
use taper::algos::Algorithm;
use taper::train::keep_awake::keep_awake;

fn filled(mut config: SacConfig) -> Sac {
    config.learning_starts = 10_000;
    config.random_starts = true;
    let mut l = Sac::new(config, "Pendulum-v1", &Default::default(), 1).unwrap();
    l.learn(10_000).unwrap();
    l
}

fn bench_steps(c: &mut Criterion) {
    let mut g = c.benchmark_group("sac");
    // Pairs of steps, so that each figure carries its share of actor updates.
    let mut sac = filled(SacConfig::sac());
    g.bench_function("sac_2steps_b256_256x256", |b| {
        b.iter(|| rayon::scope(|_| sac.gradient_steps(2).unwrap()))
    });
    // The steps on one thread of the pool, entered once: the other thread sleeps between
    // the passes.
    let mut sac = filled(SacConfig::sac());
    g.bench_function("sac_2steps_b256_256x256_in_pool", |b| {
        rayon::scope(|_| b.iter(|| sac.gradient_steps(2).unwrap()))
    });
    // As `taper train` runs it: the same, with the other thread kept polling for the halves.
    let mut sac = filled(SacConfig::sac());
    g.bench_function("sac_2steps_b256_256x256_kept_awake", |b| {
        rayon::scope(|_| keep_awake(|| b.iter(|| sac.gradient_steps(2).unwrap())))
    });
    let mut dsac = filled(SacConfig::dsac_t());
    g.bench_function("dsac_t_2steps_b256_3x256_gelu", |b| {
        b.iter(|| rayon::scope(|_| dsac.gradient_steps(2).unwrap()))
    });
    g.finish();
}

criterion_group!(benches, bench_steps);
criterion_main!(benches);
