//! Calibration returns on Simple Spread for any N: the random policy and the always-no-op
//! policy, per-agent episode return (PettingZoo's convention), summed min-distance per step and
//! collisions per episode, over 2000 episodes (seeds 0..2000).
//!
//! ```text
//! cargo run --release --example spread_baselines -- [agents]
//! ```

use rand::{Rng, SeedableRng};
use taper::envs::mpe::{MultiAction, SimpleSpread, SpreadConfig, StepBuffers};
use taper::envs::ParallelEnv;

fn main() -> Result<(), Box<dyn std::error::Error>> {
    let n: usize = std::env::args().nth(1).map(|s| s.parse()).transpose()?.unwrap_or(3);
    let mut env = SimpleSpread::new(SpreadConfig {
        n,
        ..SpreadConfig::default()
    })?;
    let mut obs = vec![0f32; n * env.obs_dim()];
    let mut out = StepBuffers::new(n);
    let mut rng = rand_chacha::ChaCha8Rng::seed_from_u64(7);
    for policy in ["random", "no-op"] {
        let (mut ret, mut dist, mut coll, mut steps) = (0f64, 0f64, 0f64, 0f64);
        let episodes = 2000;
        for k in 0..episodes {
            env.reset_into(Some(k), &mut obs)?;
            loop {
                let acts: Vec<i64> = (0..n)
                    .map(|_| if policy == "random" { rng.random_range(0..5) } else { 0 })
                    .collect();
                env.step_into(MultiAction::Discrete(&acts), &mut obs, &mut out)?;
                ret += out.rewards.iter().map(|&r| r as f64).sum::<f64>() / n as f64;
                dist += env.min_distance_sum();
                coll += env.colliding_pairs() as f64;
                steps += 1.0;
                if out.truncated[0] {
                    break;
                }
            }
        }
        let e = episodes as f64;
        println!(
            "N={n} {policy:>6}: per-agent return {:.2}, min-distance {:.3}, collisions {:.2}",
            ret / e,
            dist / steps,
            coll / e
        );
    }
    Ok(())
}
