"""The onset detector on series recorded from the detection zoo (bench/detection.py).

Each file is one run's exported scalars (train/val accuracy, the probe's class
geometry, per-neuron Fourier statistics, weight norm), as the daemon stored them;
replayed through ``RunDetector`` exactly as ``grokwatch replay`` does. Expected
onsets are the live ones of the recording.
"""

from __future__ import annotations

import gzip
from pathlib import Path

import pytest

from grokwatch.cli.replay import jsonl_records
from grokwatch.daemon.detectors import RunDetector

DATA = Path(__file__).parent / "data"


def replay(name: str) -> tuple[RunDetector, list]:
    det = RunDetector(name)
    alerts = []
    with gzip.open(DATA / f"{name}.jsonl.gz", "rt") as f:
        for _kind, step, t, vals in jsonl_records(f, name):
            alerts += det.on_scalars(step, t, vals)
    return det, alerts


@pytest.mark.parametrize("name, t_mem, t_50, window", [
    ("grp-D30-s0", 230, 2140, (500, 600)),  # D30 composition, no modulus: lead 0.83
    ("tf-p59-s0", 720, 3340, (1350, 1450)),  # 1-layer transformer, mini-batches: lead 0.74
])
def test_grokking_runs_get_a_class_geometry_onset_long_before_validation(name, t_mem, t_50,
                                                                         window):
    det, alerts = replay(name)
    onset = [a for a in alerts if a.kind == "onset"]
    assert len(onset) == 1
    a = onset[0]
    assert window[0] <= a.step <= window[1] and t_mem <= a.step < t_50
    assert (t_50 - a.step) / (t_50 - t_mem) >= 0.6
    assert a.evidence["evidence"] == "class_geometry"
    assert a.evidence["val_acc"] < 0.1
    assert det.phase == "grokking"


@pytest.mark.parametrize("name", ["ctl-dig-shuffled", "ctl-tf-f.2"])
def test_controls_that_never_generalize_get_no_onset(name):
    # ctl-dig-shuffled: trained on permuted labels; its held-out separation rises x1.38
    # as weight decay shrinks the readout, but the readout points nowhere (alignment gate)
    det, alerts = replay(name)
    assert not [a for a in alerts if a.kind == "onset"]
    assert [a.kind for a in alerts][:1] == ["memorized"] and det.phase == "memorization"
