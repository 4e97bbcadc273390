"""Sparklines: one metric per line, downsampled to the width, drawn from cached strips."""

from __future__ import annotations

import math

import numpy as np
from rich.style import Style
from textual.strip import Strip

from grokwatch.tui.canvas import Cell, RunPanel, strip
from grokwatch.tui.model import RunView, Series
from grokwatch.tui.style import DIM, LABEL, NULL, WARN, Glyphs, glyphs, kind_style
from grokwatch.wire import names as N

LABEL_W = 18
VALUE_W = 10
RANGE_W = 14  # " lo..hi" of a row's value axis
MIN_REL_SPAN = 0.05  # an axis spans at least 5% of its largest value: jitter stays flat


def is_fraction(name: str) -> bool:
    """Accuracies (and other fractions named so) live on a fixed 0..1 axis."""
    base = name.rsplit(".", 1)[-1].lower()
    return base.endswith(("_acc", "accuracy")) or base in ("acc",)


def value_axis(name: str, *arrays: np.ndarray) -> tuple[float, float]:
    """The value range a row is drawn on (shared by a metric and its null).

    Accuracies: always 0..1, so 0.006 is drawn at the bottom and 1 at the top.
    Others: their finite min..max, widened to at least ``MIN_REL_SPAN`` of the
    largest magnitude, so a line moving by 0.5% is drawn flat, not as a climb.
    """
    if is_fraction(name):
        return 0.0, 1.0
    parts = [np.asarray(a, dtype=np.float64) for a in arrays if len(a)]
    both = np.concatenate(parts) if parts else np.zeros(0)
    both = both[np.isfinite(both)]
    if not len(both):
        return 0.0, 1.0
    lo, hi = float(both.min()), float(both.max())
    need = MIN_REL_SPAN * max(abs(lo), abs(hi))
    if hi - lo < need:
        mid = (lo + hi) / 2
        lo, hi = mid - need / 2, mid + need / 2
    if hi <= lo:  # all zero
        lo, hi = lo - 0.5, hi + 0.5
    return lo, hi


def short(v: float) -> str:
    """A number in at most ~7 cells for an axis label (2 significant digits)."""
    if v == 0:
        return "0"
    t = f"{v:.2g}"
    if "e" in t:
        m, e = t.split("e")
        t = f"{m}e{int(e)}"
    return t


def axis_text(lo: float, hi: float) -> str:
    """``lo..hi`` as the range column shows it."""
    return f"{short(lo)}..{short(hi)}"


def downsample(values: np.ndarray, n: int) -> np.ndarray:
    """Mean of ``n`` equal chunks (NaN where a chunk has no finite value).

    A chunk holding any non-finite value stays NaN: a NaN loss is news and
    must not be averaged away. Series that already fit are returned as is.
    """
    v = np.asarray(values, dtype=np.float64)
    if n <= 0:
        return v[:0]
    if len(v) <= n:
        return v
    edges = np.linspace(0, len(v), n + 1).astype(np.int64)[:-1]
    finite = np.isfinite(v)
    sums = np.add.reduceat(np.where(finite, v, 0.0), edges)
    counts = np.add.reduceat(finite.astype(np.int64), edges)
    bad = np.add.reduceat((~finite).astype(np.int64), edges)
    out = np.divide(sums, counts, out=np.full(n, np.nan), where=counts > 0)
    out[bad > 0] = np.nan
    return out


def levels(values: np.ndarray, lo: float, hi: float, n_levels: int) -> np.ndarray:
    """Map values to 0..n_levels-1 on [lo, hi]; -1 for non-finite values."""
    v = np.asarray(values, dtype=np.float64)
    out = np.full(len(v), -1, dtype=np.int64)
    ok = np.isfinite(v)
    span = hi - lo
    # Flat within rounding (a mean of equal floats can differ in the last bit): one level.
    if span <= 1e-9 * max(abs(lo), abs(hi), 1e-300) or not math.isfinite(span):
        out[ok] = n_levels // 2
    else:
        out[ok] = np.clip(((v[ok] - lo) / span * (n_levels - 1)).round(), 0, n_levels - 1)
    return out


def by_step(steps: np.ndarray, values: np.ndarray, width: int, x0: float,
            x1: float) -> tuple[np.ndarray, np.ndarray]:
    """Values bucketed on a shared step axis ``[x0, x1]`` of ``width`` cells.

    Returns (value per cell, drawn mask). A cell takes the mean of its points
    (NaN if any point is non-finite); an empty cell repeats the last value
    before it (metrics observed every N steps read as steps, not gaps), and
    cells before the series' first point are not drawn. So every row of a
    run's detail shares one x axis, and "structure rose before val_acc" reads
    straight down the column.
    """
    s = np.asarray(steps, dtype=np.float64)
    v = np.asarray(values, dtype=np.float64)
    if width <= 0 or len(s) == 0:
        return np.full(max(width, 0), np.nan), np.zeros(max(width, 0), dtype=bool)
    span = x1 - x0
    if span <= 0:
        idx = np.full(len(s), width - 1, dtype=np.int64)
    else:
        idx = np.clip(np.round((s - x0) / span * (width - 1)), 0, width - 1).astype(np.int64)
    finite = np.isfinite(v)
    sums = np.bincount(idx, weights=np.where(finite, v, 0.0), minlength=width)
    cnt = np.bincount(idx, weights=finite.astype(np.float64), minlength=width)
    bad = np.bincount(idx, weights=(~finite).astype(np.float64), minlength=width)
    has = np.bincount(idx, minlength=width) > 0
    out = np.divide(sums, cnt, out=np.full(width, np.nan), where=cnt > 0)
    out[bad > 0] = np.nan
    last = np.maximum.accumulate(np.where(has, np.arange(width), -1))
    drawn = last >= 0
    out = np.where(drawn, out[np.maximum(last, 0)], np.nan)
    return out, drawn


def spark_text(values: np.ndarray, width: int, g: Glyphs, *,
               lo: float | None = None, hi: float | None = None,
               drawn: np.ndarray | None = None) -> str:
    """The sparkline characters for ``values`` in at most ``width`` cells
    (cells where ``drawn`` is False are blank)."""
    v = downsample(values, width)
    finite = v[np.isfinite(v)]
    if lo is None:
        lo = float(finite.min()) if len(finite) else 0.0
    if hi is None:
        hi = float(finite.max()) if len(finite) else 1.0
    lv = levels(v, lo, hi, len(g.spark))
    chars = [g.nonfinite if i < 0 else g.spark[i] for i in lv]
    if drawn is not None and len(drawn) == len(chars):
        chars = [c if d else " " for c, d in zip(chars, drawn)]
    return "".join(chars)


def fmt(v: float | None) -> str:
    """A compact number for a 9-cell column."""
    if v is None:
        return "-"
    if not math.isfinite(v):
        return str(v)
    a = abs(v)
    if a != 0 and (a >= 1e5 or a < 1e-3):
        return f"{v:.2e}"
    return f"{v:.4g}"


def spark_width(width: int, label_w: int = LABEL_W, range_w: int = 0) -> int:
    """Cells left for the line itself in a row of ``width``."""
    return max(1, width - label_w - VALUE_W - range_w)


def cut_middle(text: str, width: int) -> str:
    """``text`` in at most ``width`` cells, cut in the middle (``~``) so that both
    its start and its distinguishing end stay (``grokking-~p97-neurons``)."""
    if len(text) <= width:
        return text
    if width <= 1:
        return text[:width]
    head = (width - 1) // 2
    tail = width - 1 - head
    return text[:head] + "~" + (text[-tail:] if tail else "")


def spark_cells(label: str, values: np.ndarray, width: int, g: Glyphs, style: Style, *,
                lo: float | None = None, hi: float | None = None,
                last: float | None = None, label_w: int = LABEL_W,
                steps: np.ndarray | None = None,
                axis: tuple[float, float] | None = None,
                show_range: bool = False) -> list[Cell]:
    """A labelled sparkline row: label, line, latest value (and with
    ``show_range`` the value axis ``lo..hi`` the line is drawn on).

    With ``steps`` and ``axis`` (x0, x1) the line is drawn on that step axis
    (see :func:`by_step`); otherwise the values fill the width in order.
    """
    if show_range and (lo is None or hi is None):
        lo, hi = value_axis(label.strip(), values)
    sw = spark_width(width, label_w, RANGE_W if show_range else 0)
    val = last if last is not None else (float(values[-1]) if len(values) else None)
    if steps is not None and axis is not None:
        cells, drawn = by_step(steps, values, sw, *axis)
        text = spark_text(cells, sw, g, lo=lo, hi=hi, drawn=drawn)
    else:
        text = spark_text(values, sw, g, lo=lo, hi=hi)
    val_style = WARN if val is not None and not math.isfinite(val) else LABEL
    label = cut_middle(label, label_w - 1)
    parts: list[Cell] = [(label.ljust(label_w), LABEL)]
    # Non-finite marks in red, the rest in the series colour.
    run_start = 0
    for i in range(1, len(text) + 1):
        if i == len(text) or ((text[i] == g.nonfinite) != (text[run_start] == g.nonfinite)):
            chunk = text[run_start:i]
            parts.append((chunk, WARN if chunk[0] == g.nonfinite else style))
            run_start = i
    parts.append((" " * (sw - len(text)), None))
    parts.append((fmt(val).rjust(VALUE_W), val_style))
    if show_range:
        assert lo is not None and hi is not None
        parts.append(((" " + axis_text(lo, hi)).ljust(RANGE_W)[:RANGE_W], DIM))
    return parts


def _same(a: Series, b: Series) -> bool:
    """Two series hold the same points (aliased tensors give identical numbers)."""
    return len(a) == len(b) and np.array_equal(a.step_array(), b.step_array()) and \
        np.array_equal(a.array(), b.array(), equal_nan=True)


def alias_label(names: list[str], suffix: str) -> str:
    """``embed.erank`` + ``neurons.erank`` -> ``embed=neurons.erank``."""
    return "=".join(n[: len(n) - len(suffix)] for n in names) + suffix


def detail_rows(rv: RunView) -> list[tuple[str, str, str | None]]:
    """(label, series, reference series) for the run detail, in display order.

    Geometry metrics of tensors that are the same weights (``embed`` and
    ``neurons`` given the same matrix) make identical series: they share one
    row whose label names them all (``embed=neurons.fourier_conc``).
    """
    names = rv.metric_names()
    rows: list[tuple[str, str, str | None]] = []
    for n in (*N.TRAINING_METRICS, N.WEIGHT_NORM, N.GRAD_NORM):
        if n in rv.series:
            rows.append((n, n, None))
    for suffix in (f".{m}" for m in (N.ERANK, N.FOURIER_ENTROPY, N.FOURIER_CONC, N.FOURIER_IPR)):
        groups: list[list[str]] = []
        for n in names:
            if not n.endswith(suffix):
                continue
            for grp in groups:
                if _same(rv.series[grp[0]], rv.series[n]):
                    grp.append(n)
                    break
            else:
                groups.append([n])
        for grp in groups:
            n = grp[0]
            ref = n + "_null"
            rows.append((alias_label(grp, suffix), n, ref if ref in rv.series else None))
    return rows


class SeriesPanel(RunPanel):
    """The run detail's sparklines; a reference (null) series gets its own dim line.

    Each row shows the value axis it is drawn on (``lo..hi``; accuracies always
    ``0..1``); a metric and its null share one axis.
    """

    def wanted_height(self, width: int) -> int:
        if self.rv is None:
            return 1
        rows = detail_rows(self.rv)
        return 2 + len(rows) + sum(1 for r in rows if r[2])

    def build(self, width: int, height: int) -> list[Strip]:
        g = glyphs(self.ascii)
        if self.rv is None:
            return [strip([("no run selected", DIM)], width)]
        rv = self.rv
        rows = detail_rows(rv)
        x0, x1 = step_axis(rv, [r[1] for r in rows])
        out = [strip([(f"metrics of {rv.run}", LABEL),
                       (f"  steps {x0:.0f}..{x1:.0f} on one axis", DIM)], width)]
        if not rows:
            out.append(strip([("no metrics yet", DIM)], width))
            return out
        # Labels as wide as the longest name, within about a third of the width.
        lw = max([LABEL_W, *(len(r[0]) + 1 for r in rows)])
        lw = min(lw, max(LABEL_W, width // 3 + 1))
        for label, name, ref in rows:
            ser = rv.series[name]
            vals, steps = ser.array(), ser.step_array()
            if ref is None:
                lo, hi = value_axis(name, vals)
                out.append(strip(spark_cells(label, vals, width, g, SERIES, lo=lo, hi=hi,
                                             label_w=lw, steps=steps, axis=(x0, x1),
                                             show_range=True), width))
                continue
            # Value and its permutation null on one shared scale, so the gap is visible.
            nser = rv.series[ref]
            null = nser.array()
            lo, hi = value_axis(name, vals, null)
            out.append(strip(spark_cells(label, vals, width, g, STRUCTURE, lo=lo, hi=hi,
                                         label_w=lw, steps=steps, axis=(x0, x1),
                                         show_range=True), width))
            out.append(strip(spark_cells("  null", null, width, g, NULL, lo=lo, hi=hi,
                                         label_w=lw, steps=nser.step_array(),
                                         axis=(x0, x1), show_range=True), width))
        out.append(strip(alert_axis(rv, width, lw, x0, x1, g), width))
        return out


SERIES = Style(color="deep_sky_blue1")
STRUCTURE = Style(color="magenta")
ALERT_MARKS = {"memorized": "m", "onset": "o", "generalized": "g", "diverged": "d",
               "stalled": "s", "lost": "l", "dropped": "x"}


def session_of(rv: RunView) -> int:
    """The run's session: 1, or 2, 3... after reruns under its name."""
    try:
        return int(rv.get("session") or 1)
    except (TypeError, ValueError):
        return 1


def session_alerts(rv: RunView) -> list:
    """The run's alerts raised in its current session (a rerun starts over)."""
    cur = session_of(rv)
    out = []
    for ev in rv.alerts:
        labels = ev.raw.get("labels") if isinstance(ev.raw, dict) else None
        s = labels.get("session", 1) if isinstance(labels, dict) else 1
        if s == cur:
            out.append(ev)
    return out


def step_axis(rv: RunView, names: list[str]) -> tuple[float, float]:
    """The step range shared by a run's sparklines: first to last step of any of them."""
    firsts = [rv.series[n].first_step for n in names if n in rv.series and len(rv.series[n])]
    lasts = [rv.series[n].last_step for n in names if n in rv.series and len(rv.series[n])]
    if not firsts:
        return 0.0, 1.0
    return float(min(firsts)), float(max(lasts))


def alert_axis(rv: RunView, width: int, label_w: int, x0: float, x1: float,
               g: Glyphs) -> list[Cell]:
    """A row under the sparklines marking the run's alerts at their steps
    (m memorized, o onset, g generalized, d diverged, ...)."""
    sw = spark_width(width, label_w, RANGE_W)
    cells: list[Cell] = [(g.hline, DIM)] * sw
    for ev in session_alerts(rv):
        step = ev.raw.get("step")
        if not isinstance(step, (int, float)) or ev.status == "resolved" or not (
                x0 <= step <= x1):
            continue
        i = 0 if x1 <= x0 else int(round((step - x0) / (x1 - x0) * (sw - 1)))
        cells[i] = (ALERT_MARKS.get(ev.kind, "?"), kind_style(ev.kind) + Style(bold=True))
    return [("alerts".ljust(label_w), DIM), *cells, (f"{x1:.0f}".rjust(VALUE_W), DIM),
            (" step".ljust(RANGE_W), DIM)]
