"""Short versions of each preset, run by ``grokwatch train`` through a real daemon.

The stored phases and alerts must match what the preset demonstrates. The detection
engineer's detectors decide phases and alerts; these tests hold them to the presets.
"""

from __future__ import annotations

import json
import subprocess
import sys

import pytest

pytestmark = pytest.mark.slow

TRAIN_TIMEOUT = 120


def train(daemon, preset: str, run: str, *extra: str) -> dict:
    """Run ``grokwatch train PRESET --fast`` against ``daemon``; return its JSON summary."""
    cmd = [sys.executable, "-m", "grokwatch", "train", preset, "--fast", "--run", run,
           "--endpoint", daemon.ingest, "--json", *extra]
    res = subprocess.run(cmd, capture_output=True, text=True, timeout=TRAIN_TIMEOUT)
    assert res.returncode == 0, f"train failed ({res.returncode}):\n{res.stderr}"
    return json.loads(res.stdout.strip().splitlines()[-1])


def run_state(daemon, run: str) -> tuple[dict, list[dict]]:
    """The daemon's summary of ``run`` and its alerts."""
    runs = {r["run"]: r for r in daemon.request("runs")["runs"]}
    assert run in runs, f"daemon has no run {run!r}: {sorted(runs)}"
    alerts = daemon.request("alerts", run=run)["alerts"]
    return runs[run], alerts


def firing(alerts: list[dict]) -> dict[str, int]:
    """kind -> step of its first firing alert."""
    out: dict[str, int] = {}
    for a in alerts:
        if a["status"] == "firing":
            out.setdefault(a["kind"], a["step"])
    return out


def stored_alerts(db, run: str) -> list[dict]:
    """Alerts read back from the SQLite store by the CLI, with no daemon running."""
    res = subprocess.run([sys.executable, "-m", "grokwatch", "alerts", "--db", str(db),
                          "--run", run, "--json"], capture_output=True, text=True, timeout=60)
    assert res.returncode == 0, res.stderr
    return json.loads(res.stdout)["alerts"]


def test_grokking_memorizes_then_onset_before_val_moves_then_generalizes(daemon):
    summary = train(daemon, "grokking", "grok")
    assert summary["t_mem"] is not None and summary["t_50"] is not None, summary
    state, alerts = run_state(daemon, "grok")
    kinds = firing(alerts)
    assert {"memorized", "onset", "generalized"} <= set(kinds), alerts
    assert kinds["memorized"] <= kinds["onset"] < kinds["generalized"], kinds
    # The point of grokwatch: onset is called before validation accuracy reaches 0.5.
    assert kinds["onset"] < summary["t_50"], (kinds, summary["t_50"])
    assert "diverged" not in kinds and "dropped" not in kinds, alerts
    assert state["phase"] == "grokking"
    assert state["onset_step"] == kinds["onset"]
    assert state["state"] == "finished"
    assert state["step"] == summary["steps"]
    # The same alerts are in the store, read without the daemon.
    assert daemon.stop() == 0
    stored = firing(stored_alerts(daemon.db, "grok"))
    assert {k: stored.get(k) for k in ("memorized", "onset", "generalized")} == {
        k: kinds[k] for k in ("memorized", "onset", "generalized")}


def test_memorization_memorizes_and_never_gets_onset(daemon):
    summary = train(daemon, "memorization", "mem")
    assert summary["t_mem"] is not None and summary["t_50"] is None, summary
    state, alerts = run_state(daemon, "mem")
    kinds = firing(alerts)
    assert "memorized" in kinds, alerts
    assert not {"onset", "generalized", "diverged"} & set(kinds), alerts
    assert state["phase"] == "memorization"
    assert state["onset_step"] is None


def test_comprehension_generalizes_with_training(daemon):
    summary = train(daemon, "comprehension", "comp")
    assert summary["val_acc"] >= 0.9, summary
    state, alerts = run_state(daemon, "comp")
    kinds = firing(alerts)
    assert "generalized" in kinds, alerts
    assert "diverged" not in kinds, alerts
    assert state["phase"] == "comprehension"


def test_confusion_never_fits(daemon):
    summary = train(daemon, "confusion", "conf")
    assert summary["t_mem"] is None, summary
    state, alerts = run_state(daemon, "conf")
    kinds = firing(alerts)
    assert not {"memorized", "onset", "generalized"} & set(kinds), alerts
    assert state["phase"] == "confusion"


def test_sigterm_stops_a_training_cleanly_and_it_says_bye(daemon):
    import signal
    import time

    proc = subprocess.Popen([sys.executable, "-m", "grokwatch", "train", "grokking", "--run",
                             "term", "--endpoint", daemon.ingest, "--quiet"],
                            stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
    try:
        deadline = time.monotonic() + 60
        step = None
        while time.monotonic() < deadline:
            runs = {r["run"]: r for r in daemon.request("runs")["runs"]}
            step = (runs.get("term") or {}).get("step")
            if step:
                break
            time.sleep(0.2)
        assert step, "the run never reached the daemon"
        assert runs["term"]["state"] == "live"
        proc.send_signal(signal.SIGTERM)
        proc.wait(15)
    finally:
        if proc.poll() is None:
            proc.kill()
            proc.wait()
    assert proc.returncode == 128 + signal.SIGTERM, proc.stderr.read()
    # The bye may still be in flight when the process is gone: give the daemon a moment.
    deadline = time.monotonic() + 10
    while True:
        state, _ = run_state(daemon, "term")
        if state["state"] != "live" or time.monotonic() > deadline:
            break
        time.sleep(0.1)
    assert state["state"] == "finished", state  # a bye, not silence
    assert state["step"] >= step
