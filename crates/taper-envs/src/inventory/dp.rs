//! Exact average-cost optimum of a single store with lost sales, by relative value iteration
//! on the on-hand-plus-pipeline state (the instances of Zipkin 2008, "Old and new methods for
//! lost-sales inventory systems", Operations Research 56(5)).
//!
//! State at the start of a period: `(x_0, x_1, …, x_{L−1})`, with `x_0` on hand and `x_j` the
//! order that arrives `j` periods from now. The store orders `q`, demand `D` occurs, the cost
//! `h·(x_0 − D)⁺ + p·(D − x_0)⁺` is charged, unmet demand is lost, and the next state is
//! `((x_0 − D)⁺ + x_1, x_2, …, x_{L−1}, q)`: an order placed in period t meets demand from
//! period t + L on (Zipkin's convention; L = 1 means next period).
//!
//! The state space is finite by caps: orders `q ≤ max_order` and on-hand `≤ max_on_hand`
//! (larger on-hand is clamped, which the default caps make irrelevant at the 4th decimal;
//! tested by raising them). The Poisson tail beyond `P(D > d) < 1e-12` is folded into the
//! last point. The limit is `L ≤ 6`: the state has `(max_on_hand + 1)·(max_order + 1)^{L−1}`
//! entries and each sweep costs that times the order and demand choices.
//!
//! ```
//! use taper_envs::inventory::dp::{lost_sales_optimum, LostSalesDp};
//! // Zipkin (2008), Table 3(a): Poisson(5), h = 1, p = 4, L = 1.
//! let r = lost_sales_optimum(&LostSalesDp { mean: 5.0, h: 1.0, p: 4.0, lead_time: 1, ..Default::default() })?;
//! assert!(r.optimal_cost > 4.0 && r.optimal_cost < 4.1);
//! # Ok::<(), taper_envs::EnvError>(())
//! ```

use crate::error::{EnvError, Result};
use serde::{Deserialize, Serialize};

/// The largest lead time the exact solver takes: the state grows as `(cap+1)^L`.
pub const MAX_LEAD_TIME: usize = 6;

/// A lost-sales instance and the solver's caps.
#[derive(Debug, Clone, Copy, PartialEq, Serialize, Deserialize)]
pub struct LostSalesDp {
    /// Mean of the Poisson demand.
    pub mean: f64,
    /// Holding cost per unit left at the end of a period.
    pub h: f64,
    /// Penalty per unit of lost sales.
    pub p: f64,
    /// Lead time L ≥ 1 (Zipkin's convention).
    pub lead_time: usize,
    /// Largest order considered.
    pub max_order: usize,
    /// Largest on-hand level kept (larger is clamped).
    pub max_on_hand: usize,
    /// Stop when the span of the value update is below this.
    pub tol: f64,
    /// Most sweeps.
    pub max_iters: usize,
}

impl Default for LostSalesDp {
    fn default() -> Self {
        LostSalesDp {
            mean: 5.0,
            h: 1.0,
            p: 4.0,
            lead_time: 4,
            max_order: 0,
            max_on_hand: 0,
            tol: 1e-7,
            max_iters: 20_000,
        }
    }
}

/// The solver's answer.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct LostSalesSolution {
    /// The optimal long-run average cost per period (midpoint of the final bounds).
    pub optimal_cost: f64,
    /// Lower and upper bounds on it from the last sweep.
    pub bounds: (f64, f64),
    /// Sweeps done.
    pub iterations: usize,
    /// Caps used: `(max_order, max_on_hand)`.
    pub caps: (usize, usize),
    /// The optimal order in each state, states in row-major order of `(x_0, x_1, …)`.
    pub policy: Vec<u16>,
}

fn poisson_pmf(mean: f64, tol: f64) -> Vec<f64> {
    let mut pmf = vec![(-mean).exp()];
    let mut cdf = pmf[0];
    let mut k = 0usize;
    while 1.0 - cdf > tol && k < 10_000 {
        k += 1;
        let next = pmf[k - 1] * mean / k as f64;
        pmf.push(next);
        cdf += next;
    }
    let last = pmf.len() - 1;
    pmf[last] += (1.0 - cdf).max(0.0);
    pmf
}

/// Checks an instance's parameters.
pub fn validate(c: &LostSalesDp) -> Result<()> {
    let bad = |name: &'static str, reason: String| Err(EnvError::Invalid { name, reason });
    if !(c.h >= 0.0 && c.h.is_finite()) {
        return bad("h", format!("holding cost must be >= 0, got {}", c.h));
    }
    if !(c.p >= 0.0 && c.p.is_finite()) {
        return bad("p", format!("lost-sales penalty must be >= 0, got {}", c.p));
    }
    if !(c.mean > 0.0 && c.mean <= 50.0) {
        return bad(
            "demand_mean",
            format!("the exact solver takes a Poisson mean in (0, 50], got {}", c.mean),
        );
    }
    if c.lead_time == 0 || c.lead_time > MAX_LEAD_TIME {
        return bad(
            "lead_time",
            format!(
                "the exact solver takes 1 <= L <= {MAX_LEAD_TIME}, got {}: its state has (cap+1)^L entries, \
                 so L = {} would need about {}x the memory and time of L = {MAX_LEAD_TIME}",
                c.lead_time,
                c.lead_time,
                if c.lead_time > MAX_LEAD_TIME {
                    16usize.saturating_pow((c.lead_time - MAX_LEAD_TIME) as u32)
                } else {
                    1
                }
            ),
        );
    }
    Ok(())
}

/// Solves the instance by relative value iteration. Caps of 0 take defaults from the demand:
/// `max_order = ⌈mean + 5·√mean⌉ + 1`, `max_on_hand = max_order + ⌈mean⌉`.
pub fn lost_sales_optimum(c: &LostSalesDp) -> Result<LostSalesSolution> {
    validate(c)?;
    let l = c.lead_time;
    let qmax = if c.max_order > 0 {
        c.max_order
    } else {
        (c.mean + 5.0 * c.mean.sqrt()).ceil() as usize + 1
    };
    let xmax = if c.max_on_hand > 0 {
        c.max_on_hand
    } else {
        qmax + c.mean.ceil() as usize
    };
    let pmf = poisson_pmf(c.mean, 1e-12);
    let nq = qmax + 1;
    let nx = xmax + 1;
    // Pipeline slots x_1..x_{L-1}: (L-1) digits base nq.
    let tails = nq.pow((l - 1) as u32);
    let n_states = nx * tails;
    if n_states > 40_000_000 {
        return Err(EnvError::Invalid {
            name: "lead_time",
            reason: format!("{n_states} states exceed the solver's limit; lower the caps or L"),
        });
    }
    // post-demand on-hand distribution P(post = k | x0) and expected period cost c(x0).
    let mut post: Vec<Vec<f64>> = Vec::with_capacity(nx);
    let mut cost = vec![0f64; nx];
    for x0 in 0..nx {
        let mut pk = vec![0f64; x0 + 1];
        let mut cst = 0.0;
        for (d, &pd) in pmf.iter().enumerate() {
            if d <= x0 {
                pk[x0 - d] += pd;
                cst += pd * c.h * (x0 - d) as f64;
            } else {
                pk[0] += pd;
                cst += pd * c.p * (d - x0) as f64;
            }
        }
        post.push(pk);
        cost[x0] = cst;
    }
    // State index: x0 * tails + t, t = x1*nq^{L-2} + ... + x_{L-1}.
    let mut v = vec![0f64; n_states];
    let mut v_new = vec![0f64; n_states];
    let mut policy = vec![0u16; n_states];
    let stride1 = if l >= 2 { nq.pow((l - 2) as u32) } else { 0 };
    let mut bounds = (f64::NEG_INFINITY, f64::INFINITY);
    let mut iterations = 0;
    let mut buf = vec![0f64; nq];
    for it in 0..c.max_iters {
        for x0 in 0..nx {
            let pk = &post[x0];
            for t in 0..tails {
                // x1 and the shifted tail (x2..x_{L-1}) of the next state.
                let (x1, rest) = if l >= 2 { (t / stride1, t % stride1) } else { (0, 0) };
                // E over demand of V(next) for each q: next = (min(k + x1, xmax), rest, q).
                buf.iter_mut().for_each(|b| *b = 0.0);
                for (k, &pkk) in pk.iter().enumerate() {
                    if pkk == 0.0 {
                        continue;
                    }
                    let y0 = (k + x1).min(xmax);
                    if l >= 2 {
                        let base = y0 * tails + rest * nq;
                        let row = &v[base..base + nq];
                        for (b, &vv) in buf.iter_mut().zip(row) {
                            *b += pkk * vv;
                        }
                    } else {
                        // L = 1: the order lands in on-hand directly.
                        for (q, b) in buf.iter_mut().enumerate() {
                            *b += pkk * v[(k + q).min(xmax)];
                        }
                    }
                }
                let (mut best, mut bq) = (f64::INFINITY, 0usize);
                for (q, &b) in buf.iter().enumerate() {
                    if b < best - 1e-15 {
                        best = b;
                        bq = q;
                    }
                }
                let s = x0 * tails + t;
                v_new[s] = cost[x0] + best;
                policy[s] = bq as u16;
            }
        }
        let (mut lo, mut hi) = (f64::INFINITY, f64::NEG_INFINITY);
        for (a, b) in v_new.iter().zip(&v) {
            let d = a - b;
            lo = lo.min(d);
            hi = hi.max(d);
        }
        bounds = (lo, hi);
        iterations = it + 1;
        let r = v_new[0];
        for (dst, src) in v.iter_mut().zip(&v_new) {
            *dst = src - r;
        }
        if hi - lo < c.tol {
            break;
        }
    }
    Ok(LostSalesSolution {
        optimal_cost: 0.5 * (bounds.0 + bounds.1),
        bounds,
        iterations,
        caps: (qmax, xmax),
        policy,
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn limits_are_typed_errors() {
        let e = lost_sales_optimum(&LostSalesDp {
            lead_time: 9,
            ..Default::default()
        })
        .unwrap_err();
        assert!(e.to_string().contains("1 <= L <= 6"), "{e}");
        assert!(lost_sales_optimum(&LostSalesDp {
            h: -1.0,
            ..Default::default()
        })
        .is_err());
        assert!(lost_sales_optimum(&LostSalesDp {
            p: f64::NAN,
            ..Default::default()
        })
        .is_err());
        assert!(lost_sales_optimum(&LostSalesDp {
            lead_time: 0,
            ..Default::default()
        })
        .is_err());
    }
}
