//! [`NormMlp`]: an MLP whose hidden blocks are `Linear → Dropout → LayerNorm → ReLU` (STAC's
//! actor and critic, `rl-warehouse`'s `ContinuousMLP2*`), on one flat parameter buffer with a
//! hand-written backward pass, tested against candle's autodiff.
//!
//! Dropout is active when a forward pass is given a random generator (training mode) and off
//! without one (evaluation mode); its masks are drawn row by row, unit by unit, and scaled by
//! `1/(1 − p)` as PyTorch's `nn.Dropout`. LayerNorm normalises each row over its units with
//! ε = 1e-5 and a learned scale and shift (PyTorch's `nn.LayerNorm`).
//!
//! ```
//! use taper_tensor::norm_mlp::{NormCache, NormMlp};
//! use taper_tensor::rng::{stream, Purpose};
//! let net = NormMlp::new(&[3, 16, 16, 2], 0.01, &mut stream(0, Purpose::Init, 0))?;
//! let mut cache = NormCache::default();
//! let y = net.forward(&[0.1; 6], 2, &mut cache, None)?; // evaluation: no dropout
//! assert_eq!(y.len(), 4);
//! # Ok::<(), taper_tensor::TensorError>(())
//! ```

use crate::error::{check_len, Result, TensorError};
use crate::linalg::{matmul_nn, matmul_nt, matmul_tn};
use rand::{Rng, RngCore};
use serde::{Deserialize, Serialize};

/// LayerNorm's ε (PyTorch's default).
pub const LN_EPS: f32 = 1e-5;

/// See the module doc.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct NormMlp {
    sizes: Vec<usize>,
    dropout: f32,
    params: Vec<f32>,
}

/// Activations of the last forward pass, for the backward pass.
#[derive(Debug, Default, Clone)]
pub struct NormCache {
    batch: usize,
    /// Per hidden layer: the dropout mask times `1/(1 − p)` (empty: no dropout).
    mask: Vec<Vec<f32>>,
    /// Per hidden layer: the normalised values.
    xhat: Vec<Vec<f32>>,
    /// Per hidden layer: each row's `1/σ`.
    inv_std: Vec<Vec<f32>>,
    /// Per layer: its output (hidden: after ReLU).
    outs: Vec<Vec<f32>>,
    delta: Vec<f32>,
    next: Vec<f32>,
}

impl NormMlp {
    /// A network of layer widths `sizes` with dropout probability `dropout` in `[0, 1)`:
    /// linear layers initialised as PyTorch's `nn.Linear` (uniform in ±1/√fan_in), LayerNorm
    /// scales 1 and shifts 0.
    pub fn new<R: Rng + ?Sized>(sizes: &[usize], dropout: f32, rng: &mut R) -> Result<Self> {
        if sizes.len() < 2 || sizes.contains(&0) {
            return Err(TensorError::Invalid {
                name: "sizes",
                reason: format!("needs at least two positive widths, got {sizes:?}"),
            });
        }
        if !(0.0..1.0).contains(&dropout) {
            return Err(TensorError::Invalid {
                name: "dropout",
                reason: format!("must be in [0, 1), got {dropout}"),
            });
        }
        let mut params = Vec::new();
        for (l, w) in sizes.windows(2).enumerate() {
            let (i, o) = (w[0], w[1]);
            let bound = 1.0 / (i as f32).sqrt();
            for _ in 0..o * i + o {
                params.push(rng.random_range(-bound..bound));
            }
            if l + 2 < sizes.len() {
                params.extend(std::iter::repeat_n(1.0, o));
                params.extend(std::iter::repeat_n(0.0, o));
            }
        }
        Ok(NormMlp {
            sizes: sizes.to_vec(),
            dropout,
            params,
        })
    }

    /// The layer widths.
    pub fn sizes(&self) -> &[usize] {
        &self.sizes
    }
    /// The dropout probability.
    pub fn dropout(&self) -> f32 {
        self.dropout
    }
    /// Input width.
    pub fn input_dim(&self) -> usize {
        self.sizes[0]
    }
    /// Output width.
    pub fn output_dim(&self) -> usize {
        self.sizes[self.sizes.len() - 1]
    }
    /// The parameters.
    pub fn params(&self) -> &[f32] {
        &self.params
    }
    /// The parameters, to change.
    pub fn params_mut(&mut self) -> &mut [f32] {
        &mut self.params
    }
    /// Parameter count.
    pub fn num_params(&self) -> usize {
        self.params.len()
    }
    fn hidden(&self, l: usize) -> bool {
        l + 2 < self.sizes.len()
    }
    /// Offsets of layer `l`: weight, bias, LayerNorm scale, LayerNorm shift (the last two
    /// equal to the end of the bias for the output layer).
    fn offsets(&self, l: usize) -> (usize, usize, usize, usize) {
        let mut off = 0;
        for k in 0..l {
            let (i, o) = (self.sizes[k], self.sizes[k + 1]);
            off += o * i + o + if self.hidden(k) { 2 * o } else { 0 };
        }
        let (i, o) = (self.sizes[l], self.sizes[l + 1]);
        let b = off + o * i;
        (off, b, b + o, b + 2 * o)
    }
    /// Sets the output layer's bias of unit `unit` (STAC starts its σ output's bias at 0).
    pub fn set_output_bias(&mut self, unit: usize, value: f32) -> Result<()> {
        let l = self.sizes.len() - 2;
        let (_, b, _, _) = self.offsets(l);
        if unit >= self.output_dim() {
            return Err(TensorError::Invalid {
                name: "unit",
                reason: format!("the output has {} units, got {unit}", self.output_dim()),
            });
        }
        self.params[b + unit] = value;
        Ok(())
    }

    /// Forward pass of `batch` rows; dropout masks from `rng` when given. Returns the output
    /// `[batch, out]`.
    pub fn forward<'c>(
        &self,
        x: &[f32],
        batch: usize,
        cache: &'c mut NormCache,
        mut rng: Option<&mut dyn RngCore>,
    ) -> Result<&'c [f32]> {
        check_len("NormMlp input", batch * self.input_dim(), x.len())?;
        let layers = self.sizes.len() - 1;
        cache.batch = batch;
        for v in [&mut cache.mask, &mut cache.xhat, &mut cache.inv_std, &mut cache.outs] {
            v.resize_with(layers, Vec::new);
        }
        let keep = 1.0 - self.dropout;
        for l in 0..layers {
            let (i, o) = (self.sizes[l], self.sizes[l + 1]);
            let (w, b, g, s) = self.offsets(l);
            let (prev, rest) = cache.outs.split_at_mut(l);
            let input: &[f32] = if l == 0 { x } else { &prev[l - 1] };
            let out = &mut rest[0];
            out.resize(batch * o, 0.0);
            matmul_nt(batch, o, i, input, &self.params[w..b], out, false);
            for row in out.chunks_exact_mut(o) {
                for (v, &bb) in row.iter_mut().zip(&self.params[b..b + o]) {
                    *v += bb;
                }
            }
            if !self.hidden(l) {
                continue;
            }
            let mask = &mut cache.mask[l];
            mask.clear();
            if let (Some(r), true) = (rng.as_deref_mut(), self.dropout > 0.0) {
                mask.resize(batch * o, 0.0);
                for m in mask.iter_mut() {
                    *m = if r.random::<f32>() < self.dropout {
                        0.0
                    } else {
                        1.0 / keep
                    };
                }
                for (v, m) in out.iter_mut().zip(mask.iter()) {
                    *v *= m;
                }
            }
            let (xhat, inv) = (&mut cache.xhat[l], &mut cache.inv_std[l]);
            xhat.resize(batch * o, 0.0);
            inv.resize(batch, 0.0);
            let (gamma, beta) = (&self.params[g..s], &self.params[s..s + o]);
            for r in 0..batch {
                let row = &mut out[r * o..(r + 1) * o];
                let mean = row.iter().sum::<f32>() / o as f32;
                let var = row.iter().map(|v| (v - mean) * (v - mean)).sum::<f32>() / o as f32;
                let is = 1.0 / (var + LN_EPS).sqrt();
                inv[r] = is;
                let xh = &mut xhat[r * o..(r + 1) * o];
                for j in 0..o {
                    xh[j] = (row[j] - mean) * is;
                    row[j] = (gamma[j] * xh[j] + beta[j]).max(0.0);
                }
            }
        }
        Ok(&cache.outs[layers - 1])
    }

    /// Backward pass of the last forward pass, given `dout = ∂L/∂output`: adds `∂L/∂params`
    /// into `grads` when given, writes `∂L/∂x` into `dx` when given.
    pub fn backward(
        &self,
        x: &[f32],
        cache: &mut NormCache,
        dout: &[f32],
        mut grads: Option<&mut [f32]>,
        mut dx: Option<&mut [f32]>,
    ) -> Result<()> {
        let batch = cache.batch;
        let layers = self.sizes.len() - 1;
        check_len("NormMlp input", batch * self.input_dim(), x.len())?;
        check_len("NormMlp output gradient", batch * self.output_dim(), dout.len())?;
        if let Some(g) = grads.as_deref() {
            check_len("NormMlp gradient buffer", self.params.len(), g.len())?;
        }
        if let Some(d) = dx.as_deref() {
            check_len("NormMlp input gradient", batch * self.input_dim(), d.len())?;
        }
        if cache.outs.len() != layers {
            return Err(TensorError::Invalid {
                name: "cache",
                reason: "backward called before forward".into(),
            });
        }
        let NormCache {
            mask,
            xhat,
            inv_std,
            outs,
            delta,
            next,
            ..
        } = cache;
        delta.clear();
        delta.extend_from_slice(dout);
        for l in (0..layers).rev() {
            let (i, o) = (self.sizes[l], self.sizes[l + 1]);
            let (w, b, g, s) = self.offsets(l);
            if self.hidden(l) {
                // ReLU, then the LayerNorm's scale and shift, then its normalisation.
                let (xh, inv, y) = (&xhat[l], &inv_std[l], &outs[l]);
                let gamma = &self.params[g..s];
                for r in 0..batch {
                    let d = &mut delta[r * o..(r + 1) * o];
                    let xr = &xh[r * o..(r + 1) * o];
                    let yr = &y[r * o..(r + 1) * o];
                    let (mut sum_dxh, mut sum_dxh_xh) = (0f32, 0f32);
                    for j in 0..o {
                        let dy = if yr[j] <= 0.0 { 0.0 } else { d[j] };
                        if let Some(gr) = grads.as_deref_mut() {
                            gr[g + j] += dy * xr[j];
                            gr[s + j] += dy;
                        }
                        let dxh = dy * gamma[j];
                        d[j] = dxh;
                        sum_dxh += dxh;
                        sum_dxh_xh += dxh * xr[j];
                    }
                    let (m1, m2) = (sum_dxh / o as f32, sum_dxh_xh / o as f32);
                    for j in 0..o {
                        d[j] = inv[r] * (d[j] - m1 - xr[j] * m2);
                    }
                }
                if !mask[l].is_empty() {
                    for (v, m) in delta.iter_mut().zip(&mask[l]) {
                        *v *= m;
                    }
                }
            }
            let input: &[f32] = if l == 0 { x } else { &outs[l - 1] };
            if let Some(gr) = grads.as_deref_mut() {
                matmul_tn(o, i, batch, delta, input, &mut gr[w..b], true);
                for row in delta.chunks_exact(o) {
                    for (acc, &v) in gr[b..b + o].iter_mut().zip(row) {
                        *acc += v;
                    }
                }
            }
            if l == 0 {
                if let Some(d) = dx.as_deref_mut() {
                    matmul_nn(batch, i, o, delta, &self.params[w..b], d, false);
                }
            } else {
                next.resize(batch * i, 0.0);
                matmul_nn(batch, i, o, delta, &self.params[w..b], next, false);
                std::mem::swap(delta, next);
            }
        }
        Ok(())
    }

    /// The output of the last forward pass held in `cache`.
    pub fn output<'c>(&self, cache: &'c NormCache) -> &'c [f32] {
        cache.outs.last().map(|v| v.as_slice()).unwrap_or(&[])
    }

    /// The parameters as candle tensors named like PyTorch's blocks: `{prefix}.{l}.weight`,
    /// `{prefix}.{l}.bias` for the linears, `{prefix}.{l}.norm.weight`, `{prefix}.{l}.norm.bias`
    /// for the LayerNorms.
    pub fn to_tensors(&self, prefix: &str) -> Result<Vec<(String, candle_core::Tensor)>> {
        let dev = candle_core::Device::Cpu;
        let mut v = Vec::new();
        for l in 0..self.sizes.len() - 1 {
            let (i, o) = (self.sizes[l], self.sizes[l + 1]);
            let (w, b, g, s) = self.offsets(l);
            v.push((
                format!("{prefix}.{l}.weight"),
                candle_core::Tensor::from_slice(&self.params[w..b], (o, i), &dev)?,
            ));
            v.push((
                format!("{prefix}.{l}.bias"),
                candle_core::Tensor::from_slice(&self.params[b..b + o], o, &dev)?,
            ));
            if self.hidden(l) {
                v.push((
                    format!("{prefix}.{l}.norm.weight"),
                    candle_core::Tensor::from_slice(&self.params[g..s], o, &dev)?,
                ));
                v.push((
                    format!("{prefix}.{l}.norm.bias"),
                    candle_core::Tensor::from_slice(&self.params[s..s + o], o, &dev)?,
                ));
            }
        }
        Ok(v)
    }

    /// Loads [`NormMlp::to_tensors`], checking every shape.
    pub fn load_tensors(
        &mut self,
        prefix: &str,
        tensors: &std::collections::HashMap<String, candle_core::Tensor>,
    ) -> Result<()> {
        let flat = crate::init::read_like(&self.to_tensors(prefix)?, tensors)?;
        self.params = flat;
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::rng::{stream, Purpose};
    use candle_core::{Device, Tensor, Var, D};

    /// Forward and backward against candle's autodiff on the same weights and the same
    /// dropout masks (read back from the cache), with and without dropout.
    #[test]
    fn matches_candle_autodiff() -> Result<()> {
        for p in [0.0f32, 0.2] {
            let mut rng = stream(3, Purpose::Init, 0);
            let mut net = NormMlp::new(&[4, 8, 6, 2], p, &mut rng)?;
            // Scales and shifts away from 1 and 0, so their gradients are tested.
            for (k, v) in net.params_mut().iter_mut().enumerate() {
                *v += 0.01 * ((k * 7 % 13) as f32 - 6.0);
            }
            let batch = 5;
            let x = crate::init::normal(&mut rng, batch * 4, 0.0, 1.0);
            let dout = crate::init::normal(&mut rng, batch * 2, 0.0, 1.0);
            let mut cache = NormCache::default();
            let mut drop_rng = stream(9, Purpose::Other(1), 0);
            let y = net.forward(&x, batch, &mut cache, Some(&mut drop_rng))?.to_vec();
            let mut grads = vec![0f32; net.num_params()];
            let mut dx = vec![0f32; batch * 4];
            net.backward(&x, &mut cache, &dout, Some(&mut grads), Some(&mut dx))?;

            let dev = Device::Cpu;
            let t = net.to_tensors("n")?;
            let vars: Vec<Var> = t.iter().map(|(_, t)| Var::from_tensor(t).unwrap()).collect();
            let xv = Var::from_vec(x.clone(), (batch, 4), &dev)?;
            let mut h = xv.as_tensor().clone();
            let mut k = 0;
            for l in 0..3 {
                h = h
                    .matmul(&vars[k].as_tensor().t()?)?
                    .broadcast_add(vars[k + 1].as_tensor())?;
                k += 2;
                if l < 2 {
                    if !cache.mask[l].is_empty() {
                        let m = Tensor::from_vec(cache.mask[l].clone(), h.dims(), &dev)?;
                        h = (h * m)?;
                    }
                    let mean = h.mean_keepdim(D::Minus1)?;
                    let c = h.broadcast_sub(&mean)?;
                    let var = c.sqr()?.mean_keepdim(D::Minus1)?;
                    let xh = c.broadcast_div(&(var + LN_EPS as f64)?.sqrt()?)?;
                    h = xh
                        .broadcast_mul(vars[k].as_tensor())?
                        .broadcast_add(vars[k + 1].as_tensor())?
                        .relu()?;
                    k += 2;
                }
            }
            let close = |a: f32, b: f32| (a - b).abs() <= 1e-4 * (1.0 + b.abs());
            for (a, b) in h.flatten_all()?.to_vec1::<f32>()?.iter().zip(&y) {
                assert!(close(*a, *b), "p {p} forward {a} vs {b}");
            }
            let loss = (&h * Tensor::from_vec(dout.clone(), (batch, 2), &dev)?)?.sum_all()?;
            let gs = loss.backward()?;
            let mut flat = Vec::new();
            for v in &vars {
                flat.extend(gs.get(v.as_tensor()).unwrap().flatten_all()?.to_vec1::<f32>()?);
            }
            for (i, (a, b)) in flat.iter().zip(&grads).enumerate() {
                assert!(close(*a, *b), "p {p} grad {i}: {a} vs {b}");
            }
            let gx = gs.get(xv.as_tensor()).unwrap().flatten_all()?.to_vec1::<f32>()?;
            for (a, b) in gx.iter().zip(&dx) {
                assert!(close(*a, *b), "p {p} input grad {a} vs {b}");
            }
            // Without a generator there is no dropout; the same generator repeats the masks.
            let y0 = net.forward(&x, batch, &mut cache, None)?.to_vec();
            assert!(cache.mask.iter().all(|m| m.is_empty()));
            let again = net
                .forward(&x, batch, &mut cache, Some(&mut stream(9, Purpose::Other(1), 0)))?
                .to_vec();
            assert_eq!(again, y);
            assert_eq!(p == 0.0, y0 == y);
        }
        Ok(())
    }

    #[test]
    fn tensors_round_trip_and_bad_input() -> Result<()> {
        let mut rng = stream(1, Purpose::Init, 0);
        let net = NormMlp::new(&[3, 5, 2], 0.1, &mut rng)?;
        let map: std::collections::HashMap<_, _> = net.to_tensors("q")?.into_iter().collect();
        let mut other = NormMlp::new(&[3, 5, 2], 0.1, &mut rng)?;
        assert_ne!(other, net);
        other.load_tensors("q", &map)?;
        assert_eq!(other, net);
        let mut wrong = NormMlp::new(&[3, 6, 2], 0.1, &mut rng)?;
        assert!(wrong.load_tensors("q", &map).is_err());
        assert!(NormMlp::new(&[3, 5, 2], 1.0, &mut rng).is_err());
        assert!(NormMlp::new(&[3], 0.0, &mut rng).is_err());
        let mut c = NormCache::default();
        assert!(net.backward(&[0.0; 3], &mut c, &[0.0; 2], None, None).is_err());
        Ok(())
    }
}
