"""Ingest: probe frames in, run state and store rows out, acks after each commit.

Single-threaded by design (a writer thread starves under the GIL): the server
loop hands every received frame to :meth:`Ingest.handle`, and calls
:meth:`Ingest.commit` at least every 100 ms; acks for the sessions touched
since the last commit are returned by that commit, so a probe only forgets a
record once it is in the store.
"""

from __future__ import annotations

import logging
import time
from collections import Counter
from typing import Any

from grokwatch import wire
from grokwatch.daemon.alert import Alert
from grokwatch.daemon.detectors import RunDetector
from grokwatch.daemon.fastwire import FastDecoder
from grokwatch.daemon.runstate import RunState, Session
from grokwatch.daemon.store import KIND_CODES, Store

log = logging.getLogger("grokwatch.daemon")

SILENCE_KINDS = ("stalled", "lost")
LOG_REJECTS_PER_REASON = 5  # log the first few rejects of each reason, then count only


class Ingest:
    """All runs' state, fed frame by frame; the only writer of the store."""

    def __init__(self, store: Store, *, lost_after: float = 60.0, hole_timeout: float = 60.0,
                 max_frame: int = wire.DEFAULT_MAX_FRAME) -> None:
        self.store = store
        self.lost_after = lost_after
        self.hole_timeout = hole_timeout
        self.max_frame = max_frame
        self.decoder = FastDecoder(max_frame)
        self.runs: dict[str, RunState] = {}
        self.rejects: Counter[str] = Counter()
        self.frames = 0
        self.records = 0
        self.duplicates = 0
        self.detector_errors = 0  # exceptions from detectors (logged; records still stored)
        self.bytes = 0
        self.alerts: list[Alert] = []  # new alerts for the server to store, publish, hook
        self._chunks: dict[tuple[int, int], list] = {}  # (run_id, sid) -> records to store
        self._n_pending = 0
        self._frames: list[tuple] = []  # frames whose every record is new: stored as received
        self._dirty_runs: set[str] = set()  # runs whose info must be written
        self._touched: dict[tuple[bytes, str, int], None] = {}  # (peer, run, sid) to ack
        self._peer_run: dict[bytes, str] = {}
        self._first_pending = 0.0
        # Run summaries are rewritten at most this often (sessions, which dedup depends
        # on, go with every batch): 1,000 runs x 20 commits/s would cost a core.
        self.info_interval = 1.0
        self._last_info = 0.0

    # ------------------------------------------------------------ restore

    def restore(self) -> None:
        """Rebuild every stored run: info, sessions, rings, latest arrays and detector.

        The detector sees the stored scalars again; the alerts it returns are
        discarded (they are in the store already).
        """
        infos = self.store.load_runs()
        sessions = self.store.load_sessions()
        now = time.time()
        for name, info in infos.items():
            rs = RunState(name, info["id"])
            for k in rs.info:
                if k in info:
                    rs.info[k] = info[k]
            rs.counters.update({k: v for k, v in (info.get("counters") or {}).items()
                                if k in rs.counters})
            rs.last = dict(info.get("last") or {})
            if rs.info["state"] == "lost":
                rs.info["state"] = "live"  # the silence clock restarts with the daemon
            self.runs[name] = rs
            rs.detector = self._detector(rs)
            for _sid, _seq, kind, step, t, data in self.store.iter_records(name):
                if kind == "scalars":
                    rs.add_scalars(step, data)
                    self._det(rs, "on_scalars", step, t, data)
                elif kind == "hello":
                    rs.detector = self._detector(rs, data)  # a new session starts afresh
                elif kind in ("spectrum", "points"):
                    rs.set_array(kind, data["name"], step, data["arr"])
                elif kind == "bye":
                    self._det(rs, "on_bye", step or rs.info["step"], t)
            rs.phase = rs.detector.phase
            rs.onset_step = rs.detector.onset_step
            rs.take_update()  # nothing restored is "new"
            rs.last_heard = now
        for (rid, sid), s in sessions.items():
            for rs in self.runs.values():
                if rs.run_id == rid:
                    rs.sessions[sid] = Session(hi=s["hi"], holes=s["holes"],
                                               hole_t=[now] * len(s["holes"]), gaps=s["gaps"],
                                               dropped=s["dropped"], errors=s["errors"],
                                               acked=0)
                    break

    def _detector(self, rs: RunState, hello: dict | None = None) -> RunDetector:
        modulus = (hello or {}).get("modulus", rs.info.get("modulus"))
        config = (hello or {}).get("config", rs.info.get("config"))
        return RunDetector(rs.name, modulus=modulus, config=config, lost_after=self.lost_after)

    # ------------------------------------------------------------ frames

    def reject(self, reason: str, detail: str, peer: bytes | None = None) -> None:
        """Count a refused frame (by reason, and against the peer's run if known)."""
        self.rejects[reason] += 1
        run = self._peer_run.get(peer) if peer is not None else None
        if run is not None and run in self.runs:
            rs = self.runs[run]
            rs.counters["rejected"] += 1
            rs.dirty = True  # clients see the counter move
            self._dirty_runs.add(run)
        if self.rejects[reason] <= LOG_REJECTS_PER_REASON:
            log.warning("rejected frame (%s): %s", reason, detail[:200])

    def handle(self, peer: bytes, data: bytes, now: float | None = None) -> None:
        """Decode one frame from ``peer`` and apply it; refusals are counted, never raised."""
        now = time.time() if now is None else now
        self.bytes += len(data)
        try:
            frame = self.decoder.decode_frame(data)
        except wire.WireError as e:
            self.reject(e.reason, e.detail, peer)
            return
        self.frames += 1
        self._peer_run[peer] = frame.run
        rs = self.runs.get(frame.run)
        if rs is None:
            rs = self.runs[frame.run] = RunState(frame.run, self.store.run_id(frame.run))
            rs.detector = self._detector(rs)
        rs.counters["frames"] += 1
        sess = rs.sessions.get(frame.sid)
        if sess is None:
            sess = rs.sessions[frame.sid] = Session()
        alerts = self.alerts
        det = rs.detector
        if rs.silenced:
            rs.silenced = False
            last = frame.recs[-1] if frame.recs else None
            alerts += self._det(rs, "on_resume", rs.info["step"], last.t if last else now)
        if rs.info["state"] == "lost":
            rs.info["state"] = "live"
        rs.last_heard = now
        resend = bool(frame.recs) and frame.recs[0].seq <= sess.hi
        gaps0 = sess.gaps
        rid = rs.run_id
        sid = frame.sid
        rows = self._chunks.get((rid, sid))
        if rows is None:
            rows = self._chunks[(rid, sid)] = []
        start_len = len(rows)
        new = 0
        dups = 0
        for rec in frame.recs:
            if not sess.accept(rec.seq, now):
                dups += 1
                continue
            new += 1
            kind = rec.kind
            if kind == "scalars":
                vals = rec.vals
                rows.append((rec.seq, 1, rec.step, rec.t, vals))
                rs.add_scalars(rec.step, vals)
                try:
                    out = det.on_scalars(rec.step, rec.t, vals)
                except Exception as e:  # a detector bug must not cost a record
                    out = self._detector_failed(rs, "on_scalars", e)
                if out:
                    alerts += self._label(rs, out)
            elif kind == "hello":
                h = rec.hello
                rows.append((rec.seq, 0, None, rec.t, h))
                rs.info.update(host=h["host"], pid=h["pid"], config=h["config"],
                               modulus=h["modulus"], start=h["start"], sid=sid, step=0)
                rs.info["state"] = "live"
                det = rs.detector = self._detector(rs, h)
            elif kind in ("spectrum", "points"):
                packed = wire.pack_array(rec.arr)
                rows.append((rec.seq, KIND_CODES[kind], rec.step, rec.t,
                             {"name": rec.name, "arr": packed}))
                rs.set_array(kind, rec.name, rec.step, packed)
            else:  # bye
                rows.append((rec.seq, 4, None, rec.t, None))
                rs.info["state"] = "finished"
                alerts += self._det(rs, "on_bye", rs.info["step"], rec.t)
            rs.info["last_t"] = rec.t
        if new:
            if not dups:  # all new: keep the frame's own bytes, skip re-encoding
                del rows[start_len:]
                recs = frame.recs
                self._frames.append((rid, sid, recs[0].seq, recs[-1].seq, new,
                                     min(r.t for r in recs), data))
            if rs.info["sid"] is None:
                rs.info["sid"] = sid
            if not self._first_pending:
                self._first_pending = time.monotonic()
        # Seqs that can no longer arrive become counted gaps (see runstate).
        seqs = [r.seq for r in frame.recs]
        sess.close_between(seqs)
        if resend:
            sess.close_below(seqs[0])
        dropped_inc = frame.dropped - sess.dropped if frame.dropped > sess.dropped else 0
        if dropped_inc:
            sess.close_oldest(dropped_inc)
            sess.dropped = frame.dropped
            rs.counters["dropped"] += dropped_inc
        if frame.errors > sess.errors:
            rs.counters["errors"] += frame.errors - sess.errors
            sess.errors = frame.errors
        gaps_inc = sess.gaps - gaps0
        if gaps_inc:
            rs.counters["gaps"] += gaps_inc
        if gaps_inc or dropped_inc:
            t = frame.recs[-1].t if frame.recs else now
            alerts += self._det(rs, "on_drop", rs.info["step"], t, gaps_inc, dropped_inc)
        if det.phase != rs.phase or det.onset_step != rs.onset_step:
            rs.phase, rs.onset_step = det.phase, det.onset_step
        rs.count_records(new)
        self._n_pending += new
        rs.counters["duplicates"] += dups
        self.records += new
        self.duplicates += dups
        rs.dirty = True
        self._dirty_runs.add(frame.run)
        self._touched[(peer, frame.run, sid)] = None

    def _det(self, rs: RunState, method: str, *args: Any) -> list[Alert]:
        """Call one detector method; its alerts labelled, its exceptions logged and counted."""
        try:
            return self._label(rs, getattr(rs.detector, method)(*args))
        except Exception as e:
            return self._detector_failed(rs, method, e)

    def _detector_failed(self, rs: RunState, method: str, e: Exception) -> list[Alert]:
        self.detector_errors += 1
        if self.detector_errors <= LOG_REJECTS_PER_REASON:
            log.error("detector %s failed on run %r (record kept): %s: %s", method, rs.name,
                      type(e).__name__, e)
        return []

    def _label(self, rs: RunState, alerts: list[Alert]) -> list[Alert]:
        for a in alerts:
            if not a.labels:
                a.labels = dict(rs.info.get("config") or {})
        return alerts

    # ------------------------------------------------------------ timers

    def tick(self, now: float | None = None) -> None:
        """About once a second: silence checks, stale holes, lost runs."""
        now = time.time() if now is None else now
        for rs in self.runs.values():
            det = rs.detector
            gaps = 0
            for sess in rs.sessions.values():
                if sess.holes:
                    g0 = sess.gaps
                    sess.close_stale(now, self.hole_timeout)
                    gaps += sess.gaps - g0
            if gaps:
                rs.counters["gaps"] += gaps
                self.alerts += self._det(rs, "on_drop", rs.info["step"], now, gaps, 0)
                rs.dirty = True
                self._dirty_runs.add(rs.name)
            if rs.info["state"] == "finished":
                continue
            out = self._det(rs, "on_silence", now, rs.last_heard)
            if out:
                self.alerts += out
                if any(a.kind in SILENCE_KINDS and a.status == "firing" for a in out):
                    rs.silenced = True
            if rs.info["state"] == "live" and now - rs.last_heard > self.lost_after:
                rs.info["state"] = "lost"
                rs.dirty = True
                self._dirty_runs.add(rs.name)
            if det.phase != rs.phase or det.onset_step != rs.onset_step:
                rs.phase, rs.onset_step = det.phase, det.onset_step
                rs.dirty = True

    def pending_rows(self) -> int:
        """Records accepted but not yet committed."""
        return self._n_pending

    def pending_age(self) -> float:
        """Seconds since the oldest uncommitted change (0 when nothing waits)."""
        return time.monotonic() - self._first_pending if self._first_pending else 0.0

    def has_work(self) -> bool:
        """True when a commit would write or ack anything."""
        return bool(self._n_pending or self._touched or (
            self._dirty_runs and time.monotonic() - self._last_info >= self.info_interval))

    def commit(self, alerts: list[dict] | None = None,
               hook_events: list[dict] | None = None) -> list[tuple[bytes, bytes]]:
        """Write the batch in one transaction; return ``(peer, ack)`` pairs to send now."""
        runs: dict[str, dict] = {}
        now = time.monotonic()
        if now - self._last_info >= self.info_interval:
            runs = {name: self.runs[name].persist_info() for name in self._dirty_runs
                    if name in self.runs}
            self._dirty_runs.clear()
            self._last_info = now
        sessions = []
        for (_peer, run, sid) in self._touched:
            rs = self.runs[run]
            s = rs.sessions[sid]
            sessions.append((rs.run_id, sid, s.hi, s.gaps, s.dropped, s.errors, s.holes))
        if self._n_pending or runs or sessions or alerts or hook_events:
            self.store.write_batch(self._chunks, runs, sessions, alerts or [], hook_events or [],
                                   self._frames)
        acks = []
        for (peer, run, sid) in self._touched:
            s = self.runs[run].sessions[sid]
            mark = s.watermark()
            if mark > 0:
                s.acked = mark
                acks.append((peer, wire.encode_ack(run, sid, mark)))
        self._chunks = {}
        self._frames = []
        self._n_pending = 0
        self._touched = {}
        self._first_pending = 0.0
        return acks

    def status(self) -> dict[str, Any]:
        """Totals for the ``status`` request."""
        missing = sum(s.missing() for rs in self.runs.values() for s in rs.sessions.values())
        return {"frames": self.frames, "records": self.records, "duplicates": self.duplicates,
                "detector_errors": self.detector_errors,
                "bytes": self.bytes, "rejected": dict(self.rejects),
                "rejected_total": sum(self.rejects.values()), "runs": len(self.runs),
                "live_runs": sum(rs.info["state"] == "live" for rs in self.runs.values()),
                "gaps": sum(rs.counters["gaps"] for rs in self.runs.values()),
                "dropped": sum(rs.counters["dropped"] for rs in self.runs.values()),
                "missing": missing, "pending_rows": self._n_pending,
                "series_bytes": sum(rs.memory_bytes() for rs in self.runs.values())}
