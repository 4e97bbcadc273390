"""The daemon's request/reply API on its client ROUTER (shapes in :mod:`grokwatch.client`)."""

from __future__ import annotations

import fnmatch
from collections.abc import Callable
from typing import Any

from grokwatch import wire

DEFAULT_TAIL = 256  # series points per metric in a snapshot
MAX_EXPORT_ROWS = 5_000_000


class ApiError(Exception):
    """A refused request; the message is the reply's one-line ``error``."""


def handle_request(daemon: Any, data: bytes) -> dict[str, Any]:
    """Answer one request payload; never raises (errors become ``ok: False``)."""
    try:
        req = wire.decode_msg(data, max_size=1 << 20)
    except wire.WireError as e:
        return {"op": None, "ok": False, "error": f"bad request: {e}"}
    op = req.get("op")
    rid = req.get("id")
    fn = HANDLERS.get(op) if isinstance(op, str) else None
    if fn is None:
        return {"op": op if isinstance(op, str) else None, "id": rid, "ok": False,
                "error": f"unknown op {op!r}; expected one of {', '.join(wire.CLIENT_OPS)}"}
    try:
        body = fn(daemon, req)
    except ApiError as e:
        return {"op": op, "id": rid, "ok": False, "error": str(e)}
    except Exception as e:  # a bug must not kill the daemon; say it in one line
        return {"op": op, "id": rid, "ok": False, "error": f"internal error: {type(e).__name__}: {e}"}
    return {"op": op, "id": rid, "ok": True, **body}


def _ping(daemon: Any, req: dict) -> dict:
    return {"pid": daemon.pid}


def _glob(req: dict, key: str = "run") -> str:
    pat = req.get(key) or "*"
    if not isinstance(pat, str):
        raise ApiError(f"{key} must be a string (a run name or glob)")
    return pat


def _snapshot(daemon: Any, req: dict) -> dict:
    tail = req.get("tail", DEFAULT_TAIL)
    if type(tail) is not int or tail < 0:
        raise ApiError("tail must be a non-negative int")
    pat = _glob(req)
    history = bool(req.get("history", False))
    # Publish every pending change first: the snapshot then covers exactly seq.
    daemon.publisher.flush_runs(daemon.ingest.runs, force=True)
    runs = []
    for name, rs in daemon.ingest.runs.items():
        if not fnmatch.fnmatchcase(name, pat):
            continue
        series = rs.series_history() if history else rs.series_tail(tail)
        runs.append({**rs.summary(), "series": series, "spectra": dict(rs.spectra),
                     "points": dict(rs.points)})
    return {"seq": daemon.publisher.seq, "epoch": daemon.publisher.epoch, "runs": runs, "alerts": list(daemon.recent_alerts),
            "hooks": list(daemon.recent_hooks)}


def _runs(daemon: Any, req: dict) -> dict:
    pat = _glob(req)
    return {"runs": [rs.summary() for name, rs in daemon.ingest.runs.items()
                     if fnmatch.fnmatchcase(name, pat)]}


def _status(daemon: Any, req: dict) -> dict:
    return {"status": daemon.status()}


def _export(daemon: Any, req: dict) -> dict:
    run = req.get("run")
    if not isinstance(run, str) or run not in daemon.ingest.runs:
        raise ApiError(f"no run named {run!r}")
    metric = req.get("metric")
    if metric is not None and not isinstance(metric, str):
        raise ApiError("metric must be a string")
    daemon.commit()  # what was received is exported
    rows = []
    for row in daemon.store.export_rows(run, metric):
        rows.append(row)
        if len(rows) >= MAX_EXPORT_ROWS:
            raise ApiError(f"more than {MAX_EXPORT_ROWS} rows: use `grokwatch export --db`")
    return {"run": run, "rows": rows}


def _alerts(daemon: Any, req: dict) -> dict:
    pat = _glob(req)
    kind = req.get("kind")
    if kind is not None and not isinstance(kind, str):
        raise ApiError("kind must be a string")
    limit = req.get("limit", 10_000)
    if type(limit) is not int or limit < 0:
        raise ApiError("limit must be a non-negative int")
    daemon.commit()
    return {"alerts": daemon.store.load_alerts(pat, kind, limit),
            "hooks": daemon.store.load_hook_events(pat, limit)}


HANDLERS: dict[str, Callable[[Any, dict], dict]] = {
    "ping": _ping, "snapshot": _snapshot, "runs": _runs, "status": _status,
    "export": _export, "alerts": _alerts,
}
