"""One sitting against the JAX peers: each row's taper run and peer run alternated ROUNDS times
(default 3), who goes first alternating from round to round, with the 1-minute load average
before each run, then the medians and ratios.

Rows: PPO CartPole-v1 500k, seed 1, against PureJaxRL's compiled (second) call; 16 seeds of it,
`taper train --seeds 0..16` against PureJaxRL's vmapped call (compiled); IPPO-FF on
SimpleSpread-v3 (N = 3, 16 envs x 128 steps, 2M env steps, seed 1) in env steps per second,
taper's training time against JaxMARL's execution only.

Usage, from the repository root (system Python, no packages):
    cargo build --release -p taper-cli
    python3 benches/peers/e2e/sitting.py [ROUNDS]
Needs the jax venv at $JAX_PY (default /tmp/peers-venv-jax/bin/python) and PureJaxRL and the
JaxMARL baselines in benches/peers/vendor/ (benches/peers/README.md, "Third-party code").
Prints one line per run and the table; writes only to a temporary folder, removed at the end.
"""
import json
import os
import shutil
import statistics
import subprocess
import sys
import tempfile
import time

ROOT = os.getcwd()
TAPER = os.path.join(ROOT, "target", "release", "taper")
PEERS = os.path.join(ROOT, "benches", "peers")
JAX_PY = os.environ.get("JAX_PY", "/tmp/peers-venv-jax/bin/python")
ROUNDS = int(sys.argv[1]) if len(sys.argv) > 1 else 3
if ROUNDS < 1:
    sys.exit("ROUNDS must be at least 1")
TMP = tempfile.mkdtemp(prefix="taper-sitting-")


def load():
    with open("/proc/loadavg") as f:
        return float(f.read().split()[0])


def last_row(run_dir):
    with open(os.path.join(run_dir, "metrics.jsonl")) as f:
        return json.loads(f.read().strip().splitlines()[-1])


def taper(name, *args):
    """Wall seconds of one `taper train`, and its folder."""
    out = os.path.join(TMP, name)
    t0 = time.perf_counter()
    subprocess.run([TAPER, "train", "--quiet", "--overwrite", "--out", out, *args], check=True,
                   stdout=subprocess.DEVNULL)
    return time.perf_counter() - t0, out


def peer(script, *args):
    """The RESULT line of one peer script."""
    p = subprocess.run([JAX_PY, os.path.join("e2e", script), *args], cwd=PEERS, check=True,
                       capture_output=True, text=True)
    line = [l for l in p.stdout.splitlines() if l.startswith("RESULT ")][-1]
    return json.loads(line[len("RESULT "):])


def ppo_taper():
    wall, out = taper("ppo", "--env", "CartPole-v1", "--seed", "1", "--total-steps", "500000")
    return wall, last_row(out)["recent_return"]


def ppo_peer():
    r = peer("run_pjx.py", "5e5", "1")
    return r["second_call_s"], r["return_last20_second_call"]


def seeds_taper():
    wall, out = taper("s16", "--env", "CartPole-v1", "--seeds", "0..16", "--total-steps", "500000")
    rets = [last_row(os.path.join(out, d))["recent_return"] for d in sorted(os.listdir(out))
            if os.path.isfile(os.path.join(out, d, "metrics.jsonl"))]
    assert len(rets) == 16, rets
    return wall, statistics.mean(rets)


def seeds_peer():
    r = peer("run_pjx_seeds.py", "5e5", "16", "0")
    rets = r["return_last20_second_call"]
    return r["second_call_s"], statistics.mean(rets) if isinstance(rets, list) else rets


def ippo_taper():
    _, out = taper("ippo", "--algo", "ippo", "--env", "SimpleSpread-v3", "--seed", "1",
                   "--total-steps", "2000000")
    row = last_row(out)
    return row["global_step"] / row["time_elapsed"], row["recent_return"]


def ippo_peer():
    r = peer("run_jm.py", "ippo", "2e6", "1")
    return r["sps_exec"], r["per_agent_return_last10_updates"]


ROWS = [
    ("PPO CartPole-v1 500k, seed 1: s (PureJaxRL compiled call)", ppo_taper, ppo_peer, "time"),
    ("16 seeds of it: s (PureJaxRL vmapped, compiled)", seeds_taper, seeds_peer, "time"),
    ("IPPO-FF Simple Spread 2M: env steps/s (JaxMARL execution)", ippo_taper, ippo_peer, "rate"),
]

print(f"temporary folder {TMP}; {os.cpu_count()} CPUs", flush=True)
table = []
for name, ours, theirs, kind in ROWS:
    got = {"taper": [], "peer": []}
    for r in range(ROUNDS):
        # Who goes first alternates from round to round.
        order = (("taper", ours), ("peer", theirs))
        for who, f in order if r % 2 == 0 else order[::-1]:
            before = load()
            value, ret = f()
            got[who].append(value)
            print(f"{name} | round {r + 1} | {who} | {value:.4g} | return {ret:.4g} | "
                  f"load before {before:.2f}", flush=True)
    t, p = statistics.median(got["taper"]), statistics.median(got["peer"])
    ratio = p / t if kind == "time" else t / p
    table.append((name, got, t, p, ratio))

shutil.rmtree(TMP, ignore_errors=True)
print()
print("| work | taper (median) | peer (median) | ratio |")
print("|---|---:|---:|---:|")
for name, got, t, p, ratio in table:
    fmt = lambda xs: ", ".join(f"{x:.4g}" for x in xs)
    print(f"| {name} | {t:.4g} ({fmt(got['taper'])}) | {p:.4g} ({fmt(got['peer'])}) | {ratio:.2f}x |")
