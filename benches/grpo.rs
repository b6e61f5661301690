//! The GRPO policy's two hot paths, for the default model (2 blocks, width 64, 4 heads, MLP
//! 256, vocabulary 15) on SeqAddition-v0 (3 digits), at 128 rows (GRPO's default batch size;
//! 16 prompts × 8 completions here, 8 × 16 in the default config) and at 2048 rows (256 × 8),
//! on the CPU (with the host kernels, the default, and with candle's graph) and, built with
//! `--features cuda`, on `cuda:0`: sampling with the KV cache (tokens generated per second;
//! the sampler prefills each distinct prompt once, and `sample_kv_cache_distinct_prompts`
//! samples as many rows of distinct prompts, with nothing to share), and one training
//! step (the scoring pass over prompt and completion, the backward pass, the clip and Adam;
//! completion slots trained per second; the host kernels run a group's prompt once, and
//! `train_step_distinct_prompts` trains as many rows of distinct prompts). Throughput counts rows × completion slots in both,
//! as the PyTorch script does. `benches/peers/bench_grpo_torch.py` runs the same
//! model and batch in PyTorch.
//!
//! Run: `cargo bench --bench grpo`.

use criterion::{black_box, criterion_group, criterion_main, Criterion, Throughput};
use rand::SeedableRng;
use rand_chacha::ChaCha8Rng;
use taper::algos::grpo::sampler::{sample, Batch};
use taper::envs::seq::{make_task, Split};
use taper::tensor::optim::AdamConfig;
use taper::tensor::transformer::{Transformer, TransformerConfig};
use taper::tensor::var_adam::{clip_grad_norm, VarAdam};

/// The CPU with the host kernels (the default there) and with candle's graph, and `cuda:0`
/// where CUDA is compiled in and present: (name, device, host kernels).
fn devices() -> Vec<(String, candle_core::Device, bool)> {
    let mut v = vec![
        ("cpu".to_string(), candle_core::Device::Cpu, true),
        ("cpu_candle".to_string(), candle_core::Device::Cpu, false),
    ];
    if let Ok(d) = taper::tensor::device::DeviceSpec::Cuda(0).device() {
        v.push(("cuda0".to_string(), d, false));
    }
    v
}

fn bench_grpo(c: &mut Criterion) {
    for (name, dev, host) in devices() {
        // GRPO's default batch, and a large one where a GPU can pay.
        for prompts_n in [16usize, 256] {
            bench_on(c, &name, &dev, host, prompts_n);
        }
    }
}

fn bench_on(c: &mut Criterion, name: &str, dev: &candle_core::Device, host: bool, prompts_n: usize) {
    let task = make_task("SeqAddition-v0", &Default::default()).unwrap();
    let cfg = TransformerConfig {
        vocab: 15,
        context: task.max_prompt_len() + task.max_new_tokens(),
        d_model: 64,
        n_heads: 4,
        n_layers: 2,
        d_ff: 256,
    };
    let mut model = Transformer::new(cfg, 0, dev).unwrap();
    model.set_host_kernels(host).unwrap();
    let mut rng = ChaCha8Rng::seed_from_u64(0);
    let prompts: Vec<Vec<u32>> = (0..prompts_n)
        .flat_map(|_| {
            let p = task.sample_prompt(&mut rng, Split::Train).unwrap();
            std::iter::repeat_n(p, 8)
        })
        .collect();
    // Fixed completions, so every measured step trains the same tokens.
    let comp = sample(&model, &prompts, task.max_new_tokens(), 1.0, false, &mut rng).unwrap();
    // Counted as the work done, as the PyTorch script counts it: every row steps to the budget
    // (a row that stopped keeps its slot in the batch).
    let generated = (prompts.len() * task.max_new_tokens()) as u64;
    let mut g = c.benchmark_group(format!("grpo_default_model_{name}_b{}", prompts.len()));
    g.sample_size(10);
    g.throughput(Throughput::Elements(generated));
    g.bench_function("sample_kv_cache", |b| {
        b.iter(|| {
            let mut r = ChaCha8Rng::seed_from_u64(0);
            black_box(sample(&model, &prompts, task.max_new_tokens(), 1.0, false, &mut r).unwrap())
        })
    });
    // The same number of rows with every prompt distinct, so no prefill is shared (the
    // PyTorch script's batch has distinct prompts).
    let distinct: Vec<Vec<u32>> = (0..prompts.len())
        .map(|_| task.sample_prompt(&mut rng, Split::Train).unwrap())
        .collect();
    g.bench_function("sample_kv_cache_distinct_prompts", |b| {
        b.iter(|| {
            let mut r = ChaCha8Rng::seed_from_u64(0);
            black_box(sample(&model, &distinct, task.max_new_tokens(), 1.0, false, &mut r).unwrap())
        })
    });
    // One training step per iteration, on GRPO's groups and on as many rows of distinct
    // prompts (nothing to share in the scoring pass: the PyTorch script's case).
    let comp_d = sample(&model, &distinct, task.max_new_tokens(), 1.0, false, &mut rng).unwrap();
    let mut opt = VarAdam::new(AdamConfig::default(), model.vars()).unwrap();
    for (name, p, c) in [
        ("train_step", &prompts, &comp.tokens),
        ("train_step_distinct_prompts", &distinct, &comp_d.tokens),
    ] {
        let batch = Batch::new(p, c).unwrap();
        let coef = vec![1f32; batch.rows * batch.c];
        g.throughput(Throughput::Elements((batch.rows * batch.c) as u64));
        g.bench_function(name, |b| {
            b.iter(|| {
                let scored = batch.score(&model).unwrap();
                let mut grads = model.score_grads(&scored, &coef).unwrap();
                clip_grad_norm(&mut grads, 1.0).unwrap();
                opt.step(model.vars(), &grads).unwrap();
            })
        });
    }
    g.finish();
}

criterion_group!(benches, bench_grpo);
criterion_main!(benches);
