//! Exact solvers for tabular MDPs: value iteration (discounted optimum), finite-horizon dynamic
//! programming (the best expected return within a step limit, e.g. FrozenLake's best success
//! probability within 100 steps), and exact evaluation of a stationary policy within a limit.
//! They are features and the test oracles for the learners.
//!
//! ```
//! use taper_envs::toy_text::FrozenLake;
//! use taper_envs::solve::finite_horizon;
//! let lake = FrozenLake::new_4x4(true);
//! let best = finite_horizon(&lake, 100).start_value;
//! assert!((best - 0.7442).abs() < 1e-3); // Gymnasium: "optimum = 0.74"
//! ```

use crate::toy_text::TabularMdp;

/// Output of [`value_iteration`].
#[derive(Debug, Clone)]
pub struct ValueIteration {
    /// Optimal state values.
    pub values: Vec<f64>,
    /// A greedy (optimal) action per state; ties go to the lowest action.
    pub policy: Vec<usize>,
    /// Sweeps until the largest change fell below the tolerance.
    pub iterations: usize,
}

fn q_value<M: TabularMdp + ?Sized>(m: &M, v: &[f64], s: usize, a: usize, gamma: f64) -> f64 {
    m.transitions(s, a)
        .iter()
        .map(|t| t.prob * (t.reward + if t.terminal { 0.0 } else { gamma * v[t.next] }))
        .sum()
}

/// Discounted value iteration to a sup-norm change below `tol` (or `max_iters` sweeps).
pub fn value_iteration<M: TabularMdp + ?Sized>(m: &M, gamma: f64, tol: f64, max_iters: usize) -> ValueIteration {
    let (ns, na) = (m.num_states(), m.num_actions());
    let mut v = vec![0f64; ns];
    let mut iterations = 0;
    for it in 0..max_iters {
        let mut delta = 0f64;
        for s in 0..ns {
            if m.is_terminal(s) {
                continue;
            }
            let best = (0..na)
                .map(|a| q_value(m, &v, s, a, gamma))
                .fold(f64::NEG_INFINITY, f64::max);
            delta = delta.max((best - v[s]).abs());
            v[s] = best;
        }
        iterations = it + 1;
        if delta < tol {
            break;
        }
    }
    let policy = greedy(m, &v, gamma);
    ValueIteration {
        values: v,
        policy,
        iterations,
    }
}

/// The greedy policy of a value function (lowest action on ties, within 1e-12).
pub fn greedy<M: TabularMdp + ?Sized>(m: &M, v: &[f64], gamma: f64) -> Vec<usize> {
    (0..m.num_states())
        .map(|s| {
            let mut best = 0;
            let mut bq = f64::NEG_INFINITY;
            for a in 0..m.num_actions() {
                let q = q_value(m, v, s, a, gamma);
                if q > bq + 1e-12 {
                    bq = q;
                    best = a;
                }
            }
            best
        })
        .collect()
}

/// Output of [`finite_horizon`].
#[derive(Debug, Clone)]
pub struct FiniteHorizon {
    /// The best expected undiscounted return within the horizon, from the start state.
    pub start_value: f64,
    /// `values[h][s]`: the best return with `h` steps left.
    pub values: Vec<Vec<f64>>,
}

/// Backward induction over `horizon` steps (undiscounted): the best any policy, stationary or
/// not, can do within the step limit.
pub fn finite_horizon<M: TabularMdp + ?Sized>(m: &M, horizon: usize) -> FiniteHorizon {
    let ns = m.num_states();
    let mut values = vec![vec![0f64; ns]];
    for h in 1..=horizon {
        let prev = &values[h - 1];
        let cur: Vec<f64> = (0..ns)
            .map(|s| {
                if m.is_terminal(s) {
                    0.0
                } else {
                    (0..m.num_actions())
                        .map(|a| q_value(m, prev, s, a, 1.0))
                        .fold(f64::NEG_INFINITY, f64::max)
                }
            })
            .collect();
        values.push(cur);
    }
    FiniteHorizon {
        start_value: values[horizon][m.start_state()],
        values,
    }
}

/// The exact expected undiscounted return of a stationary deterministic policy within
/// `horizon` steps from the start state.
pub fn evaluate_policy<M: TabularMdp + ?Sized>(m: &M, policy: &[usize], horizon: usize) -> f64 {
    let ns = m.num_states();
    let mut v = vec![0f64; ns];
    for _ in 0..horizon {
        let next: Vec<f64> = (0..ns)
            .map(|s| {
                if m.is_terminal(s) {
                    0.0
                } else {
                    q_value(m, &v, s, policy[s], 1.0)
                }
            })
            .collect();
        v = next;
    }
    v[m.start_state()]
}

/// The best stationary policy found by discounted value iteration as γ → 1 (γ ∈ {0.9, 0.99,
/// 0.999, 0.9999, 1 − 10⁻⁶}), each greedy policy evaluated exactly within `horizon` steps.
/// Returns `(value, policy)`. For reach-the-goal tasks such as FrozenLake this is the
/// stationary policy that maximises the success probability; [`finite_horizon`] bounds it
/// from above.
pub fn best_stationary<M: TabularMdp + ?Sized>(m: &M, horizon: usize) -> (f64, Vec<usize>) {
    let mut best = (f64::NEG_INFINITY, Vec::new());
    for gamma in [0.9, 0.99, 0.999, 0.9999, 1.0 - 1e-6] {
        let vi = value_iteration(m, gamma, 1e-12, 200_000);
        let val = evaluate_policy(m, &vi.policy, horizon);
        if val > best.0 + 1e-12 {
            best = (val, vi.policy);
        }
    }
    best
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::toy_text::{CliffWalking, FrozenLake};

    /// environments.md §3.1 (derived by value iteration): 0.7442 (4x4, 100 steps), 0.9132
    /// (8x8, 200 steps), 0.8235 without a limit; 1.0 without slipping.
    #[test]
    fn frozen_lake_reference_optima() {
        let l4 = FrozenLake::new_4x4(true);
        assert!((finite_horizon(&l4, 100).start_value - 0.7442).abs() < 5e-4);
        let vi = value_iteration(&l4, 1.0, 1e-12, 1_000_000);
        assert!((vi.values[0] - 0.8235).abs() < 5e-4);
        let l8 = FrozenLake::new_8x8(true);
        assert!((finite_horizon(&l8, 200).start_value - 0.9132).abs() < 5e-4);
        let l4d = FrozenLake::new_4x4(false);
        assert!((finite_horizon(&l4d, 100).start_value - 1.0).abs() < 1e-12);
        let (stat, pol) = best_stationary(&l4, 100);
        assert!(stat <= finite_horizon(&l4, 100).start_value + 1e-12);
        assert!(stat > 0.74, "best stationary {stat}");
        assert!((evaluate_policy(&l4, &pol, 100) - stat).abs() < 1e-12);
    }

    /// Sutton & Barto Example 6.6: the optimal return is −13.
    #[test]
    fn cliff_walking_optimum() {
        let c = CliffWalking::new();
        let vi = value_iteration(&c, 1.0, 1e-9, 10_000);
        assert!((vi.values[CliffWalking::START] + 13.0).abs() < 1e-9);
    }
}
