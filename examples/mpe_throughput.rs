//! Simple Spread (N = 3) steps per second: one env, and 1024 envs vectorised on 1 and 2
//! threads, random discrete actions; one JSON line. Compare with
//! `benches/peers/bench_mpe2.py` and `bench_jaxmarl.py` run on the same machine.
//!
//! Run: `cargo run --release --example mpe_throughput`

use rand::Rng;
use std::time::Instant;
use taper::envs::mpe::{vec_spread, MultiAction, SimpleSpread, SpreadConfig, StepBuffers};
use taper::envs::ParallelEnv;
use taper::prelude::*;

fn main() -> Result<(), EnvError> {
    let cfg = SpreadConfig::default();
    let mut rng = stream(0, Purpose::Action, 0);
    let mut env = SimpleSpread::new(cfg)?;
    let mut obs = vec![0f32; 54];
    let mut out = StepBuffers::new(3);
    env.reset_into(Some(0), &mut obs)?;
    let steps = 2_000_000;
    let acts: Vec<[i64; 3]> = (0..4096)
        .map(|_| [rng.random_range(0..5), rng.random_range(0..5), rng.random_range(0..5)])
        .collect();
    let t = Instant::now();
    for s in 0..steps {
        env.step_into(MultiAction::Discrete(&acts[s % 4096]), &mut obs, &mut out)?;
        if out.truncated[0] {
            env.reset_into(None, &mut obs)?;
        }
    }
    let single = steps as f64 / t.elapsed().as_secs_f64();

    let m = 1024;
    let big: Vec<Vec<i64>> = (0..16)
        .map(|_| (0..m * 3).map(|_| rng.random_range(0..5)).collect())
        .collect();
    let mut rates = Vec::new();
    for threads in [1usize, 2] {
        let pool = rayon::ThreadPoolBuilder::new()
            .num_threads(threads)
            .build()
            .expect("pool");
        let mut venv = vec_spread(cfg, m)?;
        venv.set_parallel(threads > 1);
        venv.reset(0)?;
        let iters = 2000;
        let t = Instant::now();
        pool.install(|| -> Result<(), EnvError> {
            for k in 0..iters {
                venv.step(MultiAction::Discrete(&big[k % 16]))?;
            }
            Ok(())
        })?;
        rates.push((iters * m) as f64 / t.elapsed().as_secs_f64());
    }
    println!(
        "{{\"single_env_steps_per_s\":{single:.0},\"vec1024_steps_per_s_1thread\":{:.0},\"vec1024_steps_per_s_2threads\":{:.0}}}",
        rates[0], rates[1]
    );
    Ok(())
}
