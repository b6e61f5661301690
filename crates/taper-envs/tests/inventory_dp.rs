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
        "p={p} L={l}: {:.4} (bounds {:.5}..{:.5}, {} sweeps, {:?})",
        r.optimal_cost, r.bounds.0, r.bounds.1, r.iterations, r.cap_check
    );
    r.optimal_cost
}

/// Zipkin (2008), Table 3: the optimal costs for Poisson(5), h = 1, printed to two decimals,
/// rows p = 4, 9, 19, 39 and columns L = 1..4.
const ZIPKIN: [[f64; 4]; 4] = [
    [4.04, 4.40, 4.60, 4.73],
    [5.44, 6.09, 6.53, 6.84],
    [6.68, 7.66, 8.36, 8.89],
    [7.84, 9.11, 10.04, 10.79],
];

/// The solver reproduces Zipkin's L = 4 column to his printed precision.
#[test]
fn zipkin_l4_row() {
    for (row, p) in [4.0, 9.0, 19.0, 39.0].into_iter().enumerate() {
        let (c, want) = (solve(p, 4), ZIPKIN[row][3]);
        assert!((c - want).abs() <= 0.005, "p={p}: {c} vs {want}");
    }
}

#[test]
fn print_small_grid() {
    for l in 1..=3 {
        for p in [4.0, 9.0] {
            solve(p, l);
        }
    }
}

/// A higher cap on the inventory position changes nothing: the chosen cap does not bind.
#[test]
fn raising_the_cap_changes_nothing() {
    let base = LostSalesDp {
        mean: 5.0,
        h: 1.0,
        p: 39.0,
        lead_time: 3,
        ..Default::default()
    };
    let a = lost_sales_optimum(&base).unwrap();
    let b = lost_sales_optimum(&LostSalesDp {
        max_position: a.cap_check.max_position + 6,
        ..base
    })
    .unwrap();
    assert!(
        (a.optimal_cost - b.optimal_cost).abs() < 1e-6,
        "{} vs {}",
        a.optimal_cost,
        b.optimal_cost
    );
    // A cap the optimal policy reaches is refused.
    let low = LostSalesDp {
        max_position: a.cap_check.highest_position,
        ..base
    };
    let e = lost_sales_optimum(&low).unwrap_err();
    assert!(e.to_string().contains("binds"), "{e}");
}

/// On every cell of the docs' grid (Poisson(5), h = 1, L = 1..4, p = 4, 9, 19, 39): the
/// optimum rounds to Zipkin's table, the optimal policy never orders up to the cap on the inventory position (the cap does not
/// bind), and the best base-stock and capped base-stock policies, costed exactly, are never
/// below the optimum; the capped one is never above the uncapped one.
#[test]
fn caps_hold_and_heuristics_stay_above_the_optimum_on_the_grid() {
    use taper_envs::inventory::heuristics::*;
    for l in 1..=4 {
        for p in [4.0, 9.0, 19.0, 39.0] {
            let r = lost_sales_optimum(&LostSalesDp {
                mean: 5.0,
                h: 1.0,
                p,
                lead_time: l,
                ..Default::default()
            })
            .unwrap();
            let want = ZIPKIN[[4.0, 9.0, 19.0, 39.0].iter().position(|&q| q == p).unwrap()][l - 1];
            assert!(
                (r.optimal_cost - want).abs() <= 0.005,
                "L={l} p={p}: {} vs Zipkin's {want}",
                r.optimal_cost
            );
            let cc = r.cap_check;
            assert!(cc.highest_position < cc.max_position, "L={l} p={p}: {cc:?}");
            assert!(
                cc.highest_position <= cc.morton_bound,
                "L={l} p={p}: Morton's bound: {cc:?}"
            );
            let store = LostSalesStore {
                mean: 5.0,
                h: 1.0,
                p,
                lead_time: l,
            };
            let bs = best_lost_sales_base_stock(&store).unwrap();
            let cbs = best_lost_sales_capped_base_stock(&store).unwrap();
            eprintln!(
                "L={l} p={p}: optimum {:.4}, base-stock {} {:.4}, capped {} {:?} {:.4}",
                r.optimal_cost, bs.level, bs.cost, cbs.level, cbs.cap, cbs.cost
            );
            let tol = 1e-6;
            assert!(
                bs.cost >= r.optimal_cost - tol,
                "L={l} p={p}: {bs:?} below {}",
                r.optimal_cost
            );
            assert!(
                cbs.cost >= r.optimal_cost - tol,
                "L={l} p={p}: {cbs:?} below {}",
                r.optimal_cost
            );
            assert!(cbs.cost <= bs.cost + tol);
        }
    }
}

/// The exact cost of a capped base-stock policy agrees with a long simulation of the env's
/// own dynamics (independent code): within four standard errors of 20 batch means.
#[test]
fn exact_policy_cost_agrees_with_simulation() {
    use taper_envs::inventory::heuristics::{base_stock_cost, simulate_lost_sales, LostSalesStore};
    let store = LostSalesStore {
        mean: 5.0,
        h: 1.0,
        p: 9.0,
        lead_time: 3,
    };
    let exact = base_stock_cost(&store, 24, Some(6)).unwrap();
    let batches: Vec<f64> = (0..20)
        .map(|b| simulate_lost_sales(&store, 24, Some(6), 50_000, 100 + b))
        .collect();
    let mean = batches.iter().sum::<f64>() / 20.0;
    let var = batches.iter().map(|c| (c - mean).powi(2)).sum::<f64>() / 19.0;
    let se = (var / 20.0).sqrt();
    eprintln!("exact {:.5}, simulated {mean:.5} ± {se:.5}", exact.cost);
    assert!((exact.cost - mean).abs() < 4.0 * se, "{} vs {mean} ± {se}", exact.cost);
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
