"""The grokwatch TUI: runs table, run detail, compare and alerts views.

Data flow: :class:`~grokwatch.tui.feed.Feed` (a thread) -> ``FeedReady``
message -> :meth:`GrokwatchApp.on_feed_ready` drains the batch into the
:class:`~grokwatch.tui.model.Model` on the UI thread, then asks only the
visible widgets whose data moved to redraw. No network call ever runs on
the UI thread.
"""

from __future__ import annotations

import time
from collections.abc import Hashable, Iterable
from typing import Any, ClassVar

from rich.style import Style
from textual.app import App, ComposeResult
from textual.binding import Binding
from textual.containers import Vertical, VerticalScroll
from textual.events import Resize
from textual.screen import ModalScreen
from textual.scrollbar import ScrollBarRender
from textual.strip import Strip
from textual.widgets import Input, Static

from grokwatch import wire
from grokwatch.tui.alerts import AlertsList
from grokwatch.tui.canvas import Cell, LinesWidget, strip
from grokwatch.tui.compare import CompareChart
from grokwatch.tui.detail import RunDetail
from grokwatch.tui.feed import Feed, FeedReady
from grokwatch.tui.model import Model
from grokwatch.tui.phase_map import PhaseMap
from grokwatch.tui.preview import RunPreview
from grokwatch.tui.runs_table import SORT_KEYS, RunsTable
from grokwatch.tui.style import DIM, LABEL, WARN

VIEWS = ("runs", "detail", "compare", "alerts", "phases")
# Coalescing adapts to the cost of a batch: the UI thread spends at most about
# 1/BUSY_FACTOR of its time on data (apply + repaint), within these bounds.
# The cost is smoothed (EMA) so one slow frame does not stall the next ones.
MIN_INTERVAL, MAX_INTERVAL, BUSY_FACTOR, COST_EMA = 0.05, 0.3, 8.0, 0.2
WIDE = 140  # columns from which the runs view shows the detail beside the table
PREVIEW_MIN_HEIGHT = 20  # rows from which the narrow runs view shows the cursor run
NARROW = 100  # below this the detail stacks its panels


class AsciiScrollBarRender(ScrollBarRender):
    """Scroll bars drawn with spaces and colour only, whole cells.

    Used in ``--ascii`` mode, and always for the run detail: Textual's default
    thumb ends are eighth blocks (``▁▂▃``...), the sparklines' own glyphs, so in
    the gutter right after a row's value they read as part of the line
    (``val_loss ... 0.7189▂▂``), all the more in a dim thumb colour or a
    colourless capture.
    """

    VERTICAL_BARS: ClassVar[list[str]] = [" "] * 8
    HORIZONTAL_BARS: ClassVar[list[str]] = [" "] * 8


class StatusBar(LinesWidget):
    """Top line: connection state, counts, view, sort and filter."""

    DEFAULT_CSS = "StatusBar { height: 1; background: $panel; }"

    def __init__(self, app: GrokwatchApp) -> None:
        super().__init__(ascii=app.ascii, id="status")
        self.gw = app

    def data_key(self) -> Hashable:
        a = self.gw
        t = a.table
        return (a.model.connected, a.model.ever_connected, len(a.model.runs),
                len(a.model.events), a.view, t.sort, t.reverse, t.filter, len(t.marked),
                a.endpoint_label)

    def wanted_height(self, width: int) -> int:
        return 1

    def build(self, width: int, height: int) -> list[Strip]:
        a, m = self.gw, self.gw.model
        if m.connected:
            conn: Cell = ("connected" if a.ascii else "● connected", Style(color="green3"))
        elif m.ever_connected:
            conn = ("DISCONNECTED (last state kept, reconnecting)", WARN)
        else:
            conn = ("disconnected (connecting...)", WARN)
        t = a.table
        arrow = "desc" if t.reverse else "asc"
        parts: list[Cell] = [(" grokwatch ", Style(bold=True, color="magenta")), conn,
                             (f"  {len(m.runs)} runs  {len(m.events)} events  ", LABEL),
                             (f"[{a.view}]  sort {t.sort} {arrow}", DIM)]
        if t.filter:
            parts.append((f"  filter '{t.filter}'", Style(color="gold3")))
        if t.marked:
            parts.append((f"  {len(t.marked)} marked", Style(color="magenta")))
        if width >= 110:
            parts.append((f"  {a.endpoint_label}", DIM))
        return [strip(parts, width)]


class KeyBar(Static):
    """Bottom line: the keys that matter in the current view."""

    DEFAULT_CSS = "KeyBar { height: 1; background: $panel; color: $text-muted; }"


# Each fits 80 columns (a test checks): the last keys, help and quit, must show.
KEYS_BY_VIEW = {
    "runs": "enter open  space mark  c compare  a alerts  / filter  s/r sort  ? help  q quit",
    "detail": "esc runs  up/down scroll  [ ] prev/next  c compare  a alerts  ? help  q quit",
    "compare": "m/M metric  esc/1 runs  2 detail  a alerts  ? help  q quit",
    "alerts": "up/down scroll  esc/1 runs  2 detail  c compare  ? help  q quit",
    "phases": "arrows move  enter open  x/y axes  t swap  g sweep  esc runs  ? help  q quit",
}


class HelpScreen(ModalScreen[None]):
    """Every key binding, generated from the binding tables."""

    DEFAULT_CSS = """
    HelpScreen { align: center middle; }
    HelpScreen > VerticalScroll { width: auto; max-width: 90%; height: auto; max-height: 90%;
                            border: round $accent; padding: 0 1; background: $surface; }
    HelpScreen #help-text { width: auto; height: auto; }
    HelpScreen.-ascii > VerticalScroll { border: ascii $accent; }
    """
    BINDINGS = [Binding("escape,q,question_mark", "dismiss", "close help")]

    def __init__(self, rows: list[tuple[str, str]], ascii: bool = False) -> None:
        super().__init__(classes="-ascii" if ascii else None)
        self.rows = rows
        self.ascii = ascii

    def compose(self) -> ComposeResult:
        text = "\n".join(f"{k:>14}  {d}" for k, d in self.rows)
        with VerticalScroll() as v:
            if self.ascii:
                v.vertical_scrollbar.renderer = AsciiScrollBarRender
            yield Static("grokwatch keys (esc closes)\n\n" + text, id="help-text")


class GrokwatchApp(App[None]):
    """The grokwatch monitor. ``api``/``pub`` are the daemon's endpoints."""

    TITLE = "grokwatch"
    CSS = """
    Screen { layout: vertical; }
    #main { height: 1fr; layout: horizontal; }
    #main RunsTable { width: 1fr; }
    #main RunDetail { width: 1fr; }
    #main.wide.runs RunsTable { width: 45%; }
    #main.wide.runs RunDetail { width: 55%; border-left: vkey $panel; }
    .-ascii #main.wide.runs RunDetail { border-left: ascii $panel; }
    #filter { display: none; height: 1; border: none; padding: 0 1; }
    #filter.active { display: block; }
    """
    BINDINGS = [
        Binding("q", "quit", "quit"),
        # Textual 8 binds ctrl+c to a "press ctrl+q to quit" notice (and to copy in the
        # filter box); in a monitor, ctrl+c quits, from any screen and the filter box too.
        Binding("ctrl+c", "quit", "quit", priority=True),
        Binding("question_mark,f1", "help", "help"),
        Binding("slash", "filter", "filter runs"),
        Binding("escape", "back", "back to runs / clear filter"),
        Binding("1", "view('runs')", "runs view"),
        Binding("2", "view('detail')", "detail of the selected run"),
        Binding("3,c", "view('compare')", "compare marked runs"),
        Binding("4,a", "view('alerts')", "alerts of all runs"),
        Binding("5,p", "view('phases')", "phase diagram of a sweep"),
        Binding("s", "sort", "cycle sort column"),
        Binding("r", "reverse", "reverse sort"),
        Binding("m", "metric(1)", "compare: next metric"),
        Binding("M", "metric(-1)", "compare: previous metric"),
        Binding("right_square_bracket", "step_run(1)", "detail: next run"),
        Binding("left_square_bracket", "step_run(-1)", "detail: previous run"),
    ]

    def __init__(self, api: str = wire.DEFAULT_API, pub: str = wire.DEFAULT_PUB,
                 ascii: bool = False, *, feed: bool = True, min_interval: float = 0.1,
                 heartbeat_timeout: float = 3.0) -> None:
        super().__init__()
        self.api, self.pub, self.ascii = api, pub, ascii
        # The default endpoints live in this user's private runtime folder, whose path
        # (uid, XDG_RUNTIME_DIR) says nothing useful: name them, show any other endpoint.
        default = api == wire.DEFAULT_API and pub == wire.DEFAULT_PUB
        self.endpoint_label = "local daemon" if default else f"pub {pub} api {api}"
        self.model = Model()
        self.view = "runs"
        self.selected: str | None = None  # the run the detail view shows
        self._rows_stale = False
        self.batches = 0
        self.batch_cost = 0.0  # smoothed UI-thread CPU seconds per batch
        self.table = RunsTable(self.model, ascii=ascii, id="runs")
        self.detail = RunDetail(ascii=ascii, id="detail")
        self.preview = RunPreview(ascii=ascii, id="preview")
        self.compare = CompareChart(self.model, ascii=ascii, id="compare")
        self.phase_map = PhaseMap(self.model, ascii=ascii, id="phases")
        self.alerts = AlertsList(lambda: self.model.events, lambda: self.model.events_version,
                                 title="alerts and hook results, all runs", ascii=ascii,
                                 id="alerts")
        self.feed = Feed(api, pub, lambda: self.post_message(FeedReady()),
                         min_interval=min_interval,
                         heartbeat_timeout=heartbeat_timeout) if feed else None

    # ---------------------------------------------------------- layout
    def compose(self) -> ComposeResult:
        yield StatusBar(self)
        with Vertical(id="main", classes="runs"):
            yield self.table
            yield self.phase_map
            yield self.preview
            yield self.detail
            yield self.compare
            yield self.alerts
        yield Input(placeholder="filter runs (name, host, phase, state); enter keeps, esc clears",
                    id="filter")
        yield KeyBar(KEYS_BY_VIEW["runs"], id="keys")

    def on_mount(self) -> None:
        if self.ascii:
            self.screen.add_class("-ascii")
        self.detail.vertical_scrollbar.renderer = AsciiScrollBarRender
        self._apply_view()
        self.table.focus()
        if self.feed is not None:
            self.feed.start()

    def on_unmount(self) -> None:
        if self.feed is not None:
            self.feed.stop()

    def on_resize(self, event: Resize) -> None:
        self._apply_view()

    @property
    def wide(self) -> bool:
        return self.size.width >= WIDE

    def _apply_view(self) -> None:
        main = self.query_one("#main")
        main.set_class(self.wide, "wide")
        for v in VIEWS:
            main.set_class(self.view == v, v)
        main.styles.layout = "horizontal" if (self.view == "runs" and self.wide) else "vertical"
        # Two columns in the detail when it has the room (all of a wide terminal, or
        # the right 55% of a very wide one in the runs view).
        detail_w = self.size.width * (0.55 if self.view == "runs" and self.wide else 1.0)
        self.detail.set_class(detail_w < NARROW, "narrow")
        self.table.display = self.view == "runs"
        # Narrow runs view: a few lines about the cursor run under the table.
        self.phase_map.display = self.view == "phases"
        self.preview.display = ((self.view == "runs" and not self.wide or self.view == "phases")
                                and self.size.height >= PREVIEW_MIN_HEIGHT)
        if self.preview.display:
            self._sync_preview()
        self.detail.display = self.view == "detail" or (self.view == "runs" and self.wide)
        self.compare.display = self.view == "compare"
        self.alerts.display = self.view == "alerts"
        self.query_one(KeyBar).update(KEYS_BY_VIEW[self.view])
        if self.detail.display:
            self._sync_detail()
        if self.compare.display:
            self.compare.runs = list(self.table.marked) or (
                [self.table.current] if self.table.current else [])
            self.compare.invalidate()
        if self.alerts.display:
            self.alerts.invalidate()
        self.query_one(StatusBar).update_if_changed()

    def _sync_preview(self) -> None:
        run = self.phase_map.current if self.view == "phases" else self.table.current
        self.preview.show(self.model.runs.get(run) if run else None)

    def _sync_detail(self) -> None:
        if self.selected is None:
            self.selected = self.table.current
        self.detail.show(self.model.runs.get(self.selected) if self.selected else None)

    # ---------------------------------------------------------- data
    def on_feed_ready(self, message: FeedReady) -> None:
        if self.feed is not None:
            t0 = time.thread_time()
            self.apply_messages(self.feed.drain())
            self.call_after_refresh(self._adapt_interval, t0)

    def _adapt_interval(self, t0: float) -> None:
        # CPU of the UI thread from the batch to its repaint (idle time excluded).
        cost = time.thread_time() - t0
        self.batch_cost += COST_EMA * (cost - self.batch_cost)
        if self.feed is not None:
            self.feed.min_interval = min(MAX_INTERVAL,
                                         max(MIN_INTERVAL, BUSY_FACTOR * self.batch_cost))

    def apply_messages(self, items: Iterable[tuple[str, Any]]) -> None:
        """Apply a batch of (kind, message) to the model and redraw what moved
        (a snapshot message may come prepared by the reader thread)."""
        changed: set[str] = set()
        rows_changed = events_changed = False
        for kind, msg in items:
            if kind == "snapshot":
                self.model.apply_snapshot(msg)
                rows_changed = events_changed = True
                self.detail.rv = None  # the snapshot made new RunView objects
                continue
            ev_before = self.model.events_version
            run = self.model.apply(kind, msg)
            if run is not None:
                changed.add(run)
            events_changed |= self.model.events_version != ev_before
            rows_changed |= kind in ("run", "disconnected")
        self.batches += 1
        with self.batch_update():
            self.query_one(StatusBar).update_if_changed()
            if rows_changed and self.table.display:
                self.table.refresh_rows()
            elif rows_changed:
                self._rows_stale = True  # re-derived when the runs view is shown
            if self.detail.display:
                self._sync_detail()
                self.detail.update_if_changed()
            if self.phase_map.display:
                self.phase_map.update_if_changed()
            if self.preview.display:
                self._sync_preview()
                self.preview.update_if_changed()
            if self.compare.display and changed & set(self.compare.runs):
                self.compare.update_if_changed()
            if self.alerts.display and events_changed:
                self.alerts.update_if_changed()

    # ---------------------------------------------------------- table events
    def on_runs_table_opened(self, message: RunsTable.Opened) -> None:
        self.selected = message.run
        self.action_view("detail")

    def on_runs_table_moved(self, message: RunsTable.Moved) -> None:
        if self.view == "runs" or self.selected is None:
            self.selected = message.run
        if self.detail.display:
            self._sync_detail()
        if self.preview.display:
            self._sync_preview()

    def on_phase_map_opened(self, message: PhaseMap.Opened) -> None:
        self.selected = message.run
        self.action_view("detail")

    def on_phase_map_moved(self, message: PhaseMap.Moved) -> None:
        if self.preview.display:
            self._sync_preview()

    # ---------------------------------------------------------- actions
    def action_view(self, view: str) -> None:
        if view not in VIEWS:
            return
        if view == "runs" and self._rows_stale:
            self._rows_stale = False
            self.table.refresh_rows()
        self.view = view
        self._apply_view()
        target = {"runs": self.table, "detail": self.detail, "compare": self.table,
                  "alerts": self.alerts, "phases": self.phase_map}[view]
        target.focus()

    def action_back(self) -> None:
        flt = self.query_one("#filter", Input)
        if flt.has_class("active"):
            flt.value = ""
            self._close_filter()
            return
        if self.view != "runs":
            self.action_view("runs")
        elif self.table.filter:
            self.table.set_filter("")
            self.query_one(StatusBar).update_if_changed()

    def action_filter(self) -> None:
        if self.view != "runs":
            self.action_view("runs")
        flt = self.query_one("#filter", Input)
        flt.value = self.table.filter
        flt.add_class("active")
        flt.focus()

    def on_input_changed(self, event: Input.Changed) -> None:
        if event.input.id == "filter":
            self.table.set_filter(event.value)
            self.query_one(StatusBar).update_if_changed()

    def on_input_submitted(self, event: Input.Submitted) -> None:
        if event.input.id == "filter":
            self._close_filter()

    def _close_filter(self) -> None:
        flt = self.query_one("#filter", Input)
        flt.remove_class("active")
        self.table.set_filter(flt.value)
        self.query_one(StatusBar).update_if_changed()
        self.table.focus()

    def action_sort(self) -> None:
        t = self.table
        t.set_sort(SORT_KEYS[(SORT_KEYS.index(t.sort) + 1) % len(SORT_KEYS)])
        self.query_one(StatusBar).update_if_changed()

    def action_reverse(self) -> None:
        self.table.set_sort(self.table.sort, not self.table.reverse)
        self.query_one(StatusBar).update_if_changed()

    def action_metric(self, step: int) -> None:
        if self.view == "compare":
            self.compare.cycle_metric(step)

    def action_step_run(self, step: int) -> None:
        if self.view == "detail":
            if self._rows_stale:
                self._rows_stale = False
                self.table.refresh_rows()
            self.table.action_move(step)
            self.selected = self.table.current
            self._sync_detail()

    def action_help(self) -> None:
        rows: list[tuple[str, str]] = []
        for b in [*self.BINDINGS, *RunsTable.BINDINGS, *PhaseMap.BINDINGS]:
            assert isinstance(b, Binding)
            keys = b.key.replace("question_mark", "?").replace("slash", "/").replace(
                "right_square_bracket", "]").replace("left_square_bracket", "[")
            rows.append((keys, b.description))
        self.push_screen(HelpScreen(rows, ascii=self.ascii))


def run(api: str = wire.DEFAULT_API, pub: str = wire.DEFAULT_PUB, ascii: bool = False) -> None:
    """Run the TUI in this terminal until the user quits."""
    GrokwatchApp(api=api, pub=pub, ascii=ascii).run()


__all__ = ["GrokwatchApp", "run"]
