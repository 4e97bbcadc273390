"""The detection zoo's training loop hands observe exactly the public API's arguments."""

from __future__ import annotations

import json
import re
import subprocess
import sys
from pathlib import Path

import pytest

torch = pytest.importorskip("torch")

from grokwatch.examples.zoo import ZooConfig, family_of, run_zoo  # noqa: E402


class Recorder:
    def __init__(self):
        self.logs, self.obs = [], []

    def log(self, step, **kw):
        self.logs.append((step, sorted(kw)))

    def observe(self, step, model=None, **kw):
        self.obs.append((step, {k: tuple(v.shape) for k, v in kw.items()}))


@pytest.mark.parametrize("cfg, keys", [
    ({"model": "transformer", "op": "add", "modulus": 11, "batch": 32, "width": 16},
     {"embed", "neurons", "features", "labels"}),
    ({"model": "mlp", "op": "S4", "modulus": 24, "width": 16}, {"embed", "neurons", "features",
                                                                "labels"}),
    ({"model": "digits", "width": 16}, {"layer1", "features", "labels"}),
])
def test_every_family_logs_every_10_steps_and_observes_the_public_arguments(cfg, keys):
    if cfg["model"] == "digits":
        pytest.importorskip("sklearn", reason="digits need scikit-learn")
    r = Recorder()
    s = run_zoo(ZooConfig(**cfg, steps=20, until_val=None), r)
    assert [st for st, _ in r.logs] == [0, 10, 20]
    assert r.logs[0][1] == ["train_acc", "train_loss", "val_acc", "val_loss"]
    assert set(r.obs[0][1]) == keys and r.obs[0][1]["features"][0] <= 256
    assert r.obs[0][1]["labels"] == (r.obs[0][1]["features"][0],)
    assert s["steps"] == 20


def test_families_and_the_probe_modulus():
    assert family_of(ZooConfig(model="quadratic", op="sub")) == "cyclic"
    assert family_of(ZooConfig(model="mlp", op="D30", modulus=60)) == "group"
    assert ZooConfig(model="mlp", op="D30", modulus=60).probe_modulus is None
    assert ZooConfig(model="mlp", op="mul", modulus=59).probe_modulus == 59
    assert ZooConfig(model="digits").probe_modulus is None


def test_detection_bench_replays_saved_series_into_the_family_table(tmp_path):
    import gzip

    data = Path(__file__).resolve().parents[1] / "daemon" / "data"
    bench = Path(__file__).resolve().parents[2] / "bench" / "detection.py"
    saved = {}
    for name, cfg in (("grp-D30-s0", {"model": "mlp", "op": "D30", "modulus": 60}),
                      ("ctl-tf-f.2", {"model": "transformer", "op": "add", "modulus": 59})):
        with gzip.open(data / f"{name}.jsonl.gz", "rt") as f:
            rows = [json.loads(line) for line in f]
        saved[name] = {"cfg": {**cfg, "steps": 4000}, "rows": rows, "alerts": []}
    path = tmp_path / "zoo.json"
    path.write_text(json.dumps(saved))
    out = subprocess.run([sys.executable, str(bench), "--replay", str(path), "--margin"],
                         capture_output=True, text=True, timeout=120)
    assert out.returncode == 0, out.stderr[-2000:]
    table = {line.split()[0]: line for line in out.stdout.splitlines() if line.strip()}
    assert "1/1" in table["group"] and "0/1" in table["transformer"]
    assert "held_out_margin" in table["grp-D30-s0"]
    # the margin: the control first fires somewhere below the thresholds, never at them
    m = re.search(r"ctl-tf-f\.2 +first gets an onset at ([0-9.]+)x", out.stdout)
    assert m and 0.0 <= float(m.group(1)) < 1.0, out.stdout[-1500:]
    assert "at 1x none does" in out.stdout
