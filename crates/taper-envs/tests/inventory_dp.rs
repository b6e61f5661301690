//! The exact lost-sales solver against Zipkin (2008), Table 3(a): Poisson(5), h = 1.

use taper_envs::inventory::dp::{lost_sales_optimum, LostSalesDp};

fn solve(p: f64, l: usize) -> f64 {
    let r = lost_sales_optimum(&LostSalesDp {
        mean: 5.0,
        h: 1.0,
        p,
        lead_time: l,
        ..Default::default()
    })
    .unwrap();
    eprintln!(
        "p={p} L={l}: {:.4} (bounds {:.5}..{:.5}, {} sweeps, caps {:?})",
        r.optimal_cost, r.bounds.0, r.bounds.1, r.iterations, r.caps
    );
    r.optimal_cost
}

/// Zipkin (2008): L = 4, p = 4 has optimal cost 4.73.
#[test]
fn zipkin_l4_p4_is_4_73() {
    let c = solve(4.0, 4);
    assert!((c - 4.73).abs() < 0.005, "{c}");
}

#[test]
fn print_small_grid() {
    for l in 1..=3 {
        for p in [4.0, 9.0] {
            solve(p, l);
        }
    }
}

/// Raising the caps changes nothing at the 4th decimal.
#[test]
fn caps_do_not_matter() {
    let base = LostSalesDp {
        mean: 5.0,
        h: 1.0,
        p: 9.0,
        lead_time: 2,
        ..Default::default()
    };
    let a = lost_sales_optimum(&base).unwrap();
    let b = lost_sales_optimum(&LostSalesDp {
        max_order: a.caps.0 + 8,
        max_on_hand: a.caps.1 + 10,
        ..base
    })
    .unwrap();
    assert!(
        (a.optimal_cost - b.optimal_cost).abs() < 1e-4,
        "{} vs {}",
        a.optimal_cost,
        b.optimal_cost
    );
}

/// The optimum is below the best base-stock and capped base-stock policies (Zipkin 2008
/// reports the same ordering), and the capped one is within 1% of it here.
#[test]
fn heuristics_are_above_the_optimum() {
    use taper_envs::inventory::heuristics::*;
    let opt = lost_sales_optimum(&LostSalesDp {
        mean: 5.0,
        h: 1.0,
        p: 4.0,
        lead_time: 2,
        ..Default::default()
    })
    .unwrap()
    .optimal_cost;
    let bs = best_lost_sales_base_stock(5.0, 1.0, 4.0, 2, 200_000, 7).unwrap();
    let cbs = best_lost_sales_capped_base_stock(5.0, 1.0, 4.0, 2, 200_000, 7).unwrap();
    eprintln!("opt {opt:.4}, base-stock {bs:?}, capped {cbs:?}");
    assert!(bs.cost > opt - 0.02 && cbs.cost > opt - 0.02);
    assert!(cbs.cost <= bs.cost);
    assert!(cbs.cost < opt * 1.01, "{} vs {opt}", cbs.cost);
}

/// The registry builds the inventory envs with their keyword arguments; bad ones are errors.
#[test]
fn inventory_envs_in_the_registry() {
    use taper_envs::{make_with, Action, Env, Kwargs};
    let mut kw = Kwargs::new();
    kw.insert("lead_time".into(), "2".into());
    kw.insert("p".into(), "19".into());
    let mut e = make_with("InventoryLostSales-v0", &kw).unwrap();
    let obs = e.reset(Some(3)).unwrap();
    assert_eq!(obs.len(), 2);
    let mut total = 0.0;
    let mut steps = 0;
    loop {
        let s = e.step(Action::Continuous(&[5.0])).unwrap();
        total -= s.reward as f64;
        steps += 1;
        if s.truncated {
            break;
        }
    }
    assert_eq!(steps, 100);
    assert!(total > 0.0);
    kw.insert("h".into(), "-1".into());
    assert!(make_with("InventoryLostSales-v0", &kw).is_err());
    let mut bad = Kwargs::new();
    bad.insert("demand_std".into(), "2".into());
    assert!(
        make_with("InventoryLostSales-v0", &bad).is_err(),
        "lost sales is Poisson"
    );
    assert!(make_with("InventoryBacklog-v0", &bad).is_ok());
}

/// The env's long-run cost under a capped base-stock policy equals the heuristics module's
/// simulation of the same policy (same dynamics, independent code paths), within noise.
#[test]
fn env_and_policy_simulation_agree() {
    use taper_envs::inventory::heuristics::{simulate_lost_sales, LostSalesStore};
    use taper_envs::{make_with, Action, Env, Kwargs};
    let mut kw = Kwargs::new();
    kw.insert("lead_time".into(), "2".into());
    kw.insert("p".into(), "4".into());
    kw.insert("horizon".into(), "200000".into());
    let mut e = make_with("InventoryLostSales-v0", &kw).unwrap();
    let mut obs = e.reset(Some(1)).unwrap();
    let (mut total, mut n) = (0.0, 0usize);
    for t in 0..200_000 {
        let ip: f32 = obs.iter().sum();
        let q = (17.0 - ip).clamp(0.0, 5.0);
        let s = e.step(Action::Continuous(&[q])).unwrap();
        obs = s.obs;
        if t >= 1000 {
            total -= s.reward as f64;
            n += 1;
        }
    }
    let env_cost = total / n as f64;
    let sim = simulate_lost_sales(
        &LostSalesStore {
            mean: 5.0,
            h: 1.0,
            p: 4.0,
            lead_time: 2,
        },
        17,
        Some(5),
        200_000,
        9,
    );
    assert!((env_cost - sim).abs() < 0.03, "{env_cost} vs {sim}");
}
