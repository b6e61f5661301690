#!/usr/bin/env bash
# Checks taper's MPI launches under Slurm on this one machine: a data-parallel PPO run started
# by `sbatch` with `mpirun` inside the allocation, the same run started by `srun --mpi=pmix`,
# and a sweep under `srun --mpi=pmix`. Each is compared, bit for bit, with what one process
# gives: the data-parallel runs with `data_blocks = 2` in one process, the sweep's runs with
# each seed alone.
#
# With --setup (root, Debian or Ubuntu; meant for a scratch machine, since it writes
# /etc/slurm/slurm.conf), it first installs Slurm and munge and starts a single-node cluster of
# this machine: munged, slurmctld and slurmd in the background, running until stopped
# (`pkill -x slurmd; pkill -x slurmctld; pkill -x munged`). Needs Open MPI and a build with the
# `mpi` feature:
#
#   cargo build --release -p taper-cli --features mpi
#   bash scripts/slurm-check.sh [--setup]
set -euo pipefail
cd "$(dirname "$0")/.."
T=$PWD/target/release/taper
export OMPI_ALLOW_RUN_AS_ROOT=1 OMPI_ALLOW_RUN_AS_ROOT_CONFIRM=1

if [ "${1:-}" = --setup ]; then
  export DEBIAN_FRONTEND=noninteractive
  command -v slurmctld >/dev/null || {
    apt-get update -q && apt-get install -y -q slurmctld slurmd slurm-client munge
  }
  host=$(hostname -s)
  cpus=$(nproc)
  mkdir -p /etc/slurm /var/spool/slurmctld /var/spool/slurmd /var/log/slurm
  cat >/etc/slurm/slurm.conf <<EOF
ClusterName=taper
SlurmctldHost=$host
SlurmUser=root
ProctrackType=proctrack/linuxproc
TaskPlugin=task/none
SelectType=select/cons_tres
SelectTypeParameters=CR_CPU
JobAcctGatherType=jobacct_gather/none
AccountingStorageType=accounting_storage/none
StateSaveLocation=/var/spool/slurmctld
SlurmdSpoolDir=/var/spool/slurmd
SlurmctldLogFile=/var/log/slurm/slurmctld.log
SlurmdLogFile=/var/log/slurm/slurmd.log
ReturnToService=2
NodeName=$host CPUs=$cpus State=UNKNOWN
PartitionName=debug Nodes=$host Default=YES MaxTime=INFINITE State=UP
EOF
  mkdir -p /run/munge
  pgrep -x munged >/dev/null || munged --force
  pgrep -x slurmctld >/dev/null || (slurmctld -D >/dev/null 2>&1 &)
  pgrep -x slurmd >/dev/null || (slurmd -D >/dev/null 2>&1 &)
  for _ in $(seq 30); do
    sinfo -h -o %t 2>/dev/null | grep -q idle && break
    sleep 1
  done
fi
sinfo

W=$(mktemp -d "$PWD/target/slurm-check.XXXX")
trap 'rm -rf "$W"' EXIT
printf 'algo = "ppo"\nenv = "CartPole-v1"\nseed = 3\n[ppo]\nnum_envs = 8\n' >"$W/one.toml"
printf 'algo = "ppo"\nenv = "CartPole-v1"\nseed = 3\n[ppo]\nnum_envs = 8\ndata_blocks = 2\n' >"$W/two.toml"
steps=20480
weights() { echo "$1/checkpoint/model.safetensors"; }
same() {
  if cmp -s "$(weights "$1")" "$(weights "$2")"; then echo "  same weights: $3"; else
    echo "  DIFFERENT weights: $3"
    exit 1
  fi
}

echo "== one process, two data blocks (the reference)"
$T train --config "$W/two.toml" --total-steps $steps --out "$W/ref" --quiet

echo "== sbatch, mpirun inside the allocation"
cat >"$W/job.sh" <<EOF
#!/bin/bash
#SBATCH --ntasks=2
#SBATCH --output=$W/job.log
export OMPI_ALLOW_RUN_AS_ROOT=1 OMPI_ALLOW_RUN_AS_ROOT_CONFIRM=1
mpirun $T train --data-parallel --config $W/one.toml --total-steps $steps --out $W/sbatch --quiet
EOF
sbatch --wait "$W/job.sh"
same "$W/ref" "$W/sbatch" "sbatch + mpirun -np 2 against two blocks in one process"

echo "== srun --mpi=pmix"
srun -n 2 --mpi=pmix $T train --data-parallel --config "$W/one.toml" --total-steps $steps \
  --out "$W/srun" --quiet
same "$W/ref" "$W/srun" "srun -n 2 --mpi=pmix against two blocks in one process"

echo "== a sweep under srun --mpi=pmix"
srun -n 2 --mpi=pmix $T train --algo ppo --env CartPole-v1 --seeds 0..4 --total-steps $steps \
  --out "$W/sweep" --quiet
for s in 0 1 2 3; do
  $T train --algo ppo --env CartPole-v1 --seed $s --total-steps $steps --out "$W/alone$s" --quiet
  same "$W/alone$s" "$W/sweep/s$s" "seed $s of the sweep against the seed alone"
done
echo "all Slurm checks passed"
