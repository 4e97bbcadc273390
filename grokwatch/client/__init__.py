"""The client side of the daemon's protocol (CLI commands, TUI, benches).

Three pieces, all speaking only :mod:`grokwatch.wire`:

* :func:`request` sends one request to the daemon's API ROUTER and returns the
  reply map (or raises :class:`DaemonUnavailable` after a bounded wait).
* :class:`CloneClient` is the zguide *clone* pattern: subscribe to the PUB
  stream first, then take a snapshot, drop updates already covered by it,
  and take a fresh snapshot on a sequence gap, on another daemon epoch, when
  the heartbeat stops, or after the SUB connection dropped.
* :class:`~grokwatch.client.state.ClientState` applies what :class:`CloneClient`
  yields (snapshots and updates) to one client-side copy of the daemon's state:
  the TUI, the headless demo and ``grokwatch alerts --follow`` all use it.

Message shapes, requests, replies and updates: :mod:`grokwatch.wire.messages`.
"""

from __future__ import annotations

import time
import uuid
from collections.abc import Iterator
from typing import Any

import zmq
from zmq.utils.monitor import recv_monitor_message

from grokwatch import wire
from grokwatch.client.state import ClientState
from grokwatch.wire import messages, security

__all__ = ["HEARTBEAT_TIMEOUT", "ClientState", "CloneClient", "DaemonUnavailable", "request"]

HEARTBEAT_TIMEOUT = 3.0  # seconds without any update or hugz -> re-snapshot


class DaemonUnavailable(ConnectionError):
    """No daemon answered at the endpoint within the timeout."""


def request(endpoint: str = wire.DEFAULT_API, op: str = "ping", *, timeout: float = 5.0,
            ctx: zmq.Context | None = None, **args: Any) -> dict:
    """Send one request and return the reply map; raise on no answer or a refusal."""
    ctx = ctx or zmq.Context.instance()
    sock = ctx.socket(zmq.DEALER)
    sock.setsockopt(zmq.LINGER, 0)
    sock.setsockopt(zmq.IMMEDIATE, 1)
    try:
        try:
            security.secure_client(sock, endpoint)  # CURVE for tcp, a private dir for ipc
        except OSError as e:
            raise DaemonUnavailable(f"{endpoint}: {e}") from None
        sock.connect(endpoint)
        rid = uuid.uuid4().hex[:12]
        payload = wire.encode_msg(messages.request(op, rid, **args))
        deadline = time.monotonic() + timeout
        sent = False
        while (left := deadline - time.monotonic()) > 0:
            if not sent:
                # IMMEDIATE: nothing queues until the connection is up, so a
                # send to an absent daemon fails here instead of lingering.
                try:
                    sock.send(payload, zmq.NOBLOCK)
                    sent = True
                except zmq.Again:
                    time.sleep(0.01)
                    continue
            if sock.poll(min(left, 0.05) * 1000):
                reply = wire.decode_msg(sock.recv())
                if reply.get("id") not in (None, rid):
                    continue  # a late reply to an earlier request
                if not reply.get("ok", False):
                    raise RuntimeError(reply.get("error", "request refused"))
                return reply
        raise DaemonUnavailable(f"no daemon answered at {endpoint} within {timeout:g} s")
    finally:
        sock.close(0)


class CloneClient:
    """Snapshot + update stream with gap detection (zguide clone pattern).

    Call :meth:`poll` from one thread; it yields ``(kind, msg)`` tuples where
    kind is ``"snapshot"`` (a full reply from the ``snapshot`` request: replace
    all state), ``"run"``, ``"alert"``, ``"hook"`` or ``"disconnected"``.
    It reconnects and re-snapshots by itself.

    The SUB socket is watched (a ZeroMQ socket monitor attached before its
    connect, so no event is missed). Any drop of that connection means updates
    may have been lost, so the client forgets its seq, reports
    ``"disconnected"`` at once (not after the heartbeat timeout), and takes
    the next snapshot only once the link is back, so that no update published
    after the snapshot can slip past it.
    """

    def __init__(self, api: str = wire.DEFAULT_API, pub: str = wire.DEFAULT_PUB, *,
                 ctx: zmq.Context | None = None, heartbeat_timeout: float = HEARTBEAT_TIMEOUT,
                 snapshot_timeout: float = 5.0, history: bool = False) -> None:
        self.api, self.pub = api, pub
        self.history = history  # snapshots carry each run's whole (thinned) history
        self.ctx = ctx or zmq.Context.instance()
        self.heartbeat_timeout = heartbeat_timeout
        self.snapshot_timeout = snapshot_timeout
        self.seq = -1  # last applied update seq; -1 = need a snapshot
        self.epoch: str | None = None  # the daemon instance the state came from
        self.connected = False
        self.resnapshots = 0
        self.drops = 0  # times the SUB connection went down
        self.linked = False  # the SUB socket has a live connection
        self._last_heard = 0.0
        self._sub = self.ctx.socket(zmq.SUB)
        self._sub.setsockopt(zmq.LINGER, 0)
        self._sub.setsockopt(zmq.RCVHWM, 100_000)
        self._sub.setsockopt(zmq.SUBSCRIBE, b"")
        self._mon = self._sub.get_monitor_socket(zmq.EVENT_CONNECTED | zmq.EVENT_DISCONNECTED)
        try:
            security.secure_client(self._sub, pub)  # CURVE for tcp, a private dir for ipc
        except OSError as e:
            raise DaemonUnavailable(f"{pub}: {e}") from None
        self._sub.connect(pub)

    def close(self) -> None:
        """Close the subscription socket and its monitor."""
        try:
            self._sub.disable_monitor()
        except zmq.ZMQError:
            pass
        self._mon.close(0)
        self._sub.close(0)

    def _link_events(self) -> None:
        """Apply the SUB socket's pending connect/disconnect events."""
        while True:
            try:
                ev = recv_monitor_message(self._mon, zmq.NOBLOCK)
            except zmq.Again:
                return
            if ev["event"] == zmq.EVENT_CONNECTED:
                self.linked = True
            elif ev["event"] == zmq.EVENT_DISCONNECTED:
                self.linked = False
                self.drops += 1
                self.seq = -1  # re-snapshot once linked again

    def _snapshot(self) -> dict | None:
        try:
            snap = request(self.api, "snapshot", timeout=self.snapshot_timeout, ctx=self.ctx,
                           **messages.snapshot_request(history=self.history))
        except (DaemonUnavailable, RuntimeError, wire.WireError):
            return None
        self.seq = int(snap.get("seq", 0))
        self.epoch = snap.get("epoch")
        self._last_heard = time.monotonic()
        self.resnapshots += 1
        return snap

    def poll(self, timeout: float = 0.1, max_msgs: int = 10_000) -> Iterator[tuple[str, dict]]:
        """Yield what arrived within ``timeout`` seconds (snapshot first when needed)."""
        if not self.linked:
            # Nothing to read until the SUB connects: wait on the monitor instead.
            self._mon.poll(timeout * 1000)
        self._link_events()
        if not self.linked:
            if self.connected:
                self.connected = False
                yield "disconnected", {}
            return
        if self.seq < 0:
            snap = self._snapshot()
            if snap is None:
                if self.connected:
                    self.connected = False
                    yield "disconnected", {}
                return
            self.connected = True
            yield "snapshot", snap
        n = 0
        if not self._sub.poll(timeout * 1000):
            if time.monotonic() - self._last_heard > self.heartbeat_timeout:
                self.seq = -1  # silence: the daemon may have restarted
                self.connected = False
                yield "disconnected", {}
            return
        while n < max_msgs:
            try:
                topic, payload = self._sub.recv_multipart(zmq.NOBLOCK)
            except zmq.Again:
                break
            except ValueError:
                continue  # not two frames: ignore
            n += 1
            try:
                msg = wire.decode_msg(payload)
            except wire.WireError:
                continue
            self._last_heard = time.monotonic()
            seq = msg.get("seq")
            if not isinstance(seq, int):
                continue
            epoch = msg.get("epoch")
            if epoch is not None and self.epoch is not None and epoch != self.epoch:
                self.seq = -1  # another daemon instance: this state is stale
                return
            if topic == b"hugz":
                if seq > self.seq:  # missed updates, or a restarted daemon
                    self.seq = -1
                elif seq < self.seq:
                    self.seq = -1  # seq went backwards: new daemon
                if self.seq < 0:
                    return
                continue
            if seq <= self.seq:
                continue  # covered by the snapshot
            if seq != self.seq + 1:
                self.seq = -1  # gap: re-snapshot on the next poll
                return
            self.seq = seq
            kind = topic.decode("ascii", "replace")
            yield kind, msg

