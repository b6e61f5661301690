//! PPO on Pendulum-v1 with CleanRL's `ppo_continuous_action.py` defaults, top to bottom.
//!
//! Run: `cargo run --release --example ppo_pendulum`

use taper::prelude::*;

fn main() -> Result<(), Box<dyn std::error::Error>> {
    // Hyperparameters: CleanRL's continuous script (1 env x 2048 steps, 10 epochs x 32
    // minibatches, lr 3e-4 annealed, no entropy bonus), with its wrapper stack: actions
    // clipped to [-2, 2], observations normalised and clipped to ±10, rewards scaled by the
    // std of the discounted return and clipped to ±10. A Gaussian policy: 64-64 tanh mean
    // network and a state-independent log-std.
    let mut agent = Ppo::new(PpoConfig::continuous(), "Pendulum-v1", &Kwargs::new(), 1)?;

    let mut log = |m: &Metrics| {
        let update = m.get("update").unwrap_or(0.0) as u64;
        if update.is_multiple_of(10) {
            println!(
                "global_step={:>7} recent_return={:>8.1} entropy={:.3}",
                m.get("global_step").unwrap_or(0.0),
                m.get("recent_return").unwrap_or(f64::NAN),
                m.get("entropy").unwrap_or(f64::NAN),
            );
        }
        Control::Continue
    };
    agent.learn_with(300_000, &mut log)?;
    println!(
        "mean return of the last 20 training episodes: {:.1} (random: about -1200)",
        agent.recent_return()
    );

    // Evaluate the mean action, with the observation statistics frozen.
    let opts = EvalOptions {
        episodes: 10,
        seed: 1000,
        deterministic: true,
        ..EvalOptions::default()
    };
    let eval = agent.evaluate(&opts, &mut |_, _| {})?;
    println!(
        "deterministic policy, 10 episodes: mean return {:.1}",
        eval.summary().mean_return
    );
    Ok(())
}
