#!/usr/bin/env bash
# A learning-rate spike in the middle of training, and three safeguards against it, 3 seeds
# each ("Ghosts of Softmax" spikes the rate in supervised learning; this is the RL version):
#
# - PPO on CartPole-v1 (CleanRL's settings, 500k env steps = 976 updates): the rate ×1000 for
#   updates 300–319;
# - MAPPO on SimpleSpread-v3 (N = 3, its defaults but 500k env steps = 244 updates, a short
#   run: the default budget is 12M): the rate ×1000 for updates 100–119.
#
# Arms: `plain` (Adam, no gradient clipping: max_grad_norm = 1e9), `clip` (gradient-norm
# clipping at 0.5, both algorithms' default), `radius` (the safe-step controller with
# step_radius_target = 0.5, no clipping). Then the curves of docs/diagnostics.md.
#
# Usage: bash scripts/lr_spike.sh [OUT_DIR]   (about 15 minutes on 2 cores)
set -euo pipefail
out=${1:-runs/lr-spike}
cargo build --release -p taper-cli
mkdir -p "$out"
taper="$out/taper"
cp target/release/taper "$taper"
arm() { # algo arm -> the arm's keys
  case $2 in
    plain) echo 'max_grad_norm = 1e9' ;;
    clip) echo 'max_grad_norm = 0.5' ;;
    radius) printf 'max_grad_norm = 1e9\nstep_radius_target = 0.5' ;;
  esac
}
for a in plain clip radius; do
  printf "algo = \"ppo\"\nenv = \"CartPole-v1\"\n\n[ppo]\n$(arm ppo $a)\n\n[ppo.lr_spike]\nstart = 300\nupdates = 20\nfactor = 1000.0\n" > "$out/ppo-$a.toml"
  $taper train --config "$out/ppo-$a.toml" --seeds 1,2,3 --total-steps 500000 --out "$out/ppo-$a" --quiet --overwrite
done
for a in plain clip radius; do
  printf "algo = \"mappo\"\nenv = \"SimpleSpread-v3\"\n\n[mappo]\n$(arm mappo $a)\n\n[mappo.lr_spike]\nstart = 100\nupdates = 20\nfactor = 1000.0\n" > "$out/mappo-$a.toml"
  $taper train --config "$out/mappo-$a.toml" --seeds 1,2,3 --total-steps 500000 --out "$out/mappo-$a" --quiet --overwrite
done
$taper plot "$out"/ppo-plain/s* "$out"/ppo-clip/s* "$out"/ppo-radius/s* --smooth 5 --out docs/img/lr_spike_ppo_cartpole.png
$taper plot "$out"/mappo-plain/s* "$out"/mappo-clip/s* "$out"/mappo-radius/s* --smooth 5 --out docs/img/lr_spike_mappo_spread.png
python3 scripts/lr_spike_table.py "$out"
