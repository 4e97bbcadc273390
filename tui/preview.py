"""A few lines about the run under the cursor, below the runs table in a narrow terminal."""

from __future__ import annotations

import numpy as np
from rich.style import Style
from textual.strip import Strip

from grokwatch.tui.canvas import Cell, RunPanel, strip
from grokwatch.tui.model import RunView
from grokwatch.tui.sparkline import LABEL_W, detail_rows, spark_cells, step_axis, value_axis
from grokwatch.tui.spectrum import key_freqs, spectrum_names
from grokwatch.tui.style import DIM, KEY, LABEL, NULL, glyphs, phase_style
from grokwatch.wire.names import TRAIN_ACC, VAL_ACC

HEIGHT = 6


def preview_lines(rv: RunView, width: int, ascii: bool) -> list[list[Cell]]:
    """Header, accuracy sparklines, structure vs its null, key frequencies."""
    g = glyphs(ascii)
    onset = rv.get("onset_step")
    lines: list[list[Cell]] = [[
        (rv.run, LABEL + Style(bold=True)), ("  ", None), (rv.phase, phase_style(rv.phase)),
        (f"  onset {'-' if onset is None else onset}  step {rv.get('step', '-')}", DIM),
        ("   enter: full detail", DIM)]]
    blue = Style(color="deep_sky_blue1")
    # The first structure row of the detail (its label names aliased tensors too).
    conc, label = next(((name, lab) for lab, name, _ in detail_rows(rv)
                        if name.endswith(".fourier_conc")), (None, ""))
    shown = [n for n in (TRAIN_ACC, VAL_ACC, conc, f"{conc}_null") if n in rv.series]
    axis = step_axis(rv, shown)
    lw = min(max(LABEL_W, len(label) + 1), max(LABEL_W, width // 3 + 1))
    for name in (TRAIN_ACC, VAL_ACC):
        if name in rv.series:
            ser = rv.series[name]
            lines.append(spark_cells(name, ser.array(), width, g, blue, label_w=lw,
                                     steps=ser.step_array(), axis=axis, show_range=True))
    if conc is not None:
        ser = rv.series[conc]
        vals = ser.array()
        null_s = rv.series.get(conc + "_null")
        null = null_s.array() if null_s is not None else np.zeros(0)
        lo, hi = value_axis(conc, vals, null)  # one shared axis for the metric and its null
        lines.append(spark_cells(label, vals, width, g, Style(color="magenta"), lo=lo, hi=hi,
                                 label_w=lw, steps=ser.step_array(), axis=axis,
                                 show_range=True))
        if null_s is not None and len(null):
            lines.append(spark_cells("  null", null, width, g, NULL, lo=lo, hi=hi, label_w=lw,
                                     steps=null_s.step_array(), axis=axis, show_range=True))
    four, _ = spectrum_names(rv)
    if four:
        step, power = rv.spectra[four[0]]
        p = power.astype(np.float64)
        fin = p[np.isfinite(p)]
        keys = key_freqs(p, float(fin.mean()) if len(fin) else 0.0)
        key_txt = " ".join(str(k + 1) for k in keys) or "none"
        base = four[0][: -len(".fourier")]
        c, cn = rv.last(f"{base}.fourier_conc"), rv.last(f"{base}.fourier_conc_null")
        if not keys and c is not None and cn is not None and c > 1.5 * cn > 0:
            key_txt = f"none in the sum, one per neuron (conc x{c / cn:.1f})"
        lines.append([(f"{four[0]} @ {step}  ", LABEL), (f"{g.key} key k: {key_txt}", KEY)])
    return lines[:HEIGHT]


class RunPreview(RunPanel):
    """The cursor run's accuracies, structure vs null and key frequencies."""

    DEFAULT_CSS = f"""
    RunPreview {{ height: {HEIGHT + 1}; border-top: hkey $panel; }}
    RunPreview.-ascii {{ border-top: ascii $panel; }}
    """

    def __init__(self, *, ascii: bool = False, id: str | None = None) -> None:
        super().__init__(ascii=ascii, id=id)
        # On the widget itself: a DEFAULT_CSS rule is scoped to its widget, so a
        # `.-ascii RunPreview` rule (the screen's class) never matched.
        self.set_class(ascii, "-ascii")

    def show(self, rv: RunView | None) -> None:
        if rv is not self.rv:
            super().show(rv)

    def build(self, width: int, height: int) -> list[Strip]:
        if self.rv is None:
            return [strip([("no run under the cursor", DIM)], width)]
        return [strip(ln, width) for ln in preview_lines(self.rv, width, self.ascii)]
