//! The transformer of [`crate::transformer`] on host buffers: a forward pass that records what
//! its hand-written backward pass needs, and a KV cache for sampling. The same arithmetic as
//! the candle graph (GPT-2's layout, LayerNorm ε 1e-5, GELU's tanh form, with a fast tanh), with the products
//! through [`crate::linalg`] (single-threaded `gemm`), so a result never depends on the thread
//! count. The candle graph is the oracle: the tests in [`crate::transformer`] compare the two.
//!
//! Parameters are slices and gradients one flat vector, both in the model's variable order: the token and
//! position embeddings, then per block the twelve tensors of `BLOCK`, then the final
//! LayerNorm and the head.

// The kernels take their shapes as plain arguments.
#![allow(clippy::too_many_arguments)]

use crate::fastmath::{gelu_grad_inplace, gelu_slice};
use crate::linalg::{matmul_nn, matmul_nt, matmul_tn};
use crate::scratch::Scratch;
use crate::transformer::TransformerConfig;

const LN_EPS: f32 = 1e-5;

/// Where each variable sits in the flat vector: `(offset, length)`, in variable order.
#[derive(Debug, Clone)]
pub(crate) struct Layout {
    pub(crate) spans: Vec<(usize, usize)>,
    pub(crate) total: usize,
}

impl Layout {
    /// The spans of variables of `sizes` elements, laid end to end.
    pub(crate) fn new(sizes: &[usize]) -> Self {
        let mut spans = Vec::with_capacity(sizes.len());
        let mut at = 0;
        for &n in sizes {
            spans.push((at, n));
            at += n;
        }
        Layout { spans, total: at }
    }
}

/// Read-only views of the parameters by role.
struct Params<'a> {
    cfg: &'a TransformerConfig,
    vars: &'a [&'a [f32]],
}

impl<'a> Params<'a> {
    fn var(&self, i: usize) -> &'a [f32] {
        self.vars[i]
    }
    /// Block `l`'s parameter `k` (in `BLOCK` order).
    fn blk(&self, l: usize, k: usize) -> &'a [f32] {
        self.var(2 + 12 * l + k)
    }
    /// The final LayerNorm's gain and bias, the head's weight and bias (`k` 0..4).
    fn last(&self, k: usize) -> &'a [f32] {
        self.var(2 + 12 * self.cfg.n_layers + k)
    }
}

/// Mutable views of a gradient vector by role.
struct Grads<'a> {
    flat: &'a mut [f32],
    lay: &'a Layout,
    layers: usize,
}

impl Grads<'_> {
    fn var(&mut self, i: usize) -> &mut [f32] {
        let (o, n) = self.lay.spans[i];
        &mut self.flat[o..o + n]
    }
    /// Variables `i` and `i + 1`, which lie next to each other (a weight and its bias, a
    /// LayerNorm's gain and bias).
    fn pair(&mut self, i: usize) -> (&mut [f32], &mut [f32]) {
        let ((ow, nw), (ob, nb)) = (self.lay.spans[i], self.lay.spans[i + 1]);
        debug_assert_eq!(ow + nw, ob);
        self.flat[ow..ob + nb].split_at_mut(nw)
    }
    /// Block `l`'s parameters `k` and `k + 1`.
    fn blk(&mut self, l: usize, k: usize) -> (&mut [f32], &mut [f32]) {
        self.pair(2 + 12 * l + k)
    }
    /// The final parameters `k` and `k + 1`.
    fn last(&mut self, k: usize) -> (&mut [f32], &mut [f32]) {
        self.pair(2 + 12 * self.layers + k)
    }
}

multiversion! {
    /// LayerNorm of the rows of `x` (`d` wide) into `y`, keeping the normalised rows and the
    /// reciprocal standard deviations for the backward pass.
    fn layer_norm(x: &[f32], w: &[f32], b: &[f32], d: usize, y: &mut [f32], xhat: &mut [f32], rstd: &mut [f32]) {
        for (r, xr) in x.chunks_exact(d).enumerate() {
            let mean = sum(xr) / d as f32;
            let hr = &mut xhat[r * d..(r + 1) * d];
            for (h, &v) in hr.iter_mut().zip(xr) {
                *h = v - mean;
            }
            let rs = 1.0 / (dot(hr, hr) / d as f32 + LN_EPS).sqrt();
            rstd[r] = rs;
            let yr = &mut y[r * d..(r + 1) * d];
            for k in 0..d {
                hr[k] *= rs;
                yr[k] = hr[k] * w[k] + b[k];
            }
        }
    }
}

multiversion! {
    /// The backward pass of [`layer_norm`]: adds to `dx`, `dw` and `db`.
    fn layer_norm_back(
        dy: &[f32],
        xhat: &[f32],
        rstd: &[f32],
        w: &[f32],
        d: usize,
        dx: &mut [f32],
        dw: &mut [f32],
        db: &mut [f32],
    ) {
        let mut g = vec![0f32; d];
        for (r, dyr) in dy.chunks_exact(d).enumerate() {
            let hr = &xhat[r * d..(r + 1) * d];
            for k in 0..d {
                g[k] = dyr[k] * w[k];
                dw[k] += dyr[k] * hr[k];
                db[k] += dyr[k];
            }
            let (m1, m2) = (sum(&g) / d as f32, dot(&g, hr) / d as f32);
            let dxr = &mut dx[r * d..(r + 1) * d];
            for k in 0..d {
                dxr[k] += rstd[r] * (g[k] - m1 - hr[k] * m2);
            }
        }
    }
}

/// `y = x · wᵀ + b` for `rows` rows.
fn linear(x: &[f32], w: &[f32], b: &[f32], rows: usize, n_in: usize, n_out: usize, y: &mut [f32]) {
    matmul_nt(rows, n_out, n_in, x, w, y, false);
    for yr in y.chunks_exact_mut(n_out) {
        for (v, &bb) in yr.iter_mut().zip(b) {
            *v += bb;
        }
    }
}

/// The backward pass of [`linear`]: adds `dyᵀ·x` to `dw` and the column sums of `dy` to `db`,
/// and writes `dy · w` into `dx` (adds with `acc`).
fn linear_back(
    dy: &[f32],
    x: &[f32],
    w: &[f32],
    rows: usize,
    n_in: usize,
    n_out: usize,
    dx: Option<(&mut [f32], bool)>,
    dw: &mut [f32],
    db: &mut [f32],
) {
    matmul_tn(n_out, n_in, rows, dy, x, dw, true);
    for dyr in dy.chunks_exact(n_out) {
        for (g, &v) in db.iter_mut().zip(dyr) {
            *g += v;
        }
    }
    if let Some((dx, acc)) = dx {
        matmul_nn(rows, n_in, n_out, dy, w, dx, acc);
    }
}

/// A sum with eight running sums (see [`dot`]).
#[inline(always)]
fn sum(a: &[f32]) -> f32 {
    let ca = a.chunks_exact(8);
    let tail: f32 = ca.remainder().iter().sum();
    let mut acc = [0f32; 8];
    for x in ca {
        for k in 0..8 {
            acc[k] += x[k];
        }
    }
    acc.iter().sum::<f32>() + tail
}

/// A dot product with eight running sums, which the compiler keeps in one vector register.
#[inline(always)]
fn dot(a: &[f32], b: &[f32]) -> f32 {
    let (ca, cb) = (a.chunks_exact(8), b.chunks_exact(8));
    let mut tail = 0f32;
    for (x, y) in ca.remainder().iter().zip(cb.remainder()) {
        tail += x * y;
    }
    let mut acc = [0f32; 8];
    for (x, y) in ca.zip(cb) {
        for k in 0..8 {
            acc[k] += x[k] * y[k];
        }
    }
    acc.iter().sum::<f32>() + tail
}

/// What one block's backward pass reads.
#[derive(Debug, Clone, Default)]
struct BlockTape {
    xhat1: Scratch,
    rstd1: Scratch,
    a: Scratch,
    qkv: Scratch,
    probs: Scratch,
    att: Scratch,
    xhat2: Scratch,
    rstd2: Scratch,
    m: Scratch,
    hpre: Scratch,
    g: Scratch,
}

/// A forward pass over `[b, t]` slots and what its backward pass reads.
#[derive(Debug, Clone)]
pub(crate) struct Tape {
    /// The layout of the buffer rows.
    pub(crate) g: Groups,
    tokens: Vec<u32>,
    pos: Vec<u32>,
    valid: Vec<bool>,
    blocks: Vec<BlockTape>,
    /// The buffer rows whose logits are computed (every row when `None`): the last block
    /// runs its attention queries, projection, MLP, final LayerNorm and head on these only.
    live: Option<Vec<usize>>,
    /// The last block's query validity: `valid` and wanted.
    qok_last: Vec<bool>,
    /// Each buffer row's row in `logits`, `u32::MAX` where not computed.
    logit_at: Vec<u32>,
    xhat_f: Scratch,
    rstd_f: Scratch,
    xf: Scratch,
    /// The logits of the wanted buffer rows, in buffer order (see [`Tape::logit_row`]).
    pub(crate) logits: Scratch,
}

impl Tape {
    /// The row of `logits` that holds buffer row `row`'s logits (which must have been wanted).
    pub(crate) fn logit_row(&self, row: usize) -> usize {
        let at = self.logit_at[row];
        debug_assert!(at != u32::MAX, "buffer row {row} was not wanted");
        at as usize
    }
}

/// Rows `sel` of the `[_, w]` buffer `x`, in order.
fn gather_rows(x: &[f32], sel: &[usize], w: usize) -> Scratch {
    let mut out = Scratch::for_overwrite(sel.len() * w);
    for (i, &r) in sel.iter().enumerate() {
        out[i * w..(i + 1) * w].copy_from_slice(&x[r * w..(r + 1) * w]);
    }
    out
}

/// The `[n, w]` buffer holding row `i` of `x` at row `sel[i]`, zeros elsewhere.
fn scatter_rows(x: &[f32], sel: &[usize], n: usize, w: usize) -> Scratch {
    let mut out = Scratch::zeros(n * w);
    for (i, &r) in sel.iter().enumerate() {
        out[r * w..(r + 1) * w].copy_from_slice(&x[i * w..(i + 1) * w]);
    }
    out
}

/// How the slots of a pass lie in its buffers: `u` shared prefixes of `p` slots, then `b`
/// rows of `s` slots each, row `r` continuing prefix `owner[r]`. Slot `i` of prefix `k` is
/// buffer row `k·p + i`; slot `j` of row `r` is buffer row `u·p + r·s + j`. Without sharing,
/// `u = p = 0` and `s` is the rows' length.
#[derive(Debug, Clone)]
pub(crate) struct Groups {
    pub(crate) u: usize,
    pub(crate) p: usize,
    pub(crate) b: usize,
    pub(crate) s: usize,
    pub(crate) owner: Vec<usize>,
}

impl Groups {
    /// `b` rows of `t` slots, nothing shared.
    pub(crate) fn plain(b: usize, t: usize) -> Self {
        Groups {
            u: 0,
            p: 0,
            b,
            s: t,
            owner: Vec::new(),
        }
    }
    /// Buffer rows.
    pub(crate) fn n(&self) -> usize {
        self.u * self.p + self.b * self.s
    }
    /// The attention weights' length: `[u, h, p, p]` then `[b, h, s, p + s]`.
    fn probs_len(&self, h: usize) -> usize {
        self.u * h * self.p * self.p + self.b * h * self.s * (self.p + self.s)
    }
    /// The attention sequences: (query rows, the prefix whose slots come first among the
    /// keys, the offset of its weights), prefixes first, then rows.
    fn sequences(&self, hh: usize, h: usize) -> impl Iterator<Item = (usize, usize, Option<usize>, usize)> + '_ {
        let (u, p, s) = (self.u, self.p, self.s);
        let prefixes = (0..u).map(move |k| (k * p, p, None, ((k * h + hh) * p) * p));
        let base = u * h * p * p;
        let rows = (0..self.b).map(move |r| {
            let owner = if p > 0 { Some(self.owner[r]) } else { None };
            (u * p + r * s, s, owner, base + ((r * h + hh) * s) * (p + s))
        });
        prefixes.chain(rows)
    }
}

/// One sequence's queries `[m, dh]` and keys and values `[off + m, dh]` for one head (the
/// first `off` keys from its shared prefix), with their validity.
struct Head {
    q: Vec<f32>,
    k: Vec<f32>,
    v: Vec<f32>,
    qok: Vec<bool>,
    kok: Vec<bool>,
    dh: usize,
}

impl Head {
    fn new(len: usize, dh: usize) -> Self {
        Head {
            q: vec![0.0; len * dh],
            k: vec![0.0; len * dh],
            v: vec![0.0; len * dh],
            qok: vec![false; len],
            kok: vec![false; len],
            dh,
        }
    }

    /// Gathers head `hh` of the `m` query rows from `q0` (with `qvalid`, the queries to
    /// compute) and of the keys: the `off` rows from `k0` (a prefix), then the query rows
    /// (with `valid`); returns `off`.
    #[inline(always)]
    fn load(
        &mut self,
        qkv: &[f32],
        valid: &[bool],
        qvalid: &[bool],
        d: usize,
        hh: usize,
        q0: usize,
        m: usize,
        k0: Option<(usize, usize)>,
    ) -> usize {
        let dh = self.dh;
        let off = k0.map_or(0, |(_, p)| p);
        let col = |row: usize, part: usize| (row * 3 + part) * d + hh * dh;
        for i in 0..m {
            self.q[i * dh..(i + 1) * dh].copy_from_slice(&qkv[col(q0 + i, 0)..][..dh]);
            self.qok[i] = qvalid[q0 + i];
        }
        let keys = k0.map_or(0..0, |(r0, p)| r0..r0 + p).chain(q0..q0 + m);
        for (j, row) in keys.enumerate() {
            self.k[j * dh..(j + 1) * dh].copy_from_slice(&qkv[col(row, 1)..][..dh]);
            self.v[j * dh..(j + 1) * dh].copy_from_slice(&qkv[col(row, 2)..][..dh]);
            self.kok[j] = valid[row];
        }
        off
    }
}

multiversion! {
    /// Causal attention over the valid keys, per sequence and head (see [`Groups`]), for the
    /// queries marked in `qvalid`: writes their outputs `[n, d]` and attention weights (only
    /// those entries are written and read).
    fn attention(
        qkv: &[f32],
        valid: &[bool],
        qvalid: &[bool],
        g: &Groups,
        d: usize,
        h: usize,
        probs: &mut [f32],
        out: &mut [f32],
    ) {
        let dh = d / h;
        let scale = 1.0 / (dh as f32).sqrt();
        let mut hd = Head::new(g.p + g.s.max(g.p), dh);
        let mut o = vec![0f32; dh];
        for hh in 0..h {
            for (q0, m, owner, at) in g.sequences(hh, h) {
                let off = hd.load(qkv, valid, qvalid, d, hh, q0, m, owner.map(|k| (k * g.p, g.p)));
                let (q, k, v, kok) = (&hd.q, &hd.k, &hd.v, &hd.kok);
                let w = off + m;
                for i in 0..m {
                    if !hd.qok[i] {
                        continue;
                    }
                    let qi = &q[i * dh..(i + 1) * dh];
                    let p = &mut probs[at + i * w..][..w];
                    let mut max = f32::NEG_INFINITY;
                    for j in 0..=off + i {
                        if kok[j] {
                            p[j] = dot(qi, &k[j * dh..(j + 1) * dh]) * scale;
                            max = max.max(p[j]);
                        }
                    }
                    let mut total = 0f32;
                    for j in 0..=off + i {
                        if kok[j] {
                            p[j] = (p[j] - max).exp();
                            total += p[j];
                        }
                    }
                    o.fill(0.0);
                    for j in 0..=off + i {
                        if kok[j] {
                            p[j] /= total;
                            let pj = p[j];
                            for (oo, &vv) in o.iter_mut().zip(&v[j * dh..(j + 1) * dh]) {
                                *oo += pj * vv;
                            }
                        }
                    }
                    out[(q0 + i) * d + hh * dh..][..dh].copy_from_slice(&o);
                }
            }
        }
    }
}

multiversion! {
    /// The backward pass of [`attention`]: adds to `dqkv` `[n, 3d]` (a prefix's keys and
    /// values gather the gradients of every row that continues it).
    fn attention_back(
        datt: &[f32],
        qkv: &[f32],
        probs: &[f32],
        valid: &[bool],
        qvalid: &[bool],
        g: &Groups,
        d: usize,
        h: usize,
        dqkv: &mut [f32],
    ) {
        let dh = d / h;
        let scale = 1.0 / (dh as f32).sqrt();
        let len = g.p + g.s.max(g.p);
        let mut hd = Head::new(len, dh);
        let (mut dq, mut dk, mut dv) = (vec![0f32; len * dh], vec![0f32; len * dh], vec![0f32; len * dh]);
        let mut ds = vec![0f32; len];
        for hh in 0..h {
            for (q0, m, owner, at) in g.sequences(hh, h) {
                let k0 = owner.map(|k| (k * g.p, g.p));
                let off = hd.load(qkv, valid, qvalid, d, hh, q0, m, k0);
                let (q, k, v, kok) = (&hd.q, &hd.k, &hd.v, &hd.kok);
                let w = off + m;
                dq.fill(0.0);
                dk.fill(0.0);
                dv.fill(0.0);
                for i in 0..m {
                    if !hd.qok[i] {
                        continue;
                    }
                    let p = &probs[at + i * w..][..w];
                    let go = &datt[(q0 + i) * d + hh * dh..][..dh];
                    let mut total = 0f32;
                    for j in 0..=off + i {
                        if kok[j] {
                            ds[j] = dot(go, &v[j * dh..(j + 1) * dh]);
                            total += p[j] * ds[j];
                            for (gr, &x) in dv[j * dh..(j + 1) * dh].iter_mut().zip(go) {
                                *gr += p[j] * x;
                            }
                        }
                    }
                    let dqi = &mut dq[i * dh..(i + 1) * dh];
                    let qi = &q[i * dh..(i + 1) * dh];
                    for j in 0..=off + i {
                        if kok[j] {
                            let s = p[j] * (ds[j] - total) * scale;
                            let kj = &k[j * dh..(j + 1) * dh];
                            for c in 0..dh {
                                dqi[c] += s * kj[c];
                            }
                            for (gr, &x) in dk[j * dh..(j + 1) * dh].iter_mut().zip(qi) {
                                *gr += s * x;
                            }
                        }
                    }
                }
                let mut scatter = |row: usize, part: usize, src: &[f32]| {
                    for (gr, &x) in dqkv[(row * 3 + part) * d + hh * dh..][..dh].iter_mut().zip(src) {
                        *gr += x;
                    }
                };
                for i in 0..m {
                    scatter(q0 + i, 0, &dq[i * dh..(i + 1) * dh]);
                }
                let keys = k0.map_or(0..0, |(r0, p)| r0..r0 + p).chain(q0..q0 + m);
                for (j, row) in keys.enumerate() {
                    scatter(row, 1, &dk[j * dh..(j + 1) * dh]);
                    scatter(row, 2, &dv[j * dh..(j + 1) * dh]);
                }
            }
        }
    }
}

/// The forward pass over the buffer rows of `g` (left-padded rows, or shared prefixes and
/// the rows that continue them): `tokens` at positions `pos`, where `valid` marks the real
/// tokens; records the tape. Only the rows marked in `want` get logits: every block computes
/// the keys and values of all rows, but the last block's outputs feed nothing but the head,
/// so its queries, projection and MLP, the final LayerNorm and the head run on the wanted
/// rows alone. Token and position ranges are checked by the caller.
pub(crate) fn forward(
    cfg: &TransformerConfig,
    vars: &[&[f32]],
    tokens: &[u32],
    pos: &[u32],
    valid: &[bool],
    want: &[bool],
    g: Groups,
) -> Tape {
    let p = Params { cfg, vars };
    let (d, f, h, v) = (cfg.d_model, cfg.d_ff, cfg.n_heads, cfg.vocab);
    let n = tokens.len();
    debug_assert_eq!(n, g.n());
    debug_assert_eq!(want.len(), n);
    let live: Option<Vec<usize>> = if want.iter().all(|&w| w) {
        None
    } else {
        Some((0..n).filter(|&i| want[i]).collect())
    };
    let mut logit_at = vec![u32::MAX; n];
    for (k, i) in (0..n).filter(|&i| want[i]).enumerate() {
        logit_at[i] = k as u32;
    }
    let qok_last: Vec<bool> = valid.iter().zip(want).map(|(&a, &w)| a && w).collect();
    let mut x = Scratch::for_overwrite(n * d);
    let (tok_emb, pos_emb) = (p.var(0), p.var(1));
    for i in 0..n {
        let xr = &mut x[i * d..(i + 1) * d];
        let te = &tok_emb[tokens[i] as usize * d..][..d];
        let pe = &pos_emb[pos[i] as usize * d..][..d];
        for k in 0..d {
            xr[k] = te[k] + pe[k];
        }
    }
    let mut blocks = Vec::with_capacity(cfg.n_layers);
    let mut tmp = Scratch::for_overwrite(n * d);
    for l in 0..cfg.n_layers {
        // The rows this block's outputs are computed for.
        let sel = if l + 1 == cfg.n_layers { live.as_deref() } else { None };
        let rows = sel.map_or(n, <[usize]>::len);
        let mut bt = BlockTape {
            xhat1: Scratch::for_overwrite(n * d),
            rstd1: Scratch::for_overwrite(n),
            a: Scratch::for_overwrite(n * d),
            qkv: Scratch::for_overwrite(n * 3 * d),
            probs: Scratch::zeros(g.probs_len(h)),
            att: Scratch::zeros(n * d),
            xhat2: Scratch::for_overwrite(rows * d),
            rstd2: Scratch::for_overwrite(rows),
            m: Scratch::for_overwrite(rows * d),
            hpre: Scratch::for_overwrite(rows * f),
            g: Scratch::for_overwrite(rows * f),
        };
        layer_norm(&x, p.blk(l, 0), p.blk(l, 1), d, &mut bt.a, &mut bt.xhat1, &mut bt.rstd1);
        linear(&bt.a, p.blk(l, 2), p.blk(l, 3), n, d, 3 * d, &mut bt.qkv);
        let qvalid = if l + 1 == cfg.n_layers { &qok_last } else { valid };
        attention(&bt.qkv, valid, qvalid, &g, d, h, &mut bt.probs, &mut bt.att);
        if let Some(sel) = sel {
            bt.att = gather_rows(&bt.att, sel, d);
            x = gather_rows(&x, sel, d);
        }
        let tmp = &mut tmp[..rows * d];
        linear(&bt.att, p.blk(l, 4), p.blk(l, 5), rows, d, d, tmp);
        add(&mut x, tmp);
        layer_norm(&x, p.blk(l, 6), p.blk(l, 7), d, &mut bt.m, &mut bt.xhat2, &mut bt.rstd2);
        linear(&bt.m, p.blk(l, 8), p.blk(l, 9), rows, d, f, &mut bt.hpre);
        gelu_slice(&bt.hpre, &mut bt.g);
        linear(&bt.g, p.blk(l, 10), p.blk(l, 11), rows, f, d, tmp);
        add(&mut x, tmp);
        blocks.push(bt);
    }
    let rows = x.len() / d;
    let (mut xf, mut xhat_f, mut rstd_f) = (
        Scratch::for_overwrite(rows * d),
        Scratch::for_overwrite(rows * d),
        Scratch::for_overwrite(rows),
    );
    layer_norm(&x, p.last(0), p.last(1), d, &mut xf, &mut xhat_f, &mut rstd_f);
    let mut logits = Scratch::for_overwrite(rows * v);
    linear(&xf, p.last(2), p.last(3), rows, d, v, &mut logits);
    Tape {
        g,
        tokens: tokens.to_vec(),
        pos: pos.to_vec(),
        valid: valid.to_vec(),
        blocks,
        live,
        qok_last,
        logit_at,
        xhat_f,
        rstd_f,
        xf,
        logits,
    }
}

/// The backward pass: adds the gradient of `Σ dlogits · logits` to `grads` (flat, in
/// variable order); `dlogits` has the rows of the tape's logits.
pub(crate) fn backward(
    cfg: &TransformerConfig,
    lay: &Layout,
    vars: &[&[f32]],
    tape: &Tape,
    dlogits: &[f32],
    grads: &mut [f32],
) {
    let p = Params { cfg, vars };
    let mut gr = Grads {
        flat: grads,
        lay,
        layers: cfg.n_layers,
    };
    let (d, f, h, v) = (cfg.d_model, cfg.d_ff, cfg.n_heads, cfg.vocab);
    let n = tape.g.n();
    let top = tape.live.as_ref().map_or(n, Vec::len);
    debug_assert_eq!(dlogits.len(), top * v);
    // The head and the final LayerNorm, on the rows with logits.
    let mut dxf = Scratch::for_overwrite(top * d);
    {
        let (dw, db) = gr.last(2);
        linear_back(dlogits, &tape.xf, p.last(2), top, d, v, Some((&mut dxf, false)), dw, db);
    }
    let mut dx = Scratch::zeros(top * d);
    {
        let (dw, db) = gr.last(0);
        layer_norm_back(&dxf, &tape.xhat_f, &tape.rstd_f, p.last(0), d, &mut dx, dw, db);
    }
    let mut dg = Scratch::for_overwrite(n * f);
    let mut dm = Scratch::for_overwrite(n * d);
    let mut datt = Scratch::for_overwrite(n * d);
    let mut dqkv = Scratch::zeros(n * 3 * d);
    let mut da = Scratch::for_overwrite(n * d);
    for l in (0..cfg.n_layers).rev() {
        let bt = &tape.blocks[l];
        let last = l + 1 == cfg.n_layers;
        let rows = if last { top } else { n };
        let (dg, dm) = (&mut dg[..rows * f], &mut dm[..rows * d]);
        // The MLP: x += gelu(m·W_fcᵀ + b_fc)·W_outᵀ + b_out.
        let (dw, db) = gr.blk(l, 10);
        linear_back(&dx, &bt.g, p.blk(l, 10), rows, f, d, Some((&mut *dg, false)), dw, db);
        gelu_grad_inplace(dg, &bt.hpre);
        let (dw, db) = gr.blk(l, 8);
        linear_back(dg, &bt.m, p.blk(l, 8), rows, d, f, Some((&mut *dm, false)), dw, db);
        let (dw, db) = gr.blk(l, 6);
        layer_norm_back(dm, &bt.xhat2, &bt.rstd2, p.blk(l, 6), d, &mut dx, dw, db);
        // Attention: x += attn(LN(x))·W_projᵀ + b_proj.
        let (dw, db) = gr.blk(l, 4);
        linear_back(
            &dx,
            &bt.att,
            p.blk(l, 4),
            rows,
            d,
            d,
            Some((&mut datt[..rows * d], false)),
            dw,
            db,
        );
        let mut qvalid = &tape.valid[..];
        if last {
            qvalid = &tape.qok_last;
            if let Some(sel) = &tape.live {
                // Back to every buffer row: the rest reach the loss only as keys and values.
                datt = scatter_rows(&datt[..rows * d], sel, n, d);
                dx = scatter_rows(&dx, sel, n, d);
            }
        }
        dqkv.fill(0.0);
        attention_back(&datt, &bt.qkv, &bt.probs, &tape.valid, qvalid, &tape.g, d, h, &mut dqkv);
        let (dw, db) = gr.blk(l, 2);
        linear_back(&dqkv, &bt.a, p.blk(l, 2), n, d, 3 * d, Some((&mut da, false)), dw, db);
        let (dw, db) = gr.blk(l, 0);
        layer_norm_back(&da, &bt.xhat1, &bt.rstd1, p.blk(l, 0), d, &mut dx, dw, db);
    }
    // The embeddings.
    for i in 0..n {
        let g = &dx[i * d..(i + 1) * d];
        add(&mut gr.var(0)[tape.tokens[i] as usize * d..][..d], g);
        add(&mut gr.var(1)[tape.pos[i] as usize * d..][..d], g);
    }
}

fn add(to: &mut [f32], from: &[f32]) {
    to.iter_mut().zip(from).for_each(|(a, b)| *a += b);
}

/// The keys and values of a batch being sampled: per block `[b, cap, d]` each, with `cap`
/// the model's context.
#[derive(Debug, Clone)]
pub(crate) struct HostCache {
    k: Vec<Scratch>,
    v: Vec<Scratch>,
    /// 1 on real tokens, `[b, cap]`.
    valid: Vec<bool>,
    cap: usize,
}

impl HostCache {
    /// The rows `rows` (indices into the chunks `src` of `chunk` rows each), laid out again
    /// as chunks of `chunk` rows: row i of the result is row `rows[i]` of the source.
    pub(crate) fn gather(src: &[HostCache], chunk: usize, rows: &[usize]) -> Vec<HostCache> {
        let cap = src[0].cap;
        let layers = src[0].k.len();
        let d = src[0].k[0].len() / src[0].valid.len();
        let w = cap * d;
        rows.chunks(chunk)
            .map(|part| {
                let b = part.len();
                let mut k: Vec<Scratch> = (0..layers).map(|_| Scratch::for_overwrite(b * w)).collect();
                let mut v: Vec<Scratch> = (0..layers).map(|_| Scratch::for_overwrite(b * w)).collect();
                let mut valid = vec![false; b * cap];
                for (i, &r) in part.iter().enumerate() {
                    let (s, rr) = (&src[r / chunk], r % chunk);
                    for l in 0..layers {
                        k[l][i * w..(i + 1) * w].copy_from_slice(&s.k[l][rr * w..(rr + 1) * w]);
                        v[l][i * w..(i + 1) * w].copy_from_slice(&s.v[l][rr * w..(rr + 1) * w]);
                    }
                    valid[i * cap..(i + 1) * cap].copy_from_slice(&s.valid[rr * cap..(rr + 1) * cap]);
                }
                HostCache { k, v, valid, cap }
            })
            .collect()
    }

    /// The cache of a prefill `tape` (`[b, t]` slots) for a model of `cfg`.
    pub(crate) fn from_tape(cfg: &TransformerConfig, tape: &Tape) -> Self {
        let (b, t, d, cap) = (tape.g.b, tape.g.s, cfg.d_model, cfg.context);
        debug_assert_eq!(tape.g.u, 0, "a prefill shares no prefix");
        let mut k = Vec::with_capacity(cfg.n_layers);
        let mut v = Vec::with_capacity(cfg.n_layers);
        for bt in &tape.blocks {
            let (mut kl, mut vl) = (Scratch::zeros(b * cap * d), Scratch::zeros(b * cap * d));
            for r in 0..b {
                for j in 0..t {
                    let src = &bt.qkv[(r * t + j) * 3 * d..][..3 * d];
                    kl[(r * cap + j) * d..][..d].copy_from_slice(&src[d..2 * d]);
                    vl[(r * cap + j) * d..][..d].copy_from_slice(&src[2 * d..]);
                }
            }
            k.push(kl);
            v.push(vl);
        }
        let mut valid = vec![false; b * cap];
        for r in 0..b {
            valid[r * cap..r * cap + t].copy_from_slice(&tape.valid[r * t..(r + 1) * t]);
        }
        HostCache { k, v, valid, cap }
    }
}

/// One decode step: the tokens `next` `[b]` at positions `pos` go into slot `len` of the
/// cache (which must have room); returns the logits `[b, vocab]`.
pub(crate) fn decode(
    cfg: &TransformerConfig,
    vars: &[&[f32]],
    cache: &mut HostCache,
    next: &[u32],
    pos: &[u32],
    len: usize,
) -> Vec<f32> {
    let p = Params { cfg, vars };
    let (d, f, h, v) = (cfg.d_model, cfg.d_ff, cfg.n_heads, cfg.vocab);
    let (b, cap) = (next.len(), cache.cap);
    let dh = d / h;
    let scale = 1.0 / (dh as f32).sqrt();
    let mut x = Scratch::zeros(b * d);
    for r in 0..b {
        let te = &p.var(0)[next[r] as usize * d..][..d];
        let pe = &p.var(1)[pos[r] as usize * d..][..d];
        for k in 0..d {
            x[r * d + k] = te[k] + pe[k];
        }
        cache.valid[r * cap + len] = true;
    }
    let (mut a, mut xhat, mut rstd) = (Scratch::zeros(b * d), Scratch::zeros(b * d), Scratch::zeros(b));
    let mut qkv = Scratch::zeros(b * 3 * d);
    let mut att = Scratch::zeros(b * d);
    let mut tmp = Scratch::zeros(b * d);
    let (mut hid, mut act) = (Scratch::zeros(b * f), Scratch::zeros(b * f));
    let mut s = Scratch::zeros(len + 1);
    for l in 0..cfg.n_layers {
        layer_norm(&x, p.blk(l, 0), p.blk(l, 1), d, &mut a, &mut xhat, &mut rstd);
        linear(&a, p.blk(l, 2), p.blk(l, 3), b, d, 3 * d, &mut qkv);
        let (kc, vc) = (&mut cache.k[l], &mut cache.v[l]);
        for r in 0..b {
            let src = &qkv[r * 3 * d..][..3 * d];
            kc[(r * cap + len) * d..][..d].copy_from_slice(&src[d..2 * d]);
            vc[(r * cap + len) * d..][..d].copy_from_slice(&src[2 * d..]);
        }
        att.fill(0.0);
        for r in 0..b {
            for hh in 0..h {
                let q = &qkv[r * 3 * d + hh * dh..][..dh];
                let mut max = f32::NEG_INFINITY;
                for (j, sj) in s.iter_mut().enumerate() {
                    if cache.valid[r * cap + j] {
                        *sj = dot(q, &kc[(r * cap + j) * d + hh * dh..][..dh]) * scale;
                        max = max.max(*sj);
                    }
                }
                let mut sum = 0f32;
                for (j, sj) in s.iter_mut().enumerate() {
                    if cache.valid[r * cap + j] {
                        *sj = (*sj - max).exp();
                        sum += *sj;
                    }
                }
                let o = &mut att[r * d + hh * dh..][..dh];
                for (j, &sj) in s.iter().enumerate() {
                    if cache.valid[r * cap + j] {
                        let w = sj / sum;
                        let vv = &vc[(r * cap + j) * d + hh * dh..][..dh];
                        for (oo, &x) in o.iter_mut().zip(vv) {
                            *oo += w * x;
                        }
                    }
                }
            }
        }
        linear(&att, p.blk(l, 4), p.blk(l, 5), b, d, d, &mut tmp);
        add(&mut x, &tmp);
        layer_norm(&x, p.blk(l, 6), p.blk(l, 7), d, &mut a, &mut xhat, &mut rstd);
        linear(&a, p.blk(l, 8), p.blk(l, 9), b, d, f, &mut hid);
        gelu_slice(&hid, &mut act);
        linear(&act, p.blk(l, 10), p.blk(l, 11), b, f, d, &mut tmp);
        add(&mut x, &tmp);
    }
    layer_norm(&x, p.last(0), p.last(1), d, &mut a, &mut xhat, &mut rstd);
    let mut logits = vec![0f32; b * v];
    linear(&a, p.last(2), p.last(3), b, d, v, &mut logits);
    logits
}
