#!/usr/bin/env bash
# The GRPO variants' learning curves in docs/grpo.md: GRPO, Dr. GRPO, DAPO, GRPO+D³S and
# GRPO+ADORA on SeqAddition-v0 (2 digits), 3 seeds each, 256 000 completions per run, one
# run at a time so that wall times compare; then the summary table and the plots.
#
# Usage: bash scripts/grpo_curves.sh [OUT_DIR]   (about 12 minutes on 2 cores)
set -euo pipefail
out=${1:-runs/grpo-curves}
cargo build --release -p taper-cli
taper=target/release/taper
for seed in 1 2 3; do
  for v in grpo dr_grpo dapo d3s adora; do
    case $v in
      grpo) flags=() ;;
      dr_grpo) flags=(--loss-type dr_grpo --scale-rewards none) ;;
      dapo) flags=(--dapo) ;;
      d3s) flags=(--d3s) ;;
      adora) flags=(--adora) ;;
    esac
    $taper train --algo grpo --env SeqAddition-v0 --env-kwargs digits=2 --seed $seed \
      --total-steps 256000 "${flags[@]}" --out "$out/$v/s$seed" --quiet --overwrite
  done
done
python3 scripts/grpo_table.py "$out"
for x in samples_trained tokens_trained time_elapsed; do
  $taper plot "$out"/*/s* --metric test_accuracy --x $x --smooth 5 --out "docs/img/grpo_addition_$x.png"
done
