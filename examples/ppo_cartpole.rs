//! PPO on CartPole-v1 with CleanRL's `ppo.py` defaults, top to bottom: train, log, save,
//! load, evaluate.
//!
//! Run: `cargo run --release --example ppo_cartpole`

use taper::prelude::*;

fn main() -> Result<(), Box<dyn std::error::Error>> {
    // Hyperparameters: CleanRL's ppo.py (4 envs x 128 steps, 4 epochs x 4 minibatches,
    // lr 2.5e-4 annealed, clip 0.2, entropy 0.01, value coef 0.5, grad clip 0.5). Four
    // CartPole-v1 envs stepped together, each reset with seed + i; separate 64-64 tanh actor
    // and critic, orthogonal init, Adam (eps 1e-5).
    let mut agent = Ppo::new(PpoConfig::default(), "CartPole-v1", &Kwargs::new(), 1)?;

    // Log every 50th update, like CleanRL's SPS line.
    let mut log = |m: &Metrics| {
        let update = m.get("update").unwrap_or(0.0) as u64;
        if update.is_multiple_of(50) {
            println!(
                "global_step={:>7} recent_return={:>6.1} approx_kl={:.4} clipfrac={:.3} SPS={:.0}",
                m.get("global_step").unwrap_or(0.0),
                m.get("recent_return").unwrap_or(f64::NAN),
                m.get("approx_kl").unwrap_or(f64::NAN),
                m.get("clipfrac").unwrap_or(f64::NAN),
                m.get("sps").unwrap_or(0.0),
            );
        }
        Control::Continue
    };
    agent.learn_with(500_000, &mut log)?;
    println!(
        "mean return of the last 20 training episodes: {:.1}",
        agent.recent_return()
    );

    // Save a run folder (what `taper eval` reads), load it back, evaluate the greedy policy.
    let dir = std::env::temp_dir().join("taper-example-ppo-cartpole");
    agent.save(&dir)?;
    let loaded = Ppo::load(&dir)?;
    let opts = EvalOptions {
        episodes: 10,
        seed: 1000,
        deterministic: true,
        ..EvalOptions::default()
    };
    let eval = loaded.evaluate(&opts, &mut |_, _| {})?;
    println!(
        "greedy policy, 10 episodes: mean return {:.1}",
        eval.summary().mean_return
    );
    Ok(())
}
