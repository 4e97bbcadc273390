"""Ingest: probe frames in, run state and store rows out, acks after each commit.

Single-threaded by design (a writer thread starves under the GIL): the server
loop hands every received frame to :meth:`Ingest.handle`, and calls
:meth:`Ingest.commit` at least every 100 ms; acks for the sessions touched
since the last commit are returned by that commit, so a probe only forgets a
record once it is in the store.
"""

from __future__ import annotations

import gc
import logging
import time
from collections import Counter
from dataclasses import dataclass
from typing import Any

from grokwatch import wire
from grokwatch.daemon.alert import Alert
from grokwatch.daemon.detectors import RunDetector
from grokwatch.daemon.runstate import RunState, Session
from grokwatch.daemon.store import Store
from grokwatch.wire.frames import BYE, HELLO, KIND_CODES, POINTS, SCALARS, SPECTRUM

log = logging.getLogger("grokwatch.daemon")

SILENCE_KINDS = ("stalled", "lost")
LOG_REJECTS_PER_REASON = 5  # log the first few rejects of each reason, then count only

# Ranges every decoded frame must fall in (refusals: "time", "step", "seq_jump", "counter").
MAX_FUTURE_S = 86_400.0  # a record's time may be at most a day ahead of the daemon's clock
MAX_STEP = 1 << 53  # steps stay exact as floats (plots, detectors)
MAX_SEQ_JUMP = 1 << 30  # one frame may skip at most this many seqs past the session's highest
MAX_COUNTER = 1 << 53
PEER_RUN_MAX = 100_000  # peers remembered (for attributing refusals, runs per peer)
INFO_BATCH = 1_000  # run summaries written per commit at most


@dataclass
class Limits:
    """What one daemon holds at most; each refusal is counted by its reason's name."""

    runs: int = 20_000  # runs in total (restored runs count too)
    runs_per_peer: int = 1_000  # new runs opened by one connection
    new_runs_per_s: float = 200.0  # new runs opened per second over all peers ...
    new_runs_burst: int = 1_000  # ... after a burst of this many (a sweep starting)
    sessions_per_run: int = 256  # probe sessions (restarts, ranks) one run may have
    metrics_per_run: int = 1_024  # scalar names per run
    metrics_total: int = 100_000  # scalar names over all runs (each ring up to 12 KiB)
    arrays_per_run: int = 64  # spectrum + points names per run
    array_bytes_per_run: int = 16 << 20  # latest arrays held per run
    array_bytes_total: int = 256 << 20  # latest arrays held over all runs


class Ingest:
    """All runs' state, fed frame by frame; the only writer of the store."""

    def __init__(self, store: Store, *, lost_after: float = 60.0, hole_timeout: float = 60.0,
                 max_frame: int = wire.DEFAULT_MAX_FRAME, limits: Limits | None = None) -> None:
        self.store = store
        self.limits = limits or Limits()
        self.quarantined = 0  # decoded frames refused (ranges, owner, bounds, our bugs)
        self.internal_errors = 0  # frames whose processing raised (quarantined)
        self._owners: dict[tuple[int, int], bytes | None] = {}  # (run_id, sid) -> opener
        self._rid_run: dict[int, RunState] = {}
        self._peer_runs: Counter[bytes] = Counter()
        self._new_tokens = float(self.limits.new_runs_burst)
        self._new_t = time.monotonic()
        self._names: dict[str, set[str]] = {}  # run -> scalar names held
        self._n_names = 0
        self._arrays: dict[str, dict[str, int]] = {}  # run -> "kind:name" -> bytes held
        self._arr_bytes = 0
        # (peer, run, sid) -> (lo, hi) seqs refused since the last commit, sent with its acks
        self._rejected_out: dict[tuple[bytes, str, int], list[tuple[int, int]]] = {}
        self.lost_after = lost_after
        self.hole_timeout = hole_timeout
        self.max_frame = max_frame
        self.max_frame = max_frame
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
        # The cyclic GC would walk every object built so far again and again (restore
        # went superlinear with 100,000 runs): off while restoring; the daemon then
        # freezes what was restored (gc.freeze), so later collections skip it.
        enabled = gc.isenabled()
        gc.disable()
        try:
            self._restore()
        finally:
            if enabled:
                gc.enable()

    def _restore(self) -> None:
        infos = self.store.load_runs()
        sessions = self.store.load_sessions()
        now = time.time()
        by_id = {info["id"]: name for name, info in infos.items()}
        for rid, recs in self.store.iter_all_records():  # one scan of the store
            name = by_id.get(rid)
            if name is not None:
                self._restore_run(name, infos.pop(name), {rid: recs}, now)
        for name, info in infos.items():  # runs with no records yet
            self._restore_run(name, info, {}, now)
        for (rid, sid), s in sessions.items():  # one dict look-up per session: linear
            rs = self._rid_run.get(rid)
            if rs is not None:
                rs.sessions[sid] = Session(hi=s["hi"], holes=s["holes"],
                                           hole_t=[now] * len(s["holes"]), gaps=s["gaps"],
                                           dropped=s["dropped"], errors=s["errors"], acked=0)
                self._owners[(rid, sid)] = s.get("owner")

    def _restore_run(self, name: str, info: dict, records: dict, now: float) -> None:
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
        self._rid_run[rs.run_id] = rs
        recs = records.get(rs.run_id, ())
        # A finished run's detector is not replayed (its phase and onset are in its info;
        # a new session starts a fresh detector with its hello): restart stays cheap.
        replay = rs.info["state"] != "finished"
        if replay and (not recs or recs[0][2] != HELLO):  # a hello makes its own
            rs.detector = self._detector(rs)
        # (a finished run gets its detector when it hears from a probe again: _detector_of)
        hello_sid = None
        for sid, _seq, kind, step, t, data in recs:
            if kind == HELLO:
                if hello_sid is not None and sid != hello_sid:  # a rerun: as when live
                    session = rs.info.get("session")
                    rs.new_session()
                    rs.info["session"] = session  # the stored count is already right
                hello_sid = sid
            if kind == SCALARS:
                self._add_names(name, data)
                rs.add_scalars(step, data)
                if replay:
                    self._det(rs, "on_scalars", step, t, data)
            elif kind == HELLO:
                if replay:
                    rs.detector = self._detector(rs, data)  # a new session starts afresh
            elif kind in (SPECTRUM, POINTS):
                rs.set_array(kind, data["name"], step, data["arr"])
                self._add_array(name, f"{kind}:{data['name']}", len(data["arr"]["b"]))
            elif kind == BYE and replay:
                self._det(rs, "on_bye", step or rs.info["step"], t)
        if replay:
            rs.phase = rs.detector.phase
            rs.onset_step = rs.detector.onset_step
        else:
            rs.phase = info.get("phase", rs.phase)
            rs.onset_step = info.get("onset_step")
        rs.fold()  # nothing restored is "new" (take_update's effect, without building one)
        rs.pend_series = {}
        rs.pend_arrays = set()
        rs.dirty = False
        rs.last_heard = now

    def _detector_of(self, rs: RunState) -> RunDetector:
        if rs.detector is None:
            rs.detector = self._detector(rs)
        return rs.detector

    def _add_names(self, run: str, vals: dict) -> None:
        names = self._names.get(run)
        if names is None:
            names = self._names[run] = set()
        if not names.issuperset(vals):
            n = len(names)
            names.update(vals)
            self._n_names += len(names) - n

    def _add_array(self, run: str, key: str, nbytes: int) -> None:
        arrays = self._arrays.get(run)
        if arrays is None:
            arrays = self._arrays[run] = {}
        self._arr_bytes += nbytes - arrays.get(key, 0)
        arrays[key] = nbytes

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
        """Decode one frame from ``peer`` and apply it; refusals are counted, never raised.

        A decoded frame is checked before anything changes (ranges, session owner,
        bounds); one that fails, or whose processing raises, is *quarantined*: counted by
        reason, logged once, and acked with its seqs marked rejected so the probe drops
        it instead of resending it forever.
        """
        now = time.time() if now is None else now
        self.bytes += len(data)
        try:
            frame = wire.decode_frame(data, max_size=self.max_frame)
        except wire.WireError as e:
            self.reject(e.reason, e.detail, peer)
            return
        self.frames += 1
        if len(self._peer_run) >= PEER_RUN_MAX:
            self._peer_run.clear()
        rs = self.runs.get(frame.run)
        if rs is not None:
            owner = self._owners.get((rs.run_id, frame.sid))
            if owner is not None and owner != peer:
                # Someone else's session: refused, never acked, not charged to the run.
                self.refuse("foreign_session", f"run {frame.run!r}: frame from another peer")
                return
        self._peer_run[peer] = frame.run
        bad = self._check_records(frame, now)
        if bad:
            if len(bad) == len(frame.recs):
                reason, detail = bad[frame.recs[0].seq]
                self._quarantine(peer, frame, now, reason, detail, True)
                return
            good = [r for r in frame.recs if r.seq not in bad]
            frame = wire.Frame(run=frame.run, sid=frame.sid, recs=good, dropped=frame.dropped,
                               errors=frame.errors)
            data = b""  # not the frame as received any more: stored record by record
        why = self._check(peer, frame, rs, now)
        if why is not None:
            self._quarantine(peer, frame, now, *why)
            return
        try:
            if bad:
                self._refuse_records(peer, frame, bad, now)
            self._apply(peer, frame, data, now)
        except Exception as e:  # a bug of ours on this frame: it must not cost the loop
            self.internal_errors += 1
            self._quarantine(peer, frame, now, "internal", f"{type(e).__name__}: {e}", True,
                             exc=e)

    def _check_records(self, frame: wire.Frame, now: float) -> dict[int, tuple[str, str]]:
        """Records out of range: seq -> (reason, detail). The rest of the frame is kept."""
        bad: dict[int, tuple[str, str]] = {}
        t_max = now + MAX_FUTURE_S
        for rec in frame.recs:
            if not 0.0 <= rec.t <= t_max:
                bad[rec.seq] = ("time", f"t={rec.t!r} outside [0, now + {MAX_FUTURE_S:g} s]")
            elif rec.step is not None and rec.step > MAX_STEP:
                bad[rec.seq] = ("step", f"step {rec.step} > {MAX_STEP}")
            elif rec.kind == HELLO and not 0.0 <= rec.hello["start"] <= t_max:
                bad[rec.seq] = ("time", "hello start outside [0, now + 1 day]")
        return bad

    def _refuse_records(self, peer: bytes, frame: wire.Frame, bad: dict[int, tuple[str, str]],
                        now: float) -> None:
        """Some records of a frame are out of range: count them, mark their seqs seen."""
        rs = self.runs.get(frame.run) or self._new_run(peer, frame.run)
        sess = rs.sessions.get(frame.sid)
        if sess is None:
            sess = rs.sessions[frame.sid] = Session()
            self._owners[(rs.run_id, frame.sid)] = peer
        for seq, (reason, detail) in sorted(bad.items()):
            self.rejects[reason] += 1
            if self.rejects[reason] == 1:
                log.warning("record refused (%s) for run %r: %s", reason, frame.run, detail)
            sess.accept(seq, now)
            self._add_rejected((peer, frame.run, frame.sid), seq, seq)
        self.quarantined += 1
        rs.counters["rejected"] += len(bad)

    def _add_rejected(self, key: tuple[bytes, str, int], lo: int, hi: int) -> None:
        out = self._rejected_out.get(key)
        if out is None:
            out = self._rejected_out[key] = []
        if out and out[-1][1] + 1 == lo:
            out[-1] = (out[-1][0], hi)
        else:
            out.append((lo, hi))

    def refuse(self, reason: str, detail: str) -> None:
        """Count a refusal that is no run's doing (logged once per reason)."""
        self.rejects[reason] += 1
        if self.rejects[reason] == 1:
            log.warning("refused frame (%s): %s", reason, detail[:200])

    def _check(self, peer: bytes, frame: wire.Frame, rs: RunState | None, now: float
               ) -> tuple[str, str, bool] | None:
        """Why this frame must be refused: ``(reason, detail, consume)``, or None.

        ``consume``: its seqs are marked as seen (nothing stored) so the session's
        ack moves past them; not for refusals about the seq bookkeeping itself.
        """
        lim = self.limits
        sess = rs.sessions.get(frame.sid) if rs is not None else None
        if rs is not None and sess is None and len(rs.sessions) >= lim.sessions_per_run:
            return ("sessions_per_run", f"run {frame.run!r}: {lim.sessions_per_run} "
                    "sessions held", False)
        hi = sess.hi if sess is not None else 0
        if frame.recs and frame.recs[-1].seq - hi > MAX_SEQ_JUMP:
            return "seq_jump", f"seq {frame.recs[-1].seq} jumps past {hi} + {MAX_SEQ_JUMP}", False
        top = max(hi, frame.recs[-1].seq if frame.recs else 0)
        if frame.dropped > top or frame.errors > MAX_COUNTER:
            return "counter", f"dropped {frame.dropped} > seqs issued ({top})", True
        if rs is None:
            if len(self.runs) >= lim.runs:
                return "runs_total", f"{lim.runs} runs held", False
            if self._peer_runs[peer] >= lim.runs_per_peer:
                return "runs_per_peer", f"{lim.runs_per_peer} runs from one peer", False
            # New runs cost the most (state, detector, store rows, updates): a token
            # bucket keeps a flood of them from starving the runs already streaming.
            mono = time.monotonic()
            self._new_tokens = min(float(lim.new_runs_burst), self._new_tokens + (
                mono - self._new_t) * lim.new_runs_per_s)
            self._new_t = mono
            if self._new_tokens < 1.0:
                return "runs_rate", f"over {lim.new_runs_per_s:g} new runs/s", False
            self._new_tokens -= 1.0
        names = self._names.get(frame.run)
        new_names: set[str] = set()
        arrays = self._arrays.get(frame.run) or {}
        arr_new: dict[str, int] = {}
        for rec in frame.recs:
            if rec.kind == SCALARS:
                if names is None or not names.issuperset(rec.vals):
                    new_names.update(k for k in rec.vals if names is None or k not in names)
            elif rec.packed is not None:
                arr_new[f"{rec.kind}:{rec.name}"] = rec.nbytes
        if new_names:
            held = len(names) if names is not None else 0
            if held + len(new_names) > lim.metrics_per_run:
                return ("metrics_per_run", f"run {frame.run!r}: more than "
                        f"{lim.metrics_per_run} metric names", True)
            if self._n_names + len(new_names) > lim.metrics_total:
                return "metrics_total", f"more than {lim.metrics_total} metric names", True
        if arr_new:
            merged = {**arrays, **arr_new}
            if len(merged) > lim.arrays_per_run:
                return ("arrays_per_run", f"run {frame.run!r}: more than "
                        f"{lim.arrays_per_run} array names", True)
            grow = sum(merged.values()) - sum(arrays.values())
            if sum(merged.values()) > lim.array_bytes_per_run:
                return ("array_bytes_per_run", f"run {frame.run!r}: arrays over "
                        f"{lim.array_bytes_per_run} bytes", True)
            if self._arr_bytes + grow > lim.array_bytes_total:
                return "array_bytes_total", f"arrays over {lim.array_bytes_total} bytes", True
        return None

    def _quarantine(self, peer: bytes, frame: wire.Frame, now: float, reason: str,
                    detail: str, consume: bool, exc: BaseException | None = None) -> None:
        """Refuse a decoded frame: count it, log the reason once, ack its seqs as rejected."""
        self.rejects[reason] += 1
        self.quarantined += 1
        if self.rejects[reason] == 1:
            if exc is not None:
                log.error("frame quarantined (%s) for run %r: %s", reason, frame.run, detail,
                          exc_info=exc)
            else:
                log.warning("frame quarantined (%s) for run %r: %s", reason, frame.run,
                            detail[:200])
        rs = self.runs.get(frame.run)
        if rs is not None:
            rs.counters["rejected"] += 1
            rs.dirty = True
            self._dirty_runs.add(frame.run)
        if not frame.recs:
            return
        lo, hi = frame.recs[0].seq, frame.recs[-1].seq
        key = (peer, frame.run, frame.sid)
        if consume and rs is not None:
            sess = rs.sessions.get(frame.sid)
            if sess is None:
                sess = rs.sessions[frame.sid] = Session()
                self._owners[(rs.run_id, frame.sid)] = peer
            for rec in frame.recs:
                sess.accept(rec.seq, now)
            self._touched[key] = None
        self._add_rejected(key, lo, hi)

    def _new_run(self, peer: bytes, name: str) -> RunState:
        rs = self.runs[name] = RunState(name, self.store.run_id(name))
        rs.detector = self._detector(rs)
        self._rid_run[rs.run_id] = rs
        self._peer_runs[peer] += 1
        if len(self._peer_runs) >= PEER_RUN_MAX:
            self._peer_runs.clear()
        return rs

    def _apply(self, peer: bytes, frame: wire.Frame, data: bytes, now: float) -> None:
        """Apply one checked frame: its records to the run, the store batch and the detector."""
        rs, sess = self._enter(peer, frame, now)
        alerts = self.alerts
        det = self._detector_of(rs)
        resend = bool(frame.recs) and frame.recs[0].seq <= sess.hi
        gaps0 = sess.gaps
        rid, sid = rs.run_id, frame.sid
        rows = self._chunks.get((rid, sid))
        if rows is None:
            rows = self._chunks[(rid, sid)] = []
        start_len = len(rows)
        new = dups = 0
        for rec in frame.recs:
            if not sess.accept(rec.seq, now):
                dups += 1
                continue
            new += 1
            if rec.kind == SCALARS:  # the hot path stays inline
                vals = rec.vals
                self._add_names(frame.run, vals)
                rows.append((rec.seq, KIND_CODES[SCALARS], rec.step, rec.t, vals))
                rs.add_scalars(rec.step, vals)
                try:
                    out = det.on_scalars(rec.step, rec.t, vals)
                except Exception as e:  # a detector bug must not cost a record
                    out = self._detector_failed(rs, "on_scalars", e)
                if out:
                    alerts += self._label(rs, out)
            else:
                det = self._other_record(rs, frame.run, sid, rec, rows, det)
            rs.info["last_t"] = rec.t
        if new:
            if not dups and data:  # all new: keep the frame's own bytes, skip re-encoding
                del rows[start_len:]
                recs = frame.recs
                self._frames.append((rid, sid, recs[0].seq, recs[-1].seq, new,
                                     min(r.t for r in recs), data))
            if rs.info["sid"] is None:
                rs.info["sid"] = sid
            if not self._first_pending:
                self._first_pending = time.monotonic()
        self._settle_seqs(rs, sess, frame, resend, gaps0, now)
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

    def _enter(self, peer: bytes, frame: wire.Frame, now: float) -> tuple[RunState, Session]:
        """The frame's run and session (created on first sight), heard from now."""
        rs = self.runs.get(frame.run)
        if rs is None:
            rs = self._new_run(peer, frame.run)
        rs.counters["frames"] += 1
        sess = rs.sessions.get(frame.sid)
        if sess is None:
            sess = rs.sessions[frame.sid] = Session()
            self._owners[(rs.run_id, frame.sid)] = peer  # the session belongs to its opener
        if rs.silenced:
            rs.silenced = False
            last = frame.recs[-1] if frame.recs else None
            self.alerts += self._det(rs, "on_resume", rs.info["step"], last.t if last else now)
        if rs.info["state"] == "lost":
            rs.info["state"] = "live"
        rs.last_heard = now
        return rs, sess

    def _other_record(self, rs: RunState, run: str, sid: int, rec: wire.Record, rows: list,
                      det: Any) -> Any:
        """A hello, array or bye record; returns the run's detector (a hello makes a new one)."""
        kind = rec.kind
        if kind == HELLO:
            h = rec.hello
            rows.append((rec.seq, KIND_CODES[HELLO], None, rec.t, h))
            if rs.info["sid"] not in (None, sid):  # a rerun: a new session of the run
                rs.new_session()
            rs.info.update(host=h["host"], pid=h["pid"], config=h["config"],
                           modulus=h["modulus"], start=h["start"], sid=sid, step=0)
            rs.info["state"] = "live"
            rs.detector = self._detector(rs, h)
            return rs.detector
        if kind in (SPECTRUM, POINTS):
            packed = rec.packed  # stored and published as it came: never unpacked
            self._add_array(run, f"{kind}:{rec.name}", rec.nbytes)
            rows.append((rec.seq, KIND_CODES[kind], rec.step, rec.t,
                         {"name": rec.name, "arr": packed}))
            rs.set_array(kind, rec.name, rec.step, packed)
            return det
        rows.append((rec.seq, KIND_CODES[BYE], None, rec.t, None))
        if rs.info["sid"] in (None, sid):  # only the run's current session ends it
            rs.info["state"] = "finished"
            self.alerts += self._det(rs, "on_bye", rs.info["step"], rec.t)
        return det

    def _settle_seqs(self, rs: RunState, sess: Session, frame: wire.Frame, resend: bool,
                     gaps0: int, now: float) -> None:
        """Seqs that can no longer arrive become counted gaps (see runstate); drops, errors."""
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
            self.alerts += self._det(rs, "on_drop", rs.info["step"], t, gaps_inc, dropped_inc)

    def _det(self, rs: RunState, method: str, *args: Any) -> list[Alert]:
        """Call one detector method; its alerts labelled, its exceptions logged and counted."""
        try:
            return self._label(rs, getattr(self._detector_of(rs), method)(*args))
        except Exception as e:
            return self._detector_failed(rs, method, e)

    def _detector_failed(self, rs: RunState, method: str, e: Exception) -> list[Alert]:
        self.detector_errors += 1
        if self.detector_errors <= LOG_REJECTS_PER_REASON:
            log.error("detector %s failed on run %r (record kept): %s: %s", method, rs.name,
                      type(e).__name__, e)
        return []

    def _label(self, rs: RunState, alerts: list[Alert]) -> list[Alert]:
        session = rs.info.get("session") or 1
        for a in alerts:
            if not a.labels:
                a.labels = dict(rs.info.get("config") or {})
            if session > 1:  # a rerun's alerts say which session raised them
                a.labels["session"] = session
        return alerts

    # ------------------------------------------------------------ timers

    def tick(self, now: float | None = None, runs: list[RunState] | None = None) -> None:
        """About once a second per run: silence checks, stale holes, lost runs.

        ``runs``: a slice of the runs (the daemon ticks a tenth every 100 ms, so with
        many runs no single pass holds the loop); default all.
        """
        now = time.time() if now is None else now
        for rs in self.runs.values() if runs is None else runs:
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
            det = self._detector_of(rs)
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
        return bool(self._n_pending or self._touched or self._rejected_out or (
            self._dirty_runs and time.monotonic() - self._last_info >= self.info_interval))

    def commit(self, alerts: list[dict] | None = None,
               hook_events: list[dict] | None = None) -> list[tuple[bytes, bytes]]:
        """Write the batch in one transaction; return ``(peer, ack)`` pairs to send now."""
        runs: dict[str, dict] = {}
        now = time.monotonic()
        if now - self._last_info >= self.info_interval:
            # At most INFO_BATCH summaries per commit (the rest go with the next ones), so
            # thousands of dirty runs never make one long commit; all of them at shutdown.
            if self.info_interval > 0 and len(self._dirty_runs) > INFO_BATCH:
                names = [n for n, _ in zip(self._dirty_runs, range(INFO_BATCH))]
                self._dirty_runs.difference_update(names)
            else:
                names, self._dirty_runs = list(self._dirty_runs), set()
                self._last_info = now
            runs = {name: self.runs[name].persist_info() for name in names if name in self.runs}
        sessions = []
        for (_peer, run, sid) in self._touched:
            rs = self.runs[run]
            s = rs.sessions[sid]
            sessions.append((rs.run_id, sid, s.hi, s.gaps, s.dropped, s.errors, s.holes,
                             self._owners.get((rs.run_id, sid))))
        if self._n_pending or runs or sessions or alerts or hook_events:
            self.store.write_batch(self._chunks, runs, sessions, alerts or [], hook_events or [],
                                   self._frames)
        acks = []
        rejected = self._rejected_out
        for (peer, run, sid) in self._touched:
            s = self.runs[run].sessions[sid]
            mark = s.watermark()
            rej = rejected.pop((peer, run, sid), None)
            if mark > 0 or rej:
                s.acked = mark
                acks.append((peer, wire.encode_ack(run, sid, mark, rejected=rej)))
        for (peer, run, sid), rej in rejected.items():  # refused, no session state here
            rs = self.runs.get(run)
            sess = rs.sessions.get(sid) if rs is not None else None
            acks.append((peer, wire.encode_ack(run, sid, sess.watermark() if sess else 0,
                                               rejected=rej)))
        self._rejected_out = {}
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
                "detector_errors": self.detector_errors, "quarantined": self.quarantined,
                "internal_errors": self.internal_errors,
                "limits": {k: getattr(self.limits, k) for k in self.limits.__dataclass_fields__},
                "held": {"metric_names": self._n_names, "array_bytes": self._arr_bytes},
                "bytes": self.bytes, "rejected": dict(self.rejects),
                "rejected_total": sum(self.rejects.values()), "runs": len(self.runs),
                "live_runs": sum(rs.info["state"] == "live" for rs in self.runs.values()),
                "gaps": sum(rs.counters["gaps"] for rs in self.runs.values()),
                "dropped": sum(rs.counters["dropped"] for rs in self.runs.values()),
                "missing": missing, "pending_rows": self._n_pending,
                "series_bytes": sum(rs.memory_bytes() for rs in self.runs.values())}
