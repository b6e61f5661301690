//! PPO on CartPole-v1 with CleanRL's `ppo.py` defaults, top to bottom.
//!
//! Run: `cargo run --release --example ppo_cartpole`

use taper::prelude::*;

fn main() -> Result<(), AlgoError> {
    // Hyperparameters: CleanRL's ppo.py (4 envs x 128 steps, 4 epochs x 4 minibatches,
    // lr 2.5e-4 annealed, clip 0.2, entropy 0.01, value coef 0.5, grad clip 0.5).
    let config = PpoConfig::default();
    let seed = 1;
    let total_steps = 500_000;

    // Four CartPole-v1 envs stepped together; each resets with seed + i.
    let mut envs = make_env("CartPole-v1", &Kwargs::new(), &config)?;

    // Separate 64-64 tanh actor and critic, orthogonal init, Adam (eps 1e-5).
    let mut agent = Ppo::new(config, envs.observation_space(), envs.action_space(), seed)?;

    // Log every 50th update, like CleanRL's SPS line.
    let mut log = |m: &Metrics| {
        let update = m.get("update").unwrap_or(0.0) as u64;
        if update % 50 == 0 {
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
    let summary = agent.learn(&mut envs, total_steps, &mut log)?;
    println!(
        "mean return of the last 20 training episodes: {:.1}",
        summary.recent_return
    );

    // Evaluate the greedy policy on a fresh env.
    let mut env = make("CartPole-v1")?;
    let episodes = agent.evaluate(env.as_mut(), 10, 1000, true)?;
    let mean = episodes.iter().map(|e| e.ret).sum::<f64>() / episodes.len() as f64;
    println!("greedy policy, 10 episodes: mean return {mean:.1}");
    Ok(())
}
