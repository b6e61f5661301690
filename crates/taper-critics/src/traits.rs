//! The model traits every algorithm's networks implement, so that code above the algorithms
//! (evaluation, diagnostics) works with any of them: [`Actor`] (a policy), [`Critic`] (a state
//! value) and [`QCritic`] (an action value with its action derivatives).
//!
//! All buffers are flat and row-major: `n` rows of observations `[n, obs_dim]`, actions
//! `[n, action_dim]`, logits `[n, logits_dim]`. Second derivatives come from finite
//! differences of first derivatives ([`QCritic::action_hvp`]): candle's double backward is not
//! usable, and the networks here have hand-written first derivatives only.

use crate::error::{check_len, Result};
use rand::RngCore;

/// A policy: observations to an action distribution, parameterised by "logits" (categorical
/// logits, or a Gaussian's mean).
pub trait Actor {
    /// Width of one observation as the network reads it.
    fn obs_dim(&self) -> usize;
    /// Width of one row of distribution parameters.
    fn logits_dim(&self) -> usize;
    /// Width of one action as stored (1 for a discrete action).
    fn action_dim(&self) -> usize;
    /// The distribution parameters of `n` observations, into `out` `[n, logits_dim]`.
    fn logits(&self, obs: &[f32], n: usize, out: &mut [f32]) -> Result<()>;
    /// Samples actions (or, with `deterministic`, takes the most likely) for `n` observations;
    /// writes the actions `[n, action_dim]` and their log-probabilities `[n]`.
    fn sample(
        &self,
        obs: &[f32],
        n: usize,
        rng: &mut dyn RngCore,
        deterministic: bool,
        actions: &mut [f32],
        logp: &mut [f32],
    ) -> Result<()>;
    /// Log-probabilities `[n]` and entropies `[n]` of given actions.
    fn log_prob_entropy(
        &self,
        obs: &[f32],
        actions: &[f32],
        n: usize,
        logp: &mut [f32],
        entropy: &mut [f32],
    ) -> Result<()>;
    /// The gradient of a scalar `s` of the logits with respect to the observations: given
    /// `∂s/∂logits` `[n, logits_dim]`, writes `∂s/∂obs` `[n, obs_dim]` (a vector–Jacobian
    /// product through the network).
    fn obs_gradient(&self, obs: &[f32], n: usize, dlogits: &[f32], dobs: &mut [f32]) -> Result<()>;
}

/// A state-value function `V(x)` of a critic input (an observation, or a global state).
pub trait Critic {
    /// Width of one input.
    fn input_dim(&self) -> usize;
    /// `V` of `n` inputs, into `out` `[n]`.
    fn values(&self, inputs: &[f32], n: usize, out: &mut [f32]) -> Result<()>;
}

/// An action-value function `Q(o, a)` of (joint) observations and (joint) actions, with its
/// derivatives in the actions.
pub trait QCritic {
    /// Width of one row of observations.
    fn obs_dim(&self) -> usize;
    /// Width of one row of actions.
    fn action_dim(&self) -> usize;
    /// `Q` of `n` rows, into `out` `[n]`.
    fn q_values(&self, obs: &[f32], actions: &[f32], n: usize, out: &mut [f32]) -> Result<()>;
    /// `∂Q/∂a` of `n` rows, into `out` `[n, action_dim]`.
    fn action_gradient(&self, obs: &[f32], actions: &[f32], n: usize, out: &mut [f32]) -> Result<()>;

    /// The Hessian–vector product `∇²_a Q · v` of each row, by central differences of the
    /// action gradient: `(∇_a Q(a + εv) − ∇_a Q(a − εv)) / 2ε`. Exact for `Q` quadratic in
    /// the actions; error `O(ε²)` otherwise.
    fn action_hvp(&self, obs: &[f32], actions: &[f32], v: &[f32], n: usize, eps: f32, out: &mut [f32]) -> Result<()> {
        let w = self.action_dim();
        check_len("actions", n * w, actions.len())?;
        check_len("direction", n * w, v.len())?;
        check_len("Hessian-vector product", n * w, out.len())?;
        if !(eps > 0.0 && eps.is_finite()) {
            return Err(crate::CriticError::Invalid {
                name: "eps",
                reason: format!("must be a positive step, got {eps}"),
            });
        }
        let plus: Vec<f32> = actions.iter().zip(v).map(|(a, d)| a + eps * d).collect();
        let minus: Vec<f32> = actions.iter().zip(v).map(|(a, d)| a - eps * d).collect();
        let mut gm = vec![0f32; n * w];
        self.action_gradient(obs, &plus, n, out)?;
        self.action_gradient(obs, &minus, n, &mut gm)?;
        for (o, m) in out.iter_mut().zip(&gm) {
            *o = (*o - m) / (2.0 * eps);
        }
        Ok(())
    }

    /// The directional curvature `vᵀ ∇²_a Q v` of each row, into `out` `[n]` (from
    /// [`QCritic::action_hvp`]).
    fn directional_curvature(
        &self,
        obs: &[f32],
        actions: &[f32],
        v: &[f32],
        n: usize,
        eps: f32,
        out: &mut [f32],
    ) -> Result<()> {
        let w = self.action_dim();
        check_len("curvature", n, out.len())?;
        let mut hv = vec![0f32; n * w];
        self.action_hvp(obs, actions, v, n, eps, &mut hv)?;
        for r in 0..n {
            out[r] = hv[r * w..(r + 1) * w]
                .iter()
                .zip(&v[r * w..(r + 1) * w])
                .map(|(a, b)| a * b)
                .sum();
        }
        Ok(())
    }
}

/// Test support: asserts that a critic's action gradient at `n` rows equals central
/// differences of its `Q` (step `h`) within `tol`.
#[cfg(test)]
pub(crate) fn assert_action_gradient_matches_fd(q: &dyn QCritic, obs: &[f32], act: &[f32], n: usize, h: f32, tol: f32) {
    let w = q.action_dim();
    let mut g = vec![0f32; n * w];
    q.action_gradient(obs, act, n, &mut g).unwrap();
    for j in 0..n * w {
        let (mut p, mut m) = (act.to_vec(), act.to_vec());
        p[j] += h;
        m[j] -= h;
        let (mut qp, mut qm) = (vec![0f32; n], vec![0f32; n]);
        q.q_values(obs, &p, n, &mut qp).unwrap();
        q.q_values(obs, &m, n, &mut qm).unwrap();
        let fd = (qp[j / w] - qm[j / w]) / (2.0 * h);
        assert!((fd - g[j]).abs() < tol, "action {j}: fd {fd} vs {}", g[j]);
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// `Q(o, a) = o·Σa + ½ aᵀ A a` with a symmetric `A`: `∇_a Q = o·1 + A a`, `∇²_a Q = A`.
    struct Quadratic {
        a: [[f32; 2]; 2],
    }

    impl QCritic for Quadratic {
        fn obs_dim(&self) -> usize {
            1
        }
        fn action_dim(&self) -> usize {
            2
        }
        fn q_values(&self, obs: &[f32], act: &[f32], n: usize, out: &mut [f32]) -> Result<()> {
            for r in 0..n {
                let x = &act[2 * r..2 * r + 2];
                let quad: f32 = (0..2)
                    .map(|i| (0..2).map(|j| x[i] * self.a[i][j] * x[j]).sum::<f32>())
                    .sum();
                out[r] = obs[r] * (x[0] + x[1]) + 0.5 * quad;
            }
            Ok(())
        }
        fn action_gradient(&self, obs: &[f32], act: &[f32], n: usize, out: &mut [f32]) -> Result<()> {
            for r in 0..n {
                let x = &act[2 * r..2 * r + 2];
                for i in 0..2 {
                    out[2 * r + i] = obs[r] + self.a[i][0] * x[0] + self.a[i][1] * x[1];
                }
            }
            Ok(())
        }
    }

    /// The finite-difference Hessian–vector product is exact on a quadratic (to rounding),
    /// whatever the step, and the curvature is `vᵀAv`.
    #[test]
    fn hvp_by_finite_differences_is_exact_on_a_quadratic() {
        let q = Quadratic {
            a: [[2.0, -0.5], [-0.5, 3.0]],
        };
        let obs = [0.7f32, -1.2];
        let act = [0.3f32, -0.4, 1.5, 0.25];
        let v = [1.0f32, 2.0, -0.5, 0.5];
        for eps in [1e-2f32, 1e-1, 1.0] {
            let mut hv = [0f32; 4];
            q.action_hvp(&obs, &act, &v, 2, eps, &mut hv).unwrap();
            for r in 0..2 {
                let d = &v[2 * r..2 * r + 2];
                for i in 0..2 {
                    let want = q.a[i][0] * d[0] + q.a[i][1] * d[1];
                    assert!(
                        (hv[2 * r + i] - want).abs() < 1e-3,
                        "eps {eps}: {} vs {want}",
                        hv[2 * r + i]
                    );
                }
            }
            let mut c = [0f32; 2];
            q.directional_curvature(&obs, &act, &v, 2, eps, &mut c).unwrap();
            // vᵀAv for v = (1, 2): 2 − 2 + 12 = 12; for (−0.5, 0.5): 0.5 + 0.25 + 0.75 = 1.5.
            assert!((c[0] - 12.0).abs() < 1e-3 && (c[1] - 1.5).abs() < 1e-3, "{c:?}");
        }
        let mut hv = [0f32; 4];
        assert!(q.action_hvp(&obs, &act, &v, 2, 0.0, &mut hv).is_err());
        assert!(q.action_hvp(&obs, &act, &v[..2], 2, 0.1, &mut hv).is_err());
    }
}
