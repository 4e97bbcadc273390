"""``grokwatch sweep SPEC.toml`` and ``grokwatch phases SWEEP``: run a sweep, export its diagram."""

from __future__ import annotations

import argparse
import csv
import io
import json
import sys
from pathlib import Path
from typing import Any

from grokwatch import client, wire
from grokwatch.cli.train import _FIELDS
from grokwatch.client import diagram
from grokwatch.sweep.spec import SpecError, SweepSpec, load_spec
from grokwatch.wire import messages
from grokwatch.wire.names import TRAIN_ACC, VAL_ACC

# The `grokwatch train` flags a preset sweep may set or sweep over, with their types.
TRAIN_FLAGS: dict[str, type] = {"steps": int, "scale": float,
                                **{name: typ for name, typ, _ in _FIELDS}}
TRAIN_FLAGS.pop("threads")  # the sweep's own `threads` sets it


def register(sub: argparse._SubParsersAction) -> None:
    """Add the ``sweep`` and ``phases`` subcommands."""
    p = sub.add_parser(
        "sweep", help="run a grid or random search of trainings (a TOML spec)",
        description="Run every trial of a sweep spec with bounded parallelism; trials "
                    "finished in the daemon's store are skipped (resume); Ctrl-C stops "
                    "cleanly. The spec format: the README (Sweeps and the phase diagram), "
                    "examples/sweeps/wd_frac.toml and grokwatch.sweep.spec.")
    p.add_argument("spec", type=Path, metavar="SPEC.toml")
    p.add_argument("--jobs", type=int, help="trials at once (default: the spec's, else cores)")
    p.add_argument("--ray", nargs="?", const="", default=None, metavar="ADDRESS",
                   help="run the trials as Ray tasks (a local Ray without ADDRESS; "
                        "needs grokwatch[ray])")
    p.add_argument("--no-resume", action="store_true",
                   help="run every trial, even those already finished in the store")
    p.add_argument("--logs", type=Path, help="folder for the trials' output (default: temp)")
    p.add_argument("--check", action="store_true",
                   help="check the spec and print the trials' commands; run nothing")
    _endpoints(p)
    p.set_defaults(func=cmd_sweep)

    q = sub.add_parser(
        "phases", help="a sweep's phase diagram: text, --json, --csv or an image",
        description="The phase diagram of a sweep (or of runs matching a pattern) over two "
                    "config keys, from the daemon.")
    q.add_argument("sweep", metavar="SWEEP", help="a sweep name, or a run name pattern (glob)")
    q.add_argument("-x", dest="x", help="config key across (default: the sweep's first axis)")
    q.add_argument("-y", dest="y", help="config key up (default: the second axis)")
    fmt = q.add_mutually_exclusive_group()
    fmt.add_argument("--json", action="store_true", help="one JSON document")
    fmt.add_argument("--csv", action="store_true", help="CSV, one row per cell")
    fmt.add_argument("-o", dest="output", type=Path, metavar="FILE.png|.svg",
                     help="draw the diagram to an image (needs grokwatch[plot])")
    q.add_argument("--api", default=None, help=f"daemon API endpoint (default: ${wire.API_ENV} "
                                               f"or {wire.DEFAULT_API})")
    q.set_defaults(func=cmd_phases)


def _endpoints(p: argparse.ArgumentParser) -> None:
    p.add_argument("--api", default=None, help="daemon API endpoint")
    p.add_argument("--ingest", default=None,
                   help="daemon ingest endpoint the trials' probes send to")


def _api(args: argparse.Namespace) -> str:
    import os

    return args.api or os.environ.get(wire.API_ENV) or wire.DEFAULT_API


def read_spec(path: Path) -> SweepSpec:
    from grokwatch.examples.presets import PRESETS

    return load_spec(path, presets=PRESETS, flags=TRAIN_FLAGS)


def cmd_sweep(args: argparse.Namespace) -> int:
    import os

    from grokwatch.sweep.runner import Runner

    try:
        spec = read_spec(args.spec)
    except SpecError as e:
        print(f"grokwatch sweep: {args.spec}: {e}", file=sys.stderr)
        return 2
    if args.jobs is not None and args.jobs < 1:
        print("grokwatch sweep: --jobs must be >= 1", file=sys.stderr)
        return 2
    api = _api(args)
    ingest = args.ingest or os.environ.get(wire.ENDPOINT_ENV) or wire.DEFAULT_INGEST
    if args.check:
        for t in spec.trial_list(ingest):
            print(f"{t.run}: {' '.join(t.argv)}")
        return 0
    try:
        client.request(api, "ping", timeout=3.0)
    except client.DaemonUnavailable as e:
        print(f"grokwatch sweep: {e}; start a daemon (grokwatch daemon) or give --api/--ingest",
              file=sys.stderr)
        return 1
    backend = None
    if args.ray and ingest.startswith("ipc://"):
        print(f"grokwatch sweep: warning: trials on other Ray nodes cannot reach {ingest}; "
              "give --ingest tcp://HOST:PORT (CURVE keys: grokwatch keys)", file=sys.stderr)
    if args.ray is not None:
        try:
            from grokwatch.sweep.ray_backend import RayBackend
            backend = RayBackend(args.ray or None, threads=spec.threads)
        except ImportError as e:
            print(f"grokwatch sweep: --ray needs Ray: pip install 'grokwatch[ray]' ({e})",
                  file=sys.stderr)
            return 2
    jobs = args.jobs or spec.jobs or (backend.cpus() // spec.threads if backend else None)
    runner = Runner(spec, api=api, ingest=ingest, jobs=jobs, backend=backend,
                    logdir=args.logs, resume=not args.no_resume)
    res = runner.run()
    return res.rc


# ------------------------------------------------------------------ phases


def sweep_runs(api: str, sweep: str) -> list[dict[str, Any]]:
    """The run summaries of sweep ``sweep`` (by its config), else of runs matching it."""
    runs = messages.parse_runs(client.request(api, "runs", timeout=5.0))
    mine = [r for r in runs if (r.get("config") or {}).get("sweep") == sweep]
    if mine:
        return mine
    import fnmatch

    return [r for r in runs if fnmatch.fnmatchcase(r.get("run", ""), sweep)]


def cmd_phases(args: argparse.Namespace) -> int:
    api = _api(args)
    try:
        runs = sweep_runs(api, args.sweep)
    except client.DaemonUnavailable as e:
        print(f"grokwatch phases: {e}", file=sys.stderr)
        return 1
    if not runs:
        print(f"grokwatch phases: no sweep or runs named {args.sweep!r}", file=sys.stderr)
        return 1
    axes = diagram.candidate_axes(runs)
    for flag, key in (("-x", args.x), ("-y", args.y)):
        if key is not None and key not in axes:
            print(f"grokwatch phases: {flag} {key}: not a config key that varies across these "
                  f"runs; choose from {', '.join(axes) or '(none)'}", file=sys.stderr)
            return 2
    d = diagram.build(runs, args.x, args.y)
    if d is None:
        print(f"grokwatch phases: these runs have no config key with two or more values "
              f"(found: {', '.join(axes) or 'none'})", file=sys.stderr)
        return 1
    if args.json:
        print(json.dumps({"sweep": args.sweep, "x": d.x, "y": d.y, "xs": d.xs, "ys": d.ys,
                          "cells": diagram.rows(d)}))
    elif args.csv:
        buf = io.StringIO()
        cols = [d.x, d.y, "letter", "phase", "onset_step", "step", "state", "status",
                VAL_ACC, TRAIN_ACC, "run"]
        w = csv.DictWriter(buf, fieldnames=cols, lineterminator="\n")
        w.writeheader()
        w.writerows(diagram.rows(d))
        sys.stdout.write(buf.getvalue())
    elif args.output is not None:
        return _image(d, args.sweep, args.output)
    else:
        print(f"{args.sweep}: {header(d)}")
        print(diagram.text(d))
        print(diagram.LEGEND)
    return 0


def header(d: diagram.Diagram) -> str:
    axes = d.x if d.y == diagram.ONE_ROW else f"{d.x} (across) and {d.y} (up)"
    return f"phase by {axes}; onset step after the letter"


COLORS = {"C": "#4caf50", "G": "#c040c0", "M": "#e0b030", "X": "#f08030", "D": "#e03030",
          "?": "#c8c8c8", "F": "#505050", "S": "#a0a0a0"}


def _image(d: diagram.Diagram, title: str, path: Path) -> int:
    if path.suffix.lower() not in (".png", ".svg"):
        print(f"grokwatch phases: -o {path}: the image must end in .png or .svg",
              file=sys.stderr)
        return 2
    try:
        import matplotlib

        matplotlib.use("Agg")
        import matplotlib.pyplot as plt
        from matplotlib.patches import Patch, Rectangle
    except ImportError:
        print("grokwatch phases: images need matplotlib: pip install 'grokwatch[plot]'",
              file=sys.stderr)
        return 2
    nx, ny = len(d.xs), len(d.ys)
    fig, ax = plt.subplots(figsize=(1.2 + 0.9 * nx, 1.0 + 0.7 * ny))
    for (xv, yv), c in d.cells.items():
        i, j = d.xs.index(xv), d.ys.index(yv)
        ax.add_patch(Rectangle((i - 0.5, j - 0.5), 1, 1, color=COLORS.get(c.letter, "#ccc")))
        label = c.letter + (f"\n{c.onset}" if c.onset is not None else "")
        ax.text(i, j, label, ha="center", va="center", fontsize=9, color="black")
    ax.set_xlim(-0.5, nx - 0.5)
    ax.set_ylim(-0.5, ny - 0.5)
    ax.set_xticks(range(nx), [diagram.fmt(v) for v in d.xs])
    ax.set_yticks(range(ny), [diagram.fmt(v) for v in d.ys])
    ax.set_xlabel(d.x)
    ax.set_ylabel("" if d.y == diagram.ONE_ROW else d.y)
    ax.set_title(f"{title}: phases")
    used = sorted({c.letter for c in d.cells.values()})
    names = dict(zip("CGMXD?FS", ("comprehension", "grokking", "memorization", "confusion",
                                  "diverged", "undecided", "failed", "stopped")))
    ax.legend(handles=[Patch(color=COLORS[k], label=f"{k} {names[k]}") for k in used],
              loc="upper left", bbox_to_anchor=(1.01, 1.0), fontsize=8, frameon=False)
    fig.tight_layout()
    fig.savefig(path)
    plt.close(fig)
    print(f"grokwatch phases: wrote {path}")
    return 0


# ------------------------------------------------------------------ demo --sweep

# examples/sweeps/wd_frac.toml, kept equal by a test: weight decay across, train fraction
# up, on the fast quadratic model (a+b mod 53), every trial with the same budget.
DEMO_SPEC: dict[str, Any] = {
    "name": "wd-frac", "preset": "memorization", "fast": True, "threads": 1,
    "train": {"steps": 1200},
    "axes": {"weight_decay": [0.0, 0.3, 1.0, 5.0, 50.0], "frac": [0.1, 0.2, 0.4, 0.8]},
    "stop": {"generalized_for": 100, "settled_for": 1000, "confusion_for": 300},
}
# `demo --sweep --fast`: the four phases on a 3x2 grid, shorter (the test's grid).
DEMO_FAST_AXES = {"weight_decay": [0.0, 5.0, 50.0], "frac": [0.4, 0.8]}


def demo_spec(fast: bool, suffix: str = "") -> SweepSpec:
    from grokwatch.sweep.spec import parse_spec

    d = {**DEMO_SPEC, "name": DEMO_SPEC["name"] + suffix}
    if fast:
        d["axes"] = DEMO_FAST_AXES
        d["train"] = {"steps": 600}
        d["stop"] = {**DEMO_SPEC["stop"], "settled_for": 300, "confusion_for": 200,
                     "poll": 0.5}
    return parse_spec(d, flags=TRAIN_FLAGS)


def print_diagram(api: str, sweep: str, out: Any) -> diagram.Diagram | None:
    """The sweep's diagram as text, from the daemon."""
    try:
        d = diagram.build(sweep_runs(api, sweep))
    except (client.DaemonUnavailable, RuntimeError) as e:
        print(f"grokwatch demo: could not read the diagram: {e}", file=out)
        return None
    if d is not None:
        print(f"\n{sweep}: {header(d)}", file=out)
        print(diagram.text(d), file=out)
        print(diagram.LEGEND, file=out, flush=True)
    return d


def phases_app(api: str, pub: str, ascii: bool = False, **kw: Any) -> Any:
    """The TUI, opening on its phase view."""
    from grokwatch.tui.app import GrokwatchApp

    class PhasesApp(GrokwatchApp):
        # Textual calls every class's on_mount along the MRO: this one runs first, so
        # the view switches once the base class has set up (after the first refresh).
        def on_mount(self) -> None:
            self.call_after_refresh(self.action_view, "phases")

    return PhasesApp(api=api, pub=pub, ascii=ascii, **kw)


def demo_sweep(demo: Any) -> int:
    """``grokwatch demo --sweep``: the demo grid through the sweep runner, watched in the
    TUI's phase view (or, --headless, as progress lines), then the diagram as text.
    ``demo`` is the connected :class:`grokwatch.cli.demo.Demo` (its daemon, its output)."""
    import threading
    import time

    from grokwatch.cli.demo import usable_cores
    from grokwatch.sweep.runner import Runner

    args, out = demo.args, demo.out
    spec = demo_spec(args.fast, demo.suffix)
    stop = threading.Event()
    if args.budget is not None:
        timer = threading.Timer(args.budget, stop.set)
        timer.daemon = True
        timer.start()
    jobs = args.jobs or usable_cores()
    if args.headless:
        runner = Runner(spec, api=args.api, ingest=args.ingest, jobs=jobs, out=out, stop=stop,
                        logdir=demo.workdir / "sweep")
        res = runner.run()
    else:
        log = open(demo.workdir / "sweep.log", "w")  # noqa: SIM115 (closed below)
        runner = Runner(spec, api=args.api, ingest=args.ingest, jobs=jobs, out=log, stop=stop,
                        logdir=demo.workdir / "sweep")
        results: list[Any] = []
        th = threading.Thread(target=lambda: results.append(runner.run()),
                              name="grokwatch-demo-sweep", daemon=True)
        th.start()
        try:
            phases_app(args.api, args.pub, args.ascii).run()
        finally:
            stop.set()
            th.join(60)
            log.close()
        while th.is_alive():
            time.sleep(0.1)
        res = results[0]
    asked = stop.is_set()  # the budget ran out or the TUI was closed: a normal end
    stop.set()
    d = print_diagram(args.api, spec.name, out)
    if res.interrupted and not asked:
        return 130
    if d is None:
        return 1
    return 1 if any(t.state == "failed" for t in res.trials) else 0
