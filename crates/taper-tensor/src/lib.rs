//! # taper-tensor
//!
//! The numerics under taper's algorithms, on plain `f32` slices and candle tensors:
//!
//! - [`rng`]: seeded, independent random streams (candle's CPU RNG cannot be seeded);
//! - [`init`]: uniform, normal and orthogonal initialisers;
//! - [`linalg`]: row-major matrix products on slices (single-threaded `gemm`);
//! - [`mlp`]: a fast MLP with a hand-written backward pass (and input gradients), checked
//!   against candle autodiff;
//! - [`gru`]: a GRU cell over whole sequences with backpropagation through time, and
//!   [`gru_net`]: the recurrent actor or critic built on it (dense, GRU, MLP head);
//! - [`fastmath`]: a vectorised `tanh` (also as a candle op);
//! - [`distributions`]: categorical (with masks) and diagonal Gaussian; [`squashed`]: the
//!   tanh-squashed Gaussian of SAC and its relatives, with its reparameterised derivatives;
//! - [`returns`]: GAE and discounted returns that keep terminated and truncated apart;
//! - [`normalize`]: MAPPO's value normalisation and explained variance;
//! - [`optim`]: Adam/AdamW with saveable state, gradient clipping, LR annealing;
//! - [`device`]: where a model runs (`cpu`, `cuda:N`, `metal`) and the CPU backend (`fast` or
//!   `candle`); [`candle_mlp`]: the MLP as a candle graph on any device, equal to the fast
//!   path on the CPU;
//! - [`transformer`]: a small decoder-only transformer as a candle graph on any device, with a
//!   KV cache for sampling (the sequence policies' model); [`var_adam`]: Adam and gradient
//!   clipping over candle variables on their device.
//!
//! ```
//! use taper_tensor::prelude::*;
//! let mut rng = stream(1, Purpose::Init, 0);
//! let mut net = Mlp::new(&[2, 16, 1], Activation::Tanh, MlpInit::orthogonal(1.0, 1.0), &mut rng)?;
//! let mut opt = Adam::new(AdamConfig { lr: 1e-2, ..Default::default() }, net.num_params());
//! let (x, y) = (vec![0.5f32, -0.5], 1.0f32);
//! let mut cache = MlpCache::default();
//! let mut grads = vec![0f32; net.num_params()];
//! for _ in 0..100 {
//!     let out = net.forward(&x, 1, &mut cache)?[0];
//!     grads.fill(0.0);
//!     net.backward(&x, &mut cache, &[out - y], &mut grads)?;
//!     opt.step(&mut [(net.params_mut(), &grads[..])])?;
//! }
//! assert!((net.forward(&x, 1, &mut cache)?[0] - y).abs() < 1e-2);
//! # Ok::<(), taper_tensor::TensorError>(())
//! ```
#![warn(missing_docs)]
// Index loops read best in numeric kernels; NaN-rejecting `!(x > 0.0)` checks are deliberate.
#![allow(clippy::needless_range_loop, clippy::neg_cmp_op_on_partial_ord)]

/// Compiles a function body for AVX-512, AVX2+FMA and the baseline target, and picks one at
/// run time.
macro_rules! multiversion {
    ($(#[$m:meta])* $vis:vis fn $name:ident($($arg:ident : $ty:ty),* $(,)?) $body:block) => {
        $(#[$m])*
        $vis fn $name($($arg: $ty),*) {
            #[inline(always)]
            fn body($($arg: $ty),*) $body
            #[cfg(target_arch = "x86_64")]
            {
                #[target_feature(enable = "avx512f,avx2,fma")]
                unsafe fn v4($($arg: $ty),*) { body($($arg),*) }
                #[target_feature(enable = "avx2,fma")]
                unsafe fn v3($($arg: $ty),*) { body($($arg),*) }
                if std::arch::is_x86_feature_detected!("avx512f") {
                    // SAFETY: the CPU supports the features the function was compiled for.
                    return unsafe { v4($($arg),*) };
                }
                if std::arch::is_x86_feature_detected!("avx2")
                    && std::arch::is_x86_feature_detected!("fma")
                {
                    // SAFETY: as above.
                    return unsafe { v3($($arg),*) };
                }
            }
            body($($arg),*)
        }
    };
}

pub mod candle_mlp;
pub mod device;
pub mod distributions;
mod error;
pub mod fastmath;
pub mod gru;
pub mod gru_net;
pub mod init;
pub mod linalg;
pub mod mlp;
pub mod norm_mlp;
pub mod normalize;
pub mod optim;
pub mod returns;
pub mod rng;
mod scratch;
mod small_gemm;
pub mod squashed;
pub mod transformer;
mod transformer_host;
pub mod var_adam;

pub use error::{Result, TensorError};

/// The items most programs need.
pub mod prelude {
    pub use crate::distributions::{Categorical, DiagGaussian};
    pub use crate::mlp::{Activation, Mlp, MlpCache, MlpInit};
    pub use crate::normalize::{explained_variance, ValueNorm};
    pub use crate::optim::{clip_grad_norm, linear_anneal, Adam, AdamConfig, AdamState};
    pub use crate::returns::{gae, GaeInput};
    pub use crate::rng::{stream, ChaCha8Rng, Purpose};
    pub use crate::{Result, TensorError};
}
