"""Per-run state in the daemon: summary fields, counters, series, arrays, sessions.

A *session* is one ``Probe`` (run, sid). It remembers which seqs it has
stored so duplicates are dropped and holes are visible. A hole (seqs missing
below the highest one seen) stays *open* while the probe may still resend it
and is *closed* (counted in ``gaps``) once it cannot arrive any more: the probe
said it dropped records, a resend skipped past it, or it stayed open too long.
"""

from __future__ import annotations

import time
from dataclasses import dataclass, field
from typing import Any

from grokwatch.daemon.ring import Series, to_lists
from grokwatch.wire import messages
from grokwatch.wire.frames import POINTS, SPECTRUM
from grokwatch.wire.names import STARTING

COUNTERS = messages.COUNTERS
MAX_HOLES = 1_000  # open hole ranges kept per session; older ones are closed
PENDING_CAP = 512  # unpublished points kept per metric between two updates
INBOX_CAP = 4096  # queued scalars records per run before they are folded anyway
RATE_WINDOW = 2.0  # seconds the msgs/s rate is averaged over (a sliding window)
RATE_BUCKETS = 8  # the window's time buckets


@dataclass
class Session:
    """Dedup and loss bookkeeping of one probe session."""

    hi: int = 0  # highest seq stored (or accepted into the open batch)
    holes: list[list[int]] = field(default_factory=list)  # open [lo, hi] ranges, sorted
    hole_t: list[float] = field(default_factory=list)  # when each hole opened
    gaps: int = 0  # seqs that will never arrive (closed holes)
    dropped: int = 0  # the probe's own cumulative drop count, as last reported
    errors: int = 0  # the probe's cumulative internal errors
    acked: int = 0  # last seq acknowledged

    def accept(self, seq: int, now: float) -> bool:
        """True if ``seq`` is new (store it), False for a duplicate."""
        if seq > self.hi:
            if seq > self.hi + 1:
                self.holes.append([self.hi + 1, seq - 1])
                self.hole_t.append(now)
                if len(self.holes) > MAX_HOLES:
                    self._close(0)
            self.hi = seq
            return True
        for i, (lo, hi) in enumerate(self.holes):
            if lo <= seq <= hi:
                # Fill: split the hole around seq.
                parts = [p for p in ([lo, seq - 1], [seq + 1, hi]) if p[0] <= p[1]]
                self.holes[i:i + 1] = parts
                self.hole_t[i:i + 1] = [self.hole_t[i]] * len(parts)
                return True
            if lo > seq:
                break
        return False

    def _close(self, i: int) -> int:
        lo, hi = self.holes.pop(i)
        self.hole_t.pop(i)
        self.gaps += hi - lo + 1
        return hi - lo + 1

    def close_below(self, seq: int) -> int:
        """Close every open hole below ``seq``; return how many seqs were closed."""
        n = 0
        while self.holes and self.holes[0][0] < seq:
            lo, hi = self.holes[0]
            if hi < seq:
                n += self._close(0)
            else:  # partly below: close the lower part only
                self.holes[0][0] = seq
                self.gaps += seq - lo
                n += seq - lo
        return n

    def close_between(self, seqs: list[int]) -> int:
        """Close holes strictly between consecutive seqs of one frame (a contiguous slice
        of the probe's buffer: whatever lies between was dropped there)."""
        n = 0
        if not self.holes:
            return 0
        for a, b in zip(seqs, seqs[1:]):
            if b > a + 1:
                n += self._close_range(a + 1, b - 1)
        return n

    def _close_range(self, lo: int, hi: int) -> int:
        n = 0
        i = 0
        while i < len(self.holes):
            hlo, hhi = self.holes[i]
            if hhi < lo:
                i += 1
                continue
            if hlo > hi:
                break
            olo, ohi = max(lo, hlo), min(hi, hhi)
            parts = [p for p in ([hlo, olo - 1], [ohi + 1, hhi]) if p[0] <= p[1]]
            self.holes[i:i + 1] = parts
            self.hole_t[i:i + 1] = [self.hole_t[i]] * len(parts)
            self.gaps += ohi - olo + 1
            n += ohi - olo + 1
            i += len(parts)
        return n

    def close_oldest(self, count: int) -> int:
        """Close up to ``count`` of the lowest missing seqs (the probe drops oldest first)."""
        n = 0
        while self.holes and n < count:
            lo, hi = self.holes[0]
            take = min(hi - lo + 1, count - n)
            if take == hi - lo + 1:
                n += self._close(0)
            else:
                self.holes[0][0] = lo + take
                self.gaps += take
                n += take
        return n

    def close_stale(self, now: float, timeout: float) -> int:
        """Close holes open longer than ``timeout`` seconds."""
        n = 0
        while self.hole_t and now - self.hole_t[0] > timeout:
            n += self._close(0)
        # Holes are opened in order, but fills may reorder times: check all.
        i = 0
        while i < len(self.hole_t):
            if now - self.hole_t[i] > timeout:
                n += self._close(i)
            else:
                i += 1
        return n

    def watermark(self) -> int:
        """Highest seq with every seq at or below it stored or known lost (the ack)."""
        return self.holes[0][0] - 1 if self.holes else self.hi

    def missing(self) -> int:
        """Seqs in open holes (may still arrive)."""
        return sum(hi - lo + 1 for lo, hi in self.holes)


def _thin_pending(p: tuple[list[int], list[float]]) -> None:
    """Bring unpublished points under ``PENDING_CAP`` by keeping an even spread (the
    first and the newest always), not the newest only: a burst (a fast run, a resend
    after a reconnect) then reaches live clients as its whole span at a coarser
    step, where cutting it left them without its start (the TUI's rows began part
    way across)."""
    steps, vals = p
    n = len(steps)
    stride = -(-n // (PENDING_CAP // 2))
    keep = list(range(0, n, stride))
    if keep[-1] != n - 1:
        keep.append(n - 1)
    steps[:] = [steps[i] for i in keep]
    vals[:] = [vals[i] for i in keep]


class RunState:
    """Everything the daemon holds in memory about one run."""

    def __init__(self, name: str, run_id: int, *, ring_cap: int = 512,
                 hist_cap: int = 256) -> None:
        self.name = name
        self.run_id = run_id
        self.ring_cap, self.hist_cap = ring_cap, hist_cap
        self.info: dict[str, Any] = {"host": None, "pid": None, "config": {}, "modulus": None,
                                     "start": None, "state": "live", "step": 0,
                                     "last_t": None, "sid": None, "session": 1}
        self.counters = dict.fromkeys(COUNTERS, 0)
        self.sessions: dict[int, Session] = {}
        self._series: dict[str, Series] = {}
        self._inbox: list[tuple[int, dict[str, float]]] = []  # scalars not yet folded in
        self.spectra: dict[str, dict] = {}
        self.points: dict[str, dict] = {}
        self._last: dict[str, float] = {}
        self.detector: Any = None
        self.last_heard = time.time()  # daemon clock
        self.silenced = False  # stalled/lost alerts fired and not yet resolved
        self.phase = STARTING
        self.onset_step: int | None = None
        # Rate: records per time bucket over the last RATE_WINDOW seconds (a ring indexed
        # by bucket number), read against the current time, so a quiet run decays to 0.
        self._rate_counts = [0] * RATE_BUCKETS
        self._rate_b = 0  # the newest bucket number the ring holds
        self._rate_since = time.monotonic()  # a younger run is averaged over its age
        self._rate_pub = 0.0  # the rate in the last published update
        # Unpublished changes since the last update.
        self.dirty = False
        self.last_pub = 0.0
        self.pend_series: dict[str, tuple[list[int], list[float]]] = {}
        self.pend_arrays: set[tuple[str, str]] = set()

    # ------------------------------------------------------------ updates

    def add_scalars(self, step: int, vals: dict[str, float]) -> None:
        """Queue one scalars record; it reaches the rings at the next :meth:`fold`.

        Per-record work stays O(1) here: folding a batch per metric with
        comprehensions costs a fraction of per-scalar appends.
        """
        self._inbox.append((step, vals))
        if step > self.info["step"]:
            self.info["step"] = step
        self.dirty = True
        if len(self._inbox) >= INBOX_CAP:
            self.fold()

    def fold(self) -> None:
        """Move queued scalars into the rings, ``last`` and the pending update."""
        inbox = self._inbox
        if not inbox:
            return
        self._inbox = []
        # Group by the set of names: records from one log() call site share it.
        groups: dict[tuple, list[int]] = {}
        for i, (_, vals) in enumerate(inbox):
            key = tuple(vals)
            g = groups.get(key)
            if g is None:
                groups[key] = [i]
            else:
                g.append(i)
        per: dict[str, tuple[list[int], list[int], list[float]]] = {}
        for key, idx in groups.items():
            recs = [inbox[i] for i in idx] if len(groups) > 1 else inbox
            steps = [r[0] for r in recs]
            for name in key:
                vals = [r[1][name] for r in recs]
                cur = per.get(name)
                if cur is None:
                    per[name] = (idx, steps, vals)
                else:  # a name in several groups: merge back into arrival order
                    order = sorted(zip(cur[0] + idx, cur[1] + steps, cur[2] + vals))
                    per[name] = ([o[0] for o in order], [o[1] for o in order],
                                 [o[2] for o in order])
        series, pend, last = self._series, self.pend_series, self._last
        for name, (_, steps, vals) in per.items():
            s = series.get(name)
            if s is None:
                s = series[name] = Series(self.ring_cap, self.hist_cap)
            s.extend(steps, vals)
            last[name] = vals[-1]
            p = pend.get(name)
            if p is None:
                p = pend[name] = (list(steps), list(vals))
            else:
                p[0].extend(steps)
                p[1].extend(vals)
            if len(p[0]) > PENDING_CAP:
                _thin_pending(p)

    @property
    def series(self) -> dict[str, Series]:
        """Every metric's series (folded up to now)."""
        self.fold()
        return self._series

    @property
    def last(self) -> dict[str, float]:
        """The latest value of every metric."""
        self.fold()
        return self._last

    @last.setter
    def last(self, value: dict[str, float]) -> None:
        self._last = value

    def set_array(self, kind: str, name: str, step: int, packed: dict) -> None:
        """Keep the latest spectrum or constellation of a name."""
        (self.spectra if kind == SPECTRUM else self.points)[name] = messages.array(step, packed)
        self.pend_arrays.add((kind, name))
        if step > self.info["step"]:
            self.info["step"] = step
        self.dirty = True

    def count_records(self, n: int, now_mono: float | None = None) -> None:
        """Count records for the rate and counters."""
        self.counters["records"] += n
        now = time.monotonic() if now_mono is None else now_mono
        b = int(now * (RATE_BUCKETS / RATE_WINDOW))
        if b != self._rate_b:
            self._rate_roll(b)
        self._rate_counts[self._rate_b % RATE_BUCKETS] += n

    def _rate_roll(self, b: int) -> None:
        """Advance the ring to bucket ``b``, emptying the buckets that fell out of the window."""
        if b <= self._rate_b:
            return  # the clock never goes back; a smaller b (a caller's stale now) counts late
        if b - self._rate_b >= RATE_BUCKETS:
            self._rate_counts = [0] * RATE_BUCKETS
        else:
            for i in range(self._rate_b + 1, b + 1):
                self._rate_counts[i % RATE_BUCKETS] = 0
        self._rate_b = b

    def rate(self, now_mono: float | None = None) -> float:
        """Records per second over the last ``RATE_WINDOW`` seconds, as of now.

        Computed against the clock, not at the last record: a run that went
        quiet reads 0 once the window has passed.
        """
        now = time.monotonic() if now_mono is None else now_mono
        width = RATE_WINDOW / RATE_BUCKETS
        self._rate_roll(int(now / width))
        total = sum(self._rate_counts)
        if not total:
            return 0.0
        # The full buckets before the newest one, plus the elapsed part of the newest.
        span = (RATE_BUCKETS - 1) * width + max(0.0, now - self._rate_b * width)
        span = min(span, max(now - self._rate_since, width))
        return total / span

    def refresh_rate(self, now_mono: float | None = None) -> bool:
        """Mark the run dirty when its rate moved off the last published one.

        A quiet run publishes nothing, so without this its clients would keep
        its last non-zero rate forever. Call it about once a second; returns
        True when the run now needs an update.
        """
        if self.dirty:
            return True
        if round(self.rate(now_mono), 3) != self._rate_pub:
            self.dirty = True
        return self.dirty

    # ------------------------------------------------------------ views

    def summary(self, now_mono: float | None = None) -> messages.RunSummary:
        """The RunSummary (:mod:`grokwatch.wire.messages`); the rate as of ``now_mono``."""
        i = self.info
        return messages.run_summary(
            self.name, sid=None, host=i["host"], pid=i["pid"], config=i["config"],
            modulus=i["modulus"], start=i["start"], state=i["state"], step=i["step"],
            last_t=i["last_t"], phase=self.phase, onset_step=self.onset_step, last=self.last,
            rate=round(self.rate(now_mono), 3), counters=self.counters,
            session=int(i.get("session") or 1))

    def series_tail(self, n: int) -> dict[str, dict]:
        """The last ``n`` ring points of every metric."""
        return {name: to_lists(*s.recent(n)) for name, s in self.series.items()}

    def series_history(self) -> dict[str, dict]:
        """Every metric over the whole run: thinned history, then the ring."""
        return {name: to_lists(*s.history()) for name, s in self.series.items()}

    def take_update(self, now_mono: float | None = None) -> messages.RunData:
        """The ``run`` update for the changes since the last call (and clear them)."""
        self.fold()
        upd = messages.run_update(messages.run_data(
            self.summary(now_mono),
            series={n: messages.series(p[0], p[1]) for n, p in self.pend_series.items()},
            spectra={n: self.spectra[n] for k, n in self.pend_arrays if k == SPECTRUM},
            points={n: self.points[n] for k, n in self.pend_arrays if k == POINTS}))
        self.pend_series = {}
        self.pend_arrays = set()
        self.dirty = False
        self._rate_pub = upd["summary"]["rate"]
        return upd

    def new_session(self) -> None:
        """A rerun under this run's name (a hello from another probe session): the live
        view (series, arrays, latest values, phase, onset, step) starts over and the
        session number goes up. The store keeps every session's records; the run's
        counters go on."""
        self._inbox = []
        self._series = {}
        self.spectra = {}
        self.points = {}
        self._last = {}
        self.phase = STARTING
        self.onset_step = None
        self.silenced = False
        self.pend_series = {}
        self.pend_arrays = set()
        self.info["step"] = 0
        self.info["session"] = int(self.info.get("session") or 1) + 1
        self.dirty = True

    def persist_info(self) -> dict[str, Any]:
        """What the store keeps about the run (restored on restart)."""
        return {**self.info, "counters": dict(self.counters), "last": dict(self.last),
                "phase": self.phase, "onset_step": self.onset_step}

    def memory_bytes(self) -> int:
        """Approximate bytes held by series arrays."""
        return sum(s.nbytes() for s in self.series.values())
