#!/usr/bin/env bash
# The GPU check: builds taper with CUDA, runs the CUDA-gated tests (the candle graph and one
# PPO and one MADDPG update on cuda:0 against the fast path, a run moved between the GPU and
# the CPU), then the backends bench (one PPO and one MAPPO gradient step at B = 64 … 65 536 on
# the fast path, candle on the CPU and candle on cuda:0) and prints it as one table, then the
# GRPO policy's bench (sampling and training tokens/s, CPU and cuda:0, batches of 128 and
# 2048 rows) and a short GRPO run with --device cuda:0.
#
# Needs: an NVIDIA GPU, the CUDA toolkit (nvcc) and a Rust toolchain. Takes about 10 minutes
# on a 16-core machine (most of it the CUDA build of candle's kernels).
#
# Usage: scripts/gpu-check.sh [--bench-only]
set -euo pipefail
cd "$(dirname "$0")/.."

if ! command -v nvcc >/dev/null; then
    echo "gpu-check: nvcc not found; install the CUDA toolkit (candle's cuda feature compiles its kernels with it)" >&2
    exit 1
fi
nvidia-smi --query-gpu=name,memory.total,driver_version --format=csv,noheader || true
nvcc --version | tail -n 1

if [[ "${1:-}" != "--bench-only" ]]; then
    echo "== build (release, --features cuda)"
    cargo build --release -p taper-cli --features cuda
    echo "== CUDA-gated tests"
    cargo test --release -p taper-tensor --features cuda --lib -- cuda
    cargo test --release -p taper-algos --features cuda --test algos -- backends::
    cargo test --release -p taper-cli --features cuda --test cli -- backend::
    echo "== a short GRPO run on cuda:0"
    ./target/release/taper train --algo grpo --env SeqCopy-v0 --device cuda:0 --total-steps 2560 \
        --out "$(mktemp -d)/grpo-cuda" --quiet && echo "grpo trained on cuda:0"
fi

echo "== backends bench"
cargo bench --bench backends --features cuda -- --noplot
python3 scripts/backend_table.py

echo "== GRPO policy bench (tokens/s of sampling and training, the CPU's host kernels against cuda:0)"
cargo bench --bench grpo --features cuda -- --noplot 'grpo_default_model_(cpu|cuda0)_b' 2>&1 | grep -E "^grpo|thrpt:"
