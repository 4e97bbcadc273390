"""``grokwatch replay``: run the daemon's detectors over a stored or exported run.

``grokwatch replay --db PATH [RUN]`` reads the SQLite store read-only (safe
while the daemon runs) and feeds each run's records, in arrival order, to a
fresh :class:`~grokwatch.daemon.detectors.RunDetector` exactly as the daemon
does (a ``hello`` starts a fresh detector, a ``bye`` ends the run).
``grokwatch replay FILE [RUN]`` reads ``grokwatch export RUN --format jsonl``
rows ``{step, t, name, value}``; consecutive rows with the same step and time
form one scalars record. Alerts are printed as JSON lines (the same maps the
daemon stores). Silence (``stalled``/``lost``) and ``dropped`` alerts depend
on the live transport and the daemon's clock, so replay does not produce them.
"""

from __future__ import annotations

import argparse
import fnmatch
import json
import math
import sys
from collections.abc import Iterator
from pathlib import Path
from typing import Any

from grokwatch.cli.output import dumps

Record = tuple[str, int | None, float, Any]  # kind, step, t, data


class ReplayError(ValueError):
    """The input cannot be replayed; ``str(e)`` is one line for the user."""


def register(sub: argparse._SubParsersAction) -> None:
    """Add the ``replay`` subcommand."""
    p = sub.add_parser(
        "replay", help="run the detectors over a stored or exported run; print alerts as JSON",
        description="Replay stored runs (--db PATH [RUN]) or an exported JSONL file "
                    "(FILE [RUN]) through the daemon's detectors and print the alerts "
                    "as JSON lines.")
    p.add_argument("--db", type=Path, default=None, help="a grokwatch SQLite store (read-only)")
    p.add_argument("args", nargs="*", metavar="FILE|RUN",
                   help="with --db: [RUN] (a glob; default all runs); else: FILE [RUN]")
    p.set_defaults(func=cmd_replay)


def _float(v: Any, where: str) -> float:
    if isinstance(v, bool) or not isinstance(v, (int, float, str)):
        raise ReplayError(f"{where}: value must be a number")
    try:
        return float(v)  # export writes non-finite values as "nan", "inf", "-inf"
    except ValueError:
        raise ReplayError(f"{where}: value {v!r} is not a number") from None


def jsonl_records(lines: Iterator[str], source: str) -> Iterator[Record]:
    """Scalars records rebuilt from export rows (consecutive rows sharing step and t)."""
    cur: tuple[int, float] | None = None
    vals: dict[str, float] = {}
    for no, line in enumerate(lines, 1):
        if not line.strip():
            continue
        where = f"{source}:{no}"
        try:
            row = json.loads(line)
        except json.JSONDecodeError as e:
            raise ReplayError(f"{where}: not JSON ({e.msg})") from None
        if not isinstance(row, dict) or not {"step", "t", "name", "value"} <= row.keys():
            raise ReplayError(f"{where}: expected an object with step, t, name, value")
        step, t, name = row["step"], row["t"], row["name"]
        if isinstance(step, bool) or not isinstance(step, int) or step < 0:
            raise ReplayError(f"{where}: step must be a non-negative integer")
        if not isinstance(name, str) or not name:
            raise ReplayError(f"{where}: name must be a non-empty string")
        t = _float(t, where)
        if not math.isfinite(t):
            raise ReplayError(f"{where}: t must be finite")
        key = (step, t)
        if cur is not None and key != cur:
            yield "scalars", cur[0], cur[1], vals
            vals = {}
        cur = key
        vals[name] = _float(row["value"], where)
    if cur is not None:
        yield "scalars", cur[0], cur[1], vals


def replay_records(run: str, records: Iterator[Record], *, modulus: int | None = None,
                   config: dict | None = None, lost_after: float = 60.0) -> list[dict]:
    """Feed one run's records through the detectors as the daemon does; return alert maps."""
    from grokwatch.daemon.detectors import RunDetector

    labels = dict(config or {})
    det = RunDetector(run, modulus=modulus, config=config, lost_after=lost_after)
    out: list[dict] = []
    step_now = 0
    hellos = 0  # sessions: the daemon labels a rerun's alerts with its session
    for kind, step, t, data in records:
        alerts = []
        if kind == "hello":
            hellos += 1
            labels = dict(data.get("config") or {})
            if hellos > 1:
                labels["session"] = hellos
            det = RunDetector(run, modulus=data.get("modulus"), config=data.get("config"),
                              lost_after=lost_after)
        elif kind == "scalars":
            step_now = step if step is not None else step_now
            alerts = det.on_scalars(step_now, t, data)
        elif kind == "bye":
            alerts = det.on_bye(step_now, t)
        for a in alerts:
            if not a.labels:
                a.labels = dict(labels)
            elif "session" in labels:
                a.labels["session"] = labels["session"]
            out.append(a.to_wire())
    return out


def _sessions_in_time_order(st: Any, run: str) -> Iterator[Record]:
    """A run's records, session after session in the order they began.

    The store keys records by (sid, seq) and a session id says nothing about
    time, so sessions are ordered by their first record's time (seq order within).
    """
    sessions: dict[int, list[Record]] = {}
    for sid, _seq, kind, step, t, data in st.iter_records(run, ("hello", "scalars", "bye")):
        sessions.setdefault(sid, []).append((kind, step, t, data))
    for recs in sorted(sessions.values(), key=lambda r: r[0][2]):
        yield from recs


def _db_runs(db: Path, pattern: str) -> Iterator[dict]:
    import sqlite3

    from grokwatch.daemon.store import StoreError, open_store

    if not db.exists():
        raise ReplayError(f"no store at {db}")
    try:
        st = open_store(db, readonly=True)
    except (StoreError, sqlite3.Error) as e:
        raise ReplayError(str(e).splitlines()[0] if str(e) else f"cannot open {db}") from None
    try:
        infos = st.load_runs()
        names = [n for n in infos if fnmatch.fnmatchcase(n, pattern)]
        if not names:
            raise ReplayError(f"no run matching {pattern!r} in {db}")
        for name in names:
            info = infos[name]
            yield from replay_records(name, _sessions_in_time_order(st, name),
                                      modulus=info.get("modulus"),
                                      config=info.get("config"))
    except sqlite3.Error as e:
        raise ReplayError(f"{db}: {str(e).splitlines()[0]}") from None
    finally:
        st.close()


def cmd_replay(args: argparse.Namespace) -> int:
    """Print the alerts the detectors raise over the given run(s), one JSON map per line."""
    try:
        if args.db is not None:
            if len(args.args) > 1:
                raise ReplayError("with --db give at most one RUN")
            alerts: Any = _db_runs(args.db, args.args[0] if args.args else "*")
        else:
            if not args.args or len(args.args) > 2:
                raise ReplayError("give --db PATH [RUN] or FILE [RUN]")
            path = Path(args.args[0])
            run = args.args[1] if len(args.args) > 1 else path.stem
            try:
                fh = sys.stdin if str(path) == "-" else path.open(encoding="utf-8")
            except OSError as e:
                raise ReplayError(f"cannot read {path}: {e.strerror}") from None
            with fh:
                alerts = replay_records(run, jsonl_records(iter(fh), str(path)))
        for a in alerts:
            sys.stdout.write(dumps(a, default=str) + "\n")
        sys.stdout.flush()
    except ReplayError as e:
        print(f"grokwatch replay: {e}", file=sys.stderr)
        return 2
    return 0
