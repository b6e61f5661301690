"""The wall time at which taper runs first reach a target: for each run folder, the first
metrics row whose `recent_return` (the mean of the last 20 finished episodes for PPO, of the
last 100 for the multi-agent learners) is at least the target, with its `global_step` and
`time_elapsed` (seconds since training started: process start-up and env construction are
not in it). Standard library only.

Usage: python3 scripts/time_to_target.py TARGET RUN_DIR [RUN_DIR ...]
"""
import json
import statistics
import sys


def first_at(run_dir, target):
    with open(f"{run_dir}/metrics.jsonl") as f:
        for line in f:
            row = json.loads(line)
            r = row.get("recent_return")
            if r is not None and r >= target:
                return row["global_step"], row["time_elapsed"]
    return None


def main():
    target = float(sys.argv[1])
    times = []
    for d in sys.argv[2:]:
        hit = first_at(d, target)
        if hit is None:
            print(f"{d}: never reaches {target}")
        else:
            print(f"{d}: step {hit[0]:.0f}, {hit[1]:.3f} s")
            times.append(hit[1])
    if times:
        print(f"median over {len(times)} of {len(sys.argv) - 2} runs: {statistics.median(times):.3f} s")


if __name__ == "__main__":
    main()
