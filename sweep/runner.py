"""Run a sweep's trials: bounded parallel processes (or Ray tasks), progress, resume, early stop.

Each trial is one process (``grokwatch train PRESET --flags`` or the user's argv) with
one torch thread by default (``OMP_NUM_THREADS``/``MKL_NUM_THREADS`` and
``--threads``), its own session (a Ctrl-C reaches only the sweep, which then stops the
trials itself) and the environment that names its run and labels its config
(:data:`grokwatch.wire.names.SWEEP_RUN_ENV`, ``SWEEP_LABELS_ENV``).

The daemon is the authority on phases: the runner reads run summaries with the client
API (``runs``) to skip trials already finished in the store (resume) and to end a trial
once its phase is settled (:class:`PhaseWatch`). A trial that exits non-zero on its own
is marked failed (its run's config then says ``sweep_status = "failed"``, so the
diagram shows it) and the sweep goes on.
"""

from __future__ import annotations

import contextlib
import json
import os
import shutil
import signal
import subprocess
import sys
import tempfile
import threading
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import IO, Any, Protocol

from grokwatch import client, wire
from grokwatch.sweep.spec import EarlyStop, SweepSpec, Trial

STOP_TIMEOUT = 5.0  # seconds a trial gets after SIGTERM before SIGKILL
GENERALIZED = ("comprehension", "grokking")
SETTLED = ("memorization", "confusion")
FAILED, STOPPED = "failed", "stopped"  # config sweep_status of a trial that did not finish
# queued -> running -> done | early | failed | stopped; skipped: finished before (resume);
# unstarted: still queued when the sweep was stopped
ENDED = ("done", "early", "failed", "stopped", "skipped", "unstarted")


# ------------------------------------------------------------------ early stop


class PhaseWatch:
    """Decides from a run's successive summaries when its phase is settled.

    Pure bookkeeping on (phase, step, val acc): the step at which the current phase
    was first seen, and since when validation has held ``generalized_at``.
    """

    def __init__(self, rules: EarlyStop) -> None:
        self.rules = rules
        self.phase: str | None = None
        self.phase_since: int = 0
        self.gen_since: int | None = None

    def update(self, summary: dict[str, Any]) -> str | None:
        """Feed one summary; return why to stop (``"generalized"``, the phase) or None."""
        phase = str(summary.get("phase") or "starting")
        step = int(summary.get("step") or 0)
        val = (summary.get("last") or {}).get(wire.names.VAL_ACC)
        if phase != self.phase:
            self.phase, self.phase_since = phase, step
        r = self.rules
        if phase in GENERALIZED and isinstance(val, (int, float)) and val >= r.generalized_at:
            if self.gen_since is None:
                self.gen_since = step
        else:
            self.gen_since = None
        if (r.generalized_for is not None and self.gen_since is not None
                and step - self.gen_since >= r.generalized_for):
            return "generalized"
        need = r.settled_after(phase) if phase in SETTLED else None
        if need is not None and step - self.phase_since >= need:
            return phase
        return None


# ------------------------------------------------------------------ backends


class Backend(Protocol):
    def start(self, trial: Trial, env: dict[str, str], log: Path) -> Any: ...
    def poll(self, handle: Any) -> int | None: ...
    def terminate(self, handle: Any) -> None: ...
    def stop(self, handle: Any, timeout: float) -> int | None: ...
    def close(self) -> None: ...


PYTHON = "{python}"  # argv[0] of a preset trial: the interpreter where the trial runs


def _argv(argv: list[str]) -> list[str]:
    return [sys.executable if i == 0 and a == PYTHON else a for i, a in enumerate(argv)]


class LocalBackend:
    """Trials as child processes of this one."""

    def start(self, trial: Trial, env: dict[str, str], log: Path) -> subprocess.Popen:
        with open(log, "wb") as f:
            return subprocess.Popen(_argv(trial.argv), stdin=subprocess.DEVNULL, stdout=f,
                                    stderr=subprocess.STDOUT, env={**os.environ, **env},
                                    start_new_session=True)

    def poll(self, handle: subprocess.Popen) -> int | None:
        return handle.poll()

    def terminate(self, handle: subprocess.Popen) -> None:
        if handle.poll() is None:
            with contextlib.suppress(ProcessLookupError):
                handle.terminate()

    def stop(self, handle: subprocess.Popen, timeout: float) -> int | None:
        if handle.poll() is None:
            with contextlib.suppress(ProcessLookupError):
                handle.terminate()
            try:
                handle.wait(timeout)
            except subprocess.TimeoutExpired:
                with contextlib.suppress(ProcessLookupError):
                    handle.kill()
                handle.wait(5)
        return handle.returncode

    def close(self) -> None:
        pass


# ------------------------------------------------------------------ trials


@dataclass
class TrialState:
    trial: Trial
    state: str = "queued"
    rc: int | None = None
    handle: Any = None
    started: float | None = None
    seconds: float = 0.0
    why: str | None = None  # early stop reason
    phase: str | None = None  # last phase the daemon said
    step: int | None = None
    watch: PhaseWatch | None = None
    log: Path | None = None


@dataclass
class Result:
    trials: list[TrialState]
    interrupted: bool = False
    wall: float = 0.0
    counts: dict[str, int] = field(default_factory=dict)

    @property
    def rc(self) -> int:
        if self.interrupted:
            return 130
        return 1 if any(t.state == FAILED for t in self.trials) else 0


def _fmt_s(s: float | None) -> str:
    if s is None:
        return "-"
    s = int(round(s))
    return f"{s // 60}m{s % 60:02d}s" if s >= 60 else f"{s}s"


class Runner:
    """Runs ``spec``'s trials against the daemon at ``api`` (reads) / ``ingest`` (probes).

    ``jobs``: trials at once. ``out``: where progress goes (a terminal gets one line
    redrawn in place). ``mark``: report failed/stopped trials to the daemon (see module
    doc). Call :meth:`run`; it returns a :class:`Result`, also after Ctrl-C.
    """

    def __init__(self, spec: SweepSpec, *, api: str = wire.DEFAULT_API,
                 ingest: str = wire.DEFAULT_INGEST, jobs: int | None = None,
                 backend: Backend | None = None, out: IO[str] | None = None,
                 logdir: Path | None = None, resume: bool = True, mark: bool = True,
                 progress_every: float = 10.0,
                 on_tick: Callable[[Runner], None] | None = None,
                 stop: threading.Event | None = None) -> None:
        self.spec, self.api, self.ingest = spec, api, ingest
        self.jobs = max(1, jobs or spec.jobs or usable_cores())
        self.backend = backend or LocalBackend()
        self.out = out if out is not None else sys.stdout
        self._own_logdir = logdir is None
        self.logdir = Path(logdir or tempfile.mkdtemp(prefix=f"grokwatch-sweep-{spec.name}-"))
        self.logdir.mkdir(parents=True, exist_ok=True)
        self.resume, self.mark = resume, mark
        self.progress_every = progress_every
        self.on_tick = on_tick
        self.stop = stop  # set from another thread: stop like Ctrl-C
        trials = spec.trial_list(ingest, python=PYTHON)
        self.trials = [TrialState(t, log=self.logdir / f"trial-{t.index:04d}.log")
                       for t in trials]
        self._tty = hasattr(self.out, "isatty") and self.out.isatty()
        self._t0 = time.monotonic()
        self._last_line = 0.0
        self._last_poll = 0.0
        self.polls = 0  # `runs` requests made (early stop / resume)

    # -------------------------------------------------------------- daemon
    def daemon_runs(self, timeout: float = 5.0) -> dict[str, dict]:
        """This sweep's run summaries in the daemon, by run name."""
        reply = client.request(self.api, "runs", run=f"{self.spec.name}-*", timeout=timeout)
        self.polls += 1
        return {r["run"]: r for r in reply.get("runs", [])
                if (r.get("config") or {}).get("sweep") == self.spec.name}

    def _skip_finished(self) -> None:
        try:
            runs = self.daemon_runs()
        except (client.DaemonUnavailable, RuntimeError) as e:
            self._say(f"sweep {self.spec.name}: cannot ask the daemon which trials finished "
                      f"({e}); running them all")
            return
        for ts in self.trials:
            r = runs.get(ts.trial.run)
            if r is not None and finished(r):
                ts.state, ts.phase, ts.step = "skipped", r.get("phase"), r.get("step")
        n = sum(ts.state == "skipped" for ts in self.trials)
        if n:
            self._say(f"sweep {self.spec.name}: {n} trial(s) already finished in the store: "
                      "skipped")

    # -------------------------------------------------------------- loop
    def run(self) -> Result:
        """Run every trial; Ctrl-C (KeyboardInterrupt) stops the sweep cleanly."""
        self._t0 = time.monotonic()
        n = len(self.trials)
        self._say(f"sweep {self.spec.name}: {n} trials over {', '.join(self.spec.axis_names)}, "
                  f"{self.jobs} at once; logs in {self.logdir}"
                  + (" (kept if a trial fails)" if self._own_logdir else ""))
        interrupted = False
        try:
            if self.resume:
                self._skip_finished()
            while True:
                if self.stop is not None and self.stop.is_set():
                    raise KeyboardInterrupt
                self.tick()
                if all(ts.state in ENDED for ts in self.trials):
                    break
                time.sleep(0.05)
        except KeyboardInterrupt:
            interrupted = True
            self.stop_all()
        finally:
            with contextlib.suppress(Exception):
                self.backend.close()
        res = Result(self.trials, interrupted, time.monotonic() - self._t0, self.counts())
        self._progress(force=True)
        self._final(res)
        if self._own_logdir and not any(ts.state == FAILED for ts in self.trials):
            shutil.rmtree(self.logdir, ignore_errors=True)
        return res

    def tick(self) -> None:
        """Reap ended trials, apply early stop rules, start queued trials."""
        now = time.monotonic()
        for ts in self.trials:
            if ts.state != "running":
                continue
            rc = self.backend.poll(ts.handle)
            if rc is not None:
                self._ended(ts, rc)
        if self.spec.stop.active and now - self._last_poll >= self.spec.stop.poll:
            self._last_poll = now
            self._early_stop()
        running = sum(ts.state == "running" for ts in self.trials)
        for ts in self.trials:
            if running >= self.jobs:
                break
            if ts.state == "queued":
                self._start(ts)
                running += 1
        if self.on_tick is not None:
            self.on_tick(self)
        self._progress()

    def _start(self, ts: TrialState) -> None:
        t = self.spec.threads
        env = {"OMP_NUM_THREADS": str(t), "MKL_NUM_THREADS": str(t),
               wire.names.SWEEP_RUN_ENV: ts.trial.run,
               wire.names.SWEEP_LABELS_ENV: json.dumps(ts.trial.labels),
               wire.names.ENDPOINT_ENV: self.ingest}
        ts.started = time.monotonic()
        ts.state = "running"
        ts.watch = PhaseWatch(self.spec.stop)
        try:
            ts.handle = self.backend.start(ts.trial, env, ts.log or Path(os.devnull))
        except OSError as e:  # e.g. the program vanished since the spec was checked
            ts.state, ts.rc, ts.why = FAILED, None, str(e)
            ts.seconds = 0.0
            self._line(ts)

    def _ended(self, ts: TrialState, rc: int) -> None:
        ts.rc = rc
        ts.seconds = time.monotonic() - (ts.started or time.monotonic())
        if ts.why is not None:  # we stopped it: its phase was settled
            ts.state = "early"
        elif rc == 0:
            ts.state = "done"
        else:
            ts.state = FAILED
            if self.mark:
                self._mark(ts, FAILED)
        self._line(ts)

    def _early_stop(self) -> None:
        live = [ts for ts in self.trials if ts.state == "running" and ts.why is None]
        if not live:
            return
        try:
            runs = self.daemon_runs(timeout=2.0)
        except (client.DaemonUnavailable, RuntimeError):
            return  # no word from the daemon: let the trials run
        for ts in live:
            r = runs.get(ts.trial.run)
            if r is None or r.get("state") != "live":
                continue
            ts.phase, ts.step = r.get("phase"), r.get("step")
            assert ts.watch is not None
            why = ts.watch.update(r)
            if why is not None:
                ts.why = why
                with contextlib.suppress(Exception):
                    # SIGTERM: `grokwatch train` ends at the next step and says bye.
                    self.backend.terminate(ts.handle)

    def stop_all(self) -> None:
        """Skip the queue; stop running trials (SIGTERM, bounded wait), mark them stopped."""
        main = threading.current_thread() is threading.main_thread()
        # A second Ctrl-C waits for this.
        old = signal.signal(signal.SIGINT, signal.SIG_IGN) if main else None
        try:
            running = [ts for ts in self.trials if ts.state == "running"]
            for ts in running:
                with contextlib.suppress(Exception):
                    self.backend.terminate(ts.handle)  # signal them all first
            for ts in running:
                rc = self.backend.stop(ts.handle, STOP_TIMEOUT)
                ts.rc = rc
                ts.seconds = time.monotonic() - (ts.started or time.monotonic())
                if ts.why is not None:
                    ts.state = "early"
                else:
                    ts.state = STOPPED
                    if self.mark:
                        self._mark(ts, STOPPED)
            for ts in self.trials:
                if ts.state == "queued":
                    ts.state = "unstarted"
        finally:
            if main:
                signal.signal(signal.SIGINT, old)

    def _mark(self, ts: TrialState, status: str) -> None:
        """Tell the daemon a trial did not finish (its config: sweep_status), in a child
        process so no probe lives in the runner (its signal handling stays ours)."""
        config = {**ts.trial.labels, "sweep_status": status, "sweep_rc": ts.rc}
        code = ("import json,sys\nfrom grokwatch.probe import Probe\n"
                "p = Probe(sys.argv[1], endpoint=sys.argv[2], config=json.loads(sys.argv[3]))\n"
                "p.close(3.0)\n")
        env = {k: v for k, v in os.environ.items()
               if k not in (wire.names.SWEEP_RUN_ENV, wire.names.SWEEP_LABELS_ENV)}
        env[wire.names.SIGTERM_ENV] = "0"
        with contextlib.suppress(OSError, subprocess.TimeoutExpired):
            subprocess.run([sys.executable, "-c", code, ts.trial.run, self.ingest,
                            json.dumps(config)], env=env, timeout=15,
                           stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)

    # -------------------------------------------------------------- output
    def counts(self) -> dict[str, int]:
        c = {k: 0 for k in ("queued", "running", *ENDED)}
        for ts in self.trials:
            c[ts.state] += 1
        return c

    def eta(self) -> float | None:
        """Seconds left: mean trial time x work left / jobs (None before any trial ended)."""
        took = [ts.seconds for ts in self.trials if ts.state in ("done", "early", FAILED)]
        if not took:
            return None
        mean = sum(took) / len(took)
        now = time.monotonic()
        left = sum(ts.state == "queued" for ts in self.trials) * mean
        left += sum(max(mean - (now - (ts.started or now)), 0.0)
                    for ts in self.trials if ts.state == "running")
        return left / self.jobs

    def status_line(self) -> str:
        c = self.counts()
        done = c["done"] + c["early"] + c["failed"] + c["skipped"] + c["stopped"]
        extra = ", ".join(f"{c[k]} {k}" for k in ("early", "failed", "skipped", "stopped")
                          if c[k])
        return (f"sweep {self.spec.name}: {done}/{len(self.trials)} done"
                + (f" ({extra})" if extra else "")
                + f", {c['running']} running, {c['queued'] + c['unstarted']} left; "
                f"elapsed {_fmt_s(time.monotonic() - self._t0)}, ETA {_fmt_s(self.eta())}")

    def _progress(self, force: bool = False) -> None:
        now = time.monotonic()
        if self._tty:
            if force or now - self._last_line >= 0.5:
                self.out.write("\r\x1b[K" + self.status_line())
                self.out.flush()
                self._last_line = now
        elif force or now - self._last_line >= self.progress_every:
            self._say(self.status_line())
            self._last_line = now

    def _say(self, text: str) -> None:
        if self._tty:
            self.out.write("\r\x1b[K")
        self.out.write(text + "\n")
        self.out.flush()

    def _line(self, ts: TrialState) -> None:
        how = ts.state + (f" ({ts.why})" if ts.why else "")
        rc = f" exit {ts.rc}" if ts.state == FAILED else ""
        self._say(f"  {how:24s} {ts.trial.run}  {_fmt_s(ts.seconds)}{rc}")
        if ts.state == FAILED and ts.log is not None:
            tail = _tail(ts.log, 600).strip()
            if tail:
                self._say("    " + tail.replace("\n", "\n    "))

    def _final(self, res: Result) -> None:
        c = res.counts
        finished = [ts.trial.run for ts in self.trials if ts.state in ("done", "early")]
        if res.interrupted:
            self._say(f"sweep {self.spec.name}: interrupted after {_fmt_s(res.wall)}: "
                      f"{len(finished)} finished, {c['stopped']} stopped, {c['unstarted']} not "
                      f"started, {c['skipped']} skipped (finished before), {c['failed']} failed")
            for run in finished:
                self._say(f"  finished: {run}")
            self._say("  run the same command again to resume (finished trials are skipped)")
        else:
            self._say(f"sweep {self.spec.name}: all {len(self.trials)} trials ended in "
                      f"{_fmt_s(res.wall)}: {c['done']} done, {c['early']} stopped early, "
                      f"{c['skipped']} skipped, {c['failed']} failed")
        self._say(f"  phases: grokwatch phases {self.spec.name}")


def finished(summary: dict[str, Any]) -> bool:
    """Whether a trial's run finished for good (resume skips it)."""
    status = (summary.get("config") or {}).get("sweep_status")
    return summary.get("state") == "finished" and status not in (FAILED, STOPPED)


def usable_cores() -> int:
    try:
        return max(1, len(os.sched_getaffinity(0)))
    except (AttributeError, OSError):
        return max(1, os.cpu_count() or 1)


def _tail(path: Path, n: int) -> str:
    try:
        return path.read_text(errors="replace")[-n:]
    except OSError:
        return ""
