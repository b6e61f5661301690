//! Gaussian distributional critics: a critic network with two outputs per row, a mean `μ` and
//! a raw scale turned into `σ > 0`, and the losses and targets of the two algorithms that use
//! them:
//!
//! - **STAC** ("Stochastic Actor-Critic", Özalp 2026): one Gaussian critic of the one-step
//!   return, learned by its negative log-likelihood ([`gaussian_nll`]) against the pessimistic
//!   target `y = r + γ(1 − d)·(μ' − β·σ' − α·log π')` ([`stac_target`]);
//! - **DSAC-T** (Duan et al., "Distributional Soft Actor-Critic with Three Refinements", as
//!   its official code computes them): twin Gaussian critics, the target of the one whose
//!   target mean is smaller ([`dsac_t_targets`]), the mean learned against the expected-value
//!   target and the scale against a sampled target clipped to `±3σ̂` of the mean, with a
//!   per-row weight `ω = clamp(σ̂² / (σ² + 0.1), 0.1, 10)` ([`dsac_t_loss`]); `σ̂` is a moving
//!   average of the batch-mean `σ` ([`SigmaEma`]).
//!
//! Each loss returns its gradients with respect to `μ` and `σ` (the stop-gradients of the
//! reference code included), and [`GaussianHead`] chains the `σ` gradient back to the raw
//! output.

use crate::error::{check_len, Result};
use serde::{Deserialize, Serialize};

/// How a critic's raw second output becomes `σ`: `softplus(max(raw, min_raw))` (STAC clips
/// the raw value at −5 first; DSAC-T's code applies softplus alone, `min_raw = −∞`).
#[derive(Debug, Clone, Copy, PartialEq, Serialize, Deserialize)]
pub struct GaussianHead {
    /// The raw value's lower clip.
    pub min_raw: f32,
}

impl GaussianHead {
    /// STAC's head: `σ = softplus(max(raw, −5))`.
    pub fn stac() -> Self {
        GaussianHead { min_raw: -5.0 }
    }
    /// DSAC-T's head: `σ = softplus(raw)`.
    pub fn dsac_t() -> Self {
        GaussianHead {
            min_raw: f32::NEG_INFINITY,
        }
    }
    /// Splits `n` rows of raw outputs `[n, 2]` into means and scales.
    pub fn split(&self, raw: &[f32], n: usize, mu: &mut [f32], sigma: &mut [f32]) -> Result<()> {
        check_len("raw critic outputs", 2 * n, raw.len())?;
        check_len("means", n, mu.len())?;
        check_len("scales", n, sigma.len())?;
        for r in 0..n {
            mu[r] = raw[2 * r];
            sigma[r] = softplus(raw[2 * r + 1].max(self.min_raw));
        }
        Ok(())
    }
    /// The gradient with respect to the raw outputs `[n, 2]` of one with respect to the means
    /// and scales: `∂σ/∂raw = sigmoid(raw)`, 0 below the clip.
    pub fn backward(&self, raw: &[f32], dmu: &[f32], dsigma: &[f32], draw: &mut [f32]) -> Result<()> {
        let n = dmu.len();
        check_len("raw critic outputs", 2 * n, raw.len())?;
        check_len("scale gradient", n, dsigma.len())?;
        check_len("raw gradient", 2 * n, draw.len())?;
        for r in 0..n {
            let x = raw[2 * r + 1];
            draw[2 * r] = dmu[r];
            draw[2 * r + 1] = if x < self.min_raw { 0.0 } else { dsigma[r] * sigmoid(x) };
        }
        Ok(())
    }
}

/// `ln(1 + eˣ)`, without overflow.
pub fn softplus(x: f32) -> f32 {
    if x > 20.0 {
        x
    } else {
        x.exp().ln_1p()
    }
}

fn sigmoid(x: f32) -> f32 {
    1.0 / (1.0 + (-x).exp())
}

/// The mean negative log-likelihood of targets `y` under `N(μ, σ²)`, without the constant:
/// `mean(ln σ + (y − μ)² / 2σ²)`; writes its gradients with respect to `μ` and `σ`.
pub fn gaussian_nll(mu: &[f32], sigma: &[f32], y: &[f32], dmu: &mut [f32], dsigma: &mut [f32]) -> Result<f32> {
    let n = mu.len();
    for (what, len) in [
        ("scales", sigma.len()),
        ("targets", y.len()),
        ("mean gradient", dmu.len()),
        ("scale gradient", dsigma.len()),
    ] {
        check_len(what, n, len)?;
    }
    if n == 0 {
        return Ok(0.0);
    }
    let inv = 1.0 / n as f32;
    let mut loss = 0f64;
    for i in 0..n {
        let (s, e) = (sigma[i], y[i] - mu[i]);
        loss += (s.ln() + e * e / (2.0 * s * s)) as f64;
        dmu[i] = -e / (s * s) * inv;
        dsigma[i] = (1.0 / s - e * e / (s * s * s)) * inv;
    }
    Ok((loss / n as f64) as f32)
}

/// STAC's pessimistic one-step target, `r + γ(1 − d)·(μ' − β·σ' − α·log π(a'|s'))`, from the
/// lagged critic's mean and scale at the next state and a sampled next action.
#[allow(clippy::too_many_arguments)]
pub fn stac_target(
    reward: f32,
    gamma: f32,
    done: bool,
    mu_next: f32,
    sigma_next: f32,
    beta: f32,
    alpha: f32,
    logp_next: f32,
) -> f32 {
    let cont = if done { 0.0 } else { gamma };
    reward + cont * (mu_next - beta * sigma_next - alpha * logp_next)
}

/// DSAC-T's targets for one row, from the two target critics' means `q̄` and scales `σ̄` at
/// the next state and action, a standard normal draw `ξ` (clipped to ±3) and the next
/// action's log-probability: with `j` the critic of the smaller mean, returns the
/// expected-value target `y_q = r + γ(1 − d)(q̄_j − α·log π')` and the sampled target
/// `y_z = r + γ(1 − d)(q̄_j + clip(ξ, −3, 3)·σ̄_j − α·log π')`.
#[allow(clippy::too_many_arguments)]
pub fn dsac_t_targets(
    reward: f32,
    gamma: f32,
    done: bool,
    q_next: [f32; 2],
    sigma_next: [f32; 2],
    xi: [f32; 2],
    alpha: f32,
    logp_next: f32,
) -> (f32, f32) {
    let j = if q_next[1] < q_next[0] { 1 } else { 0 };
    let cont = if done { 0.0 } else { gamma };
    let z = q_next[j] + xi[j].clamp(-3.0, 3.0) * sigma_next[j];
    (
        reward + cont * (q_next[j] - alpha * logp_next),
        reward + cont * (z - alpha * logp_next),
    )
}

/// The Huber loss with threshold `delta`: `½x²` inside `±delta`, linear outside.
pub fn huber(x: f32, delta: f32) -> f32 {
    if x.abs() <= delta {
        0.5 * x * x
    } else {
        delta * (x.abs() - 0.5 * delta)
    }
}

fn huber_grad(x: f32, delta: f32) -> f32 {
    x.clamp(-delta, delta)
}

/// The Huber threshold of DSAC-T's code.
pub const DSAC_T_HUBER: f32 = 50.0;

/// One DSAC-T critic's loss over a batch, as the official code computes it, with `σ̂` the
/// critic's moving-average scale ([`SigmaEma`]):
///
/// ```text
/// ỹ = sg(Q) + clip(y_z − sg(Q), −3σ̂, 3σ̂)              (TD clipping)
/// ω = clamp(σ̂² / (sg(σ)² + 0.1), 0.1, 10)              (variance-based adjustment)
/// L = mean ω·[Huber(Q − y_q) + σ·(sg(σ)² − Huber(sg(Q) − ỹ)) / (sg(σ) + 0.1)]
/// ```
///
/// with `sg` a stop-gradient and the Huber threshold 50. Writes `∂L/∂Q` and `∂L/∂σ`, which
/// inside the threshold are `ω(Q − y_q)/n` and `ω(σ² − ½(Q − ỹ)²)/((σ + 0.1)·n)`.
pub fn dsac_t_loss(
    q: &[f32],
    sigma: &[f32],
    y_q: &[f32],
    y_z: &[f32],
    sigma_hat: f32,
    dq: &mut [f32],
    dsigma: &mut [f32],
) -> Result<f32> {
    let n = q.len();
    for (what, len) in [
        ("scales", sigma.len()),
        ("mean targets", y_q.len()),
        ("sampled targets", y_z.len()),
        ("mean gradient", dq.len()),
        ("scale gradient", dsigma.len()),
    ] {
        check_len(what, n, len)?;
    }
    if n == 0 {
        return Ok(0.0);
    }
    let bound = 3.0 * sigma_hat;
    let inv = 1.0 / n as f32;
    let mut loss = 0f64;
    for i in 0..n {
        let (qi, s) = (q[i], sigma[i]);
        let yt = qi + (y_z[i] - qi).clamp(-bound, bound);
        let w = (sigma_hat * sigma_hat / (s * s + 0.1)).clamp(0.1, 10.0);
        let hz = huber(qi - yt, DSAC_T_HUBER);
        let term = huber(qi - y_q[i], DSAC_T_HUBER) + s * (s * s - hz) / (s + 0.1);
        loss += (w * term) as f64;
        dq[i] = w * huber_grad(qi - y_q[i], DSAC_T_HUBER) * inv;
        dsigma[i] = w * (s * s - hz) / (s + 0.1) * inv;
    }
    Ok((loss / n as f64) as f32)
}

/// DSAC-T's moving average of a critic's batch-mean `σ`: the first batch sets it, later ones
/// move it by `rate` (the code's τ_b, equal to the Polyak rate 0.005).
#[derive(Debug, Clone, Copy, PartialEq, Serialize, Deserialize)]
pub struct SigmaEma {
    /// The current average (`None` before the first batch).
    pub value: Option<f32>,
    /// The update rate.
    pub rate: f32,
}

impl SigmaEma {
    /// An empty average with update rate `rate`.
    pub fn new(rate: f32) -> Self {
        SigmaEma { value: None, rate }
    }
    /// Folds in a batch of scales; returns the new average.
    pub fn update(&mut self, sigma: &[f32]) -> f32 {
        let mean = sigma.iter().map(|&s| s as f64).sum::<f64>() / sigma.len().max(1) as f64;
        let v = match self.value {
            None => mean as f32,
            Some(v) => (1.0 - self.rate) * v + self.rate * mean as f32,
        };
        self.value = Some(v);
        v
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// The NLL and its gradient: a hand-computed case and central differences.
    #[test]
    fn gaussian_nll_hand_computed_and_finite_differences() {
        // μ 1, σ 2, y 3: ln 2 + 4/8 = 1.19315; ∂μ = −(3−1)/4 = −0.5; ∂σ = 1/2 − 4/8 = 0.
        let (mut dm, mut ds) = ([0f32], [0f32]);
        let l = gaussian_nll(&[1.0], &[2.0], &[3.0], &mut dm, &mut ds).unwrap();
        assert!((l - (2f32.ln() + 0.5)).abs() < 1e-6 && (dm[0] + 0.5).abs() < 1e-6 && ds[0].abs() < 1e-6);
        let mu = [0.3f32, -1.0, 2.0];
        let sigma = [0.5f32, 1.5, 0.8];
        let y = [1.0f32, -0.2, 2.1];
        let (mut dm, mut ds) = ([0f32; 3], [0f32; 3]);
        gaussian_nll(&mu, &sigma, &y, &mut dm, &mut ds).unwrap();
        let f = |m: &[f32], s: &[f32]| gaussian_nll(m, s, &y, &mut [0.0; 3], &mut [0.0; 3]).unwrap() as f64;
        for i in 0..3 {
            let h = 1e-3;
            let (mut mp, mut mm) = (mu, mu);
            mp[i] += h;
            mm[i] -= h;
            let fd = (f(&mp, &sigma) - f(&mm, &sigma)) / (2.0 * h as f64);
            assert!((fd - dm[i] as f64).abs() < 1e-3, "μ {i}: {fd} vs {}", dm[i]);
            let (mut sp, mut sm) = (sigma, sigma);
            sp[i] += h;
            sm[i] -= h;
            let fd = (f(&mu, &sp) - f(&mu, &sm)) / (2.0 * h as f64);
            assert!((fd - ds[i] as f64).abs() < 1e-3, "σ {i}: {fd} vs {}", ds[i]);
        }
    }

    /// STAC's target on a hand-computed case: pessimism lowers it by β·σ', a terminal keeps
    /// only the reward.
    #[test]
    fn stac_pessimistic_target() {
        // 1 + 0.99·(5 − 0.5·2 − 0.2·(−1.5)) = 1 + 0.99·4.3 = 5.257
        let y = stac_target(1.0, 0.99, false, 5.0, 2.0, 0.5, 0.2, -1.5);
        assert!((y - 5.257).abs() < 1e-5, "{y}");
        let y0 = stac_target(1.0, 0.99, false, 5.0, 2.0, 0.0, 0.2, -1.5);
        assert!((y0 - y - 0.99 * 0.5 * 2.0).abs() < 1e-5);
        assert_eq!(stac_target(1.0, 0.99, true, 5.0, 2.0, 0.5, 0.2, -1.5), 1.0);
    }

    /// DSAC-T's targets take the critic of the smaller mean, and clip the draw at ±3.
    #[test]
    fn dsac_t_targets_pick_the_smaller_mean() {
        // Critic 1 has the smaller mean: y_q = 0.5 + 0.9·(2 − 0.1·(−2)) = 2.48;
        // y_z adds 0.9·clip(4, −3, 3)·σ̄₁ = 0.9·3·0.5 = 1.35.
        let (yq, yz) = dsac_t_targets(0.5, 0.9, false, [3.0, 2.0], [1.0, 0.5], [0.0, 4.0], 0.1, -2.0);
        assert!((yq - 2.48).abs() < 1e-5 && (yz - 3.83).abs() < 1e-5, "{yq} {yz}");
        let (yq, yz) = dsac_t_targets(0.5, 0.9, true, [3.0, 2.0], [1.0, 0.5], [0.0, 4.0], 0.1, -2.0);
        assert_eq!((yq, yz), (0.5, 0.5));
    }

    /// DSAC-T's loss: its value on a hand-computed row, and its gradients against the
    /// reference's formulas `ω(Q − y_q)` and `ω(σ² − ½(Q − ỹ)²)/(σ + 0.1)` (per row, over n),
    /// including a clipped TD error, a clamped ω and an error past the Huber threshold.
    #[test]
    fn dsac_t_loss_matches_the_reference_formulas() {
        // Q 1, σ 1, y_q 2, y_z 4, σ̂ 0.5: ỹ = 1 + clip(3, ±1.5) = 2.5; ω = 0.25/1.1;
        // L = ω·[½ + (1 − ½·1.5²)/1.1] = ω·(0.5 − 0.125/1.1).
        let (mut dq, mut ds) = ([0f32], [0f32]);
        let l = dsac_t_loss(&[1.0], &[1.0], &[2.0], &[4.0], 0.5, &mut dq, &mut ds).unwrap();
        let w = 0.25f32 / 1.1;
        assert!((l - w * (0.5 - 0.125 / 1.1)).abs() < 1e-6, "{l}");
        assert!((dq[0] - w * (1.0 - 2.0)).abs() < 1e-6);
        assert!((ds[0] - w * (1.0 - 0.5 * 1.5 * 1.5) / 1.1).abs() < 1e-6);
        let q = [0.0f32, 5.0, -3.0, 100.0];
        let sigma = [0.2f32, 3.0, 1.0, 2.0];
        let y_q = [0.5f32, 4.0, -2.0, 0.0];
        let y_z = [0.1f32, 20.0, -3.5, 1.0];
        let sh = 1.2f32;
        let (mut dq, mut ds) = ([0f32; 4], [0f32; 4]);
        dsac_t_loss(&q, &sigma, &y_q, &y_z, sh, &mut dq, &mut ds).unwrap();
        for i in 0..4 {
            let w = (sh * sh / (sigma[i] * sigma[i] + 0.1)).clamp(0.1, 10.0);
            let yt = q[i] + (y_z[i] - q[i]).clamp(-3.0 * sh, 3.0 * sh);
            let err = q[i] - y_q[i];
            let gq = if err.abs() <= 50.0 { err } else { 50.0 * err.signum() };
            let want_q = w * gq / 4.0;
            let want_s = w * (sigma[i] * sigma[i] - 0.5 * (q[i] - yt).powi(2)) / (sigma[i] + 0.1) / 4.0;
            assert!((dq[i] - want_q).abs() < 1e-5, "row {i}: ∂Q {} vs {want_q}", dq[i]);
            assert!((ds[i] - want_s).abs() < 1e-5, "row {i}: ∂σ {} vs {want_s}", ds[i]);
        }
        // Row 0's ω is clamped at 10 (1.44 / 0.14 > 10); row 3's error is past the threshold.
        assert!((sh * sh / (0.04 + 0.1)) > 10.0 && (q[3] - y_q[3]).abs() > 50.0);
    }

    /// The head's σ is positive, clipped below for STAC, and its gradient chains through the
    /// softplus (checked by central differences).
    #[test]
    fn gaussian_head_split_and_backward() {
        let raw = [0.5f32, -0.3, 2.0, -7.0, -1.0, 25.0];
        for head in [GaussianHead::stac(), GaussianHead::dsac_t()] {
            let (mut mu, mut s) = ([0f32; 3], [0f32; 3]);
            head.split(&raw, 3, &mut mu, &mut s).unwrap();
            assert_eq!(mu, [0.5, 2.0, -1.0]);
            assert!(s.iter().all(|&x| x > 0.0));
            let dmu = [1.0f32, -2.0, 0.5];
            let dsig = [0.3f32, 1.0, -0.7];
            let mut draw = [0f32; 6];
            head.backward(&raw, &dmu, &dsig, &mut draw).unwrap();
            for r in 0..3 {
                assert_eq!(draw[2 * r], dmu[r]);
                let x = raw[2 * r + 1];
                let h = 1e-3;
                let fd = (softplus((x + h).max(head.min_raw)) - softplus((x - h).max(head.min_raw))) / (2.0 * h);
                assert!((draw[2 * r + 1] - dsig[r] * fd).abs() < 1e-3, "{head:?} row {r}");
            }
        }
        let (mut mu, mut s) = ([0f32; 3], [0f32; 3]);
        GaussianHead::stac().split(&raw, 3, &mut mu, &mut s).unwrap();
        assert!((s[1] - softplus(-5.0)).abs() < 1e-7, "clipped at −5");
        assert!(GaussianHead::stac().split(&raw, 2, &mut mu, &mut s).is_err());
    }

    #[test]
    fn sigma_ema_starts_at_the_first_batch() {
        let mut e = SigmaEma::new(0.005);
        assert_eq!(e.update(&[1.0, 3.0]), 2.0);
        assert!((e.update(&[4.0]) - (0.995 * 2.0 + 0.005 * 4.0)).abs() < 1e-6);
    }
}
