//! A small decoder-only transformer as a candle graph on any [`Device`]: token and learned
//! position embeddings, pre-LayerNorm blocks of causal multi-head self-attention and a GELU
//! MLP, a final LayerNorm and a linear head over the vocabulary (GPT-2's layout). Every
//! parameter is a [`Var`] on the device, initialised from a seeded stream; the gradients come
//! from candle's autodiff, so the same code trains on the CPU and on a GPU.
//!
//! Batches are left-padded: a row's real tokens sit at its end, a key mask marks them, and
//! positions count from a row's first real token, so prompts of different lengths share one
//! batch. [`Transformer::forward`] scores whole sequences (training); [`KvCache`] with
//! [`Transformer::prefill`] and [`Transformer::decode`] samples token by token without
//! recomputing the past (a KV cache).
//!
//! ```
//! use taper_tensor::transformer::{Transformer, TransformerConfig};
//! use candle_core::Device;
//! let cfg = TransformerConfig { vocab: 7, context: 8, d_model: 16, n_heads: 2, n_layers: 1, d_ff: 32 };
//! let net = Transformer::new(cfg, 0, &Device::Cpu)?;
//! // Two rows, the first left-padded by one token.
//! let logits = net.forward_host(&[0, 3, 4, 5, 3, 4, 5, 6], &[0.0, 1.0, 1.0, 1.0, 1.0, 1.0, 1.0, 1.0], 2)?;
//! assert_eq!(logits.dims(), &[2, 4, 7]);
//! # Ok::<(), taper_tensor::TensorError>(())
//! ```

use crate::error::{Result, TensorError};
use crate::rng::{stream, Purpose};
use crate::scratch::Scratch;
use crate::transformer_host::{self as hostk, Groups, HostCache, Layout, Tape};
use candle_core::{DType, Device, Storage, Tensor, Var, D};
use rayon::prelude::*;
use serde::{Deserialize, Serialize};

/// The model's shape.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
pub struct TransformerConfig {
    /// Tokens in the vocabulary.
    pub vocab: usize,
    /// The longest sequence (prompt and completion).
    pub context: usize,
    /// The residual width.
    pub d_model: usize,
    /// Attention heads (dividing `d_model`).
    pub n_heads: usize,
    /// Blocks.
    pub n_layers: usize,
    /// The MLP's hidden width.
    pub d_ff: usize,
}

impl TransformerConfig {
    /// Checks the shape; an error naming what is wrong.
    pub fn validate(&self) -> Result<()> {
        let bad = |reason: String| {
            Err(TensorError::Invalid {
                name: "transformer",
                reason,
            })
        };
        if self.vocab < 2 || self.context == 0 || self.d_model == 0 || self.n_layers == 0 || self.d_ff == 0 {
            return bad(format!("every size must be positive (vocab at least 2): {self:?}"));
        }
        if self.n_heads == 0 || !self.d_model.is_multiple_of(self.n_heads) {
            return bad(format!("{} heads do not divide d_model {}", self.n_heads, self.d_model));
        }
        if self.context > 4096 || self.d_model > 4096 || self.d_ff > 16384 || self.n_layers > 64 {
            return bad(format!("too large for this model: {self:?}"));
        }
        Ok(())
    }
}

/// The decoder: see the module doc.
#[derive(Debug, Clone)]
pub struct Transformer {
    cfg: TransformerConfig,
    names: Vec<String>,
    vars: Vec<Var>,
    device: Device,
    layout: Layout,
    host: bool,
}

const LN_EPS: f64 = 1e-5;

/// A block's parameters, in the order they are stored.
const BLOCK: [&str; 12] = [
    "ln1.w",
    "ln1.b",
    "attn.qkv.w",
    "attn.qkv.b",
    "attn.proj.w",
    "attn.proj.b",
    "ln2.w",
    "ln2.b",
    "mlp.fc.w",
    "mlp.fc.b",
    "mlp.out.w",
    "mlp.out.b",
];

/// LayerNorm over the last dimension, from differentiable ops.
fn layer_norm(x: &Tensor, w: &Tensor, b: &Tensor) -> Result<Tensor> {
    let mean = x.mean_keepdim(D::Minus1)?;
    let xc = x.broadcast_sub(&mean)?;
    let var = xc.sqr()?.mean_keepdim(D::Minus1)?;
    Ok(xc
        .broadcast_div(&(var + LN_EPS)?.sqrt()?)?
        .broadcast_mul(w)?
        .broadcast_add(b)?)
}

/// `x · wᵀ + b` for `x` `[.., in]`, `w` `[out, in]`.
fn linear(x: &Tensor, w: &Tensor, b: &Tensor) -> Result<Tensor> {
    let dims = x.dims().to_vec();
    let (n_in, n_out) = (dims[dims.len() - 1], w.dims()[0]);
    let rows = x.elem_count() / n_in;
    let y = x.reshape((rows, n_in))?.matmul(&w.t()?)?.broadcast_add(b)?;
    let mut out = dims;
    *out.last_mut().expect("at least one dim") = n_out;
    Ok(y.reshape(out)?)
}

/// Softmax over the last dimension, from differentiable ops.
fn softmax(x: &Tensor) -> Result<Tensor> {
    let e = x.broadcast_sub(&x.max_keepdim(D::Minus1)?)?.exp()?;
    Ok(e.broadcast_div(&e.sum_keepdim(D::Minus1)?)?)
}

/// Log-softmax over the last dimension, from differentiable ops.
pub fn log_softmax(x: &Tensor) -> Result<Tensor> {
    let s = x.broadcast_sub(&x.max_keepdim(D::Minus1)?)?;
    Ok(s.broadcast_sub(&s.exp()?.sum_keepdim(D::Minus1)?.log()?)?)
}

/// Rows per task of the host kernels' scoring pass: a batch runs as parts of at least this
/// many rows (whole groups of rows that share a prompt) in parallel, and the parts' gradients
/// are summed in order, so results do not depend on the number of threads.
pub const HOST_CHUNK: usize = 32;

/// Rows per task when sampling (prefill and decode): a decode step has one slot per row, so
/// its tasks need more rows than training's to pay for the fork.
pub const SAMPLE_CHUNK: usize = 64;

/// The `[start, end)` rows of each chunk of `size` rows of `b` rows.
fn chunks(b: usize, size: usize) -> Vec<(usize, usize)> {
    (0..b.div_ceil(size))
        .map(|k| (k * size, ((k + 1) * size).min(b)))
        .collect()
}

/// Rows scored together by the host kernels: the rows (batch indices) of some shared
/// prefixes, each prefix given by its first row, and each row's prefix (an index into
/// `prefixes`).
#[derive(Debug, Clone)]
struct SharePart {
    prefixes: Vec<usize>,
    rows: Vec<usize>,
    owner: Vec<usize>,
}

/// Groups the rows of a `[b, t]` batch by their first `pl` slots (tokens and validity) and
/// deals the groups, in order of first appearance, into parts of at least [`HOST_CHUNK`]
/// rows (the last may hold fewer).
fn share_prefixes(tokens: &[u32], valid: &[bool], b: usize, t: usize, pl: usize) -> Vec<SharePart> {
    let mut index: std::collections::HashMap<(&[u32], &[bool]), usize> = std::collections::HashMap::new();
    let mut groups: Vec<Vec<usize>> = Vec::new();
    for r in 0..b {
        let key = (&tokens[r * t..r * t + pl], &valid[r * t..r * t + pl]);
        let k = *index.entry(key).or_insert_with(|| {
            groups.push(Vec::new());
            groups.len() - 1
        });
        groups[k].push(r);
    }
    let mut parts = Vec::new();
    let mut cur = SharePart {
        prefixes: Vec::new(),
        rows: Vec::new(),
        owner: Vec::new(),
    };
    for rows in groups {
        cur.owner.extend(std::iter::repeat_n(cur.prefixes.len(), rows.len()));
        cur.prefixes.push(rows[0]);
        cur.rows.extend(rows);
        if cur.rows.len() >= HOST_CHUNK {
            parts.push(std::mem::replace(
                &mut cur,
                SharePart {
                    prefixes: Vec::new(),
                    rows: Vec::new(),
                    owner: Vec::new(),
                },
            ));
        }
    }
    if !cur.rows.is_empty() {
        parts.push(cur);
    }
    parts
}

/// The buffer row of slot `slot` of a part's row `lr`: in its prefix below `g.p`, else in
/// the row's own slots.
fn slot_row(g: &Groups, lr: usize, slot: usize) -> usize {
    if slot < g.p {
        g.owner[lr] * g.p + slot
    } else {
        g.u * g.p + lr * g.s + (slot - g.p)
    }
}

/// Positions of a left-padded `[b, t]` mask: each row counts from its first real token
/// (padding gets position 0).
fn positions(mask: &[f32], t: usize) -> Vec<u32> {
    let mut pos = Vec::with_capacity(mask.len());
    for row in mask.chunks(t) {
        let mut p = 0u32;
        for &m in row {
            pos.push(if m > 0.0 { p } else { 0 });
            if m > 0.0 {
                p += 1;
            }
        }
    }
    pos
}

/// The past of a batch being sampled: per layer the keys and values `[b, heads, t, d_head]`,
/// the key mask `[b, t]` (1 on real tokens), and each row's next position.
#[derive(Debug, Clone)]
pub struct KvCache {
    store: CacheStore,
    mask: Vec<f32>,
    next_pos: Vec<u32>,
    rows: usize,
    len: usize,
}

/// The keys and values: device tensors `[b, heads, t, d_head]` per block for the candle
/// graph, host buffers for the host kernels.
#[derive(Debug, Clone)]
enum CacheStore {
    Graph { k: Vec<Tensor>, v: Vec<Tensor> },
    Host(Vec<HostCache>),
}

impl KvCache {
    /// Tokens held per row.
    pub fn len(&self) -> usize {
        self.len
    }
    /// Whether nothing is held.
    pub fn is_empty(&self) -> bool {
        self.len == 0
    }
    /// Rows in the batch.
    pub fn rows(&self) -> usize {
        self.rows
    }

    /// A cache whose row i is row `rows[i]` of this one: one prompt's prefill shared by the
    /// completions sampled from it. An error for a row out of range.
    pub fn gather_rows(&self, rows: &[usize]) -> Result<KvCache> {
        if let Some(&bad) = rows.iter().find(|&&r| r >= self.rows) {
            return Err(TensorError::Invalid {
                name: "rows",
                reason: format!("row {bad} of a cache of {} rows", self.rows),
            });
        }
        let store = match &self.store {
            CacheStore::Host(h) => CacheStore::Host(HostCache::gather(h, SAMPLE_CHUNK, rows)),
            CacheStore::Graph { k, v } => {
                let idx: Vec<u32> = rows.iter().map(|&r| r as u32).collect();
                let idx = Tensor::from_vec(idx, rows.len(), k[0].device())?;
                let pick = |ts: &[Tensor]| -> Result<Vec<Tensor>> {
                    ts.iter().map(|t| Ok(t.index_select(&idx, 0)?)).collect()
                };
                CacheStore::Graph {
                    k: pick(k)?,
                    v: pick(v)?,
                }
            }
        };
        let l = self.len;
        Ok(KvCache {
            store,
            mask: rows
                .iter()
                .flat_map(|&r| self.mask[r * l..(r + 1) * l].iter().copied())
                .collect(),
            next_pos: rows.iter().map(|&r| self.next_pos[r]).collect(),
            rows: rows.len(),
            len: l,
        })
    }
}

impl Transformer {
    /// A model of shape `cfg` on `device`, initialised from `seed` as GPT-2 is: weights
    /// N(0, 0.02²) (the residual projections scaled by 1/√(2·layers)), biases 0, LayerNorm
    /// gains 1.
    pub fn new(cfg: TransformerConfig, seed: u64, device: &Device) -> Result<Self> {
        cfg.validate()?;
        let mut rng = stream(seed, Purpose::Init, 7);
        let (d, f, v) = (cfg.d_model, cfg.d_ff, cfg.vocab);
        let resid = 0.02 / (2.0 * cfg.n_layers as f32).sqrt();
        let mut shapes: Vec<(String, Vec<usize>, f32)> = vec![
            ("tok_emb".into(), vec![v, d], 0.02),
            ("pos_emb".into(), vec![cfg.context, d], 0.01),
        ];
        for l in 0..cfg.n_layers {
            for (k, name) in BLOCK.iter().enumerate() {
                let (shape, scale) = match k {
                    0 | 6 => (vec![d], 1.0),     // LayerNorm gains
                    2 => (vec![3 * d, d], 0.02), // qkv
                    4 => (vec![d, d], resid),    // attention projection
                    8 => (vec![f, d], 0.02),     // MLP in
                    10 => (vec![d, f], resid),   // MLP out
                    3 => (vec![3 * d], 0.0),
                    9 => (vec![f], 0.0),
                    _ => (vec![d], 0.0), // the other biases
                };
                shapes.push((format!("h.{l}.{name}"), shape, scale));
            }
        }
        shapes.extend([
            ("ln_f.w".into(), vec![d], 1.0),
            ("ln_f.b".into(), vec![d], 0.0),
            ("head.w".into(), vec![v, d], 0.02),
            ("head.b".into(), vec![v], 0.0),
        ]);
        let mut names = Vec::with_capacity(shapes.len());
        let mut vars = Vec::with_capacity(shapes.len());
        for (name, shape, scale) in shapes {
            let n: usize = shape.iter().product();
            let data = if name.ends_with(".w") && shape.len() == 1 {
                vec![1f32; n] // LayerNorm gains
            } else if shape.len() == 1 {
                vec![0f32; n]
            } else {
                crate::init::normal(&mut rng, n, 0.0, scale)
            };
            vars.push(Var::from_tensor(&Tensor::from_vec(data, shape, device)?)?);
            names.push(name);
        }
        let layout = Layout::new(&vars.iter().map(|v| v.elem_count()).collect::<Vec<_>>());
        Ok(Transformer {
            cfg,
            names,
            vars,
            device: device.clone(),
            layout,
            host: device.is_cpu(),
        })
    }

    /// Whether the host kernels run this model (the default on the CPU) rather than the
    /// candle graph.
    pub fn host_kernels(&self) -> bool {
        self.host
    }

    /// Chooses the host kernels (`true`, the CPU only) or the candle graph (`false`, any
    /// device) for sampling and scoring. Both compute the same function; the host kernels are
    /// faster on the CPU. [`Transformer::forward_host`] is always the graph.
    pub fn set_host_kernels(&mut self, on: bool) -> Result<()> {
        if on && !self.device.is_cpu() {
            return Err(TensorError::Invalid {
                name: "transformer",
                reason: "the host kernels run on the CPU only; use the candle graph on a GPU".into(),
            });
        }
        self.host = on;
        Ok(())
    }

    /// Runs `f` on the parameters' host storage, borrowed (no copy), in variable order; an
    /// error off the CPU.
    fn with_params<R>(&self, f: impl FnOnce(&[&[f32]]) -> R) -> Result<R> {
        let held: Vec<_> = self.vars.iter().map(|v| v.as_tensor().storage_and_layout()).collect();
        let mut slices = Vec::with_capacity(held.len());
        for (storage, layout) in &held {
            match &**storage {
                Storage::Cpu(cpu) if layout.is_contiguous() => {
                    let o = layout.start_offset();
                    slices.push(&cpu.as_slice::<f32>()?[o..o + layout.shape().elem_count()]);
                }
                _ => {
                    return Err(TensorError::Invalid {
                        name: "transformer",
                        reason: "the host kernels need the parameters on the CPU".into(),
                    })
                }
            }
        }
        Ok(f(&slices))
    }

    /// The shape.
    pub fn config(&self) -> &TransformerConfig {
        &self.cfg
    }
    /// The device.
    pub fn device(&self) -> &Device {
        &self.device
    }
    /// The trainable parameters with their names, in a fixed order.
    pub fn named_vars(&self) -> impl Iterator<Item = (&str, &Var)> {
        self.names.iter().map(String::as_str).zip(&self.vars)
    }
    /// The trainable parameters, in the order of [`Transformer::named_vars`].
    pub fn vars(&self) -> &[Var] {
        &self.vars
    }
    /// The number of parameters.
    pub fn num_params(&self) -> usize {
        self.vars.iter().map(|v| v.elem_count()).sum()
    }

    fn p(&self, name: &str) -> &Tensor {
        let i = self
            .names
            .iter()
            .position(|n| n == name)
            .expect("a parameter name of this model");
        self.vars[i].as_tensor()
    }

    /// The parameters as named host tensors (for safetensors checkpoints).
    pub fn to_tensors(&self, prefix: &str) -> Result<Vec<(String, Tensor)>> {
        self.named_vars()
            .map(|(n, v)| Ok((format!("{prefix}.{n}"), v.as_tensor().to_device(&Device::Cpu)?.copy()?)))
            .collect()
    }

    /// Loads tensors written by [`Transformer::to_tensors`] with the same prefix; an error for
    /// a missing tensor or a shape that differs.
    pub fn load_tensors(&self, prefix: &str, t: &std::collections::HashMap<String, Tensor>) -> Result<()> {
        for (n, v) in self.named_vars() {
            let key = format!("{prefix}.{n}");
            let src = t.get(&key).ok_or_else(|| TensorError::Invalid {
                name: "tensors",
                reason: format!("missing tensor `{key}`"),
            })?;
            if src.dims() != v.dims() {
                return Err(TensorError::Invalid {
                    name: "tensors",
                    reason: format!("tensor `{key}` has shape {:?}, expected {:?}", src.dims(), v.dims()),
                });
            }
            v.set(&src.to_dtype(DType::F32)?.to_device(&self.device)?.copy()?)?;
        }
        Ok(())
    }

    /// An independent copy (new variables with the same values), e.g. a frozen reference.
    pub fn deep_clone(&self) -> Result<Self> {
        let vars = self
            .vars
            .iter()
            .map(|v| Ok(Var::from_tensor(&v.as_tensor().copy()?)?))
            .collect::<Result<Vec<_>>>()?;
        Ok(Transformer {
            cfg: self.cfg,
            names: self.names.clone(),
            vars,
            device: self.device.clone(),
            layout: self.layout.clone(),
            host: self.host,
        })
    }

    /// Token and position embeddings of `tokens` `[b, t]` at `pos` `[b, t]`.
    fn embed(&self, tokens: &[u32], pos: &[u32], b: usize, t: usize) -> Result<Tensor> {
        let d = self.cfg.d_model;
        let ti = Tensor::from_slice(tokens, b * t, &self.device)?;
        let pi = Tensor::from_slice(pos, b * t, &self.device)?;
        let x = (self.p("tok_emb").index_select(&ti, 0)? + self.p("pos_emb").index_select(&pi, 0)?)?;
        Ok(x.reshape((b, t, d))?)
    }

    /// One block over `x` `[b, t, d]` whose queries attend to `past` keys and values (plus
    /// their own) under the additive mask `[b, 1, t, t_keys]`; returns the output and the
    /// block's keys and values `[b, h, t_keys, d_head]`.
    fn block(
        &self,
        l: usize,
        x: &Tensor,
        past: Option<(&Tensor, &Tensor)>,
        mask: &Tensor,
    ) -> Result<(Tensor, Tensor, Tensor)> {
        let (b, t, d) = x.dims3()?;
        let (h, dh) = (self.cfg.n_heads, self.cfg.d_model / self.cfg.n_heads);
        // Block l's parameters follow the two embeddings, in `BLOCK`'s order.
        let p = |s: &str| {
            let k = BLOCK.iter().position(|b| *b == s).expect("a block parameter");
            self.vars[2 + BLOCK.len() * l + k].as_tensor()
        };
        let a = layer_norm(x, p("ln1.w"), p("ln1.b"))?;
        let qkv = linear(&a, p("attn.qkv.w"), p("attn.qkv.b"))?;
        let heads = |i: usize| -> Result<Tensor> {
            Ok(qkv
                .narrow(D::Minus1, i * d, d)?
                .reshape((b, t, h, dh))?
                .transpose(1, 2)?
                .contiguous()?)
        };
        let (q, mut k, mut v) = (heads(0)?, heads(1)?, heads(2)?);
        if let Some((pk, pv)) = past {
            k = Tensor::cat(&[pk, &k], 2)?;
            v = Tensor::cat(&[pv, &v], 2)?;
        }
        let scores = (q.matmul(&k.t()?.contiguous()?)? / (dh as f64).sqrt())?.broadcast_add(mask)?;
        let att = softmax(&scores)?.matmul(&v)?; // [b, h, t, dh]
        let att = att.transpose(1, 2)?.contiguous()?.reshape((b, t, d))?;
        let x = (x + linear(&att, p("attn.proj.w"), p("attn.proj.b"))?)?;
        let m = layer_norm(&x, p("ln2.w"), p("ln2.b"))?;
        let m = linear(
            &linear(&m, p("mlp.fc.w"), p("mlp.fc.b"))?.gelu()?,
            p("mlp.out.w"),
            p("mlp.out.b"),
        )?;
        Ok(((x + m)?, k, v))
    }

    fn head(&self, x: &Tensor) -> Result<Tensor> {
        let x = layer_norm(x, self.p("ln_f.w"), self.p("ln_f.b"))?;
        linear(&x, self.p("head.w"), self.p("head.b"))
    }

    /// The additive attention mask `[b, 1, tq, tk]` for queries at the last `tq` of `tk` key
    /// slots: a query sees the real keys at or before its own slot.
    fn attn_mask(&self, key_mask: &[f32], b: usize, tq: usize, tk: usize) -> Result<Tensor> {
        let mut m = vec![0f32; b * tq * tk];
        for r in 0..b {
            for i in 0..tq {
                let slot = tk - tq + i;
                for j in 0..tk {
                    if j > slot || key_mask[r * tk + j] <= 0.0 {
                        m[(r * tq + i) * tk + j] = -1e9;
                    }
                }
            }
        }
        Ok(Tensor::from_vec(m, (b, 1, tq, tk), &self.device)?)
    }

    /// Checks a left-padded batch `tokens` `[b, t]` with `mask`: returns `t` and the positions.
    fn check(&self, tokens: &[u32], mask: &[f32], b: usize) -> Result<(usize, Vec<u32>)> {
        if b == 0 || !tokens.len().is_multiple_of(b) || mask.len() != tokens.len() || tokens.is_empty() {
            return Err(TensorError::Invalid {
                name: "tokens",
                reason: format!(
                    "{} tokens and {} mask values are not {b} rows",
                    tokens.len(),
                    mask.len()
                ),
            });
        }
        let t = tokens.len() / b;
        let pos = positions(mask, t);
        self.check_ids(tokens, &pos)?;
        Ok((t, pos))
    }

    /// Checks tokens against the vocabulary and positions against the context.
    fn check_ids(&self, tokens: &[u32], pos: &[u32]) -> Result<()> {
        if let Some(&bad) = tokens.iter().find(|&&x| x as usize >= self.cfg.vocab) {
            return Err(TensorError::Invalid {
                name: "tokens",
                reason: format!("token {bad} is outside the vocabulary of {}", self.cfg.vocab),
            });
        }
        if let Some(&bad) = pos.iter().find(|&&p| p as usize >= self.cfg.context) {
            return Err(TensorError::Invalid {
                name: "context",
                reason: format!(
                    "position {bad} is past the model's context of {} tokens",
                    self.cfg.context
                ),
            });
        }
        Ok(())
    }

    /// Every block over left-padded `tokens` `[b, t]` with `mask`: the last hidden state
    /// `[b, t, d]`, each block's keys and values, and `t`.
    fn run(&self, tokens: &[u32], mask: &[f32], b: usize) -> Result<(Tensor, Vec<Tensor>, Vec<Tensor>, usize)> {
        let (t, pos) = self.check(tokens, mask, b)?;
        let mut x = self.embed(tokens, &pos, b, t)?;
        let am = self.attn_mask(mask, b, t, t)?;
        let (mut ks, mut vs) = (Vec::new(), Vec::new());
        for l in 0..self.cfg.n_layers {
            let (y, k, v) = self.block(l, &x, None, &am)?;
            x = y;
            ks.push(k);
            vs.push(v);
        }
        Ok((x, ks, vs, t))
    }

    /// The host kernels' forward pass over a checked batch, with logits at the slots `slots`
    /// of each row only: one tape per chunk of `size` rows, the chunks in parallel.
    fn host_forward(
        &self,
        tokens: &[u32],
        mask: &[f32],
        b: usize,
        pos: &[u32],
        size: usize,
        slots: std::ops::Range<usize>,
    ) -> Result<Vec<Tape>> {
        let t = tokens.len() / b;
        let valid: Vec<bool> = mask.iter().map(|&m| m > 0.0).collect();
        self.with_params(|p| {
            chunks(b, size)
                .into_par_iter()
                .map(|(r0, r1)| {
                    let s = r0 * t..r1 * t;
                    let want: Vec<bool> = (0..(r1 - r0) * t).map(|i| slots.contains(&(i % t))).collect();
                    let g = Groups::plain(r1 - r0, t);
                    hostk::forward(&self.cfg, p, &tokens[s.clone()], &pos[s.clone()], &valid[s], &want, g)
                })
                .collect()
        })
    }

    /// The logits `[b, slots, vocab]` of [`Transformer::host_forward`]'s tapes, rows in order.
    fn host_logits(&self, tapes: &[Tape], t: usize, slots: std::ops::Range<usize>) -> Vec<f32> {
        let v = self.cfg.vocab;
        let mut out = Vec::new();
        for tape in tapes {
            for r in 0..tape.g.b {
                for j in slots.clone() {
                    out.extend_from_slice(&tape.logits[tape.logit_row(r * t + j) * v..][..v]);
                }
            }
        }
        out
    }

    /// The logits `[b, t, vocab]` of left-padded `tokens` `[b, t]` with `mask` (1 on real
    /// tokens), as a differentiable graph: the logits at slot j predict the token at j + 1.
    pub fn forward_host(&self, tokens: &[u32], mask: &[f32], b: usize) -> Result<Tensor> {
        self.head(&self.run(tokens, mask, b)?.0)
    }

    /// Runs the left-padded prompts `[b, t]` and keeps their keys and values: returns the
    /// logits of the next token `[b, vocab]` and the cache.
    pub fn prefill(&self, tokens: &[u32], mask: &[f32], b: usize) -> Result<(Tensor, KvCache)> {
        let (t, pos) = self.check(tokens, mask, b)?;
        let next_pos = mask
            .chunks(t)
            .map(|r| r.iter().filter(|&&m| m > 0.0).count() as u32)
            .collect();
        if self.host {
            let tapes = self.host_forward(tokens, mask, b, &pos, SAMPLE_CHUNK, t - 1..t)?;
            let v = self.cfg.vocab;
            let last = self.host_logits(&tapes, t, t - 1..t);
            let store = CacheStore::Host(tapes.iter().map(|tape| HostCache::from_tape(&self.cfg, tape)).collect());
            let cache = KvCache {
                store,
                mask: mask.to_vec(),
                next_pos,
                rows: b,
                len: t,
            };
            return Ok((Tensor::from_vec(last, (b, v), &Device::Cpu)?, cache));
        }
        let (x, ks, vs, _) = self.run(tokens, mask, b)?;
        let k: Vec<Tensor> = ks.iter().map(Tensor::detach).collect();
        let v: Vec<Tensor> = vs.iter().map(Tensor::detach).collect();
        let logits = self.head(&x.narrow(1, t - 1, 1)?)?.squeeze(1)?;
        Ok((
            logits.detach(),
            KvCache {
                store: CacheStore::Graph { k, v },
                mask: mask.to_vec(),
                next_pos,
                rows: b,
                len: t,
            },
        ))
    }

    /// Appends one token per row to the cache and returns the logits of the next `[b, vocab]`.
    pub fn decode(&self, cache: &mut KvCache, next: &[u32]) -> Result<Tensor> {
        let b = cache.rows;
        if next.len() != b {
            return Err(TensorError::Shape {
                what: "decoded tokens",
                expected: b,
                got: next.len(),
            });
        }
        self.check_ids(next, &cache.next_pos)?;
        if cache.len + 1 > self.cfg.context {
            return Err(TensorError::Invalid {
                name: "context",
                reason: format!(
                    "the cache already holds the model's context of {} slots",
                    self.cfg.context
                ),
            });
        }
        let tk = cache.len + 1;
        let mut mask = Vec::with_capacity(b * tk);
        for r in 0..b {
            mask.extend_from_slice(&cache.mask[r * cache.len..(r + 1) * cache.len]);
            mask.push(1.0);
        }
        let logits = match &mut cache.store {
            CacheStore::Host(hc) => {
                let (pos, len) = (&cache.next_pos, cache.len);
                let parts: Vec<Vec<f32>> = self.with_params(|p| {
                    hc.par_iter_mut()
                        .zip(chunks(b, SAMPLE_CHUNK))
                        .map(|(h, (r0, r1))| hostk::decode(&self.cfg, p, h, &next[r0..r1], &pos[r0..r1], len))
                        .collect()
                })?;
                Tensor::from_vec(parts.concat(), (b, self.cfg.vocab), &Device::Cpu)?
            }
            CacheStore::Graph { k: ks, v: vs } => {
                let mut x = self.embed(next, &cache.next_pos, b, 1)?;
                let am = self.attn_mask(&mask, b, 1, tk)?;
                for l in 0..self.cfg.n_layers {
                    let (y, k, v) = self.block(l, &x, Some((&ks[l], &vs[l])), &am)?;
                    x = y;
                    ks[l] = k.detach();
                    vs[l] = v.detach();
                }
                self.head(&x)?.squeeze(1)?.detach()
            }
        };
        cache.mask = mask;
        cache.len = tk;
        cache.next_pos.iter_mut().for_each(|p| *p += 1);
        Ok(logits)
    }

    /// The log-probabilities of `targets` `[b, c]` after left-padded `tokens` `[b, t]` with
    /// `mask`: `targets[r, j]` is scored by the logits at slot `from + j` of row `r`. Returns
    /// them with what [`Transformer::score_grads`] needs. The host kernels run the first
    /// `from + 1` slots once for all rows that share them (a group's prompt), and the last
    /// block's outputs only on the scored slots: the same function, with less work in both
    /// passes.
    pub fn score(&self, tokens: &[u32], mask: &[f32], b: usize, from: usize, targets: &[u32]) -> Result<Scored> {
        let (t, pos) = self.check(tokens, mask, b)?;
        let c = targets.len() / b;
        if targets.len() != b * c || c == 0 || from + c > t {
            return Err(TensorError::Invalid {
                name: "targets",
                reason: format!(
                    "{} targets from slot {from} do not fit {b} rows of {t} slots",
                    targets.len()
                ),
            });
        }
        let v = self.cfg.vocab;
        if let Some(&bad) = targets.iter().find(|&&x| x as usize >= v) {
            return Err(TensorError::Invalid {
                name: "targets",
                reason: format!("token {bad} is outside the vocabulary of {v}"),
            });
        }
        if self.host {
            // Rows whose first `from + 1` slots are the same (a group's prompt) share them.
            let pl = from + 1;
            let valid: Vec<bool> = mask.iter().map(|&m| m > 0.0).collect();
            let parts = share_prefixes(tokens, &valid, b, t, pl);
            let tapes: Vec<Tape> = self.with_params(|p| {
                parts
                    .par_iter()
                    .map(|part| {
                        let n = part.prefixes.len() * pl + part.rows.len() * (t - pl);
                        let (mut tk, mut ps, mut ok) =
                            (Vec::with_capacity(n), Vec::with_capacity(n), Vec::with_capacity(n));
                        let spans = part.prefixes.iter().map(|&r| r * t..r * t + pl);
                        for sp in spans.chain(part.rows.iter().map(|&r| r * t + pl..(r + 1) * t)) {
                            tk.extend_from_slice(&tokens[sp.clone()]);
                            ps.extend_from_slice(&pos[sp.clone()]);
                            ok.extend_from_slice(&valid[sp]);
                        }
                        let g = Groups {
                            u: part.prefixes.len(),
                            p: pl,
                            b: part.rows.len(),
                            s: t - pl,
                            owner: part.owner.clone(),
                        };
                        // Logits only where a target is scored.
                        let mut want = vec![false; n];
                        for lr in 0..part.rows.len() {
                            for j in 0..c {
                                want[slot_row(&g, lr, from + j)] = true;
                            }
                        }
                        hostk::forward(&self.cfg, p, &tk, &ps, &ok, &want, g)
                    })
                    .collect()
            })?;
            let mut logp = vec![0f32; b * c];
            let mut probs = vec![0f32; b * c * v];
            for (part, tape) in parts.iter().zip(&tapes) {
                for (lr, &r) in part.rows.iter().enumerate() {
                    for j in 0..c {
                        let z = &tape.logits[tape.logit_row(slot_row(&tape.g, lr, from + j)) * v..][..v];
                        let max = z.iter().fold(f32::NEG_INFINITY, |a, &x| a.max(x));
                        let sum: f32 = z.iter().map(|&x| (x - max).exp()).sum();
                        let lse = max + sum.ln();
                        logp[r * c + j] = z[targets[r * c + j] as usize] - lse;
                        for (q, &x) in probs[(r * c + j) * v..][..v].iter_mut().zip(z) {
                            *q = (x - lse).exp();
                        }
                    }
                }
            }
            return Ok(Scored {
                logp,
                rows: b,
                width: c,
                inner: ScoredInner::Host {
                    parts: parts.into_iter().zip(tapes).collect(),
                    probs,
                    targets: targets.to_vec(),
                    from,
                },
            });
        }
        let logits = self.forward_host(tokens, mask, b)?;
        let lp = log_softmax(&logits.narrow(1, from, c)?)?;
        let idx = Tensor::from_slice(targets, (b, c, 1), &self.device)?;
        let lp = lp.gather(&idx, 2)?.squeeze(2)?;
        Ok(Scored {
            logp: lp.flatten_all()?.to_vec1::<f32>()?,
            rows: b,
            width: c,
            inner: ScoredInner::Graph(lp),
        })
    }

    /// The logits `[b, c, vocab]` at slots `from..from + c` of left-padded `tokens` `[b, t]`
    /// with `mask`, on the host: what [`Transformer::score`] scores targets with, without a
    /// tape for a backward pass.
    pub fn score_logits(&self, tokens: &[u32], mask: &[f32], b: usize, from: usize, c: usize) -> Result<Vec<f32>> {
        let (t, pos) = self.check(tokens, mask, b)?;
        if c == 0 || from + c > t {
            return Err(TensorError::Invalid {
                name: "slots",
                reason: format!("{c} slots from slot {from} do not fit rows of {t} slots"),
            });
        }
        if !self.host {
            let logits = self.forward_host(tokens, mask, b)?;
            return Ok(logits.narrow(1, from, c)?.flatten_all()?.to_vec1::<f32>()?);
        }
        let tapes = self.host_forward(tokens, mask, b, &pos, HOST_CHUNK, from..from + c)?;
        Ok(self.host_logits(&tapes, t, from..from + c))
    }

    /// The gradient of `Σ dlogp · logp` over a [`Scored`] batch, one tensor per variable (in
    /// the order of [`Transformer::vars`], on the model's device).
    pub fn score_grads(&self, scored: &Scored, dlogp: &[f32]) -> Result<Vec<Tensor>> {
        let (b, c) = (scored.rows, scored.width);
        if dlogp.len() != b * c {
            return Err(TensorError::Shape {
                what: "log-probability gradients",
                expected: b * c,
                got: dlogp.len(),
            });
        }
        match &scored.inner {
            ScoredInner::Graph(lp) => {
                let coef = Tensor::from_slice(dlogp, (b, c), &self.device)?;
                let store = (lp * coef)?.sum_all()?.backward()?;
                self.vars
                    .iter()
                    .map(|v| match store.get(v.as_tensor()) {
                        Some(g) => Ok(g.clone()),
                        None => Ok(v.as_tensor().zeros_like()?),
                    })
                    .collect()
            }
            ScoredInner::Host {
                parts,
                probs,
                targets,
                from,
            } => {
                let (v, from) = (self.cfg.vocab, *from);
                // Each part's gradient in parallel, summed in part order.
                let parts: Vec<Scratch> = self.with_params(|p| {
                    parts
                        .par_iter()
                        .map(|(part, tape)| {
                            let mut dlogits = Scratch::zeros(tape.logits.len());
                            for (lr, &r) in part.rows.iter().enumerate() {
                                for j in 0..c {
                                    let g = dlogp[r * c + j];
                                    if g == 0.0 {
                                        continue;
                                    }
                                    let row = &mut dlogits[tape.logit_row(slot_row(&tape.g, lr, from + j)) * v..][..v];
                                    for (d, &q) in row.iter_mut().zip(&probs[(r * c + j) * v..][..v]) {
                                        *d -= g * q;
                                    }
                                    row[targets[r * c + j] as usize] += g;
                                }
                            }
                            let mut grads = Scratch::zeros(self.layout.total);
                            hostk::backward(&self.cfg, &self.layout, p, tape, &dlogits, &mut grads);
                            grads
                        })
                        .collect()
                })?;
                let mut grads = Scratch::zeros(self.layout.total);
                for part in &parts {
                    grads.iter_mut().zip(part.iter()).for_each(|(a, b)| *a += b);
                }
                self.vars
                    .iter()
                    .zip(&self.layout.spans)
                    .map(|(var, &(o, n))| Ok(Tensor::from_slice(&grads[o..o + n], var.dims(), &Device::Cpu)?))
                    .collect()
            }
        }
    }
}

/// Target log-probabilities from [`Transformer::score`], with what their gradient needs: the
/// graph on the model's device, or the host kernels' tape.
#[derive(Debug)]
pub struct Scored {
    logp: Vec<f32>,
    rows: usize,
    width: usize,
    inner: ScoredInner,
}

#[derive(Debug)]
enum ScoredInner {
    Graph(Tensor),
    Host {
        parts: Vec<(SharePart, Tape)>,
        probs: Vec<f32>,
        targets: Vec<u32>,
        from: usize,
    },
}

impl Scored {
    /// The log-probabilities `[b, c]`, row-major.
    pub fn logp(&self) -> &[f32] {
        &self.logp
    }
    /// Rows `b` and targets per row `c`.
    pub fn dims(&self) -> (usize, usize) {
        (self.rows, self.width)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn small() -> Transformer {
        let cfg = TransformerConfig {
            vocab: 9,
            context: 12,
            d_model: 16,
            n_heads: 4,
            n_layers: 2,
            d_ff: 32,
        };
        Transformer::new(cfg, 3, &Device::Cpu).unwrap()
    }

    /// Weights far from the small initial ones (σ 0.5, gains around 1), so that every
    /// nonlinearity is exercised.
    fn randomize(net: &Transformer, rng: &mut rand_chacha::ChaCha8Rng) {
        for v in net.vars() {
            let data: Vec<f32> = crate::init::normal(rng, v.elem_count(), 0.0, 0.5)
                .into_iter()
                .map(|x| if v.dims().len() == 1 { 1.0 + x } else { x })
                .collect();
            v.set(&Tensor::from_vec(data, v.dims(), &Device::Cpu).unwrap()).unwrap();
        }
    }

    fn rows(t: &Tensor) -> Vec<Vec<f32>> {
        t.to_vec2::<f32>().unwrap()
    }

    /// Sampling with the cache gives the logits a full forward pass gives at the same slots,
    /// for left-padded rows of different lengths.
    #[test]
    fn kv_cache_equals_the_full_forward_pass() {
        let net = small();
        // Row 0: 3 prompt tokens after 2 pads; row 1: 5 prompt tokens.
        let prompt = [0, 0, 1, 4, 5, 1, 6, 7, 8, 3];
        let pmask = [0.0, 0.0, 1.0, 1.0, 1.0, 1.0, 1.0, 1.0, 1.0, 1.0];
        let (mut logits, mut cache) = net.prefill(&prompt, &pmask, 2).unwrap();
        let steps = [[2u32, 6], [7, 7], [3, 2]];
        let (mut seq, mut mask) = (prompt.to_vec(), pmask.to_vec());
        for s in steps {
            // The full pass over everything so far, at its last slot.
            let t = seq.len() / 2;
            let full = net.forward_host(&seq, &mask, 2).unwrap();
            let last = full.narrow(1, t - 1, 1).unwrap().squeeze(1).unwrap();
            for (a, b) in rows(&logits).iter().flatten().zip(rows(&last).iter().flatten()) {
                assert!((a - b).abs() < 1e-5, "{a} vs {b}");
            }
            logits = net.decode(&mut cache, &s).unwrap();
            let mut ns = Vec::new();
            let mut nm = Vec::new();
            for r in 0..2 {
                ns.extend_from_slice(&seq[r * t..(r + 1) * t]);
                ns.push(s[r]);
                nm.extend_from_slice(&mask[r * t..(r + 1) * t]);
                nm.push(1.0);
            }
            (seq, mask) = (ns, nm);
        }
        assert_eq!(cache.len(), 8);
        // Padding does not change a row: row 0 alone, unpadded, scores the same.
        let alone = net.forward_host(&[1, 4, 5], &[1.0; 3], 1).unwrap();
        let padded = net
            .forward_host(&[0, 0, 1, 4, 5], &[0.0, 0.0, 1.0, 1.0, 1.0], 1)
            .unwrap();
        let slot = |t: &Tensor, j: usize| {
            t.narrow(1, j, 1)
                .unwrap()
                .flatten_all()
                .unwrap()
                .to_vec1::<f32>()
                .unwrap()
        };
        let (a, p) = (slot(&alone, 2), slot(&padded, 4));
        for (x, y) in a.iter().zip(&p) {
            assert!((x - y).abs() < 1e-5);
        }
    }

    /// The gradient of one parameter entry from autodiff equals a central finite difference
    /// (Richardson-extrapolated from steps h and h/2, which cancels the h² error term).
    #[test]
    fn gradients_match_finite_differences() {
        let net = small();
        let tokens = [0, 1, 4, 5, 6, 1, 2, 3, 4, 5];
        let mask = [0.0, 1.0, 1.0, 1.0, 1.0, 1.0, 1.0, 1.0, 1.0, 1.0];
        let loss = |n: &Transformer| -> Tensor {
            let lp = log_softmax(&n.forward_host(&tokens, &mask, 2).unwrap()).unwrap();
            // Sum of the log-probabilities of token 2 everywhere: any smooth scalar will do.
            lp.narrow(2, 2, 1).unwrap().sum_all().unwrap()
        };
        let grads = loss(&net).backward().unwrap();
        for name in [
            "h.0.attn.qkv.w",
            "h.1.mlp.fc.b",
            "tok_emb",
            "pos_emb",
            "head.w",
            "h.0.ln1.w",
        ] {
            let var = net.named_vars().find(|(n, _)| *n == name).unwrap().1.clone();
            let g = grads
                .get(var.as_tensor())
                .unwrap()
                .flatten_all()
                .unwrap()
                .to_vec1::<f32>()
                .unwrap();
            let base = var.as_tensor().flatten_all().unwrap().to_vec1::<f32>().unwrap();
            let i = base.len() / 3 + 1;
            let h = 1e-2f32;
            let at = |delta: f32| {
                let mut p = base.clone();
                p[i] += delta;
                var.set(&Tensor::from_vec(p, var.dims(), &Device::Cpu).unwrap())
                    .unwrap();
                let v = loss(&net).to_scalar::<f32>().unwrap() as f64;
                var.set(&Tensor::from_vec(base.clone(), var.dims(), &Device::Cpu).unwrap())
                    .unwrap();
                v
            };
            let d = |h: f32| (at(h) - at(-h)) / (2.0 * h as f64);
            let fd = (4.0 * d(h / 2.0) - d(h)) / 3.0;
            assert!(
                (fd - g[i] as f64).abs() < 2e-3 * (1.0 + fd.abs()),
                "{name}[{i}]: finite difference {fd} vs autodiff {}",
                g[i]
            );
        }
    }

    /// `score_logits` gives the logits `score` scores with: their log-softmax at the targets
    /// is the scored log-probability, on the host kernels and on the graph.
    #[test]
    fn score_logits_are_what_score_scores() {
        let mut net = small();
        randomize(&net, &mut stream(6, Purpose::Init, 0));
        let tokens = [0, 0, 1, 4, 5, 6, 7, 1, 2, 3, 4, 8, 0, 0, 0, 1, 6, 7, 2, 3, 0];
        let mask = [
            0., 0., 1., 1., 1., 1., 1., 1., 1., 1., 1., 1., 0., 0., 0., 1., 1., 1., 1., 1., 0.,
        ];
        let targets = [5, 6, 7, 8, 0, 0, 2, 3, 0];
        for host in [true, false] {
            net.set_host_kernels(host).unwrap();
            let lp = net.score(&tokens, &mask, 3, 3, &targets).unwrap().logp().to_vec();
            let z = net.score_logits(&tokens, &mask, 3, 3, 3).unwrap();
            assert_eq!(z.len(), 3 * 3 * 9);
            for i in 0..9 {
                let row = &z[i * 9..(i + 1) * 9];
                let max = row.iter().fold(f32::NEG_INFINITY, |a, &x| a.max(x));
                let lse = max + row.iter().map(|&x| (x - max).exp()).sum::<f32>().ln();
                let want = row[targets[i] as usize] - lse;
                assert!(
                    (lp[i] - want).abs() < 1e-5,
                    "host {host}, slot {i}: {} vs {want}",
                    lp[i]
                );
            }
            assert!(net.score_logits(&tokens, &mask, 3, 5, 3).is_err());
        }
    }

    /// The host kernels and the candle graph agree: the scored log-probabilities and every
    /// parameter's gradient, on left-padded prompts with right-padded completions, and the
    /// sampling logits of prefill and decode with either cache.
    #[test]
    fn host_kernels_equal_the_candle_graph() {
        let mut graph = small();
        graph.set_host_kernels(false).unwrap();
        randomize(&graph, &mut stream(5, Purpose::Init, 0));
        let mut host = graph.deep_clone().unwrap();
        host.set_host_kernels(true).unwrap();
        assert!(host.host_kernels() && !graph.host_kernels());
        // Three rows of 7 slots: prompts of 2, 4 and 3 tokens left-padded to 4, then
        // completions of 3, 1 and 2 tokens right-padded to 3.
        let tokens = [0, 0, 1, 4, 5, 6, 7, 1, 2, 3, 4, 8, 0, 0, 0, 1, 6, 7, 2, 3, 0];
        let mask = [
            0., 0., 1., 1., 1., 1., 1., 1., 1., 1., 1., 1., 0., 0., 0., 1., 1., 1., 1., 1., 0.,
        ];
        // Slot 3 predicts the first completion token, so targets sit at slots 4..7 (the last
        // slot's prediction is not needed and is not part of the input's scoring range).
        let targets = [5, 6, 7, 8, 0, 0, 2, 3, 0];
        let tmask = [1., 1., 1., 1., 0., 0., 1., 1., 0.];
        let (sh, sg) = (
            host.score(&tokens, &mask, 3, 3, &targets).unwrap(),
            graph.score(&tokens, &mask, 3, 3, &targets).unwrap(),
        );
        for i in 0..9 {
            if tmask[i] > 0.0 {
                let (a, b) = (sh.logp()[i], sg.logp()[i]);
                assert!((a - b).abs() < 1e-5, "logp {i}: {a} vs {b}");
            }
        }
        let coef: Vec<f32> = (0..9)
            .map(|i| tmask[i] * (0.3 + 0.1 * i as f32) * if i % 2 == 0 { 1.0 } else { -1.0 })
            .collect();
        let (gh, gg) = (
            host.score_grads(&sh, &coef).unwrap(),
            graph.score_grads(&sg, &coef).unwrap(),
        );
        for ((name, _), (a, b)) in graph.named_vars().zip(gh.iter().zip(&gg)) {
            let a = a.flatten_all().unwrap().to_vec1::<f32>().unwrap();
            let b = b.flatten_all().unwrap().to_vec1::<f32>().unwrap();
            let scale = b.iter().fold(0f32, |m, x| m.max(x.abs())).max(1e-3);
            for (x, y) in a.iter().zip(&b) {
                assert!((x - y).abs() < 1e-5 * scale.max(1.0) + 1e-6, "{name}: {x} vs {y}");
            }
            assert!(
                b.iter().any(|&x| x != 0.0) || name == "pos_emb",
                "{name} has no gradient"
            );
        }
        // Sampling: prefill and three decode steps, both caches.
        let prompt = [0, 0, 1, 4, 5, 1, 6, 7, 8, 3];
        let pmask = [0.0, 0.0, 1.0, 1.0, 1.0, 1.0, 1.0, 1.0, 1.0, 1.0];
        let (mut lh, mut ch) = host.prefill(&prompt, &pmask, 2).unwrap();
        let (mut lg, mut cg) = graph.prefill(&prompt, &pmask, 2).unwrap();
        for s in [[2u32, 6], [7, 7], [3, 2], [1, 1]] {
            for (a, b) in rows(&lh).iter().flatten().zip(rows(&lg).iter().flatten()) {
                assert!((a - b).abs() < 1e-5, "{a} vs {b}");
            }
            lh = host.decode(&mut ch, &s).unwrap();
            lg = graph.decode(&mut cg, &s).unwrap();
        }
        assert!(graph.deep_clone().unwrap().set_host_kernels(true).is_ok());
    }

    /// A batch of several chunks whose rows share prompts (17 prompts, scattered over the
    /// rows, so every row continues a shared prefix): the host kernels equal the graph, and
    /// give the same bits on one thread as on many.
    #[test]
    fn chunked_batches_are_exact_at_any_thread_count() {
        let mut host = small();
        let mut rng = stream(9, Purpose::Init, 1);
        randomize(&host, &mut rng);
        host.set_host_kernels(true).unwrap();
        let mut graph = host.deep_clone().unwrap();
        graph.set_host_kernels(false).unwrap();
        let b = 2 * HOST_CHUNK + 5;
        let mut draw = |n: usize| -> Vec<u32> {
            crate::init::normal(&mut rng, n, 0.0, 3.0)
                .iter()
                .map(|x| 1 + (x.abs() as u32 % 8))
                .collect()
        };
        let prompts: Vec<Vec<u32>> = (0..17).map(|_| draw(5)).collect();
        let (mut tokens, mut mask, mut targets) = (Vec::new(), Vec::new(), Vec::new());
        for r in 0..b {
            let k = (r * 7) % 17;
            let pad = k % 3;
            for j in 0..5 {
                tokens.push(if j >= pad { prompts[k][j] } else { 0 });
                mask.push(if j >= pad { 1.0 } else { 0.0 });
            }
            let tail = draw(3);
            tokens.extend(&tail);
            mask.extend([1.0; 3]);
            targets.extend([tail[0], tail[1], tail[2]]);
        }
        // Slot 4 (a prompt's last) predicts the first target; the input drops the last slot's
        // prediction by scoring 3 targets from slot 4 of 8 slots.
        let valid: Vec<bool> = mask.iter().map(|&m| m > 0.0).collect();
        let parts = share_prefixes(&tokens, &valid, b, 8, 5);
        let shared: usize = parts.iter().map(|p| p.prefixes.len()).sum();
        assert!(
            parts.len() > 1 && shared < b,
            "{} parts, {shared} prefixes for {b} rows",
            parts.len()
        );
        let coef: Vec<f32> = (0..b * 3).map(|i| ((i * 7) % 5) as f32 - 2.0).collect();
        let run = |m: &Transformer| {
            let sc = m.score(&tokens, &mask, b, 4, &targets).unwrap();
            let g = m.score_grads(&sc, &coef).unwrap();
            let flat: Vec<f32> = g
                .iter()
                .flat_map(|t| t.flatten_all().unwrap().to_vec1::<f32>().unwrap())
                .collect();
            (sc.logp().to_vec(), flat)
        };
        let (lh, gh) = run(&host);
        let (lg, gg) = run(&graph);
        for (a, b) in lh.iter().zip(&lg) {
            assert!((a - b).abs() < 1e-5, "{a} vs {b}");
        }
        for (a, b) in gh.iter().zip(&gg) {
            assert!((a - b).abs() < 1e-4 * (1.0 + b.abs()), "{a} vs {b}");
        }
        let one = rayon::ThreadPoolBuilder::new().num_threads(1).build().unwrap();
        let (l1, g1) = one.install(|| run(&host));
        assert_eq!((l1, g1), (lh, gh), "one thread and many give the same bits");
    }

    /// A cache gathered from a prefill of distinct prompts decodes as the prefill of the
    /// repeated rows does, on both implementations.
    #[test]
    fn gathered_caches_equal_a_prefill_of_every_row() {
        for host in [true, false] {
            let mut net = small();
            net.set_host_kernels(host).unwrap();
            let distinct = [0, 1, 4, 5, 1, 6, 7, 8];
            let dmask = [0.0, 1.0, 1.0, 1.0, 1.0, 1.0, 1.0, 1.0];
            let pick = [1usize, 0, 1, 1];
            let (mut all, mut amask) = (Vec::new(), Vec::new());
            for &r in &pick {
                all.extend_from_slice(&distinct[r * 4..(r + 1) * 4]);
                amask.extend_from_slice(&dmask[r * 4..(r + 1) * 4]);
            }
            let (_, dc) = net.prefill(&distinct, &dmask, 2).unwrap();
            let mut gathered = dc.gather_rows(&pick).unwrap();
            let (_, mut direct) = net.prefill(&all, &amask, 4).unwrap();
            assert_eq!(gathered.rows(), 4);
            let next = [2u32, 3, 5, 6];
            let a = net.decode(&mut gathered, &next).unwrap();
            let b = net.decode(&mut direct, &next).unwrap();
            for (x, y) in rows(&a).iter().flatten().zip(rows(&b).iter().flatten()) {
                assert!((x - y).abs() < 1e-5, "host kernels {host}: {x} vs {y}");
            }
            assert!(dc.gather_rows(&[2]).is_err());
        }
    }

    #[test]
    fn bad_inputs_are_errors() {
        let net = small();
        assert!(
            net.forward_host(&[1, 99], &[1.0, 1.0], 1).is_err(),
            "token outside the vocabulary"
        );
        assert!(
            net.forward_host(&[1; 13], &[1.0; 13], 1).is_err(),
            "longer than the context"
        );
        assert!(net.forward_host(&[1, 2, 3], &[1.0; 3], 2).is_err());
        let bad = TransformerConfig {
            n_heads: 3,
            ..*net.config()
        };
        assert!(Transformer::new(bad, 0, &Device::Cpu).is_err());
        // Copies are independent; tensors round-trip.
        let copy = net.deep_clone().unwrap();
        let t: std::collections::HashMap<_, _> = net.to_tensors("p").unwrap().into_iter().collect();
        net.vars()[0]
            .set(&net.vars()[0].as_tensor().zeros_like().unwrap())
            .unwrap();
        copy.load_tensors("p", &t).unwrap();
        net.load_tensors("p", &t).unwrap();
        let out = |m: &Transformer| {
            m.forward_host(&[1, 2], &[1.0; 2], 1)
                .unwrap()
                .flatten_all()
                .unwrap()
                .to_vec1::<f32>()
                .unwrap()
        };
        let (a, b) = (out(&net), out(&copy));
        assert_eq!(a, b);
    }
}
