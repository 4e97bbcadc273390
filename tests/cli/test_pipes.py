"""The command line in pipes and its answers to wrong input (issue 13 items 7, 8).

Each runs the real ``grokwatch`` command as a subprocess against a real daemon.
"""

from __future__ import annotations

import os
import shlex
import socket
import subprocess
import sys
import time
from pathlib import Path

import pytest
from gwcli import GROKWATCH

from grokwatch.probe import Probe

ENV = {**os.environ, "PYTHONUNBUFFERED": "1"}


def feed(daemon, run: str = "piped", steps: int = 3000) -> None:
    pr = Probe(run, endpoint=daemon.ingest, every=10**9)
    for s in range(steps):
        pr.log(s, train_loss=1 / (s + 1), train_acc=min(1.0, s / 100), val_acc=0.01,
               val_loss=3.0)
    pr.close()
    deadline = time.monotonic() + 15
    while True:
        runs = daemon.request("runs")["runs"]
        if runs and runs[0]["step"] == steps - 1 and daemon.request("alerts")["alerts"]:
            return
        assert time.monotonic() < deadline, runs
        time.sleep(0.1)


def gw(*args: str, env: dict | None = None, timeout: float = 30) -> subprocess.CompletedProcess:
    return subprocess.run([*GROKWATCH, *args], capture_output=True, text=True,
                          env=env or ENV, timeout=timeout)


def closed_reader(args: list[str]) -> tuple[int, str]:
    """Run with a stdout pipe whose reader is gone before the first write."""
    p = subprocess.Popen([*GROKWATCH, *args], stdout=subprocess.PIPE, stderr=subprocess.PIPE,
                         env=ENV)
    p.stdout.close()
    err = p.stderr.read().decode()
    return p.wait(30), err


def test_commands_exit_quietly_when_the_reader_goes_away(daemon):
    feed(daemon)
    api = ["--api", daemon.api]
    for args in (["export", "piped", *api], ["alerts", *api], ["runs", "--json", *api],
                 ["runs", *api], ["export", "piped", "--format", "csv", *api]):
        rc, err = closed_reader(args)
        assert "Traceback" not in err and "BrokenPipe" not in err, (args, err)
        assert rc in (0, 141), (args, rc, err)
    # And as a user types it: output far larger than the pipe's buffer.
    cmd = " ".join(shlex.quote(a) for a in [*GROKWATCH, "export", "piped", *api])
    r = subprocess.run(["bash", "-c", f"{cmd} | head -3"], capture_output=True, text=True,
                       env=ENV, timeout=60)
    assert r.returncode == 0 and len(r.stdout.splitlines()) == 3
    assert r.stderr == "", r.stderr


def test_unknown_kind_or_metric_says_what_exists(daemon):
    feed(daemon)
    r = gw("alerts", "--kind", "bogus", "--api", daemon.api)
    assert r.returncode != 0 and "bogus" in r.stderr and "memorized" in r.stderr, r
    r = gw("export", "piped", "--metric", "nope", "--api", daemon.api)
    assert r.returncode != 0 and "nope" in r.stderr and "train_loss" in r.stderr, r
    db = daemon.db
    daemon.stop()
    r = gw("export", "piped", "--metric", "nope", "--db", str(db))
    assert r.returncode != 0 and "train_loss" in r.stderr, r
    r = gw("alerts", "--kind", "bogus", "--db", str(db))
    assert r.returncode != 0 and "onset" in r.stderr, r
    # known names still work
    r = gw("export", "piped", "--metric", "val_acc", "--db", str(db))
    assert r.returncode == 0 and len(r.stdout.splitlines()) == 3000


def test_status_without_daemon_offers_what_it_has(tmp_path: Path, start_daemon):
    h = start_daemon()
    h.stop()
    r = gw("status", "--api", h.api, "--timeout", "0.5")
    assert r.returncode != 0
    if "--db" in r.stderr:  # it may only mention --db if status takes one
        r2 = gw("status", "--db", str(h.db))
        assert r2.returncode == 0, r2.stderr
        assert "runs" in r2.stdout


def test_daemon_does_not_create_missing_directories_or_a_db_it_cannot_serve(
        tmp_path: Path, start_daemon):
    missing = tmp_path / "nonexistent" / "dir" / "x.db"
    r = gw("daemon", "--db", str(missing), "--ingest", f"ipc://{tmp_path}/i",
           "--pub", f"ipc://{tmp_path}/p", "--api", f"ipc://{tmp_path}/a", timeout=30)
    assert r.returncode != 0 and "nonexistent" in r.stderr, r
    assert not missing.parent.exists()
    # Another daemon holds the endpoints: the second fails and leaves no db behind.
    h = start_daemon()
    other = tmp_path / "other.db"
    r = gw("daemon", "--db", str(other), "--ingest", h.ingest, "--pub", h.pub, "--api", h.api,
           timeout=30)
    assert r.returncode != 0, r
    assert not other.exists() and not Path(str(other) + "-wal").exists(), r.stderr
    # A tcp port in use (bind fails after the store was opened): no db either.
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        s.listen()
        port = s.getsockname()[1]
        r = gw("daemon", "--db", str(other), "--ingest", f"tcp://127.0.0.1:{port}",
               "--insecure-tcp", "--pub", f"ipc://{h.sockdir}/p2", "--api",
               f"ipc://{h.sockdir}/a2", timeout=30)
    assert r.returncode != 0 and "in use" in r.stderr, r
    assert not other.exists() and not Path(str(other) + "-wal").exists(), r.stderr


@pytest.mark.skipif(sys.platform != "linux", reason="bash pipes")
def test_alerts_head_1(daemon):
    feed(daemon)
    cmd = " ".join(shlex.quote(a) for a in [*GROKWATCH, "alerts", "--api", daemon.api])
    r = subprocess.run(["bash", "-c", f"{cmd} | head -1"], capture_output=True, text=True,
                       env=ENV, timeout=60)
    assert r.returncode == 0 and len(r.stdout.splitlines()) == 1 and r.stderr == ""
