"""The sweep runner against a real daemon, with a tiny stand-in trainer (tests/sweep/fake_train.py)."""

from __future__ import annotations

import io
import signal
import subprocess
import sys
import time
from pathlib import Path

from waiting import wait_for

from grokwatch.sweep.runner import PhaseWatch, Runner
from grokwatch.sweep.spec import EarlyStop, parse_spec

FAKE = str(Path(__file__).parent / "fake_train.py")


def spec(name: str, kinds: list[str], steps: int = 100, pause: float = 0.0, **extra):
    return parse_spec({"name": name, "command": [sys.executable, FAKE, "{kind}", str(steps),
                                                  str(pause)],
                       "axes": {"kind": kinds}, "jobs": 2, **extra})


def test_phasewatch_rules():
    w = PhaseWatch(EarlyStop(generalized_for=100, settled_for=300))
    assert w.update({"phase": "memorization", "step": 100, "last": {}}) is None
    assert w.update({"phase": "memorization", "step": 390, "last": {}}) is None
    assert w.update({"phase": "memorization", "step": 400, "last": {}}) == "memorization"
    w = PhaseWatch(EarlyStop(generalized_for=100, settled_for=300))
    assert w.update({"phase": "grokking", "step": 500, "last": {"val_acc": 0.5}}) is None
    assert w.update({"phase": "grokking", "step": 600, "last": {"val_acc": 0.97}}) is None
    assert w.update({"phase": "grokking", "step": 650, "last": {"val_acc": 0.9}}) is None
    assert w.update({"phase": "grokking", "step": 700, "last": {"val_acc": 0.99}}) is None
    assert w.update({"phase": "grokking", "step": 800, "last": {"val_acc": 0.99}}) == \
        "generalized"
    # a memorization that turns into grokking starts its clock again
    w = PhaseWatch(EarlyStop(settled_for=300))
    assert w.update({"phase": "memorization", "step": 0, "last": {}}) is None
    assert w.update({"phase": "grokking", "step": 290, "last": {}}) is None
    assert w.update({"phase": "memorization", "step": 400, "last": {}}) is None


def test_failed_trial_marked_sweep_goes_on_and_resume_skips_finished(daemon, tmp_path):
    out = io.StringIO()
    s = spec("fr", ["gen", "crash", "mem"])
    res = Runner(s, api=daemon.api, ingest=daemon.ingest, out=out, logdir=tmp_path).run()
    states = {t.trial.values["kind"]: t.state for t in res.trials}
    assert states == {"gen": "done", "crash": "failed", "mem": "done"}, out.getvalue()
    assert res.rc == 1
    text = out.getvalue()
    assert "failed" in text and "exit 3" in text and "2 done" in text
    runs = wait_for(lambda: (lambda r: r if len(r) == 3 and all(
        x["state"] == "finished" for x in r.values()) else None)(
        {r["run"]: r for r in daemon.request("runs")["runs"]}), timeout=10)
    assert runs["fr-kind=crash"]["config"]["sweep_status"] == "failed"
    assert runs["fr-kind=gen"]["config"]["kind"] == "gen"  # axis values are config
    assert runs["fr-kind=gen"]["config"]["sweep"] == "fr"
    # resume: the two finished trials are skipped, the failed one runs again
    out2 = io.StringIO()
    res2 = Runner(s, api=daemon.api, ingest=daemon.ingest, out=out2, logdir=tmp_path).run()
    assert {t.trial.values["kind"]: t.state for t in res2.trials} == {
        "gen": "skipped", "crash": "failed", "mem": "skipped"}
    assert "2 trial(s) already finished in the store: skipped" in out2.getvalue()


def test_early_stop_ends_settled_trials(daemon, tmp_path):
    out = io.StringIO()
    s = spec("es", ["mem", "gen"], steps=3000, pause=0.01,
             stop={"settled_for": 200, "generalized_for": 100, "poll": 0.2})
    t0 = time.monotonic()
    res = Runner(s, api=daemon.api, ingest=daemon.ingest, out=out, logdir=tmp_path).run()
    took = time.monotonic() - t0
    by = {t.trial.values["kind"]: t for t in res.trials}
    assert by["mem"].state == "early" and by["mem"].why == "memorization", out.getvalue()
    assert by["gen"].state == "early" and by["gen"].why == "generalized", out.getvalue()
    assert res.rc == 0
    assert took < 2.5  # a full trial is 300 logs x 10 ms = 3 s at least
    runs = {r["run"]: r for r in daemon.request("runs")["runs"]}
    assert runs["es-kind=mem"]["phase"] == "memorization"
    assert runs["es-kind=gen"]["phase"] == "comprehension"
    assert runs["es-kind=mem"]["step"] < 3000


def test_ctrl_c_stops_cleanly_and_says_what_finished(daemon, tmp_path):
    toml = tmp_path / "s.toml"
    toml.write_text(f'name = "cc"\ncommand = ["{sys.executable}", "{FAKE}", "{{kind}}", '
                    f'"{{n}}", "0.01"]\njobs = 1\n[axes]\nkind = ["gen"]\nn = [20, 5000, 6000]\n')
    proc = subprocess.Popen([sys.executable, "-m", "grokwatch", "sweep", str(toml), "--api",
                             daemon.api, "--ingest", daemon.ingest], stdout=subprocess.PIPE,
                            stderr=subprocess.STDOUT, text=True)
    try:
        wait_for(lambda: any(r["run"] == "cc-kind=gen-n=20" and r["state"] == "finished"
                             for r in daemon.request("runs")["runs"]), timeout=20)
        time.sleep(0.5)
        proc.send_signal(signal.SIGINT)
        out, _ = proc.communicate(timeout=30)
    finally:
        if proc.poll() is None:
            proc.kill()
    assert proc.returncode == 130, out
    assert "interrupted" in out and "1 finished, 1 stopped, 1 not started" in out, out
    assert "finished: cc-kind=gen-n=20" in out
    runs = {r["run"]: r for r in daemon.request("runs")["runs"]}
    assert runs["cc-kind=gen-n=5000"]["config"]["sweep_status"] == "stopped"
    assert runs["cc-kind=gen-n=5000"]["step"] < 5000
    assert "cc-kind=gen-n=6000" not in runs
