"""Sweep runner overhead, and what early stopping saves (issue 14).

1. Overhead: N short trainings (``grokwatch train memorization --fast``) run by the sweep
   runner versus the same argv and environment run by a plain script with the same
   parallelism (a pool of Popen, polled every 50 ms), against the same daemon,
   alternated ``--repeat`` times. Target: the sweep's wall time within 5 % of the plain one.
2. Early stop: the demo grid (``grokwatch demo --sweep``; ``--grid fast`` for its 3x3
   version) with its stop rules versus every trial run to its budget: the trials'
   CPU-seconds (RUSAGE_CHILDREN) and the agreement of the two diagrams' labels, cell by
   cell. Target: >= 95 % of the cells agree.

    nice -n 10 python bench/sweep_overhead.py                 # both parts, the 5x4 grid
    nice -n 10 python bench/sweep_overhead.py --part overhead --trials 8
    nice -n 10 python bench/sweep_overhead.py --part early --grid fast
"""

from __future__ import annotations

import argparse
import io
import json
import os
import resource
import statistics
import subprocess
import sys
import time
from dataclasses import replace
from pathlib import Path

from daemonkit import Daemon

from grokwatch import client, wire
from grokwatch.cli.sweep import TRAIN_FLAGS, demo_spec
from grokwatch.client import diagram
from grokwatch.sweep.runner import PYTHON, Runner, _argv
from grokwatch.sweep.spec import EarlyStop, parse_spec


def children_cpu() -> float:
    r = resource.getrusage(resource.RUSAGE_CHILDREN)
    return r.ru_utime + r.ru_stime


def plain(trials, jobs: int, ingest: str) -> float:
    """The same trials by a plain script: at most ``jobs`` at once; returns wall seconds."""
    t0 = time.monotonic()
    queue = list(trials)
    running: list[subprocess.Popen] = []
    while queue or running:
        running = [p for p in running if p.poll() is None]
        while queue and len(running) < jobs:
            t = queue.pop(0)
            env = {**os.environ, "OMP_NUM_THREADS": "1", "MKL_NUM_THREADS": "1",
                   wire.names.SWEEP_RUN_ENV: t.run,
                   wire.names.SWEEP_LABELS_ENV: json.dumps(t.labels),
                   wire.names.ENDPOINT_ENV: ingest}
            running.append(subprocess.Popen(_argv(t.argv), stdin=subprocess.DEVNULL,
                                            stdout=subprocess.DEVNULL,
                                            stderr=subprocess.STDOUT, env=env,
                                            start_new_session=True))
        time.sleep(0.05)
    return time.monotonic() - t0


def overhead(d: Daemon, trials: int, jobs: int, steps: int, repeat: int) -> dict:
    spec = parse_spec({"name": "bench-oh", "preset": "memorization", "fast": True,
                       "train": {"steps": steps}, "axes": {"seed": list(range(trials))}},
                      flags=TRAIN_FLAGS)
    tl = spec.trial_list(d.ingest, python=PYTHON)
    sweep_s, plain_s, own_cpu, trial_cpu = [], [], [], []
    for i in range(repeat):
        for kind in (("plain", "sweep") if i % 2 == 0 else ("sweep", "plain")):
            if kind == "plain":
                plain_s.append(plain(tl, jobs, d.ingest))
            else:
                t0, p0, c0 = time.monotonic(), time.process_time(), children_cpu()
                Runner(spec, api=d.api, ingest=d.ingest, jobs=jobs, out=io.StringIO(),
                       resume=False).run()
                sweep_s.append(time.monotonic() - t0)
                own_cpu.append(time.process_time() - p0)  # the runner's own work
                trial_cpu.append(children_cpu() - c0)
            print(f"  {kind:5s} {trials} trials x {steps} steps, {jobs} at once: "
                  f"{(plain_s if kind == 'plain' else sweep_s)[-1]:.1f} s", flush=True)
    p, s = statistics.median(plain_s), statistics.median(sweep_s)
    return {"trials": trials, "jobs": jobs, "steps": steps, "plain_s": plain_s,
            "sweep_s": sweep_s, "overhead_pct": 100.0 * (s - p) / p,
            "runner_cpu_s": own_cpu, "trial_cpu_s": trial_cpu,
            "runner_cpu_pct": 100.0 * sum(own_cpu) / max(sum(trial_cpu), 1e-9)}


def labels(api: str, name: str) -> dict:
    runs = client.request(api, "runs", timeout=10)["runs"]
    d = diagram.build([r for r in runs if (r.get("config") or {}).get("sweep") == name])
    assert d is not None
    return {k: c.letter for k, c in d.cells.items()}, diagram.text(d)


def early(d: Daemon, grid: str, jobs: int) -> dict:
    spec = demo_spec(grid == "fast")
    out = {}
    for kind, stop in (("early", spec.stop), ("full", EarlyStop())):
        s = replace(spec, name=f"bench-{kind}", stop=stop)
        c0, t0 = children_cpu(), time.monotonic()
        res = Runner(s, api=d.api, ingest=d.ingest, jobs=jobs, out=io.StringIO(),
                     resume=False).run()
        cpu, wall = children_cpu() - c0, time.monotonic() - t0
        time.sleep(1.0)  # the last byes
        lab, text = labels(d.api, s.name)
        out[kind] = {"cpu_s": cpu, "wall_s": wall, "labels": lab, "text": text,
                     "states": {t.trial.run: t.state for t in res.trials}}
        print(f"  {kind}: {cpu:.0f} CPU-s, {wall:.0f} s wall\n{text}", flush=True)
    e, f = out["early"]["labels"], out["full"]["labels"]
    agree = sum(e.get(k) == v for k, v in f.items())
    return {"grid": grid, "cells": len(f), "agree": agree,
            "agree_pct": 100.0 * agree / max(1, len(f)),
            "disagree": {f"{k}": (e.get(k), v) for k, v in f.items() if e.get(k) != v},
            "cpu_early_s": out["early"]["cpu_s"], "cpu_full_s": out["full"]["cpu_s"],
            "saved_pct": 100.0 * (1 - out["early"]["cpu_s"] / out["full"]["cpu_s"]),
            "wall_early_s": out["early"]["wall_s"], "wall_full_s": out["full"]["wall_s"],
            "text_early": out["early"]["text"], "text_full": out["full"]["text"]}


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--part", choices=("overhead", "early", "both"), default="both")
    ap.add_argument("--trials", type=int, default=8)
    ap.add_argument("--steps", type=int, default=150, help="steps per overhead trial")
    ap.add_argument("--repeat", type=int, default=2)
    ap.add_argument("--jobs", type=int, default=2)
    ap.add_argument("--grid", choices=("fast", "full"), default="full")
    ap.add_argument("--json", type=Path, help="write the results here")
    a = ap.parse_args()
    d = Daemon("gwsw-")
    res: dict = {}
    try:
        if a.part in ("overhead", "both"):
            print("overhead:", flush=True)
            r = res["overhead"] = overhead(d, a.trials, a.jobs, a.steps, a.repeat)
            print(f"overhead: sweep {statistics.median(r['sweep_s']):.1f} s vs plain "
                  f"{statistics.median(r['plain_s']):.1f} s (medians): "
                  f"{r['overhead_pct']:+.1f} % (target within 5 %); the runner's own CPU: "
                  f"{sum(r['runner_cpu_s']):.2f} s = {r['runner_cpu_pct']:.2f} % of the "
                  "trials' CPU", flush=True)
        if a.part in ("early", "both"):
            print(f"early stop ({a.grid} grid):", flush=True)
            r = res["early"] = early(d, a.grid, a.jobs)
            print(f"early stop: {r['cpu_early_s']:.0f} vs {r['cpu_full_s']:.0f} CPU-s "
                  f"({r['saved_pct']:.0f} % saved); labels agree on {r['agree']}/{r['cells']} "
                  f"cells ({r['agree_pct']:.0f} %, target >= 95 %); differ: {r['disagree']}",
                  flush=True)
    finally:
        d.stop()
    if a.json:
        a.json.write_text(json.dumps(res, indent=1, default=str))
    return 0


if __name__ == "__main__":
    sys.exit(main())
