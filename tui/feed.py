"""The reader thread: a :class:`grokwatch.client.CloneClient` off the UI thread.

It collects snapshot and update messages and wakes the app with one
:class:`FeedReady` message at a time, at most every ``min_interval`` seconds
(which the app adapts to what a batch costs it), so 2,000 updates a second
become a handful of batches a second on the UI thread. The thread never
touches widgets; the app drains the batch on its own thread.
"""

from __future__ import annotations

import threading
import time
from collections.abc import Callable
from typing import Any

import zmq
from textual.message import Message

from grokwatch import wire
from grokwatch.client import CloneClient
from grokwatch.client.state import prepare_snapshot
from grokwatch.wire.names import API_PORT, PUB_PORT, tcp


class FeedReady(Message):
    """New messages are waiting in the feed: call :meth:`Feed.drain`."""


def parse_connect(spec: str | None) -> tuple[str, str]:
    """``--connect`` value -> (pub, api) endpoints.

    Accepts nothing (the defaults), a host (the default PUB and API ports on it), or
    ``PUB,API`` endpoints such as ``ipc:///tmp/gw/pub,ipc:///tmp/gw/api``.
    """
    if not spec:
        return wire.DEFAULT_PUB, wire.DEFAULT_API
    spec = spec.strip()
    if "," in spec:
        pub, api = (p.strip() for p in spec.split(",", 1))
        for ep in (pub, api):
            if "://" not in ep:
                raise ValueError(f"not an endpoint: {ep!r} (want e.g. {tcp('HOST', PUB_PORT)})")
        return pub, api
    if "://" in spec:
        raise ValueError("give a host, or both endpoints as PUB,API")
    if not spec or any(c.isspace() for c in spec):
        raise ValueError(f"not a host name: {spec!r}")
    host = f"[{spec}]" if ":" in spec and not spec.startswith("[") else spec
    return tcp(host, PUB_PORT), tcp(host, API_PORT)


class Feed:
    """Runs a CloneClient in a daemon thread and hands batches to the UI thread."""

    def __init__(self, api: str, pub: str, wake: Callable[[], object], *,
                 min_interval: float = 0.1, heartbeat_timeout: float = 3.0,
                 snapshot_timeout: float = 2.0) -> None:
        self.api, self.pub = api, pub
        self.wake = wake
        self.min_interval = min_interval
        self.heartbeat_timeout = heartbeat_timeout
        self.snapshot_timeout = snapshot_timeout
        self._lock = threading.Lock()
        self._pending: list[tuple[str, Any]] = []  # (kind, message or Prepared snapshot)
        self._woken = False
        self._last_wake = 0.0
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._run, name="grokwatch-feed", daemon=True)
        self.received = 0
        self.errors = 0  # unexpected exceptions in the reader (it starts a new client)
        self.last_error = ""

    def start(self) -> None:
        self._thread.start()

    def stop(self, timeout: float = 3.0) -> None:
        """Ask the thread to finish and wait (bounded) for it."""
        self._stop.set()
        if self._thread.is_alive():
            self._thread.join(timeout)

    def drain(self) -> list[tuple[str, Any]]:
        """Everything received since the last drain (UI thread)."""
        with self._lock:
            items, self._pending = self._pending, []
            self._woken = False
        return items

    def _push(self, items: list[tuple[str, Any]]) -> None:
        """Queue a poll's worth of messages under one lock acquisition."""
        if not items:
            return
        last_snap = max((i for i, (k, _) in enumerate(items) if k == "snapshot"), default=-1)
        with self._lock:
            if last_snap >= 0:
                # A snapshot replaces all state: what came before it is moot.
                self._pending = items[last_snap:]
            else:
                self._pending += items
            self.received += len(items)

    def _maybe_wake(self) -> None:
        now = time.monotonic()
        with self._lock:
            due = self._pending and not self._woken and now - self._last_wake >= self.min_interval
            if due:
                self._woken = True
                self._last_wake = now
        if due:
            self.wake()

    def _client(self, ctx: zmq.Context) -> CloneClient:
        return CloneClient(self.api, self.pub, ctx=ctx,
                            heartbeat_timeout=self.heartbeat_timeout,
                            snapshot_timeout=self.snapshot_timeout, history=True)

    def _run(self) -> None:
        ctx = zmq.Context()
        client = self._client(ctx)
        announced = False
        try:
            while not self._stop.is_set():
                try:
                    items = list(client.poll(timeout=0.05))
                    # Build snapshot state here, off the UI thread (1,000 runs
                    # of history take a second to convert).
                    items = [(k, prepare_snapshot(m)) if k == "snapshot" else (k, m)
                             for k, m in items]
                    if items:
                        announced = items[-1][0] == "disconnected"
                    self._push(items)
                except Exception as e:  # never let the reader die silently
                    self.errors += 1
                    self.last_error = f"{type(e).__name__}: {e}"
                    client.close()
                    self._stop.wait(0.5)
                    client = self._client(ctx)
                    client.connected = True  # so the next state change is reported
                if not client.connected and not announced:
                    # Also covers "never connected": the client only reports a
                    # disconnect after having been connected.
                    self._push([("disconnected", {})])
                    announced = True
                self._maybe_wake()
        finally:
            client.close()
            ctx.term()
