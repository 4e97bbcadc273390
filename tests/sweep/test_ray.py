"""``--ray``: the same trials as Ray tasks on a local Ray started by the test."""

from __future__ import annotations

import io
import sys
import time
from pathlib import Path

import pytest

ray = pytest.importorskip("ray", reason="Ray is not installed (pip install 'grokwatch[ray]')")

from grokwatch.sweep.ray_backend import RayBackend  # noqa: E402
from grokwatch.sweep.runner import Runner  # noqa: E402
from grokwatch.sweep.spec import parse_spec  # noqa: E402

FAKE = str(Path(__file__).parent / "fake_train.py")


@pytest.mark.slow
def test_ray_runs_trials_early_stop_and_failure(daemon, tmp_path):
    spec = parse_spec({"name": "ry", "command": [sys.executable, FAKE, "{kind}", "{steps}",
                                                  "0.01"],
                       "axes": {"kind": ["gen", "mem", "crash"], "steps": [3000]},
                       "stop": {"settled_for": 200, "poll": 0.2}})
    t0 = time.monotonic()
    backend = RayBackend(None, init_kw={"num_cpus": 2})
    try:
        assert backend.cpus() == 2
        out = io.StringIO()
        res = Runner(spec, api=daemon.api, ingest=daemon.ingest, jobs=2, backend=backend,
                     out=out, logdir=tmp_path).run()
    finally:
        backend.close()
    assert not ray.is_initialized()
    by = {t.trial.values["kind"]: t for t in res.trials}
    assert by["mem"].state == "early" and by["mem"].why == "memorization", out.getvalue()
    assert by["gen"].state == "done", out.getvalue()  # 3 s of logging, runs to its end
    assert by["crash"].state == "failed" and by["crash"].rc == 3
    runs = {r["run"]: r for r in daemon.request("runs")["runs"]}
    assert runs["ry-kind=gen-steps=3000"]["config"]["sweep"] == "ry"
    assert runs["ry-kind=gen-steps=3000"]["step"] == 3000
    assert runs["ry-kind=mem-steps=3000"]["step"] < 3000
    assert time.monotonic() - t0 < 120
