//! HDPO with the symmetry-aware policy on one warehouse with `n` heterogeneous stores (or on the
//! serial system), against the best echelon base-stock levels, both measured on the same test
//! paths.
//!
//! ```text
//! cargo run --release --example inventory_network -- [stores|serial] [steps] [lr] [seed]
//! ```

use taper::algos::hdpo::{HdpoConfig, HdpoNetwork, NetworkProblem};
use taper::algos::Algorithm;
use taper::envs::inventory::network::{best_echelon_base_stock, NetScenarios};
use taper::envs::inventory::{Network, NetworkConfig};
use taper::tensor::rng::{stream, Purpose};
use taper::train::{Control, Metrics};

fn main() -> Result<(), Box<dyn std::error::Error>> {
    let args: Vec<String> = std::env::args().skip(1).collect();
    let arg = |i: usize, d: &str| args.get(i).cloned().unwrap_or_else(|| d.to_string());
    let which = arg(0, "3");
    let steps: usize = arg(1, "500").parse()?;
    let lr: f64 = arg(2, "0.003").parse()?;
    let seed: u64 = arg(3, "0").parse()?;
    let net = Network::new(if which == "serial" {
        NetworkConfig::serial(9.0, 4)
    } else {
        NetworkConfig::one_warehouse(which.parse()?, 0)
    })?;
    for (i, s) in net.config().stores.iter().enumerate() {
        println!("store {i}: {s:?}");
    }
    let config = HdpoConfig {
        learning_rate: lr,
        steps,
        ..HdpoConfig::for_network()
    };
    let mut h = HdpoNetwork::with_problem(config, NetworkProblem { net: net.clone() }, seed)?;
    let test = h.test_scenarios();
    let t0 = std::time::Instant::now();
    let mut search_rng = stream(seed, Purpose::Other(103), 0);
    let search = NetScenarios::sample(&net, 512, 300, &mut search_rng);
    let (levels, search_cost) = best_echelon_base_stock(&net, &search, 100);
    let echelon_test = test.evaluate(&net, h.config.test_ignore, &mut |x, q| {
        net.echelon_orders(x, &levels, q)
    });
    println!(
        "echelon base-stock levels {levels:?}: search cost {search_cost:.4}, test cost {echelon_test:.4} ({:.1} s)",
        t0.elapsed().as_secs_f64()
    );
    let t0 = std::time::Instant::now();
    let mut show = |m: &Metrics| {
        println!(
            "step {:>5} train {:.4} dev {:.4} best {:.4} t {:.1}s",
            m.get("global_step").unwrap_or(0.0),
            m.get("train_cost").unwrap_or(0.0),
            m.get("dev_cost").unwrap_or(0.0),
            m.get("best_dev_cost").unwrap_or(0.0),
            m.get("time_elapsed").unwrap_or(0.0)
        );
        Control::Continue
    };
    h.learn_with(steps as u64, &mut show)?;
    let s = h.summary_costs();
    println!(
        "HDPO test cost {:.4} (best dev {:.4} at step {}), echelon base-stock {:.4}: {:+.2}% ({:.1} s)",
        s.test_cost,
        s.best_dev_cost,
        s.best_step,
        echelon_test,
        100.0 * (s.test_cost / echelon_test - 1.0),
        t0.elapsed().as_secs_f64()
    );
    Ok(())
}
