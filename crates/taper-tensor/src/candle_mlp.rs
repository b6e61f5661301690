//! The MLP of [`mlp`](crate::mlp) as a candle graph on any [`candle_core::Device`]: the
//! parameters live on the device as [`candle_core::Var`]s, the forward pass is candle ops,
//! and the gradients come from candle's autodiff. It converts to and from the flat-buffer
//! [`Mlp`] without loss, and its gradients come back in the flat layout, so one optimizer and
//! one checkpoint format serve both backends (`device::Backend`).
//!
//! ```
//! use taper_tensor::candle_mlp::CandleMlp;
//! use taper_tensor::mlp::{Activation, Mlp, MlpCache, MlpInit};
//! use taper_tensor::rng::{stream, Purpose};
//! let net = Mlp::new(&[4, 8, 2], Activation::Tanh, MlpInit::TorchDefault, &mut stream(0, Purpose::Init, 0))?;
//! let dev = candle_core::Device::Cpu;
//! let g = CandleMlp::from_mlp(&net, &dev)?;
//! let x = vec![0.1f32, -0.2, 0.3, 0.4];
//! let y = g.forward(&candle_core::Tensor::from_slice(&x, (1, 4), &dev)?)?;
//! let mut cache = MlpCache::default();
//! let want = net.forward(&x, 1, &mut cache)?;
//! for (a, b) in y.flatten_all()?.to_vec1::<f32>()?.iter().zip(want) {
//!     assert!((a - b).abs() < 1e-5);
//! }
//! assert_eq!(g.to_mlp()?.params(), net.params());
//! # Ok::<(), taper_tensor::TensorError>(())
//! ```

use crate::error::{Result, TensorError};
use crate::mlp::{Activation, Mlp};
use candle_core::{backprop::GradStore, Device, Tensor, Var};

/// An MLP as a candle graph; see the module doc.
#[derive(Debug, Clone)]
pub struct CandleMlp {
    sizes: Vec<usize>,
    activation: Activation,
    /// Per layer: the weight `[out, in]` and the bias `[out]`.
    layers: Vec<(Var, Var)>,
    device: Device,
}

impl CandleMlp {
    /// The parameters of `net`, uploaded to `device`.
    pub fn from_mlp(net: &Mlp, device: &Device) -> Result<Self> {
        let tensors = net.to_tensors("n")?;
        let mut layers = Vec::with_capacity(tensors.len() / 2);
        for pair in tensors.chunks(2) {
            let w = Var::from_tensor(&pair[0].1.to_device(device)?)?;
            let b = Var::from_tensor(&pair[1].1.to_device(device)?)?;
            layers.push((w, b));
        }
        Ok(CandleMlp {
            sizes: net.sizes().to_vec(),
            activation: net.activation(),
            layers,
            device: device.clone(),
        })
    }

    /// The parameters downloaded into a flat-buffer [`Mlp`].
    pub fn to_mlp(&self) -> Result<Mlp> {
        Mlp::from_params(&self.sizes, self.activation, self.flat(|v| Ok(v.as_tensor().clone()))?)
    }

    /// The device the parameters live on.
    pub fn device(&self) -> &Device {
        &self.device
    }

    /// Layer sizes, input first.
    pub fn sizes(&self) -> &[usize] {
        &self.sizes
    }

    /// The hidden activation.
    pub fn activation(&self) -> Activation {
        self.activation
    }

    /// The trainable parameters, layer by layer (weight, then bias).
    pub fn vars(&self) -> Vec<Var> {
        self.layers.iter().flat_map(|(w, b)| [w.clone(), b.clone()]).collect()
    }

    /// The forward pass of a batch `x` (`[batch, in]`, on the model's device) as a graph that
    /// autodiff can differentiate.
    pub fn forward(&self, x: &Tensor) -> Result<Tensor> {
        if x.dims2()?.1 != self.sizes[0] {
            return Err(TensorError::Shape {
                what: "candle MLP input width",
                expected: self.sizes[0],
                got: x.dims2()?.1,
            });
        }
        let last = self.layers.len() - 1;
        let mut h = x.clone();
        for (l, (w, b)) in self.layers.iter().enumerate() {
            h = h.matmul(&w.as_tensor().t()?)?.broadcast_add(b.as_tensor())?;
            if l < last {
                h = match self.activation {
                    Activation::Tanh => h.tanh()?,
                    Activation::Relu => h.relu()?,
                    Activation::Elu => h.elu(1.0)?,
                    Activation::Gelu => h.gelu()?,
                    Activation::Identity => h,
                };
            }
        }
        Ok(h)
    }

    /// The gradients of `grads` for this model's parameters, in the flat layout of
    /// [`Mlp::params`] (zeros for a parameter the loss did not reach).
    pub fn flat_grads(&self, grads: &GradStore) -> Result<Vec<f32>> {
        self.flat(|v| match grads.get(v.as_tensor()) {
            Some(g) => Ok(g.clone()),
            None => Ok(v.as_tensor().zeros_like()?),
        })
    }

    /// Writes flat parameters (the layout of [`Mlp::params`]) into the device's variables.
    pub fn set_params(&self, params: &[f32]) -> Result<()> {
        let mut off = 0;
        for (w, b) in &self.layers {
            for v in [w, b] {
                let n = v.as_tensor().elem_count();
                let src = params.get(off..off + n).ok_or(TensorError::Shape {
                    what: "candle MLP parameters",
                    expected: off + n,
                    got: params.len(),
                })?;
                v.set(&Tensor::from_slice(src, v.as_tensor().dims(), &self.device)?)?;
                off += n;
            }
        }
        crate::error::check_len("candle MLP parameters", off, params.len())
    }

    /// Each variable mapped by `f`, downloaded and concatenated in the flat layout.
    fn flat(&self, f: impl Fn(&Var) -> Result<Tensor>) -> Result<Vec<f32>> {
        let mut out = Vec::new();
        for (w, b) in &self.layers {
            for v in [w, b] {
                out.extend(f(v)?.to_device(&Device::Cpu)?.flatten_all()?.to_vec1::<f32>()?);
            }
        }
        Ok(out)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::mlp::{MlpCache, MlpInit};
    use crate::rng::{stream, Purpose};

    /// On the CPU the candle graph equals the fast path: forward, parameter gradients and
    /// input gradients within 1e-5 (relative), for every activation.
    #[test]
    fn candle_graph_equals_the_fast_path() -> Result<()> {
        graph_equals_the_fast_path(&Device::Cpu, 1e-5)
    }

    /// The same on a CUDA device, within 1e-4 (cuBLAS sums in another order). Built with
    /// `--features cuda` only; `scripts/gpu-check.sh` runs it.
    #[cfg(feature = "cuda")]
    #[test]
    fn cuda_graph_equals_the_fast_path() -> Result<()> {
        graph_equals_the_fast_path(&Device::new_cuda(0)?, 1e-4)
    }

    fn graph_equals_the_fast_path(dev: &Device, tol: f32) -> Result<()> {
        for act in [
            Activation::Tanh,
            Activation::Relu,
            Activation::Elu,
            Activation::Gelu,
            Activation::Identity,
        ] {
            let mut rng = stream(5, Purpose::Init, 0);
            let net = Mlp::new(&[6, 16, 16, 3], act, MlpInit::orthogonal(2f32.sqrt(), 0.01), &mut rng)?;
            let batch = 33;
            let x = crate::init::normal(&mut rng, batch * 6, 0.0, 1.0);
            let dout = crate::init::normal(&mut rng, batch * 3, 0.0, 1.0);
            let mut cache = MlpCache::default();
            let y = net.forward(&x, batch, &mut cache)?.to_vec();
            let mut grads = vec![0f32; net.num_params()];
            let mut dx = vec![0f32; batch * 6];
            net.backward_full(&x, &mut cache, &dout, &mut grads, Some(&mut dx))?;

            let g = CandleMlp::from_mlp(&net, dev)?;
            let xv = Var::from_vec(x.clone(), (batch, 6), dev)?;
            let yt = g.forward(xv.as_tensor())?;
            // The loss whose gradient with respect to y is dout.
            let loss = (&yt * Tensor::from_vec(dout.clone(), (batch, 3), dev)?)?.sum_all()?;
            let gs = loss.backward()?;
            let close = |a: f32, b: f32| (a - b).abs() <= tol * (1.0 + b.abs());
            for (a, b) in yt.flatten_all()?.to_vec1::<f32>()?.iter().zip(&y) {
                assert!(close(*a, *b), "{act:?} forward {a} vs {b}");
            }
            for (i, (a, b)) in g.flat_grads(&gs)?.iter().zip(&grads).enumerate() {
                assert!(close(*a, *b), "{act:?} grad {i}: {a} vs {b}");
            }
            let gx = gs.get(xv.as_tensor()).unwrap().flatten_all()?.to_vec1::<f32>()?;
            for (a, b) in gx.iter().zip(&dx) {
                assert!(close(*a, *b), "{act:?} input grad {a} vs {b}");
            }
            // Lossless both ways.
            assert_eq!(g.to_mlp()?.params(), net.params());
            let moved: Vec<f32> = net.params().iter().map(|p| p * 0.5).collect();
            g.set_params(&moved)?;
            assert_eq!(g.to_mlp()?.params(), moved.as_slice());
            assert!(g.set_params(&moved[1..]).is_err());
            assert!(g
                .forward(&Tensor::zeros((2, 5), candle_core::DType::F32, dev)?)
                .is_err());
        }
        Ok(())
    }
}
