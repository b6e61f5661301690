//! Vectorisable elementwise kernels: a fast `tanh`, GELU, and their gradients.
//!
//! candle 0.11 on CPU evaluates `tanh` with the C library's scalar `tanhf`, about 14 ns per
//! element (see `docs/performance.md`). [`tanh_slice`] evaluates a branch-free rational
//! approximation that the compiler vectorises, compiled for AVX-512, AVX2+FMA and a generic
//! target, and picked at run time.
//!
//! The approximation is the odd 13/6 rational function used by Eigen's
//! `generic_fast_tanh_float` (coefficients from Eigen, `MathFunctionsImpl.h`), with the input
//! clamped to ±7.9053, beyond which `tanh` rounds to ±1 in f32. Its absolute error against
//! f64 `tanh` is below 1e-6 (tested).
//!
//! ```
//! let x = [-3.0f32, -0.5, 0.0, 0.25, 10.0];
//! let mut y = [0f32; 5];
//! taper_tensor::fastmath::tanh_slice(&x, &mut y);
//! for (a, b) in x.iter().zip(&y) {
//!     assert!((a.tanh() - b).abs() < 1e-6);
//! }
//! ```

// The coefficients keep the digits of their source.
#[allow(clippy::excessive_precision)]
mod coef {
    pub const CLAMP: f32 = 7.905_311;
    pub const A1: f32 = 4.893_524_6e-3;
    pub const A3: f32 = 6.372_619_3e-4;
    pub const A5: f32 = 1.485_722_4e-5;
    pub const A7: f32 = 5.122_297e-8;
    pub const A9: f32 = -8.604_671_5e-11;
    pub const A11: f32 = 2.000_187_9e-13;
    pub const A13: f32 = -2.760_768_5e-16;
    pub const B0: f32 = 4.893_525_2e-3;
    pub const B2: f32 = 2.268_434_7e-3;
    pub const B4: f32 = 1.185_347_1e-4;
    pub const B6: f32 = 1.198_258_4e-6;
}
use coef::*;

/// The scalar form of the fast tanh.
#[inline(always)]
pub fn tanh_fast(x: f32) -> f32 {
    let x = x.clamp(-CLAMP, CLAMP);
    let x2 = x * x;
    let mut p = A13;
    p = p * x2 + A11;
    p = p * x2 + A9;
    p = p * x2 + A7;
    p = p * x2 + A5;
    p = p * x2 + A3;
    p = p * x2 + A1;
    p *= x;
    let mut q = B6;
    q = q * x2 + B4;
    q = q * x2 + B2;
    q = q * x2 + B0;
    p / q
}

/// How many values the slice kernels evaluate side by side. One value's [`tanh_fast`] is a
/// chain of 14 dependent operations and a division, longer than the processor's out-of-order
/// window overlaps when the loop runs one vector at a time; written as one step of every
/// value of a chunk after another, the chunk's vectors interleave their chains. Each value
/// still sees exactly [`tanh_fast`]'s operations, so the bits are the same.
const CHUNK: usize = 64;

/// `y[i] = tanh(x[i])` over one chunk: [`tanh_fast`] step by step across the chunk.
#[inline(always)]
fn tanh_chunk(input: &[f32; CHUNK], y: &mut [f32; CHUNK]) {
    let mut x = [0f32; CHUNK];
    let mut x2 = [0f32; CHUNK];
    for i in 0..CHUNK {
        x[i] = input[i].clamp(-CLAMP, CLAMP);
        x2[i] = x[i] * x[i];
    }
    let mut p = [A13; CHUNK];
    for a in [A11, A9, A7, A5, A3, A1] {
        for i in 0..CHUNK {
            p[i] = p[i] * x2[i] + a;
        }
    }
    let mut q = [B6; CHUNK];
    for c in [B4, B2, B0] {
        for i in 0..CHUNK {
            q[i] = q[i] * x2[i] + c;
        }
    }
    for i in 0..CHUNK {
        y[i] = p[i] * x[i] / q[i];
    }
}

multiversion! {
    /// `y[i] = tanh(x[i])` with the fast approximation. Panics if the lengths differ.
    pub fn tanh_slice(x: &[f32], y: &mut [f32]) {
        assert_eq!(x.len(), y.len(), "tanh_slice: lengths differ");
        let (ychunks, yrest) = y.as_chunks_mut::<CHUNK>();
        let (xchunks, xrest) = x.as_chunks::<CHUNK>();
        for (yc, xc) in ychunks.iter_mut().zip(xchunks) {
            tanh_chunk(xc, yc);
        }
        for (yi, &xi) in yrest.iter_mut().zip(xrest) {
            *yi = tanh_fast(xi);
        }
    }
}

multiversion! {
    /// In place: `x[i] = tanh(x[i] + b[i % b.len()])`, the bias-add and activation of a layer.
    pub fn bias_tanh_inplace(x: &mut [f32], b: &[f32]) {
        let n = b.len();
        let (bchunks, brest) = b.as_chunks::<CHUNK>();
        for row in x.chunks_exact_mut(n) {
            let (vchunks, vrest) = row.as_chunks_mut::<CHUNK>();
            for (vc, bc) in vchunks.iter_mut().zip(bchunks) {
                let mut t = [0f32; CHUNK];
                for i in 0..CHUNK {
                    t[i] = vc[i] + bc[i];
                }
                tanh_chunk(&t, vc);
            }
            for (v, &bi) in vrest.iter_mut().zip(brest) {
                *v = tanh_fast(*v + bi);
            }
        }
    }
}

multiversion! {
    /// In place: `x[i] = x[i] + b[i % b.len()]`.
    pub fn bias_add_inplace(x: &mut [f32], b: &[f32]) {
        let n = b.len();
        for row in x.chunks_exact_mut(n) {
            for (v, &bi) in row.iter_mut().zip(b) {
                *v += bi;
            }
        }
    }
}

multiversion! {
    /// In place: `g[i] *= 1 - y[i]^2`, the tanh gradient given its output `y`.
    pub fn tanh_grad_inplace(g: &mut [f32], y: &[f32]) {
        for (gi, &yi) in g.iter_mut().zip(y) {
            *gi *= 1.0 - yi * yi;
        }
    }
}

multiversion! {
    /// Adds the column sums of the row-major matrix `x` (rows of `out.len()`) to `out`.
    pub fn col_sum_acc(x: &[f32], out: &mut [f32]) {
        let n = out.len();
        for row in x.chunks_exact(n) {
            for (o, &v) in out.iter_mut().zip(row) {
                *o += v;
            }
        }
    }
}

/// √(2/π), GELU's tanh-form constant.
const GELU_C: f32 = 0.797_884_6;
/// GELU's cubic coefficient.
const GELU_A: f32 = 0.044_715;

/// The argument of GELU's tanh, `√(2/π)·x·(1 + 0.044715x²)`.
#[inline(always)]
fn gelu_arg(x: f32) -> f32 {
    GELU_C * x * (1.0 + GELU_A * x * x)
}

/// The tanh of [`gelu_arg`] over one chunk.
#[inline(always)]
fn gelu_tanh_chunk(x: &[f32; CHUNK]) -> [f32; CHUNK] {
    let mut arg = [0f32; CHUNK];
    for i in 0..CHUNK {
        arg[i] = gelu_arg(x[i]);
    }
    let mut th = [0f32; CHUNK];
    tanh_chunk(&arg, &mut th);
    th
}

/// GELU's derivative at `x`, given `th`, the tanh of [`gelu_arg`]`(x)`.
#[inline(always)]
fn gelu_slope(x: f32, th: f32) -> f32 {
    0.5 * (1.0 + th) + 0.5 * x * (1.0 - th * th) * GELU_C * (1.0 + 3.0 * GELU_A * x * x)
}

multiversion! {
    /// `y[i] = gelu(x[i])` in the tanh form, `½x(1 + tanh(√(2/π)(x + 0.044715x³)))` (candle's
    /// and GPT-2's `gelu`), with the fast tanh. Panics if the lengths differ.
    pub fn gelu_slice(x: &[f32], y: &mut [f32]) {
        assert_eq!(x.len(), y.len(), "gelu_slice: lengths differ");
        let (ychunks, yrest) = y.as_chunks_mut::<CHUNK>();
        let (xchunks, xrest) = x.as_chunks::<CHUNK>();
        for (yc, xc) in ychunks.iter_mut().zip(xchunks) {
            let th = gelu_tanh_chunk(xc);
            for i in 0..CHUNK {
                yc[i] = 0.5 * xc[i] * (1.0 + th[i]);
            }
        }
        for (yi, &xi) in yrest.iter_mut().zip(xrest) {
            let th = tanh_fast(gelu_arg(xi));
            *yi = 0.5 * xi * (1.0 + th);
        }
    }
}

multiversion! {
    /// In place: `g[i] *= gelu'(x[i])`, the gradient of [`gelu_slice`] at its input `x`.
    pub fn gelu_grad_inplace(g: &mut [f32], x: &[f32]) {
        let n = g.len().min(x.len());
        let (g, x) = (&mut g[..n], &x[..n]);
        let (gchunks, grest) = g.as_chunks_mut::<CHUNK>();
        let (xchunks, xrest) = x.as_chunks::<CHUNK>();
        for (gc, xc) in gchunks.iter_mut().zip(xchunks) {
            let th = gelu_tanh_chunk(xc);
            for i in 0..CHUNK {
                gc[i] *= gelu_slope(xc[i], th[i]);
            }
        }
        for (gi, &xi) in grest.iter_mut().zip(xrest) {
            *gi *= gelu_slope(xi, tanh_fast(gelu_arg(xi)));
        }
    }
}

/// A candle op that applies the fast tanh, with a one-pass backward `g * (1 - y^2)`.
///
/// ```
/// use candle_core::{Device, Tensor};
/// let x = Tensor::new(&[-1f32, 0.0, 2.0], &Device::Cpu)?;
/// let y = taper_tensor::fastmath::fast_tanh(&x)?;
/// let want = x.tanh()?;
/// let diff = (y - want)?.abs()?.max(0)?.to_scalar::<f32>()?;
/// assert!(diff < 1e-6);
/// # Ok::<(), candle_core::Error>(())
/// ```
pub fn fast_tanh(x: &candle_core::Tensor) -> candle_core::Result<candle_core::Tensor> {
    if x.device().is_cpu() && x.dtype() == candle_core::DType::F32 {
        x.apply_op1(FastTanh)
    } else {
        x.tanh()
    }
}

struct FastTanh;
struct TanhGrad;

fn contiguous_f32<'a>(s: &'a candle_core::CpuStorage, l: &candle_core::Layout) -> candle_core::Result<&'a [f32]> {
    let data = match s {
        candle_core::CpuStorage::F32(v) => v.as_slice(),
        _ => candle_core::bail!("taper fast tanh: expected f32 storage"),
    };
    match l.contiguous_offsets() {
        Some((a, b)) => Ok(&data[a..b]),
        None => candle_core::bail!("taper fast tanh: expected a contiguous tensor"),
    }
}

impl candle_core::CustomOp1 for FastTanh {
    fn name(&self) -> &'static str {
        "taper-fast-tanh"
    }
    fn cpu_fwd(
        &self,
        s: &candle_core::CpuStorage,
        l: &candle_core::Layout,
    ) -> candle_core::Result<(candle_core::CpuStorage, candle_core::Shape)> {
        let x = contiguous_f32(s, l)?;
        let mut y = vec![0f32; x.len()];
        tanh_slice(x, &mut y);
        Ok((candle_core::CpuStorage::F32(y), l.shape().clone()))
    }
    fn bwd(
        &self,
        _arg: &candle_core::Tensor,
        res: &candle_core::Tensor,
        grad_res: &candle_core::Tensor,
    ) -> candle_core::Result<Option<candle_core::Tensor>> {
        let g = grad_res.contiguous()?;
        let y = res.contiguous()?;
        Ok(Some(g.apply_op2_no_bwd(&y, &TanhGrad)?))
    }
}

impl candle_core::CustomOp2 for TanhGrad {
    fn name(&self) -> &'static str {
        "taper-tanh-grad"
    }
    fn cpu_fwd(
        &self,
        s1: &candle_core::CpuStorage,
        l1: &candle_core::Layout,
        s2: &candle_core::CpuStorage,
        l2: &candle_core::Layout,
    ) -> candle_core::Result<(candle_core::CpuStorage, candle_core::Shape)> {
        let g = contiguous_f32(s1, l1)?;
        let y = contiguous_f32(s2, l2)?;
        let mut out = g.to_vec();
        tanh_grad_inplace(&mut out, y);
        Ok((candle_core::CpuStorage::F32(out), l1.shape().clone()))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn tanh_accuracy_against_f64() {
        let mut worst = 0f64;
        let n = 200_001;
        let xs: Vec<f32> = (0..n).map(|i| -10.0 + 20.0 * i as f32 / (n - 1) as f32).collect();
        let mut ys = vec![0f32; n];
        tanh_slice(&xs, &mut ys);
        for (x, y) in xs.iter().zip(&ys) {
            let e = ((*x as f64).tanh() - *y as f64).abs();
            worst = worst.max(e);
        }
        assert!(worst < 1e-6, "worst abs error {worst}");
        // And against f32::tanh, what users compare with.
        for (x, y) in xs.iter().zip(&ys) {
            assert!((x.tanh() - y).abs() < 1.2e-6);
        }
        // Odd symmetry and saturation.
        assert_eq!(tanh_fast(0.0), 0.0);
        assert_eq!(tanh_fast(-2.0), -tanh_fast(2.0));
        assert!((tanh_fast(50.0) - 1.0).abs() < 1e-6);
    }

    /// The chunked slice kernels give, value by value, the bits of the scalar [`tanh_fast`]
    /// (GELU and its gradient: of their formulas written with it),
    /// at widths with and without a remainder, over signed zeros, the clamp's edges,
    /// infinities and NaN.
    #[test]
    fn chunked_kernels_have_the_scalar_bits() {
        let specials = [
            0.0f32,
            -0.0,
            CLAMP,
            -CLAMP,
            7.9,
            8.0,
            -1e-30,
            f32::INFINITY,
            f32::NEG_INFINITY,
            f32::NAN,
        ];
        let mut state = 0x9e37_79b9u32;
        let mut next = || {
            state ^= state << 13;
            state ^= state >> 17;
            state ^= state << 5;
            (state as f32 / u32::MAX as f32 - 0.5) * 20.0
        };
        for width in [1usize, 3, 63, 64, 65, 128, 200] {
            let rows = 5;
            let mut x: Vec<f32> = (0..rows * width).map(|_| next()).collect();
            for (i, v) in specials.iter().enumerate() {
                let at = (i * 7) % x.len();
                x[at] = *v;
            }
            let b: Vec<f32> = (0..width).map(|i| if i % 5 == 0 { -0.0 } else { next() }).collect();
            let mut y = vec![0f32; x.len()];
            tanh_slice(&x, &mut y);
            let mut z = x.clone();
            bias_tanh_inplace(&mut z, &b);
            let mut gelu = vec![0f32; x.len()];
            gelu_slice(&x, &mut gelu);
            let mut slope: Vec<f32> = (0..x.len()).map(|i| 1.0 + i as f32 * 0.01).collect();
            let upstream = slope.clone();
            gelu_grad_inplace(&mut slope, &x);
            for (i, &xi) in x.iter().enumerate() {
                // GELU value by value, as written before the chunks.
                let th = tanh_fast(GELU_C * xi * (1.0 + GELU_A * xi * xi));
                let want = 0.5 * xi * (1.0 + th);
                assert_eq!(gelu[i].to_bits(), want.to_bits(), "gelu_slice at {xi}");
                let d = 0.5 * (1.0 + th) + 0.5 * xi * (1.0 - th * th) * GELU_C * (1.0 + 3.0 * GELU_A * xi * xi);
                assert_eq!(
                    slope[i].to_bits(),
                    (upstream[i] * d).to_bits(),
                    "gelu_grad_inplace at {xi}"
                );
                assert_eq!(y[i].to_bits(), tanh_fast(xi).to_bits(), "tanh_slice at {xi}");
                let want = tanh_fast(xi + b[i % width]);
                assert_eq!(
                    z[i].to_bits(),
                    want.to_bits(),
                    "bias_tanh_inplace at {xi} + {}",
                    b[i % width]
                );
            }
        }
    }

    #[test]
    fn candle_op_gradient_matches_candle_tanh() -> candle_core::Result<()> {
        use candle_core::{Device, Var};
        let v = Var::from_vec(vec![-2f32, -0.3, 0.0, 0.7, 3.0], 5, &Device::Cpu)?;
        let g1 = fast_tanh(v.as_tensor())?.sum_all()?.backward()?;
        let g2 = v.as_tensor().tanh()?.sum_all()?.backward()?;
        let a = g1.get(v.as_tensor()).unwrap().to_vec1::<f32>()?;
        let b = g2.get(v.as_tensor()).unwrap().to_vec1::<f32>()?;
        for (x, y) in a.iter().zip(&b) {
            assert!((x - y).abs() < 2e-6);
        }
        Ok(())
    }
}
