//! [`ValueCritic`], an MLP `V(x)` as CleanRL's (tanh, orthogonal init) with a scalar output or a
//! categorical head ([`Categorical`]), and CleanRL's plain and clipped value loss
//! ([`value_loss`]) with its gradient.

use crate::categorical::Categorical;
use crate::error::Result;
use crate::traits::Critic;
use crate::CriticError;
use rand::Rng;
use serde::{Deserialize, Serialize};
use taper_tensor::mlp::{Activation, Mlp, MlpCache, MlpInit};

/// A state-value critic: an MLP with tanh hidden layers, initialised as CleanRL's (orthogonal,
/// gain √2 hidden and 1.0 at the output, zero biases), with one output (`V` itself) or, with a
/// categorical head, one logit per bin (`V` the mean of their softmax over the bin centres).
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct ValueCritic {
    /// The network.
    pub net: Mlp,
    /// The categorical head, if the network's outputs are bin logits.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub head: Option<Categorical>,
}

impl ValueCritic {
    /// A critic for `obs_dim`-wide observations with the given hidden widths.
    pub fn new<R: Rng + ?Sized>(obs_dim: usize, hidden: &[usize], rng: &mut R) -> Result<Self> {
        let mut sizes = vec![obs_dim];
        sizes.extend_from_slice(hidden);
        sizes.push(1);
        let net = Mlp::new(&sizes, Activation::Tanh, MlpInit::orthogonal(2f32.sqrt(), 1.0), rng)?;
        Ok(ValueCritic { net, head: None })
    }
    /// A critic with a categorical head: the same network with `head.bins()` outputs.
    pub fn categorical<R: Rng + ?Sized>(
        obs_dim: usize,
        hidden: &[usize],
        head: Categorical,
        rng: &mut R,
    ) -> Result<Self> {
        let mut sizes = vec![obs_dim];
        sizes.extend_from_slice(hidden);
        sizes.push(head.bins());
        let net = Mlp::new(&sizes, Activation::Tanh, MlpInit::orthogonal(2f32.sqrt(), 1.0), rng)?;
        Ok(ValueCritic { net, head: Some(head) })
    }
    /// The network's outputs for `batch` observations `[batch, obs_dim]`: `V` itself `[batch]`,
    /// or the bin logits `[batch, bins]` with a categorical head. Activations stay in `cache`
    /// for a backward pass.
    pub fn forward<'c>(&self, obs: &[f32], batch: usize, cache: &'c mut MlpCache) -> Result<&'c [f32]> {
        Ok(self.net.forward(obs, batch, cache)?)
    }
    /// `V(s)` for `batch` observations into `out` `[batch]` (through the head's softmax where
    /// there is one).
    pub fn values_into(&self, obs: &[f32], batch: usize, cache: &mut MlpCache, out: &mut [f32]) -> Result<()> {
        crate::error::check_len("values", batch, out.len())?;
        let y = self.net.forward(obs, batch, cache)?;
        match &self.head {
            None => out.copy_from_slice(y),
            Some(h) => h.values(y, batch, out)?,
        }
        Ok(())
    }
}

/// CleanRL's value loss, `0.5 · mean(max((V − R)², (V_clip − R)²))` with
/// `V_clip = V_old + clip(V − V_old, −ε, ε)` when `clip = Some(ε)`, or `0.5 · mean((V − R)²)`.
/// Writes `∂loss/∂V` into `dv` and returns the loss.
pub fn value_loss(new_v: &[f32], old_v: &[f32], returns: &[f32], clip: Option<f32>, dv: &mut [f32]) -> Result<f32> {
    let n = new_v.len();
    for (what, len) in [
        ("old values", old_v.len()),
        ("returns", returns.len()),
        ("value gradient", dv.len()),
    ] {
        if len != n {
            return Err(CriticError::Shape {
                what,
                expected: n,
                got: len,
            });
        }
    }
    if n == 0 {
        return Ok(0.0);
    }
    let inv = 1.0 / n as f32;
    let mut loss = 0f64;
    for i in 0..n {
        let (v, r) = (new_v[i], returns[i]);
        let un = (v - r) * (v - r);
        match clip {
            Some(eps) => {
                let d = v - old_v[i];
                let inside = d > -eps && d < eps;
                let vc = old_v[i] + d.clamp(-eps, eps);
                let cl = (vc - r) * (vc - r);
                if un >= cl {
                    loss += un as f64;
                    dv[i] = (v - r) * inv;
                } else {
                    loss += cl as f64;
                    dv[i] = if inside { (vc - r) * inv } else { 0.0 };
                }
            }
            None => {
                loss += un as f64;
                dv[i] = (v - r) * inv;
            }
        }
    }
    Ok((0.5 * loss / n as f64) as f32)
}

impl Critic for ValueCritic {
    fn input_dim(&self) -> usize {
        self.net.input_dim()
    }
    fn values(&self, inputs: &[f32], n: usize, out: &mut [f32]) -> Result<()> {
        self.values_into(inputs, n, &mut MlpCache::default(), out)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn clipped_loss_hand_computed() {
        // v moved from 0 to 1 with ε = 0.2 and return 2: unclipped (1−2)² = 1,
        // clipped (0.2−2)² = 3.24 wins, its gradient is 0 (outside the clip range).
        let mut dv = [0f32; 1];
        let l = value_loss(&[1.0], &[0.0], &[2.0], Some(0.2), &mut dv).unwrap();
        assert!((l - 0.5 * 3.24).abs() < 1e-6 && dv[0] == 0.0);
        // Unclipped branch wins: v = 1.9 from 0, return 2.
        let l = value_loss(&[1.9], &[0.0], &[2.0], Some(0.2), &mut dv).unwrap();
        assert!((l - 0.5 * 3.24).abs() < 1e-5 && dv[0] == 0.0);
        let l = value_loss(&[0.1], &[0.0], &[2.0], Some(0.2), &mut dv).unwrap();
        assert!((l - 0.5 * 3.61).abs() < 1e-5 && (dv[0] + 1.9).abs() < 1e-6);
        let l = value_loss(&[1.0, 3.0], &[0.0, 0.0], &[2.0, 2.0], None, &mut [0.0; 2]).unwrap();
        assert!((l - 0.5).abs() < 1e-6);
    }

    #[test]
    fn gradient_matches_finite_differences() {
        let old = [0.0f32, 0.5, -0.3, 1.0];
        let ret = [1.0f32, -0.5, 0.2, 1.05];
        let v = [0.1f32, 0.2, -0.6, 1.5];
        let mut dv = [0f32; 4];
        value_loss(&v, &old, &ret, Some(0.2), &mut dv).unwrap();
        for i in 0..4 {
            let h = 1e-3;
            let mut vp = v;
            vp[i] += h;
            let mut vm = v;
            vm[i] -= h;
            let fd = (value_loss(&vp, &old, &ret, Some(0.2), &mut [0.0; 4]).unwrap()
                - value_loss(&vm, &old, &ret, Some(0.2), &mut [0.0; 4]).unwrap())
                / (2.0 * h);
            assert!((fd - dv[i]).abs() < 1e-3, "{i}: {fd} vs {}", dv[i]);
        }
    }
}
