"""Smoke test of the installed ``grokwatch tui`` command in a real terminal (tmux)."""

from __future__ import annotations

import os
import shutil
import subprocess
import time
from pathlib import Path

import pytest
from tuiprobe import send_run

TMUX = shutil.which("tmux")


def grokwatch_cmd() -> str:
    """The installed console script: this smoke test is about the command users run."""
    exe = shutil.which("grokwatch")
    assert exe, "the grokwatch console script is not on PATH (pip install -e .)"
    return exe


@pytest.mark.skipif(TMUX is None, reason="tmux is not installed: no real terminal to drive")
def test_grokwatch_tui_in_tmux(daemon, tmp_path: Path):
    send_run(daemon.ingest, "tmux-run-k3", k=3)
    sock = f"gw-{os.getpid()}"  # a private tmux server, never the user's
    env = {**os.environ, "TERM": "xterm-256color"}
    cmd = f"{grokwatch_cmd()} tui --connect {daemon.pub},{daemon.api}"
    tmux = [TMUX, "-L", sock, "-f", "/dev/null"]
    subprocess.run([*tmux, "new-session", "-d", "-s", "gw", "-x", "160", "-y", "48", cmd],
                   check=True, env=env)

    def capture() -> str:
        return subprocess.run([*tmux, "capture-pane", "-p", "-t", "gw"], capture_output=True,
                              text=True, env=env).stdout

    try:
        screen, deadline = "", time.monotonic() + 30
        while time.monotonic() < deadline:
            screen = capture()
            if "tmux-run-k3" in screen and "key k:" in screen:
                break
            time.sleep(0.3)
        # Wide terminal: the runs table with the selected run's detail beside it.
        assert "tmux-run-k3" in screen, screen
        assert "connected" in screen, screen
        assert any(c in screen for c in "▁▂▃▄▅▆▇█"), screen  # a sparkline
        assert "embed.fourier @" in screen and "key k: 3" in screen, screen  # the spectrum
        subprocess.run([*tmux, "send-keys", "-t", "gw", "q"], check=True, env=env)
        deadline = time.monotonic() + 10
        while time.monotonic() < deadline:
            alive = subprocess.run([*tmux, "has-session", "-t", "gw"], capture_output=True,
                                   env=env).returncode == 0
            if not alive:
                break
            time.sleep(0.2)
        assert not alive, "q did not quit the TUI"
    finally:
        subprocess.run([*tmux, "kill-server"], capture_output=True, env=env)
