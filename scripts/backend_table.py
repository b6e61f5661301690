#!/usr/bin/env python3
"""Prints the `backends` criterion bench as one Markdown table: per update and batch size,
the median time of each backend, and each candle backend's speed against the fast path
(> 1: faster than the fast path). Reads target/criterion; needs only the standard library.

Usage: python3 scripts/backend_table.py [CRITERION_DIR]
"""
import json
import os
import sys

root = sys.argv[1] if len(sys.argv) > 1 else "target/criterion"


def fmt(ns):
    if ns >= 1e9:
        return f"{ns / 1e9:.2f} s"
    if ns >= 1e6:
        return f"{ns / 1e6:.2f} ms"
    return f"{ns / 1e3:.0f} µs"


found = False
for group in ["ppo_update", "mappo_update"]:
    gdir = os.path.join(root, group)
    if not os.path.isdir(gdir):
        continue
    times = {}
    for dirpath, _, files in os.walk(gdir):
        if "benchmark.json" in files and os.path.basename(dirpath) == "new":
            meta = json.load(open(os.path.join(dirpath, "benchmark.json")))
            est = json.load(open(os.path.join(dirpath, "estimates.json")))
            times[(meta["function_id"], int(meta["value_str"]))] = est["median"]["point_estimate"]
    if not times:
        continue
    found = True
    backends = sorted({b for b, _ in times}, key=lambda b: (b != "fast", b))
    sizes = sorted({s for _, s in times})
    others = [b for b in backends if b != "fast"]
    print(f"\n{group} (one epoch, one minibatch of B rows; median of criterion's samples)\n")
    print("| B | " + " | ".join(backends) + " | " + " | ".join(f"{b} vs fast" for b in others) + " |")
    print("|---:|" + "---:|" * (len(backends) + len(others)))
    for s in sizes:
        cells = [fmt(times[(b, s)]) if (b, s) in times else "–" for b in backends]
        ratios = []
        for b in others:
            if (b, s) in times and ("fast", s) in times:
                ratios.append(f"{times[('fast', s)] / times[(b, s)]:.2f}×")
            else:
                ratios.append("–")
        print(f"| {s} | " + " | ".join(cells) + " | " + " | ".join(ratios) + " |")
if not found:
    sys.exit(f"no results of the backends bench under {root}: run `cargo bench --bench backends` first")
