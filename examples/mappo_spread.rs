//! MAPPO or IPPO on Simple Spread (N = 3 by default), printing the recent per-agent return
//! (PettingZoo's convention), the mean summed min-distance and collisions per episode.
//!
//! ```text
//! cargo run --release --example mappo_spread -- [mappo|ippo] [env_steps] [seed] [agents]
//! ```

use taper::algos::mappo::{MaPpo, MappoConfig};
use taper::algos::Algorithm;
use taper::envs::Kwargs;
use taper::train::{Control, Metrics};

fn main() -> Result<(), Box<dyn std::error::Error>> {
    let args: Vec<String> = std::env::args().skip(1).collect();
    let algo = args.first().cloned().unwrap_or_else(|| "mappo".into());
    let steps: u64 = args.get(1).map(|s| s.parse()).transpose()?.unwrap_or(2_000_000);
    let seed: u64 = args.get(2).map(|s| s.parse()).transpose()?.unwrap_or(0);
    let n: usize = args.get(3).map(|s| s.parse()).transpose()?.unwrap_or(3);
    let mut cfg = if algo == "ippo" {
        MappoConfig::ippo()
    } else {
        MappoConfig::mappo()
    };
    // Overrides for experiments: MAPPO_ENVS, MAPPO_STEPS, MAPPO_LR, MAPPO_EPOCHS, MAPPO_MB, MAPPO_ENT.
    let var = |k: &str| std::env::var(k).ok();
    if let Some(v) = var("MAPPO_ENVS") {
        cfg.num_envs = v.parse()?;
    }
    if let Some(v) = var("MAPPO_STEPS") {
        cfg.num_steps = v.parse()?;
    }
    if let Some(v) = var("MAPPO_LR") {
        cfg.learning_rate = v.parse()?;
    }
    if let Some(v) = var("MAPPO_EPOCHS") {
        cfg.update_epochs = v.parse()?;
    }
    if let Some(v) = var("MAPPO_MB") {
        cfg.num_minibatches = v.parse()?;
    }
    if let Some(v) = var("MAPPO_ENT") {
        cfg.ent_coef = v.parse()?;
    }
    println!("{cfg:?}");
    let mut kw = Kwargs::new();
    kw.insert("agents".into(), n.to_string());
    let mut l = MaPpo::new(cfg, "SimpleSpread-v3", &kw, seed)?;
    l.learn_with(steps, &mut |m: &Metrics| {
        let u = m.get("update").unwrap_or(0.0) as u64;
        if u.is_multiple_of(20) {
            println!(
                "update {u:>4} step {:>9} return {:8.3} dist {:6.3} coll {:5.2} vloss {:.4} ent {:.3} t {:.1}s",
                m.get("global_step").unwrap_or(0.0),
                m.get("recent_return").unwrap_or(f64::NAN),
                m.get("recent_min_distance").unwrap_or(f64::NAN),
                m.get("recent_collisions").unwrap_or(f64::NAN),
                m.get("value_loss").unwrap_or(f64::NAN),
                m.get("entropy").unwrap_or(f64::NAN),
                m.get("time_elapsed").unwrap_or(f64::NAN),
            );
        }
        Control::Continue
    })?;
    Ok(())
}
