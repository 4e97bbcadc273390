"""Hooks bench: what alert hooks cost the daemon's ingest thread, side by side in one run.

Prints:

1. ``HookRunner.submit`` cost per alert (median of batches, µs) for: no rule
   matching; a matching rule in cooldown (dedup); a matching rule with room in
   the queue; an alert storm against a full queue (oldest dropped). The hook
   itself hangs, so no process start is counted here: submit never waits on one.
2. The real daemon's sustained ingest (scalar values/s, stored) with no hooks
   file vs with every worker stuck in a hook that sleeps forever while an alert
   storm (runs whose loss turns NaN) keeps the hook queue full; medians of
   alternating repeats, and their ratio; also the daemon's CPU time per 1,000
   values, which a shared, busy machine disturbs less than wall time.

    python bench/hooks.py [--quick]
"""

from __future__ import annotations

import argparse
import logging
import multiprocessing as mp
import shutil
import statistics
import tempfile
import time
from collections.abc import Callable
from pathlib import Path

from daemonkit import SCALARS, Daemon, make_frames, sender

from grokwatch.daemon.alert import Alert
from grokwatch.daemon.hookrules import parse_rules
from grokwatch.daemon.hooks import HookRunner
from grokwatch.wire.names import TRAIN_ACC, TRAIN_LOSS, VAL_ACC, VAL_LOSS

# ---------------------------------------------------------------- 1. submit cost


def submit_cost(batches: int, per_batch: int) -> dict[str, float]:
    """Median µs per submit() call in four situations."""
    d = tempfile.mkdtemp(prefix="gwh-")
    hang = Path(d, "hang.sh")
    hang.write_text("#!/bin/sh\nsleep 1000\n")
    hang.chmod(0o755)
    out: dict[str, float] = {}
    try:
        def alerts(n: int, same: bool) -> list[dict]:
            return [Alert(run="run-0" if same else f"run-{i}", step=i, t=time.time(),
                          kind="onset", summary="s").to_wire() for i in range(n)]

        cases = {
            "no rule matches": ({"on": "lost", "exec": [str(hang)]}, False, 10**9),
            "in cooldown (dedup)": ({"on": "*", "exec": [str(hang)]}, True, 10**9),
            "queued (room left)": ({"on": "*", "exec": [str(hang)], "cooldown": 0}, False,
                                   10**9),
            "storm, queue full": ({"on": "*", "exec": [str(hang)], "cooldown": 0}, False, 100),
        }
        for name, (rule, same, qmax) in cases.items():
            r = HookRunner(parse_rules({"hook": [rule]}), concurrency=1,
                           queue_max=min(qmax, batches * per_batch + 10), kill_grace=0.1)
            batch = alerts(per_batch, same)
            r.submit(batch[0])  # one hook starts (and hangs) before timing
            if qmax == 100:
                for a in alerts(200, False):
                    r.submit(a)  # full from the start
            times = []
            for _ in range(batches):
                t0 = time.perf_counter()
                for a in batch:
                    r.submit(a)
                times.append((time.perf_counter() - t0) / per_batch * 1e6)
                r.drain_events()  # as the daemon does every ~100 ms
            st = r.stats()
            r.close(timeout=0)
            out[name] = statistics.median(times)
            print(f"  {name:<22} {out[name]:7.2f} µs/alert  (queued {st['queued']}, "
                  f"dropped {st['dropped']}, suppressed {st['suppressed']})", flush=True)
    finally:
        shutil.rmtree(d, ignore_errors=True)
    return out


# ---------------------------------------------------------------- 2. daemon ingest


def values(steps: int, diverge: bool) -> Callable[[int], dict[str, float]]:
    """Scalars per step; with ``diverge`` the loss turns NaN at the last step."""

    def at(step: int) -> dict[str, float]:
        x = float("nan") if diverge and step == steps - 1 else 1.0 / (step + 1)
        return {TRAIN_LOSS: x, TRAIN_ACC: 0.5, VAL_LOSS: 2.0, VAL_ACC: 0.1}
    return at


def ingest_rate(hooks: str | None, runs: int, steps: int, storm_runs: int, rep: int
                ) -> tuple[float, float, dict]:
    """(scalar values/s stored, daemon CPU µs per 1,000 values, hook runner stats)."""
    d = Daemon("gwh-", hooks)
    try:
        names = [f"r{rep}-{i}" for i in range(runs)]
        storm = [f"storm{rep}-{i}" for i in range(storm_runs)]
        frames = make_frames(names, steps, 1000, values(steps, False))
        # The storm's runs diverge early and then keep streaming: alerts arrive
        # throughout, each submitted to a runner whose workers all hang.
        sframes = make_frames(storm, 5, 5000, values(5, True))
        mixed: list[bytes] = []
        k = max(1, len(frames) // max(1, len(sframes)))
        for i, f in enumerate(frames):
            mixed.append(f)
            if i % k == 0 and sframes:
                mixed.append(sframes.pop(0))
        mixed += sframes
        expect = runs * (steps + 1) + storm_runs * 6
        base = d.status()["records"]
        cpu0 = d.cpu()
        go = mp.Event()
        p = mp.Process(target=sender, args=(d.ingest, mixed, go))
        p.start()
        time.sleep(0.5)
        t0 = time.perf_counter()
        go.set()
        while d.status()["records"] - base < expect:
            time.sleep(0.02)
        dt = time.perf_counter() - t0
        cpu = d.cpu() - cpu0
        p.join(60)
        st = d.status()
        scal = (runs * steps + storm_runs * 5) * len(SCALARS)
        return scal / dt, cpu / scal * 1e9, st.get("queues", {}).get("hooks", {})
    finally:
        d.stop()


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--quick", action="store_true")
    a = ap.parse_args()
    logging.getLogger("grokwatch.hooks").setLevel(logging.CRITICAL)  # drops are the point here
    print("1. HookRunner.submit on the daemon's thread (median of batches)")
    submit_cost(10 if a.quick else 30, 1000)

    d = tempfile.mkdtemp(prefix="gwh-")
    hang = Path(d, "hang.sh")
    hang.write_text("#!/bin/sh\nsleep 1000\n")
    hang.chmod(0o755)
    hooks = Path(d, "hooks.toml")
    hooks.write_text(f'[[hook]]\non = "*"\nexec = ["{hang}"]\ntimeout = 600\ncooldown = 0\n')
    runs, steps = (20, 2000) if a.quick else (40, 3000)
    storm = 1500  # more alerts than the daemon's hook queue (1,000) holds
    reps = 2 if a.quick else 5
    print(f"2. daemon ingest, {runs} runs x {steps} steps x 4 scalars "
          f"(+{storm} diverging runs), {reps} alternating repeats")
    base_rates, hook_rates, base_cpu, hook_cpu = [], [], [], []
    last: dict = {}
    try:
        for rep in range(reps):
            r, c, _ = ingest_rate(None, runs, steps, storm, rep)
            base_rates.append(r)
            base_cpu.append(c)
            r, c, last = ingest_rate(str(hooks), runs, steps, storm, rep)
            hook_rates.append(r)
            hook_cpu.append(c)
            print(f"  repeat {rep + 1}: no hooks {base_rates[-1]:>9,.0f}/s "
                  f"({base_cpu[-1]:5.0f} CPU µs/1k)   hanging hooks + storm "
                  f"{hook_rates[-1]:>9,.0f}/s ({hook_cpu[-1]:5.0f} CPU µs/1k)", flush=True)
    finally:
        shutil.rmtree(d, ignore_errors=True)
    b, h = statistics.median(base_rates), statistics.median(hook_rates)
    bc, hc = statistics.median(base_cpu), statistics.median(hook_cpu)
    print(f"  median rate: no hooks {b:,.0f} scalar values/s; hanging hooks + storm "
          f"{h:,.0f}/s; ratio {h / b:.2f}")
    print(f"  median daemon CPU per 1,000 values: no hooks {bc:,.0f} µs; hanging hooks + "
          f"storm {hc:,.0f} µs; ratio {hc / bc:.2f}")
    print(f"  hook runner at the end of the last hooked run: {last}")


if __name__ == "__main__":
    main()
