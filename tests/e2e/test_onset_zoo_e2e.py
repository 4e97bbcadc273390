"""Onset from held-out geometry, end to end: a non-abelian group task through a real daemon.

Composition in the dihedral group D_30 (one-hot MLP, no modulus: the probe has no
Fourier basis to use) is trained with exactly the public probe API the held-out
evaluation uses: ``Probe(run, endpoint=, config=, modulus=None, every=10)``,
``log`` every 10 steps and ``observe(step, model=, embed=, neurons=, features=H,
labels=y)`` on a fixed held-out batch. The run must get ``memorized`` then an
``onset`` whose evidence is the held-out batch (its readout margin rising while
the validation loss falls), while validation accuracy is still near chance; the same run without weight decay must get no onset.
"""

from __future__ import annotations

import pytest

pytest.importorskip("torch")

from grokwatch.examples.zoo import ZooConfig, run_with_probe  # noqa: E402

pytestmark = pytest.mark.slow

GROUP = {"model": "mlp", "op": "D30", "modulus": 60, "frac": 0.5, "until_val": None}


def test_group_composition_gets_a_held_out_onset_long_before_validation(daemon):
    s = run_with_probe(ZooConfig(**GROUP, steps=700), "d30", daemon.ingest)
    alerts = daemon.request("alerts", run="d30")["alerts"]
    kinds = [a["kind"] for a in alerts if a["status"] == "firing"]
    assert kinds[:2] == ["memorized", "onset"], alerts
    onset = next(a for a in alerts if a["kind"] == "onset")
    assert s["t_mem"] <= onset["step"] <= 700
    assert onset["evidence"]["evidence"] == "held_out_margin"
    assert onset["evidence"]["structure"] == ["features.readout_align"]
    assert onset["evidence"]["corroborating"] == ["val_loss"]
    assert onset["evidence"]["val_acc"] < 0.05  # validation has not moved (t_50 ~ 2,100)
    assert "held-out margin" in onset["summary"]
    runs = {r["run"]: r for r in daemon.request("runs")["runs"]}
    assert runs["d30"]["onset_step"] == onset["step"] and runs["d30"]["phase"] == "grokking"


def test_the_same_run_without_weight_decay_gets_no_onset(daemon):
    run_with_probe(ZooConfig(**GROUP, steps=900, weight_decay=0.0), "d30-wd0", daemon.ingest)
    alerts = daemon.request("alerts", run="d30-wd0")["alerts"]
    assert [a["kind"] for a in alerts if a["status"] == "firing"][:1] == ["memorized"]
    assert not [a for a in alerts if a["kind"] == "onset"]
    runs = {r["run"]: r for r in daemon.request("runs")["runs"]}
    assert runs["d30-wd0"]["phase"] == "memorization"
