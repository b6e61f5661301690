//! The recurrent networks of IPPO and MAPPO (`network = "gru"`): one minibatch's pass of the
//! GRU actor at MAPPO's shapes (18 → dense 128 → GRU 128 → 128 → 5 logits, 12 rows × 128
//! steps, forward and backpropagation through time), by taper's hand-written pass and by
//! candle's autodiff of the same network unrolled over the steps; and one whole MAPPO GRU
//! iteration (16 envs × 3 agents × 128 steps: rollout, GAE, 4 epochs × 4 minibatches).
//!
//! Run: `cargo bench --bench recurrent`.

use candle_core::{Device, Tensor, Var};
use criterion::{black_box, criterion_group, criterion_main, Criterion};
use taper::algos::mappo::{MaPpo, MappoConfig};
use taper::algos::Algorithm;
use taper::tensor::gru_net::{GruNet, GruNetCache};
use taper::tensor::rng::{stream, Purpose};

const T: usize = 128;
const B: usize = 12;

/// The same network as a candle graph: one forward over the steps and autodiff.
fn candle_pass(vars: &[(String, Var)], x: &[f32], keep: &[Tensor], dout: &Tensor) -> candle_core::Result<f32> {
    let get = |name: &str| vars.iter().find(|(k, _)| k == name).unwrap().1.as_tensor().clone();
    let dev = Device::Cpu;
    let h = 128;
    let (w_e, b_e) = (get("a.embed.0.weight"), get("a.embed.0.bias"));
    let (w_i, b_i) = (get("a.gru.weight_ih"), get("a.gru.bias_ih"));
    let (w_h, b_hn) = (get("a.gru.weight_hh"), get("a.gru.bias_hn"));
    let xs = Tensor::from_slice(x, (T * B, 18), &dev)?;
    let e = xs.matmul(&w_e.t()?)?.broadcast_add(&b_e)?.relu()?;
    let gi_all = e.matmul(&w_i.t()?)?.broadcast_add(&b_i)?;
    let mut hs = Tensor::zeros((B, h), candle_core::DType::F32, &dev)?;
    let mut outs = Vec::with_capacity(T);
    for (t, keep_t) in keep.iter().enumerate() {
        let gi = gi_all.narrow(0, t * B, B)?;
        hs = hs.broadcast_mul(keep_t)?;
        let gh = hs.matmul(&w_h.t()?)?;
        let sig = |v: Tensor| -> candle_core::Result<Tensor> { (v.neg()?.exp()? + 1.0)?.recip() };
        let r = sig((gi.narrow(1, 0, h)? + gh.narrow(1, 0, h)?)?)?;
        let z = sig((gi.narrow(1, h, h)? + gh.narrow(1, h, h)?)?)?;
        let n = (gi.narrow(1, 2 * h, h)? + (r * gh.narrow(1, 2 * h, h)?.broadcast_add(&b_hn)?)?)?.tanh()?;
        hs = ((z.affine(-1.0, 1.0)? * n)? + (z * hs)?)?;
        outs.push(hs.clone());
    }
    let y = Tensor::cat(&outs, 0)?;
    let a = y
        .matmul(&get("a.head.0.weight").t()?)?
        .broadcast_add(&get("a.head.0.bias"))?
        .relu()?;
    let out = a
        .matmul(&get("a.head.1.weight").t()?)?
        .broadcast_add(&get("a.head.1.bias"))?;
    let loss = (out * dout)?.sum_all()?;
    let g = loss.backward()?;
    Ok(g.get(vars[0].1.as_tensor())
        .map(|t| t.dims().len() as f32)
        .unwrap_or(0.0))
}

fn bench_recurrent(c: &mut Criterion) {
    let mut rng = stream(0, Purpose::Init, 0);
    let net = GruNet::new(18, 128, 128, &[128], 5, 0.01, &mut rng).unwrap();
    let x = taper::tensor::init::normal(&mut rng, T * B * 18, 0.0, 1.0);
    let dout = taper::tensor::init::normal(&mut rng, T * B * 5, 0.0, 0.01);
    let resets: Vec<bool> = (0..T * B).map(|i| (i / B).is_multiple_of(25)).collect();
    let h0 = vec![0f32; B * 128];
    let mut cache = GruNetCache::default();
    let mut grads = vec![0f32; net.num_params()];
    let mut g = c.benchmark_group("recurrent");
    g.bench_function("gru_actor_fwd_bwd_12x128_fast", |bench| {
        bench.iter(|| {
            net.forward_seq(&x, T, B, &h0, Some(&resets), &mut cache).unwrap();
            grads.fill(0.0);
            net.backward_seq(&x, Some(&resets), &mut cache, &dout, &mut grads)
                .unwrap();
            black_box(grads[0])
        })
    });
    let vars: Vec<(String, Var)> = net
        .to_tensors("a")
        .unwrap()
        .into_iter()
        .map(|(k, t)| (k, Var::from_tensor(&t).unwrap()))
        .collect();
    let dt = Tensor::from_slice(&dout, (T * B, 5), &Device::Cpu).unwrap();
    let keep: Vec<Tensor> = resets
        .chunks(B)
        .map(|r| {
            let k: Vec<f32> = r.iter().map(|&z| if z { 0.0 } else { 1.0 }).collect();
            Tensor::from_vec(k, (B, 1), &Device::Cpu).unwrap()
        })
        .collect();
    g.bench_function("gru_actor_fwd_bwd_12x128_candle", |bench| {
        bench.iter(|| black_box(candle_pass(&vars, &x, &keep, &dt).unwrap()))
    });
    let mut l = MaPpo::new(MappoConfig::mappo_gru(), "SimpleSpread-v3", &Default::default(), 1).unwrap();
    g.sample_size(10);
    g.bench_function("mappo_gru_iteration_16x3x128", |bench| {
        bench.iter(|| black_box(l.learn(2048).unwrap().progress.global_step))
    });
    g.finish();
}

criterion_group!(benches, bench_recurrent);
criterion_main!(benches);
