"""The client-side state: runs, series, arrays and events, as the daemon last described them.

:class:`ClientState` is the one class that applies a daemon ``snapshot`` reply
and the PUB updates after it (message shapes and parsers in
:mod:`grokwatch.wire.messages`), fed with what
:meth:`grokwatch.client.CloneClient.poll` yields. The TUI draws it, the
headless demo prints it, ``grokwatch alerts --follow`` prints its new events.
Plain data only (no Textual), so it is tested and benchmarked without a terminal.
"""

from __future__ import annotations

import math
from collections import deque
from dataclasses import dataclass, field
from typing import Any

import numpy as np

from grokwatch import wire
from grokwatch.wire import messages
from grokwatch.wire.names import STARTING

MAX_POINTS = 1024  # per series, over the whole run: more than any terminal is wide
MAX_EVENTS = 2000  # alerts + hook events kept for the alerts view
HOOK = "hook"  # an Event's kind when it is a hook result (alert kinds otherwise)


class Series:
    """One metric's (step, value) points over the whole run, in numpy arrays.

    Bounded by thinning, never by forgetting: when ``maxlen`` points are held,
    every other one is dropped and from then on only every ``stride``-th new
    point is kept (the stride doubles at each thinning), so the series always
    spans the run from its first point at an even resolution, like the
    daemon's history. The newest point is always kept (a point off the stride
    stays as the last one until the next arrives), so the latest value shows.
    16 bytes a point: 200 runs x 15 metrics at the bound take ~50 MB.
    """

    __slots__ = ("maxlen", "_steps", "_values", "_n", "_stride", "_skip", "_extra")

    def __init__(self, maxlen: int = MAX_POINTS) -> None:
        self.maxlen = max(4, maxlen)
        self._steps = np.empty(0, dtype=np.int64)
        self._values = np.empty(0, dtype=np.float64)
        self._n = 0
        self._stride = 1  # keep every stride-th new point
        self._skip = 0  # new points since the last kept one
        self._extra = False  # the last point is off the stride (kept only as the newest)

    def extend(self, steps: list, values: list) -> None:
        """Append points in the order sent; bad steps are skipped, bad values become NaN."""
        n = min(len(steps), len(values))
        try:
            if n <= 4:  # live updates: a point or two; lists beat numpy here
                st = [int(x) for x in steps[:n]]
                vs = [float(x) for x in values[:n]]
            else:  # snapshot histories: numpy converts a list of numbers in one call
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
        if k <= 4:
            for s, v in zip(st, vs):
                self._push(s, v)
            return
        self._extend_many(np.asarray(st, dtype=np.int64), np.asarray(vs, dtype=np.float64))

    def _grow(self, need: int) -> None:
        if need > len(self._values):
            cap = min(self.maxlen, max(need, 2 * len(self._values), 16))
            steps_new = np.empty(cap, dtype=np.int64)
            values_new = np.empty(cap, dtype=np.float64)
            steps_new[:self._n] = self._steps[:self._n]
            values_new[:self._n] = self._values[:self._n]
            self._steps, self._values = steps_new, values_new

    def _push(self, step: int, value: float) -> None:
        if self._extra:  # the newest point was off the stride: this one replaces it
            self._n -= 1
        self._skip += 1
        on = self._skip >= self._stride
        if on:
            self._skip = 0
        if self._n >= self.maxlen:
            self._thin()
        self._grow(self._n + 1)
        self._steps[self._n] = step
        self._values[self._n] = value
        self._n += 1
        self._extra = not on

    def _thin(self) -> None:
        """Keep every other point (the first and the newest always), double the stride."""
        n = self._n
        idx = np.arange(0, n, 2)
        if idx[-1] != n - 1:
            idx = np.append(idx, n - 1)
        k = len(idx)
        self._steps[:k] = self._steps[idx]
        self._values[:k] = self._values[idx]
        self._n = k
        self._stride *= 2

    def _extend_many(self, st: np.ndarray, vs: np.ndarray) -> None:
        """A batch (a snapshot's history): the points on the stride, and the newest."""
        if self._extra:
            self._n -= 1
            self._extra = False
        k = len(st)
        pos = np.arange(1, k + 1) + self._skip
        sel = np.flatnonzero(pos % self._stride == 0)
        self._skip = int((self._skip + k) % self._stride) if self._stride > 1 else 0
        extra = not len(sel) or sel[-1] != k - 1
        if extra:
            sel = np.append(sel, k - 1)
        all_s = np.concatenate([self._steps[:self._n], st[sel]])
        all_v = np.concatenate([self._values[:self._n], vs[sel]])
        self._steps, self._values, self._n = all_s, all_v, len(all_s)
        self._extra = bool(extra)
        while self._n > self.maxlen:
            self._thin()
        if len(self._values) > self.maxlen:
            self._steps = self._steps[:self._n].copy()
            self._values = self._values[:self._n].copy()

    def array(self) -> np.ndarray:
        """The values (a copy) as float64 (NaN where the probe sent NaN)."""
        return self._values[:self._n].copy()

    def step_array(self) -> np.ndarray:
        """The steps (a copy) as int64."""
        return self._steps[:self._n].copy()

    @property
    def first_step(self) -> int:
        return int(self._steps[0])

    @property
    def last_step(self) -> int:
        return int(self._steps[self._n - 1])

    def __len__(self) -> int:
        return self._n


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
    """Everything a client knows about one run."""

    run: str
    summary: dict[str, Any] = field(default_factory=dict)
    series: dict[str, Series] = field(default_factory=dict)
    spectra: dict[str, tuple[int, np.ndarray]] = field(default_factory=dict)
    points: dict[str, tuple[int, np.ndarray]] = field(default_factory=dict)
    alerts: deque = field(default_factory=lambda: deque(maxlen=200))
    version: int = 0  # bumped on every change, so widgets redraw only when needed
    max_points: int = MAX_POINTS  # per series

    # Convenience accessors over the summary (RunSummary in grokwatch.wire.messages).
    def get(self, key: str, default: Any = None) -> Any:
        return self.summary.get(key, default)

    def last(self, name: str) -> float | None:
        """Latest value of a scalar, or None."""
        v = (self.summary.get("last") or {}).get(name)
        return None if v is None else _float(v)

    @property
    def state(self) -> str:
        return str(self.summary.get("state") or messages.LIVE)

    @property
    def phase(self) -> str:
        return str(self.summary.get("phase") or STARTING)

    def apply(self, data: messages.RunData) -> None:
        """Merge one parsed run update or snapshot entry (summary, new points, arrays).

        A new session of the run (a rerun under its name) starts its view over."""
        if self.summary and data["summary"].get("session") != self.summary.get("session"):
            self.series, self.spectra, self.points = {}, {}, {}
        self.summary = data["summary"]
        for name, s in data["series"].items():
            ser = self.series.get(name)
            if ser is None:
                ser = self.series[name] = Series(self.max_points)
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
    """An alert or a hook result, as a row of the alerts view (``raw``: the wire map)."""

    t: float
    run: str
    kind: str  # alert kind, or HOOK
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
    return Event(t=_float(h.get("t", 0.0)), run=str(h.get("run", "?")), kind=HOOK,
                 status=str(h.get("result", "")),
                 text=f"{h.get('rule', '?')} on {h.get('alert_kind', '?')}: "
                      f"{h.get('result', '?')}{rc}{detail}", raw=h)


@dataclass
class Prepared:
    """A snapshot reply turned into RunViews and events, ready to swap in."""

    runs: dict[str, RunView]
    events: list[Event]


def prepare_snapshot(snap: dict[str, Any], *, max_points: int = MAX_POINTS,
                     max_events: int = MAX_EVENTS) -> Prepared:
    """Build the state a snapshot describes (pure; safe on any thread)."""
    runs: dict[str, RunView] = {}
    try:
        parsed = messages.parse_snapshot(snap)
    except wire.WireError:
        parsed = messages.snapshot_reply(seq=0, epoch=None, runs=[], alerts=[], hooks=[])
    for r in parsed["runs"]:
        rv = RunView(r["run"], max_points=max_points)
        rv.apply(r)
        runs[rv.run] = rv
    merged = [alert_event(a) for a in parsed["alerts"]]
    merged += [hook_event(h) for h in parsed["hooks"]]
    merged.sort(key=lambda e: e.t)
    # Each run's own alerts first (its detail marks them all: a whole-history snapshot
    # brings every run's early alerts), then the newest for the all-runs list.
    for ev in merged:
        if ev.kind != HOOK and ev.run in runs:
            runs[ev.run].alerts.append(ev)
    merged = merged[-max_events:]
    return Prepared(runs, merged)


class ClientState:
    """All client-side state. Apply snapshot and updates from one thread only.

    ``runs``: name -> :class:`RunView`; ``events``: alerts and hook events, newest
    last; ``new_events``: the events the last :meth:`apply` brought (a snapshot's
    all, an update's one), for clients that print what arrives. ``version`` and
    ``events_version`` move when the set of runs or the events change, so a view
    redraws only what moved.
    """

    def __init__(self, *, max_points: int = MAX_POINTS, max_events: int = MAX_EVENTS) -> None:
        self.max_points = max_points
        self.runs: dict[str, RunView] = {}
        self.events: deque[Event] = deque(maxlen=max_events)  # newest last
        self.new_events: list[Event] = []
        self.connected = False
        self.ever_connected = False
        self.snapshots = 0
        self.version = 0  # bumped when the set of runs or events changes
        self.events_version = 0

    def prepare(self, snap: dict[str, Any]) -> Prepared:
        """:func:`prepare_snapshot` with this state's bounds (safe on any thread)."""
        return prepare_snapshot(snap, max_points=self.max_points,
                                max_events=self.events.maxlen or MAX_EVENTS)

    def apply_snapshot(self, snap: dict[str, Any] | Prepared) -> None:
        """Replace all state with a snapshot reply (a reconnect starts clean).

        ``snap`` may already be :meth:`prepare`'s result (the TUI's reader
        thread prepares big snapshots so the UI thread only swaps them in).
        """
        p = snap if isinstance(snap, Prepared) else self.prepare(snap)
        self.runs = p.runs
        self.events.clear()
        self.events.extend(p.events)
        self.new_events = list(p.events)
        self.connected = self.ever_connected = True
        self.snapshots += 1
        self.version += 1
        self.events_version += 1

    def apply(self, kind: str, msg: dict[str, Any]) -> str | None:
        """Apply one ``(kind, msg)`` from :meth:`CloneClient.poll`; return the run it changed.

        Messages of the wrong shape are ignored (nothing raised).
        """
        self.new_events = []
        if kind == "snapshot":
            self.apply_snapshot(msg)
            return None
        if kind == "disconnected":
            self.connected = False
            self.version += 1
            return None
        try:
            payload = messages.parse_update(kind, msg)
        except wire.WireError:
            return None
        if kind == "run":
            name = payload["run"]
            rv = self.runs.get(name)
            if rv is None:
                rv = self.runs[name] = RunView(name, max_points=self.max_points)
                self.version += 1
            rv.apply(payload)  # type: ignore[arg-type]
            return name
        if kind == "alert":
            ev = alert_event(payload)
            self.events.append(ev)
            self.new_events = [ev]
            if ev.run in self.runs:
                self.runs[ev.run].alerts.append(ev)
                self.runs[ev.run].version += 1
            self.events_version += 1
            return ev.run
        if kind == "hook":
            ev = hook_event(payload)
            self.events.append(ev)
            self.new_events = [ev]
            self.events_version += 1
        return None

    def summary(self, run: str) -> messages.RunSummary | None:
        """A run's latest RunSummary, or None."""
        rv = self.runs.get(run)
        return rv.summary if rv is not None else None  # type: ignore[return-value]

    def alerts(self) -> list[dict[str, Any]]:
        """The alert maps held, oldest first."""
        return [e.raw for e in self.events if e.kind != HOOK]

    def hooks(self) -> list[dict[str, Any]]:
        """The HookEvent maps held, oldest first."""
        return [e.raw for e in self.events if e.kind == HOOK]
