#!/usr/bin/env bash
# MAPPO on SimpleSpread-v3 (N = 3) with the feed-forward networks (the default), with the
# GRU networks (`network = "gru"`), and with the GRU networks without value normalisation (as
# JaxMARL's MAPPO), 3 seeds each, 2M env steps (JaxMARL's MAPPO budget), one run at a time so
# that each run's wall time is its own; then the curves in docs/img/ and the wall time to
# per-agent returns from -18 to -12.
#
# Usage: bash scripts/mappo_gru.sh [OUT_DIR]   (about 40 minutes on 2 cores)
# The peer, JaxMARL's recurrent MAPPO on the same machine: see benches/peers/e2e/README.md
#   (cd benches/peers && /tmp/peers-venv-jax/bin/python e2e/run_jm.py mappo 2e6 0)
set -euo pipefail
out=${1:-runs/mappo-gru}
cargo build --release -p taper-cli
taper=target/release/taper
mkdir -p "$out"
printf 'algo = "mappo"\nenv = "SimpleSpread-v3"\n' > "$out/mlp.toml"
printf 'algo = "mappo"\nenv = "SimpleSpread-v3"\n\n[mappo]\nnetwork = "gru"\n' > "$out/gru.toml"
printf 'algo = "mappo"\nenv = "SimpleSpread-v3"\n\n[mappo]\nnetwork = "gru"\nvalue_norm = false\n' > "$out/gru_novn.toml"
for net in gru mlp gru_novn; do
  for seed in 0 1 2; do
    $taper train --config "$out/$net.toml" --total-steps 2000000 --seed $seed --out "$out/$net/s$seed" --quiet --overwrite
  done
done
$taper plot "$out"/mlp/s* "$out"/gru/s* --smooth 5 --out docs/img/mappo-gru-steps.png
$taper plot "$out"/mlp/s* "$out"/gru/s* --smooth 5 --x time_elapsed --out docs/img/mappo-gru-time.png
$taper plot "$out"/gru/s* "$out"/gru_novn/s* --smooth 5 --out docs/img/mappo-gru-value-norm.png
for net in mlp gru gru_novn; do
  for target in -18 -17 -16 -15 -14 -13 -12; do
    echo "== $net, per-agent return $target"
    python3 scripts/time_to_target.py $target "$out"/$net/s*
  done
done
