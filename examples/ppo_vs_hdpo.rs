//! PPO against HDPO on one lost-sales store (Poisson(5), h = 1, p = 9, L = 2), both measured the
//! same way against training wall time: the policy's average cost per period over the same 32
//! paths of 5000 periods (env seeds 10 000 + k, orders not rounded), with evaluation time left
//! out of the clock. PPO is evaluated with its mean action; HDPO with its best-by-dev policy so
//! far (what it would return if stopped there). Writes run folders that `taper plot` reads:
//!
//! ```text
//! cargo run --release --example ppo_vs_hdpo -- runs/ppo-vs-hdpo [seeds] [ppo_steps]
//! taper plot runs/ppo-vs-hdpo/*/s* --x time_elapsed --metric test_cost --out ppo-vs-hdpo.png
//! ```

use std::io::Write;
use std::path::Path;
use std::time::Instant;
use taper::algos::hdpo::{Hdpo, HdpoConfig, Problem};
use taper::algos::ppo::{Ppo, PpoConfig};
use taper::envs::registry::{make_with, Kwargs};
use taper::train::eval::{run_episodes, EvalOptions};
use taper::train::Learner;

const EPISODES: usize = 32;
const EVAL_SEED: u64 = 10_000;

fn kwargs(horizon: usize) -> Kwargs {
    let mut kw = Kwargs::new();
    kw.insert("lead_time".into(), "2".into());
    kw.insert("p".into(), "9".into());
    kw.insert("horizon".into(), horizon.to_string());
    kw
}

fn cost_of(eps: &[taper::envs::wrappers::EpisodeRecord]) -> f64 {
    let (r, l): (f64, u64) = eps.iter().fold((0.0, 0), |a, e| (a.0 + e.ret, a.1 + e.len));
    -r / l as f64
}

struct Log(std::fs::File);
impl Log {
    fn create(dir: &Path, algo: &str, seed: u64) -> std::io::Result<Self> {
        std::fs::create_dir_all(dir)?;
        std::fs::write(
            dir.join("config.toml"),
            format!("algo = \"{algo}\"\nenv = \"InventoryLostSales-v0\"\nseed = {seed}\n\n[env_kwargs]\nlead_time = \"2\"\np = \"9\"\n"),
        )?;
        Ok(Log(std::fs::File::create(dir.join("metrics.jsonl"))?))
    }
    fn row(&mut self, step: f64, time: f64, cost: f64) {
        writeln!(
            self.0,
            "{{\"global_step\":{step},\"time_elapsed\":{time},\"test_cost\":{cost}}}"
        )
        .expect("write metrics");
    }
}

fn main() -> Result<(), Box<dyn std::error::Error>> {
    let args: Vec<String> = std::env::args().skip(1).collect();
    let base = Path::new(args.first().map(String::as_str).unwrap_or("runs/ppo-vs-hdpo")).to_path_buf();
    let seeds: u64 = args.get(1).map(|s| s.parse()).transpose()?.unwrap_or(3);
    let ppo_steps: u64 = args.get(2).map(|s| s.parse()).transpose()?.unwrap_or(2_000_000);
    let train_kw = kwargs(100);
    let opt = taper::envs::inventory::dp::lost_sales_optimum(&taper::envs::inventory::dp::LostSalesDp {
        mean: 5.0,
        h: 1.0,
        p: 9.0,
        lead_time: 2,
        ..Default::default()
    })?;
    println!("DP optimum: {:.4}", opt.optimal_cost);
    let eval = EvalOptions {
        episodes: EPISODES,
        seed: EVAL_SEED,
        deterministic: true,
        ..EvalOptions::default()
    };
    for seed in 0..seeds {
        // PPO, CleanRL's continuous defaults (what `taper train --algo ppo` uses here), driven
        // through the Learner trait so that evaluation stays off the clock. Its evaluation runs
        // the mean action on 5000-period paths.
        let probe = make_with("InventoryLostSales-v0", &train_kw)?;
        let cfg = PpoConfig::for_action_space(probe.action_space());
        let mut ppo = Ppo::new(cfg, "InventoryLostSales-v0", &train_kw, seed)?;
        let mut log = Log::create(&base.join("ppo").join(format!("s{seed}")), "ppo", seed)?;
        let (start, mut paused, mut ppo_cost) = (Instant::now(), 0.0, f64::NAN);
        ppo.plan(ppo_steps)?;
        while !ppo.is_done() {
            ppo.step()?;
            let p = ppo.progress();
            if p.updates % 20 == 0 {
                let t0 = Instant::now();
                let train_time = start.elapsed().as_secs_f64() - paused;
                ppo_cost = cost_of(&ppo.evaluate(&eval, &mut |_, _| {})?.episodes);
                log.row(p.global_step as f64, train_time, ppo_cost);
                paused += t0.elapsed().as_secs_f64();
            }
        }
        let ppo_time = start.elapsed().as_secs_f64() - paused;
        // HDPO, taper's defaults for one store; its best-by-dev policy so far, orders not
        // rounded, on the same paths, at every fourth development evaluation.
        let mut h = Hdpo::new(HdpoConfig::default(), "InventoryLostSales-v0", &train_kw, seed)?;
        let mut log = Log::create(&base.join("hdpo").join(format!("s{seed}")), "hdpo", seed)?;
        let mut env = make_with("InventoryLostSales-v0", &kwargs(5000))?;
        let (mut paused, mut hdpo_cost, mut k) = (0.0, f64::NAN, 0usize);
        h.plan(h.config.steps as u64)?;
        while !h.is_done() {
            let m = h.step()?;
            k += 1;
            if k % 4 != 0 {
                continue;
            }
            let t0 = Instant::now();
            let (problem, best) = (&h.problem, &h.best);
            let eps = run_episodes(
                env.as_mut(),
                &eval,
                &mut |obs, q| {
                    problem
                        .orders(best, obs, false, q)
                        .map_err(taper::train::TrainError::learner)
                },
                &mut |_, _| {},
            )?;
            hdpo_cost = cost_of(&eps);
            let t = m.get("time_elapsed").unwrap_or(0.0) - paused;
            log.row(m.get("global_step").unwrap_or(0.0), t, hdpo_cost);
            paused += t0.elapsed().as_secs_f64();
        }
        println!(
            "seed {seed}: PPO {ppo_steps} steps in {ppo_time:.1} s -> {ppo_cost:.4} ({:+.2}% over DP); HDPO {} steps -> {hdpo_cost:.4} ({:+.2}%)",
            100.0 * (ppo_cost / opt.optimal_cost - 1.0),
            h.config.steps,
            100.0 * (hdpo_cost / opt.optimal_cost - 1.0)
        );
    }
    Ok(())
}
