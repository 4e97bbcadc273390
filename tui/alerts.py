"""The alerts view: alerts and hook results of all runs (or one), newest first."""

from __future__ import annotations

import time
from collections.abc import Callable, Hashable, Iterable

from rich.style import Style
from textual.binding import Binding
from textual.strip import Strip

from grokwatch.tui.canvas import Cell, LinesWidget, strip
from grokwatch.tui.model import Event
from grokwatch.tui.style import DIM, LABEL, kind_style

HEADER = Style(color="grey85", bold=True, underline=True)


def clock(t: float) -> str:
    """Local wall-clock time of an event."""
    return time.strftime("%H:%M:%S", time.localtime(t)) if t > 0 else "--:--:--"


def event_cells(ev: Event, *, show_run: bool = True, run_w: int = 16) -> list[Cell]:
    """One alerts-view row."""
    st = kind_style(ev.kind)
    status = ev.status
    status_style = DIM if status in ("resolved", "ok") else (
        Style(color="red1") if status in ("failed", "timeout", "dropped") else LABEL)
    parts: list[Cell] = [(clock(ev.t) + " ", DIM), (ev.kind.ljust(11), st + Style(bold=True)),
                         (status.ljust(9), status_style)]
    if show_run:
        run = ev.run if len(ev.run) <= run_w else ev.run[: run_w - 1] + "~"
        parts.append((run.ljust(run_w) + " ", LABEL))
    parts.append((ev.text, None))
    return parts


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
        return 2 + min(len(list(self.source())), 12)

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
            lines.append(strip(event_cells(ev, show_run=self.show_run), width))
        return lines
