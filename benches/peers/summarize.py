"""Print results/*.json (or the files given) as markdown tables: min / median / max over runs.

Run: python3 summarize.py [results/NAME.json ...]
"""

import glob
import json
import os
import sys

RESULTS_DIR = os.path.join(os.path.dirname(os.path.abspath(__file__)), "results")
NOT_FIGURES = {"exit_code", "seed", "busy_cores_before"}


def fmt(v: float) -> str:
    a = abs(v)
    if a >= 1000:
        return f"{v:,.0f}"
    if a >= 100:
        return f"{v:.1f}"
    if a >= 1:
        return f"{v:.2f}"
    return f"{v:.3f}"


def table(d: dict) -> str:
    packages = ", ".join(f"{k} {v}" for k, v in d["packages"].items())
    m = d["machine"]
    lines = [f"### {d['name']}  ({d['runs']} runs, started {d['started_utc']})", "",
             f"`{d['command']}` — {packages}; CPU: {m['cpu_model']} x{m['logical_cpus']}", "",
             "| figure | min | median | max |", "|---|---:|---:|---:|"]
    lines += [f"| {k} | {fmt(s['min'])} | {fmt(s['median'])} | {fmt(s['max'])} |"
              for k, s in d["summary"].items() if k not in NOT_FIGURES]
    return "\n".join(lines) + "\n"


def main() -> None:
    for path in sys.argv[1:] or sorted(glob.glob(os.path.join(RESULTS_DIR, "*.json"))):
        with open(path) as f:
            print(table(json.load(f)))


if __name__ == "__main__":
    main()
