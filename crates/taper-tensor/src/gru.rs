//! A GRU cell run over whole sequences, with a hand-written backward pass through time
//! (checked against candle autodiff and finite differences).
//!
//! The cell is Flax's `GRUCell` (the one JaxMARL's recurrent baselines scan), with gates in
//! the order reset, update, candidate:
//!
//! ```text
//! r  = σ(W_ir x + b_ir + W_hr h)
//! z  = σ(W_iz x + b_iz + W_hz h)
//! n  = tanh(W_in x + b_in + r ⊙ (W_hn h + b_hn))
//! h' = (1 − z) ⊙ n + z ⊙ h
//! ```
//!
//! Sequences are time-major, `[T, B, ·]`. A row's memory restarts from zeros at every step
//! whose reset flag is set (the first step of a new episode), as JaxMARL's `ScannedRNN` does.
//! The input projections of all `T·B` rows are one matrix product; only the recurrent
//! product runs step by step, against a transposed copy of `W_h` made once per pass. In the
//! backward pass the weight gradients are again one product
//! each over all steps, so the per-step work is a `B × 3H × H` product each way.
//!
//! ```
//! use taper_tensor::gru::{Gru, GruCache};
//! use taper_tensor::rng::{stream, Purpose};
//! let gru = Gru::new(3, 4, &mut stream(0, Purpose::Init, 0))?;
//! let (t, b) = (5, 2);
//! let x = vec![0.1f32; t * b * 3];
//! let mut cache = GruCache::default();
//! let y = gru.forward_seq(&x, t, b, &[0.0; 8], None, &mut cache)?;
//! assert_eq!(y.len(), t * b * 4);
//! # Ok::<(), taper_tensor::TensorError>(())
//! ```

// The gate kernels take each of the step's slices by name.
#![allow(clippy::too_many_arguments)]

use crate::error::{check_len, Result, TensorError};
use crate::fastmath;
use crate::linalg::{matmul_nn, matmul_nt, matmul_tn};
use rand::Rng;
use rand_distr::{Distribution, StandardNormal};
use serde::{Deserialize, Serialize};

/// A GRU cell: input width `I`, hidden width `H`. Parameters in one flat buffer:
/// `W_i [3H, I]`, `b_i [3H]`, `W_h [3H, H]`, `b_hn [H]`, gates in the order r, z, n.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Gru {
    input: usize,
    hidden: usize,
    params: Vec<f32>,
}

/// What [`Gru::forward_seq`] keeps for [`Gru::backward_seq`], reused between calls.
#[derive(Debug, Default, Clone)]
pub struct GruCache {
    steps: usize,
    rows: usize,
    /// Each step's incoming memory after resets `[T, B, H]`.
    h_prev: Vec<f32>,
    /// Input projections `W_i x + b_i` `[T, B, 3H]`.
    gi: Vec<f32>,
    /// The recurrent product of one step `[B, 3H]`.
    gh: Vec<f32>,
    /// `W_hᵀ` `[H, 3H]`: with it the step's small product runs as `gemm`'s `A·B` with a
    /// row-major `B`, which it does not repack (measured 2.7× faster at 12 × 128 × 384).
    wht: Vec<f32>,
    /// Gates `[T, B, H]`.
    r: Vec<f32>,
    z: Vec<f32>,
    n: Vec<f32>,
    /// `W_hn h + b_hn` `[T, B, H]`.
    hn: Vec<f32>,
    /// Outputs, the memory after each step `[T, B, H]`.
    out: Vec<f32>,
    /// Backward scratch: gradients of the gate pre-activations, input side and recurrent side
    /// `[T, B, 3H]`, and the running memory gradient `[B, H]` twice.
    dgi: Vec<f32>,
    dgh: Vec<f32>,
    dh: Vec<f32>,
    dh_next: Vec<f32>,
}

impl GruCache {
    /// The outputs of the last forward pass `[T, B, H]`.
    pub(crate) fn out_slice(&self) -> &[f32] {
        &self.out
    }

    /// The memory after the last step of the last forward pass `[B, H]`.
    pub fn final_hidden(&self) -> &[f32] {
        let w = self.out.len() / self.steps.max(1);
        &self.out[self.out.len() - w..]
    }
}

/// `σ(x) = (1 + tanh(x/2)) / 2` through the fast tanh, so that the gate loops vectorise (no
/// `exp`); its absolute error is below 1e-6.
#[inline(always)]
fn sigmoid(x: f32) -> f32 {
    0.5 + 0.5 * fastmath::tanh_fast(0.5 * x)
}

multiversion! {
    /// One row's step: from its input projections `gi` and recurrent product `gh` (`[3H]`
    /// each, `b_hn` not yet added) and incoming memory `hp` (`[H]`), writes the gates `r`,
    /// `z`, `n`, `hn = W_hn h + b_hn` and the new memory `out`.
    fn gates_forward(
        gi: &[f32],
        gh: &[f32],
        b_hn: &[f32],
        hp: &[f32],
        r: &mut [f32],
        z: &mut [f32],
        hn: &mut [f32],
        n: &mut [f32],
        out: &mut [f32],
    ) {
        let h = hp.len();
        let (gi_r, gi_z, gi_n) = (&gi[..h], &gi[h..2 * h], &gi[2 * h..3 * h]);
        let (gh_r, gh_z, gh_n) = (&gh[..h], &gh[h..2 * h], &gh[2 * h..3 * h]);
        let (b_hn, r, z, hn, n, out) = (&b_hn[..h], &mut r[..h], &mut z[..h], &mut hn[..h], &mut n[..h], &mut out[..h]);
        for u in 0..h {
            let ru = sigmoid(gi_r[u] + gh_r[u]);
            let zu = sigmoid(gi_z[u] + gh_z[u]);
            let hnu = gh_n[u] + b_hn[u];
            let nu = fastmath::tanh_fast(gi_n[u] + ru * hnu);
            r[u] = ru;
            z[u] = zu;
            hn[u] = hnu;
            n[u] = nu;
            out[u] = (1.0 - zu) * nu + zu * hp[u];
        }
    }
}

multiversion! {
    /// One row's step backwards: from the memory gradient `dh` (`[H]`, the later steps' plus
    /// this output's) and the step's saved `r`, `z`, `n`, `hn`, `hp`, writes the gradients of
    /// the gate pre-activations, input side `dgi` and recurrent side `dgh` (`[3H]` each), and
    /// the direct part `dh·z` of the incoming memory's gradient into `dhp`.
    fn gates_backward(
        dh: &[f32],
        r: &[f32],
        z: &[f32],
        n: &[f32],
        hn: &[f32],
        hp: &[f32],
        dgi: &mut [f32],
        dgh: &mut [f32],
        dhp: &mut [f32],
    ) {
        let h = dh.len();
        let (r, z, n, hn, hp, dhp) = (&r[..h], &z[..h], &n[..h], &hn[..h], &hp[..h], &mut dhp[..h]);
        let (dgi_r, rest) = dgi[..3 * h].split_at_mut(h);
        let (dgi_z, dgi_n) = rest.split_at_mut(h);
        let (dgh_r, rest) = dgh[..3 * h].split_at_mut(h);
        let (dgh_z, dgh_n) = rest.split_at_mut(h);
        for u in 0..h {
            let d = dh[u];
            let dn = d * (1.0 - z[u]);
            let dz = d * (hp[u] - n[u]);
            let dan = dn * (1.0 - n[u] * n[u]);
            let dar = dan * hn[u] * r[u] * (1.0 - r[u]);
            let daz = dz * z[u] * (1.0 - z[u]);
            dgi_r[u] = dar;
            dgi_z[u] = daz;
            dgi_n[u] = dan;
            dgh_r[u] = dar;
            dgh_z[u] = daz;
            dgh_n[u] = dan * r[u];
            dhp[u] = d * z[u];
        }
    }
}

/// Flax's `lecun_normal`: a normal truncated at two standard deviations, scaled so that the
/// variance is `1/fan_in`.
fn lecun_normal<R: Rng + ?Sized>(rng: &mut R, n: usize, fan_in: usize) -> Vec<f32> {
    // The standard deviation of a unit normal truncated to [−2, 2].
    const TRUNC_STD: f64 = 0.879_625_661_034_239_8;
    let scale = (1.0 / fan_in as f64).sqrt() / TRUNC_STD;
    (0..n)
        .map(|_| loop {
            let z: f64 = StandardNormal.sample(rng);
            if z.abs() <= 2.0 {
                break (z * scale) as f32;
            }
        })
        .collect()
}

impl Gru {
    /// A cell initialised as Flax's `GRUCell`: input kernels LeCun-normal, each gate's
    /// recurrent kernel orthogonal, biases zero.
    pub fn new<R: Rng + ?Sized>(input: usize, hidden: usize, rng: &mut R) -> Result<Self> {
        if input == 0 || hidden == 0 {
            return Err(TensorError::Invalid {
                name: "gru",
                reason: format!("input and hidden widths must be positive, got {input} and {hidden}"),
            });
        }
        let mut params = Vec::with_capacity(Self::count(input, hidden));
        params.extend(lecun_normal(rng, 3 * hidden * input, input));
        params.extend(std::iter::repeat_n(0.0, 3 * hidden));
        for _ in 0..3 {
            params.extend(crate::init::orthogonal(rng, hidden, hidden, 1.0));
        }
        params.extend(std::iter::repeat_n(0.0, hidden));
        Ok(Gru { input, hidden, params })
    }

    /// A cell from explicit parameters in this type's layout.
    pub fn from_params(input: usize, hidden: usize, params: Vec<f32>) -> Result<Self> {
        if input == 0 || hidden == 0 {
            return Err(TensorError::Invalid {
                name: "gru",
                reason: format!("input and hidden widths must be positive, got {input} and {hidden}"),
            });
        }
        check_len("Gru parameters", Self::count(input, hidden), params.len())?;
        Ok(Gru { input, hidden, params })
    }

    fn count(i: usize, h: usize) -> usize {
        3 * h * i + 3 * h + 3 * h * h + h
    }

    /// Input width.
    pub fn input_dim(&self) -> usize {
        self.input
    }
    /// Hidden (memory) width.
    pub fn hidden_dim(&self) -> usize {
        self.hidden
    }
    /// Number of parameters.
    pub fn num_params(&self) -> usize {
        self.params.len()
    }
    /// The parameters (`W_i`, `b_i`, `W_h`, `b_hn`).
    pub fn params(&self) -> &[f32] {
        &self.params
    }
    /// Mutable parameters, e.g. for an optimiser step.
    pub fn params_mut(&mut self) -> &mut [f32] {
        &mut self.params
    }

    /// Offsets of `b_i`, `W_h` and `b_hn`.
    fn offsets(&self) -> (usize, usize, usize) {
        let (i, h) = (self.input, self.hidden);
        let bi = 3 * h * i;
        let wh = bi + 3 * h;
        (bi, wh, wh + 3 * h * h)
    }

    /// Runs `steps` steps of `rows` sequences: `x` is `[T, B, I]`, `h0` the memory before the
    /// first step `[B, H]`, `resets` (`[T, B]`, or none) the steps at which a row's memory
    /// restarts from zeros. Returns the memory after each step `[T, B, H]` (the cell's output).
    pub fn forward_seq<'c>(
        &self,
        x: &[f32],
        steps: usize,
        rows: usize,
        h0: &[f32],
        resets: Option<&[bool]>,
        cache: &'c mut GruCache,
    ) -> Result<&'c [f32]> {
        let (i, h) = (self.input, self.hidden);
        check_len("Gru input", steps * rows * i, x.len())?;
        check_len("Gru initial memory", rows * h, h0.len())?;
        if let Some(r) = resets {
            check_len("Gru resets", steps * rows, r.len())?;
        }
        let (bi, wh, bhn) = self.offsets();
        let p = &self.params;
        let n = steps * rows;
        cache.steps = steps;
        cache.rows = rows;
        for v in [
            &mut cache.h_prev,
            &mut cache.r,
            &mut cache.z,
            &mut cache.n,
            &mut cache.hn,
            &mut cache.out,
        ] {
            v.resize(n * h, 0.0);
        }
        cache.gi.resize(n * 3 * h, 0.0);
        cache.gh.resize(rows * 3 * h, 0.0);
        matmul_nt(n, 3 * h, i, x, &p[..bi], &mut cache.gi, false);
        fastmath::bias_add_inplace(&mut cache.gi, &p[bi..wh]);
        let b_hn = &p[bhn..];
        cache.wht.resize(h * 3 * h, 0.0);
        for (j, row) in p[wh..bhn].chunks_exact(h).enumerate() {
            for (k, &v) in row.iter().enumerate() {
                cache.wht[k * 3 * h + j] = v;
            }
        }
        for t in 0..steps {
            let cur = t * rows * h..(t + 1) * rows * h;
            // The incoming memory, zeroed where the row restarts.
            let prev: &[f32] = if t == 0 {
                h0
            } else {
                &cache.out[(t - 1) * rows * h..t * rows * h]
            };
            let hp = &mut cache.h_prev[cur.clone()];
            hp.copy_from_slice(prev);
            if let Some(r) = resets {
                for (b, &reset) in r[t * rows..(t + 1) * rows].iter().enumerate() {
                    if reset {
                        hp[b * h..(b + 1) * h].fill(0.0);
                    }
                }
            }
            matmul_nn(
                rows,
                3 * h,
                h,
                &cache.h_prev[cur.clone()],
                &cache.wht,
                &mut cache.gh,
                false,
            );
            for b in 0..rows {
                let g = (t * rows + b) * 3 * h..(t * rows + b + 1) * 3 * h;
                let o = (t * rows + b) * h..(t * rows + b + 1) * h;
                gates_forward(
                    &cache.gi[g],
                    &cache.gh[b * 3 * h..(b + 1) * 3 * h],
                    b_hn,
                    &cache.h_prev[o.clone()],
                    &mut cache.r[o.clone()],
                    &mut cache.z[o.clone()],
                    &mut cache.hn[o.clone()],
                    &mut cache.n[o.clone()],
                    &mut cache.out[o],
                );
            }
        }
        Ok(&cache.out)
    }

    /// Backpropagation through time for the sequences last passed to [`Gru::forward_seq`] with
    /// the same `x` and `resets`: given `dout = ∂L/∂outputs` (`[T, B, H]`), **adds**
    /// `∂L/∂params` into `grads` and, when given, writes `∂L/∂x` (`[T, B, I]`) into `dx`. The
    /// initial memory is taken as a constant.
    pub fn backward_seq(
        &self,
        x: &[f32],
        resets: Option<&[bool]>,
        cache: &mut GruCache,
        dout: &[f32],
        grads: &mut [f32],
        dx: Option<&mut [f32]>,
    ) -> Result<()> {
        let (i, h) = (self.input, self.hidden);
        let (steps, rows) = (cache.steps, cache.rows);
        let n = steps * rows;
        check_len("Gru input", n * i, x.len())?;
        check_len("Gru output gradient", n * h, dout.len())?;
        check_len("Gru gradient buffer", self.params.len(), grads.len())?;
        if let Some(r) = resets {
            check_len("Gru resets", n, r.len())?;
        }
        if let Some(d) = dx.as_deref() {
            check_len("Gru input gradient", n * i, d.len())?;
        }
        let (bi, wh, bhn) = self.offsets();
        let p = &self.params;
        let c = cache;
        c.dgi.resize(n * 3 * h, 0.0);
        c.dgh.resize(n * 3 * h, 0.0);
        c.dh.clear();
        c.dh.resize(rows * h, 0.0);
        c.dh_next.resize(rows * h, 0.0);
        for t in (0..steps).rev() {
            // The memory gradient of this step: the later steps' plus this output's.
            let o_t = t * rows * h..(t + 1) * rows * h;
            for (d, &g) in c.dh.iter_mut().zip(&dout[o_t]) {
                *d += g;
            }
            for b in 0..rows {
                let o = (t * rows + b) * h..(t * rows + b + 1) * h;
                let g = (t * rows + b) * 3 * h..(t * rows + b + 1) * 3 * h;
                gates_backward(
                    &c.dh[b * h..(b + 1) * h],
                    &c.r[o.clone()],
                    &c.z[o.clone()],
                    &c.n[o.clone()],
                    &c.hn[o.clone()],
                    &c.h_prev[o],
                    &mut c.dgi[g.clone()],
                    &mut c.dgh[g],
                    &mut c.dh_next[b * h..(b + 1) * h],
                );
            }
            let dgh_t = &c.dgh[t * rows * 3 * h..(t + 1) * rows * 3 * h];
            matmul_nn(rows, h, 3 * h, dgh_t, &p[wh..bhn], &mut c.dh_next, true);
            if let Some(r) = resets {
                for (b, &reset) in r[t * rows..(t + 1) * rows].iter().enumerate() {
                    if reset {
                        // The incoming memory was a constant zero.
                        c.dh_next[b * h..(b + 1) * h].fill(0.0);
                    }
                }
            }
            std::mem::swap(&mut c.dh, &mut c.dh_next);
        }
        let (g_wi, rest) = grads.split_at_mut(bi);
        let (g_bi, rest) = rest.split_at_mut(3 * h);
        let (g_wh, g_bhn) = rest.split_at_mut(3 * h * h);
        matmul_tn(3 * h, i, n, &c.dgi, x, g_wi, true);
        fastmath::col_sum_acc(&c.dgi, g_bi);
        matmul_tn(3 * h, h, n, &c.dgh, &c.h_prev, g_wh, true);
        for row in c.dgh.chunks_exact(3 * h) {
            for (g, &v) in g_bhn.iter_mut().zip(&row[2 * h..]) {
                *g += v;
            }
        }
        if let Some(dx) = dx {
            matmul_nn(n, i, 3 * h, &c.dgi, &p[..bi], dx, false);
        }
        Ok(())
    }

    /// The parameters as candle tensors `{prefix}.weight_ih` `[3H, I]`, `{prefix}.bias_ih`
    /// `[3H]`, `{prefix}.weight_hh` `[3H, H]` and `{prefix}.bias_hn` `[H]`.
    pub fn to_tensors(&self, prefix: &str) -> Result<Vec<(String, candle_core::Tensor)>> {
        let (i, h) = (self.input, self.hidden);
        let (bi, wh, bhn) = self.offsets();
        let p = &self.params;
        Ok(vec![
            (
                format!("{prefix}.weight_ih"),
                crate::init::to_tensor(p[..bi].to_vec(), &[3 * h, i])?,
            ),
            (
                format!("{prefix}.bias_ih"),
                crate::init::to_tensor(p[bi..wh].to_vec(), &[3 * h])?,
            ),
            (
                format!("{prefix}.weight_hh"),
                crate::init::to_tensor(p[wh..bhn].to_vec(), &[3 * h, h])?,
            ),
            (
                format!("{prefix}.bias_hn"),
                crate::init::to_tensor(p[bhn..].to_vec(), &[h])?,
            ),
        ])
    }

    /// Loads parameters written by [`Gru::to_tensors`] with the same prefix, checking shapes.
    pub fn load_tensors(
        &mut self,
        prefix: &str,
        tensors: &std::collections::HashMap<String, candle_core::Tensor>,
    ) -> Result<()> {
        self.params = crate::init::read_like(&self.to_tensors(prefix)?, tensors)?;
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::rng::{stream, Purpose};

    fn setup(t: usize, b: usize, i: usize, h: usize) -> (Gru, Vec<f32>, Vec<f32>, Vec<bool>) {
        let mut rng = stream(7, Purpose::Init, 0);
        let mut gru = Gru::new(i, h, &mut rng).unwrap();
        // Non-zero biases, so that their gradients are exercised.
        let np = gru.num_params();
        let (bi, wh, bhn) = gru.offsets();
        for (k, p) in gru.params_mut()[bi..wh].iter_mut().enumerate() {
            *p = 0.1 * (k as f32 * 0.7).sin();
        }
        for (k, p) in gru.params_mut()[bhn..np].iter_mut().enumerate() {
            *p = 0.2 * (k as f32 * 1.3).cos();
        }
        let x: Vec<f32> = (0..t * b * i).map(|k| (k as f32 * 0.37).sin()).collect();
        let h0: Vec<f32> = (0..b * h).map(|k| 0.5 * (k as f32 * 0.91).cos()).collect();
        let resets: Vec<bool> = (0..t * b).map(|k| k % 7 == 3).collect();
        (gru, x, h0, resets)
    }

    /// A weighted sum of the outputs, in f64 for the finite differences.
    fn loss(gru: &Gru, x: &[f32], h0: &[f32], resets: &[bool], t: usize, b: usize, w: &[f32]) -> f64 {
        let mut c = GruCache::default();
        let y = gru.forward_seq(x, t, b, h0, Some(resets), &mut c).unwrap();
        y.iter().zip(w).map(|(&a, &b)| a as f64 * b as f64).sum()
    }

    /// The step-by-step definition, by hand in f64, equals the sequence forward pass (which
    /// uses the fast tanh), and a reset step ignores the memory it was handed.
    #[test]
    fn forward_matches_the_cell_equations() {
        let (t, b, i, h) = (4, 3, 5, 6);
        let (gru, x, h0, resets) = setup(t, b, i, h);
        let mut c = GruCache::default();
        let y = gru.forward_seq(&x, t, b, &h0, Some(&resets), &mut c).unwrap().to_vec();
        let (bi, wh, bhn) = gru.offsets();
        let p: Vec<f64> = gru.params().iter().map(|&v| v as f64).collect();
        let mut hs: Vec<f64> = h0.iter().map(|&v| v as f64).collect();
        let sig = |v: f64| 1.0 / (1.0 + (-v).exp());
        for s in 0..t {
            let mut next = vec![0f64; b * h];
            for r in 0..b {
                let xr = &x[(s * b + r) * i..(s * b + r + 1) * i];
                let hp: Vec<f64> = if resets[s * b + r] {
                    vec![0.0; h]
                } else {
                    hs[r * h..(r + 1) * h].to_vec()
                };
                let gi =
                    |row: usize| -> f64 { p[bi + row] + (0..i).map(|k| p[row * i + k] * xr[k] as f64).sum::<f64>() };
                let gh = |row: usize| -> f64 { (0..h).map(|k| p[wh + row * h + k] * hp[k]).sum::<f64>() };
                for u in 0..h {
                    let rr = sig(gi(u) + gh(u));
                    let z = sig(gi(h + u) + gh(h + u));
                    let n = (gi(2 * h + u) + rr * (gh(2 * h + u) + p[bhn + u])).tanh();
                    next[r * h + u] = (1.0 - z) * n + z * hp[u];
                }
            }
            hs = next;
            for k in 0..b * h {
                let got = y[s * b * h + k] as f64;
                assert!((got - hs[k]).abs() < 2e-6, "step {s} value {k}: {got} vs {}", hs[k]);
            }
        }
        assert_eq!(c.final_hidden(), &y[(t - 1) * b * h..]);
    }

    /// Backpropagation through time (parameters and inputs) equals central finite differences
    /// of the forward pass, resets included.
    #[test]
    fn backward_matches_finite_differences() {
        let (t, b, i, h) = (5, 2, 3, 4);
        let (gru, x, h0, resets) = setup(t, b, i, h);
        let w: Vec<f32> = (0..t * b * h).map(|k| 0.3 - (k as f32 * 0.53).sin()).collect();
        let mut c = GruCache::default();
        gru.forward_seq(&x, t, b, &h0, Some(&resets), &mut c).unwrap();
        let mut g = vec![0f32; gru.num_params()];
        let mut dx = vec![0f32; x.len()];
        gru.backward_seq(&x, Some(&resets), &mut c, &w, &mut g, Some(&mut dx))
            .unwrap();
        let eps = 1e-2f32;
        for k in 0..gru.num_params() {
            let (mut a, mut m) = (gru.clone(), gru.clone());
            a.params_mut()[k] += eps;
            m.params_mut()[k] -= eps;
            let fd = (loss(&a, &x, &h0, &resets, t, b, &w) - loss(&m, &x, &h0, &resets, t, b, &w)) / (2.0 * eps as f64);
            assert!(
                (fd - g[k] as f64).abs() < 2e-3 * (1.0 + fd.abs()),
                "param {k}: {fd} vs {}",
                g[k]
            );
        }
        for k in 0..x.len() {
            let (mut a, mut m) = (x.clone(), x.clone());
            a[k] += eps;
            m[k] -= eps;
            let fd =
                (loss(&gru, &a, &h0, &resets, t, b, &w) - loss(&gru, &m, &h0, &resets, t, b, &w)) / (2.0 * eps as f64);
            assert!(
                (fd - dx[k] as f64).abs() < 2e-3 * (1.0 + fd.abs()),
                "x {k}: {fd} vs {}",
                dx[k]
            );
        }
    }

    /// Running a sequence one step at a time, each from the last step's final memory, gives
    /// the outputs of one pass (to rounding: the matrix products group rows differently): what
    /// acting step by step and re-running whole sequences in the update rely on.
    #[test]
    fn a_sequence_in_pieces_equals_one_pass() {
        let (t, b, i, h) = (6, 3, 4, 5);
        let (gru, x, h0, resets) = setup(t, b, i, h);
        let mut c = GruCache::default();
        let whole = gru.forward_seq(&x, t, b, &h0, Some(&resets), &mut c).unwrap().to_vec();
        let mut hs = h0.clone();
        for s in 0..t {
            let mut c1 = GruCache::default();
            let y = gru
                .forward_seq(
                    &x[s * b * i..(s + 1) * b * i],
                    1,
                    b,
                    &hs,
                    Some(&resets[s * b..(s + 1) * b]),
                    &mut c1,
                )
                .unwrap();
            for (a, w) in y.iter().zip(&whole[s * b * h..(s + 1) * b * h]) {
                assert!((a - w).abs() < 1e-6, "step {s}: {a} vs {w}");
            }
            hs = y.to_vec();
        }
    }

    #[test]
    fn tensors_round_trip_and_bad_shapes_are_errors() {
        let (gru, ..) = setup(1, 1, 3, 4);
        let t: std::collections::HashMap<_, _> = gru.to_tensors("g").unwrap().into_iter().collect();
        let mut other = Gru::new(3, 4, &mut stream(9, Purpose::Init, 0)).unwrap();
        other.load_tensors("g", &t).unwrap();
        assert_eq!(other, gru);
        let mut wrong = Gru::new(3, 5, &mut stream(9, Purpose::Init, 0)).unwrap();
        assert!(wrong.load_tensors("g", &t).is_err());
        assert!(Gru::new(0, 4, &mut stream(9, Purpose::Init, 0)).is_err());
        let mut c = GruCache::default();
        assert!(gru.forward_seq(&[0.0; 5], 1, 1, &[0.0; 4], None, &mut c).is_err());
    }
}
