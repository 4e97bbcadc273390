"""The phase diagram view: a sweep's runs (or any runs sharing two config keys) on a grid.

Each cell is one run, coloured and lettered by its live phase (C comprehension,
G grokking, M memorization, X confusion, D diverged, ``?`` undecided, F failed,
S stopped) with its onset step. The placement is :mod:`grokwatch.client.diagram`'s,
the same as ``grokwatch phases``. Keys: arrows move the cursor (the app shows that
run's preview below), Enter opens its detail, ``x``/``y`` change the axes, ``t`` swaps
them, ``g`` cycles the group (each sweep, then all runs).
"""

from __future__ import annotations

from collections.abc import Hashable
from typing import Any

from rich.style import Style
from textual.binding import Binding
from textual.message import Message
from textual.strip import Strip

from grokwatch.client import diagram
from grokwatch.tui.canvas import Cell, LinesWidget, text_lines
from grokwatch.tui.model import Model
from grokwatch.tui.style import DIM, LABEL, PHASE_COLORS, glyphs

ALL = "(all runs)"
CELL_W = 7  # "G 12345": a letter and an onset step of up to 5 digits (then 123k)
LETTER_COLORS = {"C": PHASE_COLORS["comprehension"], "G": PHASE_COLORS["grokking"],
                 "M": PHASE_COLORS["memorization"], "X": PHASE_COLORS["confusion"],
                 "D": PHASE_COLORS["diverged"], "?": "grey42", "F": "grey27", "S": "grey50"}


def onset_text(onset: int | None) -> str:
    if onset is None:
        return ""
    return str(onset) if onset < 100_000 else f"{onset // 1000}k"[:5]


def cell_style(letter: str, cursor: bool = False) -> Style:
    return Style(color="black", bgcolor=LETTER_COLORS.get(letter, "grey42"), bold=True,
                 reverse=False, underline=cursor)


class PhaseMap(LinesWidget, can_focus=True):
    """The grid; posts :class:`Moved` when the cursor run changes, :class:`Opened` on Enter."""

    DEFAULT_CSS = "PhaseMap { height: 1fr; }"
    BINDINGS = [
        Binding("up,k", "move(0, 1)", "up", show=False),
        Binding("down,j", "move(0, -1)", "down", show=False),
        Binding("left,h", "move(-1, 0)", "left", show=False),
        Binding("right,l", "move(1, 0)", "right", show=False),
        Binding("enter", "open", "phases: open the cursor run"),
        Binding("x", "axis('x')", "phases: next key across"),
        Binding("y", "axis('y')", "phases: next key up"),
        Binding("t", "swap", "phases: swap the axes"),
        Binding("g", "group", "phases: next sweep (or all runs)"),
    ]

    class Opened(Message):
        def __init__(self, run: str) -> None:
            self.run = run
            super().__init__()

    class Moved(Message):
        def __init__(self, run: str | None) -> None:
            self.run = run
            super().__init__()

    def __init__(self, model: Model, *, ascii: bool = False, id: str | None = None) -> None:
        super().__init__(ascii=ascii, id=id)
        self.model = model
        self.group: str | None = None  # a sweep name, ALL, or None: the newest sweep
        self.x: str | None = None
        self.y: str | None = None
        self.ci = 0  # cursor column (index into xs)
        self.cj = 0  # cursor row (index into ys, 0 = the lowest value)
        self._rev = 0
        self._diag: diagram.Diagram | None = None
        self._diag_key: Hashable = None

    # -------------------------------------------------------------- data
    def sweeps(self) -> list[str]:
        """Sweep names among the runs, newest first."""
        start: dict[str, float] = {}
        for rv in self.model.runs.values():
            name = (rv.get("config") or {}).get("sweep")
            if isinstance(name, str):
                start[name] = max(start.get(name, 0.0), float(rv.get("start") or 0.0))
        return sorted(start, key=lambda s: -start[s])

    def summaries(self) -> list[dict[str, Any]]:
        group = self.current_group()
        runs = [rv.summary for rv in self.model.runs.values()]
        if group in (None, ALL):
            return runs
        return [s for s in runs if (s.get("config") or {}).get("sweep") == group]

    def current_group(self) -> str | None:
        if self.group is not None:
            return self.group
        sweeps = self.sweeps()
        return sweeps[0] if sweeps else ALL

    def _summaries_key(self) -> Hashable:
        return (self.model.version, self.current_group(), self.x, self.y, tuple(
            (rv.run, rv.get("phase"), rv.get("onset_step"), rv.get("state"))
            for rv in self.model.runs.values()))

    def grid(self) -> diagram.Diagram | None:
        key = self._summaries_key()
        if key != self._diag_key:
            summ = self.summaries()
            axes = diagram.candidate_axes(summ)
            x = self.x if self.x in axes else None
            y = self.y if self.y in axes and self.y != x else None
            self._diag = diagram.build(summ, x, y)
            self._diag_key = key
            if self._diag is not None:
                self.ci = min(self.ci, len(self._diag.xs) - 1)
                self.cj = min(self.cj, len(self._diag.ys) - 1)
        return self._diag

    @property
    def current(self) -> str | None:
        d = self.grid()
        if d is None or not d.xs or not d.ys:
            return None
        c = d.cells.get((d.xs[self.ci], d.ys[self.cj]))
        return c.run if c is not None else None

    # -------------------------------------------------------------- actions
    def _moved(self, before: str | None) -> None:
        self._rev += 1
        self.refresh()
        if self.current != before:
            self.post_message(self.Moved(self.current))

    def action_move(self, dx: int, dy: int) -> None:
        d = self.grid()
        if d is None:
            return
        before = self.current
        self.ci = max(0, min(len(d.xs) - 1, self.ci + dx))
        self.cj = max(0, min(len(d.ys) - 1, self.cj + dy))
        self._moved(before)

    def action_open(self) -> None:
        if self.current is not None:
            self.post_message(self.Opened(self.current))

    def action_axis(self, which: str) -> None:
        d = self.grid()
        axes = diagram.candidate_axes(self.summaries())
        if d is None or len(axes) < 2:
            return
        before = self.current
        cur, other = (d.x, d.y) if which == "x" else (d.y, d.x)
        choices = [k for k in axes if k != other]
        nxt = choices[(choices.index(cur) + 1) % len(choices)] if cur in choices else choices[0]
        self.x, self.y = (nxt, d.y) if which == "x" else (d.x, nxt)
        self.ci = self.cj = 0
        self._moved(before)

    def action_swap(self) -> None:
        d = self.grid()
        if d is None:
            return
        before = self.current
        self.x, self.y = d.y, d.x
        self.ci, self.cj = self.cj, self.ci
        self._moved(before)

    def action_group(self) -> None:
        groups = [*self.sweeps(), ALL]
        cur = self.current_group()
        before = self.current
        self.group = groups[(groups.index(cur) + 1) % len(groups)] if cur in groups else ALL
        self.x = self.y = None
        self.ci = self.cj = 0
        self._moved(before)

    # -------------------------------------------------------------- drawing
    def data_key(self) -> Hashable:
        return (self._summaries_key(), self._rev)

    def build(self, width: int, height: int) -> list[Strip]:
        d = self.grid()
        group = self.current_group()
        title: list[Cell] = [(" phase diagram ", LABEL + Style(bold=True)),
                             (f"{group}", Style(color="magenta", bold=True))]
        if d is None:
            n = len(self.summaries())
            return text_lines([title, [], [(
                f"  {n} run(s) here have no config key with two or more values; "
                "g: next sweep", DIM)]], width, height)
        lines: list[list[Cell]] = [title + [
            (f"   {d.x} across, {d.y} up  x/y/t axes  g group", DIM)]]
        lw = max([len(diagram.fmt(v)) for v in d.ys] + [len(d.y), 4])
        cw = CELL_W + 2  # a cell and the cursor's brackets
        room = max(1, (width - lw - 2) // cw)
        # Columns that fit, kept around the cursor.
        c0 = max(0, min(self.ci - room // 2, len(d.xs) - room))
        xs = d.xs[c0:c0 + room]
        rows_room = max(1, height - 5)
        r_lo = max(0, min(self.cj - rows_room // 2, len(d.ys) - rows_room))
        ys = d.ys[r_lo:r_lo + rows_room]
        sep = "|" if self.ascii else "│"
        lines.append([(f"{d.y:>{lw}}", LABEL)])
        for yv in reversed(ys):
            row: list[Cell] = [(f"{diagram.fmt(yv):>{lw}} {sep}", LABEL)]
            for xv in xs:
                c = d.cells.get((xv, yv))
                cur = (d.xs.index(xv), d.ys.index(yv)) == (self.ci, self.cj)
                row.append(("[" if cur else " ", LABEL + Style(bold=True)))
                if c is None:
                    row.append((f"{'.':^{CELL_W}}", DIM))
                else:
                    text = f"{c.letter} {onset_text(c.onset)}"[:CELL_W]
                    row.append((f"{text:<{CELL_W}}", cell_style(c.letter, cur)))
                row.append(("]" if cur else " ", LABEL + Style(bold=True)))
            lines.append(row)
        g = glyphs(self.ascii)
        lines.append([(" " * lw + " " + ("+" if self.ascii else "└")
                       + g.hline * (cw * len(xs)), DIM)])
        lines.append([(" " * (lw + 2), None)]
                     + [(f"{diagram.fmt(v)[:cw - 1]:^{cw}}", LABEL) for v in xs]
                     + [(f"  {d.x}", LABEL)])
        counts: dict[str, int] = {}
        for c in d.cells.values():
            counts[c.letter] = counts.get(c.letter, 0) + 1
        legend: list[Cell] = [(" ", None)]
        for letter in "CGMXD?FS":
            if counts.get(letter):
                legend += [(f" {letter} ", cell_style(letter)), (f" {counts[letter]}  ", DIM)]
        more = len(d.xs) - len(xs) + len(d.ys) - len(ys)
        if more:
            legend.append(("(more off screen: move the cursor)", DIM))
        lines.append(legend)
        return text_lines(lines, width, height)
