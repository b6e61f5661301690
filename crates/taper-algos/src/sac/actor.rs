//! [`SquashedActor`]: the tanh-squashed Gaussian policy of SAC, DSAC-T and STAC on a flat
//! MLP. One network gives `2·d` outputs per row, the means and the raw log-stds (the shared
//! trunk with two heads of CleanRL's SAC and of DSAC-T's `mlp_shared` policy); the raw
//! log-std is bounded by the reference's [`LogStdBound`]. Sampling keeps, per row, the
//! derivatives of the action and of its log-probability at the drawn noise, so that
//! [`SquashedActor::backward`] can take any loss of the actions and log-probabilities back to
//! the parameters (the reparameterisation trick).

use super::net::{Net, NetCache};
use crate::error::{AlgoError, Result};
use rand::{Rng, RngCore};
use rand_distr::StandardNormal;
use serde::{Deserialize, Serialize};
use taper_tensor::mlp::{Activation, Mlp, MlpInit};
use taper_tensor::norm_mlp::NormMlp;
use taper_tensor::squashed::{LogStdBound, SquashedSample, TanhGaussian};

/// A tanh-squashed Gaussian policy over a box.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct SquashedActor {
    /// The network: observations to `[means, raw log-stds]`.
    pub net: Net,
    low: Vec<f32>,
    high: Vec<f32>,
    log_std: LogStdBound,
}

/// A batch of samples with what [`SquashedActor::backward`] needs.
#[derive(Debug, Default, Clone)]
pub struct ActorSamples {
    /// The network's activations.
    pub cache: NetCache,
    /// The actions `[n, d]`.
    pub actions: Vec<f32>,
    /// Their log-probabilities `[n]`.
    pub logp: Vec<f32>,
    rows: usize,
    // Per row and dimension: ∂a/∂μ, ∂a/∂logσ, ∂logπ/∂μ, ∂logπ/∂logσ, ∂logσ/∂raw.
    da_dmu: Vec<f32>,
    da_dls: Vec<f32>,
    dlp_dmu: Vec<f32>,
    dlp_dls: Vec<f32>,
    dls_draw: Vec<f32>,
    dout: Vec<f32>,
    one: Option<SquashedSample>,
}

impl SquashedActor {
    /// An actor for `obs_dim` observation values and the box `[low, high]`, with the given
    /// hidden widths and activation and PyTorch's default initialisation; with `norm =
    /// Some(p)`, STAC's blocks with dropout `p` and LayerNorm (ReLU) instead.
    #[allow(clippy::too_many_arguments)]
    pub fn new<R: Rng + ?Sized>(
        obs_dim: usize,
        low: &[f32],
        high: &[f32],
        hidden: &[usize],
        activation: Activation,
        norm: Option<f32>,
        log_std: LogStdBound,
        rng: &mut R,
    ) -> Result<Self> {
        if low.len() != high.len()
            || low.is_empty()
            || low.iter().zip(high).any(|(l, h)| !(l < h && (h - l).is_finite()))
        {
            return Err(AlgoError::Config {
                field: "env",
                reason: format!("the action box needs finite bounds with low < high, got {low:?} and {high:?}"),
            });
        }
        let mut sizes = vec![obs_dim];
        sizes.extend_from_slice(hidden);
        sizes.push(2 * low.len());
        let net = match norm {
            None => Net::Plain(Mlp::new(&sizes, activation, MlpInit::TorchDefault, rng)?),
            Some(p) => Net::Norm(NormMlp::new(&sizes, p, rng)?),
        };
        Ok(SquashedActor {
            net,
            low: low.to_vec(),
            high: high.to_vec(),
            log_std,
        })
    }

    /// Action dimensions.
    pub fn action_dim(&self) -> usize {
        self.low.len()
    }
    /// Observation width.
    pub fn obs_dim(&self) -> usize {
        self.net.input_dim()
    }
    /// The box's lower and upper bounds.
    pub fn bounds(&self) -> (&[f32], &[f32]) {
        (&self.low, &self.high)
    }
    fn dist(&self) -> TanhGaussian {
        TanhGaussian::for_box(&self.low, &self.high)
    }

    /// Samples an action for each of `n` observations with noise from `rng` (one standard
    /// normal per row and dimension, row by row), into `s`; `dropout` (training mode) draws
    /// the network's dropout masks.
    pub fn sample<R: Rng + ?Sized>(
        &self,
        obs: &[f32],
        n: usize,
        rng: &mut R,
        dropout: Option<&mut dyn RngCore>,
        s: &mut ActorSamples,
    ) -> Result<()> {
        let d = self.action_dim();
        let out = self.net.forward(obs, n, &mut s.cache, dropout)?;
        let dist = self.dist();
        for v in [
            &mut s.actions,
            &mut s.da_dmu,
            &mut s.da_dls,
            &mut s.dlp_dmu,
            &mut s.dlp_dls,
            &mut s.dls_draw,
        ] {
            v.resize(n * d, 0.0);
        }
        s.logp.resize(n, 0.0);
        s.rows = n;
        let one = s.one.get_or_insert_with(|| SquashedSample::new(d));
        if one.u.len() != d {
            *one = SquashedSample::new(d);
        }
        let (mut ls, mut eps) = (vec![0f32; d], vec![0f32; d]);
        for r in 0..n {
            let row = &out[r * 2 * d..(r + 1) * 2 * d];
            for k in 0..d {
                ls[k] = self.log_std.apply(row[d + k]);
                eps[k] = rng.sample(StandardNormal);
                s.dls_draw[r * d + k] = self.log_std.grad(row[d + k]);
            }
            dist.sample_with(&row[..d], &ls, &eps, one);
            s.actions[r * d..(r + 1) * d].copy_from_slice(&one.action);
            s.da_dmu[r * d..(r + 1) * d].copy_from_slice(&one.da_dmu);
            s.da_dls[r * d..(r + 1) * d].copy_from_slice(&one.da_dlogstd);
            s.dlp_dmu[r * d..(r + 1) * d].copy_from_slice(&one.dlogp_dmu);
            s.dlp_dls[r * d..(r + 1) * d].copy_from_slice(&one.dlogp_dlogstd);
            s.logp[r] = one.log_prob;
        }
        Ok(())
    }

    /// The deterministic actions `scale·tanh(μ) + bias` of `n` observations (evaluation
    /// mode), into `out`.
    pub fn mode(&self, obs: &[f32], n: usize, cache: &mut NetCache, out: &mut [f32]) -> Result<()> {
        let d = self.action_dim();
        let y = self.net.forward(obs, n, cache, None)?;
        let dist = self.dist();
        for r in 0..n {
            dist.mode(&y[r * 2 * d..r * 2 * d + d], &mut out[r * d..(r + 1) * d]);
        }
        Ok(())
    }

    /// Adds to `grads` the gradient of a loss of the last [`SquashedActor::sample`]'s actions
    /// and log-probabilities, given `∂L/∂a` `[n, d]` and `∂L/∂log π` `[n]` (the noise held
    /// fixed).
    pub fn backward(
        &self,
        obs: &[f32],
        s: &mut ActorSamples,
        dl_da: &[f32],
        dl_dlogp: &[f32],
        grads: &mut [f32],
    ) -> Result<()> {
        let (d, n) = (self.action_dim(), s.rows);
        if dl_da.len() != n * d || dl_dlogp.len() != n {
            return Err(AlgoError::Config {
                field: "actor gradient",
                reason: format!("expected {n}×{d} action and {n} log-probability gradients"),
            });
        }
        s.dout.resize(n * 2 * d, 0.0);
        for r in 0..n {
            for k in 0..d {
                let i = r * d + k;
                let (ga, gl) = (dl_da[i], dl_dlogp[r]);
                s.dout[r * 2 * d + k] = ga * s.da_dmu[i] + gl * s.dlp_dmu[i];
                s.dout[r * 2 * d + d + k] = (ga * s.da_dls[i] + gl * s.dlp_dls[i]) * s.dls_draw[i];
            }
        }
        let ActorSamples { cache, dout, .. } = s;
        self.net.backward(obs, cache, dout, grads)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use taper_tensor::rng::{stream, Purpose};

    /// The backward pass of `L = Σ (c·a + w·log π)` against central differences of the
    /// parameters at fixed noise (the same seed redraws the same noise), for both bounds.
    #[test]
    fn backward_matches_finite_differences() {
        for bound in [LogStdBound::cleanrl(), LogStdBound::dsac_t()] {
            let mut actor = SquashedActor::new(
                3,
                &[-2.0, 0.0],
                &[2.0, 1.0],
                &[8, 8],
                Activation::Gelu,
                None,
                bound,
                &mut stream(3, Purpose::Init, 0),
            )
            .unwrap();
            let n = 4;
            let obs: Vec<f32> = (0..n * 3).map(|i| ((i * 7 % 5) as f32 - 2.0) * 0.5).collect();
            let c = [0.7f32, -1.3];
            let w = 0.4f32;
            let loss = |a: &SquashedActor| -> f64 {
                let mut s = ActorSamples::default();
                a.sample(&obs, n, &mut stream(9, Purpose::Action, 0), None, &mut s)
                    .unwrap();
                (0..n)
                    .map(|r| (c[0] * s.actions[2 * r] + c[1] * s.actions[2 * r + 1] + w * s.logp[r]) as f64)
                    .sum()
            };
            let mut s = ActorSamples::default();
            actor
                .sample(&obs, n, &mut stream(9, Purpose::Action, 0), None, &mut s)
                .unwrap();
            let dl_da: Vec<f32> = (0..n).flat_map(|_| c).collect();
            let mut g = vec![0f32; actor.net.num_params()];
            actor.backward(&obs, &mut s, &dl_da, &vec![w; n], &mut g).unwrap();
            let h = 1e-2f32;
            for i in (0..g.len()).step_by(7) {
                let p0 = actor.net.params()[i];
                actor.net.params_mut()[i] = p0 + h;
                let up = loss(&actor);
                actor.net.params_mut()[i] = p0 - h;
                let down = loss(&actor);
                actor.net.params_mut()[i] = p0;
                let fd = (up - down) / (2.0 * h as f64);
                assert!(
                    (fd - g[i] as f64).abs() < 2e-2 * (1.0 + fd.abs()),
                    "{bound:?} param {i}: {fd} vs {}",
                    g[i]
                );
            }
            for (k, &a) in s.actions.iter().enumerate() {
                let (lo, hi) = ([-2.0, 0.0][k % 2], [2.0, 1.0][k % 2]);
                assert!(a >= lo && a <= hi);
            }
        }
    }

    #[test]
    fn bad_boxes_are_errors() {
        let mut rng = stream(0, Purpose::Init, 0);
        let mk = |lo: &[f32], hi: &[f32], rng: &mut _| {
            SquashedActor::new(2, lo, hi, &[4], Activation::Relu, None, LogStdBound::cleanrl(), rng)
        };
        assert!(mk(&[1.0], &[-1.0], &mut rng).is_err());
        assert!(mk(&[f32::NEG_INFINITY], &[1.0], &mut rng).is_err());
        assert!(mk(&[], &[], &mut rng).is_err());
        assert!(mk(&[-1.0], &[1.0], &mut rng).is_ok());
    }
}
