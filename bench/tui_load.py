"""TUI under load: N synthetic runs at R updates/s each against a real daemon and a
real ``grokwatch tui`` process in a real terminal (a tmux pane).

Prints the TUI process's CPU share (of one core) and its update lag: every
update carries its send time in the scalar ``bench.t_send``; the TUI in the pane
is the product's :class:`~grokwatch.tui.app.GrokwatchApp` subclassed here
(:func:`lag_app`, run by this file's ``--tui-child`` mode), which writes
``paint time - send time`` for each update it applied, measured after the
repaint that showed it. So the lag is end to end: probe-side send -> daemon
ingest/commit/coalesce -> PUB -> TUI reader thread -> batch -> model -> screen.
It also prints the lag in the first and last thirds of the window, so a growing
backlog shows.

    python bench/tui_load.py [--runs 200] [--rate 10] [--seconds 60] [--size 160x48]
    python bench/tui_load.py --quick      # 100 runs x 10/s for 10 s (+3 s warm-up)
"""

from __future__ import annotations

import argparse
import math
import os
import shutil
import socket
import statistics
import subprocess
import sys
import tempfile
import time
from collections.abc import Iterable
from pathlib import Path
from typing import Any

import msgpack  # noqa: F401  (the wire's dependency; fail early if missing)
import numpy as np
import zmq

from grokwatch import client, wire
from grokwatch.wire.names import TRAIN_ACC, TRAIN_LOSS, VAL_ACC, VAL_LOSS, WEIGHT_NORM

CLK = os.sysconf("SC_CLK_TCK")
LAG_SCALAR = "bench.t_send"  # each update carries its send time (unix) in this scalar


def lag_app(api: str, pub: str, lagfile: Path) -> Any:
    """The product's TUI app, measuring lags: a bench subclass, nothing in the product.

    Its feed stamps each ``run`` update with ``_recv`` (unix time) in the reader
    thread; after the repaint that showed a batch, each update's ``send->paint`` and
    ``receive->paint`` (the TUI's own share) go to ``lagfile``, one line each.
    """
    from grokwatch.tui.app import GrokwatchApp
    from grokwatch.tui.feed import Feed

    class StampingFeed(Feed):
        def _push(self, items: list[tuple[str, Any]]) -> None:
            now = time.time()
            for kind, msg in items:
                if kind == "run":
                    msg["_recv"] = now
            super()._push(items)

    class LagApp(GrokwatchApp):
        def __init__(self) -> None:
            super().__init__(api=api, pub=pub)
            f = self.feed
            assert f is not None
            self.feed = StampingFeed(f.api, f.pub, f.wake, min_interval=f.min_interval,
                                     heartbeat_timeout=f.heartbeat_timeout,
                                     snapshot_timeout=f.snapshot_timeout)
            self._lag_buf: list[str] = []
            self._lag_flushed = time.monotonic()

        def apply_messages(self, items: Iterable[tuple[str, Any]]) -> None:
            items = list(items)
            sent = []
            for kind, msg in items:
                if kind != "run" or not isinstance(msg, dict):
                    continue
                t = ((msg.get("summary") or {}).get("last") or {}).get(LAG_SCALAR)
                if isinstance(t, (int, float)) and math.isfinite(t):
                    sent.append((float(t), float(msg.get("_recv", math.nan))))
            super().apply_messages(items)
            if sent:
                self.call_after_refresh(self._record_lags, sent)

        def _record_lags(self, sent: list[tuple[float, float]]) -> None:
            # Called after the repaint that showed these updates: the lag a user sees.
            now = time.time()
            self._lag_buf.extend(f"{now - s:.6f} {now - r:.6f}\n" for s, r in sent)
            self._flush_lags()

        def _flush_lags(self, force: bool = False) -> None:
            if self._lag_buf and (force or time.monotonic() - self._lag_flushed > 1.0):
                with open(lagfile, "a") as fh:
                    fh.writelines(self._lag_buf)
                self._lag_buf = []
                self._lag_flushed = time.monotonic()

        def on_unmount(self) -> None:
            # Textual also calls GrokwatchApp.on_unmount (handlers run along the MRO).
            self._flush_lags(force=True)

    return LagApp()


def cpu_seconds(pid: int) -> float:
    """utime + stime of a process (and its reaped children), from /proc."""
    with open(f"/proc/{pid}/stat") as f:
        fields = f.read().rsplit(")", 1)[1].split()
    return sum(int(fields[i]) for i in (11, 12, 13, 14)) / CLK


def thread_cpu(pid: int) -> dict[int, float]:
    """CPU seconds per thread (tid -> utime + stime)."""
    out = {}
    for tid in os.listdir(f"/proc/{pid}/task"):
        try:
            with open(f"/proc/{pid}/task/{tid}/stat") as f:
                fields = f.read().rsplit(")", 1)[1].split()
            out[int(tid)] = (int(fields[11]) + int(fields[12])) / CLK
        except (FileNotFoundError, ProcessLookupError):
            continue
    return out


def start_daemon(d: Path) -> tuple[subprocess.Popen, dict[str, str]]:
    ep = {k: f"ipc://{d}/{k}" for k in ("ingest", "pub", "api")}
    env = {**os.environ, "XDG_STATE_HOME": str(d / "state"), "XDG_CONFIG_HOME": str(d / "cfg")}
    proc = subprocess.Popen(
        [sys.executable, "-m", "grokwatch", "daemon", "--ingest", ep["ingest"], "--pub",
         ep["pub"], "--api", ep["api"], "--db", str(d / "grokwatch.db")],
        stderr=(d / "daemon.stderr").open("wb"), stdout=subprocess.DEVNULL, env=env)
    deadline = time.monotonic() + 20
    while True:
        try:
            client.request(ep["api"], "ping", timeout=0.5)
            return proc, ep
        except client.DaemonUnavailable:
            if proc.poll() is not None or time.monotonic() > deadline:
                raise SystemExit(
                    f"daemon did not start:\n{(d / 'daemon.stderr').read_text()}") from None


def start_tui(ep: dict[str, str], lagfile: Path, size: str, tmux_sock: str) -> int:
    """The lag-measuring TUI (:func:`lag_app`) in a detached tmux pane; returns its pid."""
    w, h = size.split("x")
    env = {**os.environ, "TERM": "xterm-256color"}
    cmd = (f"exec {sys.executable} {Path(__file__).resolve()} --tui-child "
           f"{ep['pub']} {ep['api']} {lagfile}")
    subprocess.run(["tmux", "-L", tmux_sock, "-f", "/dev/null", "new-session", "-d", "-s",
                    "bench", "-x", w, "-y", h, cmd], check=True, env=env)
    out = subprocess.run(["tmux", "-L", tmux_sock, "display", "-p", "-t", "bench",
                          "#{pane_pid}"], capture_output=True, text=True, check=True)
    return int(out.stdout.strip())


class Load:
    """N runs speaking the wire from one DEALER socket (one probe session each)."""

    def __init__(self, endpoint: str, runs: int) -> None:
        self.ctx = zmq.Context()
        self.sock = self.ctx.socket(zmq.DEALER)
        self.sock.setsockopt(zmq.LINGER, 0)
        self.sock.setsockopt(zmq.SNDHWM, 100_000)
        self.sock.connect(endpoint)
        self.names = [f"load-{i:03d}" for i in range(runs)]
        self.sids = list(range(1, runs + 1))
        self.seq = [0] * runs
        self.step = [0] * runs
        self.sent = 0
        host = socket.gethostname()
        for i in range(runs):
            self._send(i, [wire.hello(self._next(i), host=host, pid=os.getpid(),
                                      config={"bench": True, "i": i}, modulus=97)])

    def _next(self, i: int) -> int:
        self.seq[i] += 1
        return self.seq[i]

    def _send(self, i: int, recs: list[dict]) -> None:
        self.sock.send(wire.encode_frame(self.names[i], self.sids[i], recs), zmq.NOBLOCK)

    def _vals(self, i: int) -> tuple[int, dict]:
        s = self.step[i] = self.step[i] + 10
        x = s / 2000.0
        return s, {TRAIN_LOSS: float(np.exp(-x)), TRAIN_ACC: float(min(1.0, x * 5)),
                   VAL_ACC: float(1 / (1 + np.exp(-(x - 5 - i % 7)))), VAL_LOSS: 2.0 - x / 10,
                   WEIGHT_NORM: 40.0 - x, "bench.t_send": time.time()}

    def prefill(self, points: int, api: str) -> None:
        """``points`` past updates per run, sent before the TUI starts, so it opens on
        full histories (the daemon's ring and thinned history both full)."""
        for i in range(len(self.names)):
            left = points
            while left > 0:
                k = min(200, left)
                recs = [wire.scalars(self._next(i), *self._vals(i)) for _ in range(k)]
                self._send(i, recs)
                left -= k
            self.drain_acks()
        deadline = time.monotonic() + 120
        last = self.names[-1]
        while time.monotonic() < deadline:  # the daemon has taken it all in
            self.drain_acks()
            runs = client.request(api, "runs", run=last, timeout=5)["runs"]
            if runs and runs[0]["step"] >= self.step[-1]:
                return
            time.sleep(0.2)
        raise SystemExit("the daemon did not take in the prefill within 120 s")

    def tick(self, i: int, with_spectrum: bool) -> None:
        s, vals = self._vals(i)
        recs = [wire.scalars(self._next(i), s, vals)]
        if with_spectrum:
            power = np.abs(np.sin(np.arange(48) * (i + 1))).astype(np.float32)
            recs.append(wire.spectrum(self._next(i), s, "embed.fourier", power))
        self._send(i, recs)
        self.sent += 1

    def drain_acks(self) -> None:
        while True:
            try:
                self.sock.recv(zmq.NOBLOCK)
            except zmq.Again:
                return

    def close(self) -> None:
        for i in range(len(self.names)):
            self._send(i, [wire.bye(self._next(i))])
        time.sleep(0.2)
        self.sock.close(0)
        self.ctx.term()


def pct(xs: list[float], q: float) -> float:
    return float(np.percentile(xs, q)) if xs else float("nan")


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--runs", type=int, default=None, help="runs (default 200; --quick 100)")
    ap.add_argument("--history", type=int, default=1200, metavar="POINTS",
                    help="past updates per run sent before the TUI starts (full histories: "
                         "the daemon's ring and history hold 768 points; default %(default)s)")
    ap.add_argument("--rate", type=float, default=10.0, help="updates per second per run")
    ap.add_argument("--seconds", type=float, default=60.0)
    ap.add_argument("--warmup", type=float, default=5.0)
    ap.add_argument("--size", default="160x48", help="terminal size of the TUI's pane")
    ap.add_argument("--quick", action="store_true",
                    help="a short run: 100 runs, 10 s measured after 3 s of warm-up")
    ap.add_argument("--tui-child", nargs=3, metavar=("PUB", "API", "LAGFILE"),
                    help=argparse.SUPPRESS)  # the TUI in the tmux pane
    args = ap.parse_args()
    if args.tui_child:
        pub, api, lagfile = args.tui_child
        lag_app(api, pub, Path(lagfile)).run()
        return 0
    if args.quick:
        args.runs = 100 if args.runs is None else args.runs
        args.seconds, args.warmup = 10.0, 3.0
    elif args.runs is None:
        args.runs = 200
    if not shutil.which("tmux"):
        raise SystemExit("tmux is needed to give the TUI a real terminal")
    d = Path(tempfile.mkdtemp(prefix="gwbench-"))
    lagfile = d / "lags.txt"
    tmux_sock = f"gwbench-{os.getpid()}"
    daemon, ep = start_daemon(d)
    load = tui_pid = None
    try:
        load = Load(ep["ingest"], args.runs)
        if args.history > 0:
            t0 = time.monotonic()
            load.prefill(args.history, ep["api"])
            print(f"  prefilled {args.history} points x {args.runs} runs in "
                  f"{time.monotonic() - t0:.1f} s", flush=True)
        tui_pid = start_tui(ep, lagfile, args.size, tmux_sock)
        period = 1.0 / args.rate
        t_start = time.monotonic()
        t_measure = t_start + args.warmup
        t_end = t_measure + args.seconds
        cpu0 = wall0 = dcpu0 = None
        marks: list[tuple[float, int]] = []  # (wall, lag lines) at thirds
        next_tick = t_start
        n = 0
        while (now := time.monotonic()) < t_end:
            if cpu0 is None and now >= t_measure:
                cpu0, dcpu0, wall0 = cpu_seconds(tui_pid), cpu_seconds(daemon.pid), now
                th0 = thread_cpu(tui_pid)
                marks.append((time.time(), 0))
            # Spread the runs over the period so load is smooth, not a burst per tick.
            for i in range(args.runs):
                load.tick(i, with_spectrum=(n % int(args.rate) == 0 and i % 10 == 0))
            n += 1
            load.drain_acks()
            next_tick += period
            delay = next_tick - time.monotonic()
            if delay > 0:
                time.sleep(delay)
        wall = time.monotonic() - wall0
        sent_rate = load.sent / (time.monotonic() - t_start)
        cpu = cpu_seconds(tui_pid) - cpu0
        th1 = thread_cpu(tui_pid)
        per_thread = sorted(((th1[t] - th0.get(t, 0.0)) / wall, t) for t in th1)[::-1]
        dcpu = cpu_seconds(daemon.pid) - dcpu0
        t_stop = time.time()
        time.sleep(1.5)  # the TUI flushes its lag file every second
        subprocess.run(["tmux", "-L", tmux_sock, "send-keys", "-t", "bench", "q"])
        time.sleep(1.0)
    finally:
        if load is not None:
            load.close()
        subprocess.run(["tmux", "-L", tmux_sock, "kill-server"], capture_output=True)
        daemon.terminate()
        daemon.wait(10)
    lags, own = [], []  # send->paint, and the TUI's share: receive->paint
    if lagfile.exists():
        for line in lagfile.read_text().splitlines():
            a, b = line.split()
            lags.append(float(a))
            own.append(float(b))
    # Only updates sent inside the measured window: lag lines are in paint order,
    # so keep the middle by count proportional to time (warm-up lines first).
    total = len(lags)
    frac_warm = args.warmup / (args.warmup + args.seconds)
    window = lags[int(total * frac_warm):]
    own = own[int(total * frac_warm):]
    third = max(1, len(window) // 3)
    first, last = window[:third], window[-third:]
    print(f"tui_load: {args.runs} runs x {args.rate:g} updates/s for {args.seconds:g} s "
          f"(+{args.warmup:g} s warm-up), terminal {args.size}, tmux pane, "
          f"{args.history} points of history per run")
    print(f"  offered            {sent_rate:10.0f} updates/s (scalars; a spectrum per run "
          f"per second for 1 run in 10)")
    print(f"  TUI CPU            {100 * cpu / wall:10.1f} % of one core   "
          f"(target < 25 %)")
    main_share = next((c for c, t in per_thread if t == tui_pid), 0.0)
    others = [c for c, t in per_thread if t != tui_pid and c > 0.001]
    print(f"    by thread        UI (main) {100 * main_share:.1f} %, others "
          + ", ".join(f"{100 * c:.1f} %" for c in others) + " (reader thread, input, ...)")
    print(f"  daemon CPU         {100 * dcpu / wall:10.1f} % of one core")
    print(f"  updates painted    {len(window):10d}   (the daemon coalesces per run; "
          f"{total} incl. warm-up)")
    print(f"  lag p50 / p99      {1000 * pct(window, 50):8.1f} ms / {1000 * pct(window, 99):.1f} ms"
          f"   max {1000 * max(window, default=float('nan')):.1f} ms")
    print(f"  TUI share p50/p99  {1000 * pct(own, 50):8.1f} ms / {1000 * pct(own, 99):.1f} ms"
          f"   (reader thread receive -> painted)")
    print(f"  lag p50 1st third  {1000 * pct(first, 50):8.1f} ms   last third "
          f"{1000 * pct(last, 50):.1f} ms   (growing lag would show here)")
    if window:
        k = 6  # p50 per sixth of the window, in order: a backlog would climb steadily
        parts = [window[i * len(window) // k:(i + 1) * len(window) // k] for i in range(k)]
        print("  lag p50 by sixth   " + " ".join(f"{1000 * pct(p, 50):.0f}" for p in parts)
              + " ms")
        own_parts = [own[i * len(own) // k:(i + 1) * len(own) // k] for i in range(k)]
        print("  TUI share by sixth " + " ".join(f"{1000 * pct(p, 50):.0f}" for p in own_parts)
              + " ms")
        print(f"  mean lag           {1000 * statistics.fmean(window):8.1f} ms")
    print(f"  ended {time.strftime('%H:%M:%S', time.localtime(t_stop))}, files in {d}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
