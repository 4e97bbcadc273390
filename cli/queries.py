"""``grokwatch runs|status|export|alerts``: ask the daemon (or read a store with ``--db``)."""

from __future__ import annotations

import argparse
import csv
import fnmatch
import json
import math
import sqlite3
import sys
import time
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any

from grokwatch.cli.daemon import env_api, env_pub
from grokwatch.cli.output import dumps as _dumps
from grokwatch.client.state import HOOK
from grokwatch.wire import messages
from grokwatch.wire.names import ALERT_KINDS, STARTING, TRAIN_ACC, VAL_ACC


def register(sub: Any) -> None:
    """Add ``runs``, ``status``, ``export`` and ``alerts`` to the ``grokwatch`` parser."""

    def client_args(q: argparse.ArgumentParser, *, pub: bool = False) -> None:
        q.add_argument("--api", default=env_api(), help="daemon API endpoint (default %(default)s)")
        if pub:
            q.add_argument("--pub", default=env_pub(),
                           help="daemon PUB endpoint (default %(default)s)")
        q.add_argument("--json", action="store_true", help="machine-readable output")
        q.add_argument("--timeout", type=float, default=5.0, help="seconds to wait for the daemon")

    p = sub.add_parser("runs", help="list runs (from the daemon, or a store with --db)")
    client_args(p)
    p.add_argument("--db", type=Path, default=None, help="read this store directly, no daemon")
    p.add_argument("--run", default="*", metavar="GLOB", help="only runs matching this glob")
    p.set_defaults(func=cmd_runs)

    p = sub.add_parser("status", help="daemon rates, queue depths, drops and rejects "
                                      "(or a store's runs with --db)")
    client_args(p)
    p.add_argument("--db", type=Path, default=None, help="read this store directly, no daemon")
    p.set_defaults(func=cmd_status)

    p = sub.add_parser("export", help="a run's scalars as JSON lines or CSV")
    client_args(p)
    p.add_argument("run", help="run name")
    p.add_argument("--db", type=Path, default=None, help="read this store directly, no daemon")
    p.add_argument("--format", choices=("jsonl", "csv"), default="jsonl")
    p.add_argument("--metric", default=None, help="only this scalar")
    p.set_defaults(func=cmd_export)

    p = sub.add_parser("alerts", help="alerts and hook events (--follow streams them)")
    client_args(p, pub=True)
    p.add_argument("--run", default="*", metavar="GLOB", help="only runs matching this glob")
    p.add_argument("--kind", default=None, help="only this alert kind")
    p.add_argument("--follow", action="store_true",
                   help="after the stored ones, stream new alerts and hook events as JSON lines")
    p.add_argument("--db", type=Path, default=None, help="read this store directly, no daemon")
    p.set_defaults(func=cmd_alerts)


def _err(msg: str) -> int:
    print(f"grokwatch: {msg}", file=sys.stderr)
    return 1


def _request(args: argparse.Namespace, op: str, **kw: Any) -> dict | None:
    from grokwatch.client import DaemonUnavailable, request
    try:
        return request(args.api, op, timeout=args.timeout, **kw)
    except DaemonUnavailable as e:
        _err(f"{e} (is `grokwatch daemon` running? or pass --db FILE to read a store)")
    except RuntimeError as e:
        _err(str(e))
    return None


@contextmanager
def _store_ro(path: Path) -> Iterator[Any]:
    """The store at ``path``, opened read-only, closed on the way out."""
    from grokwatch.daemon.store import open_store
    st = open_store(path, readonly=True)
    try:
        yield st
    finally:
        st.close()


def _store_errors() -> tuple[type[BaseException], ...]:
    from grokwatch.daemon.store import StoreError  # lazy: `grokwatch runs` stays light
    return (StoreError, sqlite3.Error)


def _store_err(e: BaseException) -> int:
    return _err(str(e).splitlines()[0])


def _summaries_from_store(path: Path, pat: str) -> list[dict]:
    with _store_ro(path) as st:
        out = []
        for name, info in st.load_runs().items():
            if not fnmatch.fnmatchcase(name, pat):
                continue
            out.append(messages.run_summary(
                name, sid=info.get("sid"), host=info.get("host"), pid=info.get("pid"),
                config=info.get("config", {}), modulus=info.get("modulus"),
                start=info.get("start"), state=info.get("state", messages.LIVE),
                step=info.get("step", 0), last_t=info.get("last_t"),
                phase=info.get("phase", STARTING), onset_step=info.get("onset_step"),
                last=info.get("last", {}), rate=0.0, counters=info.get("counters", {})))
        return out


def _fmt(v: Any) -> str:
    if v is None:
        return "-"
    if isinstance(v, float):
        return f"{v:.4g}"
    return str(v)


def cmd_runs(args: argparse.Namespace) -> int:
    """List runs from the daemon, or from a store with ``--db``."""
    if args.db is not None:
        try:
            runs = _summaries_from_store(args.db, args.run)
        except _store_errors() as e:
            return _store_err(e)
    else:
        reply = _request(args, "runs", run=args.run)
        if reply is None:
            return 1
        runs = messages.parse_runs(reply)
    if args.json:
        print(_dumps(runs))
        return 0
    cols = ("run", "state", "phase", "step", TRAIN_ACC, VAL_ACC, "onset", "rec/s", "gaps",
            "drops")
    rows = [[r["run"], r["state"], r["phase"], str(r["step"]),
             _fmt(r["last"].get(TRAIN_ACC)), _fmt(r["last"].get(VAL_ACC)),
             _fmt(r["onset_step"]), f"{r.get('rate', 0.0):.0f}",
             str(r["counters"].get("gaps", 0)), str(r["counters"].get("dropped", 0))]
            for r in runs]
    widths = [max(len(c), *(len(row[i]) for row in rows)) if rows else len(c)
              for i, c in enumerate(cols)]
    print("  ".join(c.ljust(w) for c, w in zip(cols, widths)))
    for row in rows:
        print("  ".join(v.ljust(w) for v, w in zip(row, widths)))
    return 0


def _store_status(args: argparse.Namespace) -> int:
    """What a store holds, without a daemon: its runs and alerts."""
    try:
        runs = _summaries_from_store(args.db, "*")
        with _store_ro(args.db) as st:
            alerts = st.load_alerts()
    except _store_errors() as e:
        return _store_err(e)
    if args.json:
        print(_dumps({"db": str(args.db), "runs": len(runs), "alerts": len(alerts)}))
        return 0
    size = sum(Path(str(args.db) + x).stat().st_size for x in ("", "-wal")
               if Path(str(args.db) + x).exists())
    states: dict[str, int] = {}
    for r in runs:
        states[r["state"]] = states.get(r["state"], 0) + 1
    by_state = ", ".join(f"{v} {k}" for k, v in sorted(states.items())) or "none"
    print(f"store {args.db} ({size / 2**20:.1f} MiB), no daemon asked")
    print(f"runs {len(runs)} ({by_state}); alerts {len(alerts)}")
    _names_hint(runs)
    return 0


def cmd_status(args: argparse.Namespace) -> int:
    """Show the daemon's rates, queues, drops and rejects (or a store's contents)."""
    if args.db is not None:
        return _store_status(args)
    reply = _request(args, "status")
    if reply is None:
        return 1
    st = messages.parse_status(reply)
    if args.json:
        print(_dumps(st))
        return 0
    print(f"daemon pid {st['pid']}, up {st['uptime']:.0f} s, store {st['db']}")
    print(f"runs {st['runs']} ({st['live_runs']} live); records {st['records']} in "
          f"{st['frames']} frames; {st['rates']['records_per_s']:.0f} records/s now")
    print(f"duplicates {st['duplicates']}, gaps {st['gaps']}, probe drops {st['dropped']}, "
          f"missing (may still arrive) {st['missing']}")
    rej = ", ".join(f"{k} {v}" for k, v in sorted(st["rejected"].items())) or "none"
    print(f"rejected frames {st['rejected_total']}: {rej}")
    err = st.get("store_error")
    if err:  # disk full or I/O error: the daemon is up but acks nothing until it can write
        print(f"STORE ERROR since {time.strftime('%H:%M:%S', time.localtime(err['since']))}, "
              f"not acking (probes keep their records), retry {err['retries']}: {err['error']}")
    q = st["queues"]
    hooks = ", ".join(f"{k} {v}" for k, v in q["hooks"].items())
    print(f"queues: pending rows {q['pending_rows']}; hooks: {hooks}")
    print(f"publish seq {st['publish']['seq']} (dropped {st['publish']['dropped']}); "
          f"alerts {st['alerts']}; rss {st['rss_bytes'] / 2**20:.0f} MiB")
    reply = _request(args, "runs")
    _names_hint(messages.parse_runs(reply) if reply else [])
    return 0


def _names_hint(runs: list[dict]) -> None:
    """Name the runs that send scalars but never train_acc/val_acc (no phase, no alerts)."""
    blind = [r["run"] for r in runs
             if r.get("last") and TRAIN_ACC not in r["last"] and VAL_ACC not in r["last"]]
    if blind:
        shown = ", ".join(blind[:5]) + (f" and {len(blind) - 5} more" if len(blind) > 5 else "")
        print(f"hint: {len(blind)} run(s) never sent {TRAIN_ACC} or {VAL_ACC}, so they get "
              f"no phase and no alerts: {shown}. Map your names: "
              f"Probe(..., names={{'training/accuracy': '{TRAIN_ACC}', ...}})")


def cmd_export(args: argparse.Namespace) -> int:
    """Print a run's scalars as JSON lines (default) or CSV."""
    if args.db is not None:
        try:
            with _store_ro(args.db) as st:
                if args.run not in st.run_names():
                    return _err(f"no run named {args.run!r} in {args.db}")
                rows: Any = list(st.export_rows(args.run, args.metric))
        except _store_errors() as e:
            return _store_err(e)
    else:
        reply = _request(args, "export", run=args.run, metric=args.metric)
        if reply is None:
            return 1
        rows = messages.parse_export(reply)
    if args.metric is not None and not rows:
        known = _metric_names(args)
        if args.metric not in known:
            return _err(f"run {args.run!r} has no metric {args.metric!r}; it has: "
                        f"{', '.join(sorted(known)) or 'none yet'}")
    out = sys.stdout
    if args.format == "csv":
        w = csv.writer(out)
        w.writerow(["step", "t", "name", "value"])
        for r in rows:
            w.writerow([r["step"], repr(r["t"]), r["name"], repr(r["value"])])
    else:
        for r in rows:
            v = r["value"]
            out.write(json.dumps({"step": r["step"], "t": r["t"], "name": r["name"],
                                  "value": v if math.isfinite(v) else str(v)}) + "\n")
    return 0


def _metric_names(args: argparse.Namespace) -> set[str]:
    """The scalar names a run has sent (from its summary's latest values)."""
    if args.db is not None:
        runs = _summaries_from_store(args.db, args.run)
    else:
        reply = _request(args, "runs", run=args.run)
        runs = messages.parse_runs(reply) if reply else []
    return {n for r in runs if r["run"] == args.run for n in (r.get("last") or {})}


def _print_alert(a: dict, as_json: bool) -> None:
    if as_json:
        print(_dumps(a), flush=True)
    else:
        print(f"{a['time']}  {a['run']}  {a['kind']} {a['status']}  step {a['step']}: "
              f"{a.get('summary', '')}", flush=True)


def _print_hook(h: dict, as_json: bool) -> None:
    if as_json:
        print(_dumps({"hook": h}), flush=True)
    else:
        print(f"{h.get('time', '')}  {h.get('run', '')}  hook {h.get('rule', '')} "
              f"{h.get('alert_kind', '')}: {h.get('result', '')} rc={h.get('rc')}", flush=True)


def cmd_alerts(args: argparse.Namespace) -> int:
    """Print stored alerts (and hook events); with ``--follow`` stream new ones."""
    if args.kind is not None and args.kind not in ALERT_KINDS:
        print(f"grokwatch: no alert kind {args.kind!r}; the kinds are: "
              f"{', '.join(ALERT_KINDS)}", file=sys.stderr)
        return 2
    if args.db is not None:
        try:
            with _store_ro(args.db) as st:
                alerts = st.load_alerts(args.run, args.kind)
                hooks = st.load_hook_events(args.run)
        except _store_errors() as e:
            return _store_err(e)
    else:
        reply = _request(args, "alerts", run=args.run, kind=args.kind)
        if reply is None:
            return 1
        alerts, hooks = messages.parse_alerts(reply)
    if args.json and not args.follow:
        print(_dumps({"alerts": alerts, "hooks": hooks}))
    else:
        for a in alerts:
            _print_alert(a, args.json)
        for h in hooks:
            if args.kind is None or h.get("alert_kind") == args.kind:
                _print_hook(h, args.json)
    if not args.follow:
        return 0
    return _follow(args, {messages.alert_key(a) for a in alerts})


def _follow(args: argparse.Namespace, seen: set[str]) -> int:
    """Stream alerts and hook events from the PUB socket (clone pattern) until interrupted."""
    from grokwatch.client import ClientState, CloneClient
    if args.db is not None:
        return _err("--follow needs a running daemon, not --db")
    cc = CloneClient(args.api, args.pub, snapshot_timeout=args.timeout)
    state = ClientState(max_points=1)  # only its events are printed
    seen_hooks: set[str] = set()
    try:
        while True:
            for kind, msg in cc.poll(timeout=0.5):
                state.apply(kind, msg)
                # After a (re)connect the snapshot's events: print what we missed, once.
                new = state.new_events  # alerts first, then hook events, as stored
                for ev in [e for e in new if e.kind != HOOK] + [e for e in new if e.kind == HOOK]:
                    if ev.kind == HOOK:
                        _follow_hook(ev.raw, args, seen_hooks)
                    else:
                        _follow_alert(ev.raw, args, seen)
                if kind == "disconnected" and not args.json:
                    print("(daemon unreachable; waiting)", file=sys.stderr, flush=True)
    except KeyboardInterrupt:
        return 0
    finally:
        cc.close()


def _follow_alert(a: dict, args: argparse.Namespace, seen: set[str]) -> None:
    key = messages.alert_key(a)
    if key in seen:
        return
    seen.add(key)
    if fnmatch.fnmatchcase(a.get("run", ""), args.run) and (args.kind is None
                                                            or a.get("kind") == args.kind):
        _print_alert(a, args.json)


def _follow_hook(h: dict, args: argparse.Namespace, seen: set[str]) -> None:
    key = messages.hook_key(h)
    if key in seen:
        return
    seen.add(key)
    if fnmatch.fnmatchcase(h.get("run", "") or "", args.run) and (
            args.kind is None or h.get("alert_kind") == args.kind):
        _print_hook(h, args.json)
