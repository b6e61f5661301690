//! Raw CartPole-v1 step rate with random actions, single env and VecEnv of 8, printed as
//! one JSON line (used by `scripts/side_by_side_cartpole.py`; the criterion bench
//! `benches/envs.rs` is the precise measurement).
//!
//! Run: `cargo run --release --example cartpole_throughput`

use rand::Rng;
use std::time::Instant;
use taper::prelude::*;

fn main() -> Result<(), EnvError> {
    let steps = 5_000_000u64;
    let mut rng = stream(0, Purpose::Action, 0);
    let mut env = make("CartPole-v1")?;
    let mut obs = vec![0f32; 4];
    env.reset_into(Some(0), &mut obs)?;
    let t = Instant::now();
    for _ in 0..steps {
        let o = env.step_into(Action::Discrete(rng.random_range(0..2)), &mut obs)?;
        if o.terminated || o.truncated {
            env.reset_into(None, &mut obs)?;
        }
    }
    let single = steps as f64 / t.elapsed().as_secs_f64();

    let mut venv = make_vec("CartPole-v1", 8)?;
    venv.reset(0)?;
    let mut acts = [0i64; 8];
    let t = Instant::now();
    for _ in 0..steps / 8 {
        for a in acts.iter_mut() {
            *a = rng.random_range(0..2);
        }
        venv.step(VecAction::Discrete(&acts))?;
    }
    let vec8 = (steps / 8 * 8) as f64 / t.elapsed().as_secs_f64();
    println!("{{\"single_steps_per_s\":{single:.0},\"vec8_steps_per_s\":{vec8:.0}}}");
    Ok(())
}
