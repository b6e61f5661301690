//! [`MlpQ`]: an action-value MLP `Q(o, a)` reading the observations and the actions
//! concatenated (`[o, a]`, as MADDPG's centralized critics), with `∂Q/∂a` from its hand-written
//! backward pass; and the squared TD loss [`td_loss`].

use crate::error::{check_len, Result};
use crate::traits::QCritic;
use rand::Rng;
use serde::{Deserialize, Serialize};
use taper_tensor::mlp::{Activation, Mlp, MlpCache, MlpInit};

/// `Q(o, a)`: an MLP on `[o, a]` with one output. Hidden layers use the given activation (tanh
/// keeps `Q` smooth in the actions, so its action derivatives exist everywhere).
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct MlpQ {
    /// The network, `obs_dim + action_dim` inputs, one output.
    pub net: Mlp,
    obs_dim: usize,
}

impl MlpQ {
    /// A critic for `obs_dim` observation values and `action_dim` action values per row.
    pub fn new<R: Rng + ?Sized>(
        obs_dim: usize,
        action_dim: usize,
        hidden: &[usize],
        activation: Activation,
        init: MlpInit,
        rng: &mut R,
    ) -> Result<Self> {
        let mut sizes = vec![obs_dim + action_dim];
        sizes.extend_from_slice(hidden);
        sizes.push(1);
        Ok(MlpQ {
            net: Mlp::new(&sizes, activation, init, rng)?,
            obs_dim,
        })
    }

    /// Wraps a network whose first `obs_dim` inputs are observations and the rest actions.
    pub fn from_net(net: Mlp, obs_dim: usize) -> Result<Self> {
        if net.output_dim() != 1 || net.input_dim() <= obs_dim {
            return Err(crate::CriticError::Invalid {
                name: "net",
                reason: format!(
                    "a Q network needs more than {obs_dim} inputs and one output, got {} and {}",
                    net.input_dim(),
                    net.output_dim()
                ),
            });
        }
        Ok(MlpQ { net, obs_dim })
    }

    /// `Q` of `n` joined rows `[n, obs_dim + action_dim]`; activations stay in `cache`.
    pub fn forward<'c>(&self, joined: &[f32], n: usize, cache: &'c mut MlpCache) -> Result<&'c [f32]> {
        Ok(self.net.forward(joined, n, cache)?)
    }

    /// `∂Q/∂[o, a]` of `n` joined rows, into `dx` `[n, obs_dim + action_dim]`.
    pub fn input_gradient(&self, joined: &[f32], n: usize, dx: &mut [f32]) -> Result<()> {
        Ok(self.net.input_gradient(joined, n, &vec![1.0; n], dx)?)
    }

    fn join(&self, obs: &[f32], actions: &[f32], n: usize) -> Result<Vec<f32>> {
        join_rows(obs, actions, n, self.obs_dim, self.action_dim())
    }
}

/// `n` rows of observations `[n, od]` and actions `[n, ad]` side by side, `[n, od + ad]`: the
/// input of a critic on `[o, a]`.
pub(crate) fn join_rows(obs: &[f32], actions: &[f32], n: usize, od: usize, ad: usize) -> Result<Vec<f32>> {
    check_len("observations", n * od, obs.len())?;
    check_len("actions", n * ad, actions.len())?;
    let mut x = Vec::with_capacity(n * (od + ad));
    for r in 0..n {
        x.extend_from_slice(&obs[r * od..(r + 1) * od]);
        x.extend_from_slice(&actions[r * ad..(r + 1) * ad]);
    }
    Ok(x)
}

/// The action columns of `n` joined-row gradients `dx` `[n, od + ad]`, into `out` `[n, ad]`.
pub(crate) fn action_columns(dx: &[f32], n: usize, od: usize, ad: usize, out: &mut [f32]) {
    for r in 0..n {
        out[r * ad..(r + 1) * ad].copy_from_slice(&dx[r * (od + ad) + od..(r + 1) * (od + ad)]);
    }
}

impl QCritic for MlpQ {
    fn obs_dim(&self) -> usize {
        self.obs_dim
    }
    fn action_dim(&self) -> usize {
        self.net.input_dim() - self.obs_dim
    }
    fn q_values(&self, obs: &[f32], actions: &[f32], n: usize, out: &mut [f32]) -> Result<()> {
        check_len("Q values", n, out.len())?;
        let x = self.join(obs, actions, n)?;
        let mut cache = MlpCache::default();
        out.copy_from_slice(self.net.forward(&x, n, &mut cache)?);
        Ok(())
    }
    fn action_gradient(&self, obs: &[f32], actions: &[f32], n: usize, out: &mut [f32]) -> Result<()> {
        let (od, ad) = (self.obs_dim, self.action_dim());
        check_len("action gradient", n * ad, out.len())?;
        let x = self.join(obs, actions, n)?;
        let mut dx = vec![0f32; n * (od + ad)];
        self.input_gradient(&x, n, &mut dx)?;
        action_columns(&dx, n, od, ad, out);
        Ok(())
    }
}

/// The squared TD loss `mean((Q − y)²)` over the rows, with `∂loss/∂Q` written into `dq`.
/// The sum runs in f64 in row order.
pub fn td_loss(q: &[f32], targets: &[f32], dq: &mut [f32]) -> Result<f64> {
    let n = q.len();
    check_len("TD targets", n, targets.len())?;
    check_len("Q gradient", n, dq.len())?;
    let mut loss = 0f64;
    for r in 0..n {
        let e = q[r] - targets[r];
        loss += (e * e) as f64;
        dq[r] = 2.0 * e / n as f32;
    }
    Ok(loss / n.max(1) as f64)
}

#[cfg(test)]
mod tests {
    use super::*;
    use taper_tensor::rng::{stream, Purpose};

    /// `∂Q/∂a` from the backward pass equals central finite differences of `Q`, and the
    /// finite-difference Hessian–vector product is symmetric (`uᵀHv = vᵀHu`) to its error.
    #[test]
    fn action_derivatives_match_finite_differences() {
        let mut rng = stream(1, Purpose::Init, 0);
        let q = MlpQ::new(3, 2, &[16, 16], Activation::Tanh, MlpInit::TorchDefault, &mut rng).unwrap();
        let obs = [0.2f32, -0.4, 0.9, 1.1, 0.3, -0.7];
        let act = [0.5f32, -0.25, -0.6, 0.8];
        crate::traits::assert_action_gradient_matches_fd(&q, &obs, &act, 2, 1e-2, 1e-3);
        let (u, v) = ([1.0f32, 0.0, 0.3, -1.0], [0.0f32, 1.0, 0.8, 0.2]);
        let (mut hu, mut hv) = ([0f32; 4], [0f32; 4]);
        q.action_hvp(&obs, &act, &u, 2, 1e-2, &mut hu).unwrap();
        q.action_hvp(&obs, &act, &v, 2, 1e-2, &mut hv).unwrap();
        for r in 0..2 {
            let vhu: f32 = (0..2).map(|i| v[2 * r + i] * hu[2 * r + i]).sum();
            let uhv: f32 = (0..2).map(|i| u[2 * r + i] * hv[2 * r + i]).sum();
            assert!((vhu - uhv).abs() < 2e-3, "row {r}: {vhu} vs {uhv}");
        }
        assert!(q.q_values(&obs[..5], &act, 2, &mut [0.0; 2]).is_err());
    }

    #[test]
    fn td_loss_and_its_gradient() {
        let mut dq = [0f32; 2];
        let l = td_loss(&[1.0, 3.0], &[0.0, 1.0], &mut dq).unwrap();
        assert_eq!(l, 2.5);
        assert_eq!(dq, [1.0, 2.0]);
        assert!(td_loss(&[1.0], &[0.0, 1.0], &mut dq).is_err());
    }
}
