"""The daemon's request/reply API on its client ROUTER (shapes in :mod:`grokwatch.wire.messages`)."""

from __future__ import annotations

import fnmatch
from collections.abc import Callable
from typing import Any

from grokwatch import wire
from grokwatch.wire import messages

MAX_EXPORT_ROWS = 5_000_000


class ApiError(Exception):
    """A refused request; the message is the reply's one-line ``error``."""


def handle_request(daemon: Any, data: bytes) -> dict[str, Any]:
    """Answer one request payload; never raises (errors become ``ok: False``)."""
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
    # Publish every pending change first: the snapshot then covers exactly seq.
    daemon.publisher.flush_runs(daemon.ingest.runs, force=True)
    runs = []
    for name, rs in daemon.ingest.runs.items():
        if not fnmatch.fnmatchcase(name, pat):
            continue
        series = rs.series_history() if history else rs.series_tail(tail)
        runs.append(messages.run_data(rs.summary(), series=series, spectra=dict(rs.spectra),
                                      points=dict(rs.points)))
    return messages.snapshot_reply(seq=daemon.publisher.seq, epoch=daemon.publisher.epoch,
                                   runs=runs, alerts=list(daemon.recent_alerts),
                                   hooks=list(daemon.recent_hooks))


def _runs(daemon: Any, req: dict) -> dict:
    pat = req["run"]
    return messages.runs_reply([rs.summary() for name, rs in daemon.ingest.runs.items()
                                if fnmatch.fnmatchcase(name, pat)])


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
