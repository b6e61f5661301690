#!/usr/bin/env bash
# MAPPO on SimpleSpread-v3 (N = 3) with the feed-forward networks (the default) and with the
# GRU networks (`network = "gru"`), 3 seeds each, 2M env steps (JaxMARL's MAPPO budget), one
# run at a time so that each run's wall time is its own; then the curves against env steps and
# against wall time in docs/img/, and the wall time to per-agent returns of -16, -14 and -12.
#
# Usage: bash scripts/mappo_gru.sh [OUT_DIR]   (about 25 minutes on 2 cores)
# The peer, JaxMARL's recurrent MAPPO on the same machine: see benches/peers/e2e/README.md
#   (cd benches/peers && /tmp/peers-venv-jax/bin/python e2e/run_jm.py mappo 2e6 0)
set -euo pipefail
out=${1:-runs/mappo-gru}
cargo build --release -p taper-cli
taper=target/release/taper
mkdir -p "$out"
printf 'algo = "mappo"\nenv = "SimpleSpread-v3"\n' > "$out/mlp.toml"
printf 'algo = "mappo"\nenv = "SimpleSpread-v3"\n\n[mappo]\nnetwork = "gru"\n' > "$out/gru.toml"
for net in gru mlp; do
  for seed in 0 1 2; do
    $taper train --config "$out/$net.toml" --total-steps 2000000 --seed $seed --out "$out/$net/s$seed" --quiet --overwrite
  done
done
$taper plot "$out"/mlp/s* "$out"/gru/s* --smooth 5 --out docs/img/mappo-gru-steps.png
$taper plot "$out"/mlp/s* "$out"/gru/s* --smooth 5 --x time_elapsed --out docs/img/mappo-gru-time.png
for net in mlp gru; do
  for target in -16 -14 -12; do
    echo "== $net, per-agent return $target"
    python3 scripts/time_to_target.py $target "$out"/$net/s*
  done
done
