"""`grokwatch replay`: the same detectors over a stored or exported run, as JSON lines."""

from __future__ import annotations

import argparse
import json
import math
import subprocess
import time
from pathlib import Path

import pytest
from gwcli import GROKWATCH

from grokwatch.cli import replay as replay_cli
from grokwatch.cli.output import jsonable
from grokwatch.daemon.detectors import RunDetector
from grokwatch.probe import Probe


def cli(*args: str) -> subprocess.CompletedProcess:
    return subprocess.run([*GROKWATCH, *args], capture_output=True,
                          text=True, timeout=60)


def synthetic_run(probe: Probe, *, end: int = 1500, change: int = 400) -> None:
    """Memorized at once; structure above its null rises from ``change`` on."""
    for step in range(0, end + 1, 10):
        late = max(0, step - change - 250)
        probe.log(step, train_loss=0.01, train_acc=1.0, val_loss=1.0,
                  val_acc=min(1.0, 0.01 + late / 150))
        d = max(0, step - change)
        r = 1.2 * math.exp(0.004 * d)
        probe.log(step, **{"neurons.fourier_ipr": 0.08 * r, "neurons.fourier_ipr_null": 0.08,
                           "neurons.fourier_conc": 0.15 * r, "neurons.fourier_conc_null": 0.15,
                           "neurons.fourier_entropy": 0.999, "weight_norm": 40.0})


def wait_alerts(daemon, run: str, n: int, timeout: float = 10.0) -> list[dict]:
    deadline = time.monotonic() + timeout
    while True:
        alerts = daemon.request("alerts", run=run)["alerts"]
        if len(alerts) >= n or time.monotonic() > deadline:
            return alerts
        time.sleep(0.05)


def lines(out: str) -> list[dict]:
    return [json.loads(x) for x in out.splitlines()]


def replay_db(daemon, *run: str, expect: list[dict], timeout: float = 10.0) -> list[dict]:
    """``replay --db`` output, retried while the daemon's last batch may be uncommitted."""
    deadline = time.monotonic() + timeout
    while True:
        res = cli("replay", "--db", str(daemon.db), *run)
        assert res.returncode == 0, res.stderr
        got = lines(res.stdout)
        if got == expect or time.monotonic() > deadline:
            return got
        time.sleep(0.2)


def test_replay_from_store_and_from_export_equals_live(daemon, tmp_path):
    with Probe("synth", endpoint=daemon.ingest, config={"wd": 1.0}, modulus=53) as p:
        synthetic_run(p)
    live = wait_alerts(daemon, "synth", 3)
    assert [a["kind"] for a in live] == ["memorized", "onset", "generalized"]
    want = json.loads(json.dumps(live))
    assert replay_db(daemon, "synth", expect=want) == want  # identical maps, labels included
    # ... and from the exported JSONL (no config there, so no labels)
    res = cli("export", "synth", "--format", "jsonl", "--db", str(daemon.db))
    assert res.returncode == 0, res.stderr
    f = tmp_path / "synth.jsonl"
    f.write_text(res.stdout)
    res = cli("replay", str(f))  # the run name defaults to the file's stem
    assert res.returncode == 0, res.stderr
    from_file = lines(res.stdout)
    assert [{**a, "labels": {}} for a in live] == from_file


def test_replay_restarts_the_detector_at_each_session(daemon):
    # The daemon starts a fresh detector on every hello: replay must too.
    for _ in range(2):
        with Probe("twice", endpoint=daemon.ingest) as p:
            for step in range(0, 60, 10):
                p.log(step, train_acc=1.0)
    live = wait_alerts(daemon, "twice", 2)
    assert [a["kind"] for a in live] == ["memorized", "memorized"]
    want = json.loads(json.dumps(live))
    assert replay_db(daemon, expect=want) == want


def test_replay_refuses_what_it_cannot_read(tmp_path):
    res = cli("replay", "--db", str(tmp_path / "absent.db"))
    assert res.returncode == 2 and "no store" in res.stderr
    res = cli("replay", str(tmp_path / "absent.jsonl"))
    assert res.returncode == 2 and "cannot read" in res.stderr
    res = cli("replay")
    assert res.returncode == 2 and "FILE" in res.stderr


def test_replay_of_an_unknown_run_in_a_store(daemon):
    with Probe("known", endpoint=daemon.ingest) as p:
        p.log(0, train_acc=0.5)
    wait_alerts(daemon, "known", 0)
    res = cli("replay", "--db", str(daemon.db), "nope*")
    assert res.returncode == 2 and "no run matching 'nope*'" in res.stderr


@pytest.mark.parametrize("line, msg", [
    ("{not json", "not JSON"),
    ('{"step": 1, "t": 2.0, "name": "x"}', "expected an object"),
    ('{"step": -1, "t": 2.0, "name": "x", "value": 1}', "step must be"),
    ('{"step": 1, "t": "nan", "name": "x", "value": 1}', "t must be finite"),
    ('{"step": 1, "t": 2.0, "name": "", "value": 1}', "name must be"),
    ('{"step": 1, "t": 2.0, "name": "x", "value": "abc"}', "is not a number"),
    ('{"step": 1, "t": 2.0, "name": "x", "value": [1]}', "must be a number"),
])
def test_bad_export_lines_name_the_line(line, msg):
    good = '{"step": 0, "t": 1.0, "name": "train_acc", "value": 0.5}'
    with pytest.raises(replay_cli.ReplayError) as e:
        list(replay_cli.jsonl_records(iter([good, "", line]), "f.jsonl"))
    assert str(e.value).startswith("f.jsonl:3: ") and msg in str(e.value)


def test_export_rows_group_into_records_and_carry_nonfinite_values():
    rows = [
        {"step": 0, "t": 1.0, "name": "train_acc", "value": 0.5},
        {"step": 0, "t": 1.0, "name": "train_loss", "value": 2.0},
        {"step": 0, "t": 1.5, "name": "weight_norm", "value": 3.0},
        {"step": 10, "t": 2.0, "name": "train_loss", "value": "nan"},
    ]
    recs = list(replay_cli.jsonl_records(iter(json.dumps(r) for r in rows), "f"))
    assert [(k, s, t) for k, s, t, _ in recs] == [("scalars", 0, 1.0), ("scalars", 0, 1.5),
                                                  ("scalars", 10, 2.0)]
    assert recs[0][3] == {"train_acc": 0.5, "train_loss": 2.0}
    assert math.isnan(recs[2][3]["train_loss"])
    alerts = replay_cli.replay_records("r", iter(recs))
    assert [a["kind"] for a in alerts] == ["diverged"]


def test_replay_records_is_the_run_detector():
    det = RunDetector("r")
    recs = [("scalars", s, 100.0 + s, {"train_acc": 1.0}) for s in range(0, 50, 10)]
    direct = [a.to_wire() for k, s, t, v in recs for a in det.on_scalars(s, t, v)]
    assert replay_cli.replay_records("r", iter(recs)) == direct
    assert jsonable({"a": [math.inf, 1.0]}) == {"a": [None, 1.0]}


def test_replay_subcommand_registers():
    p = argparse.ArgumentParser()
    replay_cli.register(p.add_subparsers())
    a = p.parse_args(["replay", "--db", "x.db", "run-*"])
    assert a.db == Path("x.db") and a.args == ["run-*"] and a.func is replay_cli.cmd_replay
