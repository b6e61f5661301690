#!/usr/bin/env bash
# STAC's β sweep on RiskyPointMass-v0 (β = 0, 0.25, 0.5; 3 seeds; 20k env steps each), then
# 100 deterministic evaluation episodes of each run from the same starts with their
# trajectories traced, and the figure and table of docs/critics.md.
#
# Usage: bash scripts/stac_risky.sh [OUT_DIR]   (about 12 minutes on 2 cores)
set -euo pipefail
out=${1:-runs/stac-risky}
cargo build --release -p taper-cli
mkdir -p "$out"
taper="$out/taper"
cp target/release/taper "$taper"
for beta in 0 0.25 0.5; do
  printf 'algo = "stac"\nenv = "RiskyPointMass-v0"\n\n[stac]\nbeta = %s\n' "$beta" > "$out/beta$beta.toml"
  $taper train --config "$out/beta$beta.toml" --seeds 1,2,3 --total-steps 20000 --out "$out/beta$beta" --quiet --overwrite
  for seed in 1 2 3; do
    run="$out/beta$beta/s$seed"
    $taper eval "$run" --episodes 100 --seed 0 --deterministic --json --trace "$run/trace.jsonl" > "$run/eval.json"
  done
done
python3 scripts/stac_risky_plot.py "$out"
