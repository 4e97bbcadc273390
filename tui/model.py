"""Client-side state of the TUI: runs, series tails, arrays and events.

Built from a daemon ``snapshot`` reply and kept current by PUB updates
(message shapes in :mod:`grokwatch.wire.messages`). Plain data only; no Textual here,
so the model is tested and benchmarked without a terminal.
"""

from __future__ import annotations

import math
from collections import deque
from dataclasses import dataclass, field
from typing import Any

import numpy as np

from grokwatch import wire
from grokwatch.wire import messages

MAX_POINTS = 1024  # per series: more than any terminal is wide
MAX_EVENTS = 2000  # alerts + hook events kept for the alerts view


class Series:
    """A bounded (step, value) tail of one metric, in numpy arrays.

    16 bytes a point (a deque of Python floats costs ~64): 200 runs x 15
    metrics at the bound take ~60 MB. Storage grows to 1.25 x ``maxlen``; when
    full, the newest ``maxlen`` points move to the front (amortised O(1)).
    """

    __slots__ = ("maxlen", "_steps", "_values", "_n")

    def __init__(self, maxlen: int = MAX_POINTS) -> None:
        self.maxlen = maxlen
        self._steps = np.empty(0, dtype=np.int64)
        self._values = np.empty(0, dtype=np.float64)
        self._n = 0

    def extend(self, steps: list, values: list) -> None:
        """Append points in the order sent; bad steps are skipped, bad values become NaN."""
        n = min(len(steps), len(values))
        try:
            if n <= 4:  # live updates: a point or two; lists beat numpy here
                st = [int(x) for x in steps[:n]]
                vs = [float(x) for x in values[:n]]
            else:  # snapshot tails: numpy converts a list of numbers in one call
                st = np.asarray(steps[:n], dtype=np.int64)
                vs = np.asarray(values[:n], dtype=np.float64)
        except (TypeError, ValueError, OverflowError):
            st, vs = [], []
            for x, v in zip(steps[:n], values[:n]):
                try:
                    st.append(int(x))
                except (TypeError, ValueError):
                    continue
                vs.append(_float(v))
        k = len(st)
        if k == 0:
            return
        if k >= self.maxlen:
            st, vs, k = st[len(st) - self.maxlen:], vs[len(vs) - self.maxlen:], self.maxlen
            self._n = 0
        need = self._n + k
        if need > len(self._values):
            cap = self.maxlen + max(16, self.maxlen // 4)
            if len(self._values) < cap:
                new_cap = min(cap, max(need, 2 * len(self._values), 16))
                steps_new = np.empty(new_cap, dtype=np.int64)
                values_new = np.empty(new_cap, dtype=np.float64)
                steps_new[:self._n] = self._steps[:self._n]
                values_new[:self._n] = self._values[:self._n]
                self._steps, self._values = steps_new, values_new
            if need > len(self._values):
                keep = self.maxlen - k  # the newest points that stay
                lo = self._n - keep
                self._steps[:keep] = self._steps[lo:self._n]
                self._values[:keep] = self._values[lo:self._n]
                self._n = keep
        if k == 1:  # the common case for live updates; item writes beat slices
            self._steps[self._n] = st[0]
            self._values[self._n] = vs[0]
        else:
            self._steps[self._n:self._n + k] = st
            self._values[self._n:self._n + k] = vs
        self._n += k  # may exceed maxlen until the next shift; readers see the newest

    def _lo(self) -> int:
        return max(0, self._n - self.maxlen)

    def array(self) -> np.ndarray:
        """The values (a copy) as float64 (NaN where the probe sent NaN)."""
        return self._values[self._lo():self._n].copy()

    def step_array(self) -> np.ndarray:
        """The steps (a copy) as int64."""
        return self._steps[self._lo():self._n].copy()

    @property
    def first_step(self) -> int:
        return int(self._steps[self._lo()])

    @property
    def last_step(self) -> int:
        return int(self._steps[self._n - 1])

    def __len__(self) -> int:
        return self._n - self._lo()


def _float(v: Any) -> float:
    try:
        return float(v)
    except (TypeError, ValueError):
        return math.nan


def _unpack(obj: Any) -> np.ndarray | None:
    try:
        return wire.unpack_array(obj)
    except wire.WireError:
        return None


@dataclass
class RunView:
    """Everything the TUI knows about one run."""

    run: str
    summary: dict[str, Any] = field(default_factory=dict)
    series: dict[str, Series] = field(default_factory=dict)
    spectra: dict[str, tuple[int, np.ndarray]] = field(default_factory=dict)
    points: dict[str, tuple[int, np.ndarray]] = field(default_factory=dict)
    alerts: deque = field(default_factory=lambda: deque(maxlen=200))
    version: int = 0  # bumped on every change, so widgets redraw only when needed

    # Convenience accessors over the summary (RunSummary in grokwatch.wire.messages).
    def get(self, key: str, default: Any = None) -> Any:
        return self.summary.get(key, default)

    def last(self, name: str) -> float | None:
        """Latest value of a scalar, or None."""
        v = (self.summary.get("last") or {}).get(name)
        return None if v is None else _float(v)

    @property
    def state(self) -> str:
        return str(self.summary.get("state") or "live")

    @property
    def phase(self) -> str:
        return str(self.summary.get("phase") or "starting")

    def apply(self, data: messages.RunData) -> None:
        """Merge one parsed run update or snapshot entry (summary, new points, arrays)."""
        self.summary = data["summary"]
        for name, s in data["series"].items():
            ser = self.series.get(name)
            if ser is None:
                ser = self.series[name] = Series()
            ser.extend(s.get("steps") or [], s.get("values") or [])
        for store, key in ((self.spectra, "spectra"), (self.points, "points")):
            for name, a in data[key].items():
                arr = _unpack(a["arr"])
                if arr is not None:
                    store[name] = (int(a.get("step") or 0), arr)
        self.version += 1

    def metric_names(self) -> list[str]:
        """All series names, sorted."""
        return sorted(self.series)


@dataclass
class Event:
    """One row of the alerts view: an alert or a hook result."""

    t: float
    run: str
    kind: str  # alert kind, or "hook"
    text: str
    status: str = ""
    raw: dict[str, Any] = field(default_factory=dict)


def alert_event(a: dict[str, Any]) -> Event:
    """An alert map as an alerts-view row."""
    return Event(t=_float(a.get("t", 0.0)), run=str(a.get("run", "?")),
                 kind=str(a.get("kind", "?")), status=str(a.get("status", "")),
                 text=f"step {a.get('step', '?')}: {a.get('summary', '')}", raw=a)


def hook_event(h: dict[str, Any]) -> Event:
    """A HookEvent map as an alerts-view row."""
    detail = f" {h.get('detail')}" if h.get("detail") else ""
    rc = f" rc={h['rc']}" if h.get("rc") is not None else ""
    return Event(t=_float(h.get("t", 0.0)), run=str(h.get("run", "?")), kind="hook",
                 status=str(h.get("result", "")),
                 text=f"{h.get('rule', '?')} on {h.get('alert_kind', '?')}: "
                      f"{h.get('result', '?')}{rc}{detail}", raw=h)


@dataclass
class Prepared:
    """A snapshot reply turned into RunViews and events, ready to swap in."""

    runs: dict[str, RunView]
    events: list[Event]


def prepare_snapshot(snap: dict[str, Any]) -> Prepared:
    """Build the state a snapshot describes (pure; safe on any thread)."""
    runs: dict[str, RunView] = {}
    try:
        parsed = messages.parse_snapshot(snap)
    except wire.WireError:
        parsed = messages.snapshot_reply(seq=0, epoch=None, runs=[], alerts=[], hooks=[])
    for r in parsed["runs"]:
        rv = RunView(r["run"])
        rv.apply(r)
        runs[rv.run] = rv
    merged = [alert_event(a) for a in parsed["alerts"]]
    merged += [hook_event(h) for h in parsed["hooks"]]
    merged.sort(key=lambda e: e.t)
    merged = merged[-MAX_EVENTS:]
    for ev in merged:
        if ev.kind != "hook" and ev.run in runs:
            runs[ev.run].alerts.append(ev)
    return Prepared(runs, merged)


class Model:
    """All client-side state. Apply snapshot and updates from one thread only."""

    def __init__(self) -> None:
        self.runs: dict[str, RunView] = {}
        self.events: deque[Event] = deque(maxlen=MAX_EVENTS)  # newest last
        self.connected = False
        self.ever_connected = False
        self.snapshots = 0
        self.version = 0  # bumped when the set of runs or events changes
        self.events_version = 0

    def apply_snapshot(self, snap: dict[str, Any] | Prepared) -> None:
        """Replace all state with a snapshot reply (a reconnect starts clean).

        ``snap`` may already be :func:`prepare_snapshot`'s result (the reader
        thread prepares big snapshots so the UI thread only swaps them in).
        """
        p = snap if isinstance(snap, Prepared) else prepare_snapshot(snap)
        self.runs = p.runs
        self.events.clear()
        self.events.extend(p.events)
        self.connected = self.ever_connected = True
        self.snapshots += 1
        self.version += 1
        self.events_version += 1

    def apply(self, kind: str, msg: dict[str, Any]) -> str | None:
        """Apply one update; return the name of the run it changed, if any."""
        if kind == "snapshot":
            self.apply_snapshot(msg)
            return None
        if kind == "disconnected":
            self.connected = False
            self.version += 1
            return None
        if kind == "run":
            try:
                data = messages.parse_run_data(msg)
            except wire.WireError:
                return None
            name = data["run"]
            rv = self.runs.get(name)
            if rv is None:
                rv = self.runs[name] = RunView(name)
                self.version += 1
            rv.apply(data)
            return name
        if kind == "alert" and isinstance(msg.get("alert"), dict):
            ev = alert_event(msg["alert"])
            self.events.append(ev)
            if ev.run in self.runs:
                self.runs[ev.run].alerts.append(ev)
                self.runs[ev.run].version += 1
            self.events_version += 1
            return ev.run
        if kind == "hook" and isinstance(msg.get("hook"), dict):
            self.events.append(hook_event(msg["hook"]))
            self.events_version += 1
        return None
