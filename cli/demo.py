"""``grokwatch demo``: a daemon, the four presets training, and the TUI on them.

Starts a daemon if none answers at ``--api`` (with a temporary store unless ``--db``
is given), runs the presets as ``grokwatch train`` subprocesses, at most as many at
once as there are usable cores, and opens the TUI. ``--headless`` prints a live
one-line-per-run text view instead and, at the end, each run's phase and alerts; it
needs no terminal. Whatever happens (end, budget, Ctrl-C, SIGTERM), the demo stops
the trainings and the daemon it started, with bounded waits.

torch and textual are imported only by the processes and the command that need them.
"""

from __future__ import annotations

import argparse
import contextlib
import ctypes
import importlib.util
import os
import shutil
import signal
import subprocess
import sys
import tempfile
import threading
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import IO, Any

from grokwatch import client, wire
from grokwatch.client.state import ClientState
from grokwatch.wire import messages
from grokwatch.wire.names import TRAIN_ACC, VAL_ACC

DEFAULT_PRESETS = ("grokking", "memorization", "comprehension", "confusion")  # start order
STOP_TIMEOUT = 5.0  # seconds a training gets after SIGTERM before SIGKILL
DAEMON_STOP_TIMEOUT = 10.0
DAEMON_START_TIMEOUT = 20.0
# Besides Ctrl-C, these stop the demo cleanly (SIGHUP: its terminal went away).
_STOP_SIGNALS = (signal.SIGTERM, signal.SIGHUP)


def usable_cores() -> int:
    """Cores this process may run on (affinity, not the machine's total)."""
    try:
        return max(1, len(os.sched_getaffinity(0)))
    except (AttributeError, OSError):
        return max(1, os.cpu_count() or 1)


def register(sub: argparse._SubParsersAction) -> None:
    """Add the ``demo`` subcommand."""
    from grokwatch.examples.presets import PRESETS

    p = sub.add_parser(
        "demo", help="train the four example presets and watch them live (needs torch)",
        description="Start a daemon if none answers, train the example presets (grokking, "
                    "memorization, comprehension, confusion) and watch them in the TUI.")
    p.add_argument("--headless", action="store_true",
                   help="no TUI: print a live line per run, then each run's phase and alerts")
    p.add_argument("--db", type=Path, default=None,
                   help="store for a daemon the demo starts (default: a temporary one)")
    p.add_argument("--budget", type=float, default=None, metavar="SECONDS",
                   help="stop the trainings after this many seconds (default: let them finish)")
    p.add_argument("--presets", nargs="+", choices=sorted(PRESETS), default=list(DEFAULT_PRESETS),
                   metavar="PRESET", help=f"which presets (default: {' '.join(DEFAULT_PRESETS)})")
    p.add_argument("--jobs", type=int, default=None,
                   help="trainings at once (default: the number of usable cores)")
    p.add_argument("--scale", type=float, default=None,
                   help="multiply each preset's step budget (short demos)")
    p.add_argument("--fast", action="store_true",
                   help="the presets' short test versions (seconds each; for CI and quick looks)")
    p.add_argument("--ingest", default=wire.DEFAULT_INGEST, help="daemon ingest endpoint")
    p.add_argument("--pub", default=wire.DEFAULT_PUB, help="daemon PUB endpoint")
    p.add_argument("--api", default=wire.DEFAULT_API, help="daemon API endpoint")
    p.add_argument("--interval", type=float, default=2.0,
                   help="headless: seconds between status blocks (default 2)")
    p.add_argument("--ascii", action="store_true", help="TUI: plain ASCII drawing")
    p.add_argument("--sweep", action="store_true",
                   help="a 5x4 sweep (weight decay x train fraction) drawing the phase diagram "
                        "in the TUI's phase view (--fast: 3x2, shorter)")
    p.set_defaults(func=cmd_demo)


# ------------------------------------------------------------------ processes


def _libc_prctl() -> Any:
    try:
        return ctypes.CDLL(None, use_errno=True).prctl
    except (OSError, AttributeError):  # not Linux
        return None


_PRCTL = _libc_prctl()  # resolved here: the child after fork must not dlopen


def _die_with_parent() -> None:
    """In the child before exec: get SIGTERM if the demo dies without cleaning up (Linux).

    A safety net only: the demo itself stops its children on every normal way out.
    """
    if _PRCTL is not None:
        _PRCTL(1, signal.SIGTERM)  # PR_SET_PDEATHSIG


def _spawn(cmd: list[str], log: Path, env: dict[str, str] | None = None) -> subprocess.Popen:
    # Own session: a Ctrl-C in the terminal reaches the demo only, which then stops the
    # trainings first and the daemon last, instead of everyone racing.
    with open(log, "wb") as f:
        return subprocess.Popen(cmd, stdin=subprocess.DEVNULL, stdout=f, stderr=subprocess.STDOUT,
                                env=env, start_new_session=True, preexec_fn=_die_with_parent)


def _stop(proc: subprocess.Popen, timeout: float) -> int:
    """SIGTERM, wait ``timeout``, then SIGKILL; returns the exit code."""
    if proc.poll() is None:
        with contextlib.suppress(ProcessLookupError):
            proc.terminate()
        try:
            proc.wait(timeout)
        except subprocess.TimeoutExpired:
            with contextlib.suppress(ProcessLookupError):
                proc.kill()
            proc.wait(5)
    return proc.returncode


@dataclass
class Training:
    """One preset's training subprocess (or its place in the queue)."""

    preset: str
    run: str
    log: Path
    proc: subprocess.Popen | None = None
    state: str = "queued"  # queued | running | done | failed | stopped | skipped
    rc: int | None = None


@dataclass
class Trainings:
    """The queue of preset trainings, at most ``jobs`` running at once."""

    items: list[Training]
    ingest: str
    jobs: int
    scale: float | None = None
    fast: bool = False
    stopping: bool = False
    lock: threading.Lock = field(default_factory=threading.Lock)

    def tick(self) -> None:
        """Reap finished trainings and start queued ones while slots are free."""
        with self.lock:
            for t in self.items:
                if t.state == "running" and t.proc is not None and t.proc.poll() is not None:
                    t.rc = t.proc.returncode
                    t.state = "done" if t.rc == 0 else "failed"
            running = sum(t.state == "running" for t in self.items)
            for t in self.items:
                if self.stopping or running >= self.jobs:
                    break
                if t.state == "queued":
                    cmd = [sys.executable, "-m", "grokwatch", "train", t.preset, "--run", t.run,
                           "--endpoint", self.ingest, "--quiet"]
                    if self.scale is not None:
                        cmd += ["--scale", str(self.scale)]
                    if self.fast:
                        cmd.append("--fast")
                    t.proc = _spawn(cmd, t.log)
                    t.state = "running"
                    running += 1

    def finished(self) -> bool:
        with self.lock:
            return all(t.state not in ("queued", "running") for t in self.items)

    def stop_all(self) -> None:
        """Skip the queue and stop what runs (SIGTERM to all, then bounded waits)."""
        with self.lock:
            self.stopping = True
            for t in self.items:
                if t.state == "queued":
                    t.state = "skipped"
                elif t.state == "running" and t.proc is not None and t.proc.poll() is None:
                    with contextlib.suppress(ProcessLookupError):
                        t.proc.terminate()
            for t in self.items:
                if t.state == "running" and t.proc is not None:
                    t.rc = _stop(t.proc, STOP_TIMEOUT)
                    # 128+SIGTERM is the training's own clean exit on our request.
                    t.state = "done" if t.rc == 0 else (
                        "stopped" if t.rc in (-signal.SIGTERM, 128 + signal.SIGTERM) else "failed")


class OwnDaemon:
    """A daemon subprocess the demo started (and must stop)."""

    def __init__(self, args: argparse.Namespace, workdir: Path) -> None:
        self.db = args.db or workdir / "grokwatch.db"
        self.log = workdir / "daemon.log"
        cmd = [sys.executable, "-m", "grokwatch", "daemon", "--ingest", args.ingest,
               "--pub", args.pub, "--api", args.api, "--db", str(self.db)]
        self.proc = _spawn(cmd, self.log)

    def wait_ready(self, api: str, timeout: float = DAEMON_START_TIMEOUT) -> str | None:
        """None once ``ping`` answers, else why not (the daemon's own words)."""
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            if self.proc.poll() is not None:
                return f"the daemon exited with {self.proc.returncode}:\n{self.log_text()}"
            try:
                client.request(api, "ping", timeout=0.5)
                return None
            except client.DaemonUnavailable:
                continue
        return f"the daemon did not answer within {timeout:g} s:\n{self.log_text()}"

    def log_text(self) -> str:
        try:
            return self.log.read_text(errors="replace")[-4000:]
        except OSError:
            return ""

    def stop(self) -> int:
        return _stop(self.proc, DAEMON_STOP_TIMEOUT)


# ------------------------------------------------------------------ headless view


def _f(v: Any, spec: str = ".3f") -> str:
    return format(v, spec) if isinstance(v, (int, float)) else "-"


def run_line(t: Training, summary: dict | None) -> str:
    """One line of the live view for one training."""
    if summary is None:
        return f"{t.run:16s} {t.state:8s}"
    last = summary.get("last") or {}
    onset = summary.get("onset_step")
    return (f"{t.run:16s} {t.state:8s} step {_f(summary.get('step'), '>5')}  "
            f"phase {summary.get('phase') or '-':13s} train_acc {_f(last.get(TRAIN_ACC))}  "
            f"val_acc {_f(last.get(VAL_ACC))}  onset {onset if onset is not None else '-'}")


def _alert_text(a: dict) -> str:
    status = "" if a.get("status", "firing") == "firing" else f" ({a.get('status')})"
    return f"{a.get('kind')}@{a.get('step')}{status}"


def final_report(api: str, trainings: list[Training], out: IO[str]) -> None:
    """Each run's phase and alerts, asked from the daemon (the authority, not the stream)."""
    try:
        runs = {r["run"]: r for r in messages.parse_runs(client.request(api, "runs", timeout=5.0))}
    except (client.DaemonUnavailable, RuntimeError) as e:
        print(f"grokwatch demo: could not read the final state: {e}", file=out)
        runs = {}
    print("\n== final ==", file=out)
    for t in trainings:
        r = runs.get(t.run)
        phase = (r or {}).get("phase") or "-"
        print(f"{t.run:16s} {t.state:8s} phase {phase:13s} step {_f((r or {}).get('step'), '>5')}  "
              f"onset {(r or {}).get('onset_step') if r and r.get('onset_step') is not None else '-'}",
              file=out)
        try:
            alerts = messages.parse_alerts(client.request(api, "alerts", run=t.run, timeout=5.0))[0]
        except (client.DaemonUnavailable, RuntimeError):
            alerts = []
        print(f"  alerts: {', '.join(_alert_text(a) for a in alerts) or 'none'}", file=out)
    out.flush()


def headless(args: argparse.Namespace, q: Trainings, deadline: float | None,
             out: IO[str]) -> None:
    """Live text view until every training ends or the budget runs out."""
    cc = client.CloneClient(args.api, args.pub)
    board = ClientState(max_points=1)  # the view prints summaries only
    tty = out.isatty()
    drawn = 0
    t0 = time.monotonic()
    next_draw = t0
    try:
        while True:
            q.tick()
            for kind, msg in cc.poll(timeout=0.2):
                board.apply(kind, msg)
            now = time.monotonic()
            done = q.finished()
            if deadline is not None and now >= deadline and not done:
                print(f"grokwatch demo: budget of {args.budget:g} s reached; stopping the "
                      "trainings", file=out, flush=True)
                q.stop_all()
                done = True
                drawn = 0  # the message broke the in-place block: draw the next one below
            if now >= next_draw or done:
                lines = [f"[{now - t0:6.1f} s]"] + [run_line(t, board.summary(t.run))
                                                     for t in q.items]
                if tty and drawn:
                    out.write(f"\x1b[{drawn}F\x1b[J")  # redraw in place on a terminal
                out.write("\n".join(lines) + "\n")
                out.flush()
                drawn = len(lines)
                next_draw = now + args.interval
            if done:
                break
    finally:
        cc.close()


# ------------------------------------------------------------------ the command


def cmd_demo(args: argparse.Namespace) -> int:
    """Run the demo; 0 when every training ended or was stopped by the budget."""
    why = _bad_args(args)
    if why is not None:
        print(f"grokwatch demo: {why}", file=sys.stderr)
        return 2
    demo = Demo(args, sys.stdout)
    # SIGTERM and SIGHUP (the terminal went away) take the same clean path as Ctrl-C.
    old_handlers = {s: signal.signal(s, _raise_interrupt) for s in _STOP_SIGNALS}
    try:
        why = demo.connect()
        if why is not None:
            print(f"grokwatch demo: {why}", file=sys.stderr)
            return 1
        if args.sweep:
            from grokwatch.cli.sweep import demo_sweep

            return demo_sweep(demo)
        return demo.run()
    except KeyboardInterrupt:
        print("grokwatch demo: interrupted; stopping", file=sys.stderr)
        return 130
    except BrokenPipeError:
        # The reader of the headless view went away (e.g. `| head`): stop quietly, and keep
        # Python from complaining again when it flushes stdout at exit.
        with contextlib.suppress(OSError):
            os.dup2(os.open(os.devnull, os.O_WRONLY), sys.stdout.fileno())
        return 1
    finally:
        for s, h in old_handlers.items():
            signal.signal(s, h)
        demo.close()


def _bad_args(args: argparse.Namespace) -> str | None:
    """Why these arguments cannot run a demo, or None."""
    if args.jobs is not None and args.jobs < 1:
        return "--jobs must be >= 1"
    if args.budget is not None and not args.budget > 0:
        return "--budget must be > 0 seconds"
    if not args.interval > 0:
        return "--interval must be > 0 seconds"
    if args.scale is not None and not args.scale > 0:
        return "--scale must be > 0"
    if importlib.util.find_spec("torch") is None:
        return "the example trainings need torch: pip install 'grokwatch[torch]'"
    return None


class Demo:
    """One demo: its work folder, the daemon it may start and the trainings' queue.

    :meth:`close` stops whatever was started, whatever state the demo is in.
    """

    def __init__(self, args: argparse.Namespace, out: IO[str]) -> None:
        self.args, self.out = args, out
        self.workdir = Path(tempfile.mkdtemp(prefix="grokwatch-demo-"))
        self.daemon: OwnDaemon | None = None
        self.q: Trainings | None = None
        self.suffix = ""  # added to the run names

    def connect(self) -> str | None:
        """Use the daemon answering at ``--api``, else start one; None, or why not."""
        args = self.args
        try:
            client.request(args.api, "ping", timeout=1.0)
            print(f"grokwatch demo: using the daemon at {args.api}", file=self.out, flush=True)
            self.suffix = time.strftime("-%H%M%S")  # its store may hold older demo runs
            return None
        except client.DaemonUnavailable:
            pass
        self.daemon = OwnDaemon(args, self.workdir)  # set first: close() stops it
        why = self.daemon.wait_ready(args.api)
        if why is not None:
            return why
        where = args.db if args.db else "a temporary store (--db PATH keeps it)"
        print(f"grokwatch demo: started a daemon at {args.api} with {where}", file=self.out,
              flush=True)
        return None

    def run(self) -> int:
        """Train and watch (TUI or headless), then report; 1 if a training failed."""
        args, out = self.args, self.out
        items = [Training(p, p + self.suffix, self.workdir / f"train-{p}.log")
                 for p in args.presets]
        q = self.q = Trainings(items, args.ingest, args.jobs or usable_cores(), args.scale,
                               args.fast)
        deadline = None if args.budget is None else time.monotonic() + args.budget
        if args.headless:
            headless(args, q, deadline, out)
        else:
            _tui(args, q, deadline)
        q.stop_all()
        final_report(args.api, q.items, out)  # after the TUI too: what it showed, in text
        failed = [t for t in q.items if t.state == "failed"]
        for t in failed:
            print(f"grokwatch demo: training {t.run} failed with exit code {t.rc}; its log:\n"
                  f"{_tail(t.log)}", file=sys.stderr)
        return 1 if failed else 0

    def close(self) -> None:
        """Stop the trainings, then the daemon the demo started; remove the work folder."""
        # Shutdown must finish even if a second Ctrl-C arrives meanwhile.
        old_int = signal.signal(signal.SIGINT, signal.SIG_IGN)
        try:
            if self.q is not None:
                self.q.stop_all()
            if self.daemon is not None:
                self.daemon.stop()
        finally:
            signal.signal(signal.SIGINT, old_int)
            shutil.rmtree(self.workdir, ignore_errors=True)


def _raise_interrupt(signum: int, frame: Any) -> None:
    raise KeyboardInterrupt


def _tail(path: Path, n: int = 2000) -> str:
    try:
        return path.read_text(errors="replace")[-n:]
    except OSError:
        return "(no log)"


def _tui(args: argparse.Namespace, q: Trainings, deadline: float | None) -> None:
    """The TUI in the main thread; a supervisor thread feeds the queue meanwhile."""
    from grokwatch.tui.app import GrokwatchApp

    app = GrokwatchApp(api=args.api, pub=args.pub, ascii=args.ascii)
    quit_ = threading.Event()

    def supervise() -> None:
        while not quit_.wait(0.5):
            if deadline is not None and time.monotonic() >= deadline:
                q.stop_all()  # the TUI stays open on the finished runs
                return
            q.tick()

    sup = threading.Thread(target=supervise, name="grokwatch-demo-supervisor", daemon=True)
    old_handlers = {s: signal.signal(s, lambda n, f: app.exit()) for s in _STOP_SIGNALS}
    sup.start()
    try:
        app.run()
    finally:
        for s, h in old_handlers.items():
            signal.signal(s, h)
        quit_.set()
        sup.join(STOP_TIMEOUT + 5)
