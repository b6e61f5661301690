//! [`Net`]: the network of an actor or critic of the SAC family, a plain MLP
//! ([`taper_tensor::mlp::Mlp`]) or STAC's `Linear → Dropout → LayerNorm → ReLU` blocks
//! ([`taper_tensor::norm_mlp::NormMlp`]), behind one set of calls. A forward pass given a
//! random generator is in training mode (dropout on, where the network has it); without one,
//! in evaluation mode.

use crate::error::Result;
use rand::RngCore;
use serde::{Deserialize, Serialize};
use std::collections::HashMap;
use taper_tensor::mlp::{Mlp, MlpCache};
use taper_tensor::norm_mlp::{NormCache, NormMlp};

/// See the module doc.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub enum Net {
    /// A plain MLP.
    Plain(Mlp),
    /// Dropout and LayerNorm in every hidden block.
    Norm(NormMlp),
}

/// A [`Net`]'s activations.
#[derive(Debug, Default, Clone)]
pub struct NetCache {
    plain: MlpCache,
    norm: NormCache,
}

impl Net {
    /// Input width.
    pub fn input_dim(&self) -> usize {
        match self {
            Net::Plain(m) => m.input_dim(),
            Net::Norm(m) => m.input_dim(),
        }
    }
    /// Parameter count.
    pub fn num_params(&self) -> usize {
        match self {
            Net::Plain(m) => m.num_params(),
            Net::Norm(m) => m.num_params(),
        }
    }
    /// The parameters.
    pub fn params(&self) -> &[f32] {
        match self {
            Net::Plain(m) => m.params(),
            Net::Norm(m) => m.params(),
        }
    }
    /// The parameters, to change.
    pub fn params_mut(&mut self) -> &mut [f32] {
        match self {
            Net::Plain(m) => m.params_mut(),
            Net::Norm(m) => m.params_mut(),
        }
    }
    /// Forward pass of `n` rows; `rng` (training mode) draws dropout masks.
    pub fn forward<'c>(
        &self,
        x: &[f32],
        n: usize,
        cache: &'c mut NetCache,
        rng: Option<&mut dyn RngCore>,
    ) -> Result<&'c [f32]> {
        Ok(match self {
            Net::Plain(m) => m.forward(x, n, &mut cache.plain)?,
            Net::Norm(m) => m.forward(x, n, &mut cache.norm, rng)?,
        })
    }
    /// The output of the last forward pass.
    pub fn output<'c>(&self, cache: &'c NetCache) -> &'c [f32] {
        match self {
            Net::Plain(m) => m.output(&cache.plain),
            Net::Norm(m) => m.output(&cache.norm),
        }
    }
    /// Adds `∂L/∂params` of the last forward pass into `grads`, given `∂L/∂output`.
    pub fn backward(&self, x: &[f32], cache: &mut NetCache, dout: &[f32], grads: &mut [f32]) -> Result<()> {
        match self {
            Net::Plain(m) => m.backward(x, &mut cache.plain, dout, grads)?,
            Net::Norm(m) => m.backward(x, &mut cache.norm, dout, Some(grads), None)?,
        }
        Ok(())
    }
    /// `∂L/∂x` of the last forward pass, without the parameter gradient.
    pub fn backward_input(&self, x: &[f32], cache: &mut NetCache, dout: &[f32], dx: &mut [f32]) -> Result<()> {
        match self {
            Net::Plain(m) => m.backward_input(x, &mut cache.plain, dout, dx)?,
            Net::Norm(m) => m.backward(x, &mut cache.norm, dout, None, Some(dx))?,
        }
        Ok(())
    }
    /// The parameters as named tensors.
    pub fn to_tensors(&self, prefix: &str) -> Result<taper_train::NamedTensors> {
        Ok(match self {
            Net::Plain(m) => m.to_tensors(prefix)?,
            Net::Norm(m) => m.to_tensors(prefix)?,
        })
    }
    /// Loads [`Net::to_tensors`].
    pub fn load_tensors(&mut self, prefix: &str, t: &HashMap<String, candle_core::Tensor>) -> Result<()> {
        match self {
            Net::Plain(m) => m.load_tensors(prefix, t)?,
            Net::Norm(m) => m.load_tensors(prefix, t)?,
        }
        Ok(())
    }
}
