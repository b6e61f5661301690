#!/usr/bin/env bash
# PPO on CartPole-v1 with CleanRL's defaults (500k steps): the scalar value head learned by
# squared error (clipped, CleanRL's default, and unclipped) against an HL-Gauss value head (51
# bins on [0, 100], σ = 0.75 bin widths), 3 seeds each; then the table and the plot in
# docs/critics.md.
#
# Usage: bash scripts/ppo_value_heads.sh [OUT_DIR]   (about a minute and a half on 2 cores)
set -euo pipefail
out=${1:-runs/ppo-value-heads}
cargo build --release -p taper-cli
taper=target/release/taper
mkdir -p "$out"
printf 'algo = "ppo"\nenv = "CartPole-v1"\n' > "$out/mse.toml"
printf 'algo = "ppo"\nenv = "CartPole-v1"\n\n[ppo]\nclip_vloss = false\n' > "$out/mse_unclipped.toml"
printf 'algo = "ppo"\nenv = "CartPole-v1"\n\n[ppo.value_head]\nkind = "hl_gauss"\nmin = 0.0\nmax = 100.0\n' > "$out/hl_gauss.toml"
for head in mse mse_unclipped hl_gauss; do
  for seed in 1 2 3; do
    $taper train --config "$out/$head.toml" --seed $seed --out "$out/$head/s$seed" --quiet --overwrite
  done
done
python3 scripts/ppo_value_heads_table.py "$out"
$taper plot "$out"/*/s* --metric recent_return --smooth 5 --out docs/img/ppo_cartpole_value_heads.png
