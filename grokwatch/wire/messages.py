"""Messages between the daemon and its clients: one builder and one parser each.

Every message is a plain msgpack map (packed with :func:`~grokwatch.wire.frames.encode_msg`,
which adds ``"v"``). The daemon builds them with the functions here and
clients read them with the ``parse_*`` functions here; nobody else spells a
key. The key ``run`` is always a run *name* (a string); a run's summary
travels under ``summary``.

Shapes (``TypedDict`` below; maps on the wire):

``RunSummary``  run (name), sid, host, pid, config, modulus, start, state
                ("live" | "finished" | "lost"), step, last_t, phase,
                onset_step (int | None), last {name: value}, rate (records/s),
                counters {frames, records, rejected, dropped, gaps,
                duplicates, errors}
``Series``      {name: {"steps": [int], "values": [float]}}
``Arrays``      {name: {"step": int, "arr": packed array}} (see
                :func:`~grokwatch.wire.frames.pack_array`)
``RunData``     run (name), summary (RunSummary), series (Series), spectra
                (Arrays), points (Arrays): a snapshot's entry for one run,
                and the body of a ``run`` update
``Alert``       run, step, time (RFC 3339), t (unix), kind (one of
                :data:`~grokwatch.wire.names.ALERT_KINDS`), status ("firing" |
                "resolved"), fingerprint, summary (text), evidence {}, labels {}
``HookEvent``   time, t, rule, alert_kind, run, fingerprint, status,
                result ("ok" | "failed" | "timeout" | "dropped"), rc,
                attempts, duration, detail

Requests ``{"op": ..., "id": ..., args}`` on the daemon's API ROUTER, and
replies ``{"op", "id", "ok": bool, ...}``; a failed reply has ``error`` (one
line) and nothing else:

``snapshot``  (run=glob "*", tail=256, history=False)
              -> seq (the last update seq it covers), epoch, runs [RunData
                 with series tails], alerts [Alert, newest last], hooks
                 [HookEvent]; ``history=True``: each series over the whole
                 run (downsampled beyond the newest 512 points) instead of
                 the last ``tail`` points
``runs``      (run=glob) -> runs [RunSummary]
``status``    -> status {rates, queue depths, drops, rejects by reason, ...}
``export``    (run, metric=None) -> run, rows [{step, t, name, value}]
``alerts``    (run=glob, kind=None, limit=10000) -> alerts [Alert], hooks
                 [HookEvent] (stored, oldest first)
``ping``      -> pid

Updates on the PUB socket, two frames ``[topic, map]``; each map has ``seq``
(global, strictly increasing: the zguide clone pattern) and ``epoch``:

``run``    RunData: the summary, series points new since the run's last
           update, spectra and points that changed
``alert``  alert (Alert)
``hook``   hook (HookEvent)
``hugz``   heartbeat: ``seq`` is the latest seq sent, not a new one; ``t``

``epoch`` names the daemon instance: a restarted daemon counts seqs from 1
again, so a client that sees another epoch re-snapshots at once instead of
trusting the seq. The snapshot reply carries it too.

Parsers raise :class:`~grokwatch.wire.frames.WireError` (reason ``schema``)
when a message's shape is wrong; inside a well-formed message, a malformed
series or array entry is left out rather than failing the whole message.
Request parsers raise :class:`RequestError` with the reply's one-line error.
"""

from __future__ import annotations

import hashlib
from datetime import datetime, timezone
from typing import Any, TypedDict

from grokwatch.wire.frames import WireError
from grokwatch.wire.names import FIRING, STARTING

# ---------------------------------------------------------------- vocabulary

CLIENT_OPS = ("snapshot", "runs", "status", "export", "alerts", "ping")
TOPIC_RUN, TOPIC_ALERT, TOPIC_HOOK, TOPIC_HUGZ = b"run", b"alert", b"hook", b"hugz"
UPDATE_TOPICS = (TOPIC_RUN, TOPIC_ALERT, TOPIC_HOOK, TOPIC_HUGZ)

LIVE, FINISHED, LOST = "live", "finished", "lost"
RUN_STATES = (LIVE, FINISHED, LOST)
COUNTERS = ("frames", "records", "rejected", "dropped", "gaps", "duplicates", "errors")
HOOK_RESULTS = ("ok", "failed", "timeout", "dropped")

DEFAULT_TAIL = 256  # series points per metric in a snapshot
DEFAULT_ALERTS_LIMIT = 10_000


class RunSummary(TypedDict):
    run: str
    sid: int | None
    host: str | None
    pid: int | None
    config: dict[str, Any]
    modulus: int | None
    start: float | None
    state: str
    step: int
    last_t: float | None
    phase: str
    onset_step: int | None
    last: dict[str, float]
    rate: float
    counters: dict[str, int]


class SeriesData(TypedDict):
    steps: list[int]
    values: list[float]


class ArrayData(TypedDict):
    step: int
    arr: dict[str, Any]  # a packed array


class RunData(TypedDict):
    run: str
    summary: RunSummary
    series: dict[str, SeriesData]
    spectra: dict[str, ArrayData]
    points: dict[str, ArrayData]


class Alert(TypedDict):
    run: str
    step: int
    time: str
    t: float
    kind: str
    status: str
    fingerprint: str
    summary: str
    evidence: dict[str, Any]
    labels: dict[str, Any]


class HookEvent(TypedDict):
    time: str
    t: float
    rule: str
    alert_kind: str | None
    run: str | None
    fingerprint: str | None
    status: str
    result: str
    rc: int | None
    attempts: int
    duration: float
    detail: str


class Snapshot(TypedDict):
    seq: int
    epoch: str | None
    runs: list[RunData]
    alerts: list[Alert]
    hooks: list[HookEvent]


def _schema(what: str) -> WireError:
    return WireError("schema", what)


def _map(obj: Any, what: str) -> dict:
    if not isinstance(obj, dict):
        raise _schema(f"{what} is not a map")
    return obj


def _run_name(obj: dict, what: str) -> str:
    run = obj.get("run")
    if not isinstance(run, str):
        raise _schema(f"{what}: run must be a run name (a string)")
    return run


# ---------------------------------------------------------------- run summaries and data


def run_summary(run: str, *, sid: int | None = None, host: str | None = None,
                pid: int | None = None, config: dict[str, Any] | None = None,
                modulus: int | None = None, start: float | None = None, state: str = LIVE,
                step: int = 0, last_t: float | None = None, phase: str = STARTING,
                onset_step: int | None = None, last: dict[str, float] | None = None,
                rate: float = 0.0, counters: dict[str, int] | None = None,
                session: int = 1) -> RunSummary:
    """The RunSummary of one run. ``session``: 1, then 2, 3... for each rerun under the
    same name (a hello from a new probe session); the run's live view starts over."""
    return {"run": run, "sid": sid, "host": host, "pid": pid, "config": config or {},
            "modulus": modulus, "start": start, "state": state, "step": step,
            "last_t": last_t, "phase": phase, "onset_step": onset_step,
            "last": dict(last or {}), "rate": rate, "counters": dict(counters or {}),
            "session": session}


def parse_run_summary(obj: Any) -> RunSummary:
    """A RunSummary map as received (checked: a map with a run name)."""
    d = _map(obj, "run summary")
    _run_name(d, "run summary")
    return d  # type: ignore[return-value]


def series(steps: list[int], values: list[float]) -> SeriesData:
    """One metric's points."""
    return {"steps": steps, "values": values}


def array(step: int, packed: dict[str, Any]) -> ArrayData:
    """The latest spectrum or constellation of a name (``packed``: a packed array)."""
    return {"step": step, "arr": packed}


def run_data(summary: RunSummary, *, series: dict[str, SeriesData] | None = None,
             spectra: dict[str, ArrayData] | None = None,
             points: dict[str, ArrayData] | None = None) -> RunData:
    """A run's summary with series points and arrays (snapshot entry, ``run`` update)."""
    return {"run": summary["run"], "summary": summary, "series": series or {},
            "spectra": spectra or {}, "points": points or {}}


def parse_run_data(obj: Any) -> RunData:
    """Inverse of :func:`run_data`; malformed series and array entries are left out."""
    d = _map(obj, "run data")
    run = _run_name(d, "run data")
    summary = parse_run_summary(d.get("summary"))
    if summary["run"] != run:
        raise _schema(f"run data for {run!r} carries the summary of {summary['run']!r}")
    ser = {name: s for name, s in (d.get("series") or {}).items()
           if isinstance(s, dict) and isinstance(s.get("steps") or [], list)
           and isinstance(s.get("values") or [], list)}
    out: RunData = {"run": run, "summary": summary, "series": ser, "spectra": {}, "points": {}}
    for key in ("spectra", "points"):
        arrs = d.get(key) or {}
        if isinstance(arrs, dict):
            out[key] = {name: a for name, a in arrs.items()  # type: ignore[literal-required]
                        if isinstance(a, dict) and isinstance(a.get("arr"), dict)}
    return out


# ---------------------------------------------------------------- alerts and hook events


def rfc3339(t: float) -> str:
    """Unix time as an RFC 3339 UTC timestamp with milliseconds.

    Never raises (issue 11 finding 1): a time no datetime holds (year > 9999, NaN)
    is clamped to the nearest end of the range.
    """
    try:
        d = datetime.fromtimestamp(t, tz=timezone.utc)
    except (ValueError, OverflowError, OSError, TypeError):
        d = (datetime.max if t == t and t > 0 else datetime.min).replace(tzinfo=timezone.utc)
    return d.isoformat(timespec="milliseconds").replace("+00:00", "Z")


def fingerprint(run: str, kind: str, session: Any = None) -> str:
    """Stable id of an alert series: same run and kind (and session, for a rerun's
    alerts: ``labels.session`` 2, 3...), same fingerprint."""
    if session not in (None, 1):
        kind = f"{kind}\x00session {session}"
    return hashlib.sha1(f"{run}\x00{kind}".encode()).hexdigest()[:16]


def alert(*, run: str, step: int, t: float, kind: str, summary: str, status: str = FIRING,
          evidence: dict[str, Any] | None = None,
          labels: dict[str, Any] | None = None) -> Alert:
    """The alert map clients, hooks and the store see."""
    fp = fingerprint(run, kind, (labels or {}).get("session"))
    return {"run": run, "step": step, "time": rfc3339(t), "t": t, "kind": kind,
            "status": status, "fingerprint": fp, "summary": summary,
            "evidence": evidence if evidence is not None else {},
            "labels": labels if labels is not None else {}}


def parse_alert(obj: Any) -> Alert:
    """An alert map as received (checked: a map with a run name)."""
    d = _map(obj, "alert")
    _run_name(d, "alert")
    return d  # type: ignore[return-value]


def hook_event(*, t: float, rule: str, for_alert: dict[str, Any], result: str,
               rc: int | None, attempts: int, duration: float, detail: str) -> HookEvent:
    """What became of one hook run for the alert ``for_alert``."""
    a = for_alert
    return {"time": rfc3339(t), "t": t, "rule": rule, "alert_kind": a.get("kind"),
            "run": a.get("run"), "fingerprint": a.get("fingerprint"),
            "status": a.get("status", FIRING), "result": result, "rc": rc,
            "attempts": attempts, "duration": round(duration, 3), "detail": detail}


def parse_hook_event(obj: Any) -> HookEvent:
    """A HookEvent map as received (checked: a map)."""
    return _map(obj, "hook event")  # type: ignore[return-value]


def alert_key(a: dict[str, Any]) -> str:
    """What tells two alert events apart (a series' firing and resolved, each time)."""
    return f"{a.get('fingerprint', '')}{a.get('t')!r}{a.get('status', '')}"


def hook_key(h: dict[str, Any]) -> str:
    """What tells two hook events apart."""
    return f"{h.get('fingerprint')}{h.get('rule')}{h.get('t')}{h.get('result')}"


# ---------------------------------------------------------------- PUB updates


def run_update(data: RunData) -> RunData:
    """The body of a ``run`` update (the publisher adds ``seq`` and ``epoch``)."""
    return data


def alert_update(a: Alert) -> dict[str, Any]:
    """The body of an ``alert`` update."""
    return {"alert": a}


def hook_update(event: HookEvent) -> dict[str, Any]:
    """The body of a ``hook`` update."""
    return {"hook": event}


def hugz(seq: int, epoch: str, t: float) -> dict[str, Any]:
    """The heartbeat: the latest seq sent (not a new one)."""
    return {"seq": seq, "epoch": epoch, "t": t}


def parse_update(kind: str, msg: Any) -> RunData | Alert | HookEvent:
    """The payload of one ``run``, ``alert`` or ``hook`` update."""
    d = _map(msg, f"{kind} update")
    if kind == "run":
        return parse_run_data(d)
    if kind == "alert":
        return parse_alert(d.get("alert"))
    if kind == "hook":
        return parse_hook_event(d.get("hook"))
    raise _schema(f"no payload in a {kind!r} update")


# ---------------------------------------------------------------- requests


class RequestError(ValueError):
    """A request the daemon refuses; the message is the reply's one-line ``error``."""


def request(op: str, rid: str | None = None, **args: Any) -> dict[str, Any]:
    """A request map (``rid`` pairs the reply with it)."""
    return {"op": op, "id": rid, **args}


def snapshot_request(run: str = "*", tail: int = DEFAULT_TAIL,
                     history: bool = False) -> dict[str, Any]:
    """Arguments of a ``snapshot`` request."""
    return {"run": run, "tail": tail, "history": history}


def _glob(req: dict, key: str = "run") -> str:
    pat = req.get(key) or "*"
    if not isinstance(pat, str):
        raise RequestError(f"{key} must be a string (a run name or glob)")
    return pat


def _count(req: dict, key: str, default: int) -> int:
    v = req.get(key, default)
    if type(v) is not int or v < 0:
        raise RequestError(f"{key} must be a non-negative int")
    return v


def parse_request(req: dict[str, Any]) -> dict[str, Any]:
    """A request's arguments, checked and with defaults: ``{"op", "id", args...}``.

    Raises :class:`RequestError` for an unknown op or a bad argument.
    """
    op, rid = req.get("op"), req.get("id")
    if not isinstance(op, str) or op not in CLIENT_OPS:
        raise RequestError(f"unknown op {op!r}; expected one of {', '.join(CLIENT_OPS)}")
    out: dict[str, Any] = {"op": op, "id": rid}
    if op == "snapshot":
        out.update(tail=_count(req, "tail", DEFAULT_TAIL), run=_glob(req),
                   history=bool(req.get("history", False)))
    elif op == "runs":
        out["run"] = _glob(req)
    elif op == "export":
        run, metric = req.get("run"), req.get("metric")
        if not isinstance(run, str):
            raise RequestError(f"no run named {run!r}")
        if metric is not None and not isinstance(metric, str):
            raise RequestError("metric must be a string")
        out.update(run=run, metric=metric)
    elif op == "alerts":
        kind = req.get("kind")
        out["run"] = _glob(req)
        if kind is not None and not isinstance(kind, str):
            raise RequestError("kind must be a string")
        out.update(kind=kind, limit=_count(req, "limit", DEFAULT_ALERTS_LIMIT))
    return out


# ---------------------------------------------------------------- replies


def reply(op: str | None, rid: Any, body: dict[str, Any]) -> dict[str, Any]:
    """A successful reply carrying ``body``."""
    return {"op": op, "id": rid, "ok": True, **body}


def error_reply(op: str | None, rid: Any, error: str) -> dict[str, Any]:
    """A refusal: ``error`` is one line."""
    return {"op": op, "id": rid, "ok": False, "error": error}


def snapshot_reply(*, seq: int, epoch: str | None, runs: list[RunData], alerts: list[Alert],
                   hooks: list[HookEvent]) -> Snapshot:
    """The body of a ``snapshot`` reply."""
    return {"seq": seq, "epoch": epoch, "runs": runs, "alerts": alerts, "hooks": hooks}


def parse_snapshot(obj: Any) -> Snapshot:
    """A ``snapshot`` reply; run entries, alerts and hook events that are not maps are left out."""
    d = _map(obj, "snapshot")
    seq = d.get("seq", 0)
    if type(seq) is not int:
        raise _schema("snapshot seq must be an int")
    runs = []
    for r in d.get("runs") or []:
        try:
            runs.append(parse_run_data(r))
        except WireError:
            continue
    return {"seq": seq, "epoch": d.get("epoch"), "runs": runs,
            "alerts": [a for a in d.get("alerts") or [] if isinstance(a, dict)],
            "hooks": [h for h in d.get("hooks") or [] if isinstance(h, dict)]}


def runs_reply(runs: list[RunSummary]) -> dict[str, Any]:
    """The body of a ``runs`` reply."""
    return {"runs": runs}


def parse_runs(obj: dict[str, Any]) -> list[RunSummary]:
    """The summaries of a ``runs`` reply (entries that are not summaries are left out)."""
    out = []
    for r in obj.get("runs") or []:
        try:
            out.append(parse_run_summary(r))
        except WireError:
            continue
    return out


def alerts_reply(alerts: list[Alert], hooks: list[HookEvent]) -> dict[str, Any]:
    """The body of an ``alerts`` reply."""
    return {"alerts": alerts, "hooks": hooks}


def parse_alerts(obj: dict[str, Any]) -> tuple[list[Alert], list[HookEvent]]:
    """``(alerts, hooks)`` of an ``alerts`` reply."""
    return ([a for a in obj.get("alerts") or [] if isinstance(a, dict)],
            [h for h in obj.get("hooks") or [] if isinstance(h, dict)])


def export_reply(run: str, rows: list[dict[str, Any]]) -> dict[str, Any]:
    """The body of an ``export`` reply: rows {step, t, name, value}."""
    return {"run": run, "rows": rows}


def parse_export(obj: dict[str, Any]) -> list[dict[str, Any]]:
    """The rows of an ``export`` reply."""
    return list(obj.get("rows") or [])


def status_reply(status: dict[str, Any]) -> dict[str, Any]:
    """The body of a ``status`` reply."""
    return {"status": status}


def parse_status(obj: dict[str, Any]) -> dict[str, Any]:
    """The daemon status of a ``status`` reply."""
    return _map(obj.get("status"), "status")


def ping_reply(pid: int) -> dict[str, Any]:
    """The body of a ``ping`` reply."""
    return {"pid": pid}

