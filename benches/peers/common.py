"""Runner shared by every bench_*.py script (standard library only, so it works in any venv).

Parent: ``python bench_X.py [--runs N]`` starts the same script N times, one after the other,
as a fresh child process (``--child``). Before each run it waits for an idle machine; for each
run it reads the child's single ``RESULT {json}`` line and adds what the OS measured for that
child (wall, user+sys CPU, peak RSS) and the CPU other processes used meanwhile. It prints
min / median / max of every numeric figure and writes ``results/<name>.json``.
Child: does the measurement and calls ``emit``.
"""

import argparse
import datetime
import json
import os
import platform
import statistics
import subprocess
import sys
import time
from importlib import metadata

RESULTS_DIR = os.path.join(os.path.dirname(os.path.abspath(__file__)), "results")
LOG_ROOT = "/tmp/peers-logs"
RUNNER_OPTS = ("runs", "child", "tag", "quiet_max_wait", "quiet_cores")
CLK_TCK = os.sysconf("SC_CLK_TCK")


def is_num(v) -> bool:
    return isinstance(v, (int, float)) and not isinstance(v, bool)


# ---------------------------------------------------------------- child side

def emit(result: dict) -> None:
    print("RESULT " + json.dumps(result), flush=True)


def timed_loop(work, min_seconds: float) -> tuple[int, float]:
    """Repeat ``work()`` (returns the number of items it did) for at least ``min_seconds``."""
    items, t0 = 0, time.perf_counter()
    while True:
        items += work()
        elapsed = time.perf_counter() - t0
        if elapsed >= min_seconds:
            return items, elapsed


# ---------------------------------------------------------------- machine load

def busy_cpu_seconds() -> float:
    """Busy CPU seconds of the whole machine so far: user+nice+system+irq+softirq+steal."""
    try:
        with open("/proc/stat") as f:
            ticks = [int(x) for x in f.readline().split()[1:]]
    except OSError:
        return float("nan")
    user, nice, system, _idle, _iowait, irq, softirq = ticks[:7]
    steal = ticks[7] if len(ticks) > 7 else 0
    return (user + nice + system + irq + softirq + steal) / CLK_TCK


def busy_cores(window_s: float) -> float:
    b0, t0 = busy_cpu_seconds(), time.perf_counter()
    time.sleep(window_s)
    return (busy_cpu_seconds() - b0) / (time.perf_counter() - t0)


def wait_until_idle(max_busy_cores: float, max_wait_s: float, window_s: float = 2.0) -> tuple[float, float]:
    """Sample ``window_s`` windows until one shows <= ``max_busy_cores`` busy cores or
    ``max_wait_s`` has passed. Returns (seconds waited, busy cores in the last window)."""
    t0 = time.perf_counter()
    while True:
        busy = busy_cores(window_s)
        waited = time.perf_counter() - t0
        if busy <= max_busy_cores or waited >= max_wait_s:
            return waited, busy


# ---------------------------------------------------------------- one child process

def run_child(cmd: list[str], log_path: str | None, cwd: str | None = None,
              env: dict | None = None) -> tuple[dict | None, dict, str]:
    """Run ``cmd`` to completion. Returns (its RESULT dict or None, OS figures, stdout+stderr)."""
    busy0, t0 = busy_cpu_seconds(), time.perf_counter()
    proc = subprocess.Popen(cmd, stdout=subprocess.PIPE, stderr=subprocess.STDOUT,
                            cwd=cwd, env=env, text=True)
    text = "".join(proc.stdout)
    _, status, usage = os.wait4(proc.pid, 0)  # rusage of this child only
    wall = time.perf_counter() - t0
    busy = busy_cpu_seconds() - busy0
    proc.returncode = os.waitstatus_to_exitcode(status)
    if log_path:
        with open(log_path, "w") as f:
            f.write(text)
    result = None
    for line in text.splitlines():
        if line.startswith("RESULT "):
            result = json.loads(line[len("RESULT "):])
    cpu = usage.ru_utime + usage.ru_stime
    figures = {
        "process_wall_s": wall,
        "process_cpu_s": cpu,
        "process_peak_rss_mib": usage.ru_maxrss / 1024.0,  # Linux reports KiB
        # cores' worth of CPU that other processes used during the run (0 = machine to ourselves)
        "other_load_cores": max(0.0, (busy - cpu) / wall),
        "exit_code": proc.returncode,
    }
    return result, figures, text


# ---------------------------------------------------------------- aggregation

def summarize(runs: list[dict]) -> dict:
    keys = list(dict.fromkeys(k for r in runs for k, v in r.items() if is_num(v)))
    out = {}
    for k in keys:
        vals = [r[k] for r in runs if is_num(r.get(k))]
        out[k] = {"min": min(vals), "median": statistics.median(vals), "max": max(vals), "n": len(vals)}
    return out


def fmt(v: float) -> str:
    a = abs(v)
    if a == 0:
        return "0"
    if a >= 1e5:
        return f"{v:,.0f}"
    if a >= 100:
        return f"{v:,.1f}"
    if a >= 1:
        return f"{v:.3f}"
    if a >= 1e-3:
        return f"{v:.5f}"
    return f"{v:.3e}"


def print_summary(title: str, summary: dict) -> None:
    w = max((len(k) for k in summary), default=10)
    print(f"\n== {title}")
    print(f"{'figure'.ljust(w)}  {'min':>14} {'median':>14} {'max':>14}   n")
    for k, s in summary.items():
        print(f"{k.ljust(w)}  {fmt(s['min']):>14} {fmt(s['median']):>14} {fmt(s['max']):>14}   {s['n']}")


def machine_info() -> dict:
    model = ""
    try:
        with open("/proc/cpuinfo") as f:
            model = next((l.split(":", 1)[1].strip() for l in f if l.startswith("model name")), "")
    except OSError:
        pass
    return {"cpu_model": model, "logical_cpus": os.cpu_count(), "platform": platform.platform(),
            "python": sys.version.split()[0], "python_executable": sys.executable}


def package_versions(names) -> dict:
    out = {}
    for n in names:
        try:
            out[n] = metadata.version(n)
        except metadata.PackageNotFoundError:
            out[n] = "not installed"
    return out


# ---------------------------------------------------------------- parent side

def parent_main(name: str, child_args: list[str], runs: int, packages, per_run_args=None,
                extra_meta: dict | None = None, quiet_cores: float = 0.3,
                quiet_max_wait_s: float = 180.0) -> dict:
    """Run ``runs`` fresh children of the calling script, print and save the aggregate."""
    os.makedirs(RESULTS_DIR, exist_ok=True)
    log_dir = os.path.join(LOG_ROOT, name)
    os.makedirs(log_dir, exist_ok=True)
    started = datetime.datetime.now(datetime.timezone.utc).isoformat(timespec="seconds")
    env = dict(os.environ)
    env.setdefault("PYTHONDONTWRITEBYTECODE", "1")
    rows = []
    for i in range(runs):
        cmd = [sys.executable, os.path.abspath(sys.argv[0]), "--child", *child_args]
        cmd += per_run_args(i) if per_run_args else []
        log_path = os.path.join(log_dir, f"run{i}.log")
        if quiet_max_wait_s > 0:
            waited, busy_before = wait_until_idle(quiet_cores, quiet_max_wait_s)
        else:
            waited, busy_before = 0.0, float("nan")
        result, figures, text = run_child(cmd, log_path, env=env)
        figures["busy_cores_before"] = busy_before
        figures["waited_for_quiet_s"] = waited
        if result is None:
            print(f"run {i}: child produced no RESULT line (exit {figures['exit_code']}); log: {log_path}")
            print(text[-3000:])
            sys.exit(1)
        rows.append({**result, **figures})
        brief = ", ".join(f"{k}={fmt(v)}" for k, v in result.items() if is_num(v))
        print(f"run {i + 1}/{runs}: {brief}, process_wall_s={figures['process_wall_s']:.2f}, "
              f"other_load_cores={figures['other_load_cores']:.2f} (waited {waited:.0f}s for quiet)",
              flush=True)
    summary = summarize(rows)
    print_summary(name, summary)
    out = {
        "name": name,
        "started_utc": started,
        "command": " ".join([os.path.basename(sys.executable), *sys.argv]),
        "child_args": child_args,
        "runs": runs,
        "machine": machine_info(),
        "packages": package_versions(packages),
        "summary": summary,
        "all_runs": rows,
        **(extra_meta or {}),
    }
    path = os.path.join(RESULTS_DIR, f"{name}.json")
    with open(path, "w") as f:
        json.dump(out, f, indent=2)
    print(f"\nwrote {path}; per-run logs in {log_dir}")
    return out


def base_argparser(description: str, default_runs: int = 5) -> argparse.ArgumentParser:
    p = argparse.ArgumentParser(description=description)
    p.add_argument("--runs", type=int, default=default_runs,
                   help=f"fresh child processes to run, one after the other (default {default_runs})")
    p.add_argument("--child", action="store_true", help=argparse.SUPPRESS)
    p.add_argument("--tag", default="", help="suffix for the results file name")
    p.add_argument("--quiet-max-wait", type=float, default=180.0,
                   help="before each run wait up to this many seconds for fewer than --quiet-cores "
                        "busy cores; 0 = don't wait (default 180)")
    p.add_argument("--quiet-cores", type=float, default=0.3)
    return p


def child_args_from(ns: argparse.Namespace, skip=RUNNER_OPTS) -> list[str]:
    """Turn the parsed options, minus ``skip``, back into a command line for the child."""
    out = []
    for k, v in vars(ns).items():
        if k in skip or v is None or v is False:
            continue
        flag = "--" + k.replace("_", "-")
        if v is True:
            out.append(flag)
        elif isinstance(v, list):
            out += [flag, *map(str, v)]
        else:
            out += [flag, str(v)]
    return out


def main_for(name: str, description: str, child, add_args, packages, default_runs: int = 5,
             seeded: bool = False, extra_meta: dict | None = None) -> None:
    """Entry point of a bench script: parse options, then run as child or parent.
    ``seeded``: run i gets ``--seed first_seed + i`` instead of the same ``--seed``."""
    p = base_argparser(description, default_runs)
    add_args(p)
    ns = p.parse_args()
    if ns.child:
        child(ns)
        return
    skip = RUNNER_OPTS + (("seed",) if seeded else ())
    per_run = (lambda i: ["--seed", str(ns.seed + i)]) if seeded else None
    parent_main(name + ns.tag, child_args_from(ns, skip), ns.runs, packages, per_run_args=per_run,
                extra_meta=extra_meta, quiet_cores=ns.quiet_cores, quiet_max_wait_s=ns.quiet_max_wait)
