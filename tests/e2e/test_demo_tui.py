"""``grokwatch demo`` with its TUI, in a real pseudo-terminal: shows the runs, quits on
``q``, and leaves no process behind."""

from __future__ import annotations

import fcntl
import os
import pty
import select
import shutil
import struct
import subprocess
import sys
import tempfile
import termios
import time
from pathlib import Path

import pytest

from grokwatch import client

pytestmark = pytest.mark.slow


def _read(fd: int, buf: bytearray, wait: float) -> None:
    r, _, _ = select.select([fd], [], [], wait)
    if r:
        try:
            buf += os.read(fd, 65536)
        except OSError:
            pass


def _live_mentioning(text: str) -> list[int]:
    out = []
    for p in Path("/proc").iterdir():
        if p.name.isdigit():
            try:
                cmd = (p / "cmdline").read_bytes()
                state = (p / "stat").read_text().split(") ")[-1][:1]
            except OSError:
                continue
            if text.encode() in cmd and state != "Z":
                out.append(int(p.name))
    return out


def test_tui_demo_shows_the_runs_and_quits_cleanly(tmp_path):
    d = tempfile.mkdtemp(prefix="gwtui-")
    eps = {"ingest": f"ipc://{d}/i", "pub": f"ipc://{d}/p", "api": f"ipc://{d}/a"}
    master, slave = pty.openpty()
    fcntl.ioctl(slave, termios.TIOCSWINSZ, struct.pack("HHHH", 24, 80, 0, 0))  # 80x24
    cmd = [sys.executable, "-m", "grokwatch", "demo", "--fast", "--presets", "grokking",
           "memorization", "--ingest", eps["ingest"], "--pub", eps["pub"], "--api", eps["api"]]
    proc = subprocess.Popen(cmd, stdin=slave, stdout=slave, stderr=slave,
                            env={**os.environ, "TERM": "xterm-256color",
                                 "XDG_CONFIG_HOME": str(tmp_path / "config"),
                                 "XDG_STATE_HOME": str(tmp_path / "state")}, start_new_session=True)
    os.close(slave)
    buf = bytearray()
    try:
        deadline = time.monotonic() + 90
        while time.monotonic() < deadline and proc.poll() is None:
            _read(master, buf, 0.2)
            if b"grokking" in buf and b"memorization" in buf:
                break
        assert b"grokking" in buf and b"memorization" in buf, bytes(buf[-2000:])
        assert proc.poll() is None
        assert len(_live_mentioning(d)) >= 2  # its daemon and at least one training
        os.write(master, b"q")
        deadline = time.monotonic() + 30
        while proc.poll() is None and time.monotonic() < deadline:
            _read(master, buf, 0.2)
        assert proc.poll() == 0, bytes(buf[-2000:])
        # Once the TUI has closed, the demo prints each run's phase as text.
        tail = bytes(buf).rsplit(b"== final ==", 1)
        assert len(tail) == 2, bytes(buf[-2000:])
        assert b"grokking" in tail[1] and b"memorization" in tail[1]
        assert _live_mentioning(d) == []
        with pytest.raises(client.DaemonUnavailable):
            client.request(eps["api"], "ping", timeout=0.5)
    finally:
        if proc.poll() is None:
            proc.kill()
            proc.wait()
        for pid in _live_mentioning(d):
            os.kill(pid, 9)
        os.close(master)
        shutil.rmtree(d, ignore_errors=True)
