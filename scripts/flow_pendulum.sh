#!/usr/bin/env bash
# The flow-matching critic with K = 1 against K = 8 Euler steps on Pendulum-v1, 3 seeds each,
# with SAC's twin critic of the same width beside them. Every run is SAC with CleanRL's
# settings (5000 random steps, then one gradient step per env step) for 20 000 env steps,
# except for narrower networks (64 × 64, actor and critics) and 2 noise samples per row: a
# flow critic reads its field K·samples times per row, so floq's 8 samples and 256-wide
# networks cost about 0.2 s a gradient step here. The flow's other settings are floq's:
# noise 0.1·[r_min, r_max]/(1 − γ) = [−163, 0], the histogram of z on
# [(r_min − 0.01), (r_max + 0.01)]/(1 − γ) = [−1631, 1] with 51 bins of σ = 16 widths, 64
# time features. Evaluations: 5 deterministic episodes every 2000 steps; the critic's bias
# against Monte-Carlo returns every 5000.
#
# Usage: bash scripts/flow_pendulum.sh [OUT_DIR]   (about 15 minutes on 2 cores)
set -euo pipefail
out=${1:-runs/flow-pendulum}
cargo build --release -p taper-cli
mkdir -p "$out"
# A copy of the binary, so that a rebuild during the runs cannot disturb them.
taper="$out/taper"
cp target/release/taper "$taper"
base='algo = "sac"\nenv = "Pendulum-v1"\n\n[sac]\nhidden = [64, 64]\nprobe_every = 5000\n'
flow='critic = "flow"\n\n[sac.flow]\nsamples = 2\nnoise = [-163.0, 0.0]\nsupport = [-1631.0, 1.0]\n'
printf "$base" > "$out/twin-64.toml"
printf "$base${flow}steps = 1\n" > "$out/flow-k1.toml"
printf "$base${flow}steps = 8\n" > "$out/flow-k8.toml"
for name in twin-64 flow-k1 flow-k8; do
  $taper train --config "$out/$name.toml" --seeds 1,2,3 --total-steps 20000 --out "$out/$name" \
    --eval-every 2000 --eval-episodes 5 --quiet --overwrite
done
python3 scripts/sac_pendulum_table.py "$out" twin-64 flow-k1 flow-k8
$taper plot "$out"/twin-64/s* "$out"/flow-k1/s* "$out"/flow-k8/s* --metric recent_return --smooth 3 \
  --out docs/img/flow_pendulum.png
