"""A codebase's own metric names (issue 13 item 11): unmapped, a run gets no phase and
a hint says why (TUI detail, `grokwatch status`); mapped with ``Probe(names=...)`` in
one argument, phases and alerts work. Real daemon, real probe, real CLI."""

from __future__ import annotations

import subprocess
import sys
import time
from pathlib import Path

import pytest

from grokwatch.probe import Probe

sys.path.insert(0, str(Path(__file__).parents[1] / "tui"))

MAPPING = {"training/accuracy": "train_acc", "validation/accuracy": "val_acc",
           "training/loss": "train_loss", "validation/loss": "val_loss"}


def memorizing(endpoint: str, run: str, names: dict | None) -> None:
    pr = Probe(run, endpoint=endpoint, every=10**9, names=names)
    for s in range(400):
        pr.log(s, {"training/accuracy": min(1.0, s / 50), "validation/accuracy": 0.01,
                   "training/loss": 1 / (s + 1), "validation/loss": 4.0})
    pr.close()


def wait_runs(daemon, n: int) -> dict:
    deadline = time.monotonic() + 15
    while True:
        runs = {r["run"]: r for r in daemon.request("runs")["runs"]}
        if len(runs) == n and all(r["step"] == 399 for r in runs.values()):
            return runs
        assert time.monotonic() < deadline, runs
        time.sleep(0.1)


async def test_names_map_onto_the_ones_that_drive_phases_and_unmapped_runs_get_a_hint(daemon):
    memorizing(daemon.ingest, "theirs", None)
    memorizing(daemon.ingest, "mapped", MAPPING)
    runs = wait_runs(daemon, 2)
    assert runs["theirs"]["phase"] == "starting" and "training/accuracy" in runs["theirs"]["last"]
    assert runs["mapped"]["phase"] == "memorization", runs["mapped"]
    assert set(runs["mapped"]["last"]) == set(MAPPING.values())
    kinds = {(a["run"], a["kind"]) for a in daemon.request("alerts")["alerts"]}
    assert ("mapped", "memorized") in kinds and not any(r == "theirs" for r, _ in kinds)

    r = subprocess.run([sys.executable, "-m", "grokwatch", "status", "--api", daemon.api],
                       capture_output=True, text=True, timeout=30)
    assert r.returncode == 0, r.stderr
    hint = [ln for ln in r.stdout.splitlines() if ln.startswith("hint:")]
    assert len(hint) == 1 and "theirs" in hint[0] and "mapped" not in hint[0]
    assert "names=" in hint[0]

    from tuidata import screen_text

    from grokwatch.tui.app import GrokwatchApp
    for size in ((80, 24), (200, 50)):
        app = GrokwatchApp(api=daemon.api, pub=daemon.pub, heartbeat_timeout=10.0)
        async with app.run_test(size=size) as pilot:
            t0 = time.monotonic()
            while len(app.table.rows) < 2 and time.monotonic() - t0 < 10:
                await pilot.pause(0.05)
            await pilot.press("end", "enter")  # "theirs" sorts last
            await pilot.pause(0.2)
            text = " ".join(ln.strip() for ln in screen_text(app))
            assert app.detail.rv.run == "theirs"
            assert "hint: no train_acc/val_acc received" in text and "names=" in text
            await pilot.press("home")
            await pilot.press("escape", "home", "enter")
            await pilot.pause(0.2)
            assert app.detail.rv.run == "mapped"
            assert "hint:" not in " ".join(screen_text(app))
            await pilot.press("q")


def test_names_argument_is_checked_up_front():
    with pytest.raises(ValueError, match="names"):
        Probe("x", endpoint="ipc:///nonexistent/x", names=["train_acc"])
    with pytest.raises(ValueError, match="names"):
        Probe("x", endpoint="ipc:///nonexistent/x", names={"a": 3})


def test_log_takes_a_mapping_and_still_takes_step_as_a_keyword(tmp_path):
    pr = Probe("x", endpoint=f"ipc://{tmp_path}/none", close_timeout=0.1)
    try:
        pr.log(step=5, train_acc=1.0)  # as before the mapping argument
        pr.log(6, {"training/accuracy": 0.5}, val_acc=0.1)
        assert pr.errors == 0
        pr.log(7, "not a mapping")  # counted, never raised
        assert pr.errors == 1
    finally:
        pr.close()
