"""The alerts view: alerts and hook results of all runs (or one), newest first."""

from __future__ import annotations

import time
from collections.abc import Callable, Hashable, Iterable

from rich.style import Style
from textual.binding import Binding
from textual.strip import Strip

from grokwatch.tui.canvas import Cell, LinesWidget, strip
from grokwatch.tui.model import Event
from grokwatch.tui.sparkline import cut_middle
from grokwatch.tui.style import DIM, LABEL, kind_style

HEADER = Style(color="grey85", bold=True, underline=True)


def clock(t: float) -> str:
    """Local wall-clock time of an event."""
    return time.strftime("%H:%M:%S", time.localtime(t)) if t > 0 else "--:--:--"


KIND_W = 12  # "generalized" (11) and a space: columns never run together
STATUS_W = 9


def event_cells(ev: Event, *, show_run: bool = True, run_w: int = 16) -> list[Cell]:
    """One alerts-view row (unwrapped)."""
    return [c for line in event_lines(ev, 10_000, show_run=show_run, run_w=run_w) for c in line]


def wrap(text: str, width: int) -> list[str]:
    """``text`` in lines of at most ``width`` cells, broken at spaces where possible
    (a number is never cut in two unless one word is wider than the line)."""
    width = max(1, width)
    out: list[str] = []
    line = ""
    for word in text.split(" "):
        cand = f"{line} {word}" if line else word
        if len(cand) <= width:
            line = cand
            continue
        if line:
            out.append(line)
        while len(word) > width:
            out.append(word[:width])
            word = word[width:]
        line = word
    out.append(line)
    return out


def event_lines(ev: Event, width: int, *, show_run: bool = True,
                run_w: int = 16) -> list[list[Cell]]:
    """One event as lines of ``width``: its columns, then its text wrapped under
    the text column (or under a small indent when the columns leave no room)."""
    st = kind_style(ev.kind)
    status = ev.status
    status_style = DIM if status in ("resolved", "ok") else (
        Style(color="red1") if status in ("failed", "timeout", "dropped") else LABEL)
    parts: list[Cell] = [(clock(ev.t) + " ", DIM),
                         (ev.kind[: KIND_W - 1].ljust(KIND_W), st + Style(bold=True)),
                         (status[: STATUS_W - 1].ljust(STATUS_W), status_style)]
    if show_run:
        parts.append((cut_middle(ev.run, run_w).ljust(run_w) + " ", LABEL))
    indent = sum(len(t) for t, _ in parts)
    if width - indent >= 24:
        chunks = wrap(ev.text, width - indent)
        first, rest = [*parts, (chunks[0], None)], chunks[1:]
    else:  # too little room beside the columns: the text goes under them
        indent = 4
        first, rest = parts, wrap(ev.text, width - indent)
    return [first, *[[(" " * indent + c, None)] for c in rest]]


class AlertsList(LinesWidget, can_focus=True):
    """Events newest first, coloured by kind; scrolls with the arrow keys."""

    DEFAULT_CSS = "AlertsList { height: 1fr; }"
    BINDINGS = [
        Binding("up,k", "scroll_by(-1)", "up", show=False),
        Binding("down,j", "scroll_by(1)", "down", show=False),
        Binding("pageup", "scroll_by(-10)", "page up", show=False),
        Binding("pagedown", "scroll_by(10)", "page down", show=False),
        Binding("home,g", "scroll_by(-1000000)", "top", show=False),
    ]

    def __init__(self, source: Callable[[], Iterable[Event]], version: Callable[[], int], *,
                 show_run: bool = True, title: str = "alerts", auto_height: bool = False,
                 ascii: bool = False, id: str | None = None) -> None:
        super().__init__(ascii=ascii, id=id)
        self.source, self.version = source, version
        self.show_run, self.title, self.auto_height = show_run, title, auto_height
        self.top = 0

    def events(self) -> list[Event]:
        return list(reversed(list(self.source())))

    def data_key(self) -> Hashable:
        return (self.version(), self.top)

    def wanted_height(self, width: int) -> int:
        if not self.auto_height:
            return 10
        evs = self.events()[:12]
        return 2 + sum(len(event_lines(ev, width, show_run=self.show_run)) for ev in evs)

    def action_scroll_by(self, delta: int) -> None:
        n = len(list(self.source()))
        self.top = max(0, min(max(0, n - 1), self.top + delta))
        self.refresh()

    def build(self, width: int, height: int) -> list[Strip]:
        evs = self.events()
        lines = [strip([(f"{self.title} ({len(evs)}, newest first)", HEADER)], width)]
        if not evs:
            lines.append(strip([("  none yet", DIM)], width))
        for ev in evs[self.top: self.top + height - 1]:
            for ln in event_lines(ev, width, show_run=self.show_run):
                lines.append(strip(ln, width))
            if len(lines) >= height:
                break
        return lines[:max(height, 1)]
