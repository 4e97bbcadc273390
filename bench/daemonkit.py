"""What the daemon benches share: a real daemon as a subprocess, probe-like frames, a sender.

Imported by ``bench/daemon_ingest.py`` and ``bench/hooks.py`` (run as scripts, so
this folder is on ``sys.path``).
"""

from __future__ import annotations

import os
import shutil
import signal
import subprocess
import sys
import tempfile
import time
from collections.abc import Callable

import zmq

from grokwatch import client, wire
from grokwatch.wire.names import TRAIN_ACC, TRAIN_LOSS, VAL_ACC, VAL_LOSS

SCALARS = (TRAIN_LOSS, TRAIN_ACC, VAL_LOSS, VAL_ACC)  # 4 per wire record
PER_FRAME = 200  # wire records per frame, as the probe batches in a fast loop


def make_frames(runs: list[str], steps: int, sid0: int,
                values: Callable[[int], dict[str, float]]) -> list[bytes]:
    """Pre-encoded frames, runs interleaved, each session with a hello first.

    ``values(step)`` gives the scalars record of each step.
    """
    frames = [wire.encode_frame(run, sid0 + i, [wire.hello(1, host="bench", pid=1)])
              for i, run in enumerate(runs)]
    seqs = dict.fromkeys(runs, 1)
    t = time.time()
    for start in range(0, steps, PER_FRAME):
        for i, run in enumerate(runs):
            recs = []
            for step in range(start, min(steps, start + PER_FRAME)):
                seqs[run] += 1
                recs.append(wire.scalars(seqs[run], step, values(step), t=t))
            frames.append(wire.encode_frame(run, sid0 + i, recs))
    return frames


def sender(endpoint: str, frames: list[bytes], go, done=None) -> None:
    """A probe-like sender: DEALER, send everything (then set ``done``), wait for the final acks."""
    ctx = zmq.Context()
    s = ctx.socket(zmq.DEALER)
    s.setsockopt(zmq.SNDHWM, 0)
    s.setsockopt(zmq.LINGER, 2000)
    s.connect(endpoint)
    go.wait()
    for f in frames:
        s.send(f)
        while s.poll(0):
            s.recv()  # drain acks as a probe does
    if done is not None:
        done.set()
    deadline = time.monotonic() + 60
    while time.monotonic() < deadline and s.poll(500):
        s.recv()
    s.close()
    ctx.term()


class Daemon:
    """``grokwatch daemon`` on ipc:// endpoints in a temporary directory, started and answering."""

    def __init__(self, prefix: str, hooks: str | None = None) -> None:
        self.dir = tempfile.mkdtemp(prefix=prefix)
        self.ingest = f"ipc://{self.dir}/ingest"
        self.pub = f"ipc://{self.dir}/pub"
        self.api = f"ipc://{self.dir}/api"
        cmd = [sys.executable, "-m", "grokwatch", "daemon", "--ingest", self.ingest,
               "--pub", self.pub, "--api", self.api, "--db", f"{self.dir}/bench.db"]
        if hooks:
            cmd += ["--hooks", hooks]
        self.proc = subprocess.Popen(cmd, stderr=subprocess.DEVNULL,
                                     env={**os.environ, "XDG_CONFIG_HOME": self.dir})
        deadline = time.monotonic() + 20
        while True:
            try:
                client.request(self.api, "ping", timeout=0.5)
                return
            except client.DaemonUnavailable:
                if time.monotonic() > deadline or self.proc.poll() is not None:
                    raise RuntimeError("daemon did not start") from None

    def status(self) -> dict:
        return client.request(self.api, "status", timeout=30)["status"]

    def cpu(self) -> float:
        """The daemon's user + system CPU seconds so far (less noisy than wall time)."""
        with open(f"/proc/{self.proc.pid}/stat") as f:
            fields = f.read().rsplit(")", 1)[1].split()
        return (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK")

    def stop(self) -> None:
        self.proc.send_signal(signal.SIGTERM)
        self.proc.wait(60)
        shutil.rmtree(self.dir, ignore_errors=True)
