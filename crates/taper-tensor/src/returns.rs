//! Generalized advantage estimation and discounted returns, time-major `[T, N]`.
//!
//! Terminated and truncated steps are treated apart: a terminated transition bootstraps from
//! 0, a truncated one (a time limit) bootstraps from the value of its *final* observation,
//! and both cut the trace, because the next row of the buffer starts a new episode.
//!
//! ```
//! use taper_tensor::returns::{gae, GaeInput};
//! // One env, two steps, the episode terminates at step 1.
//! let (adv, ret) = gae(&GaeInput {
//!     num_envs: 1,
//!     rewards: &[1.0, 1.0],
//!     values: &[0.5, 0.5],
//!     terminated: &[false, true],
//!     truncated: &[false, false],
//!     final_values: &[0.0, 0.0],
//!     last_values: &[9.0],
//!     gamma: 0.9,
//!     lambda: 1.0,
//! }).unwrap();
//! assert!((adv[1] - 0.5).abs() < 1e-6);               // 1 - 0.5
//! assert!((ret[0] - (1.0 + 0.9 * 1.0)).abs() < 1e-6);  // Monte-Carlo return at λ = 1
//! ```

use crate::error::{check_len, Result, TensorError};

/// Inputs of [`gae`]; every `[T, N]` buffer is time-major and flat.
#[derive(Debug, Clone, Copy)]
pub struct GaeInput<'a> {
    /// N, the number of parallel envs.
    pub num_envs: usize,
    /// `r_t`, `[T, N]`.
    pub rewards: &'a [f32],
    /// `V(s_t)`, `[T, N]`.
    pub values: &'a [f32],
    /// Whether transition t reached a terminal state, `[T, N]`.
    pub terminated: &'a [bool],
    /// Whether transition t was cut by a time limit, `[T, N]`.
    pub truncated: &'a [bool],
    /// `V(final observation)` where `truncated`, `[T, N]` (ignored elsewhere).
    pub final_values: &'a [f32],
    /// `V(s_T)`, the value of the observation after the last step, `[N]`.
    pub last_values: &'a [f32],
    /// Discount γ.
    pub gamma: f32,
    /// GAE λ.
    pub lambda: f32,
}

/// Returns `(advantages, returns)`, both `[T, N]`, with `returns = advantages + values`.
pub fn gae(inp: &GaeInput<'_>) -> Result<(Vec<f32>, Vec<f32>)> {
    let mut adv = vec![0f32; inp.rewards.len()];
    let mut ret = vec![0f32; inp.rewards.len()];
    gae_into(inp, &mut adv, &mut ret)?;
    Ok((adv, ret))
}

/// [`gae`] into caller-owned buffers.
pub fn gae_into(inp: &GaeInput<'_>, adv: &mut [f32], ret: &mut [f32]) -> Result<()> {
    let n = inp.num_envs;
    if n == 0 {
        return Err(TensorError::Invalid {
            name: "num_envs",
            reason: "must be positive".into(),
        });
    }
    let len = inp.rewards.len();
    if !len.is_multiple_of(n) {
        return Err(TensorError::Shape {
            what: "rewards (not a multiple of num_envs)",
            expected: (len / n + 1) * n,
            got: len,
        });
    }
    check_len("values", len, inp.values.len())?;
    check_len("terminated", len, inp.terminated.len())?;
    check_len("truncated", len, inp.truncated.len())?;
    check_len("final_values", len, inp.final_values.len())?;
    check_len("last_values", n, inp.last_values.len())?;
    check_len("advantages", len, adv.len())?;
    check_len("returns", len, ret.len())?;
    let t_len = len / n;
    let (g, gl) = (inp.gamma, inp.gamma * inp.lambda);
    for e in 0..n {
        let mut last = 0f32;
        for t in (0..t_len).rev() {
            let i = t * n + e;
            let next_v = if t + 1 == t_len {
                inp.last_values[e]
            } else {
                inp.values[i + n]
            };
            let (boot, cont) = if inp.terminated[i] {
                (0.0, 0.0)
            } else if inp.truncated[i] {
                (inp.final_values[i], 0.0)
            } else {
                (next_v, 1.0)
            };
            let delta = inp.rewards[i] + g * boot - inp.values[i];
            last = delta + gl * cont * last;
            adv[i] = last;
            ret[i] = last + inp.values[i];
        }
    }
    Ok(())
}

/// Discounted returns `G_t = r_t + γ G_{t+1}`, cut where `done[t]`, bootstrapped with
/// `last_values` after the final row. `[T, N]` in, `[T, N]` out.
pub fn discounted_returns(
    num_envs: usize,
    rewards: &[f32],
    dones: &[bool],
    last_values: &[f32],
    gamma: f32,
) -> Result<Vec<f32>> {
    if num_envs == 0 || !rewards.len().is_multiple_of(num_envs) {
        return Err(TensorError::Invalid {
            name: "num_envs",
            reason: format!("{} rewards do not split into {num_envs} envs", rewards.len()),
        });
    }
    check_len("dones", rewards.len(), dones.len())?;
    check_len("last_values", num_envs, last_values.len())?;
    let t_len = rewards.len() / num_envs;
    let mut out = vec![0f32; rewards.len()];
    for e in 0..num_envs {
        let mut g = last_values[e];
        for t in (0..t_len).rev() {
            let i = t * num_envs + e;
            if dones[i] {
                g = 0.0;
            }
            g = rewards[i] + gamma * g;
            out[i] = g;
        }
    }
    Ok(out)
}

#[cfg(test)]
mod tests {
    use super::*;
    use proptest::prelude::*;

    /// Hand-computed: γ = 0.5, λ = 0.5, one env, three steps, a truncation at step 1.
    #[test]
    fn hand_computed_truncation() {
        let (adv, ret) = gae(&GaeInput {
            num_envs: 1,
            rewards: &[1.0, 2.0, 3.0],
            values: &[1.0, 1.0, 1.0],
            terminated: &[false, false, false],
            truncated: &[false, true, false],
            final_values: &[0.0, 4.0, 0.0],
            last_values: &[2.0],
            gamma: 0.5,
            lambda: 0.5,
        })
        .unwrap();
        // t=2: δ = 3 + 0.5·2 − 1 = 3; A = 3.
        // t=1: δ = 2 + 0.5·4 − 1 = 3 (bootstraps from the final obs); trace cut: A = 3.
        // t=0: δ = 1 + 0.5·1 − 1 = 0.5; A = 0.5 + 0.25·3 = 1.25.
        assert_eq!(adv, vec![1.25, 3.0, 3.0]);
        assert_eq!(ret, vec![2.25, 4.0, 4.0]);
    }

    #[test]
    fn discounted_returns_hand_computed() {
        let r = discounted_returns(1, &[1.0, 1.0, 1.0], &[false, true, false], &[10.0], 0.5).unwrap();
        assert_eq!(r, vec![1.5, 1.0, 6.0]);
    }

    #[test]
    fn bad_shapes_are_errors() {
        let r = gae(&GaeInput {
            num_envs: 2,
            rewards: &[1.0, 2.0],
            values: &[1.0],
            terminated: &[false, false],
            truncated: &[false, false],
            final_values: &[0.0, 0.0],
            last_values: &[0.0, 0.0],
            gamma: 0.9,
            lambda: 0.9,
        });
        assert!(r.is_err());
    }

    /// A naive reference: for each (t, e), sum (γλ)^k δ_{t+k} over the episode's remaining
    /// steps in the buffer.
    #[allow(clippy::too_many_arguments)]
    fn naive(
        n: usize,
        r: &[f32],
        v: &[f32],
        term: &[bool],
        trunc: &[bool],
        fv: &[f32],
        lv: &[f32],
        g: f32,
        l: f32,
    ) -> Vec<f32> {
        let t_len = r.len() / n;
        let delta = |t: usize, e: usize| -> f64 {
            let i = t * n + e;
            let next = if term[i] {
                0.0
            } else if trunc[i] {
                fv[i] as f64
            } else if t + 1 == t_len {
                lv[e] as f64
            } else {
                v[i + n] as f64
            };
            r[i] as f64 + g as f64 * next - v[i] as f64
        };
        let mut out = vec![0f32; r.len()];
        for e in 0..n {
            for t in 0..t_len {
                let mut s = 0f64;
                let mut w = 1f64;
                for k in t..t_len {
                    s += w * delta(k, e);
                    let i = k * n + e;
                    if term[i] || trunc[i] {
                        break;
                    }
                    w *= (g * l) as f64;
                }
                out[t * n + e] = s as f32;
            }
        }
        out
    }

    proptest! {
        #[test]
        fn matches_naive_reference(
            n in 1usize..4,
            t_len in 1usize..20,
            seed in any::<u64>(),
            g in 0.0f32..1.0,
            l in 0.0f32..1.0,
        ) {
            use rand::{Rng, SeedableRng};
            let mut rng = rand_chacha::ChaCha8Rng::seed_from_u64(seed);
            let len = n * t_len;
            let r: Vec<f32> = (0..len).map(|_| rng.random_range(-1.0..1.0)).collect();
            let v: Vec<f32> = (0..len).map(|_| rng.random_range(-1.0..1.0)).collect();
            let term: Vec<bool> = (0..len).map(|_| rng.random_bool(0.1)).collect();
            let trunc: Vec<bool> = (0..len).map(|_| rng.random_bool(0.1)).collect();
            let fv: Vec<f32> = (0..len).map(|_| rng.random_range(-1.0..1.0)).collect();
            let lv: Vec<f32> = (0..n).map(|_| rng.random_range(-1.0..1.0)).collect();
            let (adv, ret) = gae(&GaeInput { num_envs: n, rewards: &r, values: &v, terminated: &term,
                truncated: &trunc, final_values: &fv, last_values: &lv, gamma: g, lambda: l }).unwrap();
            let want = naive(n, &r, &v, &term, &trunc, &fv, &lv, g, l);
            for i in 0..len {
                prop_assert!((adv[i] - want[i]).abs() < 1e-4, "{} vs {}", adv[i], want[i]);
                prop_assert!((ret[i] - adv[i] - v[i]).abs() < 1e-5);
            }
        }
    }
}
