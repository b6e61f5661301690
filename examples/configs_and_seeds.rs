//! What `taper train --config FILE --seeds 0..3` and `taper train --resume DIR` do, from a
//! program: resolve a run's config from a TOML file, train several seeds in parallel into run
//! folders, stop one half-way and resume it exactly, then load every run and evaluate it.
//!
//! ```text
//! cargo run --release --example configs_and_seeds -- configs/ppo-cartpole-zoo.toml runs/zoo
//! taper plot runs/zoo/s0 runs/zoo/s1 runs/zoo/s2 --out zoo.png
//! ```

use std::path::PathBuf;
use taper::algos::run_config::{Overrides, RunConfig};
use taper::prelude::*;
use taper::train::seeds::run_seeds;

fn main() -> Result<(), Box<dyn std::error::Error>> {
    let args: Vec<String> = std::env::args().skip(1).collect();
    let file = PathBuf::from(
        args.first()
            .map(String::as_str)
            .unwrap_or("configs/ppo-cartpole-zoo.toml"),
    );
    let base = PathBuf::from(args.get(1).map(String::as_str).unwrap_or("runs/zoo"));
    // Defaults for the env, then the file, then explicit values (here none).
    let cfg = RunConfig::resolve(Some(&file), &Overrides::default())?;
    let quiet = TrainOptions {
        quiet: true,
        ..TrainOptions::default()
    };
    // Seeds 0 and 1 straight; seed 2 stopped half-way, to be resumed below.
    run_seeds(&[0, 1, 2], 2, |seed| {
        let c = RunConfig { seed, ..cfg.clone() };
        let mut learner = c.learner()?;
        let options = TrainOptions {
            stop_after: (seed == 2).then_some(c.total_steps / 2),
            ..quiet.clone()
        };
        Trainer::new(base.join(format!("s{seed}")))
            .options(options)
            .fit(learner.as_mut(), c.total_steps)?;
        Ok(())
    })?;
    // Exactly what `taper train --resume runs/zoo/s2` does.
    taper::algos::resume(&base.join("s2"), None, quiet)?;
    for seed in 0..3 {
        let learner = taper::algos::load(&base.join(format!("s{seed}")))?;
        let opts = EvalOptions {
            episodes: 10,
            deterministic: true,
            ..EvalOptions::default()
        };
        let s = learner.evaluate(&opts, &mut |_, _| {})?.summary();
        println!(
            "seed {seed}: {} steps, greedy return {:.1}",
            learner.progress().global_step,
            s.mean_return
        );
    }
    Ok(())
}
