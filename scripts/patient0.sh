#!/usr/bin/env bash
# Patient-0 attribution on MADDPG runs of Simple Spread (docs/diagnostics.md): N = 3 with the
# default budget (1.5M env steps, about 25 minutes), N = 5 for 475k env steps (about 17
# minutes; MADDPG has no schedule tied to the budget, so this equals a longer run stopped
# there), then 500 seeds each at K_σ = 2 and 3, with contagion graphs.
#
# Usage: bash scripts/patient0.sh [OUT_DIR]   (about 50 minutes on 2 cores)
set -euo pipefail
out=${1:-runs/patient0}
cargo build --release -p taper-cli
mkdir -p "$out"
taper="$out/taper"
cp target/release/taper "$taper"
$taper train --algo maddpg --out "$out/maddpg-n3" --quiet --overwrite
$taper train --algo maddpg --agents 5 --total-steps 475000 --out "$out/maddpg-n5" --quiet --overwrite
$taper diagnose "$out/maddpg-n3" --episodes 500 --k-sigma 2,3 --quiet
$taper diagnose "$out/maddpg-n5" --episodes 500 --k-sigma 2,3 --quiet
# The graph of docs/img/contagion_seed206.png: a detection downstream first, traced back.
$taper diagnose "$out/maddpg-n3" --first-seed 206 --episodes 1 --graphs 6 --quiet --out "$out/seed206"
cp "$out/seed206/graphs/seed206_agent0_t2.png" docs/img/contagion_seed206.png
