//! # taper-diagnostics
//!
//! Tools that look at a training run from outside the algorithm:
//!
//! - [`safe_step`]: the softmax safe-step radius of "Ghosts of Softmax" (`ρ_a = π / Δ_a`, the
//!   distance along an update direction within which every softmax output stays analytic),
//!   the normalised step `r = ‖p‖ / ρ_a` of an actual update, and the radius clip that scales
//!   an update to a target `r`;
//! - Patient-0 attribution in cooperative multi-agent runs: [`taylor`] (Stage 1, each
//!   agent's Taylor remainder against a calibration band), [`influence`] (each step's critic
//!   sensitivity `G` and curvature `D` between agents), [`traceback`] (the causal window, the
//!   traceback and the contagion graph, its geometry and SVG), and [`patient0`] (reference episodes,
//!   fault injection, detection and scoring on any `ParallelEnv` with `Actor`s and
//!   `QCritic`s).
//!
//! ```
//! use taper_diagnostics::safe_step::{logit_spread, radius, StepRadius};
//! // Two states, three actions: logits before and after a step of ε along the direction.
//! let (z0, z1) = ([0.0f32, 1.0, -1.0, 0.5, 0.5, 0.0], [0.01f32, 0.98, -1.0, 0.5, 0.52, 0.0]);
//! let spread = logit_spread(&z0, &z1, 3, 0.01, None)?;
//! let rho = radius(&spread);
//! let r = StepRadius::of(0.05, rho);
//! assert!(rho > 0.0 && r.r < 1.0);
//! # Ok::<(), taper_diagnostics::DiagnosticsError>(())
//! ```
#![warn(missing_docs)]
#![allow(clippy::needless_range_loop)]

mod error;
pub mod influence;
pub mod patient0;
pub mod safe_step;
pub mod taylor;
pub mod traceback;

pub use error::{DiagnosticsError, Result};
