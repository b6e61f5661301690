"""CleanRL ppo.py (unmodified, from CleanRL commit fe8d8a0) on CartPole-v1, torch CPU, default hyperparameters.

Each run executes ``$CLEANRL_PPO`` (default /tmp/cleanrl/ppo.py; see README.md for how to
get it) as ``ppo.py --env-id CartPole-v1 --total-timesteps 100000 --seed S --no-track``,
S = --seed + i for run i. Everything else is CleanRL's default: 4 envs in a SyncVectorEnv,
128 steps per rollout, 4 epochs x 4 minibatches, lr 2.5e-4 annealed, 64-64 tanh actor and
critic, torch's default thread count. Supplement, non-default: --omp-num-threads 1.
ppo.py needs gymnasium 0.29.x (it reads infos["final_info"]), hence /tmp/peers-venv-cleanrl.
Figures:
  sps_final                 the last "SPS:" line ppo.py prints (covers rollouts and updates,
                            not imports or setup); iterations = number of SPS lines
  ppo_wall_s, ppo_cpu_s     the whole ppo.py process
  return_last10_mean        mean of the last 10 episodic_return values printed; also
                            return_last, return_max, episodes, first_step_with_return_500

Run: /tmp/peers-venv-cleanrl/bin/python bench_cleanrl_ppo.py
"""

import os
import re
import shutil
import statistics
import sys

import common

PPO_PY = os.environ.get("CLEANRL_PPO", "/tmp/cleanrl/ppo.py")
RETURN_LINE = re.compile(r"global_step=(\d+), episodic_return=\[?([-0-9.eE+]+)\]?")
SPS_LINE = re.compile(r"^SPS: (\d+)")


def child(ns) -> None:
    workdir = f"/tmp/peers-cleanrl-runs/seed{ns.seed}_omp{ns.omp_num_threads}"
    shutil.rmtree(workdir, ignore_errors=True)
    os.makedirs(workdir, exist_ok=True)
    cmd = [sys.executable, PPO_PY, "--env-id", "CartPole-v1",
           "--total-timesteps", str(ns.total_timesteps), "--seed", str(ns.seed), "--no-track"]
    env = dict(os.environ, PYTHONWARNINGS="ignore")
    if ns.omp_num_threads > 0:
        env["OMP_NUM_THREADS"] = str(ns.omp_num_threads)
    _, proc, text = common.run_child(cmd, os.path.join(workdir, "ppo_stdout.log"), cwd=workdir, env=env)

    steps, returns, sps = [], [], []
    for line in text.splitlines():
        if m := RETURN_LINE.search(line):
            steps.append(int(m.group(1)))
            returns.append(float(m.group(2)))
        elif m := SPS_LINE.match(line):
            sps.append(int(m.group(1)))
    if proc["exit_code"] != 0 or not sps:
        print(text[-4000:])
        raise SystemExit(f"ppo.py failed (exit {proc['exit_code']})")

    nan = float("nan")
    common.emit({
        "seed": ns.seed,
        "omp_num_threads": ns.omp_num_threads,
        "sps_final": sps[-1],
        "iterations": len(sps),
        "ppo_wall_s": proc["process_wall_s"],
        "ppo_cpu_s": proc["process_cpu_s"],
        "ppo_peak_rss_mib": proc["process_peak_rss_mib"],
        "ppo_other_load_cores": proc["other_load_cores"],
        "episodes": len(returns),
        "global_step_final": len(sps) * 4 * 128,  # CleanRL's default num_envs x num_steps
        "return_last10_mean": statistics.fmean(returns[-10:]) if returns else nan,
        "return_last": returns[-1] if returns else nan,
        "return_max": max(returns) if returns else nan,
        "first_step_with_return_500": next((s for s, r in zip(steps, returns) if r >= 500), -1),
    })


def add_args(p) -> None:
    p.add_argument("--total-timesteps", type=int, default=100_000)
    p.add_argument("--seed", type=int, default=1, help="seed of the first run; run i uses seed+i")
    p.add_argument("--omp-num-threads", type=int, default=0,
                   help="if > 0, set OMP_NUM_THREADS for ppo.py (torch thread count); default: unset")


if __name__ == "__main__":
    common.main_for("cleanrl_ppo_cartpole", __doc__.splitlines()[0], child, add_args,
                    ["torch", "gymnasium", "numpy", "tyro", "tensorboard"], default_runs=3, seeded=True,
                    extra_meta={"ppo_py": "CleanRL ppo.py fe8d8a0, unmodified"})
