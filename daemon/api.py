"""The daemon's request/reply API on its client ROUTER (shapes in :mod:`grokwatch.wire.messages`)."""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

from grokwatch import wire
from grokwatch.daemon.queryworker import MAX_EXPORT_ROWS, MAX_GLOB, glob_matcher
from grokwatch.wire import messages

__all__ = ["MAX_EXPORT_ROWS", "ApiError", "handle_request"]

# A snapshot is bounded so that a client always connects, whatever was sent to the daemon:
# the most recently heard runs first; past the budgets a run comes as its summary only
# (its series and arrays fill in from updates). The reply says what was left out.
SNAPSHOT_MAX_RUNS = 2_000
SNAPSHOT_MAX_POINTS = 2_000_000  # series points over all runs (~32 MB packed)
SNAPSHOT_MAX_ARRAY_BYTES = 8 << 20  # spectra + points bytes over all runs (a run's are KBs)
HISTORY_ALERTS = 20_000  # stored alerts a whole-history snapshot adds (newest kept)
DEFERRED = ("export", "alerts")  # answered by the query worker, off the loop


class ApiError(Exception):
    """A refused request; the message is the reply's one-line ``error``."""


def handle_request(daemon: Any, data: bytes, ident: list[bytes] | None = None
                   ) -> dict[str, Any] | None:
    """Answer one request payload; never raises (errors become ``ok: False``).

    Returns None when the request went to the daemon's query worker (``ident``: the
    ROUTER envelope its reply goes back to).
    """
    try:
        msg = wire.decode_msg(data, max_size=1 << 20)
    except wire.WireError as e:
        return messages.error_reply(None, None, f"bad request: {e}")
    op = msg.get("op")
    rid = msg.get("id")
    try:
        req = messages.parse_request(msg)
    except messages.RequestError as e:
        return messages.error_reply(op if isinstance(op, str) else None, rid, str(e))
    pat = req.get("run")
    if req["op"] != "export" and isinstance(pat, str) and len(pat) > MAX_GLOB:
        return messages.error_reply(op, rid, f"run glob longer than {MAX_GLOB} characters")
    worker = getattr(daemon, "queries", None)
    if req["op"] in DEFERRED and worker is not None and ident is not None:
        if req["op"] == "export" and req["run"] not in daemon.ingest.runs:
            return messages.error_reply(op, rid, f"no run named {req['run']!r}")
        daemon.commit()  # what was received is answered
        if not worker.submit(ident, req):
            return messages.error_reply(op, rid, "busy: too many queries waiting; retry")
        return None
    try:
        body = HANDLERS[req["op"]](daemon, req)
    except ApiError as e:
        return messages.error_reply(op, rid, str(e))
    except Exception as e:  # a bug must not kill the daemon; say it in one line
        return messages.error_reply(op, rid, f"internal error: {type(e).__name__}: {e}")
    return messages.reply(op, rid, body)


def _ping(daemon: Any, req: dict) -> dict:
    return messages.ping_reply(daemon.pid)


def _snapshot(daemon: Any, req: dict) -> dict:
    pat, tail, history = req["run"], req["tail"], req["history"]
    match = glob_matcher(pat)
    # Publish every pending change first: the snapshot then covers exactly seq.
    daemon.publisher.flush_runs(daemon.ingest.runs, force=True)
    chosen = [rs for name, rs in daemon.ingest.runs.items() if match(name)]
    total = len(chosen)
    if total > SNAPSHOT_MAX_RUNS:
        chosen = sorted(chosen, key=lambda rs: rs.last_heard, reverse=True)[:SNAPSHOT_MAX_RUNS]
    points_left, bytes_left = SNAPSHOT_MAX_POINTS, SNAPSHOT_MAX_ARRAY_BYTES
    bare = 0
    runs = []
    for i, rs in enumerate(chosen):
        # Sized before anything is built: a run over the budgets costs no copying.
        n = sum(len(s) if history else min(len(s), tail) for s in rs.series.values())
        spectra, points = dict(rs.spectra), dict(rs.points)
        nb = sum(len(a["arr"]["b"]) for a in (*spectra.values(), *points.values()))
        # A whole history over this run's fair share of the points left is thinned to
        # fit (still first to last step), so every run keeps its whole-run view.
        share = points_left // max(1, len(chosen) - i)
        stride = -(-n // share) if history and share > 0 and n > share else 1
        if stride > 1:
            n = sum(-(-len(s) // stride) + 1 for s in rs.series.values())
        if n > points_left or nb > bytes_left:
            series, spectra, points = {}, {}, {}
            bare += 1
        else:
            series = (_thinned(rs.series_history(), stride) if history
                      else rs.series_tail(tail))
            points_left -= n
            bytes_left -= nb
        runs.append(messages.run_data(rs.summary(), series=series, spectra=spectra,
                                      points=points))
    body = messages.snapshot_reply(seq=daemon.publisher.seq, epoch=daemon.publisher.epoch,
                                   runs=runs, alerts=_alerts_for(daemon, pat, history),
                                   hooks=list(daemon.recent_hooks))
    if total > len(runs) or bare:
        body["truncated"] = {"runs_total": total, "runs_left_out": total - len(runs),
                             "runs_summary_only": bare}
    return body


def _alerts_for(daemon: Any, pat: str, history: bool) -> list[dict]:
    """The recent alerts; with ``history`` also every stored alert of the runs asked for,
    so a client connecting late sees each run's early alerts (memorized, onset) even
    after the in-memory window moved past them."""
    recent = list(daemon.recent_alerts)
    store = getattr(daemon, "store", None)
    if not history or store is None:
        return recent
    try:
        stored = store.load_alerts(pat, None, HISTORY_ALERTS)
    except Exception:  # the store's trouble is reported elsewhere; the snapshot goes on
        return recent
    seen = {messages.alert_key(a) for a in recent}
    older = [a for a in stored if messages.alert_key(a) not in seen]
    return sorted(older + recent, key=lambda a: a.get("t") or 0) if older else recent


def _thinned(series: dict[str, dict], stride: int) -> dict[str, dict]:
    """Every ``stride``-th point of each series, and always its last."""
    if stride <= 1:
        return series
    out = {}
    for name, s in series.items():
        st, vs = s["steps"], s["values"]
        keep_s, keep_v = st[::stride], vs[::stride]
        if st and (len(st) - 1) % stride:
            keep_s.append(st[-1])
            keep_v.append(vs[-1])
        out[name] = {"steps": keep_s, "values": keep_v}
    return out


def _runs(daemon: Any, req: dict) -> dict:
    match = glob_matcher(req["run"])
    return messages.runs_reply([rs.summary() for name, rs in daemon.ingest.runs.items()
                                if match(name)])


def _status(daemon: Any, req: dict) -> dict:
    return messages.status_reply(daemon.status())


def _export(daemon: Any, req: dict) -> dict:
    run, metric = req["run"], req["metric"]
    if run not in daemon.ingest.runs:
        raise ApiError(f"no run named {run!r}")
    daemon.commit()  # what was received is exported
    rows = []
    for row in daemon.store.export_rows(run, metric):
        rows.append(row)
        if len(rows) >= MAX_EXPORT_ROWS:
            raise ApiError(f"more than {MAX_EXPORT_ROWS} rows: use `grokwatch export --db`")
    return messages.export_reply(run, rows)


def _alerts(daemon: Any, req: dict) -> dict:
    daemon.commit()
    return messages.alerts_reply(daemon.store.load_alerts(req["run"], req["kind"], req["limit"]),
                                 daemon.store.load_hook_events(req["run"], req["limit"]))


HANDLERS: dict[str, Callable[[Any, dict], dict]] = {
    "ping": _ping, "snapshot": _snapshot, "runs": _runs, "status": _status,
    "export": _export, "alerts": _alerts,
}
