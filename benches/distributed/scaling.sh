#!/usr/bin/env bash
# The scaling of one data-parallel run from 1 to 2 processes on this machine: env steps per
# second of PPO on CartPole-v1 (8 envs) and MAPPO on SimpleSpread-v3 (128 envs), and
# completions per second of GRPO on SeqAddition-v0 (its defaults: 8 prompts x 16 completions
# per iteration), each as the ordinary run (one block), as two data blocks in one process, and
# over `mpirun -np 2` (the same run as the two blocks, bit for bit; the script checks the
# weights). GRPO's rate is its reinforcement-learning phase's (the `sps` of its last metrics
# row): the supervised warm start before it runs whole on every process. Medians of REPS
# launches, alternated. Needs Open MPI and a build with the `mpi` feature:
#
#   cargo build --release -p taper-cli --features mpi
#   bash benches/distributed/scaling.sh [REPS] [RUNS]   (RUNS: default "ppo mappo grpo")
set -euo pipefail
cd "$(dirname "$0")/../.."
REPS=${1:-3}
RUNS=${2:-ppo mappo grpo}
T=target/release/taper
export OMPI_ALLOW_RUN_AS_ROOT=1 OMPI_ALLOW_RUN_AS_ROOT_CONFIRM=1
W=$(mktemp -d)
trap 'rm -rf "$W"' EXIT
printf 'algo = "ppo"\nenv = "CartPole-v1"\nseed = 1\n[ppo]\nnum_envs = 8\n' >"$W/ppo1.toml"
printf 'algo = "ppo"\nenv = "CartPole-v1"\nseed = 1\n[ppo]\nnum_envs = 8\ndata_blocks = 2\n' >"$W/ppo2.toml"
printf 'algo = "mappo"\nenv = "SimpleSpread-v3"\nseed = 1\n[mappo]\nnum_envs = 128\n' >"$W/mappo1.toml"
printf 'algo = "mappo"\nenv = "SimpleSpread-v3"\nseed = 1\n[mappo]\nnum_envs = 128\ndata_blocks = 2\n' >"$W/mappo2.toml"
printf 'algo = "grpo"\nenv = "SeqAddition-v0"\nseed = 1\n' >"$W/grpo1.toml"
printf 'algo = "grpo"\nenv = "SeqAddition-v0"\nseed = 1\n[grpo]\ndata_blocks = 2\n' >"$W/grpo2.toml"

# seconds of one launch: LABEL CMD...
secs() {
  local s e
  s=$(date +%s.%N)
  "$@" >/dev/null 2>&1
  e=$(date +%s.%N)
  echo "$e - $s" | bc
}

median() { sort -g | awk '{a[NR]=$1} END {print a[int((NR+1)/2)]}'; }

# GRPO: seconds of one launch writing into DIR, then the last metrics row's completions/s.
# grpo_run DIR CMD...
grpo_run() {
  local dir=$1
  shift
  secs "$@" >/dev/null
  grep -o '"sps":[0-9.e+-]*' "$dir/metrics.jsonl" | tail -1 | cut -d: -f2
}

for algo in ppo mappo; do
  case " $RUNS " in *" $algo "*) ;; *) continue ;; esac
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

case " $RUNS " in *" grpo "*) ;; *) exit 0 ;; esac
steps=25600
: >"$W/one" ; : >"$W/blocks" ; : >"$W/mpi"
for r in $(seq "$REPS"); do
  grpo_run "$W/a$r" $T train --config "$W/grpo1.toml" --total-steps $steps --out "$W/a$r" --overwrite --quiet >>"$W/one"
  grpo_run "$W/b$r" $T train --config "$W/grpo2.toml" --total-steps $steps --out "$W/b$r" --overwrite --quiet >>"$W/blocks"
  grpo_run "$W/c$r" mpirun -np 2 $T train --data-parallel --config "$W/grpo1.toml" --total-steps $steps \
    --out "$W/c$r" --quiet >>"$W/mpi"
  rm -rf "$W/c$r.done"; mv "$W/c$r" "$W/c$r.done"
done
cmp "$W/b1/checkpoint/model.safetensors" "$W/c1.done/checkpoint/model.safetensors"
echo "grpo, $steps completions, reinforcement-learning phase: one block $(median <"$W/one" | xargs printf %.0f) completions/s;" \
  "two blocks in one process $(median <"$W/blocks" | xargs printf %.0f) completions/s;" \
  "mpirun -np 2 $(median <"$W/mpi" | xargs printf %.0f) completions/s (same weights as two blocks)"
