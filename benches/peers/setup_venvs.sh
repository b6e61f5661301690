#!/usr/bin/env bash
# Create the venvs the peer benchmarks run in, at the exact versions measured (the lock files).
#   main     /tmp/peers-venv          torch, gymnasium 1.4, pettingzoo + mpe2, stable-baselines3
#   jax      /tmp/peers-venv-jax      jax (CPU) + jaxmarl; its dependencies pull gymnasium 1.3,
#                                     so it is kept apart from the main venv
#   cleanrl  /tmp/peers-venv-cleanrl  torch + gymnasium 0.29.1 as CleanRL pins it (ppo.py reads
#                                     the 0.29 vector-env info format)
# Needs PyPI and ~12 GB of disk: PyPI's only Linux x86_64 torch wheel is the CUDA build
# (it runs on the CPU).
#   trl      adds TRL 0.24.0 to the main venv (grpo_golden_trl.py)
# Usage: bash setup_venvs.sh [main|jax|cleanrl|trl ...]   (default: main, jax, cleanrl)
set -euo pipefail
HERE="$(cd "$(dirname "$0")" && pwd)"
PY="${PYTHON:-python3}"   # measured with CPython 3.11.7

make_venv() {  # make_venv DIR LOCKFILE
  [ -x "$1/bin/python" ] || "$PY" -m venv "$1"
  "$1/bin/pip" install --upgrade pip
  "$1/bin/pip" install -r "$HERE/$2"
}

[ $# -eq 0 ] && set -- main jax cleanrl
for target in "$@"; do
  case "$target" in
    # Each lock file is the `pip freeze` after the top-level install shown under it.
    main)    make_venv /tmp/peers-venv requirements-main.lock.txt ;;
             # pip install torch gymnasium pettingzoo mpe2 stable-baselines3
    jax)     make_venv /tmp/peers-venv-jax requirements-jax.lock.txt ;;
             # pip install jaxmarl jax
    cleanrl) make_venv /tmp/peers-venv-cleanrl requirements-cleanrl.lock.txt ;;
    trl)     make_venv /tmp/peers-venv requirements-main.lock.txt
             /tmp/peers-venv/bin/pip install -r "$HERE/requirements-trl.lock.txt" ;;
             # pip install trl==0.24.0 requests   (into the main venv, for grpo_golden_trl.py)
             # pip install torch==2.15.0 gymnasium==0.29.1 numpy==1.26.4 tyro tensorboard
    *) echo "unknown target '$target' (main|jax|cleanrl|trl)" >&2; exit 2 ;;
  esac
done
