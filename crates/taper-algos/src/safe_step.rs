//! The safe-step stage of softmax actors held as flat-buffer MLPs (PPO, IPPO, MAPPO and
//! MADDPG): measure an update the optimizer just applied against the softmax radius
//! (`taper_diagnostics::safe_step`), and with a target scale it back.

use crate::{AlgoError, Result};
use taper_tensor::mlp::{Mlp, MlpCache};

/// The finite-difference step of the directional logit derivatives (f32 logits of order 1
/// keep about three digits at this step).
pub(crate) const RADIUS_EPS: f32 = 1e-3;

/// Scratch of [`limit_step`]: the parameters before the update, after it, and the probe's
/// forward cache.
#[derive(Debug, Default, Clone)]
pub(crate) struct StepScratch {
    /// The actor's parameters before the update (filled by [`StepScratch::remember`]).
    pub theta0: Vec<f32>,
    theta1: Vec<f32>,
    probe: MlpCache,
}

impl StepScratch {
    /// Keeps the actor's parameters before an update.
    pub fn remember(&mut self, actor: &Mlp) {
        self.theta0.clear();
        self.theta0.extend_from_slice(actor.params());
    }
}

/// Measures the update `p = θ₁ − θ₀` just applied to `actor` (its parameters before it in
/// `s.theta0`, the logits there of the `m` rows of `obs` in `z0`) and, with a target, scales
/// it down so that its normalised step `r = ‖p‖/ρ_a` over the rows is at most the target;
/// returns the applied step's `r` (0 for no step). The logits' directional derivatives come
/// from a probe at `θ₀ + RADIUS_EPS·p/‖p‖`; the parameters are restored bit for bit when
/// nothing is scaled, so measuring never changes what is learned.
pub(crate) fn limit_step(
    actor: &mut Mlp,
    s: &mut StepScratch,
    z0: &[f32],
    obs: &[f32],
    m: usize,
    target: Option<f32>,
) -> Result<f32> {
    s.theta1.clear();
    s.theta1.extend_from_slice(actor.params());
    let norm = s
        .theta1
        .iter()
        .zip(&s.theta0)
        .map(|(a, b)| ((a - b) as f64).powi(2))
        .sum::<f64>()
        .sqrt() as f32;
    if norm == 0.0 {
        return Ok(0.0);
    }
    let h = RADIUS_EPS / norm;
    for ((p, &a), &b) in actor.params_mut().iter_mut().zip(&s.theta0).zip(&s.theta1) {
        *p = a + h * (b - a);
    }
    let z1 = actor.forward(obs, m, &mut s.probe)?;
    let (scale, applied) =
        taper_diagnostics::safe_step::limit(z0, z1, actor.output_dim(), RADIUS_EPS, None, norm, target).map_err(
            |e| AlgoError::Config {
                field: "step_radius_target",
                reason: e.to_string(),
            },
        )?;
    if scale < 1.0 {
        for ((p, &a), &b) in actor.params_mut().iter_mut().zip(&s.theta0).zip(&s.theta1) {
            *p = a + scale * (b - a);
        }
    } else {
        actor.params_mut().copy_from_slice(&s.theta1);
    }
    Ok(applied.r)
}

#[cfg(test)]
mod tests {
    use super::*;
    use taper_tensor::mlp::{Activation, MlpInit};
    use taper_tensor::rng::{stream, Purpose};

    /// A linear softmax actor: its logits are linear in the parameters, so the probe's
    /// directional derivatives are exact and `r` has a closed form.
    #[test]
    fn measures_a_linear_actor_exactly_and_scales_to_the_target() {
        let mut rng = stream(5, Purpose::Init, 0);
        let mut actor = Mlp::new(&[3, 4], Activation::Tanh, MlpInit::TorchDefault, &mut rng).unwrap();
        let obs = [0.5f32, -1.0, 2.0, 1.5, 0.25, -0.75];
        let mut cache = MlpCache::default();
        let z0 = actor.forward(&obs, 2, &mut cache).unwrap().to_vec();
        let mut s = StepScratch::default();
        s.remember(&actor);
        // A step that moves only the bias of action 0 by b: Δ_a = 1 in every row along the
        // unit direction, so ρ_a = π and r = b/π.
        let b = 3.0f32;
        let n = actor.num_params();
        actor.params_mut()[n - 4] += b;
        let after = actor.params().to_vec();
        let r = limit_step(&mut actor, &mut s, &z0, &obs, 2, None).unwrap();
        assert!((r - b / std::f32::consts::PI).abs() < 1e-3, "{r}");
        assert_eq!(actor.params(), &after[..], "measuring alone changes nothing");
        // With a target the step is scaled to r = target exactly.
        actor.params_mut().copy_from_slice(&s.theta0);
        s.remember(&actor);
        actor.params_mut()[n - 4] += b;
        let r = limit_step(&mut actor, &mut s, &z0, &obs, 2, Some(0.5)).unwrap();
        assert!((r - 0.5).abs() < 1e-4, "{r}");
        let moved = actor.params()[n - 4] - s.theta0[n - 4];
        assert!((moved - 0.5 * std::f32::consts::PI).abs() < 1e-3, "{moved}");
        // No step, no radius.
        s.remember(&actor);
        assert_eq!(limit_step(&mut actor, &mut s, &z0, &obs, 2, Some(0.5)).unwrap(), 0.0);
    }
}
