"""The embedding constellation: tokens projected on the strongest frequency's
cos/sin pair, as a braille (or plain character) scatter coloured by token."""

from __future__ import annotations

from collections.abc import Hashable

import numpy as np
from textual.strip import Strip

from grokwatch.tui.canvas import Cell, RunPanel, strip
from grokwatch.tui.spectrum import alias_groups
from grokwatch.tui.style import DIM, LABEL, Glyphs, glyphs, token_style

BRAILLE_BASE = 0x2800
# Dot bit for (dx, dy) inside a 2x4 braille cell.
BRAILLE_BITS = ((0x01, 0x08), (0x02, 0x10), (0x04, 0x20), (0x40, 0x80))
HEIGHT = 12


def scatter(pts: np.ndarray, width: int, height: int, g: Glyphs) -> list[list[Cell]]:
    """``height`` rows of a scatter of N x 2 points; point i coloured as token i.

    Braille packs 2x4 dots per cell; the cell takes the colour of its last
    token. Plain mode draws one mark per cell (a crowd mark where several
    tokens share it). The axes are scaled equally, so a circle stays round
    (terminal cells are about twice as tall as wide).
    """
    p = np.asarray(pts, dtype=np.float64)
    ok = np.isfinite(p).all(axis=1) if len(p) else np.zeros(0, bool)
    n = len(p)
    if width <= 0 or height <= 0 or not ok.any():
        return [[("(no points)", DIM)]]
    sub_w, sub_h = (2, 4) if g.braille else (1, 1)
    gw, gh = width * sub_w, height * sub_h
    q = p[ok]
    centre = (q.max(axis=0) + q.min(axis=0)) / 2
    half = float(np.abs(q - centre).max()) or 1.0
    # Braille dots are square (2x4 in a 1x2 cell); plain cells are twice as tall as wide.
    fit_x, fit_y = (gw - 1) / 2 / half, (gh - 1) / 2 / half
    if g.braille:
        sx = sy = min(fit_x, fit_y)
    else:
        sx = min(fit_x, fit_y * 2)
        sy = sx / 2
    xs = np.clip(np.round((p[:, 0] - centre[0]) * sx + (gw - 1) / 2), 0, gw - 1)
    ys = np.clip(np.round((gh - 1) / 2 - (p[:, 1] - centre[1]) * sy), 0, gh - 1)
    bits = np.zeros((height, width), dtype=np.int64)
    count = np.zeros((height, width), dtype=np.int64)
    owner = np.full((height, width), -1, dtype=np.int64)
    for i in range(n):
        if not ok[i]:
            continue
        x, y = int(xs[i]), int(ys[i])
        cx, cy = x // sub_w, y // sub_h
        if g.braille:
            bits[cy, cx] |= BRAILLE_BITS[y % 4][x % 2]
        count[cy, cx] += 1
        owner[cy, cx] = i
    rows: list[list[Cell]] = []
    for cy in range(height):
        parts: list[Cell] = []
        for cx in range(width):
            i = int(owner[cy, cx])
            if i < 0:
                parts.append((" ", None))
            elif g.braille:
                parts.append((chr(BRAILLE_BASE + int(bits[cy, cx])), token_style(i, n)))
            else:
                parts.append((g.crowd if count[cy, cx] > 1 else g.point, token_style(i, n)))
        rows.append(parts)
    return rows


def legend(n: int, width: int, g: Glyphs) -> list[Cell]:
    """Token colour legend: 0 .. n-1 along the hue wheel."""
    w = max(1, min(width - 12, n))
    parts: list[Cell] = [("token 0 ", DIM)]
    for c in range(w):
        parts.append((g.bar_full, token_style(int(c * n / w), n)))
    parts.append((f" {n - 1}", DIM))
    return parts


class ConstellationPanel(RunPanel):
    """Every ``<m>.constellation`` points array of the selected run."""

    def names(self) -> list[tuple[str, str]]:
        """(label, name) per distinct points array (aliased tensors share one)."""
        if self.rv is None:
            return []
        return alias_groups(self.rv.points, sorted(self.rv.points), ".constellation")

    def data_key(self) -> Hashable:
        if self.rv is None:
            return None
        return (self.rv.run, tuple((n, s[0], id(s[1])) for n, s in self.rv.points.items()))

    def wanted_height(self, width: int) -> int:
        return max(1, len(self.names()) * (HEIGHT + 2))

    def build(self, width: int, height: int) -> list[Strip]:
        g = glyphs(self.ascii)
        names = self.names()
        if not names:
            return [strip([("no constellation yet", DIM)], width)]
        lines: list[list[Cell]] = []
        # Square-ish plot: do not stretch across a wide terminal.
        pw = min(width, HEIGHT * 2)
        for label, name in names:
            step, pts = self.rv.points[name]  # type: ignore[union-attr]
            lines.append([(f"{label} @ {step}  {len(pts)} tokens", LABEL)])
            lines += scatter(pts, pw, HEIGHT, g)
            lines.append(legend(len(pts), width, g))
        return [strip(ln, width) for ln in lines]

