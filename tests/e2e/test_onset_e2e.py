"""Onset end to end: real training runs through a real daemon, then `grokwatch replay`.

A short grokking run (Gromov's quadratic MLP, a+b mod 53, weight decay 1) must get
``memorized``, then ``onset`` before validation accuracy reaches 0.5, then
``generalized``; the same run with weight decay 0 memorizes only and must get no
onset. Replaying each run from the store, and from its JSONL export, must give
exactly the alerts the daemon raised live.
"""

from __future__ import annotations

import json
import subprocess
import time
from pathlib import Path

import pytest
from gwcli import GROKWATCH

pytest.importorskip("torch")

from grokwatch.examples.presets import preset_config  # noqa: E402
from grokwatch.examples.train import WorkloadConfig, run_workload  # noqa: E402

pytestmark = pytest.mark.slow

SILENCE_OR_TRANSPORT = {"stalled", "lost", "dropped"}


def run(*args: str) -> str:
    res = subprocess.run([*GROKWATCH, *args], capture_output=True,
                         text=True, timeout=60)
    assert res.returncode == 0, res.stderr
    return res.stdout


def comparable(alerts: list[dict]) -> list[tuple]:
    """What live and replayed alerts must share (labels aside: an export has no config)."""
    out = []
    for a in alerts:
        if a["kind"] in SILENCE_OR_TRANSPORT:
            continue
        ev = json.loads(json.dumps(a["evidence"], sort_keys=True, default=str))
        out.append((a["kind"], a["status"], a["step"], a["t"], a["summary"], ev))
    return out


def train(preset: str, daemon, name: str, **overrides) -> dict:
    cfg = WorkloadConfig(**preset_config(preset, fast=True, **overrides))
    return run_workload(cfg, daemon.ingest, run=name)


def check_replay(daemon, name: str, live: list[dict], tmp_path: Path) -> None:
    deadline = time.monotonic() + 10  # the daemon's last batch may still be uncommitted
    while True:
        from_db = [json.loads(x) for x in run("replay", "--db", str(daemon.db), name).splitlines()]
        if comparable(from_db) == comparable(live) or time.monotonic() > deadline:
            break
        time.sleep(0.2)
    assert comparable(from_db) == comparable(live)
    assert all(a["labels"] == live[0]["labels"] for a in from_db)  # the run's config
    export = tmp_path / f"{name}.jsonl"
    export.write_text(run("export", name, "--format", "jsonl", "--db", str(daemon.db)))
    from_file = [json.loads(line) for line in run("replay", str(export), name).splitlines()]
    assert comparable(from_file) == comparable(live)


def test_grokking_run_gets_onset_before_validation_moves(daemon, tmp_path):
    summary = train("grokking", daemon, "grok")
    assert summary["t_50"] is not None, "the fast grokking preset no longer groks"
    live = daemon.request("alerts", run="grok")["alerts"]
    kinds = [a["kind"] for a in live if a["kind"] not in SILENCE_OR_TRANSPORT]
    assert kinds == ["memorized", "onset", "generalized"], live
    onset = next(a for a in live if a["kind"] == "onset")
    assert summary["t_mem"] <= onset["step"] < summary["t_50"]
    assert onset["evidence"]["val_acc"] < 0.5
    assert onset["evidence"]["structure"] and onset["evidence"]["corroborating"]
    runs = {r["run"]: r for r in daemon.request("runs")["runs"]}
    assert runs["grok"]["onset_step"] == onset["step"]
    assert runs["grok"]["phase"] == "grokking"
    check_replay(daemon, "grok", live, tmp_path)


def test_weight_decay_zero_run_memorizes_without_onset(daemon, tmp_path):
    summary = train("memorization", daemon, "memo")
    assert summary["t_mem"] is not None and summary["t_50"] is None
    live = daemon.request("alerts", run="memo")["alerts"]
    kinds = [a["kind"] for a in live if a["kind"] not in SILENCE_OR_TRANSPORT]
    assert kinds == ["memorized"], live
    runs = {r["run"]: r for r in daemon.request("runs")["runs"]}
    assert runs["memo"]["onset_step"] is None
    assert runs["memo"]["phase"] == "memorization"
    check_replay(daemon, "memo", live, tmp_path)
