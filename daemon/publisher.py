"""The update stream of the clone pattern: PUB with one global, strictly increasing seq.

Run updates are coalesced: a run is published at most every ``min_interval``
seconds (10/s by default), carrying only what changed since its last update.
Alerts and hook events go out at once. A ``hugz`` heartbeat with the latest
seq goes out every second so clients can tell silence from loss.
"""

from __future__ import annotations

import os
import time
from typing import Any

import zmq

from grokwatch import wire
from grokwatch.daemon.runstate import RunState
from grokwatch.wire import messages


class Publisher:
    """Owns the PUB socket and the global update seq."""

    def __init__(self, sock: zmq.Socket, *, min_interval: float = 0.1,
                 hugz_interval: float = 1.0) -> None:
        self.sock = sock
        self.seq = 0  # last seq sent
        # Names this daemon instance: a restarted daemon counts seqs from 1 again, and a
        # client that sees another epoch knows its state is stale at once.
        self.epoch = os.urandom(6).hex()
        self.min_interval = min_interval
        self.hugz_interval = hugz_interval
        self.sent = 0
        self.dropped = 0  # updates the PUB socket refused (HWM); clients re-snapshot on the gap
        self._last_hugz = 0.0
        self._rr = 0  # where the next round-robin flush starts

    def _send(self, topic: bytes, body: dict[str, Any]) -> None:
        self.seq += 1
        body["seq"] = self.seq
        body["epoch"] = self.epoch
        try:
            self.sock.send_multipart([topic, wire.encode_msg(body)], zmq.NOBLOCK)
            self.sent += 1
        except zmq.Again:
            self.dropped += 1

    def run_update(self, rs: RunState) -> None:
        """Publish what changed in one run since its last update."""
        self._send(messages.TOPIC_RUN, rs.take_update())
        rs.last_pub = time.monotonic()
        rs._pub_records = rs.counters["records"]  # what this update carried (flush_runs)

    def alert(self, alert: messages.Alert) -> None:
        """Publish one alert (wire map)."""
        self._send(messages.TOPIC_ALERT, messages.alert_update(alert))

    def hook(self, event: messages.HookEvent) -> None:
        """Publish one hook event."""
        self._send(messages.TOPIC_HOOK, messages.hook_update(event))

    def flush_runs(self, runs: dict[str, RunState], *, force: bool = False,
                   now: float | None = None, budget: int = 50) -> int:
        """Publish dirty runs whose last update is older than ``min_interval``.

        ``force`` publishes every dirty run (before a snapshot, so the snapshot
        and the stream agree). Otherwise at most ``budget`` runs per call, taken
        round-robin, so with very many busy runs each is updated less often
        instead of the daemon spending its time publishing. Runs streaming new
        records or arrays go first, then runs never published yet, then runs
        whose only change is their summary (a decaying rate, a counter): with
        thousands of new or quiet runs dirty (a flood), a streaming run's points
        still reach clients within ~100 ms.
        """
        now = time.monotonic() if now is None else now
        order = list(runs.values())
        if not order:
            return 0
        start = self._rr % len(order)
        due = [rs for rs in order[start:] + order[:start]
               if rs.dirty and (force or now - rs.last_pub >= self.min_interval)]
        if not force and len(due) > budget:
            data = [rs for rs in due if rs.counters["records"] != rs.__dict__.get(
                "_pub_records") or rs.pend_arrays]
            rest = [rs for rs in due if rs.counters["records"] == rs.__dict__.get(
                "_pub_records") and not rs.pend_arrays]
            # Streams already on screen first, then runs never published (a burst of a
            # thousand new runs must not hold up the ones being watched).
            streams = [rs for rs in data if rs.last_pub > 0]
            new = [rs for rs in data if rs.last_pub <= 0]
            due = (streams + new + rest)[:budget]
            self._rr = (self._rr + budget) % len(order)
        for rs in due:
            self.run_update(rs)
        return len(due)

    def maybe_hugz(self, now: float | None = None) -> bool:
        """Send the heartbeat if one is due (it carries the latest seq, not a new one)."""
        now = time.monotonic() if now is None else now
        if now - self._last_hugz < self.hugz_interval:
            return False
        self._last_hugz = now
        try:
            self.sock.send_multipart(
                [messages.TOPIC_HUGZ, wire.encode_msg(messages.hugz(self.seq, self.epoch,
                                                                    time.time()))],
                zmq.NOBLOCK)
        except zmq.Again:
            pass
        return True
