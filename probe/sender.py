"""The probe's background sender: one thread owning one DEALER socket.

The training thread only appends to the :class:`~grokwatch.probe.outbox.Outbox`;
this thread batches what is unsent into frames every few milliseconds, sends
them without blocking, reads the daemon's acks, and resends every
unacknowledged record after a reconnect (seen on a socket monitor) or when
acks stop coming (``ack_timeout``). ZeroMQ's own queues are not trusted to
keep anything: ``IMMEDIATE=1`` makes a send fail at once when no connection
is up, and a frame stays in the outbox until its ack arrives.
"""

from __future__ import annotations

import logging
import os
import threading
import time
from collections.abc import Callable

import zmq
from zmq.utils.monitor import recv_monitor_message

from grokwatch import wire
from grokwatch.wire import security
from grokwatch.wire.frames import ack_rejected

from .outbox import Outbox

log = logging.getLogger("grokwatch.probe")

# The thread wakes on a timer, not on each ack: every wake takes the GIL, and on a
# busy machine each hand-off can cost the training thread a scheduler slice.
TICK_S = 0.025  # wake period for a trickle of records (a slow loop) and for acks
FLUSH_S = 0.005  # wake period while a backlog waits (a fast loop) or while closing
BACKLOG = 256  # records waiting that make the next wake come sooner
RETRY_S = 0.05  # back-off after a refused send (no connection, HWM reached)
CLOSE_GRACE_S = 0.2  # at close, how long to wait for a connection that is not up


class Sender:
    """Sends one probe session's records; all socket work happens on its own thread."""

    def __init__(self, endpoint: str, run: str, sid: int, outbox: Outbox, *,
                 errors: Callable[[], int] = lambda: 0,
                 on_error: Callable[[BaseException], None] | None = None,
                 max_records: int = 1000, max_bytes: int = 512 << 10,
                 max_frame: int = wire.DEFAULT_MAX_FRAME, ack_timeout: float = 3.0,
                 sndhwm: int = 64) -> None:
        self.endpoint, self.run, self.sid, self.outbox = endpoint, run, sid, outbox
        self._errors = errors
        self._on_error = on_error or (lambda e: None)
        self.max_records, self.max_bytes, self.max_frame = max_records, max_bytes, max_frame
        self.ack_timeout = ack_timeout
        self.connected = False
        self.connects = 0
        self.disconnects = 0
        self.frames_sent = 0
        self.resent = 0  # records rewound for a resend
        self.oversized = 0  # records dropped because alone they exceed the frame cap
        self.rejected = 0  # records the daemon refused for good (acked as rejected)
        self._ctx = zmq.Context()
        try:
            self._sock = self._ctx.socket(zmq.DEALER)
            self._sock.setsockopt(zmq.IMMEDIATE, 1)
            self._sock.setsockopt(zmq.SNDHWM, sndhwm)
            self._sock.setsockopt(zmq.LINGER, 0)  # unacked records are resent, never lingered
            # A random routing id, kept across reconnects: the daemon binds this session
            # to it, so nobody who does not know it can write into (or end) the session.
            self._sock.setsockopt(zmq.ROUTING_ID, b"gw" + os.urandom(16))
            if endpoint.startswith("tcp://"):
                self._sock.setsockopt(zmq.HEARTBEAT_IVL, 2000)
                self._sock.setsockopt(zmq.HEARTBEAT_TIMEOUT, 6000)
            self._mon = self._sock.get_monitor_socket(zmq.EVENT_CONNECTED | zmq.EVENT_DISCONNECTED)
            security.secure_client(self._sock, endpoint)  # CURVE for tcp, private dir for ipc
            self._sock.connect(endpoint)
        except (zmq.ZMQError, OSError) as e:
            self._ctx.destroy(linger=0)
            raise ValueError(f"cannot connect to {endpoint!r}: {e}") from None
        self._closing_at: float | None = None
        self._deadline = 0.0
        self._stop = False
        self._last_progress = time.monotonic()
        self._timeout = ack_timeout
        self._retry_at = 0.0
        self._last_batch = 0  # records found waiting at the last flush
        self.thread = threading.Thread(target=self._main, name="grokwatch-probe", daemon=True)
        self.thread.start()

    # ------------------------------------------------------------ main thread API

    def close(self, timeout: float = 2.0) -> bool:
        """Flush, wait up to ``timeout`` s for acks (less when no daemon is connected), stop.

        Returns True when every record was acknowledged.
        """
        if self._closing_at is None:
            self._deadline = time.monotonic() + max(0.0, timeout)
            self._closing_at = time.monotonic()
        self.thread.join(timeout + 1.0)
        if self.thread.is_alive():  # should not happen; never hang the caller
            self._stop = True
            self.thread.join(0.5)
        return len(self.outbox) == 0

    # ------------------------------------------------------------ sender thread

    def _main(self) -> None:
        try:
            self._loop()
        except Exception as e:  # the thread must never die noisily inside training
            self._on_error(e)
        finally:
            try:
                self._sock.disable_monitor()
            except zmq.ZMQError:
                pass
            self._mon.close(0)
            self._sock.close(0)
            self._ctx.destroy(linger=0)

    def _loop(self) -> None:
        poller = zmq.Poller()
        poller.register(self._mon, zmq.POLLIN)  # connection events wake us at once
        while not self._stop:
            # Rate-adaptive: a fast loop (a backlog now, or at the last wake) gets the
            # short period, so the buffer stays small; a trickle gets the long one.
            busy = self.connected and (len(self.outbox.unsent) >= BACKLOG
                                       or self._last_batch >= BACKLOG
                                       or self._closing_at is not None)
            poller.poll((FLUSH_S if busy else TICK_S) * 1000)
            self._read_monitor()
            self._read_acks()
            now = time.monotonic()
            self._check_ack_timeout(now)
            if self.connected and now >= self._retry_at:
                # Not encoding while disconnected: a frame that cannot leave would only
                # hold the GIL against the training thread.
                self._flush(now)
            if self._closing_at is not None and self._close_done(now):
                return

    def _close_done(self, now: float) -> bool:
        if len(self.outbox) == 0 or now >= self._deadline:
            return True
        # No daemon: give a connection a short grace to come up, then give up.
        return not self.connected and now - self._closing_at >= CLOSE_GRACE_S

    def _read_monitor(self) -> None:
        while True:
            try:
                ev = recv_monitor_message(self._mon, zmq.NOBLOCK)
            except zmq.Again:
                return
            if ev["event"] == zmq.EVENT_CONNECTED:
                self.connected = True
                self.connects += 1
                if self.disconnects:
                    # A new pipe: whatever sat in the old one may be gone.
                    self.resent += self.outbox.rewind()
                self._retry_at = 0.0
                self._last_progress = time.monotonic()
            elif ev["event"] == zmq.EVENT_DISCONNECTED:
                self.connected = False
                self.disconnects += 1

    def _read_acks(self) -> None:
        while True:
            try:
                data = self._sock.recv(zmq.NOBLOCK)
            except zmq.Again:
                return
            try:
                run, sid, seq = wire.decode_ack(data)
            except wire.WireError:
                continue  # not for us to act on
            if sid != self.sid or run != self.run:
                continue
            n = 0
            for lo, hi in ack_rejected(data):  # refused for good: drop, never resend
                n += self.outbox.reject(lo, hi)
            if n:
                self.rejected += n
                self._last_progress = time.monotonic()
                self._on_error(ValueError(f"the daemon refused {n} record(s) for good "
                                          "(see `grokwatch status`)"))
            if self.outbox.ack(seq):
                self._last_progress = time.monotonic()
                self._timeout = self.ack_timeout

    def _check_ack_timeout(self, now: float) -> None:
        if not self.outbox.inflight:
            return
        if now - self._last_progress > self._timeout:
            self.resent += self.outbox.rewind()
            self._last_progress = now
            self._timeout = min(self._timeout * 2, 30.0)  # back off if the daemon stays mute

    def _flush(self, now: float) -> None:
        self._last_batch = len(self.outbox.unsent)
        limit = self.max_records
        while self.outbox.unsent:
            had_inflight = bool(self.outbox.inflight)
            recs = self.outbox.take(limit, self.max_bytes)
            if not recs:
                return
            frame = wire.encode_frame(self.run, self.sid, recs, dropped=self.outbox.dropped,
                                      errors=self._errors())
            if len(frame) > self.max_frame:
                self.outbox.untake(recs)
                if len(recs) > 1:
                    limit = max(1, len(recs) // 2)
                    continue
                self._drop_unsendable(recs[0])
                continue
            try:
                self._sock.send(frame, zmq.NOBLOCK)
            except zmq.Again:
                self.outbox.untake(recs)
                self._retry_at = now + RETRY_S
                return
            self.frames_sent += 1
            if not had_inflight:
                self._last_progress = now

    def _drop_unsendable(self, rec: dict) -> None:
        with self.outbox.lock:
            if self.outbox.unsent and self.outbox.unsent[0] is rec:
                self.outbox.unsent.popleft()
                self.outbox.dropped += 1
        self.oversized += 1
        self._on_error(ValueError(f"a {rec['k']} record exceeds the frame cap"))
