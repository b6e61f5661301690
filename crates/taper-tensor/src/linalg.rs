//! Row-major matrix products on slices, through the `gemm` crate (single-threaded, so results
//! do not depend on the thread count), with a dot-product path for very small batches. Where
//! `gemm` computes each element as one in-order chain of fused multiply-adds, a kernel with
//! the same bits (AVX-512, or AVX2 with FMA) takes the product instead (`small_gemm`).

use crate::small_gemm::{self, Layout};

/// `C[m,n] (+)= lhs · rhs` through `gemm`, single-threaded; `lhs` is `m × k` and `rhs` is
/// `k × n`, each given with its (column, row) strides. Callers check the slice lengths.
#[allow(clippy::too_many_arguments)]
pub(crate) fn gemm_into(
    m: usize,
    n: usize,
    k: usize,
    c: &mut [f32],
    acc: bool,
    a: &[f32],
    a_strides: (isize, isize),
    b: &[f32],
    b_strides: (isize, isize),
) {
    // SAFETY: every caller asserts that the slices hold the m×k, k×n and m×n elements that
    // these strides reach.
    unsafe {
        gemm::gemm(
            m,
            n,
            k,
            c.as_mut_ptr(),
            1,
            n as isize,
            acc,
            a.as_ptr(),
            a_strides.0,
            a_strides.1,
            b.as_ptr(),
            b_strides.0,
            b_strides.1,
            if acc { 1.0 } else { 0.0 },
            1.0,
            false,
            false,
            false,
            gemm::Parallelism::None,
        )
    }
}

/// `C[m,n] (+)= A[m,k] · B[n,k]ᵀ`. With `acc` the product is added to `C`.
pub fn matmul_nt(m: usize, n: usize, k: usize, a: &[f32], b: &[f32], c: &mut [f32], acc: bool) {
    assert!(a.len() >= m * k && b.len() >= n * k && c.len() >= m * n);
    if m == 0 || n == 0 {
        return;
    }
    if m <= SMALL_M {
        small_nt(m, n, k, a, b, c, acc);
        return;
    }
    if small_gemm::product(Layout::Nt, m, n, k, a, b, c, acc) {
        return;
    }
    gemm_into(m, n, k, c, acc, a, (1, k as isize), b, (k as isize, 1));
}

/// `C[m,n] (+)= A[k,m]ᵀ · B[k,n]`.
pub fn matmul_tn(m: usize, n: usize, k: usize, a: &[f32], b: &[f32], c: &mut [f32], acc: bool) {
    assert!(a.len() >= m * k && b.len() >= n * k && c.len() >= m * n);
    if m == 0 || n == 0 {
        return;
    }
    if k == 0 {
        if !acc {
            c[..m * n].fill(0.0);
        }
        return;
    }
    if small_gemm::product(Layout::Tn, m, n, k, a, b, c, acc) {
        return;
    }
    gemm_into(m, n, k, c, acc, a, (m as isize, 1), b, (1, n as isize));
}

/// `C[m,n] (+)= A[m,k] · B[k,n]`.
pub fn matmul_nn(m: usize, n: usize, k: usize, a: &[f32], b: &[f32], c: &mut [f32], acc: bool) {
    assert!(a.len() >= m * k && b.len() >= n * k && c.len() >= m * n);
    if m == 0 || n == 0 {
        return;
    }
    if small_gemm::product(Layout::Nn, m, n, k, a, b, c, acc) {
        return;
    }
    gemm_into(m, n, k, c, acc, a, (1, k as isize), b, (1, n as isize));
}

/// Up to this many rows, `matmul_nt` uses dot products instead of `gemm` (measured: gemm wins
/// from 2 rows on, 1.7 µs against 4.0 µs for the 18-64-64-5 forward at batch 4).
pub const SMALL_M: usize = 1;

multiversion! {
    fn small_nt(m: usize, n: usize, k: usize, a: &[f32], b: &[f32], c: &mut [f32], acc: bool) {
        for i in 0..m {
            let ar = &a[i * k..(i + 1) * k];
            let cr = &mut c[i * n..(i + 1) * n];
            for (j, cij) in cr.iter_mut().enumerate() {
                let d = dot(ar, &b[j * k..(j + 1) * k]);
                if acc {
                    *cij += d;
                } else {
                    *cij = d;
                }
            }
        }
    }
}

#[inline(always)]
fn dot(a: &[f32], b: &[f32]) -> f32 {
    // Eight accumulators so the loop vectorises without reassociation flags.
    let mut acc = [0f32; 8];
    let ca = a.chunks_exact(8);
    let cb = b.chunks_exact(8);
    let (ra, rb) = (ca.remainder(), cb.remainder());
    for (x, y) in ca.zip(cb) {
        for i in 0..8 {
            acc[i] += x[i] * y[i];
        }
    }
    let mut s = ((acc[0] + acc[4]) + (acc[1] + acc[5])) + ((acc[2] + acc[6]) + (acc[3] + acc[7]));
    for (x, y) in ra.iter().zip(rb) {
        s += x * y;
    }
    s
}

#[cfg(test)]
mod tests {
    use super::*;

    fn naive(
        m: usize,
        n: usize,
        k: usize,
        a: impl Fn(usize, usize) -> f32,
        b: impl Fn(usize, usize) -> f32,
    ) -> Vec<f32> {
        let mut c = vec![0f32; m * n];
        for i in 0..m {
            for j in 0..n {
                c[i * n + j] = (0..k).map(|t| a(i, t) * b(t, j)).sum();
            }
        }
        c
    }

    #[test]
    fn products_match_naive() {
        let vals = |len: usize, s: f32| (0..len).map(|i| (i as f32 * s).sin()).collect::<Vec<_>>();
        for &(m, n, k) in &[(3usize, 5usize, 7usize), (33, 17, 9), (64, 64, 64), (100, 5, 64)] {
            let a = vals(m * k, 0.37);
            let b = vals(n * k, 0.91);
            let mut c = vec![1f32; m * n];
            matmul_nt(m, n, k, &a, &b, &mut c, false);
            let want = naive(m, n, k, |i, t| a[i * k + t], |t, j| b[j * k + t]);
            for (x, y) in c.iter().zip(&want) {
                assert!((x - y).abs() < 1e-4);
            }
            // tn: A is [k, m]
            let at = vals(k * m, 0.13);
            let bt = vals(k * n, 0.29);
            let mut c2 = vec![0.5f32; m * n];
            matmul_tn(m, n, k, &at, &bt, &mut c2, true);
            let want2 = naive(m, n, k, |i, t| at[t * m + i], |t, j| bt[t * n + j]);
            for (x, y) in c2.iter().zip(&want2) {
                assert!((x - 0.5 - y).abs() < 1e-4);
            }
            // nn
            let bn = vals(k * n, 0.71);
            let mut c3 = vec![0f32; m * n];
            matmul_nn(m, n, k, &a, &bn, &mut c3, false);
            let want3 = naive(m, n, k, |i, t| a[i * k + t], |t, j| bn[t * n + j]);
            for (x, y) in c3.iter().zip(&want3) {
                assert!((x - y).abs() < 1e-4);
            }
        }
    }
}
