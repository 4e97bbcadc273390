"""Shared fixtures: a real grokwatch daemon as a subprocess on ipc:// endpoints.

``start_daemon(**kw) -> DaemonHandle`` starts one (kw: ``hooks: Path | None``,
``lost_after: float``, ``args: list[str]`` extra CLI args, ``wait: bool`` =
True to wait until it answers ``ping``); ``daemon`` is ``start_daemon()``.
Every handle is stopped at teardown.

This folder is on ``sys.path`` for helper modules shared across test folders
(``gwcli``: the ``grokwatch`` command line as a subprocess argv; ``waiting``: polling).
"""

from __future__ import annotations

import os
import shutil
import signal
import subprocess
import sys
import tempfile
import time
from collections.abc import Iterator
from pathlib import Path

import pytest

from grokwatch import client

sys.path.insert(0, str(Path(__file__).parent))  # for `import gwcli`

START_TIMEOUT = 20.0


DAEMON_CMD = [sys.executable, "-m", "grokwatch", "daemon"]


class DaemonHandle:
    """A running daemon subprocess with its endpoints, store and stderr log."""

    def __init__(self, root: Path, *, hooks: Path | None = None, lost_after: float | None = None,
                 args: list[str] | None = None, env: dict[str, str] | None = None) -> None:
        self.root = root
        # ipc paths must stay short (< 107 bytes), hence a private dir under /tmp.
        self.sockdir = Path(tempfile.mkdtemp(prefix="gwd-"))
        self.ingest = f"ipc://{self.sockdir}/ingest"
        self.pub = f"ipc://{self.sockdir}/pub"
        self.api = f"ipc://{self.sockdir}/api"
        self.db = root / "state" / "grokwatch.db"
        self.db.parent.mkdir(parents=True, exist_ok=True)  # the daemon creates no --db dirs
        self.hooks = hooks
        self.lost_after = lost_after
        self.args = list(args or [])
        self.env = {**os.environ, "XDG_STATE_HOME": str(root / "state"),
                    "XDG_CONFIG_HOME": str(root / "config"), "PYTHONUNBUFFERED": "1",
                    **(env or {})}
        self.env.pop("GROKWATCH_ENDPOINT", None)
        self.proc: subprocess.Popen | None = None
        self.starts = 0
        self._logs: list[Path] = []

    @property
    def cmd(self) -> list[str]:
        """The full command line."""
        cmd = [*DAEMON_CMD, "--ingest", self.ingest, "--pub", self.pub, "--api", self.api,
               "--db", str(self.db)]
        if self.hooks is not None:
            cmd += ["--hooks", str(self.hooks)]
        if self.lost_after is not None:
            cmd += ["--lost-after", str(self.lost_after)]
        return cmd + self.args

    def start(self, wait: bool = True) -> DaemonHandle:
        """Start the process; with ``wait``, return once it answers ``ping``."""
        self.starts += 1
        log = self.root / f"daemon-{self.starts}.stderr"
        self._logs.append(log)
        with open(log, "wb") as f:
            self.proc = subprocess.Popen(self.cmd, stdout=subprocess.DEVNULL, stderr=f,
                                         env=self.env, cwd=self.root)
        if wait:
            self.wait_ready()
        return self

    def wait_ready(self, timeout: float = START_TIMEOUT) -> None:
        """Block until ``ping`` answers; raise with the daemon's stderr if it exits."""
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            if self.proc.poll() is not None:
                raise RuntimeError(f"daemon exited with {self.proc.returncode}:\n"
                                   f"{self.stderr_text()}")
            try:
                client.request(self.api, "ping", timeout=0.5)
                return
            except client.DaemonUnavailable:
                continue
        raise RuntimeError(f"daemon did not answer within {timeout} s:\n{self.stderr_text()}")

    def stop(self, sig: int = signal.SIGTERM, timeout: float = 10) -> int:
        """Send ``sig`` and wait; returns the exit code (SIGKILL after ``timeout``)."""
        if self.proc is None:
            return 0
        if self.proc.poll() is None:
            self.proc.send_signal(sig)
            try:
                self.proc.wait(timeout)
            except subprocess.TimeoutExpired:
                self.proc.kill()
                self.proc.wait(5)
        return self.proc.returncode

    def kill(self) -> None:
        """SIGKILL, no chance to commit."""
        if self.proc is not None and self.proc.poll() is None:
            self.proc.kill()
            self.proc.wait(5)

    def restart(self) -> None:
        """Stop if running (SIGTERM), then start again on the same endpoints and store."""
        if self.proc is not None and self.proc.poll() is None:
            self.stop()
        self.start()

    def request(self, op: str = "ping", **kw) -> dict:
        """One API request to this daemon."""
        return client.request(self.api, op, **kw)

    def stderr_text(self) -> str:
        """Everything the daemon wrote to stderr, across restarts."""
        return "".join(p.read_text(errors="replace") for p in self._logs if p.exists())

    def cleanup(self) -> None:
        self.stop()
        shutil.rmtree(self.sockdir, ignore_errors=True)


@pytest.fixture
def start_daemon(tmp_path: Path) -> Iterator:
    """Factory: ``start_daemon(hooks=None, lost_after=None, args=None, wait=True)``."""
    handles: list[DaemonHandle] = []

    def start(*, hooks: Path | None = None, lost_after: float | None = None,
              args: list[str] | None = None, wait: bool = True,
              env: dict[str, str] | None = None) -> DaemonHandle:
        root = tmp_path / f"daemon{len(handles)}"
        root.mkdir()
        h = DaemonHandle(root, hooks=hooks, lost_after=lost_after, args=args, env=env)
        handles.append(h)
        return h.start(wait=wait)

    yield start
    for h in handles:
        h.cleanup()


@pytest.fixture
def daemon(start_daemon) -> DaemonHandle:
    """A running daemon with default options."""
    return start_daemon()
