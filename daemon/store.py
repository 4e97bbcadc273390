"""The daemon's SQLite store: one writer, WAL, batched transactions, versioned schema.

Layout (schema version 1, ``PRAGMA application_id`` = ``'grkw'``):

``runs``         id, name, info (msgpack map: host, pid, config, modulus, start,
                 state, step, last_t, sid, counters)
``sessions``     run_id, sid, hi (highest seq stored), gaps, dropped, errors,
                 holes (msgpack list of open [lo, hi] seq ranges)
``chunks``       id, run_id, sid, seq_lo, seq_hi, n, t0, fmt, data: records of one
                 session. ``fmt`` 1: ``data`` is a probe frame exactly as
                 received (every record in it was new: the common case, and
                 no re-encoding at all); ``fmt`` 0: a msgpack list of ``[seq,
                 kind_code, step, t, payload]`` sorted by seq (payload: scalars
                 -> {name: value}; spectrum/points -> {"name", "arr" (packed
                 array)}; hello -> the hello map; bye -> nil), for what was
                 left of frames that also carried duplicates. A few rows per
                 batch instead of one per record: rows are what SQLite charges
                 for. Dedup happens before (per-session seq bookkeeping, saved
                 in ``sessions`` in the same transaction), so a seq is stored
                 in at most one chunk.
``alerts``       id, run, kind, t, data (msgpack Alert map)
``hook_events``  id, run, t, data (msgpack HookEvent map)

Readers (``grokwatch runs/export --db``, ``grokwatch replay``) open it read-only
with :func:`open_store` and use the ``iter_*``/``load_*`` methods.
"""

from __future__ import annotations

import fnmatch
import heapq
import os
import sqlite3
from collections.abc import Iterable, Iterator
from pathlib import Path
from typing import Any

import msgpack

from grokwatch.wire.frames import BYE, CODE_KINDS, HELLO, KIND_CODES, SCALARS, decode_frame

SCHEMA_VERSION = 1
APPLICATION_ID = 0x67726B77  # 'grkw'

_SCHEMA = """
CREATE TABLE IF NOT EXISTS runs (
    id INTEGER PRIMARY KEY, name TEXT NOT NULL UNIQUE, info BLOB NOT NULL);
CREATE TABLE IF NOT EXISTS sessions (
    run_id INTEGER NOT NULL, sid INTEGER NOT NULL, hi INTEGER NOT NULL,
    gaps INTEGER NOT NULL, dropped INTEGER NOT NULL, errors INTEGER NOT NULL,
    holes BLOB, PRIMARY KEY (run_id, sid)) WITHOUT ROWID;
CREATE TABLE IF NOT EXISTS chunks (
    id INTEGER PRIMARY KEY, run_id INTEGER NOT NULL, sid INTEGER NOT NULL,
    seq_lo INTEGER NOT NULL, seq_hi INTEGER NOT NULL, n INTEGER NOT NULL,
    t0 REAL NOT NULL, fmt INTEGER NOT NULL, data BLOB NOT NULL);
CREATE INDEX IF NOT EXISTS chunks_session ON chunks (run_id, sid, seq_lo);
CREATE TABLE IF NOT EXISTS alerts (
    id INTEGER PRIMARY KEY, run TEXT NOT NULL, kind TEXT NOT NULL, t REAL NOT NULL,
    data BLOB NOT NULL);
CREATE TABLE IF NOT EXISTS hook_events (
    id INTEGER PRIMARY KEY, run TEXT, t REAL NOT NULL, data BLOB NOT NULL);
"""


# ``--durability``: what a commit (and so an ack) promises. normal: survives a crash of
# the daemon (kill -9), may lose the last commits on power loss; full: survives power loss.
DURABILITY = {"normal": "NORMAL", "full": "FULL"}


WRITER_CHECKPOINT_PAGES = 16_384  # 64 MiB of 4 KiB pages


class Checkpointer:
    """WAL checkpoints on a thread of their own, with their own connection.

    A checkpoint copies what the WAL holds into the database file; done by the
    writer at commit (SQLite's default, every 4 MiB) it held the ingest loop for as
    long as the copy took. sqlite3 releases the GIL while it works, so here it runs
    beside the loop. PASSIVE: it never waits for readers or the writer.
    """

    def __init__(self, path: Path, interval: float = 1.0) -> None:
        import threading

        self.path = Path(path)
        self.interval = interval
        self.checkpoints = 0
        self.errors = 0
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._main, name="grokwatch-checkpoint",
                                        daemon=True)
        self._thread.start()

    def _main(self) -> None:
        db = None
        while not self._stop.wait(self.interval):
            try:
                if db is None:
                    db = sqlite3.connect(str(self.path), isolation_level=None,
                                         check_same_thread=False)
                db.execute("PRAGMA wal_checkpoint(PASSIVE)").fetchone()
                self.checkpoints += 1
            except sqlite3.Error:
                self.errors += 1  # a full disk, a busy file: the next round tries again
        if db is not None:
            db.close()

    def close(self) -> None:
        self._stop.set()
        self._thread.join(5.0)


class StoreError(RuntimeError):
    """The store cannot be used; ``str(e)`` is one line for the user."""


def pack(obj: Any) -> bytes:
    """msgpack with bin types (the store's blob encoding)."""
    return msgpack.packb(obj, use_bin_type=True)


def unpack(b: bytes | None) -> Any:
    """Inverse of :func:`pack`; ``None`` stays ``None``."""
    if b is None:
        return None
    return msgpack.unpackb(b, raw=False, strict_map_key=False)


def _create_private(path: Path) -> None:
    """Create an empty file with mode 0600 (the directory 0700) if none exists."""
    path.parent.mkdir(parents=True, exist_ok=True, mode=0o700)
    try:
        fd = os.open(path, os.O_CREAT | os.O_EXCL | os.O_WRONLY, 0o600)
    except FileExistsError:
        return
    os.close(fd)


class Store:
    """One SQLite connection to a grokwatch store (the daemon's is the only writer)."""

    def __init__(self, path: Path, *, readonly: bool = False,
                 durability: str = "normal") -> None:
        if durability not in DURABILITY:
            raise StoreError(f"durability must be one of {', '.join(DURABILITY)}")
        self.path = Path(path)
        self.readonly = readonly
        self.durability = durability
        self.rows_written = 0
        self.commits = 0
        self._run_ids: dict[str, int] = {}
        # Run rows are created inside the next batch (never a write outside one): a
        # full disk then fails that batch, not the frame that named a new run.
        self._new_runs: dict[str, int] = {}
        self._next_id = 1
        self._has_owner = False
        self._all_loaded = False
        try:
            self._open()
        except sqlite3.Error as e:
            raise StoreError(f"{self.path}: not a usable grokwatch store ({e})") from None

    def _open(self) -> None:
        if self.readonly:
            if not self.path.exists():
                raise StoreError(f"{self.path}: no such store")
            uri = f"file:{self.path}?mode=ro"
            self.db = sqlite3.connect(uri, uri=True, isolation_level=None,
                                      check_same_thread=False)
        else:
            _create_private(self.path)
            self.db = sqlite3.connect(str(self.path), isolation_level=None,
                                      check_same_thread=False)
        db = self.db
        app_id = db.execute("PRAGMA application_id").fetchone()[0]
        version = db.execute("PRAGMA user_version").fetchone()[0]
        tables = {r[0] for r in db.execute("SELECT name FROM sqlite_master WHERE type='table'")}
        if app_id != APPLICATION_ID:
            if app_id != 0 or tables:
                raise StoreError(f"{self.path}: not a grokwatch store (another program's "
                                 "SQLite file); pass another --db")
            if self.readonly:
                raise StoreError(f"{self.path}: empty, not a grokwatch store yet")
        elif version > SCHEMA_VERSION:
            raise StoreError(f"{self.path}: store schema v{version} is newer than this "
                             f"grokwatch (v{SCHEMA_VERSION}); upgrade grokwatch")
        if self.readonly:
            self._has_owner = "owner" in {r[1] for r in db.execute("PRAGMA table_info(sessions)")}
            return
        if db.execute("PRAGMA journal_mode=WAL").fetchone()[0].lower() != "wal":
            raise StoreError(f"{self.path}: cannot use WAL mode here (network filesystem?)")
        db.execute(f"PRAGMA synchronous={DURABILITY[self.durability]}")
        # Checkpoints (copying the WAL into the database) are the daemon's Checkpointer
        # thread's job; the writer only steps in past 64 MiB of WAL (a safety net).
        db.execute(f"PRAGMA wal_autocheckpoint={WRITER_CHECKPOINT_PAGES}")
        db.execute("BEGIN IMMEDIATE")
        for stmt in _SCHEMA.split(";"):
            if stmt.strip():
                db.execute(stmt)
        cols = {r[1] for r in db.execute("PRAGMA table_info(sessions)")}
        if "owner" not in cols:  # the peer that opened the session (a later addition)
            db.execute("ALTER TABLE sessions ADD COLUMN owner BLOB")
        db.execute(f"PRAGMA application_id={APPLICATION_ID}")
        db.execute(f"PRAGMA user_version={SCHEMA_VERSION}")
        db.execute("COMMIT")
        os.chmod(self.path, 0o600)
        self._has_owner = True
        self._next_id = (db.execute("SELECT MAX(id) FROM runs").fetchone()[0] or 0) + 1

    def close(self) -> None:
        """Close the connection (commits nothing by itself)."""
        self.db.close()

    # ---------------------------------------------------------------- writes

    def run_id(self, name: str) -> int:
        """The integer id of a run; a new run's row is written with the next batch.

        Nothing is written here, so naming a new run can never fail on a full disk.
        """
        rid = self._run_ids.get(name)
        if rid is None:
            # After load_runs (the daemon's restore) every stored name is known: no query.
            row = None if self._all_loaded else self.db.execute(
                "SELECT id FROM runs WHERE name=?", (name,)).fetchone()
            if row is None:
                rid = self._next_id
                self._next_id += 1
                self._new_runs[name] = rid
            else:
                rid = int(row[0])
            self._run_ids[name] = rid
        return rid

    def write_batch(self, chunks: dict[tuple[int, int], list], runs: dict[str, dict],
                    sessions: list[tuple], alerts: list[dict],
                    hook_events: list[dict], frames: list[tuple] | None = None) -> None:
        """Write one batch in one transaction.

        ``frames``: (run_id, sid, seq_lo, seq_hi, n, t0, raw_frame_bytes) of frames
        whose every record is new, stored as received;
        ``chunks``: (run_id, sid) -> list of ``[seq, kind_code, step, t, payload]``;
        ``runs``: name -> info map; ``sessions``: (run_id, sid, hi, gaps,
        dropped, errors, holes) rows; alerts and hook events as wire maps.
        """
        db = self.db
        db.execute("BEGIN")
        try:
            if self._new_runs:
                db.executemany("INSERT OR IGNORE INTO runs(id, name, info) VALUES (?, ?, ?)",
                               [(rid, name, pack({})) for name, rid in self._new_runs.items()])
            rows = []
            n = 0
            for (rid, sid), recs in chunks.items():
                if recs:
                    recs.sort(key=_seq_of)  # a resend filling a hole may come after newer seqs
                    rows.append((rid, sid, recs[0][0], recs[-1][0], len(recs),
                                 min(r[3] for r in recs), 0, pack(recs)))
                    n += len(recs)
            for f in frames or ():
                rows.append((*f[:6], 1, f[6]))
                n += f[4]
            if rows:
                db.executemany("INSERT INTO chunks(run_id, sid, seq_lo, seq_hi, n, t0, fmt, "
                               "data) VALUES (?,?,?,?,?,?,?,?)", rows)
            if runs:
                db.executemany("UPDATE runs SET info=? WHERE name=?",
                               [(pack(info), name) for name, info in runs.items()])
            if sessions:
                db.executemany("INSERT OR REPLACE INTO sessions(run_id, sid, hi, gaps, dropped, "
                               "errors, holes, owner) VALUES (?,?,?,?,?,?,?,?)",
                               [s[:6] + (pack(s[6]), s[7] if len(s) > 7 else None)
                                for s in sessions])
            if alerts:
                db.executemany("INSERT INTO alerts(run, kind, t, data) VALUES (?,?,?,?)",
                               [(a["run"], a["kind"], a["t"], pack(a)) for a in alerts])
            if hook_events:
                db.executemany("INSERT INTO hook_events(run, t, data) VALUES (?,?,?)",
                               [(h.get("run"), float(h.get("t", 0.0)), pack(h))
                                for h in hook_events])
            db.execute("COMMIT")
        except BaseException:
            # A failed COMMIT (disk full, I/O error) may already have ended the
            # transaction: a blind ROLLBACK would then raise and hide the real error.
            if db.in_transaction:
                try:
                    db.execute("ROLLBACK")
                except sqlite3.Error:
                    pass
            raise
        self._new_runs.clear()
        self.rows_written += n
        self.commits += 1

    # ---------------------------------------------------------------- reads

    def load_runs(self) -> dict[str, dict]:
        """name -> info map (with ``id``) of every stored run."""
        out = {}
        for rid, name, info in self.db.execute("SELECT id, name, info FROM runs ORDER BY id"):
            d = unpack(info) or {}
            d["id"] = rid
            out[name] = d
            self._run_ids[name] = rid
        self._all_loaded = not self.readonly  # a writer's names all pass through run_id now
        return out

    def load_sessions(self) -> dict[tuple[int, int], dict]:
        """(run_id, sid) -> {hi, gaps, dropped, errors, holes, owner}."""
        out = {}
        owner = "owner" if self._has_owner else "NULL"
        for rid, sid, hi, gaps, dropped, errors, holes, who in self.db.execute(
                f"SELECT run_id, sid, hi, gaps, dropped, errors, holes, {owner} FROM sessions"):
            out[(rid, sid)] = {"hi": hi, "gaps": gaps, "dropped": dropped, "errors": errors,
                               "holes": [list(h) for h in (unpack(holes) or [])],
                               "owner": who}
        return out

    def run_names(self) -> list[str]:
        """Names of all stored runs, oldest first."""
        return [r[0] for r in self.db.execute("SELECT name FROM runs ORDER BY id")]

    def _rid(self, run: str) -> int | None:
        row = self.db.execute("SELECT id FROM runs WHERE name=?", (run,)).fetchone()
        return None if row is None else int(row[0])

    def iter_records(self, run: str, kinds: Iterable[str] | None = None
                     ) -> Iterator[tuple[int, int, str, int | None, float, Any]]:
        """Yield ``(sid, seq, kind, step, t, data)`` of one run in arrival order.

        Sessions come in the order they started (first record time), each in seq order.
        """
        rid = self._rid(run)
        if rid is None:
            return
        codes = None if kinds is None else {KIND_CODES[k] for k in kinds}
        sids = [r[0] for r in self.db.execute(
            "SELECT sid, MIN(t0) FROM chunks WHERE run_id=? GROUP BY sid ORDER BY 2, 1", (rid,))]
        for sid in sids:
            yield from _session_records(sid, self.db.execute(
                "SELECT seq_lo, fmt, data FROM chunks WHERE run_id=? AND sid=? "
                "ORDER BY seq_lo", (rid, sid)), codes)

    def iter_all_records(self) -> Iterator[tuple[int, list[tuple]]]:
        """Every run's records in one scan: ``(run_id, [(sid, seq, kind, step, t, data)])``.

        Runs by id; within a run, as :meth:`iter_records` (sessions by start, each in seq
        order). One query for the whole store, so a restart is linear in its size.
        """
        cur = self.db.execute("SELECT run_id, sid, seq_lo, t0, fmt, data FROM chunks "
                              "ORDER BY run_id, sid, seq_lo")
        run: int | None = None
        sessions: dict[int, list] = {}
        starts: dict[int, float] = {}

        def flush() -> tuple[int, list[tuple]]:
            out: list[tuple] = []
            for sid in sorted(sessions, key=lambda k: (starts[k], k)):
                out.extend(_session_records(sid, sessions[sid], None))
            return run, out  # type: ignore[return-value]

        for rid, sid, lo, t0, fmt, data in cur:
            if rid != run:
                if run is not None:
                    yield flush()
                run, sessions, starts = rid, {}, {}
            rows = sessions.get(sid)
            if rows is None:
                rows = sessions[sid] = []
                starts[sid] = t0
            elif t0 < starts[sid]:
                starts[sid] = t0
            rows.append((lo, fmt, data))
        if run is not None:
            yield flush()

    def iter_scalars(self, run: str) -> Iterator[tuple[int, float, dict[str, float]]]:
        """Yield ``(step, t, vals)`` for each stored scalars record of one run."""
        for _sid, _seq, _k, step, t, vals in self.iter_records(run, (SCALARS,)):
            yield step, t, vals

    def export_rows(self, run: str, metric: str | None = None) -> Iterator[dict]:
        """Yield ``{step, t, name, value}`` rows (one per scalar) of one run."""
        for step, t, vals in self.iter_scalars(run):
            for name, value in vals.items():
                if metric is None or name == metric:
                    yield {"step": step, "t": t, "name": name, "value": value}

    def load_alerts(self, run: str = "*", kind: str | None = None,
                    limit: int = 10_000) -> list[dict]:
        """Stored alerts matching a run glob and kind, oldest first (the newest ``limit``)."""
        q = "SELECT run, data FROM alerts"
        args: list[Any] = []
        if kind:
            q += " WHERE kind=?"
            args.append(kind)
        q += " ORDER BY id DESC"
        out = []
        for name, data in self.db.execute(q, args):
            if fnmatch.fnmatchcase(name, run):
                out.append(unpack(data))
                if len(out) >= limit:
                    break
        out.reverse()
        return out

    def load_hook_events(self, run: str = "*", limit: int = 10_000) -> list[dict]:
        """Stored hook events for runs matching a glob, oldest first (the newest ``limit``)."""
        out = []
        for name, data in self.db.execute("SELECT run, data FROM hook_events ORDER BY id DESC"):
            if fnmatch.fnmatchcase(name or "", run):
                out.append(unpack(data))
                if len(out) >= limit:
                    break
        out.reverse()
        return out


def _session_records(sid: int, chunks: Iterable[tuple[int, int, bytes]],
                     codes: set[int] | None) -> Iterator[tuple]:
    """One session's records in seq order from its chunks ``(seq_lo, fmt, data)`` by seq_lo."""
    # Chunks come by seq_lo, and every later chunk starts above that: whatever in
    # the heap is below the next chunk's seq_lo can go out in order now.
    heap: list = []
    n = 0
    for lo, fmt, data in chunks:
        while heap and heap[0][0] < lo:
            yield _out(sid, heapq.heappop(heap)[2])
        for rec in (_frame_records(data) if fmt == 1 else unpack(data)):
            if codes is None or rec[1] in codes:
                n += 1
                heapq.heappush(heap, (rec[0], n, rec))  # n: never compare payloads
    while heap:
        yield _out(sid, heapq.heappop(heap)[2])


def _seq_of(rec: list) -> int:
    return rec[0]


def _frame_records(data: bytes) -> list[tuple]:
    """A stored raw frame as ``(seq, kind_code, step, t, payload)`` tuples.

    Frames were checked by the wire when they arrived: read back with plain msgpack
    (restart time is mostly this); anything unexpected goes through the wire's checks.
    """
    try:
        return _frame_records_trusted(data)
    except Exception:
        return _frame_records_checked(data)


_SC, _HE, _BY = KIND_CODES[SCALARS], KIND_CODES[HELLO], KIND_CODES[BYE]


def _frame_records_trusted(data: bytes) -> list[tuple]:
    out: list[tuple] = []
    for r in msgpack.unpackb(data, raw=False)["recs"]:
        k = r["k"]
        if k == SCALARS:
            vals = r["vals"]
            if any(type(v) is not float for v in vals.values()):
                vals = {n: float(v) for n, v in vals.items()}
            out.append((r["seq"], _SC, r["step"], float(r["t"]), vals))
        elif k == HELLO:
            out.append((r["seq"], _HE, None, float(r["t"]), {
                "host": r["host"], "pid": r["pid"], "config": r.get("config", {}),
                "start": float(r["start"]), "modulus": r.get("modulus")}))
        elif k == BYE:
            out.append((r["seq"], _BY, None, float(r["t"]), None))
        else:
            out.append((r["seq"], KIND_CODES[k], r["step"], float(r["t"]),
                        {"name": r["name"], "arr": r["arr"]}))
    return out


def _frame_records_checked(data: bytes) -> list[tuple]:
    out: list[tuple] = []
    for r in decode_frame(data, max_size=len(data)).recs:
        if r.kind == SCALARS:
            out.append((r.seq, KIND_CODES[SCALARS], r.step, r.t, r.vals))
        elif r.kind == HELLO:
            out.append((r.seq, KIND_CODES[HELLO], None, r.t, r.hello))
        elif r.kind == BYE:
            out.append((r.seq, KIND_CODES[BYE], None, r.t, None))
        else:
            out.append((r.seq, KIND_CODES[r.kind], r.step, r.t,
                        {"name": r.name, "arr": r.packed}))
    return out


def _out(sid: int, rec: list) -> tuple[int, int, str, int | None, float, Any]:
    seq, code, step, t, payload = rec
    return sid, seq, CODE_KINDS[code], step, t, payload


def open_store(path: Path | str, *, readonly: bool = False,
               durability: str = "normal") -> Store:
    """Open (or, writable, create) a store; raise :class:`StoreError` with one line."""
    return Store(Path(path), readonly=readonly, durability=durability)
