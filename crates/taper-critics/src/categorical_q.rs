//! [`CategoricalQ`]: an action-value MLP on `[o, a]` with a categorical head (HL-Gauss or
//! two-hot, see [`crate::categorical`]): `Q` is the mean of the softmax over the bin centres,
//! learned by cross-entropy against the encoded TD target ([`Categorical::loss`]), and its
//! action gradient runs through the softmax: `∂Q/∂z_i = p_i·(c_i − Q)`.

use crate::categorical::Categorical;
use crate::error::{check_len, Result};
use crate::q::{action_columns, join_rows};
use crate::traits::QCritic;
use rand::Rng;
use serde::{Deserialize, Serialize};
use taper_tensor::mlp::{Activation, Mlp, MlpCache, MlpInit};

/// `Q(o, a)` read from `bins` logits.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct CategoricalQ {
    /// The network, `obs_dim + action_dim` inputs, one output per bin.
    pub net: Mlp,
    /// The head.
    pub head: Categorical,
    obs_dim: usize,
}

impl CategoricalQ {
    /// A critic for `obs_dim` observation values and `action_dim` action values per row.
    pub fn new<R: Rng + ?Sized>(
        obs_dim: usize,
        action_dim: usize,
        hidden: &[usize],
        activation: Activation,
        init: MlpInit,
        head: Categorical,
        rng: &mut R,
    ) -> Result<Self> {
        let mut sizes = vec![obs_dim + action_dim];
        sizes.extend_from_slice(hidden);
        sizes.push(head.bins());
        Ok(CategoricalQ {
            net: Mlp::new(&sizes, activation, init, rng)?,
            head,
            obs_dim,
        })
    }

    /// The bin logits `[n, bins]` of `n` joined rows `[n, obs_dim + action_dim]`; activations
    /// stay in `cache` for a backward pass with [`Categorical::loss`]'s gradient.
    pub fn logits<'c>(&self, joined: &[f32], n: usize, cache: &'c mut MlpCache) -> Result<&'c [f32]> {
        Ok(self.net.forward(joined, n, cache)?)
    }

    fn join(&self, obs: &[f32], actions: &[f32], n: usize) -> Result<Vec<f32>> {
        join_rows(obs, actions, n, self.obs_dim, self.action_dim())
    }
}

impl QCritic for CategoricalQ {
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
        let z = self.net.forward(&x, n, &mut cache)?;
        self.head.values(z, n, out)
    }
    fn action_gradient(&self, obs: &[f32], actions: &[f32], n: usize, out: &mut [f32]) -> Result<()> {
        let (od, ad, m) = (self.obs_dim, self.action_dim(), self.head.bins());
        check_len("action gradient", n * ad, out.len())?;
        let x = self.join(obs, actions, n)?;
        let mut cache = MlpCache::default();
        let z = self.net.forward(&x, n, &mut cache)?;
        let mut dz = vec![0f32; n * m];
        self.head.value_grads(z, n, &mut dz)?;
        let mut dx = vec![0f32; n * (od + ad)];
        self.net.input_gradient(&x, n, &dz, &mut dx)?;
        action_columns(&dx, n, od, ad, out);
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::categorical::Encoding;
    use taper_tensor::rng::{stream, Purpose};

    /// The action gradient through the softmax head against central differences of `Q`, for
    /// both encodings' heads (the head's encoding does not change `Q`, only its loss).
    #[test]
    fn action_gradient_matches_finite_differences() {
        for enc in [Encoding::HlGauss { sigma_ratio: 0.75 }, Encoding::TwoHot] {
            let head = Categorical::new(-3.0, 3.0, 21, enc).unwrap();
            let mut rng = stream(4, Purpose::Init, 0);
            let q =
                CategoricalQ::new(3, 2, &[16, 16], Activation::Tanh, MlpInit::TorchDefault, head, &mut rng).unwrap();
            let obs = [0.2f32, -0.4, 0.9, 1.1, 0.3, -0.7];
            let act = [0.5f32, -0.25, -0.6, 0.8];
            crate::traits::assert_action_gradient_matches_fd(&q, &obs, &act, 2, 1e-2, 1e-3);
            assert!(q.q_values(&obs[..5], &act, 2, &mut [0.0; 2]).is_err());
        }
    }

    /// A few steps of the cross-entropy loss against fixed targets move `Q` toward them.
    #[test]
    fn the_loss_fits_targets() {
        let head = Categorical::hl_gauss(-5.0, 5.0, 51).unwrap();
        let mut rng = stream(2, Purpose::Init, 0);
        let mut q = CategoricalQ::new(1, 1, &[32], Activation::Tanh, MlpInit::TorchDefault, head, &mut rng).unwrap();
        let (obs, act) = ([0.5f32, -0.5, 0.1], [0.3f32, -0.2, 0.9]);
        let targets = [2.0f32, -1.5, 0.5];
        let x: Vec<f32> = (0..3).flat_map(|r| [obs[r], act[r]]).collect();
        let mut cache = MlpCache::default();
        let mut grads = vec![0f32; q.net.num_params()];
        let mut dz = vec![0f32; 3 * 51];
        for _ in 0..400 {
            let z = q.logits(&x, 3, &mut cache).unwrap().to_vec();
            q.head.loss(&z, &targets, 3, &mut dz).unwrap();
            grads.fill(0.0);
            q.net.backward(&x, &mut cache, &dz, &mut grads).unwrap();
            for (p, g) in q.net.params_mut().iter_mut().zip(&grads) {
                *p -= 0.5 * g;
            }
        }
        let mut v = [0f32; 3];
        q.q_values(&obs, &act, 3, &mut v).unwrap();
        for r in 0..3 {
            assert!((v[r] - targets[r]).abs() < 0.1, "row {r}: {} vs {}", v[r], targets[r]);
        }
    }
}
