//! Inventory benchmarks: simulated periods per second of the fast single-store simulator
//! (through the `Env` API), and one HDPO gradient step at batch 1024 × 50 periods (forward
//! simulation and hand-written BPTT), against the same step through candle's autodiff; the
//! same two for one warehouse with 3 stores (symmetry-aware policy).
//!
//! Run: `cargo bench --bench inventory`.

use criterion::{black_box, criterion_group, criterion_main, Criterion, Throughput};
use taper::algos::hdpo::store::{candle_loss_and_grad, loss_and_grad, BpttWorkspace, Scenarios, StorePolicy};
use taper::envs::inventory::{SingleStore, StoreConfig};
use taper::envs::{Action, Env};
use taper::tensor::rng::{stream, Purpose};

fn bench_simulator(c: &mut Criterion) {
    let mut g = c.benchmark_group("inventory_env");
    g.throughput(Throughput::Elements(1000));
    let cfg = StoreConfig {
        lead_time: 4,
        horizon: usize::MAX,
        ..StoreConfig::lost_sales()
    };
    let mut env = SingleStore::new(cfg).unwrap();
    let mut obs = vec![0f32; 4];
    env.reset_into(Some(0), &mut obs).unwrap();
    g.bench_function("lost_sales_L4_1000_periods", |b| {
        b.iter(|| {
            for _ in 0..1000 {
                let ip: f32 = obs.iter().sum();
                let q = (28.0 - ip).clamp(0.0, 5.0);
                env.step_into(Action::Continuous(&[q]), &mut obs).unwrap();
            }
            black_box(obs[0])
        })
    });
    g.finish();
}

fn bench_hdpo_step(c: &mut Criterion) {
    let store = StoreConfig {
        lead_time: 2,
        p: 9.0,
        ..StoreConfig::lost_sales()
    };
    let mut rng = stream(0, Purpose::Init, 0);
    let policy = StorePolicy::new(&store, &[32, 32, 32], &mut rng).unwrap();
    let mut srng = stream(0, Purpose::Other(1), 0);
    let scen = Scenarios::sample(&store, 1024, 50, &mut srng);
    let idx: Vec<usize> = (0..1024).collect();
    let mut grads = vec![0f32; policy.net.num_params()];
    let mut ws = BpttWorkspace::default();
    let mut g = c.benchmark_group("hdpo_gradient_step_b1024_t50");
    g.sample_size(20);
    g.bench_function("taper_bptt", |b| {
        b.iter(|| black_box(loss_and_grad(&policy, &store, &scen, &idx, &mut ws, &mut grads).unwrap()))
    });
    g.bench_function("candle_autodiff", |b| {
        b.iter(|| black_box(candle_loss_and_grad(&policy, &store, &scen, &idx).unwrap()))
    });
    g.finish();
}

fn bench_network(c: &mut Criterion) {
    use taper::algos::hdpo::network::{
        candle_network_loss_and_grad, network_loss_and_grad, NetBpttWorkspace, NetworkPolicy,
    };
    use taper::envs::inventory::{NetScenarios, Network, NetworkConfig, NetworkEnv};
    let cfg = NetworkConfig {
        horizon: usize::MAX,
        ..NetworkConfig::one_warehouse(3, 0)
    };
    let net = Network::new(cfg.clone()).unwrap();
    let levels = [100.0f32, 21.0, 25.0, 16.0];
    let mut env = NetworkEnv::new(cfg).unwrap();
    let mut obs = vec![0f32; net.state_dim()];
    let mut q = vec![0f32; net.locations()];
    env.reset_into(Some(0), &mut obs).unwrap();
    let mut g = c.benchmark_group("inventory_network_env");
    g.throughput(Throughput::Elements(1000));
    g.bench_function("warehouse_3_stores_1000_periods", |b| {
        b.iter(|| {
            for _ in 0..1000 {
                net.echelon_orders(&obs, &levels, &mut q);
                env.step_into(Action::Continuous(&q), &mut obs).unwrap();
            }
            black_box(obs[0])
        })
    });
    g.finish();
    let mut rng = stream(0, Purpose::Init, 0);
    let policy = NetworkPolicy::new(&net, 64, &[16, 16], &[32, 32], &mut rng).unwrap();
    let mut srng = stream(0, Purpose::Other(1), 0);
    let scen = NetScenarios::sample(&net, 1024, 50, &mut srng);
    let idx: Vec<usize> = (0..1024).collect();
    let mut grads = vec![0f32; policy.num_params()];
    let mut ws = NetBpttWorkspace::default();
    let mut g = c.benchmark_group("hdpo_warehouse3_gradient_step_b1024_t50");
    g.sample_size(10);
    g.bench_function("taper_bptt", |b| {
        b.iter(|| black_box(network_loss_and_grad(&policy, &net, &scen, &idx, &mut ws, &mut grads).unwrap()))
    });
    g.bench_function("candle_autodiff", |b| {
        b.iter(|| black_box(candle_network_loss_and_grad(&policy, &net, &scen, &idx).unwrap()))
    });
    g.finish();
}

criterion_group!(benches, bench_simulator, bench_hdpo_step, bench_network);
criterion_main!(benches);
