//! Register-blocked kernels (AVX-512, and AVX2 with FMA) for the small matrix products of
//! small networks, with the same bits as `gemm`.
//!
//! For the shapes it takes, `gemm` computes every element of `C` as one chain of fused
//! multiply-adds over the inner dimension in order, from zero, then writes it or adds it to
//! `C` (its main path: one depth block, since its depth block is at least 512). This kernel
//! computes the same chain for each element, so its results are `gemm`'s to the bit
//! (`tests::same_bits_as_gemm`), without `gemm`'s packing and dispatch, which dominate at
//! these sizes. Where `gemm` takes another path (a dimension of one, a depth of one or two,
//! or its dot-product path for transposed right-hand sides with at most 256 outputs), or the
//! CPU has neither AVX-512 nor AVX2 with FMA, [`product`] declines and the caller uses `gemm`.
//! Both kernels compute the same chains; they differ only in how many elements each register
//! block holds.

/// How the operands are laid out, as in [`crate::linalg`].
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Layout {
    /// `C = A[m,k] · B[n,k]ᵀ`.
    Nt,
    /// `C = A[k,m]ᵀ · B[k,n]`.
    Tn,
    /// `C = A[m,k] · B[k,n]`.
    Nn,
}

/// The largest depth this kernel takes: `gemm` splits no depth up to here.
const MAX_K: usize = 512;

/// Whether `gemm` computes `C` as one in-order fused chain per element for this layout and
/// shape (its main path), so that [`product`] may replace it.
pub(crate) fn eligible(layout: Layout, m: usize, n: usize, k: usize) -> bool {
    m >= 2 && n >= 2 && (3..=MAX_K).contains(&k) && (layout != Layout::Nt || m * n > 256)
}

/// Whether [`product`] is faster than `gemm` here (measured with each kernel on its own
/// machine, `benches/tensor.rs`, group `small_products`). The kernel wins where `gemm`'s
/// packing and dispatch weigh most: a short inner dimension or a narrow output. An `Nt`
/// product pays for transposing `B` first, which only a short inner dimension repays. On the
/// wide products the AVX-512 kernel runs at `gemm`'s rate, while the AVX2 one, with a sixth
/// of its block, falls behind `gemm`'s packed kernel (256 × 256 × 256: about 0.85×), so it
/// takes at most [`AVX2_MAX_OUTPUTS`] elements of `C`.
#[cfg(target_arch = "x86_64")]
fn pays(isa: Isa, layout: Layout, m: usize, n: usize, k: usize) -> bool {
    match layout {
        Layout::Nt => k <= NT_MAX_K,
        Layout::Tn | Layout::Nn => isa == Isa::Avx512 || m * n <= AVX2_MAX_OUTPUTS,
    }
}

/// The most elements of `C` the AVX2 kernel computes for a `Tn` or `Nn` product (128 × 64:
/// PPO's minibatch products on CartPole).
const AVX2_MAX_OUTPUTS: usize = 8192;

/// The deepest `Nt` product the kernel takes (a first layer's forward pass).
const NT_MAX_K: usize = 16;

/// Below this many output columns a `Tn` product is computed transposed, `Cᵀ = Bᵀ·A`, so
/// that its vectors run along `m` (a first layer's weight gradient: `m` units by a few
/// inputs). Each element is the same chain, so the bits do not change.
const TN_SWAP_N: usize = 16;

/// `C[m,n] (+)= A·B` in `layout` with `gemm`'s bits, or `false` (nothing written) where the
/// shape is not [`eligible`] or the CPU has no kernel (`Isa::detect`). The slices hold at
/// least the elements the shape reaches (the callers assert it).
#[allow(clippy::too_many_arguments)]
pub(crate) fn product(
    layout: Layout,
    m: usize,
    n: usize,
    k: usize,
    a: &[f32],
    b: &[f32],
    c: &mut [f32],
    acc: bool,
) -> bool {
    #[cfg(target_arch = "x86_64")]
    {
        match Isa::detect() {
            Some(isa) if eligible(layout, m, n, k) && pays(isa, layout, m, n, k) => {
                product_on(isa, layout, m, n, k, a, b, c, acc);
                true
            }
            _ => false,
        }
    }
    #[cfg(not(target_arch = "x86_64"))]
    {
        let _ = (layout, m, n, k, a, b, c, acc);
        false
    }
}

/// [`product`] on the kernel of `isa`, for a shape that is [`eligible`]. `isa` comes from
/// `Isa::detect` or `Isa::all`, so the CPU has it.
#[cfg(target_arch = "x86_64")]
#[allow(clippy::too_many_arguments)]
fn product_on(isa: Isa, layout: Layout, m: usize, n: usize, k: usize, a: &[f32], b: &[f32], c: &mut [f32], acc: bool) {
    assert!(a.len() >= m * k && b.len() >= n * k && c.len() >= m * n);
    // The row-major right-hand side `B[p, j]` the kernel streams, and A's strides.
    let (a_rs, a_cs) = match layout {
        Layout::Nt | Layout::Nn => (k, 1),
        Layout::Tn => (1, m),
    };
    if layout == Layout::Nt {
        BT.with(|bt| {
            let mut bt = bt.borrow_mut();
            bt.clear();
            bt.resize(k * n, 0.0);
            for j in 0..n {
                for (p, &v) in b[j * k..(j + 1) * k].iter().enumerate() {
                    bt[p * n + j] = v;
                }
            }
            // SAFETY: the kernel's features are present (the callers' `Isa::detect`), and the slices
            // hold the elements the strides reach (asserted above; `bt` is k × n).
            unsafe { isa.product(m, n, k, a, a_rs, a_cs, &bt, c, acc) }
        });
    } else if layout == Layout::Tn && n < TN_SWAP_N && m >= TN_SWAP_N {
        // Cᵀ[n,m] = Σ_p B(p,j)·A(p,i): `B` is read by element (`B(p,j) = b[p·n + j]`) and
        // `A`'s rows are the streamed vectors; then Cᵀ is written back transposed.
        BT.with(|ct| {
            let mut ct = ct.borrow_mut();
            ct.clear();
            ct.resize(n * m, 0.0);
            // SAFETY: as above; `a` is k × m row-major here and `ct` is n × m.
            unsafe { isa.product(n, m, k, b, 1, n, a, &mut ct, false) }
            for i in 0..m {
                for j in 0..n {
                    let v = ct[j * m + i];
                    let cij = &mut c[i * n + j];
                    *cij = if acc { *cij + v } else { v };
                }
            }
        });
    } else {
        // SAFETY: as above; `b` is k × n row-major in these layouts.
        unsafe { isa.product(m, n, k, a, a_rs, a_cs, b, c, acc) }
    }
}

#[cfg(target_arch = "x86_64")]
thread_local! {
    /// The transposed right-hand side of an `Nt` product.
    static BT: std::cell::RefCell<Vec<f32>> = const { std::cell::RefCell::new(Vec::new()) };
}

/// The instruction set a kernel runs on.
#[cfg(target_arch = "x86_64")]
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Isa {
    /// AVX-512F: blocks of 6 rows by 64 columns.
    Avx512,
    /// AVX2 with FMA: blocks of 6 rows by 16 columns.
    Avx2,
}

#[cfg(target_arch = "x86_64")]
impl Isa {
    /// The widest kernel this CPU runs, or `None` (then `gemm` takes every product).
    fn detect() -> Option<Self> {
        if std::arch::is_x86_feature_detected!("avx512f") {
            Some(Self::Avx512)
        } else if std::arch::is_x86_feature_detected!("avx2") && std::arch::is_x86_feature_detected!("fma") {
            Some(Self::Avx2)
        } else {
            None
        }
    }

    /// Every kernel this CPU runs, widest first (the tests check each).
    #[cfg(test)]
    fn all() -> Vec<Self> {
        let mut v = Vec::new();
        if std::arch::is_x86_feature_detected!("avx512f") {
            v.push(Self::Avx512);
        }
        if std::arch::is_x86_feature_detected!("avx2") && std::arch::is_x86_feature_detected!("fma") {
            v.push(Self::Avx2);
        }
        v
    }

    /// `C (+)= A·B` with `A(i,p) = a[i·a_rs + p·a_cs]` and `B(p,j) = b[p·n + j]`.
    ///
    /// # Safety
    /// The CPU must have this instruction set ([`Isa::detect`] returned it), and the slices
    /// must hold the elements these strides reach.
    #[allow(clippy::too_many_arguments)]
    unsafe fn product(
        self,
        m: usize,
        n: usize,
        k: usize,
        a: &[f32],
        a_rs: usize,
        a_cs: usize,
        b: &[f32],
        c: &mut [f32],
        acc: bool,
    ) {
        match self {
            Self::Avx512 => avx512::product(m, n, k, a, a_rs, a_cs, b, c, acc),
            Self::Avx2 => avx2::product(m, n, k, a, a_rs, a_cs, b, c, acc),
        }
    }
}

#[cfg(target_arch = "x86_64")]
mod avx512 {
    use std::arch::x86_64::*;

    /// Rows per register block.
    const MR: usize = 6;
    /// Vectors of 16 columns per register block.
    const NV: usize = 4;

    /// `C (+)= A·B` with `A(i,p) = a[i·a_rs + p·a_cs]` and `B(p,j) = b[p·n + j]`.
    ///
    /// # Safety
    /// AVX-512F must be present, and the slices must hold the elements these strides reach.
    #[target_feature(enable = "avx512f")]
    #[allow(clippy::too_many_arguments)]
    pub(super) unsafe fn product(
        m: usize,
        n: usize,
        k: usize,
        a: &[f32],
        a_rs: usize,
        a_cs: usize,
        b: &[f32],
        c: &mut [f32],
        acc: bool,
    ) {
        let (a, b, c) = (a.as_ptr(), b.as_ptr(), c.as_mut_ptr());
        let mut j0 = 0;
        while j0 < n {
            let w = (n - j0).min(16 * NV);
            let nv = w.div_ceil(16);
            let mut masks = [0u16; NV];
            for (v, mask) in masks.iter_mut().enumerate().take(nv) {
                let cols = (w - 16 * v).min(16);
                *mask = if cols == 16 { u16::MAX } else { (1u16 << cols) - 1 };
            }
            let mut i0 = 0;
            while i0 < m {
                let mr = (m - i0).min(MR);
                let blk = Block {
                    a: a.add(i0 * a_rs),
                    a_rs,
                    a_cs,
                    b: b.add(j0),
                    ldb: n,
                    c: c.add(i0 * n + j0),
                    ldc: n,
                    k,
                    masks,
                    acc,
                };
                match (mr, nv) {
                    (6, 4) => blk.run::<6, 4>(),
                    (6, 3) => blk.run::<6, 3>(),
                    (6, 2) => blk.run::<6, 2>(),
                    (6, 1) => blk.run::<6, 1>(),
                    (5, 4) => blk.run::<5, 4>(),
                    (5, 3) => blk.run::<5, 3>(),
                    (5, 2) => blk.run::<5, 2>(),
                    (5, 1) => blk.run::<5, 1>(),
                    (4, 4) => blk.run::<4, 4>(),
                    (4, 3) => blk.run::<4, 3>(),
                    (4, 2) => blk.run::<4, 2>(),
                    (4, 1) => blk.run::<4, 1>(),
                    (3, 4) => blk.run::<3, 4>(),
                    (3, 3) => blk.run::<3, 3>(),
                    (3, 2) => blk.run::<3, 2>(),
                    (3, 1) => blk.run::<3, 1>(),
                    (2, 4) => blk.run::<2, 4>(),
                    (2, 3) => blk.run::<2, 3>(),
                    (2, 2) => blk.run::<2, 2>(),
                    (2, 1) => blk.run::<2, 1>(),
                    (1, 4) => blk.run::<1, 4>(),
                    (1, 3) => blk.run::<1, 3>(),
                    (1, 2) => blk.run::<1, 2>(),
                    _ => blk.run::<1, 1>(),
                }
                i0 += mr;
            }
            j0 += w;
        }
    }

    /// One register block: up to `MR` rows of `C` by up to `16·NV` columns.
    struct Block {
        a: *const f32,
        a_rs: usize,
        a_cs: usize,
        b: *const f32,
        ldb: usize,
        c: *mut f32,
        ldc: usize,
        k: usize,
        masks: [u16; NV],
        acc: bool,
    }

    impl Block {
        /// Each element: a fused multiply-add chain over `p = 0..k` in order, from zero; then
        /// written, or added to `C`.
        #[target_feature(enable = "avx512f")]
        #[inline]
        unsafe fn run<const R: usize, const V: usize>(&self) {
            let mut s = [[_mm512_setzero_ps(); V]; R];
            for p in 0..self.k {
                let brow = self.b.add(p * self.ldb);
                let mut bv = [_mm512_setzero_ps(); V];
                for (v, x) in bv.iter_mut().enumerate() {
                    *x = _mm512_maskz_loadu_ps(self.masks[v], brow.add(16 * v));
                }
                for (r, sr) in s.iter_mut().enumerate() {
                    let ar = _mm512_set1_ps(*self.a.add(r * self.a_rs + p * self.a_cs));
                    for (x, &y) in sr.iter_mut().zip(&bv) {
                        *x = _mm512_fmadd_ps(ar, y, *x);
                    }
                }
            }
            for (r, sr) in s.iter().enumerate() {
                let crow = self.c.add(r * self.ldc);
                for (v, &x) in sr.iter().enumerate() {
                    let dst = crow.add(16 * v);
                    let out = if self.acc {
                        _mm512_add_ps(_mm512_maskz_loadu_ps(self.masks[v], dst), x)
                    } else {
                        x
                    };
                    _mm512_mask_storeu_ps(dst, self.masks[v], out);
                }
            }
        }
    }
}

#[cfg(target_arch = "x86_64")]
mod avx2 {
    use std::arch::x86_64::*;

    /// Rows per register block.
    const MR: usize = 6;
    /// Vectors of 8 columns per register block: 12 accumulators, 2 loads of `B` and one
    /// broadcast of `A` fill 15 of the 16 registers.
    const NV: usize = 2;

    /// `C (+)= A·B` with `A(i,p) = a[i·a_rs + p·a_cs]` and `B(p,j) = b[p·n + j]`.
    ///
    /// # Safety
    /// AVX2 and FMA must be present, and the slices must hold the elements these strides
    /// reach.
    #[target_feature(enable = "avx2,fma")]
    #[allow(clippy::too_many_arguments)]
    pub(super) unsafe fn product(
        m: usize,
        n: usize,
        k: usize,
        a: &[f32],
        a_rs: usize,
        a_cs: usize,
        b: &[f32],
        c: &mut [f32],
        acc: bool,
    ) {
        let (a, b, c) = (a.as_ptr(), b.as_ptr(), c.as_mut_ptr());
        let mut j0 = 0;
        while j0 < n {
            let w = (n - j0).min(8 * NV);
            let nv = w.div_ceil(8);
            // Lane masks: a lane takes part where its sign bit is set.
            let mut masks = [_mm256_setzero_si256(); NV];
            for (v, mask) in masks.iter_mut().enumerate().take(nv) {
                let cols = (w - 8 * v).min(8) as i32;
                *mask = _mm256_cmpgt_epi32(_mm256_set1_epi32(cols), _mm256_setr_epi32(0, 1, 2, 3, 4, 5, 6, 7));
            }
            let mut i0 = 0;
            while i0 < m {
                let mr = (m - i0).min(MR);
                let blk = Block {
                    a: a.add(i0 * a_rs),
                    a_rs,
                    a_cs,
                    b: b.add(j0),
                    ldb: n,
                    c: c.add(i0 * n + j0),
                    ldc: n,
                    k,
                    masks,
                    acc,
                };
                // Masked loads and stores only where a vector is partial: some CPUs run
                // them far slower than plain ones (a masked store is microcoded on AMD Zen 2).
                if w.is_multiple_of(8) {
                    blk.dispatch::<false>(mr, nv);
                } else {
                    blk.dispatch::<true>(mr, nv);
                }
                i0 += mr;
            }
            j0 += w;
        }
    }

    /// One register block: up to `MR` rows of `C` by up to `8·NV` columns.
    struct Block {
        a: *const f32,
        a_rs: usize,
        a_cs: usize,
        b: *const f32,
        ldb: usize,
        c: *mut f32,
        ldc: usize,
        k: usize,
        masks: [__m256i; NV],
        acc: bool,
    }

    impl Block {
        /// [`Block::run`] for a block of `mr` rows and `nv` vectors; `M`: whether the last
        /// vector is partial.
        #[target_feature(enable = "avx2,fma")]
        unsafe fn dispatch<const M: bool>(&self, mr: usize, nv: usize) {
            match (mr, nv) {
                (6, 2) => self.run::<6, 2, M>(),
                (6, 1) => self.run::<6, 1, M>(),
                (5, 2) => self.run::<5, 2, M>(),
                (5, 1) => self.run::<5, 1, M>(),
                (4, 2) => self.run::<4, 2, M>(),
                (4, 1) => self.run::<4, 1, M>(),
                (3, 2) => self.run::<3, 2, M>(),
                (3, 1) => self.run::<3, 1, M>(),
                (2, 2) => self.run::<2, 2, M>(),
                (2, 1) => self.run::<2, 1, M>(),
                (1, 2) => self.run::<1, 2, M>(),
                _ => self.run::<1, 1, M>(),
            }
        }

        /// The `v`-th vector of 8 floats at `src`: masked where `M` says the block has a
        /// partial vector.
        #[target_feature(enable = "avx2,fma")]
        #[inline]
        unsafe fn load<const M: bool>(&self, src: *const f32, v: usize) -> __m256 {
            if M {
                _mm256_maskload_ps(src, self.masks[v])
            } else {
                _mm256_loadu_ps(src)
            }
        }

        /// Each element: a fused multiply-add chain over `p = 0..k` in order, from zero; then
        /// written, or added to `C`.
        #[target_feature(enable = "avx2,fma")]
        #[inline]
        unsafe fn run<const R: usize, const V: usize, const M: bool>(&self) {
            let mut s = [[_mm256_setzero_ps(); V]; R];
            for p in 0..self.k {
                let brow = self.b.add(p * self.ldb);
                let mut bv = [_mm256_setzero_ps(); V];
                for (v, x) in bv.iter_mut().enumerate() {
                    *x = self.load::<M>(brow.add(8 * v), v);
                }
                for (r, sr) in s.iter_mut().enumerate() {
                    let ar = _mm256_set1_ps(*self.a.add(r * self.a_rs + p * self.a_cs));
                    for (x, &y) in sr.iter_mut().zip(&bv) {
                        *x = _mm256_fmadd_ps(ar, y, *x);
                    }
                }
            }
            for (r, sr) in s.iter().enumerate() {
                let crow = self.c.add(r * self.ldc);
                for (v, &x) in sr.iter().enumerate() {
                    let dst = crow.add(8 * v);
                    let out = if self.acc {
                        _mm256_add_ps(self.load::<M>(dst, v), x)
                    } else {
                        x
                    };
                    if M {
                        _mm256_maskstore_ps(dst, self.masks[v], out);
                    } else {
                        _mm256_storeu_ps(dst, out);
                    }
                }
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use rand::{Rng, SeedableRng};

    /// `gemm`'s result, the reference.
    #[allow(clippy::too_many_arguments)]
    fn by_gemm(layout: Layout, m: usize, n: usize, k: usize, a: &[f32], b: &[f32], c: &mut [f32], acc: bool) {
        let (ka, kb) = (k as isize, n as isize);
        let (sa, sb) = match layout {
            Layout::Nt => ((1, ka), (ka, 1)),
            Layout::Tn => ((m as isize, 1), (1, kb)),
            Layout::Nn => ((1, ka), (1, kb)),
        };
        crate::linalg::gemm_into(m, n, k, c, acc, a, sa, b, sb);
    }

    /// Values with exact zeros of both signs, as dead units and masked rows give.
    fn values(rng: &mut rand::rngs::StdRng, len: usize) -> Vec<f32> {
        (0..len)
            .map(|_| match rng.random_range(0..10) {
                0 => 0.0,
                1 => -0.0,
                _ => rng.random_range(-2.0f32..2.0),
            })
            .collect()
    }

    #[test]
    #[cfg(target_arch = "x86_64")]
    fn same_bits_as_gemm() {
        let isas = Isa::all();
        if isas.is_empty() {
            eprintln!("neither AVX-512 nor AVX2 with FMA here: the kernels decline every product");
            return;
        }
        let mut rng = rand::rngs::StdRng::seed_from_u64(7);
        let mut checked = 0;
        for &m in &[2usize, 3, 4, 7, 12, 48, 64, 65, 128, 130, 768] {
            for &n in &[2usize, 4, 5, 17, 64, 65, 128, 129, 384] {
                for &k in &[3usize, 4, 11, 16, 18, 54, 64, 128, 257, 512] {
                    for layout in [Layout::Nt, Layout::Tn, Layout::Nn] {
                        // Every shape the kernels may take, not only those `product` gives them.
                        if !eligible(layout, m, n, k) || m * n * k > 4_000_000 {
                            continue;
                        }
                        let a = values(&mut rng, m * k);
                        let b = values(&mut rng, n * k);
                        for acc in [false, true] {
                            let c0 = values(&mut rng, m * n);
                            let mut want = c0.clone();
                            by_gemm(layout, m, n, k, &a, &b, &mut want, acc);
                            let mut got = c0.clone();
                            let isa = isas[0];
                            assert_eq!(
                                product(layout, m, n, k, &a, &b, &mut got, acc),
                                pays(isa, layout, m, n, k)
                            );
                            for &isa in &isas {
                                let mut got = c0.clone();
                                product_on(isa, layout, m, n, k, &a, &b, &mut got, acc);
                                for (i, (x, y)) in got.iter().zip(&want).enumerate() {
                                    assert_eq!(
                                        x.to_bits(),
                                        y.to_bits(),
                                        "{isa:?} {layout:?} {m}x{n}x{k} acc={acc} element {i}: {x} against gemm's {y}"
                                    );
                                }
                                checked += 1;
                            }
                        }
                    }
                }
            }
        }
        assert!(checked > 300, "{checked}");
    }

    #[test]
    fn declines_what_gemm_computes_otherwise() {
        for (layout, m, n, k) in [
            (Layout::Nt, 4, 64, 64),    // gemm's dot-product path (m·n ≤ 256)
            (Layout::Nt, 128, 2, 64),   // the same
            (Layout::Nn, 128, 1, 64),   // a matrix-vector product
            (Layout::Tn, 1, 64, 128),   // the same
            (Layout::Nn, 128, 64, 2),   // depth ≤ 2
            (Layout::Tn, 64, 64, 1536), // depth split into blocks
        ] {
            assert!(!eligible(layout, m, n, k), "{layout:?} {m}x{n}x{k}");
            let mut c = vec![f32::NAN; m * n];
            let (a, b) = (vec![1.0; m * k], vec![1.0; n * k]);
            assert!(!product(layout, m, n, k, &a, &b, &mut c, false));
            assert!(c.iter().all(|x| x.is_nan()), "nothing written");
        }
    }
}
