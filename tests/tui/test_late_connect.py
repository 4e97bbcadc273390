"""A client that connects after a long run ended sees the whole run (issue 13 item 1).

The daemon keeps 512 recent points per metric in its ring and the rest thinned in
a history; a TUI that asked only for the tail drew a 12,000-step run as
``steps 6880..11990`` with no early alert marks. Connecting late must show steps
from 0 to the end and a mark for every alert the run raised.
"""

from __future__ import annotations

import time

import numpy as np
from tuidata import screen_text
from tuiprobe import embedding

from grokwatch.probe import Probe
from grokwatch.tui.app import GrokwatchApp
from grokwatch.tui.sparkline import ALERT_MARKS

STEPS, EVERY = 12_000, 10


def grokking_run(endpoint: str, run: str) -> None:
    """Memorizes by step ~200, generalizes around step 7,000, ends at step 11,990."""
    pr = Probe(run, endpoint=endpoint, modulus=13, every=1000, config={"k": 3})
    for s in range(0, STEPS, EVERY):
        val = 0.01 + 0.99 / (1 + np.exp(-(s - 7000) / 300))
        pr.log(s, train_loss=1 / (s + 1), train_acc=min(1.0, s / 200), val_acc=float(val),
               val_loss=2.0 - float(val))
        if s % 1000 == 0:
            pr.observe(s, embed=embedding(3, s))
    pr.close()


async def test_late_connect_shows_whole_history_and_every_alert(daemon):
    grokking_run(daemon.ingest, "late")
    deadline = time.monotonic() + 15
    while True:  # the run has ended and its alerts are stored before anyone connects
        runs = daemon.request("runs")["runs"]
        if runs and runs[0]["state"] == "finished" and runs[0]["step"] == STEPS - EVERY:
            break
        assert time.monotonic() < deadline, runs
        time.sleep(0.1)
    alerts = [a for a in daemon.request("alerts", run="late")["alerts"]
              if a["status"] != "resolved"]
    assert any(a["kind"] == "memorized" and a["step"] < 1000 for a in alerts), alerts

    for size in ((80, 24), (200, 50)):
        app = GrokwatchApp(api=daemon.api, pub=daemon.pub, heartbeat_timeout=10.0)
        async with app.run_test(size=size) as pilot:
            t0 = time.monotonic()
            while not app.table.rows and time.monotonic() - t0 < 10:
                await pilot.pause(0.05)
            await pilot.press("enter")
            await pilot.pause(0.2)
            rv = app.detail.rv
            for name in ("train_acc", "val_acc", "train_loss"):
                st = rv.series[name].step_array()
                assert st[0] == 0 and st[-1] == STEPS - EVERY, (name, st[:3], st[-3:])
            lines = screen_text(app)
            shown = "\n".join(lines)
            assert f"steps 0..{STEPS - EVERY}" in shown
            # Scalar rows start at the left edge of the axis, not part way across.
            row = next(ln for ln in lines if ln.startswith("train_acc"))
            lane = next(ln for ln in lines if ln.startswith("alerts "))
            col = len(lane) - len(lane.lstrip("alerts").lstrip())
            assert row[col] != " ", row
            marks = lane[col:].split()[0]
            for a in alerts:
                assert ALERT_MARKS.get(a["kind"], "?") in marks, (a["kind"], lane)
            await pilot.press("q")


async def test_connected_live_the_rows_still_start_at_step_0(daemon):
    """Watching from the start: after 1,200 points the TUI still holds the run from
    step 0 (its series thin, they no longer forget the oldest points)."""
    import asyncio

    app = GrokwatchApp(api=daemon.api, pub=daemon.pub, heartbeat_timeout=10.0)
    async with app.run_test(size=(80, 24)) as pilot:
        t0 = time.monotonic()
        while not app.model.connected and time.monotonic() - t0 < 10:
            await pilot.pause(0.05)
        await pilot.pause(0.3)
        snaps = app.model.snapshots
        await asyncio.to_thread(grokking_run, daemon.ingest, "live")
        t0 = time.monotonic()
        while True:
            rv = app.model.runs.get("live")
            if rv is not None and rv.state == "finished" and "train_acc" in rv.series \
                    and rv.series["train_acc"].last_step == STEPS - EVERY:
                break
            assert time.monotonic() - t0 < 20, rv and rv.summary
            await pilot.pause(0.1)
        # Live updates (or, after a re-snapshot, the whole history): from step 0 either way.
        st = rv.series["train_acc"].step_array()
        assert st[0] == 0 and np.all(np.diff(st) > 0), (st[:3], app.model.snapshots - snaps)
        await pilot.press("q")
