"""The phase diagram of a sweep: run summaries on a grid of two config keys.

Shared by ``grokwatch phases`` and the TUI's phase map (so both place and letter runs the
same way). Pure data (no daemon, no terminal): :func:`build` places each run at its two axis values,
:func:`text` draws the grid with one letter per cell (C comprehension, G grokking,
M memorization, X confusion, D diverged, ``?`` undecided, F failed, S stopped) and the
onset step; :func:`rows` is the flat table behind ``--json`` and ``--csv``.
"""

from __future__ import annotations

import math
from dataclasses import dataclass
from typing import Any

from grokwatch.wire.names import TRAIN_ACC, VAL_ACC

LETTERS = {"comprehension": "C", "grokking": "G", "memorization": "M", "confusion": "X",
           "diverged": "D", "starting": "?"}
STATUS_LETTERS = {"failed": "F", "stopped": "S"}
LEGEND = ("C comprehension  G grokking  M memorization  X confusion  D diverged  "
          "? undecided  F failed  S stopped")
ONE_ROW = "-"  # the y key of a diagram over a single axis
# Config entries the sweep adds that are not axes.
META_KEYS = ("sweep", "sweep_axes", "trial", "sweep_status", "sweep_rc")


@dataclass
class Cell:
    run: str
    phase: str
    letter: str
    onset: int | None
    step: int
    state: str
    status: str | None  # "failed" / "stopped" (the sweep said so), else None
    val_acc: float | None
    train_acc: float | None
    others: int = 0  # more runs at the same point (another axis, seeds): the newest is shown


@dataclass
class Diagram:
    x: str
    y: str
    xs: list[Any]
    ys: list[Any]
    cells: dict[tuple[Any, Any], Cell]


def cell_letter(phase: str, status: str | None) -> str:
    if status in STATUS_LETTERS:
        return STATUS_LETTERS[status]
    return LETTERS.get(phase, "?")


def _scalar(v: Any) -> bool:
    return isinstance(v, (int, float, str, bool)) and not (isinstance(v, float) and math.isnan(v))


def sort_values(vals: set[Any]) -> list[Any]:
    """Numbers in numeric order, else by their text."""
    if all(isinstance(v, (int, float)) and not isinstance(v, bool) for v in vals):
        return sorted(vals)
    return sorted(vals, key=str)


def candidate_axes(summaries: list[dict[str, Any]]) -> list[str]:
    """Config keys that every run has, with at least two values among them; a sweep's own
    axes (``sweep_axes``) first, in their order."""
    if not summaries:
        return []
    configs = [s.get("config") or {} for s in summaries]
    common = set(configs[0])
    for c in configs[1:]:
        common &= set(c)
    keys = [k for k in common if k not in META_KEYS
            and all(_scalar(c[k]) for c in configs)
            and len({repr(c[k]) for c in configs}) >= 2]
    declared: list[str] = []
    for c in configs:
        for k in c.get("sweep_axes") or []:
            if k in keys and k not in declared:
                declared.append(k)
    return declared + sorted(k for k in keys if k not in declared)


def build(summaries: list[dict[str, Any]], x: str | None = None,
          y: str | None = None) -> Diagram | None:
    """The diagram over ``x`` and ``y`` (default: the first two candidate axes; a single
    row over the one axis there is); None when the runs have no such key. Runs lacking
    either key are left out."""
    axes = candidate_axes(summaries)
    if x is None or y is None:
        rest = [k for k in axes if k not in (x, y)]
        if x is None:
            x = rest.pop(0) if rest else None
        if y is None:
            y = rest.pop(0) if rest else None
    if x is not None and y is None and len(axes) == 1:
        y = ONE_ROW  # one axis: a single row
    if x is None or y is None or x == y:
        return None
    cells: dict[tuple[Any, Any], Cell] = {}
    starts: dict[tuple[Any, Any], float] = {}
    xs: set[Any] = set()
    ys: set[Any] = set()
    for s in summaries:
        c = s.get("config") or {}
        if y == ONE_ROW:
            c = {**c, ONE_ROW: ""}
        if x not in c or y not in c or not (_scalar(c[x]) and _scalar(c[y])):
            continue
        key = (c[x], c[y])
        xs.add(c[x])
        ys.add(c[y])
        phase = str(s.get("phase") or "starting")
        status = c.get("sweep_status") if c.get("sweep_status") in STATUS_LETTERS else None
        last = s.get("last") or {}
        cell = Cell(run=str(s.get("run")), phase=phase, letter=cell_letter(phase, status),
                    onset=s.get("onset_step"), step=int(s.get("step") or 0),
                    state=str(s.get("state") or "live"), status=status,
                    val_acc=last.get(VAL_ACC), train_acc=last.get(TRAIN_ACC))
        start = float(s.get("start") or 0.0)
        if key in cells:
            others = cells[key].others + 1
            if start < starts[key]:
                cells[key].others = others
                continue
            cell.others = others
        cells[key], starts[key] = cell, start
    return Diagram(x, y, sort_values(xs), sort_values(ys), cells)


def fmt(v: Any) -> str:
    if isinstance(v, float):
        return f"{v:.4g}"
    return str(v)


def text(d: Diagram, *, onset: bool = True) -> str:
    """The grid as text: ``y`` down the side (largest at the top), ``x`` along the bottom."""
    w = max([len(fmt(v)) for v in d.xs] + [6 if onset else 1]) + 1
    lw = max([len(fmt(v)) for v in d.ys] + [len(d.y)])
    lines = [f"{d.y:>{lw}}"] if d.y != ONE_ROW else []
    for yv in reversed(d.ys):
        row = []
        for xv in d.xs:
            c = d.cells.get((xv, yv))
            if c is None:
                row.append(f"{'.':>{w}}")
            else:
                mark = c.letter + (str(c.onset) if onset and c.onset is not None else "")
                row.append(f"{mark[:w - 1]:>{w}}")
        lines.append(f"{fmt(yv):>{lw}} |" + "".join(row))
    lines.append(" " * lw + " +" + "-" * (w * len(d.xs)))
    lines.append(" " * lw + "  " + "".join(f"{fmt(v):>{w}}" for v in d.xs) + f"   {d.x}")
    return "\n".join(lines)


def rows(d: Diagram) -> list[dict[str, Any]]:
    """One row per cell: the two axis values, the letter, phase, onset and the run."""
    out = []
    for yv in d.ys:
        for xv in d.xs:
            c = d.cells.get((xv, yv))
            if c is None:
                continue
            out.append({d.x: xv, d.y: yv, "letter": c.letter, "phase": c.phase,
                        "onset_step": c.onset, "step": c.step, "state": c.state,
                        "status": c.status, VAL_ACC: c.val_acc, TRAIN_ACC: c.train_acc,
                        "run": c.run})
    return out
