"""Queries off the ingest loop: exports and alert queries on a worker thread.

The loop commits what it has received (so the query sees it), then hands the
request here. The worker reads through its own read-only SQLite connection (WAL
lets it read while the loop writes), encodes the reply itself, row by row, into
msgpack bytes (a 1 M-row export is ~40 MB of bytes, not ~400 MB of Python
dicts), and queues the bytes for the loop, which only sends them. Acks keep
flowing meanwhile; the GIL is shared, so the loop slows, it never stops.

Jobs are bounded (``MAX_JOBS`` waiting): past that a request is refused "busy".
"""

from __future__ import annotations

import fnmatch
import logging
import queue
import re
import threading
from pathlib import Path
from typing import Any

import msgpack

from grokwatch import wire
from grokwatch.daemon.store import Store, StoreError, unpack
from grokwatch.wire import messages

log = logging.getLogger("grokwatch.daemon")

MAX_JOBS = 8
MAX_EXPORT_ROWS = 5_000_000
MAX_GLOB = 256  # characters in a run glob (a long glob costs regex time and cache memory)


class QueryWorker:
    """One thread answering ``export`` and ``alerts`` from a read-only store connection."""

    def __init__(self, db: Path, *, max_rows: int = MAX_EXPORT_ROWS) -> None:
        self.db = Path(db)
        self.max_rows = max_rows
        self._jobs: queue.Queue = queue.Queue(MAX_JOBS)
        self.done: queue.Queue = queue.Queue()  # (ident parts, reply bytes) for the loop
        self.served = 0
        self.busy_refused = 0
        self._store: Store | None = None
        self._thread = threading.Thread(target=self._main, name="grokwatch-queries",
                                        daemon=True)
        self._thread.start()

    def submit(self, ident: list[bytes], req: dict[str, Any]) -> bool:
        """Queue one parsed request; False when too many wait (the caller says busy)."""
        try:
            self._jobs.put_nowait((ident, req))
            return True
        except queue.Full:
            self.busy_refused += 1
            return False

    def close(self) -> None:
        try:
            self._jobs.put_nowait(None)
        except queue.Full:
            pass
        self._thread.join(2.0)

    def stats(self) -> dict[str, int]:
        return {"waiting": self._jobs.qsize(), "served": self.served,
                "busy_refused": self.busy_refused}

    # ------------------------------------------------------------ worker thread

    def _main(self) -> None:
        while True:
            job = self._jobs.get()
            if job is None:
                break
            ident, req = job
            op, rid = req["op"], req.get("id")
            try:
                data = self._answer(req)
            except (QueryError, StoreError) as e:
                data = wire.encode_msg(messages.error_reply(op, rid, str(e)))
            except Exception as e:  # a bug: one line to the client, the daemon goes on
                log.exception("query %s failed", op)
                data = wire.encode_msg(messages.error_reply(
                    op, rid, f"internal error: {type(e).__name__}: {e}"))
            self.served += 1
            self.done.put((ident, data))
        if self._store is not None:
            self._store.close()

    def _ro(self) -> Store:
        if self._store is None:
            self._store = Store(self.db, readonly=True)
        return self._store

    def _answer(self, req: dict[str, Any]) -> bytes:
        if req["op"] == "export":
            return self._export(req)
        return self._alerts(req)

    def _export(self, req: dict[str, Any]) -> bytes:
        run, metric = req["run"], req["metric"]
        packer = msgpack.Packer(use_bin_type=True)
        parts: list[bytes] = []
        n = 0
        cap = self.max_rows
        for row in self._ro().export_rows(run, metric):
            n += 1
            if n > cap:  # checked while building: nothing more is read past the cap
                raise QueryError(f"more than {cap} rows: use `grokwatch export --db`")
            parts.append(packer.pack(row))
        head = {"v": wire.VERSION, **messages.reply("export", req.get("id"),
                                                    messages.export_reply(run, []))}
        del head["rows"]
        out = [packer.pack_map_header(len(head) + 1)]
        for k, v in head.items():
            out += [packer.pack(k), packer.pack(v)]
        out += [packer.pack("rows"), packer.pack_array_header(n)]
        return b"".join(out + parts)

    def _alerts(self, req: dict[str, Any]) -> bytes:
        st = self._ro()
        match = glob_matcher(req["run"])
        limit = req["limit"]
        alerts = _newest(st.db, "SELECT run, data FROM alerts" + (
            " WHERE kind=?" if req["kind"] else "") + " ORDER BY id DESC",
            [req["kind"]] if req["kind"] else [], match, limit)
        hooks = _newest(st.db, "SELECT run, data FROM hook_events ORDER BY id DESC", [], match,
                        limit)
        return wire.encode_msg(messages.reply("alerts", req.get("id"),
                                              messages.alerts_reply(alerts, hooks)))


class QueryError(Exception):
    """A refused query; one line for the client."""


def _newest(db: Any, q: str, args: list, match: Any, limit: int) -> list[dict]:
    out = []
    if limit <= 0:
        return out
    for name, data in db.execute(q, args):
        if match(name or ""):
            out.append(unpack(data))
            if len(out) >= limit:
                break
    out.reverse()
    return out


def glob_matcher(pat: str) -> Any:
    """A run-glob matcher compiled once per request (no process-wide regex cache)."""
    if pat == "*":
        return lambda name: True
    return re.compile(fnmatch.translate(pat)).match
