#!/usr/bin/env bash
# The scaling of one data-parallel run from 1 to 2 processes on this machine: env steps per
# second of PPO on CartPole-v1 (8 envs) and MAPPO on SimpleSpread-v3 (128 envs), each as the
# ordinary run (one block), as two data blocks in one process, and over `mpirun -np 2`
# (the same run as the two blocks, bit for bit; the script checks the weights). Medians of
# REPS launches, alternated. Needs Open MPI and a build with the `mpi` feature:
#
#   cargo build --release -p taper-cli --features mpi
#   bash benches/distributed/scaling.sh [REPS]
set -euo pipefail
cd "$(dirname "$0")/../.."
REPS=${1:-3}
T=target/release/taper
export OMPI_ALLOW_RUN_AS_ROOT=1 OMPI_ALLOW_RUN_AS_ROOT_CONFIRM=1
W=$(mktemp -d)
trap 'rm -rf "$W"' EXIT
printf 'algo = "ppo"\nenv = "CartPole-v1"\nseed = 1\n[ppo]\nnum_envs = 8\n' >"$W/ppo1.toml"
printf 'algo = "ppo"\nenv = "CartPole-v1"\nseed = 1\n[ppo]\nnum_envs = 8\ndata_blocks = 2\n' >"$W/ppo2.toml"
printf 'algo = "mappo"\nenv = "SimpleSpread-v3"\nseed = 1\n[mappo]\nnum_envs = 128\n' >"$W/mappo1.toml"
printf 'algo = "mappo"\nenv = "SimpleSpread-v3"\nseed = 1\n[mappo]\nnum_envs = 128\ndata_blocks = 2\n' >"$W/mappo2.toml"

# seconds of one launch: LABEL CMD...
secs() {
  local s e
  s=$(date +%s.%N)
  "$@" >/dev/null 2>&1
  e=$(date +%s.%N)
  echo "$e - $s" | bc
}

median() { sort -g | awk '{a[NR]=$1} END {print a[int((NR+1)/2)]}'; }

for algo in ppo mappo; do
  if [ "$algo" = ppo ]; then steps=1000448; else steps=491520; fi
  : >"$W/one" ; : >"$W/blocks" ; : >"$W/mpi"
  for r in $(seq "$REPS"); do
    secs $T train --config "$W/${algo}1.toml" --total-steps $steps --out "$W/a$r" --overwrite --quiet >>"$W/one"
    secs $T train --config "$W/${algo}2.toml" --total-steps $steps --out "$W/b$r" --overwrite --quiet >>"$W/blocks"
    secs mpirun -np 2 $T train --data-parallel --config "$W/${algo}1.toml" --total-steps $steps \
      --out "$W/c$r" --quiet >>"$W/mpi"
    rm -rf "$W/c$r.done"; mv "$W/c$r" "$W/c$r.done"
  done
  cmp "$W/b1/checkpoint/model.safetensors" "$W/c1.done/checkpoint/model.safetensors"
  one=$(median <"$W/one"); blocks=$(median <"$W/blocks"); mpi=$(median <"$W/mpi")
  echo "$algo, $steps env steps: one block $one s ($(echo "$steps / $one" | bc) steps/s);" \
    "two blocks in one process $blocks s ($(echo "$steps / $blocks" | bc) steps/s);" \
    "mpirun -np 2 $mpi s ($(echo "$steps / $mpi" | bc) steps/s; same weights as two blocks)"
  rm -rf "$W"/c*.done
done
