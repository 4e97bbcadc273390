"""Compare: several runs overlaid on one metric (braille or character lines)."""

from __future__ import annotations

from collections.abc import Hashable

import numpy as np
from rich.style import Style
from textual.strip import Strip

from grokwatch.tui.canvas import Cell, LinesWidget, strip
from grokwatch.tui.constellation import BRAILLE_BASE, BRAILLE_BITS
from grokwatch.tui.model import Model, RunView
from grokwatch.tui.sparkline import downsample, fmt, is_fraction
from grokwatch.tui.style import DIM, LABEL, SERIES_COLORS, glyphs
from grokwatch.wire.names import VAL_ACC

Y_AXIS_W = 10
MARKS = "abcdefghijklmnopqrstuvwxyz"


def overlay(series: list[tuple[np.ndarray, np.ndarray]], width: int, height: int,
            braille: bool, y_range: tuple[float, float] | None = None) -> tuple[list[list[tuple[int, int]]], float, float, float, float]:
    """Rasterise (steps, values) lines on a shared axis.

    Returns per-row cells ``(series index or -1, braille bits)`` and the axis
    ranges (x0, x1, y0, y1). Later series draw over earlier ones.
    """
    sub_w, sub_h = (2, 4) if braille else (1, 1)
    gw, gh = width * sub_w, height * sub_h
    xs_all = [s for s, v in series if len(s)]
    ys_all = [v[np.isfinite(v)] for s, v in series if len(v)]
    ys_all = [y for y in ys_all if len(y)]
    x0 = float(min(x.min() for x in xs_all)) if xs_all else 0.0
    x1 = float(max(x.max() for x in xs_all)) if xs_all else 1.0
    y0 = float(min(y.min() for y in ys_all)) if ys_all else 0.0
    y1 = float(max(y.max() for y in ys_all)) if ys_all else 1.0
    if x1 <= x0:
        x1 = x0 + 1
    if y_range is not None:
        y0, y1 = y_range
    if y1 <= y0:
        y1 = y0 + 1
    owner = np.full((height, width), -1, dtype=np.int64)
    bits = np.zeros((height, width), dtype=np.int64)
    for si, (steps, vals) in enumerate(series):
        if not len(vals):
            continue
        # Downsample to the dot width: mean value per x bucket, on its mean step.
        st = downsample(steps.astype(np.float64), gw)
        vs = downsample(vals, gw)
        gx = np.round((st - x0) / (x1 - x0) * (gw - 1))
        gy = np.round((1 - (vs - y0) / (y1 - y0)) * (gh - 1))
        prev = None
        for x, y in zip(gx, gy):
            if not (np.isfinite(x) and np.isfinite(y)):
                prev = None  # a non-finite value breaks the line
                continue
            x, y = int(x), int(y)
            if prev is None:
                pts = [(x, y)]
            else:
                # Join to the previous point so the line has no holes, steep or flat.
                n = max(abs(x - prev[0]), abs(y - prev[1]), 1)
                pts = [(round(prev[0] + (x - prev[0]) * t / n),
                        round(prev[1] + (y - prev[1]) * t / n)) for t in range(1, n + 1)]
            for px, py in pts:
                cx, cy = px // sub_w, py // sub_h
                owner[cy, cx] = si
                if braille:
                    bits[cy, cx] |= BRAILLE_BITS[py % 4][px % 2]
            prev = (x, y)
    cells = [[(int(owner[r, c]), int(bits[r, c])) for c in range(width)] for r in range(height)]
    return cells, x0, x1, y0, y1


def compare_lines(runs: list[RunView], metric: str, width: int, height: int,
                  ascii: bool) -> list[list[Cell]]:
    """Title, chart rows with a y axis, x-axis labels and a legend."""
    g = glyphs(ascii)
    lines: list[list[Cell]] = [[(f"compare: {metric}", LABEL + Style(bold=True)),
                                ("   (m/M: metric, space in runs: mark)", DIM)]]
    if not runs:
        lines.append([("no runs marked: mark runs with space in the runs view", DIM)])
        return lines
    series = []
    for rv in runs:
        s = rv.series.get(metric)
        if s is None:
            series.append((np.zeros(0), np.zeros(0)))
        else:
            series.append((s.step_array().astype(np.float64), s.array()))
    chart_h = max(3, height - 4)
    chart_w = max(4, width - Y_AXIS_W - 1)
    # Accuracies on 0..1, so two flat runs at 0.01 and 0.02 do not look far apart.
    cells, x0, x1, y0, y1 = overlay(series, chart_w, chart_h, g.braille,
                                    (0.0, 1.0) if is_fraction(metric) else None)
    for r, row in enumerate(cells):
        label = fmt(y1) if r == 0 else (fmt(y0) if r == chart_h - 1 else "")
        parts: list[Cell] = [(label.rjust(Y_AXIS_W) + "|", DIM)]
        for owner, b in row:
            if owner < 0:
                parts.append((" ", None))
                continue
            ch = chr(BRAILLE_BASE + b) if g.braille else MARKS[owner % len(MARKS)]
            parts.append((ch, Style(color=SERIES_COLORS[owner % len(SERIES_COLORS)])))
        lines.append(parts)
    left, right = f"step {x0:.0f}", f"{x1:.0f}"
    pad = max(1, chart_w - len(left) - len(right))
    lines.append([(" " * (Y_AXIS_W + 1) + left + " " * pad + right, DIM)])
    legend: list[Cell] = [(" " * (Y_AXIS_W + 1), None)]
    for i, rv in enumerate(runs):
        st = Style(color=SERIES_COLORS[i % len(SERIES_COLORS)], bold=True)
        mark = MARKS[i % len(MARKS)] if ascii else "━"
        missing = "" if metric in rv.series else " (no data)"
        legend += [(f"{mark} {rv.run}{missing}  ", st)]
    lines.append(legend)
    return lines


class CompareChart(LinesWidget):
    """The marked runs overlaid on one metric."""

    DEFAULT_CSS = "CompareChart { height: 1fr; }"

    def __init__(self, model: Model, *, ascii: bool = False, id: str | None = None) -> None:
        super().__init__(ascii=ascii, id=id)
        self.model = model
        self.runs: list[str] = []
        self.metric = VAL_ACC

    def metrics(self) -> list[str]:
        """Metric names any compared run has."""
        names: set[str] = set()
        for r in self.runs:
            rv = self.model.runs.get(r)
            if rv is not None:
                names.update(rv.series)
        return sorted(names)

    def cycle_metric(self, step: int) -> None:
        names = self.metrics()
        if not names:
            return
        i = names.index(self.metric) if self.metric in names else -1
        self.metric = names[(i + step) % len(names)]
        self.invalidate()

    def data_key(self) -> Hashable:
        vs = tuple((r, self.model.runs[r].version) for r in self.runs if r in self.model.runs)
        return (self.metric, vs)

    def build(self, width: int, height: int) -> list[Strip]:
        rvs = [self.model.runs[r] for r in self.runs if r in self.model.runs]
        lines = compare_lines(rvs, self.metric, width, height, self.ascii)
        return [strip(ln, width) for ln in lines]
