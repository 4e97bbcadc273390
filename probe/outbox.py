"""The probe's bounded buffer of records not yet acknowledged by the daemon.

Two queues share one capacity: ``unsent`` (appended by the training thread)
and ``inflight`` (sent at least once, waiting for an ack). Their concatenation
``inflight + unsent`` is always in seq order, so an ack pops from the left and
a resend ("rewind") moves every inflight record back in front of ``unsent``.
When the buffer is full the oldest record goes, counted in :attr:`dropped`;
the session's ``hello`` (seq 1) is kept while unacknowledged, because
without it the daemon knows nothing of the run's config.
"""

from __future__ import annotations

import threading
from collections import deque

from grokwatch.wire import MAX_CONFIG_BYTES


class Outbox:
    """Thread-safe seq-ordered buffer: the training thread puts, the sender takes and acks."""

    def __init__(self, capacity: int = 10_000) -> None:
        if capacity < 2:
            raise ValueError("capacity must be at least 2 records")
        self.capacity = capacity
        self.lock = threading.Lock()
        self.unsent: deque[dict] = deque()
        self.inflight: deque[dict] = deque()
        self.seq = 0  # last seq handed out
        self.acked = 0  # highest seq the daemon acknowledged
        self.dropped = 0  # records dropped on overflow (cumulative)
        self.rejected = 0  # records the daemon refused for good (see :meth:`reject`)

    def __len__(self) -> int:
        return len(self.unsent) + len(self.inflight)

    def put(self, rec: dict, *, over_capacity: bool = False) -> int:
        """Give ``rec`` the next seq and append it; drop the oldest record when full.

        ``over_capacity`` lets one last record (the ``bye``) exceed the capacity
        instead of evicting the oldest: that record may already sit in a live
        daemon's store, unacked, and counting it as dropped would over-report loss.
        """
        with self.lock:
            if not over_capacity and len(self.unsent) + len(self.inflight) >= self.capacity:
                self._drop_oldest()
            self.seq += 1
            rec["seq"] = self.seq
            self.unsent.append(rec)
            return self.seq

    def _drop_oldest(self) -> None:
        src = self.inflight if self.inflight else self.unsent
        first = src.popleft()
        if first["seq"] == 1 and first["k"] == "hello":
            # Keep the hello: drop the record after it instead.
            nxt = self.inflight if self.inflight else self.unsent
            if nxt:
                nxt.popleft()
                self.dropped += 1
            src.appendleft(first)
            return
        self.dropped += 1

    def take(self, max_records: int, max_bytes: int) -> list[dict]:
        """Move up to ``max_records`` (about ``max_bytes``) from unsent to inflight; return them."""
        out: list[dict] = []
        size = 0
        with self.lock:
            while self.unsent and len(out) < max_records:
                rec = self.unsent[0]
                n = estimate_size(rec)
                if out and size + n > max_bytes:
                    break
                self.unsent.popleft()
                self.inflight.append(rec)
                out.append(rec)
                size += n
        return out

    def untake(self, recs: list[dict]) -> None:
        """Undo :meth:`take` for records whose send failed (they were never sent)."""
        if not recs:
            return
        first = recs[0]["seq"]
        with self.lock:
            back = []
            while self.inflight and self.inflight[-1]["seq"] >= first:
                back.append(self.inflight.pop())
            self.unsent.extendleft(back)  # ``back`` is newest first: extendleft restores order

    def ack(self, seq: int) -> int:
        """Forget every record with seq <= ``seq``; return how many were freed."""
        n = 0
        with self.lock:
            if seq <= self.acked:
                return 0
            self.acked = seq
            for q in (self.inflight, self.unsent):
                while q and q[0]["seq"] <= seq:
                    q.popleft()
                    n += 1
        return n

    def reject(self, lo: int, hi: int) -> int:
        """Forget records with ``lo <= seq <= hi`` (the daemon refused them for good).

        Counted in :attr:`rejected`, not resent. Returns how many were freed.
        """
        n = 0
        with self.lock:
            for q in (self.inflight, self.unsent):
                keep = [r for r in q if not lo <= r["seq"] <= hi]
                n += len(q) - len(keep)
                if len(keep) != len(q):
                    q.clear()
                    q.extend(keep)
            self.rejected += n
        return n

    def rewind(self) -> int:
        """Mark every inflight record unsent again (after a reconnect); return how many."""
        with self.lock:
            n = len(self.inflight)
            self.unsent.extendleft(reversed(self.inflight))
            self.inflight.clear()
            return n

    def pending(self) -> tuple[int, int]:
        """``(unsent, inflight)`` counts."""
        with self.lock:
            return len(self.unsent), len(self.inflight)


def estimate_size(rec: dict) -> int:
    """A cheap upper estimate of a record's msgpack size, to keep frames under the cap."""
    n = 64
    vals = rec.get("vals")
    if vals is not None:
        n += 16 * len(vals) + sum(len(k) for k in vals) * 4  # utf-8: <= 4 bytes a char
    arr = rec.get("arr")
    if arr is not None:
        n += len(arr["b"]) + 64
    if rec["k"] == "hello":
        n += MAX_CONFIG_BYTES + 1024  # the probe refuses larger configs
    return n
