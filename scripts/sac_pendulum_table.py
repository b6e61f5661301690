"""The table of docs/critics.md for scripts/sac_pendulum.sh: per configuration, over its seeds,
the mean deterministic evaluation return at the end (the last evaluation) and over the last
five (the last 20% of a 250k run's evaluations...), the first evaluation step at or above -200
per seed, and the critic's bias against Monte-Carlo returns (mean over the probes of the run's
second half).

Usage: python3 scripts/sac_pendulum_table.py OUT_DIR [NAME ...]   (default: scripts/sac_pendulum.sh's
configurations; scripts/flow_pendulum.sh names its own)
"""

import json
import math
import statistics
import sys
from pathlib import Path


def jsonl(p: Path) -> list[dict]:
    return [json.loads(l) for l in p.read_text().splitlines() if l.strip()]


def ms(v: list[float]) -> str:
    if len(v) < 2:
        return f"{v[0]:.1f}" if v else "-"
    return f"{statistics.mean(v):.1f} ± {statistics.stdev(v):.1f}"


def main() -> None:
    out = Path(sys.argv[1])
    print("| configuration | env steps | final eval return | mean of last 5 evals | first eval ≥ −200 (per seed) | critic bias, 2nd half |")
    print("|---|---|---|---|---|---|")
    names = sys.argv[2:] or ["dsac-t", "sac-sched", "stac-sched", "sac", "sac-hl"]
    for name in names:
        seeds = sorted((out / name).glob("s*"))
        if not seeds:
            continue
        final, last5, first, bias, steps = [], [], [], [], 0
        for s in seeds:
            ev = jsonl(s / "evaluations.jsonl")
            final.append(ev[-1]["mean_return"])
            last5.append(statistics.mean(e["mean_return"] for e in ev[-5:]))
            hit = [e["global_step"] for e in ev if e["mean_return"] >= -200]
            first.append(str(hit[0]) if hit else "never")
            rows = jsonl(s / "metrics.jsonl")
            steps = rows[-1]["global_step"]
            b = [r["q_bias"] for r in rows if r.get("q_bias") is not None and isinstance(r["q_bias"], (int, float))
                 and math.isfinite(r["q_bias"]) and r["global_step"] > steps / 2]
            if b:
                bias.append(statistics.mean(b))
        print(f"| {name} | {steps} | {ms(final)} | {ms(last5)} | {', '.join(first)} | {ms(bias)} |")


if __name__ == "__main__":
    main()
