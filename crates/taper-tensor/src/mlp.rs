//! A multi-layer perceptron on flat parameter buffers with a hand-written backward pass.
//!
//! Why not candle's autodiff for this: on CPU, small nets spend most of a candle training step
//! in framework overhead (scalar `tanh`, a slow dim-0 reduction for the bias gradient,
//! per-node allocation; `docs/performance.md`). [`Mlp`] keeps every parameter in one `Vec<f32>`
//! (PyTorch's layout, `W` as `[out, in]` then `b`), runs the products through `gemm`, fuses
//! bias and activation, and computes exactly the gradients a step needs. Its gradients are
//! tested against candle's autodiff, and its parameters convert to and from candle tensors
//! (and so safetensors) with PyTorch's names.
//!
//! ```
//! use taper_tensor::mlp::{Activation, Mlp, MlpCache, MlpInit};
//! use taper_tensor::rng::{stream, Purpose};
//! let mut rng = stream(0, Purpose::Init, 0);
//! let net = Mlp::new(&[4, 64, 64, 2], Activation::Tanh, MlpInit::orthogonal(2f32.sqrt(), 0.01), &mut rng)?;
//! let mut cache = MlpCache::default();
//! let x = vec![0.1f32; 3 * 4];
//! let y = net.forward(&x, 3, &mut cache)?;
//! assert_eq!(y.len(), 3 * 2);
//! # Ok::<(), taper_tensor::TensorError>(())
//! ```

use crate::candle_mlp::CandleMlp;
use crate::device::Placement;
use crate::error::{check_len, Result, TensorError};
use crate::fastmath;
use crate::linalg::{matmul_nn, matmul_nt, matmul_tn};
use rand::Rng;
use serde::{Deserialize, Serialize};

/// The hidden-layer activation.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum Activation {
    /// `tanh`, evaluated with [`fastmath::tanh_fast`].
    Tanh,
    /// `max(x, 0)`.
    Relu,
    /// `x` for `x > 0`, `eˣ − 1` otherwise (the HDPO repository's hidden activation).
    Elu,
    /// GELU in its tanh form, `½x(1 + tanh(√(2/π)(x + 0.044715x³)))` ([`fastmath::gelu_slice`];
    /// candle's `gelu`). It differs from the erf form (PyTorch's `nn.GELU()` default) by at
    /// most about 5e-4.
    Gelu,
    /// No activation.
    Identity,
}

/// How to initialise the weights; biases start at zero except for [`MlpInit::TorchDefault`].
#[derive(Debug, Clone, Copy, PartialEq, Serialize, Deserialize)]
pub enum MlpInit {
    /// Orthogonal weights with one gain for hidden layers and one for the output layer, zero
    /// biases: CleanRL's `layer_init`.
    Orthogonal {
        /// Gain of the hidden layers (CleanRL: √2).
        hidden_gain: f32,
        /// Gain of the output layer (CleanRL: 0.01 for a policy, 1.0 for a value head).
        output_gain: f32,
    },
    /// PyTorch's `nn.Linear` default: weights and biases uniform in ±1/√fan_in.
    TorchDefault,
}

impl MlpInit {
    /// Shorthand for [`MlpInit::Orthogonal`].
    pub fn orthogonal(hidden_gain: f32, output_gain: f32) -> Self {
        MlpInit::Orthogonal {
            hidden_gain,
            output_gain,
        }
    }
}

/// A fully connected network: `sizes[0] -> sizes[1] -> ... -> sizes[L]`, the hidden
/// activation after every layer but the last.
///
/// The parameters live here, on the host, in one flat buffer. Where the network computes is
/// its [`Placement`]: the fast path (the default) or a candle graph on a device, which mirrors
/// the parameters there and re-uploads them only after they change (every change goes
/// through [`Mlp::params_mut`] or [`Mlp::load_tensors`], which give the buffer a new stamp).
#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct Mlp {
    sizes: Vec<usize>,
    activation: Activation,
    params: Vec<f32>,
    #[serde(skip)]
    placement: Placement,
    /// Names the current parameter values: unique per change, process-wide.
    #[serde(skip, default = "fresh_stamp")]
    stamp: u64,
}

impl PartialEq for Mlp {
    /// Same shape and same parameters, wherever they compute.
    fn eq(&self, other: &Self) -> bool {
        self.sizes == other.sizes && self.activation == other.activation && self.params == other.params
    }
}

/// A new parameter stamp.
fn fresh_stamp() -> u64 {
    static NEXT: std::sync::atomic::AtomicU64 = std::sync::atomic::AtomicU64::new(1);
    NEXT.fetch_add(1, std::sync::atomic::Ordering::Relaxed)
}

/// Forward activations kept for the backward pass, reused between calls.
#[derive(Debug, Default, Clone)]
pub struct MlpCache {
    batch: usize,
    outs: Vec<Vec<f32>>,
    /// Pre-activations of GELU layers (their gradient needs the input).
    pre: Vec<Vec<f32>>,
    delta: [Vec<f32>; 2],
    graph: GraphSlot,
}

/// The candle side of an [`MlpCache`]: the device's mirror of the parameters (with the stamp
/// it holds), and the last forward pass's input and output nodes.
struct GraphCache {
    mirror: CandleMlp,
    stamp: u64,
    x: candle_core::Var,
    out: candle_core::Tensor,
    host_out: Vec<f32>,
}

/// Holds a [`GraphCache`]; a clone starts empty, so two caches never share device variables.
#[derive(Default)]
struct GraphSlot(Option<Box<GraphCache>>);

impl Clone for GraphSlot {
    fn clone(&self) -> Self {
        GraphSlot(None)
    }
}

impl std::fmt::Debug for GraphSlot {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match &self.0 {
            None => f.write_str("GraphSlot(empty)"),
            Some(g) => write!(f, "GraphSlot(stamp {})", g.stamp),
        }
    }
}

impl Mlp {
    /// A new network with seeded initial weights.
    pub fn new<R: Rng + ?Sized>(sizes: &[usize], activation: Activation, init: MlpInit, rng: &mut R) -> Result<Self> {
        if sizes.len() < 2 || sizes.contains(&0) {
            return Err(TensorError::Invalid {
                name: "sizes",
                reason: format!("need at least two positive layer sizes, got {sizes:?}"),
            });
        }
        let mut params = Vec::with_capacity(Self::count(sizes));
        let last = sizes.len() - 2;
        for l in 0..sizes.len() - 1 {
            let (i, o) = (sizes[l], sizes[l + 1]);
            match init {
                MlpInit::Orthogonal {
                    hidden_gain,
                    output_gain,
                } => {
                    let g = if l == last { output_gain } else { hidden_gain };
                    params.extend(crate::init::orthogonal(rng, o, i, g));
                    params.extend(std::iter::repeat_n(0.0, o));
                }
                MlpInit::TorchDefault => {
                    let bound = 1.0 / (i as f32).sqrt();
                    params.extend(crate::init::uniform(rng, o * i, -bound, bound));
                    params.extend(crate::init::uniform(rng, o, -bound, bound));
                }
            }
        }
        Ok(Mlp {
            sizes: sizes.to_vec(),
            activation,
            params,
            placement: Placement::Fast,
            stamp: fresh_stamp(),
        })
    }

    /// A network from explicit parameters in this type's layout.
    pub fn from_params(sizes: &[usize], activation: Activation, params: Vec<f32>) -> Result<Self> {
        if sizes.len() < 2 || sizes.contains(&0) {
            return Err(TensorError::Invalid {
                name: "sizes",
                reason: format!("need at least two positive layer sizes, got {sizes:?}"),
            });
        }
        check_len("Mlp parameters", Self::count(sizes), params.len())?;
        Ok(Mlp {
            sizes: sizes.to_vec(),
            activation,
            params,
            placement: Placement::Fast,
            stamp: fresh_stamp(),
        })
    }

    fn count(sizes: &[usize]) -> usize {
        sizes.windows(2).map(|w| w[0] * w[1] + w[1]).sum()
    }

    /// Layer sizes, input first.
    pub fn sizes(&self) -> &[usize] {
        &self.sizes
    }
    /// The hidden activation.
    pub fn activation(&self) -> Activation {
        self.activation
    }
    /// Input width.
    pub fn input_dim(&self) -> usize {
        self.sizes[0]
    }
    /// Output width.
    pub fn output_dim(&self) -> usize {
        *self.sizes.last().unwrap()
    }
    /// All parameters, layer by layer (`W` as `[out, in]`, then `b`).
    pub fn params(&self) -> &[f32] {
        &self.params
    }
    /// Mutable parameters, e.g. for an optimiser step.
    pub fn params_mut(&mut self) -> &mut [f32] {
        self.stamp = fresh_stamp();
        &mut self.params
    }
    /// Where the network computes.
    pub fn placement(&self) -> &Placement {
        &self.placement
    }
    /// Sets where the network computes; results agree across placements to float rounding.
    pub fn set_placement(&mut self, placement: Placement) {
        self.placement = placement;
    }
    /// Number of parameters.
    pub fn num_params(&self) -> usize {
        self.params.len()
    }

    /// Offsets `(w, b)` of layer `l` in the parameter buffer.
    fn offsets(&self, l: usize) -> (usize, usize) {
        let mut off = 0;
        for w in self.sizes.windows(2).take(l) {
            off += w[0] * w[1] + w[1];
        }
        (off, off + self.sizes[l] * self.sizes[l + 1])
    }

    fn act_for(&self, l: usize) -> Activation {
        if l + 2 == self.sizes.len() {
            Activation::Identity
        } else {
            self.activation
        }
    }

    /// Forward pass of `batch` rows of `x` (`[batch, in]`), keeping activations in `cache`;
    /// returns the output `[batch, out]`.
    pub fn forward<'c>(&self, x: &[f32], batch: usize, cache: &'c mut MlpCache) -> Result<&'c [f32]> {
        check_len("Mlp input", batch * self.input_dim(), x.len())?;
        if let Placement::Candle(dev) = &self.placement {
            return self.forward_graph(x, batch, cache, dev);
        }
        let layers = self.sizes.len() - 1;
        cache.batch = batch;
        cache.outs.resize_with(layers, Vec::new);
        cache.pre.resize_with(layers, Vec::new);
        for l in 0..layers {
            let o = self.sizes[l + 1];
            cache.outs[l].resize(batch * o, 0.0);
            if self.act_for(l) == Activation::Gelu {
                cache.pre[l].resize(batch * o, 0.0);
            }
        }
        let MlpCache { outs, pre, .. } = cache;
        let split = self.split_rows(batch);
        if split == 0 {
            self.forward_block(x, batch, 0, outs, pre);
        } else {
            // Rows are independent: the two blocks give the bits of one pass (tested).
            let (mut o0, mut o1) = (Vec::with_capacity(layers), Vec::with_capacity(layers));
            let (mut p0, mut p1) = (Vec::with_capacity(layers), Vec::with_capacity(layers));
            for (l, (ov, pv)) in outs.iter_mut().zip(pre.iter_mut()).enumerate() {
                let w = self.sizes[l + 1];
                let (a, b) = ov.split_at_mut(split * w);
                o0.push(a);
                o1.push(b);
                let cut = if pv.is_empty() { 0 } else { split * w };
                let (a, b) = pv.split_at_mut(cut);
                p0.push(a);
                p1.push(b);
            }
            let (x0, x1) = x.split_at(split * self.input_dim());
            // The wide layers run as two blocks; the narrow ones after them (an output of a few
            // values), where `gemm` sums in another order for fewer rows, run whole.
            let wide = self.wide_layers();
            rayon::join(
                || self.forward_block(x0, split, 0, &mut o0[..wide], &mut p0[..wide]),
                || self.forward_block(x1, batch - split, 0, &mut o1[..wide], &mut p1[..wide]),
            );
            if wide < layers {
                self.forward_block(x, batch, wide, outs, pre);
            }
        }
        Ok(&cache.outs[layers - 1])
    }

    /// The leading layers at least [`Mlp::SPLIT_MIN_WIDTH`] wide.
    fn wide_layers(&self) -> usize {
        self.sizes[1..]
            .iter()
            .take_while(|&&w| w >= Self::SPLIT_MIN_WIDTH)
            .count()
    }

    /// Rows of the first block when a pass of `batch` rows runs as two blocks on rayon's pool,
    /// or 0 for one block: from [`Mlp::SPLIT_MACS`] multiply-adds per pass, at a multiple of 64
    /// rows (the matrix kernel's tile). The split depends on the shapes only, never on the
    /// thread count.
    fn split_rows(&self, batch: usize) -> usize {
        let per_row: usize = self.sizes.windows(2).map(|w| w[0] * w[1]).sum();
        if batch < 128 || batch.saturating_mul(per_row) < Self::SPLIT_MACS {
            return 0;
        }
        (batch / 2).div_ceil(64) * 64
    }

    /// Layers `from..` of the forward pass of `rows` rows of `x` into per-layer outputs (and
    /// GELU pre-activations, empty for other layers) of exactly those rows; the layers before
    /// `from` are already in `outs`.
    /// Generic over the buffers, so that one block writes the cache's own vectors (no
    /// allocation per pass) and two blocks write row ranges of them.
    fn forward_block<B>(&self, x: &[f32], rows: usize, from: usize, outs: &mut [B], pre: &mut [B])
    where
        B: AsRef<[f32]> + AsMut<[f32]>,
    {
        for l in from..outs.len() {
            let (i, o) = (self.sizes[l], self.sizes[l + 1]);
            let (wo, bo) = self.offsets(l);
            let (prev, rest) = outs.split_at_mut(l);
            let input: &[f32] = if l == 0 { x } else { prev[l - 1].as_ref() };
            let out = rest[0].as_mut();
            matmul_nt(rows, o, i, input, &self.params[wo..bo], out, false);
            let b = &self.params[bo..bo + o];
            match self.act_for(l) {
                Activation::Tanh => fastmath::bias_tanh_inplace(out, b),
                Activation::Relu => {
                    fastmath::bias_add_inplace(out, b);
                    out.iter_mut().for_each(|v| *v = v.max(0.0));
                }
                Activation::Elu => {
                    fastmath::bias_add_inplace(out, b);
                    out.iter_mut().for_each(|v| {
                        if *v <= 0.0 {
                            *v = v.exp_m1()
                        }
                    });
                }
                Activation::Gelu => {
                    fastmath::bias_add_inplace(out, b);
                    let pre = pre[l].as_mut();
                    pre.copy_from_slice(out);
                    fastmath::gelu_slice(pre, out);
                }
                Activation::Identity => fastmath::bias_add_inplace(out, b),
            }
        }
    }

    /// The output of the last [`Mlp::forward`] held in `cache`.
    pub fn output<'c>(&self, cache: &'c MlpCache) -> &'c [f32] {
        if self.placement.is_candle() {
            return cache.graph.0.as_ref().map(|g| g.host_out.as_slice()).unwrap_or(&[]);
        }
        cache.outs.last().map(|v| v.as_slice()).unwrap_or(&[])
    }

    /// Backward pass: given `dout = ∂L/∂output` (`[batch, out]`) for the batch last passed to
    /// [`Mlp::forward`] with the same `x`, **adds** `∂L/∂params` into `grads`.
    pub fn backward(&self, x: &[f32], cache: &mut MlpCache, dout: &[f32], grads: &mut [f32]) -> Result<()> {
        self.backward_full(x, cache, dout, grads, None)
    }

    /// [`Mlp::backward`] that also writes `∂L/∂x` (`[batch, in]`) into `dx` when given.
    pub fn backward_full(
        &self,
        x: &[f32],
        cache: &mut MlpCache,
        dout: &[f32],
        grads: &mut [f32],
        dx: Option<&mut [f32]>,
    ) -> Result<()> {
        check_len("Mlp gradient buffer", self.params.len(), grads.len())?;
        self.backward_inner(x, cache, dout, Some(grads), dx)
    }

    /// `∂L/∂x` (`[batch, in]`) of the batch last passed to [`Mlp::forward`], given
    /// `dout = ∂L/∂output`, without the parameter gradient (a third less work than
    /// [`Mlp::backward_full`]; an actor's step through a frozen critic).
    pub fn backward_input(&self, x: &[f32], cache: &mut MlpCache, dout: &[f32], dx: &mut [f32]) -> Result<()> {
        self.backward_inner(x, cache, dout, None, Some(dx))
    }

    fn backward_inner(
        &self,
        x: &[f32],
        cache: &mut MlpCache,
        dout: &[f32],
        mut grads: Option<&mut [f32]>,
        mut dx: Option<&mut [f32]>,
    ) -> Result<()> {
        if let Some(d) = dx.as_deref() {
            check_len("Mlp input gradient", cache.batch * self.input_dim(), d.len())?;
        }
        let batch = cache.batch;
        check_len("Mlp input", batch * self.input_dim(), x.len())?;
        check_len("Mlp output gradient", batch * self.output_dim(), dout.len())?;
        if self.placement.is_candle() {
            let mut scratch = Vec::new();
            let g = match grads {
                Some(g) => g,
                None => {
                    scratch.resize(self.params.len(), 0.0);
                    &mut scratch[..]
                }
            };
            return self.backward_graph(cache, dout, g, dx);
        }
        let layers = self.sizes.len() - 1;
        if cache.outs.len() != layers {
            return Err(TensorError::Invalid {
                name: "cache",
                reason: "backward called before forward".into(),
            });
        }
        let MlpCache { outs, delta, pre, .. } = cache;
        let [d0, d1] = delta;
        let (mut cur, mut next) = (d0, d1);
        cur.clear();
        cur.extend_from_slice(dout);
        for l in (0..layers).rev() {
            let (i, o) = (self.sizes[l], self.sizes[l + 1]);
            let (wo, bo) = self.offsets(l);
            match self.act_for(l) {
                Activation::Tanh => fastmath::tanh_grad_inplace(cur, &outs[l]),
                // Branch-free selects, so that the loops vectorise.
                Activation::Relu => {
                    for (g, &y) in cur.iter_mut().zip(outs[l].iter()) {
                        *g = if y <= 0.0 { 0.0 } else { *g };
                    }
                }
                Activation::Elu => {
                    for (g, &y) in cur.iter_mut().zip(outs[l].iter()) {
                        *g = if y <= 0.0 { *g * (y + 1.0) } else { *g };
                    }
                }
                Activation::Gelu => fastmath::gelu_grad_inplace(cur, &pre[l]),
                Activation::Identity => {}
            }
            let input: &[f32] = if l == 0 { x } else { &outs[l - 1] };
            // The weight gradient and the input gradient are independent products of the same
            // delta: large ones run side by side, each exactly as alone.
            let down: Option<&mut [f32]> = if l > 0 {
                next.resize(batch * i, 0.0);
                Some(&mut next[..])
            } else {
                dx.as_deref_mut()
            };
            let w = &self.params[wo..bo];
            let cur_ref: &[f32] = cur;
            let weight_grad = |g: &mut [f32]| {
                matmul_tn(o, i, batch, cur_ref, input, &mut g[wo..bo], true);
                fastmath::col_sum_acc(cur_ref, &mut g[bo..bo + o]);
            };
            let input_grad = |d: &mut [f32]| matmul_nn(batch, i, o, cur_ref, w, d, false);
            match (grads.as_deref_mut(), down) {
                (Some(g), Some(d)) if batch * i * o >= Self::SPLIT_MACS => {
                    rayon::join(|| weight_grad(g), || input_grad(d));
                }
                (g, d) => {
                    if let Some(g) = g {
                        weight_grad(g);
                    }
                    if let Some(d) = d {
                        input_grad(d);
                    }
                }
            }
            if l > 0 {
                std::mem::swap(&mut cur, &mut next);
            }
        }
        Ok(())
    }

    /// The gradient of a scalar `s` of the output with respect to the input: given
    /// `dout = ∂s/∂output` (`[batch, out]`), writes `∂s/∂x` (`[batch, in]`) into `dx` (a
    /// vector–Jacobian product; the parameter gradient is not kept).
    pub fn input_gradient(&self, x: &[f32], batch: usize, dout: &[f32], dx: &mut [f32]) -> Result<()> {
        let mut cache = MlpCache::default();
        self.forward(x, batch, &mut cache)?;
        self.backward_input(x, &mut cache, dout, dx)
    }

    /// Forward pass into `out` without keeping activations for a backward pass.
    pub fn predict(&self, x: &[f32], batch: usize, cache: &mut MlpCache, out: &mut Vec<f32>) -> Result<()> {
        let y = self.forward(x, batch, cache)?;
        out.clear();
        out.extend_from_slice(y);
        Ok(())
    }

    /// The parameters as candle tensors named like PyTorch's `nn.Sequential` of linears:
    /// `{prefix}.{l}.weight` (`[out, in]`) and `{prefix}.{l}.bias`.
    pub fn to_tensors(&self, prefix: &str) -> Result<Vec<(String, candle_core::Tensor)>> {
        let mut v = Vec::new();
        for l in 0..self.sizes.len() - 1 {
            let (i, o) = (self.sizes[l], self.sizes[l + 1]);
            let (wo, bo) = self.offsets(l);
            v.push((
                format!("{prefix}.{l}.weight"),
                crate::init::to_tensor(self.params[wo..bo].to_vec(), &[o, i])?,
            ));
            v.push((
                format!("{prefix}.{l}.bias"),
                crate::init::to_tensor(self.params[bo..bo + o].to_vec(), &[o])?,
            ));
        }
        Ok(v)
    }

    /// Loads parameters written by [`Mlp::to_tensors`] with the same prefix, checking shapes.
    pub fn load_tensors(
        &mut self,
        prefix: &str,
        tensors: &std::collections::HashMap<String, candle_core::Tensor>,
    ) -> Result<()> {
        let params = crate::init::read_like(&self.to_tensors(prefix)?, tensors)?;
        self.params = params;
        self.stamp = fresh_stamp();
        Ok(())
    }

    /// Forward pass on a candle tensor `[batch, in]` (inference; uses candle ops and the fast
    /// tanh op, so it also runs on GPU devices with the matching feature).
    pub fn forward_tensor(&self, x: &candle_core::Tensor) -> Result<candle_core::Tensor> {
        let dev = x.device();
        let mut h = x.clone();
        for l in 0..self.sizes.len() - 1 {
            let (i, o) = (self.sizes[l], self.sizes[l + 1]);
            let (wo, bo) = self.offsets(l);
            let w = candle_core::Tensor::from_slice(&self.params[wo..bo], (o, i), dev)?;
            let b = candle_core::Tensor::from_slice(&self.params[bo..bo + o], o, dev)?;
            h = h.matmul(&w.t()?)?.broadcast_add(&b)?;
            h = match self.act_for(l) {
                Activation::Tanh => fastmath::fast_tanh(&h)?,
                Activation::Relu => h.relu()?,
                Activation::Elu => h.elu(1.0)?,
                Activation::Gelu => h.gelu()?,
                Activation::Identity => h,
            };
        }
        Ok(h)
    }
}

impl Mlp {
    /// [`Mlp::forward`] as a candle graph on `dev`: the parameters are uploaded when the
    /// cache's mirror is older than them, the input is uploaded, the output downloaded.
    fn forward_graph<'c>(
        &self,
        x: &[f32],
        batch: usize,
        cache: &'c mut MlpCache,
        dev: &candle_core::Device,
    ) -> Result<&'c [f32]> {
        let fits = |g: &GraphCache| {
            g.mirror.sizes() == self.sizes.as_slice()
                && g.mirror.activation() == self.activation
                && g.mirror.device().same_device(dev)
        };
        let xv = candle_core::Var::from_tensor(&candle_core::Tensor::from_slice(x, (batch, self.input_dim()), dev)?)?;
        let mirror = match cache.graph.0.take() {
            Some(g) if fits(&g) => {
                if g.stamp != self.stamp {
                    g.mirror.set_params(&self.params)?;
                }
                g.mirror
            }
            _ => CandleMlp::from_mlp(self, dev)?,
        };
        let out = mirror.forward(xv.as_tensor())?;
        let host_out = out.flatten_all()?.to_vec1::<f32>()?;
        cache.batch = batch;
        let g = cache.graph.0.insert(Box::new(GraphCache {
            mirror,
            stamp: self.stamp,
            x: xv,
            out,
            host_out,
        }));
        Ok(&g.host_out)
    }

    /// [`Mlp::backward_full`] by candle's autodiff through the graph of the last forward pass.
    fn backward_graph(
        &self,
        cache: &mut MlpCache,
        dout: &[f32],
        grads: &mut [f32],
        dx: Option<&mut [f32]>,
    ) -> Result<()> {
        let g = cache.graph.0.as_ref().ok_or_else(|| TensorError::Invalid {
            name: "cache",
            reason: "backward called before forward".into(),
        })?;
        let dev = g.mirror.device();
        let d = candle_core::Tensor::from_slice(dout, g.out.dims(), dev)?;
        // The scalar whose gradient with respect to the output is `dout`.
        let gs = (&g.out * d)?.sum_all()?.backward()?;
        for (a, b) in grads.iter_mut().zip(g.mirror.flat_grads(&gs)?) {
            *a += b;
        }
        if let Some(dx) = dx {
            match gs.get(g.x.as_tensor()) {
                Some(t) => dx.copy_from_slice(&t.flatten_all()?.to_vec1::<f32>()?),
                None => dx.iter_mut().for_each(|v| *v = 0.0),
            }
        }
        Ok(())
    }
}

/// Per-chunk buffers for [`Mlp::grad_chunked`].
#[derive(Debug, Default)]
pub struct ChunkedGrad {
    chunks: Vec<(MlpCache, Vec<f32>, Vec<f32>)>,
}

impl Mlp {
    /// Multiply-adds from which a pass runs as two blocks of rows on rayon's pool (see
    /// [`Mlp::forward`]; a layer's weight and input gradients run side by side from a quarter
    /// of this per layer).
    pub const SPLIT_MACS: usize = 1 << 21;

    /// Layers from this many outputs wide run as two blocks of rows; `gemm` gives narrower
    /// products (1 to 3 columns) other bits when their rows are split.
    pub const SPLIT_MIN_WIDTH: usize = 16;

    /// Rows per chunk in [`Mlp::grad_chunked`]. The chunking depends on the batch size only,
    /// never on the thread count, so results are the same at any `RAYON_NUM_THREADS`.
    pub const CHUNK_ROWS: usize = 1024;

    /// Forward and backward over `batch` rows of `x`, split into fixed chunks of
    /// [`Mlp::CHUNK_ROWS`] rows that run in parallel with rayon. `loss_grad(row0, out, dout)`
    /// receives a chunk's first row and output, writes `∂L/∂out` into `dout` and returns the
    /// chunk's contribution to the loss. The gradient is written (not added) to `grads`, and
    /// the summed loss is returned. Chunk sums are combined in chunk order.
    pub fn grad_chunked<F>(
        &self,
        x: &[f32],
        batch: usize,
        ws: &mut ChunkedGrad,
        grads: &mut [f32],
        loss_grad: F,
    ) -> Result<f64>
    where
        F: Fn(usize, &[f32], &mut [f32]) -> f64 + Sync,
    {
        use rayon::prelude::*;
        check_len("Mlp input", batch * self.input_dim(), x.len())?;
        check_len("Mlp gradient buffer", self.params.len(), grads.len())?;
        let n_chunks = batch.div_ceil(Self::CHUNK_ROWS).max(1);
        ws.chunks.resize_with(n_chunks, Default::default);
        let (ind, outd, np) = (self.input_dim(), self.output_dim(), self.params.len());
        let run = |c: usize, (cache, g, dout): &mut (MlpCache, Vec<f32>, Vec<f32>)| -> Result<f64> {
            let r0 = c * Self::CHUNK_ROWS;
            let r1 = (r0 + Self::CHUNK_ROWS).min(batch);
            let xs = &x[r0 * ind..r1 * ind];
            let out = self.forward(xs, r1 - r0, cache)?;
            dout.resize((r1 - r0) * outd, 0.0);
            let l = loss_grad(r0, out, dout);
            g.clear();
            g.resize(np, 0.0);
            self.backward(xs, cache, dout, g)?;
            Ok(l)
        };
        let losses: Vec<Result<f64>> = if n_chunks == 1 {
            vec![run(0, &mut ws.chunks[0])]
        } else {
            ws.chunks.par_iter_mut().enumerate().map(|(c, w)| run(c, w)).collect()
        };
        let mut total = 0f64;
        for l in losses {
            total += l?;
        }
        grads.copy_from_slice(&ws.chunks[0].1);
        for c in 1..n_chunks {
            for (a, b) in grads.iter_mut().zip(&ws.chunks[c].1) {
                *a += b;
            }
        }
        Ok(total)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::rng::{stream, Purpose};
    use candle_core::{Device, Tensor, Var};

    /// The input-only backward pass gives the full pass's input gradient.
    #[test]
    fn backward_input_equals_the_full_pass() -> Result<()> {
        let mut rng = stream(4, Purpose::Init, 0);
        let net = Mlp::new(&[5, 9, 9, 2], Activation::Gelu, MlpInit::TorchDefault, &mut rng)?;
        let x = crate::init::normal(&mut rng, 6 * 5, 0.0, 1.0);
        let dout = crate::init::normal(&mut rng, 6 * 2, 0.0, 1.0);
        let mut cache = MlpCache::default();
        net.forward(&x, 6, &mut cache)?;
        let (mut dx1, mut dx2) = (vec![0f32; 30], vec![0f32; 30]);
        let mut g = vec![0f32; net.num_params()];
        net.backward_full(&x, &mut cache, &dout, &mut g, Some(&mut dx1))?;
        net.backward_input(&x, &mut cache, &dout, &mut dx2)?;
        assert_eq!(dx1, dx2);
        Ok(())
    }

    /// The hand-written backward pass against candle's autodiff on the same weights.
    #[test]
    fn gradients_match_candle_autodiff() -> Result<()> {
        // The second case is large enough to run as two blocks of rows, with each layer's
        // weight and input gradients side by side.
        let cases = [Activation::Tanh, Activation::Relu, Activation::Elu, Activation::Gelu]
            .into_iter()
            .flat_map(|a| [(a, 7usize, 13usize), (a, 64, 600)]);
        for (act, hidden, batch) in cases {
            let mut rng = stream(11, Purpose::Init, 0);
            let net = Mlp::new(&[5, hidden, hidden, 3], act, MlpInit::TorchDefault, &mut rng)?;
            assert_eq!(net.split_rows(batch) > 0, batch == 600);
            let x = crate::init::normal(&mut rng, batch * 5, 0.0, 1.0);
            let target = crate::init::normal(&mut rng, batch * 3, 0.0, 1.0);
            // loss = 0.5 * sum((y - t)^2)
            let mut cache = MlpCache::default();
            let y = net.forward(&x, batch, &mut cache)?.to_vec();
            let dout: Vec<f32> = y.iter().zip(&target).map(|(a, b)| a - b).collect();
            let mut grads = vec![0f32; net.num_params()];
            let mut dx = vec![0f32; batch * 5];
            net.backward_full(&x, &mut cache, &dout, &mut grads, Some(&mut dx))?;

            // candle
            let vars: Vec<(String, Var)> = net
                .to_tensors("n")?
                .into_iter()
                .map(|(k, t)| (k, Var::from_tensor(&t).unwrap()))
                .collect();
            let xv = Var::from_vec(x.clone(), (batch, 5), &Device::Cpu)?;
            let mut h = xv.as_tensor().clone();
            for l in 0..3 {
                let w = vars[2 * l].1.as_tensor();
                let b = vars[2 * l + 1].1.as_tensor();
                h = h.matmul(&w.t()?)?.broadcast_add(b)?;
                if l < 2 {
                    h = match act {
                        Activation::Tanh => h.tanh()?,
                        Activation::Elu => h.elu(1.0)?,
                        Activation::Gelu => h.gelu()?,
                        _ => h.relu()?,
                    };
                }
            }
            let yt = h.flatten_all()?.to_vec1::<f32>()?;
            for (a, b) in y.iter().zip(&yt) {
                assert!((a - b).abs() < 1e-5, "forward {a} vs {b}");
            }
            let tt = Tensor::from_vec(target, (batch, 3), &Device::Cpu)?;
            let loss = ((h - tt)?.sqr()?.sum_all()? * 0.5)?;
            let gs = loss.backward()?;
            let mut flat = Vec::new();
            for (_, v) in &vars {
                flat.extend(gs.get(v.as_tensor()).unwrap().flatten_all()?.to_vec1::<f32>()?);
            }
            for (i, (a, b)) in grads.iter().zip(&flat).enumerate() {
                assert!((a - b).abs() < 1e-4 * (1.0 + b.abs()), "{act:?} grad {i}: {a} vs {b}");
            }
            let gx = gs.get(xv.as_tensor()).unwrap().flatten_all()?.to_vec1::<f32>()?;
            for (a, b) in dx.iter().zip(&gx) {
                assert!((a - b).abs() < 1e-4 * (1.0 + b.abs()), "{act:?} input grad: {a} vs {b}");
            }
        }
        Ok(())
    }

    /// A pass split into two blocks of rows gives the bits of one block, at the shapes
    /// taper's learners use (MADDPG's critic and actor, SAC's actor, IPPO's minibatch, a GELU
    /// critic) and with narrow output layers.
    #[test]
    fn split_forward_equals_one_block_to_the_bit() -> Result<()> {
        let cases: [(&[usize], Activation, usize); 6] = [
            (&[69, 128, 128, 1], Activation::Tanh, 768),
            (&[18, 128, 128, 5], Activation::Relu, 768),
            (&[3, 256, 256, 2], Activation::Relu, 256),
            (&[18, 64, 64, 5], Activation::Tanh, 1536),
            (&[4, 256, 256, 256, 1], Activation::Gelu, 256),
            (&[54, 128, 128, 1], Activation::Tanh, 192),
        ];
        for (sizes, act, batch) in cases {
            let mut rng = stream(3, Purpose::Init, 0);
            let net = Mlp::new(sizes, act, MlpInit::TorchDefault, &mut rng)?;
            assert!(net.split_rows(batch) > 0, "{sizes:?} at {batch} rows should split");
            let x = crate::init::normal(&mut rng, batch * sizes[0], 0.0, 1.0);
            let mut cache = MlpCache::default();
            let split = net.forward(&x, batch, &mut cache)?.to_vec();
            let mut outs: Vec<Vec<f32>> = sizes[1..].iter().map(|&w| vec![0f32; batch * w]).collect();
            let mut pre: Vec<Vec<f32>> = (0..sizes.len() - 1)
                .map(|l| {
                    if net.act_for(l) == Activation::Gelu {
                        vec![0f32; batch * sizes[l + 1]]
                    } else {
                        Vec::new()
                    }
                })
                .collect();
            net.forward_block(&x, batch, 0, &mut outs, &mut pre);
            let whole = outs.last().unwrap();
            assert!(
                split.iter().zip(whole).all(|(a, b)| a.to_bits() == b.to_bits()),
                "{sizes:?} at {batch} rows"
            );
        }
        Ok(())
    }

    #[test]
    fn chunked_equals_single_pass() -> Result<()> {
        let mut rng = stream(2, Purpose::Init, 0);
        let net = Mlp::new(&[4, 16, 2], Activation::Tanh, MlpInit::orthogonal(1.4, 0.5), &mut rng)?;
        let batch = 2500;
        let x = crate::init::normal(&mut rng, batch * 4, 0.0, 1.0);
        let mut ws = ChunkedGrad::default();
        let mut g = vec![0f32; net.num_params()];
        let l = net.grad_chunked(&x, batch, &mut ws, &mut g, |_, out, d| {
            d.copy_from_slice(out);
            out.iter().map(|v| 0.5 * (*v as f64).powi(2)).sum()
        })?;
        let mut cache = MlpCache::default();
        let y = net.forward(&x, batch, &mut cache)?.to_vec();
        let mut g2 = vec![0f32; net.num_params()];
        net.backward(&x, &mut cache, &y, &mut g2)?;
        let l2: f64 = y.iter().map(|v| 0.5 * (*v as f64).powi(2)).sum();
        assert!((l - l2).abs() < 1e-6 * l2.abs());
        for (a, b) in g.iter().zip(&g2) {
            assert!((a - b).abs() < 1e-3 * (1.0 + b.abs()));
        }
        Ok(())
    }

    #[test]
    fn tensors_round_trip_and_forward_tensor() -> Result<()> {
        let mut rng = stream(4, Purpose::Init, 0);
        let net = Mlp::new(&[3, 8, 2], Activation::Tanh, MlpInit::orthogonal(1.0, 1.0), &mut rng)?;
        let map: std::collections::HashMap<_, _> = net.to_tensors("pi")?.into_iter().collect();
        let mut other = Mlp::new(&[3, 8, 2], Activation::Tanh, MlpInit::TorchDefault, &mut rng)?;
        other.load_tensors("pi", &map)?;
        assert_eq!(other.params(), net.params());
        let x = vec![0.3f32, -0.2, 0.9, 1.0, 0.0, -1.0];
        let mut cache = MlpCache::default();
        let y = net.forward(&x, 2, &mut cache)?.to_vec();
        let yt = net
            .forward_tensor(&Tensor::from_vec(x, (2, 3), &Device::Cpu)?)?
            .flatten_all()?
            .to_vec1::<f32>()?;
        for (a, b) in y.iter().zip(&yt) {
            assert!((a - b).abs() < 1e-5);
        }
        let mut wrong = Mlp::new(&[3, 9, 2], Activation::Tanh, MlpInit::TorchDefault, &mut rng)?;
        assert!(wrong.load_tensors("pi", &map).is_err());
        Ok(())
    }

    /// A network placed on the candle graph computes what the fast path computes (forward,
    /// parameter and input gradients within 1e-5), follows every parameter change, and a
    /// cache shared by two networks serves each with its own parameters.
    #[test]
    fn candle_placement_equals_the_fast_path() -> Result<()> {
        let mut rng = stream(21, Purpose::Init, 0);
        let mut fast = Mlp::new(&[4, 10, 3], Activation::Tanh, MlpInit::TorchDefault, &mut rng)?;
        let other = Mlp::new(&[4, 10, 3], Activation::Tanh, MlpInit::TorchDefault, &mut rng)?;
        let batch = 9;
        let x = crate::init::normal(&mut rng, batch * 4, 0.0, 1.0);
        let dout = crate::init::normal(&mut rng, batch * 3, 0.0, 1.0);
        let close = |a: &[f32], b: &[f32]| {
            assert_eq!(a.len(), b.len());
            for (u, v) in a.iter().zip(b) {
                assert!((u - v).abs() <= 1e-5 * (1.0 + v.abs()), "{u} vs {v}");
            }
        };
        let run = |net: &Mlp, cache: &mut MlpCache| -> Result<(Vec<f32>, Vec<f32>, Vec<f32>)> {
            let y = net.forward(&x, batch, cache)?.to_vec();
            assert_eq!(net.output(cache), y.as_slice());
            let mut g = vec![0.5f32; net.num_params()];
            let mut dx = vec![0f32; batch * 4];
            net.backward_full(&x, cache, &dout, &mut g, Some(&mut dx))?;
            Ok((y, g, dx))
        };
        let mut placed = fast.clone();
        placed.set_placement(Placement::Candle(Device::Cpu));
        assert!(placed == fast, "placement is not part of equality");
        let (mut cf, mut cc) = (MlpCache::default(), MlpCache::default());
        for round in 0..3 {
            let (yf, gf, dxf) = run(&fast, &mut cf)?;
            let (yc, gc, dxc) = run(&placed, &mut cc)?;
            close(&yc, &yf);
            close(&gc, &gf); // both added to the same 0.5 start
            close(&dxc, &dxf);
            // An optimiser-like change: the mirror must follow it.
            for n in [&mut fast, &mut placed] {
                for (i, p) in n.params_mut().iter_mut().enumerate() {
                    *p += 0.01 * ((i + round) % 7) as f32;
                }
            }
        }
        // One cache, two networks: each forward uses its own network's parameters.
        let mut placed_other = other.clone();
        placed_other.set_placement(Placement::Candle(Device::Cpu));
        let mut shared = MlpCache::default();
        let mut cache = MlpCache::default();
        for _ in 0..2 {
            close(
                placed.forward(&x, batch, &mut shared)?,
                fast.forward(&x, batch, &mut cache)?,
            );
            close(
                placed_other.forward(&x, batch, &mut shared)?,
                other.forward(&x, batch, &mut cache)?,
            );
        }
        // A cloned cache starts without a graph.
        let mut copy = shared.clone();
        let mut g = vec![0f32; placed.num_params()];
        assert!(placed.backward(&x, &mut copy, &dout, &mut g).is_err());
        Ok(())
    }
}
