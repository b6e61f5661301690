#!/usr/bin/env bash
# Every peer benchmark with its defaults, one after the other, then the summary tables.
# Results: results/<name>.json next to this script; per-run logs: /tmp/peers-logs/<name>/.
# Before each run a script waits (up to 180 s) for an idle machine, and it records the CPU
# other processes used during the run (other_load_cores).
set -uo pipefail
cd "$(dirname "$0")"
MAIN=/tmp/peers-venv/bin/python
JAX=/tmp/peers-venv-jax/bin/python
CLEANRL=/tmp/peers-venv-cleanrl/bin/python
"$MAIN"    bench_cartpole.py
"$MAIN"    bench_mpe2.py
"$JAX"     bench_jaxmarl.py
"$MAIN"    bench_mlp_update.py
"$MAIN"    bench_sb3_ppo.py
"$CLEANRL" bench_cleanrl_ppo.py
"$MAIN"    summarize.py
