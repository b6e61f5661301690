//! Adam over candle [`Var`]s, on their device: the same update as [`crate::optim::Adam`]
//! (PyTorch's, ε after the bias-corrected √v), with the moments kept as device tensors, so a
//! model that lives on a GPU never sends its parameters or gradients to the host. Also the
//! global gradient-norm clip over such gradients. The moments save as named tensors, so a run
//! resumes exactly.
//!
//! ```
//! use taper_tensor::var_adam::VarAdam;
//! use taper_tensor::optim::AdamConfig;
//! use candle_core::{Device, Tensor, Var};
//! let w = Var::new(&[1.0f32, -2.0], &Device::Cpu)?;
//! let mut opt = VarAdam::new(AdamConfig { lr: 0.1, ..AdamConfig::default() }, &[w.clone()])?;
//! opt.step(&[w.clone()], &[Tensor::new(&[0.5f32, -0.5], &Device::Cpu)?])?;
//! assert_eq!(w.as_tensor().to_vec1::<f32>()?, vec![0.9, -1.9]); // the first step is lr·sign(g)
//! # Ok::<(), taper_tensor::TensorError>(())
//! ```

use crate::error::{Result, TensorError};
use crate::optim::AdamConfig;
use candle_core::{Device, Tensor, Var};

/// Adam's state over a fixed list of variables.
#[derive(Debug, Clone)]
pub struct VarAdam {
    config: AdamConfig,
    m: Vec<Tensor>,
    v: Vec<Tensor>,
    step: u64,
}

impl VarAdam {
    /// Zero moments shaped like `vars`.
    pub fn new(config: AdamConfig, vars: &[Var]) -> Result<Self> {
        let zeros = |v: &Var| v.as_tensor().zeros_like().map_err(TensorError::from);
        Ok(VarAdam {
            config,
            m: vars.iter().map(zeros).collect::<Result<_>>()?,
            v: vars.iter().map(zeros).collect::<Result<_>>()?,
            step: 0,
        })
    }

    /// Steps taken.
    pub fn steps(&self) -> u64 {
        self.step
    }
    /// The learning rate.
    pub fn lr(&self) -> f32 {
        self.config.lr
    }
    /// Sets the learning rate (annealing).
    pub fn set_lr(&mut self, lr: f32) {
        self.config.lr = lr;
    }

    /// One update of `vars` with `grads` (same order and shapes as at construction).
    pub fn step(&mut self, vars: &[Var], grads: &[Tensor]) -> Result<()> {
        if vars.len() != self.m.len() || grads.len() != vars.len() {
            return Err(TensorError::Shape {
                what: "Adam variables",
                expected: self.m.len(),
                got: vars.len().min(grads.len()),
            });
        }
        self.step += 1;
        let c = self.config;
        let t = self.step as i32;
        let bc1 = 1.0 - (c.beta1 as f64).powi(t);
        let bc2 = 1.0 - (c.beta2 as f64).powi(t);
        for (i, (var, g)) in vars.iter().zip(grads).enumerate() {
            let p = var.as_tensor();
            let mut g = g.clone();
            if c.weight_decay != 0.0 && !c.decoupled {
                g = (g + (p * c.weight_decay as f64)?)?;
            }
            self.m[i] = ((&self.m[i] * c.beta1 as f64)? + (&g * (1.0 - c.beta1 as f64))?)?;
            self.v[i] = ((&self.v[i] * c.beta2 as f64)? + (g.sqr()? * (1.0 - c.beta2 as f64))?)?;
            let denom = ((&self.v[i] / bc2)?.sqrt()? + c.eps as f64)?;
            let mut next = (p - ((&self.m[i] / denom)? * (c.lr as f64 / bc1))?)?;
            if c.weight_decay != 0.0 && c.decoupled {
                next = (next - (p * (c.lr as f64 * c.weight_decay as f64))?)?;
            }
            var.set(&next)?;
        }
        Ok(())
    }

    /// The moments as named host tensors (`{prefix}.m.{i}`, `{prefix}.v.{i}`).
    pub fn to_tensors(&self, prefix: &str) -> Result<Vec<(String, Tensor)>> {
        let mut out = Vec::with_capacity(2 * self.m.len());
        for (i, (m, v)) in self.m.iter().zip(&self.v).enumerate() {
            out.push((format!("{prefix}.m.{i}"), m.to_device(&Device::Cpu)?.copy()?));
            out.push((format!("{prefix}.v.{i}"), v.to_device(&Device::Cpu)?.copy()?));
        }
        Ok(out)
    }

    /// Restores moments written by [`VarAdam::to_tensors`] and the step count.
    pub fn load(&mut self, prefix: &str, t: &std::collections::HashMap<String, Tensor>, step: u64) -> Result<()> {
        for i in 0..self.m.len() {
            for (which, slot) in [("m", &mut self.m[i]), ("v", &mut self.v[i])] {
                let key = format!("{prefix}.{which}.{i}");
                let src = t.get(&key).ok_or_else(|| TensorError::Invalid {
                    name: "tensors",
                    reason: format!("missing optimizer tensor `{key}`"),
                })?;
                if src.dims() != slot.dims() {
                    return Err(TensorError::Invalid {
                        name: "tensors",
                        reason: format!("`{key}` has shape {:?}, expected {:?}", src.dims(), slot.dims()),
                    });
                }
                *slot = src.to_device(slot.device())?;
            }
        }
        self.step = step;
        Ok(())
    }
}

/// Scales `grads` so that their global L2 norm is at most `max_norm` (PyTorch's
/// `clip_grad_norm_`, with its 1e-6); returns the norm before clipping (one value downloaded).
pub fn clip_grad_norm(grads: &mut [Tensor], max_norm: f32) -> Result<f32> {
    let mut total = 0f64;
    for g in grads.iter() {
        total += g.sqr()?.sum_all()?.to_scalar::<f32>()? as f64;
    }
    let norm = total.sqrt();
    let coef = max_norm as f64 / (norm + 1e-6);
    if coef < 1.0 {
        for g in grads.iter_mut() {
            *g = (&*g * coef)?;
        }
    }
    Ok(norm as f32)
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::optim::Adam;

    /// Five steps on two variables equal the host Adam's, with and without weight decay.
    #[test]
    fn equals_the_host_adam() -> Result<()> {
        for (wd, decoupled) in [(0.0, false), (0.01, false), (0.01, true)] {
            let cfg = AdamConfig {
                lr: 0.05,
                weight_decay: wd,
                decoupled,
                ..AdamConfig::default()
            };
            let (a0, b0) = (vec![0.3f32, -1.2, 2.0], vec![0.7f32, 0.1]);
            let a = Var::from_vec(a0.clone(), 3, &Device::Cpu)?;
            let b = Var::from_vec(b0.clone(), 2, &Device::Cpu)?;
            let mut dev = VarAdam::new(cfg, &[a.clone(), b.clone()])?;
            let mut host = Adam::new(cfg, 5);
            let (mut ha, mut hb) = (a0, b0);
            for k in 0..5 {
                let ga: Vec<f32> = (0..3).map(|i| ((i + k) as f32 * 0.37).sin()).collect();
                let gb: Vec<f32> = (0..2).map(|i| ((i * 2 + k) as f32 * 0.11).cos()).collect();
                dev.step(
                    &[a.clone(), b.clone()],
                    &[
                        Tensor::new(ga.as_slice(), &Device::Cpu)?,
                        Tensor::new(gb.as_slice(), &Device::Cpu)?,
                    ],
                )?;
                host.step(&mut [(&mut ha[..], &ga[..]), (&mut hb[..], &gb[..])])?;
            }
            for (x, y) in a.as_tensor().to_vec1::<f32>()?.iter().zip(&ha) {
                assert!((x - y).abs() < 1e-6, "{x} vs {y}");
            }
            for (x, y) in b.as_tensor().to_vec1::<f32>()?.iter().zip(&hb) {
                assert!((x - y).abs() < 1e-6, "{x} vs {y}");
            }
            // The state round-trips.
            let t: std::collections::HashMap<_, _> = dev.to_tensors("opt")?.into_iter().collect();
            let mut back = VarAdam::new(cfg, &[a.clone(), b.clone()])?;
            back.load("opt", &t, dev.steps())?;
            assert_eq!(back.steps(), 5);
            assert_eq!(back.m[0].to_vec1::<f32>()?, dev.m[0].to_vec1::<f32>()?);
        }
        Ok(())
    }

    #[test]
    fn clipping_scales_to_the_max_norm() -> Result<()> {
        let mut g = vec![
            Tensor::new(&[3.0f32], &Device::Cpu)?,
            Tensor::new(&[4.0f32], &Device::Cpu)?,
        ];
        let n = clip_grad_norm(&mut g, 1.0)?;
        assert!((n - 5.0).abs() < 1e-6);
        let after: f32 = g.iter().map(|t| t.to_vec1::<f32>().unwrap()[0].powi(2)).sum();
        assert!((after.sqrt() - 1.0).abs() < 1e-5);
        let mut small = vec![Tensor::new(&[0.1f32], &Device::Cpu)?];
        clip_grad_norm(&mut small, 1.0)?;
        assert_eq!(small[0].to_vec1::<f32>()?, vec![0.1]);
        Ok(())
    }
}
