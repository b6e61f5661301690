"""The figure and table of STAC's β sweep on RiskyPointMass-v0 (scripts/stac_risky.sh), with
the standard library only: the evaluation trajectories of each β (one panel each, the danger
circle drawn) and, per β, the penalty rate and how the paths pass the circle.

Reads OUT/beta<B>/s<seed>/trace.jsonl (from `taper eval --trace`: states [x, y, penalised]
after the reset and every step) and eval.json. Writes docs/img/stac_risky_pointmass.svg and
prints a markdown table: per β over seeds (mean ± std), the evaluation return, the
penalties per 100 steps, the share of steps inside the circle and the closest approach to its
centre (mean over episodes of the minimum distance).

Usage: python3 scripts/stac_risky_plot.py OUT_DIR
"""

import json
import math
import statistics
import sys
from pathlib import Path

CENTRE, RADIUS = (0.5, 0.5), 0.3


def episodes(trace: Path) -> list[list[list[float]]]:
    eps: dict[int, list[list[float]]] = {}
    for line in trace.read_text().splitlines():
        r = json.loads(line)
        eps.setdefault(r["episode"], []).append(r["state"])
    return [eps[k] for k in sorted(eps)]


def ms(v: list[float], f: str = ".2f") -> str:
    if len(v) < 2:
        return format(v[0], f)
    return f"{statistics.mean(v):{f}} ± {statistics.stdev(v):{f}}"


def main() -> None:
    out = Path(sys.argv[1])
    betas = sorted((p for p in out.glob("beta*") if p.is_dir()), key=lambda p: float(p.name[4:]))
    rows, panels = [], []
    for b in betas:
        rets, pen, inside, closest = [], [], [], []
        paths = []
        for s in sorted(b.glob("s*")):
            ev = json.loads((s / "eval.json").read_text())
            rets.append(ev["mean_return"])
            eps = episodes(s / "trace.jsonl")
            steps = sum(len(e) - 1 for e in eps)
            pen.append(100 * sum(st[2] for e in eps for st in e[1:]) / steps)
            d = [[math.dist(st[:2], CENTRE) for st in e] for e in eps]
            inside.append(sum(x <= RADIUS for e in d for x in e[:-1]) / steps)
            closest.append(statistics.mean(min(e) for e in d))
            paths.extend(eps[:10])
        rows.append((b.name[4:], ms(rets, ".1f"), ms(pen), ms(inside), ms(closest, ".3f")))
        panels.append((b.name[4:], paths, pen))
    print("| β | eval return | penalties per 100 steps | steps inside the circle | closest approach to its centre |")
    print("|---|---|---|---|---|")
    for r in rows:
        print("| " + " | ".join(r) + " |")
    svg(panels, Path("docs/img/stac_risky_pointmass.svg"))


def svg(panels, path: Path) -> None:
    size, pad = 260, 30
    w = (len(panels) + 1) * (size + pad) + pad
    h = size + 2 * pad
    parts = [f'<svg xmlns="http://www.w3.org/2000/svg" width="{w}" height="{h}" font-family="sans-serif" font-size="13">',
             f'<rect width="{w}" height="{h}" fill="white"/>']
    for i, (beta, paths, _) in enumerate(panels):
        x0, y0 = pad + i * (size + pad), pad
        X = lambda x: x0 + x * size
        Y = lambda y: y0 + (1 - y) * size
        parts.append(f'<rect x="{x0}" y="{y0}" width="{size}" height="{size}" fill="none" stroke="#444"/>')
        parts.append(f'<circle cx="{X(CENTRE[0]):.1f}" cy="{Y(CENTRE[1]):.1f}" r="{RADIUS * size:.1f}" fill="#f4b6b6" stroke="#c00"/>')
        parts.append(f'<circle cx="{X(0):.1f}" cy="{Y(0):.1f}" r="{0.05 * size:.1f}" fill="#7c7" stroke="#070"/>')
        for p in paths:
            pts = " ".join(f"{X(s[0]):.1f},{Y(s[1]):.1f}" for s in p)
            parts.append(f'<polyline points="{pts}" fill="none" stroke="#1f4e9c" stroke-opacity="0.55" stroke-width="1.2"/>')
            parts.append(f'<circle cx="{X(p[0][0]):.1f}" cy="{Y(p[0][1]):.1f}" r="2.5" fill="#1f4e9c"/>')
        parts.append(f'<text x="{x0 + size / 2}" y="{y0 - 10}" text-anchor="middle">STAC, β = {beta}</text>')
    # The penalty rate per β: one bar each (mean over seeds), each seed's value as a dot.
    x0, y0 = pad + len(panels) * (size + pad) + 20, pad
    top = max(max(p) for _, _, p in panels) * 1.2 or 1.0
    bw = (size - 40) / len(panels)
    parts.append(f'<line x1="{x0}" y1="{y0 + size}" x2="{x0 + size - 20}" y2="{y0 + size}" stroke="#444"/>')
    parts.append(f'<line x1="{x0}" y1="{y0}" x2="{x0}" y2="{y0 + size}" stroke="#444"/>')
    for t in range(5):
        v = top * t / 4
        y = y0 + size - size * v / top
        parts.append(f'<text x="{x0 - 4}" y="{y + 4:.1f}" text-anchor="end" font-size="11">{v:.2f}</text>')
    for i, (beta, _, pen) in enumerate(panels):
        m = statistics.mean(pen)
        bx = x0 + 10 + i * bw
        bh = size * m / top
        parts.append(f'<rect x="{bx:.1f}" y="{y0 + size - bh:.1f}" width="{bw - 12:.1f}" height="{bh:.1f}" fill="#c66"/>')
        for v in pen:
            parts.append(f'<circle cx="{bx + (bw - 12) / 2:.1f}" cy="{y0 + size - size * v / top:.1f}" r="3" fill="#333"/>')
        parts.append(f'<text x="{bx + (bw - 12) / 2:.1f}" y="{y0 + size + 16}" text-anchor="middle">β = {beta}</text>')
    parts.append(f'<text x="{x0 + (size - 20) / 2}" y="{y0 - 10}" text-anchor="middle">penalties per 100 steps</text>')
    parts.append("</svg>")
    path.write_text("\n".join(parts) + "\n")
    print(f"\nwrote {path}")


if __name__ == "__main__":
    main()
