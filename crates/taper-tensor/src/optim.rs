//! Adam and AdamW with state that can be read, saved and restored; global gradient-norm
//! clipping; linear learning-rate annealing.
//!
//! The update is PyTorch's `torch.optim.Adam` (and `AdamW` with `decoupled_weight_decay`):
//! `m ← β₁m + (1−β₁)g`, `v ← β₂v + (1−β₂)g²`,
//! `p ← p − lr/(1−β₁ᵗ) · m / (√v/√(1−β₂ᵗ) + ε)`.
//!
//! ```
//! use taper_tensor::optim::{Adam, AdamConfig};
//! let mut p = vec![1.0f32, -2.0];
//! let mut opt = Adam::new(AdamConfig { lr: 0.1, ..AdamConfig::default() }, p.len());
//! for _ in 0..200 {
//!     let g: Vec<f32> = p.iter().map(|x| 2.0 * x).collect(); // ∇ of Σx²
//!     opt.step(&mut [(&mut p[..], &g[..])]).unwrap();
//! }
//! assert!(p.iter().all(|x| x.abs() < 0.05));
//! // The state can be saved and restored exactly.
//! let saved = opt.state().clone();
//! let restored = Adam::from_state(*opt.config(), saved).unwrap();
//! assert_eq!(restored.state(), opt.state());
//! ```

use crate::error::{Result, TensorError};
use serde::{Deserialize, Serialize};

/// Hyperparameters of [`Adam`].
#[derive(Debug, Clone, Copy, PartialEq, Serialize, Deserialize)]
pub struct AdamConfig {
    /// Learning rate.
    pub lr: f32,
    /// β₁.
    pub beta1: f32,
    /// β₂.
    pub beta2: f32,
    /// ε, added to the bias-corrected `√v` (PyTorch's placement).
    pub eps: f32,
    /// Weight decay: L2 added to the gradient, or decoupled (AdamW) if `decoupled`.
    pub weight_decay: f32,
    /// AdamW's decoupled weight decay.
    pub decoupled: bool,
}

impl Default for AdamConfig {
    /// PyTorch's defaults: lr 1e-3, β (0.9, 0.999), ε 1e-8, no weight decay.
    fn default() -> Self {
        AdamConfig {
            lr: 1e-3,
            beta1: 0.9,
            beta2: 0.999,
            eps: 1e-8,
            weight_decay: 0.0,
            decoupled: false,
        }
    }
}

impl AdamConfig {
    /// Checks the ranges: `lr ≥ 0`, `β ∈ [0, 1)`, `ε > 0`, `weight_decay ≥ 0`.
    pub fn validate(&self) -> Result<()> {
        let bad = |name: &'static str, reason: String| Err(TensorError::Invalid { name, reason });
        if !(self.lr >= 0.0 && self.lr.is_finite()) {
            return bad("lr", format!("must be finite and >= 0, got {}", self.lr));
        }
        for (n, b) in [("beta1", self.beta1), ("beta2", self.beta2)] {
            if !(0.0..1.0).contains(&b) {
                return bad(n, format!("must be in [0, 1), got {b}"));
            }
        }
        if !(self.eps > 0.0) {
            return bad("eps", format!("must be > 0, got {}", self.eps));
        }
        if !(self.weight_decay >= 0.0) {
            return bad("weight_decay", format!("must be >= 0, got {}", self.weight_decay));
        }
        Ok(())
    }
}

/// The optimiser's state: first and second moments and the step count.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct AdamState {
    /// Number of steps taken.
    pub step: u64,
    /// First moments, one per parameter.
    pub m: Vec<f32>,
    /// Second moments, one per parameter.
    pub v: Vec<f32>,
}

/// Adam over a fixed number of parameters, possibly spread over several buffers (groups are
/// laid end to end in the state, in the order given to [`Adam::step`]).
#[derive(Debug, Clone)]
pub struct Adam {
    config: AdamConfig,
    state: AdamState,
}

impl Adam {
    /// A fresh optimiser for `n` parameters.
    pub fn new(config: AdamConfig, n: usize) -> Self {
        Adam {
            config,
            state: AdamState {
                step: 0,
                m: vec![0.0; n],
                v: vec![0.0; n],
            },
        }
    }
    /// Restores an optimiser from saved state.
    pub fn from_state(config: AdamConfig, state: AdamState) -> Result<Self> {
        config.validate()?;
        if state.m.len() != state.v.len() {
            return Err(TensorError::Shape {
                what: "Adam state (m vs v)",
                expected: state.m.len(),
                got: state.v.len(),
            });
        }
        Ok(Adam { config, state })
    }
    /// The hyperparameters.
    pub fn config(&self) -> &AdamConfig {
        &self.config
    }
    /// The state.
    pub fn state(&self) -> &AdamState {
        &self.state
    }
    /// Sets the learning rate (for schedules).
    pub fn set_lr(&mut self, lr: f32) {
        self.config.lr = lr;
    }
    /// The learning rate.
    pub fn lr(&self) -> f32 {
        self.config.lr
    }

    /// One step over `(params, grads)` groups whose lengths add up to the state's size.
    pub fn step(&mut self, groups: &mut [(&mut [f32], &[f32])]) -> Result<()> {
        let total: usize = groups.iter().map(|(p, _)| p.len()).sum();
        if total != self.state.m.len() {
            return Err(TensorError::Shape {
                what: "Adam parameters",
                expected: self.state.m.len(),
                got: total,
            });
        }
        for (p, g) in groups.iter() {
            if p.len() != g.len() {
                return Err(TensorError::Shape {
                    what: "Adam gradient",
                    expected: p.len(),
                    got: g.len(),
                });
            }
        }
        self.state.step += 1;
        let c = self.config;
        let t = self.state.step as i32;
        let bc1 = 1.0 - (c.beta1 as f64).powi(t);
        let bc2 = 1.0 - (c.beta2 as f64).powi(t);
        let step_size = (c.lr as f64 / bc1) as f32;
        let inv_sqrt_bc2 = (1.0 / bc2.sqrt()) as f32;
        let mut off = 0;
        for (p, g) in groups.iter_mut() {
            let n = p.len();
            let m = &mut self.state.m[off..off + n];
            let v = &mut self.state.v[off..off + n];
            adam_kernel(p, g, m, v, c, step_size, inv_sqrt_bc2);
            off += n;
        }
        Ok(())
    }
}

fn adam_kernel(
    p: &mut [f32],
    g: &[f32],
    m: &mut [f32],
    v: &mut [f32],
    c: AdamConfig,
    step_size: f32,
    inv_sqrt_bc2: f32,
) {
    if c.weight_decay == 0.0 {
        adam_plain(p, g, m, v, c.beta1, c.beta2, c.eps, step_size, inv_sqrt_bc2);
        return;
    }
    let (b1, b2) = (c.beta1, c.beta2);
    for i in 0..p.len() {
        let mut gi = g[i];
        if c.decoupled {
            p[i] *= 1.0 - c.lr * c.weight_decay;
        } else {
            gi += c.weight_decay * p[i];
        }
        m[i] = b1 * m[i] + (1.0 - b1) * gi;
        v[i] = b2 * v[i] + (1.0 - b2) * gi * gi;
        let denom = v[i].sqrt() * inv_sqrt_bc2 + c.eps;
        p[i] -= step_size * m[i] / denom;
    }
}

multiversion! {
    /// Adam's update without weight decay, element by element in the same arithmetic as the
    /// general loop (vectorised; IEEE square root and division, so the same bits).
    #[allow(clippy::too_many_arguments)]
    fn adam_plain(
        p: &mut [f32],
        g: &[f32],
        m: &mut [f32],
        v: &mut [f32],
        b1: f32,
        b2: f32,
        eps: f32,
        step_size: f32,
        inv_sqrt_bc2: f32,
    ) {
        let n = p.len();
        let (g, m, v) = (&g[..n], &mut m[..n], &mut v[..n]);
        for (((pi, &gi), mi), vi) in p.iter_mut().zip(g).zip(m.iter_mut()).zip(v.iter_mut()) {
            *mi = b1 * *mi + (1.0 - b1) * gi;
            *vi = b2 * *vi + (1.0 - b2) * gi * gi;
            let denom = vi.sqrt() * inv_sqrt_bc2 + eps;
            *pi -= step_size * *mi / denom;
        }
    }
}

/// Scales the gradient buffers so their joint L2 norm is at most `max_norm`, as PyTorch's
/// `clip_grad_norm_` (factor `max_norm / (norm + 1e-6)`, capped at 1). Returns the norm
/// before clipping.
pub fn clip_grad_norm(grads: &mut [&mut [f32]], max_norm: f32) -> f32 {
    let sq: f64 = grads
        .iter()
        .flat_map(|g| g.iter())
        .map(|&x| (x as f64) * (x as f64))
        .sum();
    let norm = sq.sqrt() as f32;
    let coef = max_norm / (norm + 1e-6);
    if coef < 1.0 {
        for g in grads.iter_mut() {
            for x in g.iter_mut() {
                *x *= coef;
            }
        }
    }
    norm
}

/// Linear annealing as CleanRL writes it: at update `it` (1-based) of `iters`,
/// `lr = (1 − (it − 1) / iters) · lr0`.
///
/// ```
/// use taper_tensor::optim::linear_anneal;
/// assert_eq!(linear_anneal(1.0, 1, 4), 1.0);
/// assert_eq!(linear_anneal(1.0, 3, 4), 0.5);
/// ```
pub fn linear_anneal(lr0: f32, it: u64, iters: u64) -> f32 {
    if iters == 0 {
        return lr0;
    }
    let frac = 1.0 - (it.saturating_sub(1)) as f64 / iters as f64;
    (frac * lr0 as f64) as f32
}

#[cfg(test)]
mod tests {
    use super::*;

    /// Reference values from `torch.optim.Adam(lr=0.1)` on f(x) = x² from x = 1, written out by
    /// hand from the update rule: after step 1, x = 1 − 0.1 (the first step is ±lr).
    #[test]
    fn first_step_is_lr_sized() {
        let mut p = [1.0f32, -3.0];
        let mut opt = Adam::new(
            AdamConfig {
                lr: 0.1,
                ..Default::default()
            },
            2,
        );
        let g = [2.0f32, -6.0];
        opt.step(&mut [(&mut p[..], &g[..])]).unwrap();
        assert!((p[0] - 0.9).abs() < 1e-6 && (p[1] + 2.9).abs() < 1e-6);
    }

    /// Against candle's AdamW (weight decay 0 makes it plain Adam), 5 steps.
    #[test]
    fn matches_candle_adamw() -> candle_core::Result<()> {
        use candle_core::{Device, Tensor, Var};
        use candle_nn::{AdamW, Optimizer, ParamsAdamW};
        let init = vec![0.5f32, -1.5, 2.0];
        let var = Var::from_vec(init.clone(), 3, &Device::Cpu)?;
        let mut copt = AdamW::new(
            vec![var.clone()],
            ParamsAdamW {
                lr: 0.01,
                beta1: 0.9,
                beta2: 0.999,
                eps: 1e-8,
                weight_decay: 0.0,
            },
        )?;
        let mut p = init;
        let mut opt = Adam::new(
            AdamConfig {
                lr: 0.01,
                ..Default::default()
            },
            3,
        );
        for _ in 0..5 {
            let loss = (var.as_tensor().sqr()?.sum_all()? + var.as_tensor().sum_all()?)?;
            copt.backward_step(&loss)?;
            let g: Vec<f32> = p.iter().map(|x| 2.0 * x + 1.0).collect();
            opt.step(&mut [(&mut p[..], &g[..])]).unwrap();
        }
        let c = var.as_tensor().to_vec1::<f32>()?;
        for (a, b) in p.iter().zip(&c) {
            assert!((a - b).abs() < 2e-6, "{a} vs {b}");
        }
        let _ = Tensor::new(0f32, &Device::Cpu)?;
        Ok(())
    }

    #[test]
    fn clip_returns_norm_and_scales() {
        let mut a = [3.0f32];
        let mut b = [4.0f32];
        let n = clip_grad_norm(&mut [&mut a[..], &mut b[..]], 1.0);
        assert!((n - 5.0).abs() < 1e-6);
        assert!(((a[0] * a[0] + b[0] * b[0]).sqrt() - 1.0).abs() < 1e-5);
        let mut c = [0.1f32];
        clip_grad_norm(&mut [&mut c[..]], 1.0);
        assert_eq!(c[0], 0.1);
    }

    #[test]
    fn invalid_configs() {
        assert!(AdamConfig {
            lr: -1.0,
            ..Default::default()
        }
        .validate()
        .is_err());
        assert!(AdamConfig {
            beta1: 1.0,
            ..Default::default()
        }
        .validate()
        .is_err());
        assert!(AdamConfig {
            eps: 0.0,
            ..Default::default()
        }
        .validate()
        .is_err());
        let mut opt = Adam::new(AdamConfig::default(), 3);
        let mut p = [0f32; 2];
        assert!(opt.step(&mut [(&mut p[..], &[0.0, 0.0][..])]).is_err());
    }
}
