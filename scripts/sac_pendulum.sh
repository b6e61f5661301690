#!/usr/bin/env bash
# The SAC family on Pendulum-v1, 3 seeds each, with evaluations (5 deterministic episodes every
# 5000 env steps) and the critic's bias against Monte-Carlo returns every 10 000 steps:
#
# - dsac-t: DSAC-T as its official code runs it (250k env steps, one gradient step per 20);
# - sac-sched, stac-sched: SAC and STAC on DSAC-T's schedule (the same 250k env steps and
#   12k gradient steps, the policy's samples from the start, each its own networks and rates);
# - sac: SAC with CleanRL's settings (one gradient step per env step), 50k env steps;
# - sac-hl: the same with twin HL-Gauss critics (51 bins on [−1700, 200], σ = 0.75 bins).
#
# Then the table and the plots of docs/critics.md.
#
# Usage: bash scripts/sac_pendulum.sh [OUT_DIR]   (about 45 minutes on 2 cores)
set -euo pipefail
out=${1:-runs/sac-pendulum}
cargo build --release -p taper-cli
mkdir -p "$out"
# A copy of the binary, so that a rebuild during the runs cannot disturb them.
taper="$out/taper"
cp target/release/taper "$taper"
sched='train_every = 20\nlearning_starts = 10000\nrandom_starts = false\npolicy_repeats = 1\n'
probe='probe_every = 10000\n'
printf "algo = \"dsac-t\"\nenv = \"Pendulum-v1\"\n\n[dsac-t]\n$probe" > "$out/dsac-t.toml"
printf "algo = \"sac\"\nenv = \"Pendulum-v1\"\n\n[sac]\n$sched$probe" > "$out/sac-sched.toml"
printf "algo = \"stac\"\nenv = \"Pendulum-v1\"\n\n[stac]\n$sched$probe" > "$out/stac-sched.toml"
printf "algo = \"sac\"\nenv = \"Pendulum-v1\"\n\n[sac]\nprobe_every = 5000\n" > "$out/sac.toml"
printf "algo = \"sac\"\nenv = \"Pendulum-v1\"\n\n[sac]\nprobe_every = 5000\ncritic = \"categorical\"\n\n[sac.q_support]\nmin = -1700.0\nmax = 200.0\nbins = 51\nencoding = { hl_gauss = { sigma_ratio = 0.75 } }\n" > "$out/sac-hl.toml"
run() { # name steps
  $taper train --config "$out/$1.toml" --seeds 1,2,3 --total-steps "$2" --out "$out/$1" \
    --eval-every 5000 --eval-episodes 5 --quiet --overwrite
}
run dsac-t 250000
run sac-sched 250000
run stac-sched 250000
run sac 50000
run sac-hl 50000
python3 scripts/sac_pendulum_table.py "$out"
$taper plot "$out"/dsac-t/s* "$out"/sac-sched/s* "$out"/stac-sched/s* --metric recent_return --smooth 5 \
  --out docs/img/sac_family_pendulum.png
$taper plot "$out"/dsac-t/s* "$out"/sac-sched/s* "$out"/stac-sched/s* --metric q_bias \
  --out docs/img/sac_family_pendulum_bias.png
