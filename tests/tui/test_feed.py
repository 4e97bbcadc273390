"""The reader thread against a real daemon: coalesced wake-ups, survival, stop."""

from __future__ import annotations

import threading
import time

from tuiprobe import send_run

from grokwatch.client import CloneClient
from grokwatch.tui.feed import Feed


class Collector:
    """Stands in for the app: counts wake-ups and drains like the UI thread would."""

    def __init__(self) -> None:
        self.wakes: list[float] = []
        self.items: list[tuple[str, dict]] = []
        self.event = threading.Event()
        self.feed: Feed | None = None

    def wake(self) -> None:
        self.wakes.append(time.monotonic())
        self.event.set()

    def drain_until(self, cond, timeout: float = 10.0) -> None:
        deadline = time.monotonic() + timeout
        while not cond():
            assert time.monotonic() < deadline, f"timed out; got {[k for k, _ in self.items]}"
            if self.event.wait(0.1):
                self.event.clear()
                self.items += self.feed.drain()


def test_feed_coalesces_many_updates_into_few_wakes(daemon):
    c = Collector()
    c.feed = feed = Feed(daemon.api, daemon.pub, c.wake, min_interval=0.2)
    feed.start()
    try:
        c.drain_until(lambda: any(k == "snapshot" for k, _ in c.items))
        t0 = time.monotonic()
        send_run(daemon.ingest, "many", steps=400)
        c.drain_until(lambda: any(k == "run" and m["summary"]["step"] == 399 for k, m in c.items))
        elapsed = time.monotonic() - t0
        runs = [m for k, m in c.items if k == "run"]
        woken = [w for w in c.wakes if w >= t0]
        assert len(runs) >= 1
        # Never more than one wake per min_interval, however many updates came.
        assert len(woken) <= elapsed / 0.2 + 2
        gaps = [b - a for a, b in zip(c.wakes, c.wakes[1:])]
        assert all(g >= 0.2 - 0.02 for g in gaps), gaps
        # Nothing lost between drains: the steps seen end at the last one sent.
        assert max(m["summary"]["step"] for m in runs) == 399
    finally:
        feed.stop()
    assert not feed._thread.is_alive()


def test_feed_survives_an_exception_in_the_reader(daemon):
    class Boom(CloneClient):
        def poll(self, timeout=0.1, max_msgs=10_000):
            raise RuntimeError("boom")
            yield  # pragma: no cover

    made = []

    class Once(Feed):
        def _client(self, ctx):
            made.append(1)
            cls = Boom if len(made) == 1 else CloneClient
            return cls(self.api, self.pub, ctx=ctx)

    c = Collector()
    c.feed = feed = Once(daemon.api, daemon.pub, c.wake, min_interval=0.05)
    feed.start()
    try:
        c.drain_until(lambda: any(k == "snapshot" for k, _ in c.items))
        assert feed.errors == 1 and "boom" in feed.last_error and len(made) == 2
    finally:
        feed.stop()
