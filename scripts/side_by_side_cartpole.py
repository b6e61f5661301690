"""Side by side on this machine: `taper train` against CleanRL's ppo.py, and taper's CartPole
step rate against Gymnasium's, run back to back. Prints a table and the ratios.

Needs: a release build (`cargo build --release -p taper-cli && cargo build --release --example cartpole_throughput`),
the peers' venvs (`bash benches/peers/setup_venvs.sh main cleanrl`) and CleanRL's ppo.py
at /tmp/cleanrl/ppo.py (see benches/peers/README.md, "Third-party code").

    python3 scripts/side_by_side_cartpole.py [--steps 100000] [--seeds 1 2 3]
"""
import argparse
import json
import os
import re
import statistics
import subprocess
import sys
import tempfile
import time

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
RE_RET = re.compile(r"global_step=(\d+), episodic_return=\[?([-0-9.eE+]+)\]?")

GYM_SNIPPET = r"""
import time, json, gymnasium as gym, numpy as np
env = gym.make("CartPole-v1"); env.reset(seed=0); rng = np.random.default_rng(0)
n = 300_000; t = time.perf_counter()
for _ in range(n):
    _, _, te, tr, _ = env.step(int(rng.integers(2)))
    if te or tr: env.reset()
print(json.dumps({"single_steps_per_s": n / (time.perf_counter() - t), "gymnasium": gym.__version__}))
"""


def timed(cmd, env=None, cwd=None):
    t = time.perf_counter()
    p = subprocess.run(cmd, capture_output=True, text=True, env=env, cwd=cwd)
    dt = time.perf_counter() - t
    if p.returncode != 0:
        sys.exit(f"failed: {' '.join(cmd)}\n{p.stderr[-3000:]}")
    return dt, p.stdout


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--steps", type=int, default=100_000)
    ap.add_argument("--seeds", type=int, nargs="+", default=[1, 2, 3])
    ap.add_argument("--taper", default=os.path.join(ROOT, "target/release/taper"))
    ap.add_argument("--throughput", default=os.path.join(ROOT, "target/release/examples/cartpole_throughput"))
    ap.add_argument("--cleanrl-python", default="/tmp/peers-venv-cleanrl/bin/python")
    ap.add_argument("--ppo", default=os.environ.get("CLEANRL_PPO", "/tmp/cleanrl/ppo.py"))
    ap.add_argument("--gym-python", default="/tmp/peers-venv/bin/python")
    a = ap.parse_args()

    rows = []
    with tempfile.TemporaryDirectory() as tmp:
        for s in a.seeds:
            out = os.path.join(tmp, f"taper{s}")
            t_taper, _ = timed([a.taper, "train", "--env", "CartPole-v1", "--seed", str(s),
                                "--total-steps", str(a.steps), "--out", out, "--quiet"])
            last = json.loads(open(os.path.join(out, "metrics.jsonl")).read().splitlines()[-1])
            env = dict(os.environ, PYTHONWARNINGS="ignore")
            t_clean, text = timed([a.cleanrl_python, a.ppo, "--env-id", "CartPole-v1", "--total-timesteps",
                                   str(a.steps), "--seed", str(s), "--no-track"], env=env, cwd=tmp)
            rets = [float(m.group(2)) for m in RE_RET.finditer(text)]
            rows.append({"seed": s, "taper_s": t_taper, "cleanrl_s": t_clean,
                         "taper_last20": last["recent_return"],
                         "cleanrl_last20": statistics.fmean(rets[-20:]) if rets else float("nan")})
    print(f"PPO CartPole-v1, {a.steps} steps, CleanRL defaults (whole process wall time)")
    print("| seed | taper s | CleanRL s | speed-up | taper return (last 20) | CleanRL return (last 20) |")
    print("|---:|---:|---:|---:|---:|---:|")
    for r in rows:
        print(f"| {r['seed']} | {r['taper_s']:.2f} | {r['cleanrl_s']:.2f} | {r['cleanrl_s'] / r['taper_s']:.0f}x "
              f"| {r['taper_last20']:.1f} | {r['cleanrl_last20']:.1f} |")
    med = lambda k: statistics.median(r[k] for r in rows)
    print(f"median wall time: taper {med('taper_s'):.2f} s, CleanRL {med('cleanrl_s'):.2f} s, "
          f"ratio {med('cleanrl_s') / med('taper_s'):.1f}x")
    print(f"median return (last 20 episodes): taper {med('taper_last20'):.1f}, CleanRL {med('cleanrl_last20'):.1f}")

    _, ours = timed([a.throughput])
    ours = json.loads(ours)
    _, gym = timed([a.gym_python, "-c", GYM_SNIPPET])
    gym = json.loads(gym)
    print(f"CartPole-v1 steps/s, single env, random actions: taper {ours['single_steps_per_s']:,.0f}, "
          f"Gymnasium {gym['gymnasium']} {gym['single_steps_per_s']:,.0f}, "
          f"ratio {ours['single_steps_per_s'] / gym['single_steps_per_s']:.0f}x "
          f"(taper VecEnv x8: {ours['vec8_steps_per_s']:,.0f}/s)")


if __name__ == "__main__":
    main()
