//! [`GruNet`], a recurrent actor or critic: a dense embedding with ReLU, a [`Gru`], then an
//! MLP head (ReLU hidden layers, linear output). This is the shape of JaxMARL's recurrent
//! MAPPO and IPPO networks (`ActorRNN`, `CriticRNN`: FC 128, GRU 128, FC 128, output), with
//! their initialisation: orthogonal √2 for the embedding, orthogonal 2 for the head's hidden
//! layers, a chosen gain for the output layer, zero biases, Flax's GRU initialisation.
//!
//! Sequences are time-major `[T, B, ·]` as in [`crate::gru`]; acting is a sequence of one
//! step. The embedding and the head run once over all `T·B` rows.
//!
//! ```
//! use taper_tensor::gru_net::{GruNet, GruNetCache};
//! use taper_tensor::rng::{stream, Purpose};
//! let net = GruNet::new(4, 8, 8, &[8], 2, 0.01, &mut stream(0, Purpose::Init, 0))?;
//! let mut cache = GruNetCache::default();
//! let mut h = vec![0f32; 3 * net.hidden_dim()];
//! // Three rows act for one step; the memory carries on.
//! let logits = net.forward_seq(&[0.5; 12], 1, 3, &h, None, &mut cache)?.to_vec();
//! h.copy_from_slice(cache.final_hidden());
//! assert_eq!(logits.len(), 6);
//! # Ok::<(), taper_tensor::TensorError>(())
//! ```

use crate::error::{check_len, Result};
use crate::gru::{Gru, GruCache};
use crate::mlp::{Activation, Mlp, MlpCache, MlpInit};
use rand::Rng;
use serde::{Deserialize, Serialize};

/// Dense + ReLU, GRU, MLP head. See the module doc.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct GruNet {
    embed: Mlp,
    gru: Gru,
    head: Mlp,
}

/// What [`GruNet::forward_seq`] keeps for [`GruNet::backward_seq`], reused between calls.
#[derive(Debug, Default, Clone)]
pub struct GruNetCache {
    embed: MlpCache,
    /// The embedding after ReLU `[T, B, F]`.
    e: Vec<f32>,
    gru: GruCache,
    head: MlpCache,
    /// Backward scratch: `∂L/∂(GRU outputs)` and `∂L/∂(embedding)`.
    dy: Vec<f32>,
    de: Vec<f32>,
}

impl GruNetCache {
    /// The memory after the last step of the last forward pass `[B, H]`.
    pub fn final_hidden(&self) -> &[f32] {
        self.gru.final_hidden()
    }
}

impl GruNet {
    /// A network `input → fc (ReLU) → GRU(hidden) → head_hidden… (ReLU) → output`; the output
    /// layer's orthogonal gain is `output_gain` (JaxMARL: 0.01 for logits, 1.0 for a value).
    pub fn new<R: Rng + ?Sized>(
        input: usize,
        fc: usize,
        hidden: usize,
        head_hidden: &[usize],
        output: usize,
        output_gain: f32,
        rng: &mut R,
    ) -> Result<Self> {
        let s2 = 2f32.sqrt();
        let embed = Mlp::new(&[input, fc], Activation::Relu, MlpInit::orthogonal(s2, s2), rng)?;
        let gru = Gru::new(fc, hidden, rng)?;
        let mut sizes = vec![hidden];
        sizes.extend_from_slice(head_hidden);
        sizes.push(output);
        // JaxMARL's head layers use orthogonal(2), not √2.
        let head = Mlp::new(&sizes, Activation::Relu, MlpInit::orthogonal(2.0, output_gain), rng)?;
        Ok(GruNet { embed, gru, head })
    }

    /// Input width.
    pub fn input_dim(&self) -> usize {
        self.embed.input_dim()
    }
    /// Output width.
    pub fn output_dim(&self) -> usize {
        self.head.output_dim()
    }
    /// Memory width.
    pub fn hidden_dim(&self) -> usize {
        self.gru.hidden_dim()
    }
    /// The layer widths: input, embedding, memory, head layers to the output.
    pub fn sizes(&self) -> Vec<usize> {
        let mut v = vec![self.embed.input_dim(), self.embed.output_dim()];
        v.extend_from_slice(self.head.sizes());
        v
    }
    /// Number of parameters (embedding, GRU, head).
    pub fn num_params(&self) -> usize {
        self.embed.num_params() + self.gru.num_params() + self.head.num_params()
    }
    /// The parameters as three buffers: embedding, GRU, head (an optimiser's groups).
    pub fn params_mut(&mut self) -> [&mut [f32]; 3] {
        [self.embed.params_mut(), self.gru.params_mut(), self.head.params_mut()]
    }
    /// The parameters of the three parts, in the order of [`GruNet::params_mut`].
    pub fn params(&self) -> [&[f32]; 3] {
        [self.embed.params(), self.gru.params(), self.head.params()]
    }
    /// A flat gradient of [`GruNet::num_params`] values cut into the three parts.
    pub fn grad_parts<'g>(&self, g: &'g [f32]) -> [&'g [f32]; 3] {
        let (a, rest) = g.split_at(self.embed.num_params());
        let (b, c) = rest.split_at(self.gru.num_params());
        [a, b, c]
    }
    /// A flat gradient cut into the three parts, mutably.
    pub fn grad_parts_mut<'g>(&self, g: &'g mut [f32]) -> [&'g mut [f32]; 3] {
        let (a, rest) = g.split_at_mut(self.embed.num_params());
        let (b, c) = rest.split_at_mut(self.gru.num_params());
        [a, b, c]
    }

    /// Runs `steps` steps of `rows` sequences `x` (`[T, B, in]`) from the memory `h0`
    /// (`[B, H]`), restarting a row's memory from zeros where `resets` (`[T, B]`) says;
    /// returns the outputs `[T, B, out]`. The memory after the last step is
    /// [`GruNetCache::final_hidden`].
    pub fn forward_seq<'c>(
        &self,
        x: &[f32],
        steps: usize,
        rows: usize,
        h0: &[f32],
        resets: Option<&[bool]>,
        cache: &'c mut GruNetCache,
    ) -> Result<&'c [f32]> {
        let n = steps * rows;
        check_len("GruNet input", n * self.input_dim(), x.len())?;
        let e = self.embed.forward(x, n, &mut cache.embed)?;
        cache.e.clear();
        cache.e.extend(e.iter().map(|&v| v.max(0.0)));
        let y = self
            .gru
            .forward_seq(&cache.e, steps, rows, h0, resets, &mut cache.gru)?;
        self.head.forward(y, n, &mut cache.head)
    }

    /// Backpropagation through time for the last [`GruNet::forward_seq`] (same `x` and
    /// `resets`): given `dout = ∂L/∂outputs` (`[T, B, out]`), **adds** `∂L/∂params` into
    /// `grads` (laid out as [`GruNet::grad_parts`]).
    pub fn backward_seq(
        &self,
        x: &[f32],
        resets: Option<&[bool]>,
        cache: &mut GruNetCache,
        dout: &[f32],
        grads: &mut [f32],
    ) -> Result<()> {
        check_len("GruNet gradient buffer", self.num_params(), grads.len())?;
        let [g_embed, g_gru, g_head] = self.grad_parts_mut(grads);
        let GruNetCache {
            embed,
            e,
            gru,
            head,
            dy,
            de,
        } = cache;
        let y = gru.out_slice();
        dy.resize(y.len(), 0.0);
        self.head.backward_full(y, head, dout, g_head, Some(&mut dy[..]))?;
        de.resize(e.len(), 0.0);
        self.gru.backward_seq(e, resets, gru, dy, g_gru, Some(&mut de[..]))?;
        // ReLU: no gradient where the embedding was cut to zero.
        for (d, &v) in de.iter_mut().zip(e.iter()) {
            if v <= 0.0 {
                *d = 0.0;
            }
        }
        self.embed.backward(x, embed, de, g_embed)
    }

    /// The parameters as candle tensors: `{prefix}.embed.0.*`, `{prefix}.gru.*` (see
    /// [`Gru::to_tensors`]) and `{prefix}.head.{l}.*`.
    pub fn to_tensors(&self, prefix: &str) -> Result<Vec<(String, candle_core::Tensor)>> {
        let mut v = self.embed.to_tensors(&format!("{prefix}.embed"))?;
        v.extend(self.gru.to_tensors(&format!("{prefix}.gru"))?);
        v.extend(self.head.to_tensors(&format!("{prefix}.head"))?);
        Ok(v)
    }

    /// Loads tensors written by [`GruNet::to_tensors`] with the same prefix, checking shapes;
    /// on an error nothing changes.
    pub fn load_tensors(
        &mut self,
        prefix: &str,
        tensors: &std::collections::HashMap<String, candle_core::Tensor>,
    ) -> Result<()> {
        let mut next = self.clone();
        next.embed.load_tensors(&format!("{prefix}.embed"), tensors)?;
        next.gru.load_tensors(&format!("{prefix}.gru"), tensors)?;
        next.head.load_tensors(&format!("{prefix}.head"), tensors)?;
        *self = next;
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::rng::{stream, Purpose};
    use candle_core::{Device, Tensor, Var};

    /// The hand-written backward pass through time against candle's autodiff of the same
    /// network unrolled over the steps, resets included.
    #[test]
    fn gradients_match_candle_autodiff() -> candle_core::Result<()> {
        let (t, b, i, f, h, o) = (6usize, 3usize, 5usize, 7usize, 6usize, 4usize);
        let mut rng = stream(3, Purpose::Init, 0);
        let mut net = GruNet::new(i, f, h, &[8], o, 0.5, &mut rng).unwrap();
        // Non-zero biases everywhere.
        for part in net.params_mut() {
            for (k, p) in part.iter_mut().enumerate() {
                if *p == 0.0 {
                    *p = 0.05 * (k as f32 * 0.77).sin();
                }
            }
        }
        let x = crate::init::normal(&mut rng, t * b * i, 0.0, 1.0);
        let h0 = crate::init::normal(&mut rng, b * h, 0.0, 0.5);
        let resets: Vec<bool> = (0..t * b).map(|k| k % 5 == 2).collect();
        let target = crate::init::normal(&mut rng, t * b * o, 0.0, 1.0);
        let mut cache = GruNetCache::default();
        let y = net
            .forward_seq(&x, t, b, &h0, Some(&resets), &mut cache)
            .unwrap()
            .to_vec();
        let dout: Vec<f32> = y.iter().zip(&target).map(|(a, b)| a - b).collect();
        let mut g = vec![0f32; net.num_params()];
        net.backward_seq(&x, Some(&resets), &mut cache, &dout, &mut g).unwrap();

        let named = net.to_tensors("n").unwrap();
        let vars: Vec<(String, Var)> = named
            .into_iter()
            .map(|(k, v)| (k, Var::from_tensor(&v).unwrap()))
            .collect();
        let get = |name: &str| vars.iter().find(|(k, _)| k == name).unwrap().1.as_tensor().clone();
        let dev = Device::Cpu;
        let sig = |v: &Tensor| -> candle_core::Result<Tensor> { (v.neg()?.exp()? + 1.0)?.recip() };
        let (w_e, b_e) = (get("n.embed.0.weight"), get("n.embed.0.bias"));
        let (w_i, b_i) = (get("n.gru.weight_ih"), get("n.gru.bias_ih"));
        let (w_h, b_hn) = (get("n.gru.weight_hh"), get("n.gru.bias_hn"));
        let mut hs = Tensor::from_vec(h0.clone(), (b, h), &dev)?;
        let mut outs = Vec::new();
        for s in 0..t {
            let xs = Tensor::from_vec(x[s * b * i..(s + 1) * b * i].to_vec(), (b, i), &dev)?;
            let keep: Vec<f32> = resets[s * b..(s + 1) * b]
                .iter()
                .map(|&r| if r { 0.0 } else { 1.0 })
                .collect();
            let keep = Tensor::from_vec(keep, (b, 1), &dev)?;
            let hp = hs.broadcast_mul(&keep)?;
            let e = xs.matmul(&w_e.t()?)?.broadcast_add(&b_e)?.relu()?;
            let gi = e.matmul(&w_i.t()?)?.broadcast_add(&b_i)?;
            let gh = hp.matmul(&w_h.t()?)?;
            let r = sig(&(gi.narrow(1, 0, h)? + gh.narrow(1, 0, h)?)?)?;
            let z = sig(&(gi.narrow(1, h, h)? + gh.narrow(1, h, h)?)?)?;
            let hn = gh.narrow(1, 2 * h, h)?.broadcast_add(&b_hn)?;
            let n = (gi.narrow(1, 2 * h, h)? + (r * hn)?)?.tanh()?;
            hs = ((z.affine(-1.0, 1.0)? * n)? + (z * hp)?)?;
            let mut a = hs.clone();
            for l in 0..2 {
                let w = get(&format!("n.head.{l}.weight"));
                let bb = get(&format!("n.head.{l}.bias"));
                a = a.matmul(&w.t()?)?.broadcast_add(&bb)?;
                if l == 0 {
                    a = a.relu()?;
                }
            }
            outs.push(a);
        }
        let yt = Tensor::cat(&outs, 0)?;
        for (a, b) in y.iter().zip(yt.flatten_all()?.to_vec1::<f32>()?) {
            assert!((a - b).abs() < 1e-5, "forward {a} vs {b}");
        }
        let tt = Tensor::from_vec(target, (t * b, o), &dev)?;
        let loss = ((yt - tt)?.sqr()?.sum_all()? * 0.5)?;
        let gs = loss.backward()?;
        let mut flat = Vec::new();
        for (_, v) in &vars {
            flat.extend(gs.get(v.as_tensor()).unwrap().flatten_all()?.to_vec1::<f32>()?);
        }
        assert_eq!(flat.len(), g.len());
        for (k, (a, b)) in g.iter().zip(&flat).enumerate() {
            assert!((a - b).abs() < 1e-4 * (1.0 + b.abs()), "grad {k}: {a} vs {b}");
        }
        Ok(())
    }

    #[test]
    fn tensors_round_trip() {
        let mut rng = stream(1, Purpose::Init, 0);
        let a = GruNet::new(3, 4, 5, &[6], 2, 0.01, &mut rng).unwrap();
        let mut b = GruNet::new(3, 4, 5, &[6], 2, 0.01, &mut rng).unwrap();
        assert_ne!(a, b);
        let t: std::collections::HashMap<_, _> = a.to_tensors("x").unwrap().into_iter().collect();
        b.load_tensors("x", &t).unwrap();
        assert_eq!(a, b);
        let mut c = GruNet::new(3, 4, 6, &[6], 2, 0.01, &mut rng).unwrap();
        let before = c.clone();
        assert!(c.load_tensors("x", &t).is_err());
        assert_eq!(c, before, "a failed load changes nothing");
    }
}
