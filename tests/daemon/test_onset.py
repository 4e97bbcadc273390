"""OnsetFusion alone: what counts as structure, what counts as agreement."""

from __future__ import annotations

import math
from dataclasses import fields

from grokwatch.daemon.onset import OnsetFusion, OnsetParams


def feed(fusion: OnsetFusion, records: list[tuple[int, dict[str, float]]]):
    for step, vals in records:
        ev = fusion.update(step, vals)
        if ev is not None:
            return step, ev
    return None


def rising(step: int, start: int, rate: float = 0.004) -> float:
    return math.exp(rate * max(0, step - start))


def test_same_metric_on_two_matrices_is_not_agreement():
    # embed and neurons may be the same weights (one-hot MLPs): IPR rising in both,
    # with nothing else moving, is one statistic, not two.
    f = OnsetFusion()
    f.arm(0)
    recs = []
    for step in range(0, 2000, 10):
        r = 1.2 * rising(step, 300)
        recs.append((step, {"embed.fourier_ipr": 0.1 * r, "embed.fourier_ipr_null": 0.1,
                            "neurons.fourier_ipr": 0.1 * r, "neurons.fourier_ipr_null": 0.1,
                            "weight_norm": 30.0}))
    assert feed(f, recs) is None


def test_the_other_structure_statistic_agrees():
    f = OnsetFusion()
    f.arm(0)
    recs = []
    for step in range(0, 2000, 10):
        r = 1.2 * rising(step, 300)
        recs.append((step, {"neurons.fourier_ipr": 0.1 * r, "neurons.fourier_ipr_null": 0.1,
                            "neurons.fourier_conc": 0.2 * r ** 0.5,
                            "neurons.fourier_conc_null": 0.2, "weight_norm": 30.0}))
    step, ev = feed(f, recs)
    assert 300 + 100 <= step <= 300 + 160  # log(1.5) / 0.004 = 101 steps, plus CUSUM and hold
    assert ev["structure"] == ["neurons.fourier_ipr"]
    assert ev["corroborating"] == ["neurons.fourier_conc"]
    assert ev["signals"]["neurons.fourier_conc"]["ratio_vs_memorization"] >= 1.15


def test_entropy_falling_agrees_through_its_turn():
    f = OnsetFusion()
    f.arm(0)
    recs = []
    for step in range(0, 2000, 10):
        recs.append((step, {"neurons.fourier_ipr": 0.1 * 1.2 * rising(step, 300),
                            "neurons.fourier_ipr_null": 0.1,
                            # 1 - H rises from 0.002 (H falls), after first dipping
                            "neurons.fourier_entropy": 1 - 0.002 * (
                                1.3 - 0.3 * min(step, 150) / 150) * rising(step, 300)}))
    step, ev = feed(f, recs)
    assert ev["corroborating"] == ["neurons.fourier_entropy"]
    sig = ev["signals"]["neurons.fourier_entropy"]
    assert sig["move_from_extreme"] >= sig["effect_threshold"]
    assert sig["z"] >= sig["z_threshold"]


def test_weight_norm_turning_down_agrees_and_reports_its_slope():
    f = OnsetFusion()
    f.arm(0)
    recs = []
    for step in range(0, 2000, 10):
        wn = 40.0 * (1 + 0.0002 * min(step, 300)) * math.exp(-0.0005 * max(0, step - 300))
        recs.append((step, {"neurons.fourier_ipr": 0.1 * 1.2 * rising(step, 300),
                            "neurons.fourier_ipr_null": 0.1, "weight_norm": wn}))
    step, ev = feed(f, recs)
    assert ev["corroborating"] == ["weight_norm"]
    sig = ev["signals"]["weight_norm"]
    assert sig["t"] < sig["t_threshold"] < 0
    assert sig["drop_from_peak"] >= sig["drop_threshold"]


def test_agreement_must_be_recent():
    # The norm turned down briefly long before the structure rose: no coincidence.
    p = OnsetParams()
    f = OnsetFusion(p)
    f.arm(0)
    recs = []
    for step in range(0, 3000, 10):
        dip = 0.97 if 200 <= step < 300 else 1.0
        wn = 40.0 * dip if step < 300 else 40.0 * (1 + 0.001 * (step - 300))
        recs.append((step, {"neurons.fourier_ipr": 0.1 * 1.2 * rising(step, 1500),
                            "neurons.fourier_ipr_null": 0.1, "weight_norm": wn}))
    assert feed(f, recs) is None


def test_unarmed_fusion_ignores_everything():
    f = OnsetFusion()
    recs = [(s, {"neurons.fourier_ipr": 0.1 * 1.2 * rising(s, 0),
                 "neurons.fourier_ipr_null": 0.1}) for s in range(0, 2000, 10)]
    assert feed(f, recs) is None and f.samples == 0


def test_scaled_params_scale_every_effect_threshold_and_nothing_else():
    base = OnsetParams()
    half = base.scaled(0.5)
    for f in fields(base):
        want = getattr(base, f.name) * (0.5 if f.name.endswith("_effect") else 1)
        assert getattr(half, f.name) == want, f.name
    assert half.margin_effect == 0.15 and half.warmup == base.warmup
