"""The table in docs/ppo_value_heads.md from the runs of scripts/ppo_value_heads.sh: per value
head and seed, the env steps until the mean return of the last 20 episodes first reaches 475
(Gymnasium's reward threshold for CartPole-v1), the mean of that return over the run (the area
under the curve, per step), its final value and the final explained variance of the value.

Usage: python3 scripts/ppo_value_heads_table.py RUNS_DIR
"""
import csv
import statistics
import sys
from pathlib import Path


def read(path):
    with open(path) as f:
        return list(csv.DictReader(f))


def summary(rows):
    steps = [int(r["global_step"]) for r in rows]
    ret = [float(r["recent_return"]) for r in rows]
    first = next((s for s, v in zip(steps, ret) if v >= 475.0), None)
    return {
        "to_475": first,
        "mean_return": statistics.fmean(ret),
        "final_return": ret[-1],
        "explained_variance": float(rows[-1]["explained_variance"]),
    }


def main():
    root = Path(sys.argv[1])
    print("| value head | seed | steps to 475 | mean return over the run | final return | final explained variance |")
    print("|---|---:|---:|---:|---:|---:|")
    for head in sorted(p.name for p in root.iterdir() if p.is_dir()):
        sums = []
        for run in sorted((root / head).iterdir()):
            s = summary(read(run / "metrics.csv"))
            sums.append(s)
            to = f"{s['to_475']:,}" if s["to_475"] is not None else "never"
            print(f"| {head} | {run.name[1:]} | {to} | {s['mean_return']:.1f} | {s['final_return']:.1f} | {s['explained_variance']:.3f} |")
        reached = [s["to_475"] for s in sums if s["to_475"] is not None]
        mean_to = f"{statistics.fmean(reached):,.0f} ({len(reached)}/{len(sums)} seeds)" if reached else "never"
        mr = [s["mean_return"] for s in sums]
        print(f"| **{head}, mean** | | {mean_to} | {statistics.fmean(mr):.1f} ± {statistics.stdev(mr):.1f} | "
              f"{statistics.fmean(s['final_return'] for s in sums):.1f} | "
              f"{statistics.fmean(s['explained_variance'] for s in sums):.3f} |")


if __name__ == "__main__":
    main()
