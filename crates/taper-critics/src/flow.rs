//! A flow-matching critic (floq: Agrawalla, Nauman, Agarwal, Kumar, ICLR 2026): `Q(s, a)` is
//! not a network's output but the end point of a flow. A velocity field `v_θ(t, z | s, a)` on
//! a scalar latent `z` carries noise to the value by `K` Euler steps,
//!
//! ```text
//! z_0 ~ U[l, u],   z_{k+1} = z_k + v_θ(k/K, z_k | s, a) / K,   Q(s, a) = E[z_K]
//! ```
//!
//! and learns by flow matching toward the TD target `y`: on the straight path
//! `z_t = (1 − t)·z_0 + t·y` the velocity is `y − z_0`, so the loss is
//! `E_{t ~ U[0,1], z_0 ~ U[l,u]} (v_θ(t, z_t | s, a) − (y − z_0))²`.
//!
//! Two input encodings keep the field from collapsing to a constant velocity (floq's design):
//! `t` enters through a Fourier embedding (`sin`, `cos` of `π·f·t` for `f = 1 … T/2`), and `z`
//! as an HL-Gauss histogram over `[q_min, q_max]` with `z_bins` bins and `σ = z_sigma` bin
//! widths (floq: 51 bins and 16 widths, so that most bins are non-zero). The noise interval
//! is narrow and sits at the top of the value range (floq: `κ·[r_min, r_max]/(1 − γ)` with
//! `κ = 0.1`), so the flow must curve and more steps add capacity.
//!
//! What is ours, not floq's: the expectation over `z_0` in a read-out is a fixed quadrature, the
//! midpoints of `samples` equal slices of `[l, u]`, so `Q` is a deterministic function (the
//! reference averages random draws); the loss averages over its `samples` draws per row where
//! the reference sums (Adam's step does not see the constant factor); and the Fourier
//! frequencies are the integers `1 … T/2`.
//!
//! [`Flow`] holds the settings and the numerics on any [`Mlp`] whose input is a row of `x`
//! followed by [`Flow::feature_dim`] features and whose output is one velocity: the read-out
//! ([`Flow::readout`]), its input gradient through every Euler step
//! ([`Flow::readout_backward`]), and the loss with its parameter gradient ([`Flow::loss`]).
//! [`FlowQ`] is such a network on `[o, a]` rows as a [`QCritic`].

use crate::error::{check_len, Result};
use crate::q::{action_columns, join_rows};
use crate::traits::QCritic;
use crate::CriticError;
use rand::Rng;
use serde::{Deserialize, Serialize};
use taper_tensor::mlp::{Activation, Mlp, MlpCache, MlpInit};

/// A flow critic's settings. See the module doc. Read from a file, `noise` and `support` are
/// required and the others default to floq's values.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Flow {
    /// Euler steps `K` of a read-out (floq: 8).
    #[serde(default = "eight")]
    pub steps: usize,
    /// Noise points `z_0` per row, in read-outs and in the loss (floq: 8).
    #[serde(default = "eight")]
    pub samples: usize,
    /// The noise interval `[l, u]`.
    pub noise: [f32; 2],
    /// The range `[q_min, q_max]` of the histogram that encodes `z`.
    pub support: [f32; 2],
    /// Bins of that histogram (floq: 51).
    #[serde(default = "z_bins")]
    pub z_bins: usize,
    /// Its Gaussian's σ in bin widths (floq: 16).
    #[serde(default = "z_sigma")]
    pub z_sigma: f32,
    /// Width `T` of the Fourier embedding of `t`, even (floq: 64).
    #[serde(default = "time_features")]
    pub time_features: usize,
}

fn eight() -> usize {
    8
}
fn z_bins() -> usize {
    51
}
fn z_sigma() -> f32 {
    16.0
}
fn time_features() -> usize {
    64
}

impl Flow {
    /// floq's defaults for rewards in `[r_min, r_max]` and discount `gamma`: the histogram on
    /// `[(r_min − 0.01), (r_max + 0.01)]/(1 − γ)`, the noise on `0.1·[r_min, r_max]/(1 − γ)`,
    /// `K = 8`, 8 samples, 51 bins of σ = 16 widths, 64 time features.
    pub fn floq(r_min: f32, r_max: f32, gamma: f32) -> Result<Self> {
        let h = 1.0 / (1.0 - gamma);
        let f = Flow {
            steps: eight(),
            samples: eight(),
            noise: [0.1 * r_min * h, 0.1 * r_max * h],
            support: [(r_min - 0.01) * h, (r_max + 0.01) * h],
            z_bins: z_bins(),
            z_sigma: z_sigma(),
            time_features: time_features(),
        };
        f.validate()?;
        Ok(f)
    }

    /// Errors unless every setting is usable: `steps ≥ 1`, `samples ≥ 1`, finite `l ≤ u` and
    /// `q_min < q_max`, `z_bins ≥ 2`, `z_sigma > 0`, an even `time_features`.
    pub fn validate(&self) -> Result<()> {
        let bad = |name: &'static str, reason: String| Err(CriticError::Invalid { name, reason });
        if self.steps == 0 {
            return bad("steps", "a read-out needs at least one Euler step".into());
        }
        if self.samples == 0 {
            return bad("samples", "needs at least one noise point per row".into());
        }
        let [l, u] = self.noise;
        if !(l.is_finite() && u.is_finite() && l <= u) {
            return bad("noise", format!("needs finite l ≤ u, got [{l}, {u}]"));
        }
        let [lo, hi] = self.support;
        if !(lo.is_finite() && hi.is_finite() && lo < hi) {
            return bad("support", format!("needs finite q_min < q_max, got [{lo}, {hi}]"));
        }
        if self.z_bins < 2 {
            return bad("z_bins", format!("needs at least 2 bins, got {}", self.z_bins));
        }
        if !(self.z_sigma > 0.0 && self.z_sigma.is_finite()) {
            return bad(
                "z_sigma",
                format!("must be a positive number of bin widths, got {}", self.z_sigma),
            );
        }
        if !self.time_features.is_multiple_of(2) {
            return bad(
                "time_features",
                format!("pairs sin and cos: must be even, got {}", self.time_features),
            );
        }
        Ok(())
    }

    /// Features the field reads besides a row of `x`: the time embedding and the histogram.
    pub fn feature_dim(&self) -> usize {
        self.time_features + self.z_bins
    }

    /// The noise points of a read-out: the midpoints of `samples` equal slices of `[l, u]`.
    pub fn noise_points(&self) -> Vec<f32> {
        let [l, u] = self.noise;
        let m = self.samples;
        (0..m).map(|j| l + (j as f32 + 0.5) * (u - l) / m as f32).collect()
    }

    /// The Fourier embedding of `t` into `out` `[time_features]`: `sin(π f t)`, `cos(π f t)`
    /// for `f = 1 … T/2`.
    pub fn embed_time(&self, t: f32, out: &mut [f32]) {
        for (f, pair) in out.chunks_exact_mut(2).enumerate() {
            let (s, c) = (std::f32::consts::PI * (f + 1) as f32 * t).sin_cos();
            pair[0] = s;
            pair[1] = c;
        }
    }

    /// The histogram of `z` (clamped to the support) into `out` `[z_bins]`, and, when given,
    /// its derivative in `z` into `dout` (zero where the clamp binds). In `f32` with
    /// Abramowitz and Stegun's 7.1.26 for `erf` (absolute error below 1.5e-7): the read-outs
    /// encode every noise point at every step.
    pub fn encode_z(&self, z: f32, out: &mut [f32], dout: Option<&mut [f32]>) {
        let [lo, hi] = self.support;
        let m = self.z_bins;
        let w = (hi - lo) / m as f32;
        let inv_sigma = 1.0 / (self.z_sigma * w);
        let inside = z > lo && z < hi;
        let y = z.clamp(lo, hi);
        // p_i = (Φ(a_i) − Φ(a_{i−1})) / (Φ(a_m) − Φ(a_0)) with a_i = (e_i − y)/σ;
        // ∂Φ(a_i)/∂y = −φ(a_i)/σ.
        let a = |i: usize| (lo + i as f32 * w - y) * inv_sigma;
        let (c0, d0) = cdf_pdf(a(0));
        let (cm, dm) = cdf_pdf(a(m));
        let total = cm - c0;
        let dtotal = (d0 - dm) * inv_sigma;
        let (mut c_lo, mut d_lo) = (c0, d0);
        let mut dout = dout;
        for i in 0..m {
            let (c_hi, d_hi) = if i + 1 == m { (cm, dm) } else { cdf_pdf(a(i + 1)) };
            let mass = c_hi - c_lo;
            out[i] = mass / total;
            if let Some(d) = dout.as_deref_mut() {
                let dmass = (d_lo - d_hi) * inv_sigma;
                d[i] = if inside {
                    (dmass * total - mass * dtotal) / (total * total)
                } else {
                    0.0
                };
            }
            (c_lo, d_lo) = (c_hi, d_hi);
        }
    }

    /// The field's input rows `[n·samples, xw + feature_dim]` for rows `r·samples + j`: row
    /// `r` of `x`, the embedding of `t[r·samples + j]`, the histogram of `z[r·samples + j]`
    /// (its derivative into `dz_enc` when given).
    #[allow(clippy::too_many_arguments)]
    fn inputs(
        &self,
        x: &[f32],
        xw: usize,
        n: usize,
        t: &[f32],
        z: &[f32],
        inp: &mut Vec<f32>,
        mut dz_enc: Option<&mut Vec<f32>>,
    ) {
        let (m, tf, b) = (self.samples, self.time_features, self.z_bins);
        let iw = xw + tf + b;
        inp.resize(n * m * iw, 0.0);
        if let Some(d) = dz_enc.as_deref_mut() {
            d.resize(n * m * b, 0.0);
        }
        // A read-out's rows share one time: its embedding is computed once.
        let mut emb = vec![0f32; tf];
        let mut emb_t = f32::NAN;
        for r in 0..n {
            for j in 0..m {
                let row = r * m + j;
                let dst = &mut inp[row * iw..(row + 1) * iw];
                dst[..xw].copy_from_slice(&x[r * xw..(r + 1) * xw]);
                let (te, ze) = dst[xw..].split_at_mut(tf);
                if t[row] != emb_t {
                    emb_t = t[row];
                    self.embed_time(emb_t, &mut emb);
                }
                te.copy_from_slice(&emb);
                let d = dz_enc.as_deref_mut().map(|d| &mut d[row * b..(row + 1) * b]);
                self.encode_z(z[row], ze, d);
            }
        }
    }

    fn check_net(&self, net: &Mlp, xw: usize) -> Result<()> {
        if net.input_dim() != xw + self.feature_dim() || net.output_dim() != 1 {
            return Err(CriticError::Invalid {
                name: "net",
                reason: format!(
                    "a flow field reads {xw} + {} values and writes 1 velocity; this network maps {} to {}",
                    self.feature_dim(),
                    net.input_dim(),
                    net.output_dim()
                ),
            });
        }
        Ok(())
    }

    /// `Q` of `n` rows of `x` `[n, xw]` into `out` `[n]`: `K` Euler steps from each noise
    /// point, averaged. With `cache.keep`, every step's activations stay for
    /// [`Flow::readout_backward`].
    pub fn readout(
        &self,
        net: &Mlp,
        x: &[f32],
        xw: usize,
        n: usize,
        cache: &mut FlowCache,
        out: &mut [f32],
    ) -> Result<()> {
        self.check_net(net, xw)?;
        check_len("flow read-out input", n * xw, x.len())?;
        check_len("flow read-out", n, out.len())?;
        let (m, k_steps) = (self.samples, self.steps);
        let nm = n * m;
        let points = self.noise_points();
        cache.z.clear();
        for _ in 0..n {
            cache.z.extend_from_slice(&points);
        }
        let slots = if cache.keep { k_steps } else { 1 };
        cache.inputs.resize_with(slots, Vec::new);
        cache.denc.resize_with(slots, Vec::new);
        cache.nets.resize_with(slots, MlpCache::default);
        cache.n = n;
        let dt = 1.0 / k_steps as f32;
        for k in 0..k_steps {
            let s = if cache.keep { k } else { 0 };
            cache.t.clear();
            cache.t.resize(nm, k as f32 * dt);
            let denc = cache.keep.then_some(&mut cache.denc[s]);
            self.inputs(x, xw, n, &cache.t, &cache.z, &mut cache.inputs[s], denc);
            let v = net.forward(&cache.inputs[s], nm, &mut cache.nets[s])?;
            for (z, v) in cache.z.iter_mut().zip(v) {
                *z += dt * v;
            }
        }
        let inv = 1.0 / m as f32;
        for r in 0..n {
            out[r] = cache.z[r * m..(r + 1) * m].iter().sum::<f32>() * inv;
        }
        Ok(())
    }

    /// Given `dq = ∂L/∂Q` `[n]` for the read-out last computed in `cache` (with `keep`),
    /// writes `∂L/∂x` `[n, xw]` into `dx`: the adjoint of every Euler step, through the
    /// field's input row and through the histogram of `z`.
    pub fn readout_backward(
        &self,
        net: &Mlp,
        x: &[f32],
        xw: usize,
        cache: &mut FlowCache,
        dq: &[f32],
        dx: &mut [f32],
    ) -> Result<()> {
        let n = cache.n;
        if !cache.keep || cache.nets.len() != self.steps {
            return Err(CriticError::Invalid {
                name: "cache",
                reason: "the read-out's backward pass needs a forward pass with keep = true".into(),
            });
        }
        check_len("flow read-out input", n * xw, x.len())?;
        check_len("flow read-out gradient", n, dq.len())?;
        check_len("flow input gradient", n * xw, dx.len())?;
        let (m, tf, b) = (self.samples, self.time_features, self.z_bins);
        let (nm, iw) = (n * m, xw + tf + b);
        let dt = 1.0 / self.steps as f32;
        // adj = ∂L/∂z_k, starting from z_K: Q is the mean over the samples.
        cache.adj.clear();
        for r in 0..n {
            cache.adj.extend(std::iter::repeat_n(dq[r] / m as f32, m));
        }
        dx.fill(0.0);
        cache.din.resize(nm * iw, 0.0);
        for k in (0..self.steps).rev() {
            // z_{k+1} = z_k + dt·v_k: ∂L/∂v_k = dt·adj.
            cache.dv.clear();
            cache.dv.extend(cache.adj.iter().map(|a| dt * a));
            net.backward_input(&cache.inputs[k], &mut cache.nets[k], &cache.dv, &mut cache.din)?;
            for row in 0..nm {
                let g = &cache.din[row * iw..(row + 1) * iw];
                let r = row / m;
                for (d, gi) in dx[r * xw..(r + 1) * xw].iter_mut().zip(&g[..xw]) {
                    *d += gi;
                }
                let dz: f32 = g[xw + tf..]
                    .iter()
                    .zip(&cache.denc[k][row * b..(row + 1) * b])
                    .map(|(a, e)| a * e)
                    .sum();
                cache.adj[row] += dz;
            }
        }
        Ok(())
    }

    /// The flow-matching loss of `n` rows of `x` against targets `y` `[n]`, with the draws
    /// `t` and `z0` `[n·samples]` (`t` in `[0, 1]`, `z0` in the noise interval); adds its
    /// gradient to `grads` and returns it:
    /// `mean over rows and draws of (v(t, (1 − t)z_0 + t·y) − (y − z_0))²`.
    #[allow(clippy::too_many_arguments)]
    pub fn loss(
        &self,
        net: &Mlp,
        x: &[f32],
        xw: usize,
        n: usize,
        y: &[f32],
        t: &[f32],
        z0: &[f32],
        cache: &mut FlowCache,
        grads: &mut [f32],
    ) -> Result<f64> {
        self.check_net(net, xw)?;
        let (m, nm) = (self.samples, n * self.samples);
        check_len("flow loss input", n * xw, x.len())?;
        check_len("flow targets", n, y.len())?;
        check_len("flow times", nm, t.len())?;
        check_len("flow noise", nm, z0.len())?;
        cache.z.clear();
        cache.z.extend((0..nm).map(|i| (1.0 - t[i]) * z0[i] + t[i] * y[i / m]));
        cache.inputs.resize_with(1, Vec::new);
        cache.nets.resize_with(1, MlpCache::default);
        self.inputs(x, xw, n, t, &cache.z, &mut cache.inputs[0], None);
        let v = net.forward(&cache.inputs[0], nm, &mut cache.nets[0])?;
        let scale = 1.0 / nm as f64;
        let mut loss = 0f64;
        cache.dv.resize(nm, 0.0);
        for i in 0..nm {
            let d = v[i] - (y[i / m] - z0[i]);
            loss += (d as f64) * (d as f64);
            cache.dv[i] = (2.0 * scale) as f32 * d;
        }
        net.backward(&cache.inputs[0], &mut cache.nets[0], &cache.dv, grads)?;
        Ok(loss * scale)
    }
}

/// The standard normal's CDF `Φ(x)` and density `φ(x)`, sharing one exponential: Abramowitz
/// and Stegun's 7.1.26, `erf(u) ≈ 1 − (a₁s + … + a₅s⁵)·e^{−u²}` with `s = 1/(1 + p·u)` for
/// `u = |x|/√2 ≥ 0`.
fn cdf_pdf(x: f32) -> (f32, f32) {
    const P: f32 = 0.327_591_1;
    const A: [f32; 5] = [0.254_829_6, -0.284_496_74, 1.421_413_8, -1.453_152_1, 1.061_405_4];
    let u = x.abs() * std::f32::consts::FRAC_1_SQRT_2;
    let e = (-u * u).exp();
    let s = 1.0 / (1.0 + P * u);
    let poly = s * (A[0] + s * (A[1] + s * (A[2] + s * (A[3] + s * A[4]))));
    let erf = 1.0 - poly * e;
    let cdf = if x >= 0.0 { 0.5 * (1.0 + erf) } else { 0.5 * (1.0 - erf) };
    (cdf, e * 0.398_942_3)
}

/// Reused buffers of a flow critic's passes.
#[derive(Debug, Default)]
pub struct FlowCache {
    /// Keep every Euler step's activations for [`Flow::readout_backward`].
    pub keep: bool,
    n: usize,
    z: Vec<f32>,
    t: Vec<f32>,
    inputs: Vec<Vec<f32>>,
    denc: Vec<Vec<f32>>,
    nets: Vec<MlpCache>,
    adj: Vec<f32>,
    dv: Vec<f32>,
    din: Vec<f32>,
}

impl FlowCache {
    /// A cache that keeps the read-out's activations for its backward pass.
    pub fn for_gradients() -> Self {
        FlowCache {
            keep: true,
            ..FlowCache::default()
        }
    }
}

/// A flow critic `Q(o, a)` on `[o, a]` rows: a velocity field MLP and its [`Flow`].
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct FlowQ {
    /// The field: `obs_dim + action_dim + flow.feature_dim()` inputs, one velocity.
    pub net: Mlp,
    /// The settings.
    pub flow: Flow,
    obs_dim: usize,
}

impl FlowQ {
    /// A critic for `obs_dim` observation values and `action_dim` action values per row.
    #[allow(clippy::too_many_arguments)]
    pub fn new<R: Rng + ?Sized>(
        obs_dim: usize,
        action_dim: usize,
        hidden: &[usize],
        activation: Activation,
        init: MlpInit,
        flow: Flow,
        rng: &mut R,
    ) -> Result<Self> {
        flow.validate()?;
        let mut sizes = vec![obs_dim + action_dim + flow.feature_dim()];
        sizes.extend_from_slice(hidden);
        sizes.push(1);
        Ok(FlowQ {
            net: Mlp::new(&sizes, activation, init, rng)?,
            flow,
            obs_dim,
        })
    }
}

impl QCritic for FlowQ {
    fn obs_dim(&self) -> usize {
        self.obs_dim
    }
    fn action_dim(&self) -> usize {
        self.net.input_dim() - self.obs_dim - self.flow.feature_dim()
    }
    fn q_values(&self, obs: &[f32], actions: &[f32], n: usize, out: &mut [f32]) -> Result<()> {
        let (od, ad) = (self.obs_dim, self.action_dim());
        let x = join_rows(obs, actions, n, od, ad)?;
        self.flow
            .readout(&self.net, &x, od + ad, n, &mut FlowCache::default(), out)
    }
    fn action_gradient(&self, obs: &[f32], actions: &[f32], n: usize, out: &mut [f32]) -> Result<()> {
        let (od, ad) = (self.obs_dim, self.action_dim());
        check_len("action gradient", n * ad, out.len())?;
        let x = join_rows(obs, actions, n, od, ad)?;
        let mut cache = FlowCache::for_gradients();
        let mut q = vec![0f32; n];
        self.flow.readout(&self.net, &x, od + ad, n, &mut cache, &mut q)?;
        let mut dx = vec![0f32; n * (od + ad)];
        self.flow
            .readout_backward(&self.net, &x, od + ad, &mut cache, &vec![1.0; n], &mut dx)?;
        action_columns(&dx, n, od, ad, out);
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use taper_tensor::optim::{Adam, AdamConfig};
    use taper_tensor::rng::{stream, Purpose};

    fn flow(steps: usize, samples: usize) -> Flow {
        Flow {
            steps,
            samples,
            noise: [-1.0, 0.0],
            support: [-6.0, 1.0],
            z_bins: 11,
            z_sigma: 2.0,
            time_features: 6,
        }
    }

    fn field(f: &Flow, xw: usize, seed: u64) -> Mlp {
        let mut rng = stream(seed, Purpose::Init, 0);
        Mlp::new(
            &[xw + f.feature_dim(), 16, 16, 1],
            Activation::Gelu,
            MlpInit::TorchDefault,
            &mut rng,
        )
        .unwrap()
    }

    /// The f32 normal CDF and density against libm's f64 `erf` and `exp`.
    #[test]
    fn the_normal_cdf_is_accurate() {
        for i in -800..=800 {
            let x = i as f64 / 100.0;
            let (c, d) = cdf_pdf(x as f32);
            let want = 0.5 * (1.0 + libm::erf(x / std::f64::consts::SQRT_2));
            let dens = (-0.5 * x * x).exp() / (2.0 * std::f64::consts::PI).sqrt();
            assert!((c as f64 - want).abs() < 3e-7, "Φ({x}): {c} vs {want}");
            assert!((d as f64 - dens).abs() < 1e-7, "φ({x}): {d} vs {dens}");
        }
    }

    /// The histogram sums to 1, its mean lies near `z` inside the support, and its derivative
    /// matches central differences (zero outside the support, where the clamp binds).
    #[test]
    fn the_z_histogram_and_its_derivative() {
        let f = flow(1, 1);
        let (mut p, mut d) = ([0f32; 11], [0f32; 11]);
        for z in [-5.3f32, -2.0, -0.4, 0.7, 3.0, -9.0] {
            f.encode_z(z, &mut p, Some(&mut d));
            assert!((p.iter().sum::<f32>() - 1.0).abs() < 1e-5, "z {z}");
            let h = 1e-2f32;
            let (mut pp, mut pm) = ([0f32; 11], [0f32; 11]);
            f.encode_z(z + h, &mut pp, None);
            f.encode_z(z - h, &mut pm, None);
            for i in 0..11 {
                let fd = (pp[i] - pm[i]) / (2.0 * h);
                assert!((fd - d[i]).abs() < 2e-3, "z {z} bin {i}: {fd} vs {}", d[i]);
            }
            if !(-6.0..=1.0).contains(&z) {
                assert!(d.iter().all(|&x| x == 0.0));
            }
        }
    }

    /// A field whose velocity is the constant `c` moves every noise point by `c`: with noise
    /// `[−1, 0]` and 4 samples the points are −7/8, −5/8, −3/8, −1/8 (mean −½), so `Q = c − ½`
    /// for any number of steps. Its loss against `y` is the mean of `(c − (y − z_0))²`.
    #[test]
    fn a_constant_field_by_hand() {
        for steps in [1, 3, 8] {
            let f = flow(steps, 4);
            assert_eq!(f.noise_points(), vec![-0.875, -0.625, -0.375, -0.125]);
            let mut net = field(&f, 2, 1);
            let sizes = net.sizes().to_vec();
            let last = net.params().len() - 1;
            net.params_mut().fill(0.0);
            net.params_mut()[last] = 1.5;
            assert_eq!(net.sizes(), &sizes[..]);
            let x = [0.3f32, -0.2, 0.9, 0.1];
            let mut q = [0f32; 2];
            f.readout(&net, &x, 2, 2, &mut FlowCache::default(), &mut q).unwrap();
            assert!((q[0] - 1.0).abs() < 1e-6 && (q[1] - 1.0).abs() < 1e-6, "{q:?}");
            // y = 2: the velocities wanted are 2 − z_0 = 2.875, 2.625, 2.375, 2.125 for the
            // first row's draws; c = 1.5 misses them by −1.375, −1.125, −0.875, −0.625.
            let t = [0.5f32; 8];
            let z0 = [-0.875f32, -0.625, -0.375, -0.125, -0.875, -0.625, -0.375, -0.125];
            let mut g = vec![0f32; net.num_params()];
            let loss = f
                .loss(&net, &x, 2, 2, &[2.0, 2.0], &t, &z0, &mut FlowCache::default(), &mut g)
                .unwrap();
            let want = (1.375f64.powi(2) + 1.125f64.powi(2) + 0.875f64.powi(2) + 0.625f64.powi(2)) / 4.0;
            assert!((loss - want).abs() < 1e-6, "{loss} vs {want}");
        }
    }

    /// The read-out's input gradient through every Euler step and the histogram, against
    /// central differences of the read-out.
    #[test]
    fn readout_gradient_matches_finite_differences() {
        for steps in [1, 4] {
            let f = flow(steps, 3);
            let net = field(&f, 3, 7);
            let n = 3;
            let x: Vec<f32> = (0..n * 3).map(|i| ((i * 7 % 5) as f32 - 2.0) * 0.4).collect();
            let mut cache = FlowCache::for_gradients();
            let mut q = vec![0f32; n];
            f.readout(&net, &x, 3, n, &mut cache, &mut q).unwrap();
            let dq = [1.0f32, -0.5, 2.0];
            let mut dx = vec![0f32; n * 3];
            f.readout_backward(&net, &x, 3, &mut cache, &dq, &mut dx).unwrap();
            let objective = |x: &[f32]| -> f64 {
                let mut q = vec![0f32; n];
                f.readout(&net, x, 3, n, &mut FlowCache::default(), &mut q).unwrap();
                q.iter().zip(&dq).map(|(a, b)| (a * b) as f64).sum()
            };
            let h = 1e-2f32;
            for i in 0..n * 3 {
                let (mut xp, mut xm) = (x.clone(), x.clone());
                xp[i] += h;
                xm[i] -= h;
                let fd = (objective(&xp) - objective(&xm)) / (2.0 * h as f64);
                assert!(
                    (fd - dx[i] as f64).abs() < 2e-3 * (1.0 + fd.abs()),
                    "K {steps} x{i}: {fd} vs {}",
                    dx[i]
                );
            }
            let mut plain = FlowCache::default();
            f.readout(&net, &x, 3, n, &mut plain, &mut q).unwrap();
            assert!(f.readout_backward(&net, &x, 3, &mut plain, &dq, &mut dx).is_err());
        }
    }

    /// The loss's parameter gradient against central differences.
    #[test]
    fn loss_gradient_matches_finite_differences() {
        let f = flow(2, 3);
        let mut net = field(&f, 2, 3);
        let n = 4;
        let x: Vec<f32> = (0..n * 2).map(|i| ((i * 5 % 7) as f32 - 3.0) * 0.3).collect();
        let y = [-3.0f32, -1.0, 0.5, -4.5];
        let mut rng = stream(9, Purpose::Other(0), 0);
        let t: Vec<f32> = (0..n * 3).map(|_| rng.random_range(0.0..1.0)).collect();
        let z0: Vec<f32> = (0..n * 3).map(|_| rng.random_range(-1.0..0.0)).collect();
        let mut g = vec![0f32; net.num_params()];
        f.loss(&net, &x, 2, n, &y, &t, &z0, &mut FlowCache::default(), &mut g)
            .unwrap();
        let h = 1e-2f32;
        for i in (0..g.len()).step_by(7) {
            let p0 = net.params()[i];
            let mut eval = |p: f32| {
                net.params_mut()[i] = p;
                let mut s = vec![0f32; net.num_params()];
                f.loss(&net, &x, 2, n, &y, &t, &z0, &mut FlowCache::default(), &mut s)
                    .unwrap()
            };
            let fd = (eval(p0 + h) - eval(p0 - h)) / (2.0 * h as f64);
            net.params_mut()[i] = p0;
            assert!(
                (fd - g[i] as f64).abs() < 1e-2 * (1.0 + fd.abs()),
                "param {i}: {fd} vs {}",
                g[i]
            );
        }
        assert!(f
            .loss(&net, &x, 2, n, &y[..3], &t, &z0, &mut FlowCache::default(), &mut g)
            .is_err());
    }

    /// Trained by the flow-matching loss on fixed targets, the read-out recovers them, with one
    /// Euler step and with eight: the straight path's velocity field integrates to `y`.
    #[test]
    fn the_flow_learns_fixed_targets() {
        for steps in [1, 8] {
            let f = flow(steps, 4);
            let mut net = field(&f, 1, 11);
            let x = [-1.0f32, -0.3, 0.4, 1.0];
            let y = [-4.0f32, -2.5, -1.0, 0.5];
            let n = 4;
            let mut opt = Adam::new(
                AdamConfig {
                    lr: 3e-3,
                    ..AdamConfig::default()
                },
                net.num_params(),
            );
            let mut rng = stream(5, Purpose::Other(0), steps as u64);
            let mut cache = FlowCache::default();
            let mut g = vec![0f32; net.num_params()];
            for _ in 0..3000 {
                let t: Vec<f32> = (0..n * 4).map(|_| rng.random_range(0.0..1.0)).collect();
                let z0: Vec<f32> = (0..n * 4).map(|_| rng.random_range(-1.0..0.0)).collect();
                g.fill(0.0);
                f.loss(&net, &x, 1, n, &y, &t, &z0, &mut cache, &mut g).unwrap();
                opt.step(&mut [(net.params_mut(), &g[..])]).unwrap();
            }
            let mut q = [0f32; 4];
            f.readout(&net, &x, 1, n, &mut cache, &mut q).unwrap();
            for r in 0..n {
                assert!((q[r] - y[r]).abs() < 0.15, "K {steps} row {r}: {} vs {}", q[r], y[r]);
            }
        }
    }

    /// `FlowQ`'s action gradient against central differences of its `Q`; bad settings and
    /// shapes are errors.
    #[test]
    fn flow_q_is_a_q_critic() {
        let f = flow(3, 2);
        let mut rng = stream(2, Purpose::Init, 0);
        let q = FlowQ::new(
            2,
            1,
            &[12],
            Activation::Tanh,
            MlpInit::TorchDefault,
            f.clone(),
            &mut rng,
        )
        .unwrap();
        assert_eq!((q.obs_dim(), q.action_dim()), (2, 1));
        let (obs, act) = ([0.1f32, -0.2, 0.5, 0.3], [0.4f32, -0.7]);
        crate::traits::assert_action_gradient_matches_fd(&q, &obs, &act, 2, 1e-2, 2e-3);
        assert!(q.q_values(&obs[..3], &act, 2, &mut [0.0; 2]).is_err());
        for bad in [
            Flow { steps: 0, ..f.clone() },
            Flow {
                samples: 0,
                ..f.clone()
            },
            Flow {
                noise: [0.0, -1.0],
                ..f.clone()
            },
            Flow {
                support: [1.0, 1.0],
                ..f.clone()
            },
            Flow { z_bins: 1, ..f.clone() },
            Flow {
                z_sigma: 0.0,
                ..f.clone()
            },
            Flow {
                time_features: 3,
                ..f.clone()
            },
        ] {
            assert!(FlowQ::new(2, 1, &[4], Activation::Tanh, MlpInit::TorchDefault, bad, &mut rng).is_err());
        }
        let floq = Flow::floq(-16.3, 0.0, 0.99).unwrap();
        assert_eq!(
            (floq.steps, floq.samples, floq.z_bins, floq.time_features),
            (8, 8, 51, 64)
        );
        assert!((floq.noise[0] + 163.0).abs() < 0.1 && floq.noise[1] == 0.0);
    }
}
