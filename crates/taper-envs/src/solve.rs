//! Exact solvers for tabular MDPs: value iteration (discounted optimum), finite-horizon dynamic
//! programming (the best expected return within a step limit of any policy, which may depend
//! on the time left: e.g. FrozenLake's best success probability within 100 steps), exact
//! evaluation of a stationary policy within a limit, and the search for the best stationary
//! policy within a limit (branch and bound, proven where it finishes). They are features and
//! the test oracles for the learners.
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

/// The best greedy policy of discounted value iteration as γ → 1 (γ ∈ {0.9, 0.99, 0.999,
/// 0.9999, 1 − 10⁻⁶}), each evaluated exactly within `horizon` steps. Returns `(value,
/// policy)`: a good stationary policy, not necessarily the best one within the limit
/// ([`best_stationary_search`] finds that).
pub fn best_greedy_policy<M: TabularMdp + ?Sized>(m: &M, horizon: usize) -> (f64, Vec<usize>) {
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

/// Output of [`best_stationary_search`].
#[derive(Debug, Clone, PartialEq)]
pub struct StationarySearch {
    /// The expected return within the limit of the best stationary deterministic policy found.
    pub value: f64,
    /// That policy.
    pub policy: Vec<usize>,
    /// Whether the search finished, so that no stationary deterministic policy does better.
    pub proven: bool,
    /// The best return any stationary policy could still reach, from the search's open nodes
    /// (equal to `value` when proven).
    pub upper_bound: f64,
    /// Nodes of the search visited.
    pub nodes: usize,
}

/// Finite-horizon values with the states in `fixed` held to their action and the others free
/// (any action at any time): the best any completion of the partial policy can reach.
fn partial_bound<M: TabularMdp + ?Sized>(m: &M, fixed: &[Option<usize>], horizon: usize, v: &mut Vec<f64>) -> f64 {
    let ns = m.num_states();
    v.clear();
    v.resize(ns, 0.0);
    let mut next = vec![0f64; ns];
    for _ in 0..horizon {
        for s in 0..ns {
            next[s] = if m.is_terminal(s) {
                0.0
            } else {
                match fixed[s] {
                    Some(a) => q_value(m, v, s, a, 1.0),
                    None => (0..m.num_actions())
                        .map(|a| q_value(m, v, s, a, 1.0))
                        .fold(f64::NEG_INFINITY, f64::max),
                }
            };
        }
        std::mem::swap(v, &mut next);
    }
    v[m.start_state()]
}

/// A stationary policy improved one state at a time until no single change of action raises
/// its return within `horizon` steps (a local optimum).
pub fn improve_policy<M: TabularMdp + ?Sized>(m: &M, policy: &[usize], horizon: usize) -> (f64, Vec<usize>) {
    let mut pol = policy.to_vec();
    let mut val = evaluate_policy(m, &pol, horizon);
    loop {
        let mut improved = false;
        for s in 0..m.num_states() {
            if m.is_terminal(s) {
                continue;
            }
            let keep = pol[s];
            for a in 0..m.num_actions() {
                if a == keep {
                    continue;
                }
                pol[s] = a;
                let v = evaluate_policy(m, &pol, horizon);
                if v > val + 1e-12 {
                    val = v;
                    improved = true;
                    break;
                }
                pol[s] = keep;
            }
        }
        if !improved {
            return (val, pol);
        }
    }
}

/// The state of [`best_stationary_search`]: a partial policy, the incumbent and the budget.
struct Search<'a, M: TabularMdp + ?Sized> {
    m: &'a M,
    horizon: usize,
    order: &'a [usize],
    max_nodes: usize,
    fixed: Vec<Option<usize>>,
    best: (f64, Vec<usize>),
    nodes: usize,
    open_bound: f64,
    v: Vec<f64>,
}

impl<M: TabularMdp + ?Sized> Search<'_, M> {
    /// Depth-first over the actions of `order[depth..]`, children in order of their bounds.
    fn dfs(&mut self, depth: usize) {
        let m = self.m;
        if depth == self.order.len() {
            let val = partial_bound(m, &self.fixed, self.horizon, &mut self.v);
            if val > self.best.0 + 1e-12 {
                self.best = (val, self.fixed.iter().map(|a| a.unwrap_or(0)).collect());
            }
            return;
        }
        let s = self.order[depth];
        let mut children: Vec<(f64, usize)> = (0..m.num_actions())
            .map(|a| {
                self.fixed[s] = Some(a);
                (partial_bound(m, &self.fixed, self.horizon, &mut self.v), a)
            })
            .collect();
        self.fixed[s] = None;
        children.sort_by(|x, y| y.0.total_cmp(&x.0).then(x.1.cmp(&y.1)));
        for (bound, a) in children {
            if bound <= self.best.0 + 1e-12 {
                continue;
            }
            if self.nodes >= self.max_nodes {
                self.open_bound = self.open_bound.max(bound);
                continue;
            }
            self.nodes += 1;
            self.fixed[s] = Some(a);
            self.dfs(depth + 1);
            self.fixed[s] = None;
        }
    }
}

/// The best stationary deterministic policy within `horizon` steps, by branch and bound over
/// the states' actions (states in order of distance from the start). A partial policy's bound
/// is the finite-horizon optimum with the unassigned states free; the first incumbent is the
/// best greedy policy ([`best_greedy_policy`]) improved to a local optimum
/// ([`improve_policy`]). The search stops after `max_nodes`
/// nodes: then `proven` is false and `upper_bound` says how much better a stationary policy
/// could still be.
pub fn best_stationary_search<M: TabularMdp + ?Sized>(m: &M, horizon: usize, max_nodes: usize) -> StationarySearch {
    let (ns, na) = (m.num_states(), m.num_actions());
    let (mut best_val, mut best_pol) = {
        let (_, greedy) = best_greedy_policy(m, horizon);
        improve_policy(m, &greedy, horizon)
    };
    // States in breadth-first order from the start, over every action.
    let mut order = Vec::new();
    let mut seen = vec![false; ns];
    let mut queue = std::collections::VecDeque::from([m.start_state()]);
    seen[m.start_state()] = true;
    while let Some(s) = queue.pop_front() {
        if m.is_terminal(s) {
            continue;
        }
        order.push(s);
        for a in 0..na {
            for t in m.transitions(s, a) {
                if t.prob > 0.0 && !seen[t.next] {
                    seen[t.next] = true;
                    queue.push_back(t.next);
                }
            }
        }
    }
    let mut fixed: Vec<Option<usize>> = vec![None; ns];
    // Unreachable states keep the incumbent's action.
    for s in 0..ns {
        if !seen[s] && !m.is_terminal(s) {
            fixed[s] = Some(best_pol[s]);
        }
    }
    let mut search = Search {
        m,
        horizon,
        order: &order,
        max_nodes,
        fixed,
        best: (best_val, best_pol),
        nodes: 0,
        open_bound: f64::NEG_INFINITY,
        v: Vec::new(),
    };
    search.dfs(0);
    let Search {
        best,
        nodes,
        open_bound,
        ..
    } = search;
    (best_val, best_pol) = best;
    let proven = open_bound == f64::NEG_INFINITY;
    StationarySearch {
        value: best_val,
        policy: best_pol,
        proven,
        upper_bound: if proven { best_val } else { open_bound.max(best_val) },
        nodes,
    }
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
        let (greedy_val, pol) = best_greedy_policy(&l4, 100);
        assert!(greedy_val <= finite_horizon(&l4, 100).start_value + 1e-12);
        assert!(greedy_val > 0.74, "best greedy {greedy_val}");
        assert!((evaluate_policy(&l4, &pol, 100) - greedy_val).abs() < 1e-12);
    }

    /// Sutton & Barto Example 6.6: the optimal return is −13.
    #[test]
    fn cliff_walking_optimum() {
        let c = CliffWalking::new();
        let vi = value_iteration(&c, 1.0, 1e-9, 10_000);
        assert!((vi.values[CliffWalking::START] + 13.0).abs() < 1e-9);
    }
}

#[cfg(test)]
mod search_tests {
    use super::*;
    use crate::toy_text::FrozenLake;

    /// On a small slippery lake the search's answer equals brute force over all 4^7
    /// stationary policies, with a limit short enough that stationarity costs something.
    #[test]
    fn search_equals_brute_force_on_a_small_lake() {
        let lake = FrozenLake::from_map(&["SFF", "FHF", "FFG"], true).unwrap();
        let h = 6;
        let free: Vec<usize> = (0..9).filter(|&s| !lake.is_terminal(s)).collect();
        let mut best = f64::NEG_INFINITY;
        let mut pol = vec![0usize; 9];
        for code in 0..4usize.pow(free.len() as u32) {
            let mut c = code;
            for &s in &free {
                pol[s] = c % 4;
                c /= 4;
            }
            best = best.max(evaluate_policy(&lake, &pol, h));
        }
        let r = best_stationary_search(&lake, h, 1_000_000);
        assert!(r.proven);
        assert!((r.value - best).abs() < 1e-12, "{} vs brute force {best}", r.value);
        assert!((evaluate_policy(&lake, &r.policy, h) - r.value).abs() < 1e-12);
        assert!(r.value <= finite_horizon(&lake, h).start_value + 1e-12);
    }

    /// 4x4 within 100 steps: the best greedy policy (0.7402) is the best stationary one,
    /// proven. 8x8 within 200 steps: a stationary policy beats the best greedy one (0.8857);
    /// the search is not finished, and its bound stays below the finite-horizon optimum.
    #[test]
    fn frozen_lake_best_stationary() {
        let l4 = FrozenLake::new_4x4(true);
        let r = best_stationary_search(&l4, 100, 2_000);
        assert!(r.proven && (r.value - 0.740165).abs() < 1e-6, "{r:?}");
        assert!((best_greedy_policy(&l4, 100).0 - r.value).abs() < 1e-12);
        let l8 = FrozenLake::new_8x8(true);
        let g = best_greedy_policy(&l8, 200).0;
        let r = best_stationary_search(&l8, 200, 2_000);
        assert!((g - 0.885654).abs() < 1e-6, "{g}");
        assert!(r.value > g + 0.005, "{} vs greedy {g}", r.value);
        assert!((evaluate_policy(&l8, &r.policy, 200) - r.value).abs() < 1e-12);
        assert!(r.upper_bound <= finite_horizon(&l8, 200).start_value + 1e-12);
        assert!(r.upper_bound >= r.value);
    }
}
