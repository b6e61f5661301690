#!/usr/bin/env python3
"""Summarises the runs of scripts/grpo_curves.sh as the Markdown tables of docs/grpo.md.

Per variant, over its seeds (mean ± standard deviation across seeds):
- the final greedy test accuracy: the mean of the last 5 metrics rows (the last 50
  iterations) of each run, each row on 256 held-apart test prompts;
- the samples and tokens trained and the wall time of the whole run (sampling, training and
  the evaluations).
Then each seed's final accuracy, and the D³S question: GRPO's final accuracy A (the mean over its seeds); for each variant,
where its seed-mean curve (5-row trailing mean) first reaches A, in tokens trained, samples
trained and wall time, against where GRPO's own curve first reaches it.

Usage: python3 scripts/grpo_table.py RUNS_DIR   (RUNS_DIR/<variant>/s<seed>/metrics.jsonl)
"""
import json
import os
import statistics as st
import sys

root = sys.argv[1]
VARIANTS = [("grpo", "GRPO"), ("dr_grpo", "Dr. GRPO"), ("dapo", "DAPO"), ("d3s", "GRPO + D³S"), ("adora", "GRPO + ADORA")]
LAST = 5


def load(v):
    runs = []
    vdir = os.path.join(root, v)
    for s in sorted(os.listdir(vdir)):
        with open(os.path.join(vdir, s, "metrics.jsonl")) as f:
            runs.append([json.loads(line) for line in f])
    return runs


def ms(xs, fmt="{:.3f}"):
    m = st.mean(xs)
    sd = st.stdev(xs) if len(xs) > 1 else 0.0
    return (fmt + " ± " + fmt).format(m, sd)


def mean_curve(runs, col):
    n = min(len(r) for r in runs)
    acc = [st.mean(r[i]["test_accuracy"] for r in runs) for i in range(n)]
    sm = [st.mean(acc[max(0, i - LAST + 1): i + 1]) for i in range(n)]
    xs = [st.mean(r[i][col] for r in runs) for i in range(n)]
    return xs, sm


def first_reach(runs, col, target):
    xs, sm = mean_curve(runs, col)
    for x, y in zip(xs, sm):
        if y >= target - 1e-12:
            return x
    return None


data = {v: load(v) for v, _ in VARIANTS}
print("| variant | seeds | warm start (test) | final test accuracy | samples trained | tokens trained | wall time (s) |")
print("|---|---:|---:|---:|---:|---:|---:|")
for v, name in VARIANTS:
    runs = data[v]
    final = [st.mean(r["test_accuracy"] for r in run[-LAST:]) for run in runs]
    warm = [run[0]["warm_start_accuracy"] for run in runs]
    print(
        f"| {name} | {len(runs)} | {ms(warm)} | {ms(final)} | "
        f"{ms([run[-1]['samples_trained'] / 1e3 for run in runs], '{:.0f}')} k | "
        f"{ms([run[-1]['tokens_trained'] / 1e3 for run in runs], '{:.0f}')} k | "
        f"{ms([run[-1]['time_elapsed'] for run in runs], '{:.1f}')} |"
    )
print()
print("Final test accuracy per seed (each seed's warm start is shared by every variant):")
print()
print("| variant | " + " | ".join(f"seed {i + 1}" for i in range(len(data["grpo"]))) + " |")
print("|---|" + "---:|" * len(data["grpo"]))
for v, name in VARIANTS:
    cells = [f"{st.mean(r['test_accuracy'] for r in run[-LAST:]):.3f}" for run in data[v]]
    print(f"| {name} | " + " | ".join(cells) + " |")
grpo = data["grpo"]
target = st.mean(st.mean(r["test_accuracy"] for r in run[-LAST:]) for run in grpo)
print()
print(f"GRPO's final accuracy A = {target:.3f}. Where each seed-mean curve first reaches A:")
print()
print("| variant | tokens trained | samples trained | wall time (s) |")
print("|---|---:|---:|---:|")
for v, name in VARIANTS:
    cells = []
    for col, scale, fmt in [("tokens_trained", 1e3, "{:.0f} k"), ("samples_trained", 1e3, "{:.0f} k"), ("time_elapsed", 1, "{:.1f}")]:
        x = first_reach(data[v], col, target)
        g = first_reach(grpo, col, target)
        if x is None:
            cells.append("not reached")
        else:
            cells.append(fmt.format(x / scale) + (f" ({x / g:.2f}× GRPO's)" if g else ""))
    print(f"| {name} | " + " | ".join(cells) + " |")
