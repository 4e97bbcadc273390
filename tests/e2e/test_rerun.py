"""Reusing a run name (issue 13 item 12): a rerun is a new session of the run.

Three runs of a script under one name used to merge into one row whose series
mixed the three, with ``memorized`` firing three times for no visible reason. Now
each hello from a new probe session starts the run's live view over (series,
arrays, phase, onset), the summary counts the session, each alert says which
session raised it, the TUI shows the current session, and a daemon restart
rebuilds the same. The store keeps every session's records.
"""

from __future__ import annotations

import sys
import time
from pathlib import Path

import numpy as np

from grokwatch.probe import Probe

sys.path.insert(0, str(Path(__file__).parents[1] / "tui"))

STEPS = 200


def run_once(endpoint: str, offset: float) -> None:
    pr = Probe("same", endpoint=endpoint, every=10**9, config={"try": offset})
    for s in range(STEPS):
        pr.log(s, train_acc=min(1.0, s / 40), val_acc=0.01 + offset, train_loss=1 / (s + 1),
               val_loss=3.0)
    pr.close()


def wait_session(daemon, n: int) -> dict:
    deadline = time.monotonic() + 15
    while True:
        runs = daemon.request("runs")["runs"]
        if runs and runs[0].get("session") == n and runs[0]["step"] == STEPS - 1 \
                and runs[0]["state"] == "finished":
            return runs[0]
        assert time.monotonic() < deadline, runs
        time.sleep(0.1)


def check_view(daemon) -> None:
    snap = daemon.request("snapshot", history=True)
    (r,) = snap["runs"]
    assert r["summary"]["session"] == 3
    for name in ("train_acc", "val_acc"):
        st = r["series"][name]["steps"]
        assert st[0] == 0 and st[-1] == STEPS - 1 and np.all(np.diff(st) > 0), st[:5]
    assert set(r["series"]["val_acc"]["values"]) == {0.01 + 0.02}  # the third run's only


async def test_rerun_is_a_new_session_of_the_run(start_daemon):
    daemon = start_daemon()
    for i in range(3):
        run_once(daemon.ingest, 0.01 * i)
        summ = wait_session(daemon, i + 1)
    assert summ["phase"] == "memorization" and len(daemon.request("runs")["runs"]) == 1
    check_view(daemon)
    alerts = [a for a in daemon.request("alerts")["alerts"] if a["kind"] == "memorized"]
    assert [a["labels"].get("session", 1) for a in alerts] == [1, 2, 3]
    # Each session's alerts are their own series (hooks' cooldown is per fingerprint).
    assert len({a["fingerprint"] for a in alerts}) == 3
    # The store keeps all three sessions' records.
    rows = daemon.request("export", run="same", metric="val_acc")["rows"]
    assert len(rows) == 3 * STEPS

    daemon.restart()
    wait_session(daemon, 3)
    check_view(daemon)

    from tuidata import screen_text

    from grokwatch.tui.app import GrokwatchApp
    for size in ((80, 24), (200, 50)):
        app = GrokwatchApp(api=daemon.api, pub=daemon.pub, heartbeat_timeout=10.0)
        async with app.run_test(size=size) as pilot:
            t0 = time.monotonic()
            while not app.table.rows and time.monotonic() - t0 < 10:
                await pilot.pause(0.05)
            lines = screen_text(app)
            assert any("same #3" in ln for ln in lines), lines[:4]
            await pilot.press("enter")
            await pilot.pause(0.2)
            text = "\n".join(screen_text(app))
            assert "session 3 (rerun)" in text
            assert "alerts of this run (1," in text  # this session's memorized only
            await pilot.press("q")
