"""Onset detection on the workload zoo, through a real daemon.

Starts ``grokwatch daemon`` on ipc:// endpoints with a temporary store, trains a
sweep of grokking runs and negative controls (at most ``--jobs`` at once, one
torch thread each) with the probe pointed at it, then reads the alerts back
with the ``alerts`` request and the accuracy series with ``export``.

Per run: t_mem (first step train acc >= 0.99), t_onset (first ``onset``
alert), t_50 (first step val acc >= 0.5), lead = t_50 - t_onset and lead
fraction = lead / (t_50 - t_mem). Summary: recall (grokking runs with an onset
in [t_mem, t_50)), false onsets on controls, median lead fraction, beside two
anchors on the same runs: a val-acc >= 0.1 threshold detector (needs
validation data) and "fire at t_mem". Targets: recall 100 %, 0 false onsets,
median lead fraction >= 0.5.

    python bench/detection.py            # the full sweep (about 10 min on 2 cores)
    python bench/detection.py --quick    # quadratic-MLP runs only (a few minutes)
"""

from __future__ import annotations

import argparse
import math
import os
import shutil
import statistics
import subprocess
import sys
import tempfile
import time
from concurrent.futures import ProcessPoolExecutor
from pathlib import Path
from typing import Any

from grokwatch.wire.names import TRAIN_ACC, VAL_ACC, WEIGHT_NORM

# Gromov's quadratic MLP (fast) and the reference one-hot MLP; full batch AdamW.
QUAD = {"model": "quadratic", "lr": 1e-2, "beta2": 0.98, "log_every": 10, "observe_every": 10,
        "weight_decay": 1.0, "frac": 0.3, "steps": 2000, "until_val": 0.95, "extra_steps": 40}
MLP = {"model": "mlp", "lr": 1e-3, "beta2": 0.999, "log_every": 10, "observe_every": 20,
       "weight_decay": 1.0, "frac": 0.5, "steps": 3000, "until_val": 0.95, "extra_steps": 40}

GROKKING: list[tuple[str, dict[str, Any]]] = [
    ("q-add-p53-s0", {**QUAD, "op": "add", "modulus": 53, "seed": 0}),
    ("q-add-p53-f.25-s2", {**QUAD, "op": "add", "modulus": 53, "frac": 0.25, "seed": 2}),
    ("q-sub-p53-s1", {**QUAD, "op": "sub", "modulus": 53, "seed": 1}),
    ("q-add-p59-s2", {**QUAD, "op": "add", "modulus": 59, "seed": 2}),
    ("q-sub-p59-s0", {**QUAD, "op": "sub", "modulus": 59, "seed": 0}),
    ("q-sub-p61-f.35-s3", {**QUAD, "op": "sub", "modulus": 61, "frac": 0.35, "seed": 3}),
    ("q-add-p67-s1", {**QUAD, "op": "add", "modulus": 67, "seed": 1}),
    ("q-sub-p67-s2", {**QUAD, "op": "sub", "modulus": 67, "seed": 2}),
    ("q-add-p71-s0", {**QUAD, "op": "add", "modulus": 71, "seed": 0}),
    ("mlp-add-p97-s0", {**MLP, "op": "add", "modulus": 97, "seed": 0}),
    ("mlp-sub-p97-s1", {**MLP, "op": "sub", "modulus": 97, "seed": 1}),
    ("mlp-add-p97-s2", {**MLP, "op": "add", "modulus": 97, "seed": 2}),
]
CONTROLS: list[tuple[str, dict[str, Any]]] = [
    ("ctl-q-wd0-add-p53", {**QUAD, "op": "add", "modulus": 53, "weight_decay": 0.0,
                           "steps": 1000, "until_val": None}),
    ("ctl-q-wd0-sub-p59", {**QUAD, "op": "sub", "modulus": 59, "weight_decay": 0.0,
                           "steps": 1000, "until_val": None}),
    ("ctl-q-little-f.1-p53", {**QUAD, "op": "add", "modulus": 53, "frac": 0.1,
                              "steps": 1500, "until_val": None}),
    ("ctl-q-generous-f.7-p53", {**QUAD, "op": "add", "modulus": 53, "frac": 0.7}),
    ("ctl-mlp-generous-f.9-p97", {**MLP, "op": "add", "modulus": 97, "frac": 0.9,
                                  "steps": 800}),
    ("ctl-mlp-wd0-p97", {**MLP, "op": "add", "modulus": 97, "weight_decay": 0.0,
                         "steps": 2000, "until_val": None}),
]


def _daemon_cmd() -> list[str]:
    return [sys.executable, "-m", "grokwatch", "daemon"]


def _train(name: str, cfg: dict[str, Any], endpoint: str) -> tuple[str, float]:
    from grokwatch.examples.train import WorkloadConfig, run_workload

    summary = run_workload(WorkloadConfig(**cfg), endpoint, run=name)
    return name, summary["seconds"]


def _first(rows: list[dict], name: str, at_least: float) -> int | None:
    for r in rows:
        if r["name"] == name and isinstance(r["value"], float) and r["value"] >= at_least:
            return int(r["step"])
    return None


def _fmt(v: Any) -> str:
    if v is None:
        return "-"
    return f"{v:.2f}" if isinstance(v, float) else str(v)


def _lead(t_mem: int | None, t_fire: int | None, t_50: int | None) -> tuple[Any, Any]:
    if t_fire is None or t_50 is None or t_mem is None:
        return None, None
    lead = t_50 - t_fire
    if t_50 <= t_mem:
        return lead, None  # no memorized plateau (comprehension): no fraction to speak of
    return lead, lead / (t_50 - t_mem)


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--quick", action="store_true", help="quadratic-MLP runs only")
    ap.add_argument("--jobs", type=int, default=2, help="trainings at once (default 2)")
    args = ap.parse_args()
    from grokwatch import client

    grok = [g for g in GROKKING if not (args.quick and g[0].startswith("mlp"))]
    ctl = [c for c in CONTROLS if not (args.quick and "mlp" in c[0])]
    tmp = Path(tempfile.mkdtemp(prefix="gwbench-"))
    ingest, pub, api = (f"ipc://{tmp}/{n}" for n in ("ingest", "pub", "api"))
    db = tmp / "bench.db"
    err = open(tmp / "daemon.stderr", "wb")  # noqa: SIM115 - closed in finally
    daemon = subprocess.Popen([*_daemon_cmd(), "--ingest", ingest, "--pub", pub, "--api", api,
                               "--db", str(db), "--lost-after", "600"],
                              stdout=subprocess.DEVNULL, stderr=err)
    try:
        deadline = time.monotonic() + 30
        while True:
            try:
                client.request(api, "ping", timeout=0.5)
                break
            except client.DaemonUnavailable:
                if daemon.poll() is not None or time.monotonic() > deadline:
                    print("daemon did not start:", (tmp / "daemon.stderr").read_text())
                    return 1
        runs = grok + ctl
        print(f"training {len(grok)} grokking runs and {len(ctl)} controls, "
              f"{args.jobs} at a time ...", flush=True)
        t0 = time.perf_counter()
        secs: dict[str, float] = {}
        env = dict(os.environ, OMP_NUM_THREADS="1")
        os.environ.update(env)
        # Longest first, so the two lanes finish together.
        order = sorted(runs, key=lambda r: -(r[1]["steps"] * (4 if r[1]["model"] == "mlp" else 1)))
        with ProcessPoolExecutor(max_workers=args.jobs) as pool:
            futs = [pool.submit(_train, n, c, ingest) for n, c in order]
            for f in futs:
                name, s = f.result()
                secs[name] = s
                print(f"  {name:26s} trained in {s:5.1f} s", flush=True)
        wall = time.perf_counter() - t0
        # every run said bye and was acknowledged; give the daemon a beat to publish
        time.sleep(0.5)
        table = []
        costs: dict[str, list[float]] = {}
        mismatches: list[str] = []
        for name, _cfg in runs:
            rows = [row for m in (TRAIN_ACC, VAL_ACC) for row in client.request(
                api, "export", run=name, metric=m, timeout=30)["rows"]]
            alerts = client.request(api, "alerts", run=name, timeout=30)["alerts"]
            onset = [a for a in alerts if a["kind"] == "onset" and a["status"] == "firing"]
            t_mem = _first(rows, TRAIN_ACC, 0.99)
            t_50 = _first(rows, VAL_ACC, 0.5)
            t_10 = _first(rows, VAL_ACC, 0.1)
            t_on = onset[0]["step"] if onset else None
            table.append({"run": name, "control": name.startswith("ctl-"), "t_mem": t_mem,
                          "t_onset": t_on, "t_50": t_50, "t_10": t_10,
                          "kinds": [a["kind"] for a in alerts]})
            cost = _replay_cost(name, client.request(api, "export", run=name, timeout=60)["rows"],
                                alerts)
            mismatches += cost.pop("mismatch")
            for k, v in cost.items():
                costs.setdefault(k, []).extend(v)
    finally:
        daemon.terminate()
        try:
            daemon.wait(10)
        except subprocess.TimeoutExpired:
            daemon.kill()
        err.close()
        shutil.rmtree(tmp, ignore_errors=True)

    hdr = (f"{'run':26s} {'t_mem':>6s} {'t_onset':>7s} {'t_50':>6s} {'lead':>6s} {'frac':>5s}"
           f" | {'t_val10':>7s} {'frac':>5s} | {'t_mem frac':>10s}  alerts")
    print("\n" + hdr + "\n" + "-" * len(hdr))
    det = {"onset": [], "val>=0.1": [], "t_mem": []}
    hits = {"onset": 0, "val>=0.1": 0, "t_mem": 0}
    false = {"onset": 0, "val>=0.1": 0, "t_mem": 0}
    n_grok = 0
    for r in table:
        fires = {"onset": r["t_onset"], "val>=0.1": r["t_10"], "t_mem": r["t_mem"]}
        lead, frac = _lead(r["t_mem"], r["t_onset"], r["t_50"])
        _, frac10 = _lead(r["t_mem"], r["t_10"], r["t_50"])
        _, fracm = _lead(r["t_mem"], r["t_mem"], r["t_50"])
        print(f"{r['run']:26s} {_fmt(r['t_mem']):>6s} {_fmt(r['t_onset']):>7s} "
              f"{_fmt(r['t_50']):>6s} {_fmt(lead):>6s} {_fmt(frac):>5s} | "
              f"{_fmt(r['t_10']):>7s} {_fmt(frac10):>5s} | {_fmt(fracm):>10s}  "
              f"{','.join(r['kinds'])}")
        if r["control"]:
            for k, t in fires.items():
                false[k] += t is not None
            continue
        n_grok += 1
        for k, t in fires.items():
            ok = (t is not None and r["t_mem"] is not None and r["t_50"] is not None
                  and r["t_mem"] <= t < r["t_50"])
            hits[k] += ok
            if ok:
                det[k].append(_lead(r["t_mem"], t, r["t_50"])[1])
    n_ctl = sum(r["control"] for r in table)
    print(f"\n{'detector':12s} {'recall':>12s} {'false onsets':>14s} {'median lead frac':>17s}")
    for k in ("onset", "val>=0.1", "t_mem"):
        med = statistics.median(det[k]) if det[k] else math.nan
        print(f"{k:12s} {hits[k]:>5d}/{n_grok:<2d} {100 * hits[k] / max(n_grok, 1):3.0f}%"
              f" {false[k]:>8d}/{n_ctl:<5d} {med:>17.2f}")
    by_model: dict[str, list[float]] = {}
    for r in table:
        _, frac = _lead(r["t_mem"], r["t_onset"], r["t_50"])
        if not r["control"] and frac is not None and r["t_onset"] < r["t_50"]:
            by_model.setdefault(r["run"].split("-")[0], []).append(frac)
    print("onset median lead fraction by model: " + ", ".join(
        f"{m} {statistics.median(v):.2f} ({len(v)} runs)" for m, v in sorted(by_model.items())))
    print("(val>=0.1 needs validation labels; onset uses none.  Targets for onset: recall 100%,"
          " 0 false onsets, median lead fraction >= 0.5.)")
    print(f"wall time {wall:.0f} s for {sum(secs.values()):.0f} s of training")
    print("\ndetector cost, replaying the exported series in-process (median per record):")
    for k in ("train", "geometry"):
        v = costs.get(k, [])
        if v:
            print(f"  {k:9s} records: {statistics.median(v) * 1e6:6.2f} us  (n={len(v)})")
    print("replay of the exported series gives the live alerts: "
          + ("yes, every run" if not mismatches else f"NO: {', '.join(mismatches)}"))
    return 0


def _replay_cost(name: str, rows: list[dict], live: list[dict]) -> dict[str, list]:
    """Time RunDetector over one run's exported rows; check it reproduces the live alerts."""
    import json

    from grokwatch.cli.replay import jsonl_records
    from grokwatch.daemon.detectors import RunDetector

    recs = list(jsonl_records((json.dumps(r) for r in rows), name))
    det = RunDetector(name)
    out: dict[str, list] = {"train": [], "geometry": [], "mismatch": []}
    got = []
    clock = time.perf_counter
    for _kind, step, t, vals in recs:
        t0 = clock()
        alerts = det.on_scalars(step, t, vals)
        dt = clock() - t0
        out["geometry" if WEIGHT_NORM in vals else "train"].append(dt)
        got += [(a.kind, a.status, a.step) for a in alerts]
    want = [(a["kind"], a["status"], a["step"]) for a in live
            if a["kind"] not in ("stalled", "lost", "dropped")]
    if got != want:
        out["mismatch"].append(name)
    return out


if __name__ == "__main__":
    sys.exit(main())
