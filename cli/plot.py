"""``grokwatch plot RUN [-o FILE.png|.svg]``: a run as one picture, for a paper or a chat.

Its scalars on one step axis (accuracies on 0..1, losses on a log scale, the
structure metrics with their nulls), every alert marked at its step, and, from
a running daemon, the latest Fourier spectrum (key frequencies marked) and the
constellation of the token embedding. Needs matplotlib, an optional extra
(``pip install 'grokwatch[plot]'``); nothing else in grokwatch imports it.
"""

from __future__ import annotations

import argparse
import colorsys
import math
import sqlite3
import sys
from pathlib import Path
from typing import Any

import numpy as np

from grokwatch import wire
from grokwatch.cli.daemon import env_api
from grokwatch.wire import messages
from grokwatch.wire.names import NULL_SUFFIX, TRAIN_ACC, VAL_ACC

INSTALL_HINT = "grokwatch plot needs matplotlib: pip install 'grokwatch[plot]'"
ALERT_COLORS = {"memorized": "#c9a000", "onset": "#c000c0", "generalized": "#20a020",
                "diverged": "#e00000", "stalled": "#e08000", "lost": "#a00000"}
FORMATS = (".png", ".svg", ".pdf")


def register(sub: Any) -> None:
    """Add ``plot`` to the ``grokwatch`` parser."""
    p = sub.add_parser("plot", help="draw a run (metrics, alerts, spectrum) to PNG/SVG "
                                    "(needs grokwatch[plot])")
    p.add_argument("run", help="run name")
    p.add_argument("-o", "--output", type=Path, default=None,
                   help="image file, .png, .svg or .pdf (default RUN.png)")
    p.add_argument("--db", type=Path, default=None, help="read this store directly, no daemon "
                   "(scalars and alerts; spectra come only from a daemon)")
    p.add_argument("--api", default=env_api(), help="daemon API endpoint (default %(default)s)")
    p.add_argument("--timeout", type=float, default=10.0, help="seconds to wait for the daemon")
    p.set_defaults(func=cmd_plot)


def _err(msg: str, rc: int = 1) -> int:
    print(f"grokwatch: {msg}", file=sys.stderr)
    return rc


def load_run(args: argparse.Namespace) -> dict[str, Any]:
    """Scalars by name as (steps, values), alerts, spectra and points of one run."""
    spectra: dict[str, np.ndarray] = {}
    points: dict[str, np.ndarray] = {}
    if args.db is not None:
        from grokwatch.daemon.store import open_store
        st = open_store(args.db, readonly=True)
        try:
            if args.run not in st.run_names():
                raise LookupError(f"no run named {args.run!r} in {args.db}")
            rows = list(st.export_rows(args.run))
            alerts = st.load_alerts(args.run)
        finally:
            st.close()
    else:
        from grokwatch.client import request
        rows = messages.parse_export(request(args.api, "export", timeout=args.timeout,
                                             run=args.run))
        alerts = messages.parse_alerts(request(args.api, "alerts", timeout=args.timeout,
                                               run=args.run))[0]
        snap = messages.parse_snapshot(request(args.api, "snapshot", timeout=args.timeout,
                                               **messages.snapshot_request(run=args.run,
                                                                           tail=0)))
        for r in snap["runs"]:
            for store, key in ((spectra, "spectra"), (points, "points")):
                for name, a in r[key].items():
                    try:
                        store[name] = wire.unpack_array(a["arr"])
                    except wire.WireError:
                        continue
    series: dict[str, tuple[list[int], list[float]]] = {}
    for row in rows:
        s = series.setdefault(row["name"], ([], []))
        s[0].append(int(row["step"]))
        v = row["value"]
        s[1].append(float(v) if isinstance(v, (int, float)) else math.nan)
    return {"series": {k: (np.array(a), np.array(b)) for k, (a, b) in series.items()},
            "alerts": [a for a in alerts if a.get("status") != "resolved"],
            "spectra": spectra, "points": points}


def _panels(series: dict[str, Any]) -> list[tuple[str, list[str]]]:
    acc = [n for n in (TRAIN_ACC, VAL_ACC) if n in series]
    loss = [n for n in ("train_loss", "val_loss") if n in series]
    struct = sorted(n for n in series if "." in n and n.rsplit(".", 1)[1].startswith("fourier_")
                    and not n.endswith((NULL_SUFFIX, ".fourier_key")))  # key: an index
    other = sorted(n for n in series if n not in acc + loss + struct and "." not in n
                   and not n.endswith(NULL_SUFFIX))
    out = [("accuracy", acc), ("loss", loss), ("structure (dashed: its null)", struct),
           ("other", other)]
    return [(t, names) for t, names in out if names]


def draw(data: dict[str, Any], run: str, path: Path) -> None:
    """Write the picture of one run to ``path`` (format from its suffix)."""
    import matplotlib
    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    series = data["series"]
    panels = _panels(series)
    four = sorted(n for n in data["spectra"] if n.endswith(".fourier"))
    pts = sorted(data["points"])
    n_rows = max(1, len(panels)) + (1 if four or pts else 0)
    fig = plt.figure(figsize=(10, 2.6 * n_rows), constrained_layout=True)
    grid = fig.add_gridspec(n_rows, 2)
    first = None
    for i, (title, names) in enumerate(panels):
        ax = fig.add_subplot(grid[i, :], sharex=first)
        first = first or ax
        for n in names:
            steps, vals = series[n]
            line, = ax.plot(steps, vals, label=n, lw=1.2)
            null = series.get(n + NULL_SUFFIX)
            if null is not None:
                ax.plot(null[0], null[1], ls="--", lw=1, color=line.get_color(), alpha=0.7)
        if title == "accuracy":
            ax.set_ylim(-0.02, 1.02)
        elif title == "loss" and all(np.nanmin(series[n][1]) > 0 for n in names):
            ax.set_yscale("log")
        for a in data["alerts"]:
            step = a.get("step")
            if isinstance(step, (int, float)):
                c = ALERT_COLORS.get(a.get("kind"), "grey")
                ax.axvline(step, color=c, lw=1, alpha=0.8)
                if i == 0:
                    ax.annotate(f"{a.get('kind')} {step}", (step, 1), xycoords=("data",
                                "axes fraction"), rotation=90, va="top", ha="right",
                                fontsize=7, color=c)
        ax.set_title(title, loc="left", fontsize=9)
        ax.legend(fontsize=7, loc="best")
        ax.grid(alpha=0.3)
    if first is not None:
        first.figure.axes[-1].set_xlabel("step")
    if not panels:
        fig.add_subplot(grid[0, :]).text(0.5, 0.5, "no scalars", ha="center")
    row = n_rows - 1
    if four:
        ax = fig.add_subplot(grid[row, 0])
        power = np.nan_to_num(np.asarray(data["spectra"][four[0]], dtype=np.float64))
        k = np.arange(1, len(power) + 1)
        null = float(power.mean()) if len(power) else 0.0
        keys = power >= 2 * null
        ax.bar(k, power, color=np.where(keys, "#c000c0", "#3080d0"))
        ax.axhline(null, ls="--", color="grey", lw=1, label="null (flat)")
        ax.set_title(f"{four[0]}  key k: {' '.join(str(x) for x in k[keys][:5]) or 'none'}",
                     loc="left", fontsize=9)
        ax.set_xlabel("frequency k")
        ax.legend(fontsize=7)
    if pts:
        ax = fig.add_subplot(grid[row, 1])
        p = np.asarray(data["points"][pts[0]], dtype=np.float64)
        n = len(p)
        colors = [colorsys.hsv_to_rgb(i / max(n, 1), 0.75, 0.9) for i in range(n)]
        if p.ndim == 2 and p.shape[1] >= 2:
            ax.scatter(p[:, 0], p[:, 1], c=colors, s=12)
        ax.set_aspect("equal", adjustable="datalim")
        ax.set_title(f"{pts[0]} ({n} tokens, hue = token)", loc="left", fontsize=9)
    fig.suptitle(f"grokwatch: {run}", fontsize=11)
    fig.savefig(path)
    plt.close(fig)


def cmd_plot(args: argparse.Namespace) -> int:
    """Draw one run to an image file."""
    out = args.output or Path(f"{args.run}.png")
    if out.suffix.lower() not in FORMATS:
        return _err(f"-o {out}: use a .png, .svg or .pdf file", 2)
    try:
        import matplotlib  # noqa: F401
    except ImportError:
        return _err(INSTALL_HINT, 2)
    from grokwatch.client import DaemonUnavailable
    from grokwatch.daemon.store import StoreError
    try:
        data = load_run(args)
    except DaemonUnavailable as e:
        return _err(f"{e} (is `grokwatch daemon` running? or pass --db FILE to read a store)")
    except (LookupError, RuntimeError, StoreError, sqlite3.Error) as e:
        return _err(str(e).splitlines()[0])
    if not data["series"]:
        return _err(f"run {args.run!r} has no scalars to plot")
    draw(data, args.run, out)
    print(f"wrote {out}")
    return 0
