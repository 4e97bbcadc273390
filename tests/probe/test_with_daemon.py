"""The probe against the real daemon: a SIGKILL mid-run loses nothing."""

from __future__ import annotations

import time

import pytest

from grokwatch.probe import Probe


def exported_steps(daemon, run: str) -> list[int]:
    rows = daemon.request("export", run=run, metric="x", timeout=10)["rows"]
    return sorted(r["step"] for r in rows)


def wait_steps(daemon, run: str, n: int, timeout: float = 20.0) -> list[int]:
    deadline = time.monotonic() + timeout
    steps: list[int] = []
    while time.monotonic() < deadline:
        try:
            steps = exported_steps(daemon, run)
        except Exception:
            steps = []
        if len(steps) >= n:
            break
        time.sleep(0.1)
    return steps


@pytest.mark.slow
def test_daemon_sigkill_and_restart_lose_nothing(daemon):
    p = Probe("killed", endpoint=daemon.ingest)
    for i in range(1000):
        p.log(i, x=float(i))
    assert len(wait_steps(daemon, "killed", 1000)) == 1000
    for i in range(1000, 2000):
        p.log(i, x=float(i))
        if i == 1500:
            daemon.kill()  # no chance to commit what it holds
    time.sleep(0.3)  # training goes on while no daemon is there
    for i in range(2000, 2500):
        p.log(i, x=float(i))
    daemon.start()
    for i in range(2500, 3000):
        p.log(i, x=float(i))
    assert p.close(timeout=10.0), p.stats()
    steps = exported_steps(daemon, "killed")
    assert steps == list(range(3000)), "lost or duplicated steps"
    assert p.dropped == 0
    runs = {r["run"]: r for r in daemon.request("runs")["runs"]}
    assert runs["killed"]["counters"]["gaps"] == 0
