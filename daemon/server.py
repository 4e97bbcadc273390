"""The daemon process: sockets, locks, the single-threaded loop, signals, shutdown.

One loop polls the ingest ROUTER and the API ROUTER, drains each without
blocking, commits the store at least every 100 ms (acks go out after each
commit), publishes coalesced updates, drains hook events every ~100 ms and
runs the one-second timers (silence, heartbeat).
"""

from __future__ import annotations

import collections
import errno
import fcntl
import gc
import logging
import os
import resource
import signal
import sys
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import zmq

from grokwatch import wire
from grokwatch.daemon import api, paths
from grokwatch.daemon.alert import Alert
from grokwatch.daemon.auth import AuthError, Curve, check_endpoints
from grokwatch.daemon.hooks import RATE_PER_MIN as HOOK_RATE_PER_MIN
from grokwatch.daemon.hooks import HookRunner
from grokwatch.daemon.ingest import Ingest, Limits
from grokwatch.daemon.publisher import Publisher
from grokwatch.daemon.queryworker import QueryWorker
from grokwatch.daemon.store import Checkpointer, Store, StoreError

log = logging.getLogger("grokwatch.daemon")

COMMIT_INTERVAL = 0.05  # s; a record is committed within 100 ms of its arrival at worst
COMMIT_ROWS = 10_000  # or sooner when this many rows wait
DRAIN_MAX = 2_000  # frames per drain before the loop looks at timers and clients
DRAIN_BUDGET_S = 0.02  # ... or this much time, so commits and clients are never starved
HOOK_DRAIN_INTERVAL = 0.1
TICK_INTERVAL = 1.0
TICK_SLICES = 10  # the runs are ticked a slice at a time (see Daemon._tick)
STALL_S = 5.0  # a loop pass longer than this moves every run's silence clock on
API_SLICE_S = 0.01  # API work per drain before the duty cycle applies ...
API_BACKOFF = 3.0  # ... then requests wait this many times as long as the work took
RECENT_ALERTS = 1_000  # alerts and hook events kept in memory for snapshots
SHUTDOWN_DRAIN_S = 2.0
INGEST_RCVHWM = 32  # frames queued per connection before libzmq stops reading it
STORE_RETRY_S = (0.1, 5.0)  # first and longest wait between commit retries after an error


class DaemonError(RuntimeError):
    """A start-up failure; ``str(e)`` is one line for the user."""


class StopDuringStart(BaseException):
    """SIGTERM/SIGINT arrived before the loop started (during a restore)."""


@dataclass
class Config:
    """Everything ``grokwatch daemon`` takes."""

    ingest: str = wire.DEFAULT_INGEST
    pub: str = wire.DEFAULT_PUB
    api: str = wire.DEFAULT_API
    db: Path = field(default_factory=paths.default_db_path)
    hooks: Path | None = None
    lost_after: float = 60.0
    hole_timeout: float = 60.0  # above the probe's longest ack back-off (30 s)
    allow_remote: bool = False
    max_frame: int = wire.DEFAULT_MAX_FRAME
    durability: str = "normal"  # "full": synchronous=FULL, an ack survives power loss
    insecure_tcp: bool = False  # plain tcp:// on loopback (otherwise tcp:// needs CURVE)
    limits: Limits = field(default_factory=Limits)
    metrics: Any = None  # a prometheus.MetricsConfig: serve /metrics (--metrics-port)


def raise_nofile() -> int:
    """Raise the soft open-file limit to the hard one (libzmq aborts on EMFILE)."""
    soft, hard = resource.getrlimit(resource.RLIMIT_NOFILE)
    want = hard if hard != resource.RLIM_INFINITY else max(soft, 65536)
    if want > soft:
        try:
            resource.setrlimit(resource.RLIMIT_NOFILE, (want, hard))
            return want
        except (ValueError, OSError):
            pass
    return soft


class _Lock:
    """An flock on ``path``; a second daemon using the same db or ipc endpoint fails.

    The lock file is removed on release while the lock is still held, and only
    if the path still names the file this lock holds, so a daemon never deletes
    another daemon's lock. A daemon that opened the file just before it was
    removed sees, once it gets the flock, that the path no longer names it,
    and starts over on a fresh file.
    """

    def __init__(self, path: Path, what: str) -> None:
        self.path = path
        path.parent.mkdir(parents=True, exist_ok=True, mode=0o700)
        while True:
            self.fd = os.open(path, os.O_RDWR | os.O_CREAT, 0o600)
            try:
                fcntl.flock(self.fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
            except OSError:
                try:
                    other = os.read(self.fd, 32).decode(errors="replace").strip() or "?"
                except OSError:
                    other = "?"
                os.close(self.fd)
                raise DaemonError(f"another grokwatch daemon (pid {other}) is already using "
                                  f"{what}") from None
            if self._names_ours():
                break
            os.close(self.fd)  # removed by the daemon that held it: take a fresh one
        os.ftruncate(self.fd, 0)
        os.write(self.fd, str(os.getpid()).encode())

    def _names_ours(self) -> bool:
        """True if ``path`` still names the file open on ``fd``."""
        try:
            st, mine = os.stat(self.path), os.fstat(self.fd)
        except OSError:
            return False
        return (st.st_dev, st.st_ino) == (mine.st_dev, mine.st_ino)

    def release(self, remove: bool = True) -> None:
        """Drop the lock; with ``remove``, delete the lock file first (if it is ours)."""
        if self.fd < 0:
            return
        if remove and self._names_ours():
            try:
                self.path.unlink()
            except OSError:
                pass
        try:
            os.close(self.fd)
        except OSError:
            pass
        self.fd = -1


class Daemon:
    """One daemon instance; :meth:`run` loops until :meth:`stop` or a signal."""

    def __init__(self, cfg: Config) -> None:
        self.cfg = cfg
        self.pid = os.getpid()
        self.started = time.time()
        self._stopping = False
        self.exporter: Any = None  # the /metrics endpoint (daemon/prometheus.py), if asked
        self._locks: list[_Lock] = []
        self.recent_alerts: collections.deque[dict] = collections.deque(maxlen=RECENT_ALERTS)
        self.recent_hooks: collections.deque[dict] = collections.deque(maxlen=RECENT_ALERTS)
        self._alerts_to_store: list[dict] = []
        self._hooks_to_store: list[dict] = []
        self.alerts_total = 0
        self.hooks_total = 0
        self.commit_ms: collections.deque[float] = collections.deque(maxlen=200)
        # Work time of recent loop passes (poll wait excluded): how long acks can wait.
        self.loop_ms: collections.deque[float] = collections.deque(maxlen=2_000)
        self.loop_iters = 0
        self._tick_part = 0
        self._last_tick_mono = 0.0
        self._api_idle_at = 0.0  # API requests wait until then (see _drain_api)
        self.internal_errors = 0
        self.loop_errors: collections.Counter[str] = collections.Counter()
        # Store failures (disk full): no acks while set; commits retried with backoff.
        self.store_error: str | None = None
        self.store_error_since = 0.0
        self.store_retries = 0
        self._store_retry_at = 0.0
        self._store_wait = STORE_RETRY_S[0]
        try:
            self._curve_needed = check_endpoints([cfg.ingest, cfg.pub, cfg.api],
                                                 insecure_tcp=cfg.insecure_tcp,
                                                 allow_remote=cfg.allow_remote)
        except AuthError as e:
            raise DaemonError(str(e)) from None
        self.curve: Curve | None = None
        self.hooks = HookRunner(self._rules(), rate_per_min=HOOK_RATE_PER_MIN)
        db_existed = Path(cfg.db).exists()
        try:
            self._lock_all()
            self.store = Store(cfg.db, durability=cfg.durability)
        except BaseException:
            self.close_early()
            raise
        self.nofile = raise_nofile()
        self.ingest = Ingest(self.store, lost_after=cfg.lost_after,
                             hole_timeout=cfg.hole_timeout, max_frame=cfg.max_frame,
                             limits=cfg.limits)
        self.ctx = zmq.Context()
        try:
            self._bind()
        except BaseException:
            if self.curve is not None:
                self.curve.stop()
            self.ctx.destroy(linger=0)
            self.store.close()
            if not db_existed:  # a daemon that cannot serve leaves no store behind
                for suffix in ("", "-wal", "-shm"):
                    Path(str(cfg.db) + suffix).unlink(missing_ok=True)
            self.close_early()
            raise
        self.publisher = Publisher(self.pub_sock)
        self.queries = QueryWorker(cfg.db)
        self.checkpointer = Checkpointer(cfg.db)
        t0 = time.perf_counter()
        try:
            self.ingest.restore()
            for a in self.store.load_alerts(limit=RECENT_ALERTS):
                self.recent_alerts.append(a)
            for h in self.store.load_hook_events(limit=RECENT_ALERTS):
                self.recent_hooks.append(h)
        except BaseException:  # SIGTERM during a long restore (StopDuringStart): clean up
            self._abort()
            raise
        # What was restored lives as long as the daemon: out of the GC's generations, so
        # collections stay short however many runs are held (GC pauses were a tail).
        gc.collect()
        gc.freeze()
        if self.ingest.runs:
            log.info("restored %d runs from %s in %.2f s", len(self.ingest.runs), cfg.db,
                     time.perf_counter() - t0)

    def _close_io(self, linger: int) -> None:
        """Close the sockets, the authenticator, the context and the store; unlink ipc files."""
        for sock in (self.ingest_sock, self.api_sock, self.pub_sock):
            sock.close(linger=linger)
        if self.curve is not None:
            self.curve.stop()
        self.ctx.term()
        self.store.close()
        for ep in (self.cfg.ingest, self.cfg.pub, self.cfg.api):
            p = paths.ipc_path(ep)
            if p is not None:
                try:
                    p.unlink()
                except OSError:
                    pass

    def _abort(self) -> None:
        """Undo a start that did not finish: sockets, their files, store, locks."""
        self.queries.close()
        self.checkpointer.close()
        self._close_io(linger=0)
        self.close_early()

    def _rules(self) -> list:
        from grokwatch.daemon.hookrules import load_rules
        if self.cfg.hooks is None:
            return []
        rules = load_rules(self.cfg.hooks)  # HookConfigError propagates: exit 2
        log.info("%d hook rules from %s", len(rules), self.cfg.hooks)
        return rules

    def close_early(self) -> None:
        self.hooks.close(timeout=0.5)
        for lk in self._locks:
            lk.release()

    def _lock_all(self) -> None:
        db = Path(self.cfg.db)
        self._locks.append(_Lock(db.with_name(db.name + ".lock"), f"the store {db}"))
        for ep in (self.cfg.ingest, self.cfg.pub, self.cfg.api):
            p = paths.ipc_path(ep)
            if p is not None:
                # A second bind to an ipc path silently steals it: lock first.
                self._locks.append(_Lock(p.with_name(p.name + ".lock"), ep))

    def _bind(self) -> None:
        ctx = self.ctx
        if self._curve_needed:
            try:
                self.curve = Curve(ctx)
            except AuthError as e:
                raise DaemonError(str(e)) from None
        self.ingest_sock = ctx.socket(zmq.ROUTER)
        # Just above the frame cap, so frames a little over it are seen and counted as
        # oversized; libzmq cuts a peer that sends anything larger before it is queued.
        self.ingest_sock.setsockopt(zmq.MAXMSGSIZE, self.cfg.max_frame + 4096)
        # A short queue per connection: at most ~32 MiB of junk waits per peer while the
        # loop is busy; an honest probe keeps its records (unacked) until it can send.
        self.ingest_sock.setsockopt(zmq.RCVHWM, INGEST_RCVHWM)
        # A probe that reconnects (same random routing id) before its old connection is
        # seen gone takes the id over; without this it was refused until the old one died.
        self.ingest_sock.setsockopt(zmq.ROUTER_HANDOVER, 1)
        self.ingest_sock.setsockopt(zmq.SNDHWM, 10_000)
        self.ingest_sock.setsockopt(zmq.LINGER, 200)
        self.pub_sock = ctx.socket(zmq.PUB)
        # Per subscriber: a client that stops reading holds at most this many updates
        # here (a client that misses some sees the seq gap and takes a new snapshot).
        self.pub_sock.setsockopt(zmq.SNDHWM, 10_000)
        self.pub_sock.setsockopt(zmq.LINGER, 0)
        self.api_sock = ctx.socket(zmq.ROUTER)
        self.api_sock.setsockopt(zmq.MAXMSGSIZE, 1 << 20)
        self.api_sock.setsockopt(zmq.LINGER, 200)
        for sock, ep, what in ((self.ingest_sock, self.cfg.ingest, "ingest"),
                               (self.pub_sock, self.cfg.pub, "pub"),
                               (self.api_sock, self.cfg.api, "api")):
            p = paths.ipc_path(ep)
            if p is not None:
                p.parent.mkdir(parents=True, exist_ok=True, mode=0o700)
            if ep.startswith("tcp://"):
                if self.curve is not None:
                    self.curve.serve(sock)
                else:
                    log.warning("binding %s without encryption (--insecure-tcp): any local "
                                "user can connect", ep)
            try:
                sock.bind(ep)
            except zmq.ZMQError as e:
                if e.errno == errno.EADDRINUSE:
                    raise DaemonError(f"cannot bind {what} endpoint {ep}: address in use "
                                      "(another grokwatch daemon running?)") from None
                raise DaemonError(f"cannot bind {what} endpoint {ep}: {e}") from None
            if p is not None:
                os.chmod(p, 0o600)

    # ------------------------------------------------------------ loop

    def stop(self, *_: Any) -> None:
        """Ask the loop to stop (signal-safe)."""
        self._stopping = True

    def commit(self) -> bool:
        """Write the open batch, then send its acks. Never raises.

        On a store error (disk full, I/O error) the batch stays pending and unacked
        (the probes keep their records), the error shows in ``status`` and raises a
        ``store_error`` alert, and the commit is retried with a doubling backoff.
        Returns True when nothing is left unwritten.
        """
        if not (self.ingest.has_work() or self._alerts_to_store or self._hooks_to_store):
            return True
        now = time.monotonic()
        if self.store_error is not None and now < self._store_retry_at:
            return False
        t0 = time.perf_counter()
        try:
            acks = self.ingest.commit(self._alerts_to_store, self._hooks_to_store)
        except Exception as e:  # sqlite3.Error, OSError: the disk, not the data
            self._store_failed(e)
            return False
        self.commit_ms.append((time.perf_counter() - t0) * 1000)
        self._alerts_to_store = []
        self._hooks_to_store = []
        if self.store_error is not None:
            self._store_recovered()
        sock = self.ingest_sock
        for peer, ack in acks:
            try:
                sock.send_multipart([peer, ack], zmq.NOBLOCK)
            except zmq.ZMQError:
                pass  # peer gone or slow: it resends after its ack timeout
        return True

    def _store_failed(self, e: Exception) -> None:
        msg = f"{type(e).__name__}: {e}"
        now = time.monotonic()
        self.store_retries += 1
        if self.store_error is None:
            self.store_error = msg
            self.store_error_since = time.time()
            self._store_wait = STORE_RETRY_S[0]
            log.error("cannot write the store (%s): not acking; retrying with backoff", msg)
            self._store_alert("firing", f"cannot write the store: {msg}")
        else:
            self.store_error = msg
            self._store_wait = min(self._store_wait * 2, STORE_RETRY_S[1])
        self._store_retry_at = now + self._store_wait

    def _store_recovered(self) -> None:
        log.info("store writable again after %.1f s (%d retries): acking resumes",
                 time.time() - self.store_error_since, self.store_retries)
        self.store_error = None
        t = time.time()
        for rs in self.ingest.runs.values():  # we were not listening: no run was silent
            rs.last_heard = max(rs.last_heard, t)
        self._store_alert("resolved", "the store is writable again")

    def _store_alert(self, status: str, summary: str) -> None:
        a = Alert(run="daemon", step=0, t=time.time(), kind="store_error", summary=summary,
                  status=status, evidence={"db": str(self.cfg.db)})
        self.ingest.alerts.append(a)
        self._emit_alerts()

    def _drain_ingest(self, limit: int = DRAIN_MAX) -> int:
        sock, ingest = self.ingest_sock, self.ingest
        n = 0
        now = time.time()
        t_end = time.monotonic() + DRAIN_BUDGET_S
        while n < limit:
            try:
                parts = sock.recv_multipart(zmq.NOBLOCK, copy=True)
            except zmq.Again:
                break
            n += 1
            peer = parts[0]
            try:
                if len(parts) == 2:
                    ingest.handle(peer, parts[1], now)
                elif len(parts) == 3 and parts[1] == b"":
                    ingest.handle(peer, parts[2], now)
                else:
                    ingest.reject("malformed", f"{len(parts) - 1} message parts", peer)
            except Exception:  # a bug of ours: log it, keep serving every other frame
                self.internal_errors += 1
                if self.internal_errors <= 5:
                    log.exception("internal error on a frame (daemon keeps running)")
            # The budget is checked after every frame: a hostile frame can cost 20 ms
            # (4,096 new names), and 32 of them between checks held the loop 0.6 s.
            if time.monotonic() > t_end or ingest.pending_rows() >= COMMIT_ROWS:
                break
            if n % 32 == 0:
                now = time.time()
        if ingest.alerts:
            self._emit_alerts()
        return n

    def _emit_alerts(self) -> None:
        alerts, self.ingest.alerts = self.ingest.alerts, []
        for a in alerts:
            try:
                w = a.to_wire()
                self.recent_alerts.append(w)
                self._alerts_to_store.append(w)
                self.publisher.alert(w)
                self.hooks.submit(w)
                self.alerts_total += 1
                log.info("alert %s %s run=%s step=%s: %.300s", w["kind"], w["status"], w["run"],
                         w["step"], w["summary"])
            except Exception:  # one bad alert must not take the others (or the loop) down
                self._loop_error("alert")

    def _drain_api(self) -> None:
        sock = self.api_sock
        t_start = time.perf_counter()
        for _ in range(100):
            try:
                parts = sock.recv_multipart(zmq.NOBLOCK)
            except zmq.Again:
                break
            if not 2 <= len(parts) <= 8:  # a request with its envelope; nothing to echo
                continue
            reply = api.handle_request(self, parts[-1], parts[:-1])
            if reply is not None:  # None: answered by the query worker
                try:
                    sock.send_multipart([*parts[:-1], wire.encode_msg(reply)], zmq.NOBLOCK)
                except zmq.ZMQError:
                    pass  # client gone
            spent = time.perf_counter() - t_start
            if spent > API_SLICE_S:
                # Costly requests (snapshots, runs of thousands) may take at most about
                # a quarter of the loop: the next ones wait in the socket meanwhile, so a
                # client asking in a loop cannot starve ingest and acks.
                self._api_idle_at = time.monotonic() + API_BACKOFF * spent
                break

    def _send_query_replies(self) -> None:
        done = self.queries.done
        while not done.empty():
            ident, data = done.get_nowait()
            try:
                self.api_sock.send_multipart([*ident, data], zmq.NOBLOCK)
            except zmq.ZMQError:
                pass  # client gone or too slow

    def _drain_hooks(self) -> None:
        for ev in self.hooks.drain_events():
            self.recent_hooks.append(ev)
            self._hooks_to_store.append(ev)
            self.publisher.hook(ev)
            self.hooks_total += 1

    def run(self) -> int:
        """The loop; returns the exit status (0 after a clean stop)."""
        poller = zmq.Poller()
        poller.register(self.ingest_sock, zmq.POLLIN)
        poller.register(self.api_sock, zmq.POLLIN)
        last_tick = last_hooks = time.monotonic()
        api_polled = True
        last_pubscan = 0.0
        log.info("listening: ingest %s, pub %s, api %s; store %s", self.cfg.ingest,
                 self.cfg.pub, self.cfg.api, self.cfg.db)
        while not self._stopping:
            self.loop_iters += 1
            api_on = time.monotonic() >= self._api_idle_at
            if api_on != api_polled:
                poller.register(self.api_sock, zmq.POLLIN if api_on else 0)
                api_polled = api_on
            try:
                events = dict(poller.poll(20))
            except zmq.ZMQError:  # EINTR from a signal
                continue
            t_work = time.perf_counter()
            # Each step is guarded on its own: whatever one raises is logged, counted
            # (status "loop_errors") and the loop goes on; nothing takes the daemon down.
            if self.ingest_sock in events and self.store_error is None:
                # While the store cannot be written, frames wait in the socket (and then
                # in the probes' buffers): nothing piles up in the daemon's memory.
                self._guard("ingest", self._drain_ingest)
            now = time.monotonic()
            ing = self.ingest
            if ing.pending_rows() >= COMMIT_ROWS or (
                    ing.has_work() and ing.pending_age() >= COMMIT_INTERVAL) or (
                    not ing.pending_rows() and ing.has_work()) or self._alerts_to_store:
                self._guard("commit", self.commit)
            if self.api_sock in events:
                self._guard("api", self._drain_api)
            if not self.queries.done.empty():
                self._guard("queries", self._send_query_replies)
            if now - last_pubscan >= 0.02:
                self._guard("publish", self.publisher.flush_runs, ing.runs, now=now)
                last_pubscan = now
            if now - last_hooks >= HOOK_DRAIN_INTERVAL:
                self._guard("hooks", self._drain_hooks)
                last_hooks = now
            if now - last_tick >= TICK_INTERVAL / TICK_SLICES:
                self._guard("tick", self._tick, now)
                last_tick = now
            self._guard("hugz", self.publisher.maybe_hugz, now)
            self.loop_ms.append((time.perf_counter() - t_work) * 1000)
        return self.shutdown()

    def _tick(self, now: float) -> None:
        if self.store_error is not None:
            return  # not reading frames meanwhile: silence is ours, not the runs'
        gap, self._last_tick_mono = now - (self._last_tick_mono or now), now
        if gap > STALL_S:
            # The loop itself stood still (a slow disk, a huge request): whatever the
            # runs sent meanwhile waits in the sockets; do not call them silent for it.
            for rs in self.ingest.runs.values():
                rs.last_heard += gap
            log.warning("the loop stood still for %.1f s; silence clocks moved on by as much",
                        gap)
        # A tenth of the runs every 100 ms: each run once a second, and with 20,000
        # runs no single pass holds the loop (acks) for long.
        ing = self.ingest
        self._tick_part = part = (self._tick_part + 1) % TICK_SLICES
        runs = list(ing.runs.values())[part::TICK_SLICES]
        ing.tick(runs=runs)
        for rs in runs:
            rs.refresh_rate(now)  # a quiet run's rate decays: publish it
        if ing.alerts:
            self._emit_alerts()
        if part:
            return
        if self.exporter is not None:
            self.exporter.update(self)  # the /metrics snapshot, once a tick

    def _guard(self, what: str, fn: Any, *args: Any, **kw: Any) -> Any:
        try:
            return fn(*args, **kw)
        except Exception:
            self._loop_error(what)
            return None

    def _loop_error(self, what: str) -> None:
        self.loop_errors[what] += 1
        self.internal_errors += 1
        if self.loop_errors[what] == 1:  # logged once per place, then counted
            log.exception("internal error in %s (daemon keeps running)", what)

    def shutdown(self) -> int:
        """Stop intake, drain what already arrived, commit, ack, close. Returns 0."""
        if self.exporter is not None:
            self.exporter.close()
        log.info("stopping: draining and committing")
        deadline = time.monotonic() + SHUTDOWN_DRAIN_S
        while time.monotonic() < deadline and self._drain_ingest(10_000):
            if self.ingest.pending_rows() >= COMMIT_ROWS:
                self.commit()
        self.commit()
        self._drain_hooks()
        self.queries.close()
        self.checkpointer.close()
        self.hooks.close(timeout=2.0)
        self._drain_hooks()
        self.ingest.info_interval = 0.0  # write every run's summary now
        self.commit()
        self.publisher.flush_runs(self.ingest.runs, force=True)
        # Sockets first, while the locks still keep another daemon off these paths.
        self._close_io(linger=200)
        for lk in self._locks:
            lk.release()
        log.info("stopped: %d records in %d frames stored", self.ingest.records,
                 self.ingest.frames)
        return 0

    def status(self) -> dict[str, Any]:
        """The ``status`` reply body."""
        st = self.ingest.status()
        uptime = time.time() - self.started
        cms = sorted(self.commit_ms)
        lms = sorted(self.loop_ms)
        return {**st, "pid": self.pid, "uptime": uptime, "db": str(self.cfg.db),
                "endpoints": {"ingest": self.cfg.ingest, "pub": self.cfg.pub,
                              "api": self.cfg.api},
                "security": {"curve": self.curve is not None,
                             "insecure_tcp": self.cfg.insecure_tcp,
                             "durability": self.cfg.durability},
                "rates": {"records_per_s": sum(rs.rate() for rs in self.ingest.runs.values()),
                          "records_avg_per_s": st["records"] / uptime if uptime else 0.0},
                "queues": {"pending_rows": st["pending_rows"], "hooks": self.hooks.stats(),
                           "queries": self.queries.stats()},
                "store": {"rows": self.store.rows_written, "commits": self.store.commits,
                          "commit_ms_p50": cms[len(cms) // 2] if cms else 0.0,
                          "commit_ms_max": cms[-1] if cms else 0.0,
                          "checkpoints": self.checkpointer.checkpoints,
                          "checkpoint_errors": self.checkpointer.errors},
                "publish": {"seq": self.publisher.seq, "sent": self.publisher.sent,
                            "dropped": self.publisher.dropped},
                "store_error": None if self.store_error is None else {
                    "error": self.store_error, "since": self.store_error_since,
                    "retries": self.store_retries,
                    "retry_in": max(0.0, self._store_retry_at - time.monotonic())},
                "loop": {"passes": self.loop_iters,
                         "work_ms_p50": lms[len(lms) // 2] if lms else 0.0,
                         "work_ms_p99": lms[int(len(lms) * 0.99)] if lms else 0.0,
                         "work_ms_max": lms[-1] if lms else 0.0},
                "alerts": self.alerts_total, "hook_events": self.hooks_total,
                "internal_errors": self.internal_errors + st["internal_errors"],
                "loop_errors": dict(self.loop_errors),
                "nofile": self.nofile, "rss_bytes": rss_bytes()}


def rss_bytes() -> int:
    """Resident set size of this process (Linux /proc; 0 elsewhere)."""
    try:
        with open("/proc/self/statm") as f:
            return int(f.read().split()[1]) * os.sysconf("SC_PAGE_SIZE")
    except (OSError, ValueError, IndexError):
        return 0


def serve(cfg: Config) -> int:
    """Run a daemon until SIGINT/SIGTERM; return the exit status. Errors: one line, no traceback."""
    from grokwatch.daemon.hookrules import HookConfigError

    logging.basicConfig(stream=sys.stderr, level=logging.INFO,
                        format="grokwatch daemon: %(message)s")
    exporter = None

    def stop_during_start(*_: Any) -> None:
        raise StopDuringStart

    # A SIGTERM while the store is restored (minutes for a huge one) still cleans up.
    signal.signal(signal.SIGTERM, stop_during_start)
    signal.signal(signal.SIGINT, stop_during_start)
    try:
        if cfg.metrics is not None:  # first: a missing dependency or busy port fails fast
            from grokwatch.daemon import prometheus
            try:
                exporter = prometheus.start(cfg.metrics, allow_remote=cfg.allow_remote)
            except prometheus.MetricsError as e:
                raise DaemonError(str(e)) from None
        d = Daemon(cfg)
    except HookConfigError as e:
        print(f"grokwatch daemon: {e}", file=sys.stderr)
        return 2
    except (DaemonError, StoreError) as e:
        if exporter is not None:
            exporter.close()
        print(f"grokwatch daemon: {e}", file=sys.stderr)
        return 1
    except StopDuringStart:
        if exporter is not None:
            exporter.close()
        print("grokwatch daemon: stopped while starting", file=sys.stderr)
        return 0
    d.exporter = exporter
    if exporter is not None:
        exporter.update(d)
    signal.signal(signal.SIGTERM, d.stop)
    signal.signal(signal.SIGINT, d.stop)
    return d.run()
