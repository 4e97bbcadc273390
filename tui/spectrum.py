"""ASCII spectra: Fourier power per frequency (key frequencies and null level marked)
and singular-value spectra, as vertical bars drawn into cached lines."""

from __future__ import annotations

from collections.abc import Hashable

import numpy as np
from rich.style import Style
from textual.strip import Strip

from grokwatch.tui.canvas import Cell, RunPanel, strip
from grokwatch.tui.model import RunView
from grokwatch.tui.sparkline import fmt
from grokwatch.tui.style import BAR, DIM, KEY, LABEL, NULL, Glyphs, glyphs

FOURIER_H = 8
SV_H = 4


def key_freqs(power: np.ndarray, null: float, k: int = 5) -> list[int]:
    """Indices of up to ``k`` strongest bins that stand at least 2x above ``null``."""
    p = np.nan_to_num(np.asarray(power, dtype=np.float64), nan=0.0, posinf=0.0, neginf=0.0)
    order = np.argsort(-p, kind="stable")[:k]
    return sorted(int(i) for i in order if p[i] > 0 and p[i] >= 2.0 * null)


def _columns(values: np.ndarray, width: int) -> tuple[np.ndarray, int, np.ndarray]:
    """Per-column values (max over bins when there are more bins than columns),
    the cell width of one bin, and for each column its first bin index."""
    n = len(values)
    if n <= width:
        cw = max(1, min(3, width // max(n, 1)))
        return values, cw, np.arange(n)
    edges = np.linspace(0, n, width + 1).astype(np.int64)[:-1]
    v = np.nan_to_num(values, nan=0.0, posinf=0.0, neginf=0.0)
    return np.maximum.reduceat(v, edges), 1, edges


def bar_rows(values: np.ndarray, width: int, height: int, g: Glyphs, *,
             null: float | None = None, keys: list[int] | tuple = (),
             style: Style = BAR) -> list[list[Cell]]:
    """``height`` rows of vertical bars plus one axis row (key bins marked)."""
    v = np.nan_to_num(np.asarray(values, dtype=np.float64), nan=0.0, posinf=0.0, neginf=0.0)
    v = np.maximum(v, 0.0)
    if len(v) == 0 or width <= 0:
        return [[("(empty)", DIM)]]
    cols, cw, first = _columns(v, width)
    keyset = set(keys)
    # A column is "key" if any bin it covers is a key bin.
    bounds = list(first[1:]) + [len(v)]
    is_key = [any(k in keyset for k in range(int(a), int(b))) for a, b in zip(first, bounds)]
    vmax = max(float(cols.max()), null or 0.0)
    if vmax <= 0:
        vmax = 1.0
    heights = cols / vmax * height  # in rows, fractional
    null_h = None if null is None else null / vmax * height
    rows: list[list[Cell]] = []
    gap = 1 if cw >= 2 else 0
    for r in range(height):
        base = height - 1 - r  # level of this row's bottom edge
        parts: list[Cell] = []
        for c, h in enumerate(heights):
            fill = h - base
            on_null = null_h is not None and base <= null_h < base + 1
            eighths = int(fill * 8) if 0 < fill < 1 else 0
            if fill >= 1:
                ch = g.bar_full
            elif g.braille and eighths >= 1:
                ch = g.bar_eighths[eighths - 1]
            elif not g.braille and fill >= 0.5:
                ch = g.bar_full  # ASCII has no partial blocks: round
            else:
                ch = g.null if on_null else " "
            st = NULL if ch == g.null else (KEY if is_key[c] else style)
            parts.append((ch * (cw - gap), st))
            if gap:
                parts.append((g.null if on_null else " ", NULL))
        rows.append(parts)
    axis: list[Cell] = []
    for c in range(len(cols)):
        axis.append(((g.key if is_key[c] else g.hline) * (cw - gap), KEY if is_key[c] else DIM))
        if gap:
            axis.append((g.hline, DIM))
    rows.append(axis)
    return rows


def fourier_block(name: str, step: int, power: np.ndarray, width: int, height: int,
                  g: Glyphs, null_spec: np.ndarray | None = None,
                  conc: tuple[float, float] | None = None) -> list[list[Cell]]:
    """Title, bars and axis for one Fourier power spectrum over k = 1..K.

    ``conc``: the matrix's mean per-neuron concentration and its null. When no
    frequency stands out of the summed spectrum but each neuron is concentrated
    (Gromov's quadratic model: every neuron one frequency, all frequencies used),
    the title says so instead of a bare "none" over a flat spectrum.
    """
    if null_spec is not None and len(null_spec):
        null = float(np.nanmean(null_spec))
    else:
        # The permutation null needs no second spectrum: shuffling the rows keeps
        # both the total energy and the DC term (the row sum), and its expected
        # power is the same at every k != 0. So the null is exactly flat, at the
        # mean of the non-DC spectrum the probe sends (k = 1..p//2).
        finite = power[np.isfinite(power)]
        null = float(finite.mean()) if len(finite) else 0.0
    null_name = "null"
    keys = key_freqs(power, null)
    key_txt = " ".join(str(k + 1) for k in keys) or "none"
    if not keys and conc is not None and conc[0] > 1.5 * conc[1] > 0:
        key_txt = (f"none in the sum: each neuron has its own (concentration "
                   f"{fmt(conc[0])} vs null {fmt(conc[1])})")
    title: list[Cell] = [(f"{name} @ {step}  K={len(power)}  ", LABEL),
                         (f"{g.key} key k: {key_txt}", KEY),
                         (f"  {g.null} {null_name} {fmt(null)}", NULL)]
    return [title, *bar_rows(power, width, height, g, null=null, keys=keys)]


def sv_block(name: str, step: int, sv: np.ndarray, width: int, height: int,
             g: Glyphs) -> list[list[Cell]]:
    """Title and bars for one singular-value spectrum (largest first)."""
    top = fmt(float(sv[0])) if len(sv) else "-"
    title: list[Cell] = [(f"{name} @ {step}  n={len(sv)}  s1={top}", LABEL)]
    return [title, *bar_rows(sv, width, height, g, style=Style(color="green3"))[:-1]]


def spectrum_names(rv: RunView) -> tuple[list[str], list[str]]:
    """(Fourier spectra, singular-value spectra) a run has, sorted."""
    four = sorted(n for n in rv.spectra if n.endswith(".fourier"))
    sv = sorted(n for n in rv.spectra if n.endswith(".sv"))
    return four, sv


def alias_groups(arrays: dict[str, tuple[int, np.ndarray]], names: list[str],
                 suffix: str) -> list[tuple[str, str]]:
    """(label, name) per distinct array: tensors given the same weights
    (``embed``, ``neurons``) send equal arrays and share one ``embed=neurons``
    block."""
    groups: list[list[str]] = []
    for n in names:
        step, arr = arrays[n]
        for grp in groups:
            s0, a0 = arrays[grp[0]]
            if s0 == step and a0.shape == arr.shape and np.array_equal(a0, arr, equal_nan=True):
                grp.append(n)
                break
        else:
            groups.append([n])
    return [("=".join(n[: len(n) - len(suffix)] for n in grp) + suffix, grp[0])
            for grp in groups]


class SpectraPanel(RunPanel):
    """Every ``<m>.fourier`` and ``<m>.sv`` spectrum of the selected run."""

    def __init__(self, *, ascii: bool = False, id: str | None = None,
                 kinds: tuple[str, ...] = ("fourier", "sv")) -> None:
        super().__init__(ascii=ascii, id=id)
        self.kinds = kinds

    def data_key(self) -> Hashable:
        if self.rv is None:
            return None
        return (self.rv.run, tuple((n, s[0], id(s[1])) for n, s in self.rv.spectra.items()))

    def _names(self) -> tuple[list[str], list[str]]:
        if self.rv is None:
            return [], []
        four, sv = spectrum_names(self.rv)
        return (four if "fourier" in self.kinds else []), (sv if "sv" in self.kinds else [])

    def _groups(self) -> tuple[list[tuple[str, str]], list[tuple[str, str]]]:
        four, sv = self._names()
        if self.rv is None:
            return [], []
        return (alias_groups(self.rv.spectra, four, ".fourier"),
                alias_groups(self.rv.spectra, sv, ".sv"))

    def wanted_height(self, width: int) -> int:
        four, sv = self._groups()
        if not four and not sv:
            return 1
        return len(four) * (FOURIER_H + 2) + len(sv) * (SV_H + 1)

    def build(self, width: int, height: int) -> list[Strip]:
        g = glyphs(self.ascii)
        four, sv = self._groups()
        if self.rv is None or (not four and not sv):
            return [strip([("no spectra yet", DIM)], width)]
        lines: list[list[Cell]] = []
        for label, n in four:
            step, arr = self.rv.spectra[n]
            null = self.rv.spectra.get(n + "_null")
            base = n[: -len(".fourier")]
            c, cn = self.rv.last(f"{base}.fourier_conc"), self.rv.last(f"{base}.fourier_conc_null")
            lines += fourier_block(label, step, arr.astype(np.float64), width, FOURIER_H, g,
                                   None if null is None else null[1].astype(np.float64),
                                   conc=None if c is None or cn is None else (c, cn))
        for label, n in sv:
            step, arr = self.rv.spectra[n]
            lines += sv_block(label, step, arr.astype(np.float64), width, SV_H, g)
        return [strip(ln, width) for ln in lines]

