"""The runs table: one line per run, sorted, filtered, with a cursor and marks.

Drawn with ``render_line`` over only the visible rows (a DataTable updated per
message costs far more; Textual #6457).
"""

from __future__ import annotations

import math
from collections.abc import Callable, Hashable
from dataclasses import dataclass
from typing import Any

from rich.style import Style
from textual.binding import Binding
from textual.message import Message
from textual.strip import Strip

from grokwatch.tui.canvas import Cell, LinesWidget, strip
from grokwatch.tui.model import Model, RunView
from grokwatch.tui.sparkline import cut_middle, session_of
from grokwatch.tui.style import DIM, LABEL, glyphs, phase_style, state_style
from grokwatch.wire.names import TRAIN_ACC, VAL_ACC

HEADER = Style(color="grey85", bold=True, underline=True)
CURSOR = Style(bgcolor="grey23")


@dataclass(frozen=True)
class Column:
    """One table column: title, width, minimum terminal width to show it, cell text."""

    key: str
    title: str
    width: int
    min_term: int
    text: Callable[[RunView], str]
    right: bool = False


def _acc(v: float | None) -> str:
    return "-" if v is None else ("nan" if not math.isfinite(v) else f"{v:.3f}")


def _rate(v: Any) -> str:
    try:
        f = float(v)
    except (TypeError, ValueError):
        return "-"
    return f"{f:.0f}" if f >= 10 else f"{f:.1f}"


COLUMNS = (
    Column("host", "host", 12, 100, lambda r: str(r.get("host") or "-")),
    Column("step", "step", 8, 0, lambda r: str(r.get("step", "-")), right=True),
    Column("phase", "phase", 13, 0, lambda r: r.phase),
    Column(TRAIN_ACC, "train", 6, 0, lambda r: _acc(r.last(TRAIN_ACC)), right=True),
    Column(VAL_ACC, "val", 6, 0, lambda r: _acc(r.last(VAL_ACC)), right=True),
    Column("onset", "onset", 7, 0,
           lambda r: "-" if r.get("onset_step") is None else str(r.get("onset_step")),
           right=True),
    # A run that stopped sends nothing, so its last published rate would stay forever.
    Column("rate", "msg/s", 6, 0,
           lambda r: _rate(r.get("rate")) if r.state == "live" else "-", right=True),
    Column("state", "state", 8, 0, lambda r: r.state),
)
SORT_KEYS = ("name", "step", "phase", VAL_ACC, "onset", "rate", "state")


def sort_value(rv: RunView, key: str) -> tuple:
    """A sort key where missing values sort last in ascending order."""
    if key == "name":
        return (0, rv.run)
    if key == "phase":
        return (0, rv.phase, rv.run)
    if key == "state":
        return (0, rv.state, rv.run)
    if key == VAL_ACC:
        v = rv.last(VAL_ACC)
    elif key == "onset":
        v = rv.get("onset_step")
    elif key == "rate":
        v = rv.get("rate")
    else:
        v = rv.get(key)
    try:
        f = float(v)  # type: ignore[arg-type]
    except (TypeError, ValueError):
        return (1, 0.0, rv.run)
    return (0, f, rv.run) if math.isfinite(f) else (1, 0.0, rv.run)


def matches(rv: RunView, words: list[str]) -> bool:
    """Every word (case-insensitive) appears in the run's name, host, phase or state."""
    hay = f"{rv.run} {rv.get('host', '')} {rv.phase} {rv.state}".lower()
    return all(w in hay for w in words)


def order(model: Model, sort: str, reverse: bool, filt: str) -> list[str]:
    """Run names to show, filtered and sorted."""
    words = filt.lower().split()
    runs = [rv for rv in model.runs.values() if matches(rv, words)]
    present = [rv for rv in runs if sort_value(rv, sort)[0] == 0]
    missing = [rv for rv in runs if sort_value(rv, sort)[0] != 0]
    present.sort(key=lambda rv: sort_value(rv, sort), reverse=reverse)
    missing.sort(key=lambda rv: rv.run)
    return [rv.run for rv in present + missing]


class RunsTable(LinesWidget, can_focus=True):
    """Sortable, filterable list of runs; Enter opens one, Space marks it for compare."""

    DEFAULT_CSS = "RunsTable { height: 1fr; }"
    BINDINGS = [
        Binding("up,k", "move(-1)", "up", show=False),
        Binding("down,j", "move(1)", "down", show=False),
        Binding("pageup", "move(-10)", "page up", show=False),
        Binding("pagedown", "move(10)", "page down", show=False),
        Binding("home,g", "move(-1000000)", "first", show=False),
        Binding("end,G", "move(1000000)", "last", show=False),
        Binding("space", "mark", "mark for compare"),
        Binding("enter", "open", "open run"),
    ]

    class Opened(Message):
        """Enter on a run."""

        def __init__(self, run: str) -> None:
            self.run = run
            super().__init__()

    class Moved(Message):
        """The cursor moved to another run."""

        def __init__(self, run: str | None) -> None:
            self.run = run
            super().__init__()

    def __init__(self, model: Model, *, ascii: bool = False, id: str | None = None) -> None:
        super().__init__(ascii=ascii, id=id)
        self.model = model
        self.rows: list[str] = []
        self.cursor = 0
        self.top = 0
        self.marked: list[str] = []  # in marking order (compare colours follow it)
        self.sort = "name"
        self.reverse = False
        self.filter = ""
        self._rev = 0

    # -- state
    @property
    def current(self) -> str | None:
        return self.rows[self.cursor] if 0 <= self.cursor < len(self.rows) else None

    def refresh_rows(self) -> None:
        """Re-filter and re-sort; keep the cursor on the same run."""
        cur = self.current
        self.rows = order(self.model, self.sort, self.reverse, self.filter)
        if cur in self.rows:
            self.cursor = self.rows.index(cur)
        self.cursor = max(0, min(self.cursor, len(self.rows) - 1))
        self._scroll()
        self._rev += 1
        self.refresh()
        if self.current != cur:
            self.post_message(self.Moved(self.current))

    def set_sort(self, key: str, reverse: bool | None = None) -> None:
        self.sort = key
        if reverse is not None:
            self.reverse = reverse
        self.refresh_rows()

    def set_filter(self, text: str) -> None:
        self.filter = text
        self.refresh_rows()

    def _body_height(self) -> int:
        return max(1, self.size.height - 1)

    def _scroll(self) -> None:
        if self.size.height <= 1:
            # Hidden (another view is shown) or not laid out yet: no height to scroll
            # by. Scrolling by one row here put the cursor run at the top and hid the
            # rows above it once the table came back; the next resize scrolls.
            self.top = min(self.top, self.cursor)
            return
        h = self._body_height()
        if self.cursor < self.top:
            self.top = self.cursor
        elif self.cursor >= self.top + h:
            self.top = self.cursor - h + 1
        self.top = max(0, min(self.top, max(0, len(self.rows) - h)))

    # -- actions
    def action_move(self, delta: int) -> None:
        if not self.rows:
            return
        before = self.current
        self.cursor = max(0, min(len(self.rows) - 1, self.cursor + delta))
        self._scroll()
        self._rev += 1
        self.refresh()
        if self.current != before:
            self.post_message(self.Moved(self.current))

    def action_mark(self) -> None:
        run = self.current
        if run is None:
            return
        if run in self.marked:
            self.marked.remove(run)
        else:
            self.marked.append(run)
        self._rev += 1
        self.refresh()

    def action_open(self) -> None:
        if self.current is not None:
            self.post_message(self.Opened(self.current))

    def on_resize(self) -> None:
        self._scroll()
        self._rev += 1

    # -- drawing
    def data_key(self) -> Hashable:
        return self._rev

    def columns(self, width: int) -> tuple[int, list[Column]]:
        """Name width and the columns that fit this width."""
        cols = [c for c in COLUMNS if width >= c.min_term]
        # 2 for the cursor and mark, 1 after each column, and 1 spare so that the
        # last column never touches what is drawn beside the table.
        fixed = sum(c.width + 1 for c in cols) + 3
        return max(8, width - fixed), cols

    def build(self, width: int, height: int) -> list[Strip]:
        g = glyphs(self.ascii)
        name_w, cols = self.columns(width)
        arrow = ("v" if self.reverse else "^") if self.ascii else ("↓" if self.reverse else "↑")
        head: list[Cell] = [("  ", HEADER)]
        title = "name" + (arrow if self.sort == "name" else "")
        head.append((title.ljust(name_w)[:name_w] + " ", HEADER))
        for c in cols:
            t = c.title + (arrow if self.sort == c.key or (
                self.sort == VAL_ACC and c.key == VAL_ACC) else "")
            head.append(((t.rjust(c.width) if c.right else t.ljust(c.width))[:c.width] + " ",
                         HEADER))
        lines = [strip(head, width)]
        if not self.rows:
            msg = "no runs match the filter" if self.filter else "no runs yet"
            lines.append(strip([(f"  {msg}", DIM)], width))
        for i in range(self.top, min(len(self.rows), self.top + height - 1)):
            rv = self.model.runs.get(self.rows[i])
            if rv is None:
                continue
            here = i == self.cursor
            mark = g.marked if rv.run in self.marked else " "
            parts: list[Cell] = [((g.cursor if here and self.has_focus else " ") + mark,
                                  Style(color="magenta", bold=True))]
            session = session_of(rv)
            name = cut_middle(rv.run + (f" #{session}" if session > 1 else ""), name_w)
            parts.append((name.ljust(name_w) + " ", LABEL))
            for c in cols:
                txt = c.text(rv)
                txt = txt.rjust(c.width) if c.right else txt.ljust(c.width)
                st = None
                if c.key == "phase":
                    st = phase_style(rv.phase)
                elif c.key == "state":
                    st = state_style(rv.state)
                elif c.key == "onset" and rv.get("onset_step") is not None:
                    st = Style(color="magenta")
                parts.append((txt[: c.width] + " ", st))
            if here:  # the cursor's background under every cell of its row
                parts = [(t, CURSOR if st is None else CURSOR + st) for t, st in parts]
                parts.append((" " * width, CURSOR))
            lines.append(strip(parts, width))
        return lines
