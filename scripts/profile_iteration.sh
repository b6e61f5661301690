#!/usr/bin/env bash
# Where one iteration's time goes: PPO on CartPole-v1 (CleanRL's settings) and IPPO on
# SimpleSpread-v3 (N = 3, 16 envs × 128 steps, the JaxMARL comparison's shapes), sampled by
# `perf record` with DWARF call graphs and summed per stage (a stage's share includes what it
# calls). The table of docs/performance.md.
#
# Needs `perf` (linux-tools) and permission to sample (perf_event_paranoid ≤ 1, or root).
# Usage: bash scripts/profile_iteration.sh [OUT_DIR]   (about a minute)
set -euo pipefail
out=${1:-runs/profile}
cargo build --release -p taper-cli
mkdir -p "$out"
taper="$out/taper"
cp target/release/taper "$taper"
printf '[ippo]\nnum_envs = 16\nnum_steps = 128\n' > "$out/ippo.toml"
profile() { # name, then the train flags
  local name=$1
  shift
  rm -rf "$out/$name"
  perf record -q -F 1500 --call-graph dwarf,32768 -o "$out/$name.data" \
    "$taper" train "$@" --out "$out/$name" --quiet >/dev/null 2>&1
  perf report -i "$out/$name.data" --children --sort symbol -g none 2>/dev/null >"$out/$name.txt"
  python3 - "$out/$name.txt" "$name" <<'PY'
import re, sys
# Stage -> the symbol whose inclusive share it is (first match wins).
stages = [
    ("iteration (all of the learner's work)", r"OnPolicy<R>::iteration$"),
    ("rollout: policy forward, sampling, env steps", r"taper_algos::rollout::collect$"),
    ("  env steps (resets included)", r"(CartPole as taper_envs::env::Env>::step_into|VecParallel<E>::step)$"),
    ("advantages (GAE)", r"taper_tensor::returns::gae_into$"),
    ("update: minibatch passes, clipping, Adam", r"onpolicy::PpoUpdate::update$"),
    ("  gradient-norm clipping", r"taper_tensor::optim::clip_grad_norm$"),
    ("  Adam", r"taper_tensor::optim::Adam::step$"),
    ("  safe-step radius (step_r)", r"taper_algos::safe_step::limit_step$"),
    ("logging and checkpoints", r"(MetricsWriter::write|save_checkpoint)$"),
    ("across stages: MLP forward passes", r"taper_tensor::mlp::Mlp::forward$"),
    ("across stages: MLP backward passes", r"taper_tensor::mlp::Mlp::backward$"),
    ("across stages: matrix products (gemm)", r"taper_tensor::linalg::gemm_into$"),
    ("across stages: softmax and log-probabilities", r"Categorical::set_logits$"),
]
rows = {}
for line in open(sys.argv[1]):
    m = re.match(r"\s+([\d.]+)%\s+([\d.]+)%\s+\[\.\]\s+(.*?)\s+-\s+-\s*$", line)
    if not m:
        continue
    sym = m.group(3).strip()
    for label, pat in stages:
        if re.search(pat, sym):
            rows[label] = rows.get(label, 0.0) + float(m.group(1))
print(f"\n{sys.argv[2]}: share of sampled time (inclusive)")
for label, _ in stages:
    print(f"  {label:<48} {rows.get(label, 0.0):5.1f}%")
PY
}
profile ppo-cartpole --env CartPole-v1 --seed 1 --total-steps 100000
profile ippo-spread --algo ippo --config "$out/ippo.toml" --seed 1 --total-steps 1000000
