"""The class-geometry channel of onset (daemon/onset.py) on synthetic and recorded-like streams."""

from __future__ import annotations

import math

from grokwatch.daemon.detectors import RunDetector
from grokwatch.daemon.onset import OnsetFusion


def feed(fusion, records):
    for step, vals in records:
        ev = fusion.update(step, vals)
        if ev is not None:
            return step, ev
    return None


def stream(sep, align=None, steps=range(0, 3000, 10), key="readout_sep"):
    out = []
    for s in steps:
        v = {f"features.{key}": sep(s), "weight_norm": 40.0}
        if align is not None:
            v["features.readout_align"] = align(s)
        out.append((s, v))
    return out


def grok_sep(s):  # dips after the fit, then rises from step 800 on (x1.2 at ~1165)
    return 2.0 * (1.0 - 0.05 * min(s, 400) / 400) * math.exp(0.0005 * max(0, s - 800))


def test_separation_rising_with_the_readout_pointing_at_the_labels_fires():
    f = OnsetFusion()
    f.arm(0)
    got = feed(f, stream(grok_sep, lambda s: -0.4 + 0.0008 * max(0, s - 700)))
    assert got is not None
    step, ev = got
    # x1.2 from the lowest value (1.9 at step 400..800): 800 + ln(1.2)/0.0005 = 1165, + hold
    assert 1160 <= step <= 1200
    assert ev["evidence"] == "class_geometry" and ev["structure"] == ["features.readout_sep"]
    assert ev["signals"]["features.readout_sep"]["ratio_vs_memorization"] >= 1.2
    assert "readout_align" in ev["signals"]["features.readout_sep"]


def test_separation_rising_while_the_readout_points_nowhere_does_not_fire():
    # a label-shuffled run: weight decay makes the readout cluster held-out inputs by
    # class, but not towards their classes (alignment flat at chance)
    f = OnsetFusion()
    f.arm(0)
    assert feed(f, stream(grok_sep, lambda s: 0.02 + 0.000003 * s)) is None


def test_slow_drift_of_a_memorizing_run_does_not_fire():
    f = OnsetFusion()
    f.arm(0)
    drift = stream(lambda s: 1.05 * (1 + 0.1 * s / 3000), lambda s: -0.4 + 0.00005 * s)
    assert feed(f, drift) is None  # +10 % over the whole run: below x1.2


def test_features_without_a_readout_are_watched_as_given():
    f = OnsetFusion()
    f.arm(0)
    step, ev = feed(f, stream(grok_sep, key="class_sep"))
    assert ev["structure"] == ["features.class_sep"] and 1160 <= step <= 1200


def test_the_readout_view_replaces_the_raw_features_when_both_come():
    f = OnsetFusion()
    f.arm(0)
    recs = stream(grok_sep, lambda s: 0.02)  # readout: rising but not aligned
    for _, v in recs:
        v["features.class_sep"] = grok_sep(_)  # raw features rising too
    assert feed(f, recs) is None


def test_run_detector_fires_before_validation_and_validation_never_triggers():
    det = RunDetector("geo")
    alerts = []
    for s in range(0, 3000, 10):
        vacc = 0.01 if s < 1500 else min(1.0, 0.01 + (s - 1500) / 800)
        alerts += det.on_scalars(s, float(s), {"train_acc": 1.0, "val_acc": vacc})
        alerts += det.on_scalars(s, float(s), {
            "features.readout_sep": grok_sep(s),
            "features.readout_align": -0.4 + 0.0008 * max(0, s - 700), "weight_norm": 40.0})
    onset = [a for a in alerts if a.kind == "onset"]
    assert len(onset) == 1 and onset[0].step < 1500
    assert "class geometry" in onset[0].summary and onset[0].evidence["evidence"] == \
        "class_geometry"
    # the same validation curve without geometry: no onset at all
    det = RunDetector("val-only")
    for s in range(0, 3000, 10):
        vacc = 0.01 if s < 1500 else min(1.0, 0.01 + (s - 1500) / 800)
        got = det.on_scalars(s, float(s), {"train_acc": 1.0, "val_acc": vacc, "val_loss": 1.0})
        assert all(a.kind != "onset" for a in got)


def _margin_run(align, vloss):
    """A fitted run fed through RunDetector: logs (val loss) and geometry every 10 steps."""
    det = RunDetector("margin")
    alerts = []
    for s in range(0, 2000, 10):
        alerts += det.on_scalars(s, float(s), {"train_acc": 1.0, "val_acc": 0.01,
                                               "val_loss": vloss(s)})
        alerts += det.on_scalars(s, float(s), {"features.readout_sep": 1.05,
                                               "features.readout_align": align(s),
                                               "weight_norm": 40.0})
    return [a for a in alerts if a.kind == "onset"]


def _align_rising(s):  # flat at -0.4 after the fit, +0.3 above it at step 1000
    return -0.4 + 0.0006 * max(0, s - 500)


def _vloss_falling(s):  # 4.0 until 600, then 5 % below its highest by ~650
    return 4.0 * math.exp(-0.001 * max(0, s - 600))


def test_held_out_margin_fires_when_alignment_rises_and_val_loss_falls():
    onset = _margin_run(_align_rising, _vloss_falling)
    assert len(onset) == 1
    ev = onset[0].evidence
    assert ev["evidence"] == "held_out_margin"
    assert ev["structure"] == ["features.readout_align"] and ev["corroborating"] == ["val_loss"]
    assert ev["signals"]["features.readout_align"]["rise_from_lowest"] >= 0.3
    assert ev["signals"]["val_loss"]["ratio_vs_highest"] <= 0.95
    assert 1000 <= onset[0].step <= 1040  # the alignment is the later of the two
    assert "held-out margin" in onset[0].summary and "val_loss x0." in onset[0].summary


def test_held_out_margin_needs_val_loss_to_fall():
    # No weight decay: the held-out alignment creeps up while the logits grow and the
    # validation loss keeps rising (the memorizing controls): no onset.
    assert _margin_run(_align_rising, lambda s: 4.0 + 0.002 * s) == []


def test_held_out_margin_needs_alignment_to_rise():
    # Weight decay shrinking the logits of a label-shuffled run: validation loss falls
    # towards log(classes) while the held-out alignment stays put: no onset.
    assert _margin_run(lambda s: -0.4, _vloss_falling) == []


def test_held_out_margin_ignores_validation_losses_that_are_not_positive_numbers():
    # Zero or negative losses (an MSE at 0, a logged sentinel) are skipped, never taken as a
    # fall from the highest: with nothing else to corroborate, no onset. (A NaN or inf loss
    # never gets here: the run detector calls that divergence.)
    bad = [0.0, -1.0]
    assert _margin_run(_align_rising, lambda s: bad[(s // 10) % 2]) == []
    # and they do not disturb a real falling loss around them
    onset = _margin_run(_align_rising, lambda s: 0.0 if s % 50 == 0 else _vloss_falling(s))
    assert len(onset) == 1 and onset[0].evidence["evidence"] == "held_out_margin"
    # the fusion itself skips non-finite losses too
    fusion = OnsetFusion()
    fusion.arm(0)
    for v in (math.nan, math.inf, -math.inf):
        fusion.val_loss(v)
    assert fusion.vloss is None
