//! Patient-0 attribution on Simple Spread (N = 3) with MADDPG's tuned networks: one attacked
//! episode's diagnosis (25 steps of Taylor remainders for every agent and `G`, `D` for every
//! pair, then detection against a band and the traceback), and one reference episode (the
//! calibration's unit: a seed takes 100 of them). The weights are a fresh initialisation: the
//! cost does not depend on them.
//!
//! Run: `cargo bench --bench diagnostics`.

use criterion::{criterion_group, criterion_main, Criterion};
use taper::algos::maddpg::{Maddpg, MaddpgConfig};
use taper::diagnostics::patient0::{detect, reference_band, run_episode, Attack, Patient0Config, Team};
use taper::diagnostics::traceback::traceback;

fn bench_diagnosis(c: &mut Criterion) {
    let m = Maddpg::new(MaddpgConfig::tuned(), "SimpleSpread-v3", &Default::default(), 1).unwrap();
    let mut env = taper::envs::make_parallel("SimpleSpread-v3", &Default::default()).unwrap();
    let actors: Vec<_> = (0..3).map(|i| m.agent_actor(i)).collect();
    let critics: Vec<_> = (0..3).map(|i| m.agent_critic(i)).collect();
    let team = Team {
        actors: actors.iter().map(|x| x as &dyn taper::critics::Actor).collect(),
        critics: critics.iter().map(|x| x as &dyn taper::critics::QCritic).collect(),
    };
    let cfg = Patient0Config {
        references: 10,
        ..Patient0Config::default()
    };
    let band = reference_band(env.as_mut(), &team, 0, &cfg).unwrap();
    let attack = Attack {
        agent: 1,
        start: 3,
        len: 5,
    };
    let mut g = c.benchmark_group("patient0");
    g.bench_function("attacked_episode_n3", |b| {
        b.iter(|| {
            let tr = run_episode(env.as_mut(), &team, 0, &cfg, None, Some(attack), true).unwrap();
            let d = detect(&tr, &band, 2.0);
            d.map(|d| traceback(&tr.influence, d.candidate, d.step, cfg.causal_window))
        })
    });
    let mut rng = taper::tensor::rng::stream(0, taper::tensor::rng::Purpose::Other(11), 0);
    g.bench_function("reference_episode_n3", |b| {
        b.iter(|| run_episode(env.as_mut(), &team, 0, &cfg, Some((&mut rng, 1e-4)), None, false).unwrap())
    });
    g.finish();
}

criterion_group!(benches, bench_diagnosis);
criterion_main!(benches);
