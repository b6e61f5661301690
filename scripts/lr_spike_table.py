"""The table of docs/diagnostics.md for scripts/lr_spike.sh: per algorithm and arm, over its
seeds, the recent return just before the spike, its lowest value after the spike starts, and
at the end, with the largest normalised step `step_r` logged during the spike.

Usage: python3 scripts/lr_spike_table.py OUT_DIR
"""

import json
import statistics
import sys
from pathlib import Path


def ms(v):
    return f"{statistics.mean(v):.1f} ± {statistics.stdev(v):.1f}" if len(v) > 1 else f"{v[0]:.1f}"


def main() -> None:
    out = Path(sys.argv[1])
    print("| run | arm | before the spike | lowest after | final | largest step_r in the spike |")
    print("|---|---|---|---|---|---|")
    for algo, start in [("ppo", 300), ("mappo", 100)]:
        for arm in ["plain", "clip", "radius"]:
            before, low, final, rmax = [], [], [], []
            for s in sorted((out / f"{algo}-{arm}").glob("s*")):
                rows = [json.loads(l) for l in (s / "metrics.jsonl").read_text().splitlines() if l.strip()]
                pre = [r for r in rows if r["update"] < start]
                post = [r for r in rows if r["update"] >= start]
                spike = [r for r in rows if start <= r["update"] < start + 20]
                before.append(pre[-1]["recent_return"])
                low.append(min(r["recent_return"] for r in post))
                final.append(rows[-1]["recent_return"])
                rs = [r["step_r"] for r in spike if isinstance(r.get("step_r"), (int, float))]
                rmax.append(max(rs) if rs else float("nan"))
            if before:
                print(f"| {algo} | {arm} | {ms(before)} | {ms(low)} | {ms(final)} | {max(rmax):.3g} |")


if __name__ == "__main__":
    main()
