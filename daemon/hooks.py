"""Alert hooks: run the user's programs on alerts, off the ingest path.

The daemon calls :meth:`HookRunner.submit` on its own thread for every alert;
submit only matches rules and appends to a bounded queue, so it never blocks
and never raises. Worker threads (at most ``concurrency``) start each hook as
a plain argv in its own session (process group), hand it the alert as JSON on
stdin (a temp file, so a hook that never reads stdin cannot block us) and as
``GROKWATCH_*`` variables, and wait on a pidfd: they sleep in the kernel, not
in Python. A hook past its timeout gets SIGTERM and then SIGKILL, sent to its
whole process group. A non-zero exit is retried with exponential backoff,
then logged. Every result (ok, failed, timeout, dropped) becomes a HookEvent
map (see :mod:`grokwatch.client`) that :meth:`HookRunner.drain_events` hands
to the daemon, which stores and publishes it.

Memory stays bounded under an alert storm: the job queue (ready + waiting to
retry) holds at most ``queue_max`` jobs, oldest dropped and counted; the
event buffer and the cooldown table are bounded too.
"""

from __future__ import annotations

import heapq
import logging
import math
import os
import select
import signal
import subprocess
import tempfile
import threading
import time
from collections import deque
from dataclasses import dataclass, field
from typing import Any

from grokwatch.daemon.alert import fingerprint as alert_fingerprint
from grokwatch.daemon.hookrules import Rule, hook_env, hook_payload, render_argv
from grokwatch.wire import messages

__all__ = ["HookRunner"]

log = logging.getLogger("grokwatch.hooks")

KILL_GRACE = 2.0  # seconds between SIGTERM and SIGKILL of a timed-out hook's group
OUTPUT_TAIL = 512  # bytes of a hook's combined stdout/stderr kept in the event's detail
EVENTS_MAX = 10_000  # undrained events kept (a daemon drains every ~100 ms)
COOLDOWN_MAX = 100_000
RATE_PER_MIN = 60  # the daemon's limit: starts of one rule a minute (after as many at once)  # (rule, fingerprint, status) entries remembered
POLL_MAX_MS = 3_600_000  # poll() takes a C int of milliseconds: wait in hour-long slices


@dataclass
class _Job:
    rule: Rule
    alert: dict[str, Any]
    seq: int
    attempts: int = 0
    duration: float = 0.0
    due: float = 0.0  # monotonic time of the next attempt (retries)
    proc: subprocess.Popen[bytes] | None = field(default=None, repr=False)
    cancelled: bool = False

    def __lt__(self, other: _Job) -> bool:  # heap order: due time, then age
        return (self.due, self.seq) < (other.due, other.seq)


class HookRunner:
    """Bounded, concurrent, fire-and-forget execution of hook rules for alerts."""

    def __init__(self, rules: list[Rule], *, queue_max: int = 1000, concurrency: int = 4,
                 kill_grace: float = KILL_GRACE, events_max: int = EVENTS_MAX,
                 rate_per_min: int | None = None) -> None:
        if queue_max < 1 or concurrency < 1:
            raise ValueError("queue_max and concurrency must be at least 1")
        self.rules = list(rules)
        self.queue_max = queue_max
        self.concurrency = concurrency
        self.kill_grace = kill_grace
        self.rate_per_min = rate_per_min  # None: no limit (the daemon passes RATE_PER_MIN)
        self._cv = threading.Condition(threading.Lock())
        self._ready: deque[_Job] = deque()
        self._delayed: list[_Job] = []  # heap of jobs waiting for a retry
        self._running: dict[int, _Job] = {}
        self._events: deque[dict[str, Any]] = deque(maxlen=events_max)
        self._last_fired: dict[tuple[int, str, str], float] = {}
        self._threads: list[threading.Thread] = []
        self._seq = 0
        self._closed = False
        self._counts = {"ok": 0, "failed": 0, "timeout": 0, "dropped": 0, "suppressed": 0,
                        "retried": 0, "errors": 0, "events_lost": 0, "rate_limited": 0}
        self._rate: dict[int, tuple[float, float]] = {}  # rule index -> (tokens, when)

    # -- the daemon's side: never blocks on a hook, never raises --------------

    def submit(self, alert: dict[str, Any]) -> None:
        """Queue the hooks whose rules match ``alert`` (a wire map); drop oldest when full."""
        try:
            self._submit(alert)
        except Exception:  # a bug here must not take the daemon's loop down
            self._counts["errors"] += 1
            log.exception("hook submit failed for alert %.200r", alert)

    def _submit(self, alert: dict[str, Any]) -> None:
        if self._closed or not self.rules:
            return
        matched = [r for r in self.rules if r.matches(alert)]
        if not matched:
            return
        alert = dict(alert)
        fp = str(alert.get("fingerprint") or alert_fingerprint(str(alert.get("run", "")),
                                                             str(alert.get("kind", ""))))
        alert["fingerprint"] = fp
        status = str(alert.get("status", "firing"))
        now = time.monotonic()
        with self._cv:
            if self._closed:
                return
            for rule in matched:
                if rule.cooldown > 0 and not self._cool(rule, fp, status, now):
                    self._counts["suppressed"] += 1
                    continue
                if self.rate_per_min and not self._rate_ok(rule, now):
                    # Cooldowns are per alert series: thousands of runs alerting at once
                    # (a flood, a broken sweep) would each start the program.
                    self._counts["rate_limited"] += 1
                    if self._counts["rate_limited"] == 1:
                        log.warning("hook %r: over %d starts a minute, further alerts for it "
                                    "are counted, not run (status: hooks.rate_limited)",
                                    rule.name, self.rate_per_min)
                    continue
                while len(self._ready) + len(self._delayed) >= self.queue_max:
                    self._drop_oldest()
                self._seq += 1
                self._ready.append(_Job(rule, alert, self._seq))
                self._cv.notify()
            self._spawn_workers()

    def _rate_ok(self, rule: Rule, now: float) -> bool:
        """A token bucket per rule: ``rate_per_min`` starts a minute after as many at once."""
        cap = float(self.rate_per_min or 0)
        tokens, t0 = self._rate.get(rule.index, (cap, now))
        tokens = min(cap, tokens + (now - t0) * cap / 60.0)
        ok = tokens >= 1.0
        self._rate[rule.index] = (tokens - 1.0 if ok else tokens, now)
        return ok

    def _cool(self, rule: Rule, fp: str, status: str, now: float) -> bool:
        """True (and remember now) if this rule may run again for this alert series."""
        # Keyed by status too: a "resolved" must not be swallowed by its own "firing".
        key = (rule.index, fp, status)
        last = self._last_fired.pop(key, None)
        if last is not None and now - last < rule.cooldown:
            self._last_fired[key] = last
            return False
        self._last_fired[key] = now  # re-inserted: dict order = least recently fired first
        if len(self._last_fired) > COOLDOWN_MAX:
            del self._last_fired[next(iter(self._last_fired))]
        return True

    def _drop_oldest(self) -> None:
        job = self._ready.popleft() if self._ready else heapq.heappop(self._delayed)
        self._finish(job, "dropped", None, f"hook queue full ({self.queue_max} jobs): "
                                             f"oldest dropped")

    def _spawn_workers(self) -> None:
        # Started on the first job (a daemon without hooks runs no threads); an idle
        # worker sleeps on the condition variable and costs nothing.
        while len(self._threads) < self.concurrency:
            t = threading.Thread(target=self._worker, name=f"grokwatch-hook-{len(self._threads)}",
                                 daemon=True)
            self._threads.append(t)
            t.start()

    def drain_events(self) -> list[dict[str, Any]]:
        """HookEvent maps finished since the last call, oldest first."""
        with self._cv:
            out = list(self._events)
            self._events.clear()
        return out

    def stats(self) -> dict[str, int]:
        """Counters: queued, running, dropped, ok, failed, timeout (plus suppressed, ...)."""
        with self._cv:
            return {"queued": len(self._ready) + len(self._delayed),
                    "running": len(self._running), **self._counts}

    def wait_idle(self, timeout: float | None = None) -> bool:
        """Block until no hook is queued, waiting to retry or running; False on timeout."""
        deadline = None if timeout is None else time.monotonic() + timeout
        with self._cv:
            while self._ready or self._delayed or self._running:
                left = None if deadline is None else deadline - time.monotonic()
                if left is not None and left <= 0:
                    return False
                self._cv.wait(left)
        return True

    def close(self, timeout: float = 5.0) -> None:
        """Stop: drop queued jobs, give running hooks ``timeout`` s, then kill their groups."""
        with self._cv:
            if self._closed:
                return
            self._closed = True
            while self._ready or self._delayed:
                job = self._ready.popleft() if self._ready else heapq.heappop(self._delayed)
                self._finish(job, "dropped", None, "hook runner closed before it ran")
            self._cv.notify_all()
        deadline = time.monotonic() + max(0.0, timeout)
        for t in self._threads:
            t.join(max(0.0, deadline - time.monotonic()))
        with self._cv:
            left = list(self._running.values())
        for job in left:
            job.cancelled = True
            if job.proc is not None:
                _killpg(job.proc.pid, signal.SIGKILL)
        for t in self._threads:
            t.join(1.0)

    # -- worker threads ------------------------------------------------------

    def _worker(self) -> None:
        while True:
            with self._cv:
                job = self._next_job()
                if job is None:
                    return
                self._running[job.seq] = job
            try:
                result, rc, detail = self._attempt(job)
            except Exception as e:  # never lose a worker to an unexpected error
                log.exception("hook %s crashed", job.rule.name)
                result, rc, detail = "failed", None, f"internal error: {e!r}"
            with self._cv:
                self._running.pop(job.seq, None)
                if result == "failed" and rc is not None and not job.cancelled \
                        and job.attempts <= job.rule.retries and not self._closed:
                    self._retry(job, rc, detail)
                else:
                    self._finish(job, result, rc, detail)
                self._cv.notify_all()

    def _next_job(self) -> _Job | None:
        """Under the lock: the next runnable job, waiting as needed; None once closed."""
        while not self._closed:
            now = time.monotonic()
            while self._delayed and self._delayed[0].due <= now:
                self._ready.append(heapq.heappop(self._delayed))
            if self._ready:
                return self._ready.popleft()
            self._cv.wait(self._delayed[0].due - now if self._delayed else None)
        return None

    def _retry(self, job: _Job, rc: int, detail: str) -> None:
        if len(self._ready) + len(self._delayed) >= self.queue_max:
            self._finish(job, "failed", rc, f"{detail} (retry dropped: hook queue full)")
            return
        self._counts["retried"] += 1
        job.due = time.monotonic() + job.rule.backoff * 2 ** (job.attempts - 1)
        heapq.heappush(self._delayed, job)

    def _attempt(self, job: _Job) -> tuple[str, int | None, str]:
        """Run the hook once; return (result, rc, detail)."""
        rule, alert = job.rule, job.alert
        job.attempts += 1
        with tempfile.TemporaryFile() as fin, tempfile.TemporaryFile() as fout:
            fin.write(hook_payload(alert, rule))
            fin.seek(0)
            t0 = time.monotonic()
            try:
                proc = subprocess.Popen(render_argv(rule.exec, alert), stdin=fin, stdout=fout,
                                        stderr=subprocess.STDOUT, env=hook_env(alert, rule),
                                        start_new_session=True, close_fds=True)
            except (OSError, ValueError) as e:
                return "failed", None, f"cannot start {rule.exec[0]!r}: {e}"
            job.proc = proc
            rc = _wait(proc, rule.timeout)
            timed_out = rc is None
            if timed_out:
                how = self._kill_group(proc)
            rc = proc.wait()
            job.duration += time.monotonic() - t0
            tail = _tail(fout)
        if job.cancelled:
            return "failed", None, f"killed: hook runner closed{_sep(tail)}"
        if timed_out:
            return "timeout", rc, f"killed after {rule.timeout:g} s ({how}){_sep(tail)}"
        if rc == 0:
            return "ok", 0, tail
        why = f"killed by signal {-rc}" if rc < 0 else f"exit status {rc}"
        return "failed", rc, f"{why}{_sep(tail)}"

    def _kill_group(self, proc: subprocess.Popen[bytes]) -> str:
        """SIGTERM the hook's process group, SIGKILL it after the grace period."""
        _killpg(proc.pid, signal.SIGTERM)
        exited = _wait(proc, self.kill_grace, reap=False) is not None
        # SIGKILL regardless: children may ignore TERM after the leader exits;
        # the unreaped leader keeps the group id from being reused meanwhile.
        _killpg(proc.pid, signal.SIGKILL)
        return "SIGTERM" if exited else "SIGKILL"

    def _finish(self, job: _Job, result: str, rc: int | None, detail: str) -> None:
        """Under the lock: count the result and record its HookEvent."""
        self._counts[result] += 1
        now = time.time()
        a = job.alert
        ev = messages.hook_event(t=now, rule=job.rule.name, for_alert=a, result=result, rc=rc,
                                 attempts=job.attempts, duration=job.duration, detail=detail)
        if len(self._events) == self._events.maxlen:
            self._counts["events_lost"] += 1
        self._events.append(ev)
        if result == "dropped":
            n = self._counts["dropped"]
            if n & (n - 1) == 0:  # 1, 2, 4, 8, ...: a storm logs a few lines, not millions
                log.warning("hook queue full: %d hook jobs dropped so far", n)
        elif result != "ok":
            log.warning("hook %r for %s alert on run %r: %s after %d attempt(s): %s",
                        job.rule.name, a.get("kind"), a.get("run"), result, job.attempts,
                        detail)


def _wait(proc: subprocess.Popen[bytes], timeout: float, *, reap: bool = True) -> int | None:
    """Wait up to ``timeout`` s for ``proc`` to exit, sleeping in the kernel (pidfd).

    Returns the exit status (``reap``) or 0 (exited, not reaped), or None on timeout.
    """
    try:
        fd = os.pidfd_open(proc.pid)
    except (AttributeError, OSError):  # no pidfd (old kernel, not Linux): Popen's own loop
        if not reap:
            deadline = time.monotonic() + timeout
            while proc.poll() is None and time.monotonic() < deadline:
                time.sleep(0.02)
            return proc.returncode
        try:
            return proc.wait(timeout)
        except subprocess.TimeoutExpired:
            return None
    try:
        poller = select.poll()
        poller.register(fd, select.POLLIN)
        deadline = time.monotonic() + timeout
        while not poller.poll(min(POLL_MAX_MS, max(0, math.ceil(
                (deadline - time.monotonic()) * 1000)))):
            if time.monotonic() >= deadline:
                return None
    finally:
        os.close(fd)
    return proc.wait() if reap else 0


def _killpg(pgid: int, sig: int) -> None:
    try:
        os.killpg(pgid, sig)
    except (ProcessLookupError, PermissionError):
        pass  # already gone


def _tail(f: Any) -> str:
    """The last few hundred bytes of a hook's output, as one line."""
    size = f.seek(0, os.SEEK_END)
    f.seek(max(0, size - OUTPUT_TAIL))
    text = f.read().decode("utf-8", "replace")
    return ("…" if size > OUTPUT_TAIL else "") + " ".join(text.split())


def _sep(tail: str) -> str:
    return f": {tail}" if tail else ""
