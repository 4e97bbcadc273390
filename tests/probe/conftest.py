"""A real ROUTER standing in for the daemon's ingest: decodes frames, acks what it holds.

It acks, per session, the highest seq below which it has every record or
knows the probe dropped it (the daemon's watermark), right after each frame, and it can be closed and bound
again on the same endpoint to play a daemon restart.
"""

from __future__ import annotations

import shutil
import tempfile
import threading
import time
from collections import Counter, defaultdict
from collections.abc import Callable, Iterator

import pytest
import zmq

from grokwatch import wire


class TestRouter:
    """ROUTER on ``endpoint`` in a thread; ``records`` lists (run, sid, seq, Record) in arrival order."""

    __test__ = False

    def __init__(self, endpoint: str, *, ack: bool = True) -> None:
        self.endpoint = endpoint
        self.ack = ack
        self.records: list[tuple[str, int, int, wire.Record]] = []
        self.frames: list[wire.Frame] = []
        self.rejects: list[wire.WireError] = []
        self.have: dict[tuple[str, int], set[int]] = defaultdict(set)
        self.marks: dict[tuple[str, int], int] = defaultdict(int)
        self.lock = threading.Lock()
        # blackhole: take frames and forget them unacked, like a daemon killed before it commits.
        self.blackhole = False
        self.swallowed = 0
        self._thread: threading.Thread | None = None
        self._stop = threading.Event()

    def start(self) -> TestRouter:
        self._stop.clear()
        ready = threading.Event()
        self._thread = threading.Thread(target=self._serve, args=(ready,), daemon=True)
        self._thread.start()
        assert ready.wait(5)
        return self

    def stop(self) -> None:
        """Close the socket (a daemon going away); its state is kept, like a store."""
        self._stop.set()
        if self._thread:
            self._thread.join(5)
            self._thread = None

    def _serve(self, ready: threading.Event) -> None:
        ctx = zmq.Context()
        sock = ctx.socket(zmq.ROUTER)
        sock.setsockopt(zmq.LINGER, 0)
        sock.bind(self.endpoint)
        ready.set()
        try:
            while not self._stop.is_set():
                if not sock.poll(20):
                    continue
                while True:
                    try:
                        ident, data = sock.recv_multipart(zmq.NOBLOCK)
                    except zmq.Again:
                        break
                    ack = self._handle(data)
                    if ack is not None and self.ack:
                        sock.send_multipart([ident, ack], zmq.NOBLOCK)
        finally:
            sock.close(0)
            ctx.destroy(0)

    def _handle(self, data: bytes) -> bytes | None:
        if self.blackhole:
            self.swallowed += 1
            return None
        try:
            f = wire.decode_frame(data)
        except wire.WireError as e:
            with self.lock:
                self.rejects.append(e)
            return None
        key = (f.run, f.sid)
        with self.lock:
            self.frames.append(f)
            have = self.have[key]
            for r in f.recs:
                self.records.append((f.run, f.sid, r.seq, r))
                have.add(r.seq)
            # A frame is a contiguous slice of the probe's buffer: a seq missing between
            # two of its records was dropped by the probe and will never come (wire docs).
            for a, b in zip(f.recs, f.recs[1:]):
                have.update(range(a.seq + 1, b.seq))
            mark = self.marks[key]
            while mark + 1 in have:
                mark += 1
            self.marks[key] = mark
        return wire.encode_ack(f.run, f.sid, mark) if mark else None

    # ------------------------------------------------------------ queries

    def seqs(self, sid: int | None = None) -> list[int]:
        with self.lock:
            return [s for (_r, i, s, _rec) in self.records if sid is None or i == sid]

    def sids(self) -> set[int]:
        with self.lock:
            return {i for (_r, i, _s, _rec) in self.records}

    def duplicates(self) -> Counter:
        return Counter(k for k, n in Counter(
            (i, s) for (_r, i, s, _rec) in list(self.records)).items() if n > 1)

    def wait_for(self, cond: Callable[[], bool], timeout: float = 10.0) -> bool:
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            if cond():
                return True
            time.sleep(0.01)
        return cond()


@pytest.fixture
def sockdir() -> Iterator[str]:
    """A short private directory for ipc:// endpoints (paths must stay < 107 bytes)."""
    d = tempfile.mkdtemp(prefix="gwp-")
    yield d
    shutil.rmtree(d, ignore_errors=True)


@pytest.fixture
def router(sockdir) -> Iterator[TestRouter]:
    r = TestRouter(f"ipc://{sockdir}/ingest").start()
    yield r
    r.stop()


@pytest.fixture
def make_router() -> Iterator[Callable[..., TestRouter]]:
    """Factory: ``make_router(endpoint, ack=True)`` returns a started router (stopped at teardown)."""
    made: list[TestRouter] = []

    def make(endpoint: str, **kw) -> TestRouter:
        r = TestRouter(endpoint, **kw).start()
        made.append(r)
        return r

    yield make
    for r in made:
        r.stop()
