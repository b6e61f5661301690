//! Env and advantage benchmarks: the CartPole step (single env, VecEnv of 8 and 64,
//! sequential and rayon-parallel) and GAE on `[128, 8]` and `[2048, 64]`.
//!
//! Run: `cargo bench --bench envs`. Gymnasium's CartPole steps at 156k/s here
//! (`benches/peers/bench_cartpole.py`).

use criterion::{black_box, criterion_group, criterion_main, Criterion, Throughput};
use rand::Rng;
use taper::envs::classic::CartPole;
use taper::envs::{make_vec, Action, Env, VecAction};
use taper::tensor::returns::{gae_into, GaeInput};
use taper::tensor::rng::{stream, Purpose};

fn bench_cartpole(c: &mut Criterion) {
    let mut g = c.benchmark_group("cartpole_step");
    g.throughput(Throughput::Elements(1));
    let mut env = CartPole::new();
    let mut obs = [0f32; 4];
    env.reset_into(Some(0), &mut obs).unwrap();
    let mut i = 0i64;
    g.bench_function("single", |b| {
        b.iter(|| {
            i += 1;
            let o = env.step_into(Action::Discrete(i & 1), &mut obs).unwrap();
            if o.terminated {
                env.reset_into(None, &mut obs).unwrap();
            }
            black_box(obs[0])
        })
    });
    g.finish();
    for n in [8usize, 64] {
        let mut g = c.benchmark_group(format!("cartpole_vecenv_{n}"));
        g.throughput(Throughput::Elements(n as u64));
        for parallel in [false, true] {
            let mut venv = make_vec("CartPole-v1", n).unwrap();
            venv.set_parallel(parallel);
            venv.reset(0).unwrap();
            let mut rng = stream(0, Purpose::Action, 0);
            let acts: Vec<Vec<i64>> = (0..64)
                .map(|_| (0..n).map(|_| rng.random_range(0..2)).collect())
                .collect();
            let mut k = 0;
            g.bench_function(if parallel { "rayon" } else { "sequential" }, |b| {
                b.iter(|| {
                    k = (k + 1) % 64;
                    venv.step(VecAction::Discrete(&acts[k])).unwrap();
                    black_box(venv.obs()[0])
                })
            });
        }
        g.finish();
    }
}

fn bench_gae(c: &mut Criterion) {
    let mut g = c.benchmark_group("gae");
    for (t, n) in [(128usize, 8usize), (2048, 64)] {
        let len = t * n;
        let mut rng = stream(1, Purpose::Other(3), 0);
        let r: Vec<f32> = (0..len).map(|_| rng.random_range(-1.0..1.0)).collect();
        let v: Vec<f32> = (0..len).map(|_| rng.random_range(-1.0..1.0)).collect();
        let te: Vec<bool> = (0..len).map(|_| rng.random_bool(0.01)).collect();
        let tr: Vec<bool> = (0..len).map(|_| rng.random_bool(0.005)).collect();
        let fv = vec![0.5f32; len];
        let lv = vec![0.1f32; n];
        let (mut adv, mut ret) = (vec![0f32; len], vec![0f32; len]);
        g.throughput(Throughput::Elements(len as u64));
        g.bench_function(format!("{t}x{n}"), |b| {
            b.iter(|| {
                gae_into(
                    &GaeInput {
                        num_envs: n,
                        rewards: &r,
                        values: &v,
                        terminated: &te,
                        truncated: &tr,
                        final_values: &fv,
                        last_values: &lv,
                        gamma: 0.99,
                        lambda: 0.95,
                    },
                    &mut adv,
                    &mut ret,
                )
                .unwrap();
                black_box(adv[0])
            })
        });
    }
    g.finish();
}

criterion_group!(benches, bench_cartpole, bench_gae);
criterion_main!(benches);
