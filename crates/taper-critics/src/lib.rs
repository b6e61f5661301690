//! # taper-critics
//!
//! The model traits every algorithm's networks implement, and the critics with their losses:
//!
//! - [`traits`]: [`Actor`] (log-probabilities, entropy, sampling, and the gradient of a scalar
//!   of the logits with respect to the observation), [`Critic`] (`V`), [`QCritic`] (`Q`,
//!   `∂Q/∂a`, and Hessian–vector products in action space by finite differences);
//! - [`value`]: [`ValueCritic`], an MLP `V(x)` with a scalar or a categorical head, and
//!   CleanRL's plain and clipped value loss;
//! - [`categorical`]: [`Categorical`], a value read as the mean of a softmax over bins and
//!   learned by cross-entropy against HL-Gauss or two-hot targets; [`categorical_q`]:
//!   [`CategoricalQ`], an action value with such a head and its action gradient;
//! - [`gaussian`]: Gaussian critics' heads, losses and targets: the negative log-likelihood
//!   and STAC's pessimistic target, DSAC-T's twin targets and its clipped, variance-weighted
//!   loss;
//! - [`q`]: [`MlpQ`], an MLP `Q(o, a)` on concatenated observations and actions with its action
//!   gradient, and the squared TD loss ([`td_loss`]);
//! - [`twin`]: [`TwinQ`], clipped double Q, and SAC's soft TD target;
//! - [`flow`]: [`FlowQ`], a flow-matching critic (floq): `Q` as the end point of `K` Euler
//!   steps of a learned velocity field, trained by flow matching toward the TD target.
//!
//! Code that needs only these traits (evaluation, diagnostics) works with every algorithm whose
//! networks implement them: PPO's actor-critic, MAPPO's centralized `V`, MADDPG's actors and
//! critics.
//!
//! ```
//! use taper_critics::{value_loss, Critic, ValueCritic};
//! use taper_tensor::rng::{stream, Purpose};
//! let mut rng = stream(0, Purpose::Init, 1);
//! let critic = ValueCritic::new(4, &[64, 64], &mut rng)?;
//! let mut v = [0f32; 2];
//! critic.values(&[0.0; 8], 2, &mut v)?;
//! let mut dv = vec![0.0; 2];
//! let loss = value_loss(&v, &v, &[1.0, 1.0], Some(0.2), &mut dv)?;
//! assert!(loss > 0.0);
//! # Ok::<(), taper_critics::CriticError>(())
//! ```
#![warn(missing_docs)]
// Index loops read best in numeric kernels; NaN-rejecting `!(x > 0.0)` checks are deliberate.
#![allow(clippy::needless_range_loop, clippy::neg_cmp_op_on_partial_ord)]

pub mod categorical;
pub mod categorical_q;
mod error;
pub mod flow;
pub mod gaussian;
pub mod q;
pub mod traits;
pub mod twin;
pub mod value;

pub use categorical::{Categorical, Encoding};
pub use categorical_q::CategoricalQ;
pub use error::{CriticError, Result};
pub use flow::{Flow, FlowCache, FlowQ};
pub use q::{td_loss, MlpQ};
pub use traits::{Actor, Critic, QCritic};
pub use twin::{soft_td_target, TwinQ};
pub use value::{value_loss, ValueCritic};
