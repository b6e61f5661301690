//! taper-tensor benchmarks: the MLP update (18→64→64→5, tanh, batch 2048, forward, backward
//! and Adam) against raw candle, the fast tanh against candle's, the rollout forward pass,
//! and the small matrix products of PPO's networks through `taper_tensor::linalg` against
//! `gemm` called directly (the AVX-512 kernel takes some of them with `gemm`'s bits).
//!
//! Run: `cargo bench --bench tensor`. Compare with `benches/peers/bench_mlp_update.py`
//! (PyTorch) on the same machine: `scripts/bench_mlp_vs_torch.sh`.

use candle_core::{DType, Device, Tensor, D};
use candle_nn::{AdamW, Module, Optimizer, ParamsAdamW, VarBuilder, VarMap};
use criterion::{black_box, criterion_group, criterion_main, Criterion};
use rand::Rng;
use taper::tensor::mlp::{ChunkedGrad, MlpCache};
use taper::tensor::prelude::*;

const B: usize = 2048;

fn data() -> (Vec<f32>, Vec<usize>) {
    let mut rng = stream(0, Purpose::Other(1), 0);
    let x = taper::tensor::init::normal(&mut rng, B * 18, 0.0, 1.0);
    let y = (0..B).map(|_| rng.random_range(0..5)).collect();
    (x, y)
}

/// One taper update: chunked forward/backward (cross-entropy), Adam.
struct TaperUpdate {
    net: Mlp,
    opt: Adam,
    ws: ChunkedGrad,
    grads: Vec<f32>,
}

impl TaperUpdate {
    fn new() -> Self {
        let mut rng = stream(0, Purpose::Init, 0);
        let net = Mlp::new(&[18, 64, 64, 5], Activation::Tanh, MlpInit::TorchDefault, &mut rng).unwrap();
        let n = net.num_params();
        TaperUpdate {
            net,
            opt: Adam::new(
                AdamConfig {
                    lr: 3e-4,
                    ..Default::default()
                },
                n,
            ),
            ws: ChunkedGrad::default(),
            grads: vec![0.0; n],
        }
    }
    fn step(&mut self, x: &[f32], y: &[usize]) -> f64 {
        let inv = 1.0 / B as f32;
        let loss = self
            .net
            .grad_chunked(x, B, &mut self.ws, &mut self.grads, |r0, out, dout| {
                let mut l = 0f64;
                for (k, (row, d)) in out.chunks_exact(5).zip(dout.chunks_exact_mut(5)).enumerate() {
                    let m = row.iter().cloned().fold(f32::NEG_INFINITY, f32::max);
                    let mut e = [0f32; 5];
                    let mut s = 0f32;
                    for j in 0..5 {
                        e[j] = (row[j] - m).exp();
                        s += e[j];
                    }
                    let t = y[r0 + k];
                    for j in 0..5 {
                        d[j] = (e[j] / s - if j == t { 1.0 } else { 0.0 }) * inv;
                    }
                    l -= (row[t] - m - s.ln()) as f64;
                }
                l / B as f64
            })
            .unwrap();
        self.opt.step(&mut [(self.net.params_mut(), &self.grads[..])]).unwrap();
        loss
    }
}

fn bench_mlp_update(c: &mut Criterion) {
    let (x, y) = data();
    let mut g = c.benchmark_group("mlp_update_18-64-64-5_b2048");
    for threads in [1usize, 2] {
        let pool = rayon::ThreadPoolBuilder::new().num_threads(threads).build().unwrap();
        let mut u = TaperUpdate::new();
        g.bench_function(format!("taper_{threads}thread"), |b| {
            b.iter(|| pool.install(|| black_box(u.step(&x, &y))))
        });
    }
    // Raw candle: Linear layers, tanh, log_softmax cross-entropy, candle's AdamW (wd 0).
    let dev = Device::Cpu;
    let varmap = VarMap::new();
    let vb = VarBuilder::from_varmap(&varmap, DType::F32, &dev);
    let l1 = candle_nn::linear(18, 64, vb.pp("l1")).unwrap();
    let l2 = candle_nn::linear(64, 64, vb.pp("l2")).unwrap();
    let l3 = candle_nn::linear(64, 5, vb.pp("l3")).unwrap();
    let mut opt = AdamW::new(
        varmap.all_vars(),
        ParamsAdamW {
            lr: 3e-4,
            weight_decay: 0.0,
            ..Default::default()
        },
    )
    .unwrap();
    let xt = Tensor::from_vec(x.clone(), (B, 18), &dev).unwrap();
    let yt = Tensor::from_vec(y.iter().map(|&v| v as u32).collect::<Vec<_>>(), B, &dev).unwrap();
    g.bench_function("candle_raw", |b| {
        b.iter(|| {
            let h = l1.forward(&xt).unwrap().tanh().unwrap();
            let h = l2.forward(&h).unwrap().tanh().unwrap();
            let logits = l3.forward(&h).unwrap();
            let lsm = candle_nn::ops::log_softmax(&logits, D::Minus1).unwrap();
            let loss = candle_nn::loss::nll(&lsm, &yt).unwrap();
            opt.backward_step(&loss).unwrap();
        })
    });
    g.finish();
}

fn bench_tanh(c: &mut Criterion) {
    let mut rng = stream(0, Purpose::Other(2), 0);
    let x = taper::tensor::init::normal(&mut rng, B * 64, 0.0, 1.0);
    let mut y = vec![0f32; x.len()];
    let mut g = c.benchmark_group("tanh_2048x64");
    g.bench_function("taper_fast_tanh_slice", |b| {
        b.iter(|| taper::tensor::fastmath::tanh_slice(black_box(&x), &mut y))
    });
    g.bench_function("f32_tanh_loop", |b| {
        b.iter(|| {
            for (o, v) in y.iter_mut().zip(black_box(&x)) {
                *o = v.tanh();
            }
        })
    });
    let xt = Tensor::from_vec(x.clone(), (B, 64), &Device::Cpu).unwrap();
    g.bench_function("candle_tensor_tanh", |b| b.iter(|| black_box(xt.tanh().unwrap())));
    g.bench_function("taper_fast_tanh_candle_op", |b| {
        b.iter(|| black_box(taper::tensor::fastmath::fast_tanh(&xt).unwrap()))
    });
    g.finish();
    // A PPO minibatch's hidden layer (128 rows of 64): the bias-add and tanh in chunks of
    // values side by side, against the same arithmetic one value (one vector) at a time.
    let mut g = c.benchmark_group("bias_tanh_128x64");
    let bias = taper::tensor::init::normal(&mut rng, 64, 0.0, 0.1);
    let mut h = x[..128 * 64].to_vec();
    g.bench_function("chunked", |b| {
        b.iter(|| {
            h.copy_from_slice(&x[..128 * 64]);
            taper::tensor::fastmath::bias_tanh_inplace(black_box(&mut h), &bias)
        })
    });
    #[cfg(target_arch = "x86_64")]
    if is_x86_feature_detected!("avx512f") && is_x86_feature_detected!("fma") {
        g.bench_function("value_by_value", |b| {
            b.iter(|| {
                h.copy_from_slice(&x[..128 * 64]);
                // SAFETY: the features it is compiled for were detected above.
                unsafe { bias_tanh_value_by_value(black_box(&mut h), &bias) }
            })
        });
    }
    g.finish();
    // GELU over a DSAC-T minibatch's hidden layer (256 rows of 256), likewise.
    let mut g = c.benchmark_group("gelu_256x256");
    let xg = taper::tensor::init::normal(&mut rng, 256 * 256, 0.0, 1.0);
    let mut yg = vec![0f32; xg.len()];
    g.bench_function("chunked", |b| {
        b.iter(|| taper::tensor::fastmath::gelu_slice(black_box(&xg), &mut yg))
    });
    #[cfg(target_arch = "x86_64")]
    if is_x86_feature_detected!("avx512f") && is_x86_feature_detected!("fma") {
        g.bench_function("value_by_value", |b| {
            // SAFETY: the features it is compiled for were detected above.
            b.iter(|| unsafe { gelu_value_by_value(black_box(&xg), &mut yg) })
        });
    }
    g.finish();
}

/// GELU with the fast tanh one value after another, compiled as
/// [`bias_tanh_value_by_value`]: the form the chunked kernel replaced.
#[cfg(target_arch = "x86_64")]
#[target_feature(enable = "avx512f,avx2,fma")]
fn gelu_value_by_value(x: &[f32], y: &mut [f32]) {
    const C: f32 = 0.797_884_6;
    const A: f32 = 0.044_715;
    for (yi, &xi) in y.iter_mut().zip(x) {
        let th = taper::tensor::fastmath::tanh_fast(C * xi * (1.0 + A * xi * xi));
        *yi = 0.5 * xi * (1.0 + th);
    }
}

/// The bias-add and fast tanh one value after another, compiled for the instructions the
/// library's AVX-512 kernel uses: the form the chunked kernel replaced.
#[cfg(target_arch = "x86_64")]
#[target_feature(enable = "avx512f,avx2,fma")]
fn bias_tanh_value_by_value(h: &mut [f32], bias: &[f32]) {
    for row in h.chunks_exact_mut(bias.len()) {
        for (v, &bi) in row.iter_mut().zip(bias) {
            *v = taper::tensor::fastmath::tanh_fast(*v + bi);
        }
    }
}

fn bench_rollout_forward(c: &mut Criterion) {
    let mut rng = stream(0, Purpose::Init, 0);
    let net = Mlp::new(&[18, 64, 64, 5], Activation::Tanh, MlpInit::TorchDefault, &mut rng).unwrap();
    let mut g = c.benchmark_group("rollout_forward_18-64-64-5");
    for batch in [1usize, 4, 64] {
        let x = taper::tensor::init::normal(&mut rng, batch * 18, 0.0, 1.0);
        let mut cache = MlpCache::default();
        let mut cat = Categorical::new(5);
        g.bench_function(format!("taper_logits_logsoftmax_b{batch}"), |b| {
            b.iter(|| {
                let out = net.forward(black_box(&x), batch, &mut cache).unwrap();
                for r in out.chunks_exact(5) {
                    cat.set_logits(r, None);
                }
                black_box(cat.log_probs()[0])
            })
        });
    }
    g.finish();
}

/// `C (+)= A·B` through `gemm`, single-threaded, with the strides of `layout` ("nt", "tn"
/// or "nn", as in `taper_tensor::linalg`).
fn by_gemm(layout: &str, m: usize, n: usize, k: usize, a: &[f32], b: &[f32], c: &mut [f32]) {
    let (ka, nb) = (k as isize, n as isize);
    let ((a_cs, a_rs), (b_cs, b_rs)) = match layout {
        "nt" => ((1, ka), (ka, 1)),
        "tn" => ((m as isize, 1), (1, nb)),
        _ => ((1, ka), (1, nb)),
    };
    assert!(a.len() >= m * k && b.len() >= n * k && c.len() >= m * n);
    // SAFETY: the slices hold the m×k, k×n and m×n elements these strides reach (asserted).
    unsafe {
        gemm::gemm(
            m,
            n,
            k,
            c.as_mut_ptr(),
            1,
            nb,
            false,
            a.as_ptr(),
            a_cs,
            a_rs,
            b.as_ptr(),
            b_cs,
            b_rs,
            0.0,
            1.0,
            false,
            false,
            false,
            gemm::Parallelism::None,
        )
    }
}

fn bench_small_products(c: &mut Criterion) {
    use taper::tensor::linalg::{matmul_nn, matmul_nt, matmul_tn};
    let mut g = c.benchmark_group("small_products");
    // PPO's networks on CartPole (4 → 64 → 64 → 2, 128-row minibatches): forward products,
    // weight gradients and input gradients.
    for (layout, m, n, k) in [
        ("nt", 128, 64, 4),
        ("nt", 128, 64, 64),
        ("tn", 64, 4, 128),
        ("tn", 64, 64, 128),
        ("tn", 2, 64, 128),
        ("nn", 128, 64, 64),
        // SAC's 256-wide networks at batch 256: a weight gradient and an input gradient.
        ("tn", 256, 256, 256),
        ("nn", 256, 256, 256),
    ] {
        let mut rng = rand::rng();
        let a: Vec<f32> = (0..m * k).map(|_| rng.random_range(-1.0..1.0)).collect();
        let b: Vec<f32> = (0..n * k).map(|_| rng.random_range(-1.0..1.0)).collect();
        let mut out = vec![0f32; m * n];
        let name = format!("{layout}_{m}x{n}x{k}");
        g.bench_function(format!("{name}/taper"), |bench| {
            bench.iter(|| {
                match layout {
                    "nt" => matmul_nt(m, n, k, &a, &b, &mut out, false),
                    "tn" => matmul_tn(m, n, k, &a, &b, &mut out, false),
                    _ => matmul_nn(m, n, k, &a, &b, &mut out, false),
                }
                black_box(out[0])
            })
        });
        g.bench_function(format!("{name}/gemm"), |bench| {
            bench.iter(|| {
                by_gemm(layout, m, n, k, &a, &b, &mut out);
                black_box(out[0])
            })
        });
    }
    g.finish();
}

criterion_group!(
    benches,
    bench_mlp_update,
    bench_tanh,
    bench_rollout_forward,
    bench_small_products
);
criterion_main!(benches);
