"""RunDetector on synthetic runs with known answers: every alert kind, gates, phases."""

from __future__ import annotations

import math

import msgpack
import numpy as np
import pytest

from grokwatch.daemon.detectors import FIT_ACC, STALL_FRACTION, RunDetector
from grokwatch.daemon.onset import OnsetParams
from grokwatch.daemon.phases import PHASES

EVERY = 10  # steps between geometry records


def ar1(n: int, phi: float, seed: int, sd: float) -> np.ndarray:
    rng = np.random.default_rng(seed)
    x = np.empty(n)
    x[0] = rng.standard_normal() * sd
    e = rng.standard_normal(n) * sd * math.sqrt(1 - phi * phi)
    for i in range(1, n):
        x[i] = phi * x[i - 1] + e[i]
    return x


def geometry(ratio: float, *, entropy: float = 0.999, wn: float = 40.0,
             conc_ratio: float | None = None, null: float = 0.08) -> dict[str, float]:
    """A probe geometry record whose structure sits ``ratio`` times above its null."""
    conc_ratio = ratio if conc_ratio is None else conc_ratio
    return {"neurons.fourier_ipr": null * ratio, "neurons.fourier_ipr_null": null,
            "neurons.fourier_conc": 0.15 * conc_ratio, "neurons.fourier_conc_null": 0.15,
            "neurons.fourier_entropy": entropy, "neurons.fourier_topk": 0.2,
            "neurons.fourier_gini": 0.02, "neurons.erank": 50.0, "weight_norm": wn}


class Feed:
    """Drives a detector like the daemon: train scalars and geometry records, in step order."""

    def __init__(self, det: RunDetector | None = None) -> None:
        self.det = det or RunDetector("run-1", modulus=53)
        self.alerts: list = []
        self.t = 1_000.0

    def scalars(self, step: int, vals: dict[str, float]) -> list:
        self.t += 0.01
        out = self.det.on_scalars(step, self.t, vals)
        self.alerts += out
        return out

    def kinds(self) -> list[tuple[str, str]]:
        return [(a.kind, a.status) for a in self.alerts]

    def first(self, kind: str):
        return next((a for a in self.alerts if a.kind == kind and a.status == "firing"), None)


def grokking_like(feed: Feed, *, change_step: int, end: int, val: bool = True,
                  train_acc: float = 1.0, seed: int = 0, noise: float = 0.01) -> None:
    """Memorized from step 20; structure and norm flat (noisy) until ``change_step``, then
    the structure rises 0.3 %/step above its null and the weight norm turns down."""
    rng = np.random.default_rng(seed)
    for step in range(0, end + 1, EVERY):
        acc = min(train_acc, 0.2 + step / 20) if step < 20 else train_acc
        vals = {"train_loss": 0.01, "train_acc": acc}
        if val:
            late = max(0, step - change_step - 300)
            vals.update(val_loss=1.0, val_acc=min(1.0, 0.01 + late / 200))
        feed.scalars(step, vals)
        d = max(0, step - change_step)
        ratio = 1.2 * math.exp(0.003 * d) * (1 + noise * rng.standard_normal())
        wn = 40.0 * math.exp(-0.0002 * d) * (1 + 0.001 * rng.standard_normal())
        feed.scalars(step, geometry(ratio, wn=wn))


# ------------------------------------------------------------------ memorized


def test_memorized_needs_three_consecutive_fitted_samples():
    f = Feed()
    accs = [0.5, 0.995, 0.999, 0.98, 0.995, 1.0, 1.0, 1.0]
    for i, a in enumerate(accs):
        f.scalars(i * 10, {"train_acc": a})
    mem = [a for a in f.alerts if a.kind == "memorized"]
    assert len(mem) == 1
    assert mem[0].step == 60 and mem[0].evidence["since_step"] == 40
    assert mem[0].evidence["threshold"] == FIT_ACC
    assert "memorized" in mem[0].summary and mem[0].status == "firing"
    assert f.det.phase == "memorization"


def test_memorized_resolves_when_the_fit_is_lost_and_can_fire_again():
    f = Feed()
    for i, a in enumerate([1.0] * 4 + [0.95] * 3 + [0.5] * 3 + [1.0] * 3):
        f.scalars(i * 10, {"train_acc": a})
    assert f.kinds() == [("memorized", "firing"), ("memorized", "resolved"),
                         ("memorized", "firing")]
    # 0.95 is inside the hysteresis band: the episode ended only below 0.9
    assert f.alerts[1].step == 90


# ------------------------------------------------------------------ onset


@pytest.mark.parametrize("seed", range(4))
def test_onset_fires_after_the_change_within_the_expected_delay(seed):
    f = Feed()
    grokking_like(f, change_step=1000, end=2000, seed=seed)
    onset = f.first("onset")
    assert onset is not None
    # log(1.5) / 0.003 = 135 steps to reach x1.5, plus CUSUM and hold: a few samples more
    assert 1000 + 130 <= onset.step <= 1000 + 200
    ev = onset.evidence
    assert ev["structure"] and ev["corroborating"]
    assert ev["val_acc"] is not None and ev["val_acc"] < 0.1  # val had not moved
    for name in ev["structure"]:
        assert ev["signals"][name]["ratio_vs_memorization"] >= 1.5
        assert ev["signals"][name]["effect_threshold"] == pytest.approx(math.log(1.5))
    assert "onset" in onset.summary and "run-1" in onset.summary
    assert f.det.onset_step == onset.step
    assert f.det.phase == "grokking"
    assert [k for k, _ in f.kinds()].count("onset") == 1  # one per episode


def test_onset_does_not_need_validation_data():
    f = Feed()
    grokking_like(f, change_step=600, end=1400, val=False)
    onset = f.first("onset")
    assert onset is not None and onset.step > 600
    assert onset.evidence["val_acc"] is None
    assert f.first("generalized") is None


def test_validation_never_triggers_onset():
    # Flat structure, validation rising to 1: generalized, but no onset.
    f = Feed()
    for step in range(0, 3000, EVERY):
        f.scalars(step, {"train_acc": 1.0, "val_acc": min(1.0, step / 2000)})
        f.scalars(step, geometry(1.2))
    assert f.first("onset") is None
    assert f.first("generalized") is not None


@pytest.mark.parametrize("phi", [0.0, 0.5, 0.9])
def test_flat_autocorrelated_streams_never_alert_in_10000_samples(phi):
    f = Feed()
    n = 10_000
    noise = {k: ar1(n, phi, seed=i + int(phi * 10), sd=0.05) for i, k in enumerate(
        ("ipr", "conc", "ent", "norm"))}
    for i in range(n):
        step = i * EVERY
        f.scalars(step, {"train_acc": 1.0, "train_loss": 0.01})
        g = geometry(1.2 * math.exp(noise["ipr"][i]), conc_ratio=1.25 * math.exp(noise["conc"][i]),
                     entropy=1 - 0.01 * math.exp(noise["ent"][i]),
                     wn=40 * math.exp(noise["norm"][i]))
        f.scalars(step, g)
    assert f.kinds() == [("memorized", "firing")]


def test_onset_is_gated_on_fitting():
    # Structure rises in a run that never fits (the confusion case): no onset.
    f = Feed()
    grokking_like(f, change_step=300, end=1500, train_acc=0.6)
    assert f.first("onset") is None
    assert f.first("memorized") is None


def test_structure_alone_or_agreement_alone_does_not_fire():
    # Only the IPR rises (no other statistic agrees): no onset.
    f = Feed()
    for step in range(0, 2000, EVERY):
        f.scalars(step, {"train_acc": 1.0})
        f.scalars(step, geometry(1.2 * math.exp(0.003 * max(0, step - 500)), conc_ratio=1.25))
    assert f.first("onset") is None
    # Everything but the structure agrees (norm falls, entropy falls): no onset either.
    f = Feed()
    for step in range(0, 2000, EVERY):
        d = max(0, step - 500)
        f.scalars(step, {"train_acc": 1.0})
        f.scalars(step, geometry(1.2, entropy=1 - 0.001 * math.exp(0.003 * d),
                                 wn=40 * math.exp(-0.0005 * d)))
    assert f.first("onset") is None


def test_effective_rank_collapse_alone_never_triggers():
    f = Feed()
    for step in range(0, 3000, EVERY):
        f.scalars(step, {"train_acc": 1.0})
        g = geometry(1.2)
        g["neurons.erank"] = 50.0 * math.exp(-0.002 * step)
        g["embed.erank"] = g["neurons.erank"]
        f.scalars(step, g)
    assert f.first("onset") is None


def test_no_onset_without_null_twins():
    f = Feed()
    for step in range(0, 2000, EVERY):
        d = max(0, step - 500)
        f.scalars(step, {"train_acc": 1.0})
        g = geometry(1.2 * math.exp(0.003 * d), wn=40 * math.exp(-0.0005 * d))
        del g["neurons.fourier_ipr_null"], g["neurons.fourier_conc_null"]
        f.scalars(step, g)
    assert f.first("onset") is None


def test_no_onset_once_validation_has_already_moved():
    # Comprehension: val is past 0.5 when train fits; nothing is left to predict.
    f = Feed()
    for step in range(0, 2000, EVERY):
        acc = min(1.0, step / 300)
        f.scalars(step, {"train_acc": acc, "val_acc": 0.9 * acc})
        d = max(0, step - 300)
        f.scalars(step, geometry(1.2 * math.exp(0.003 * d), wn=40 * math.exp(-0.0005 * d)))
    assert f.first("memorized") is not None
    assert f.first("onset") is None
    assert f.det.phase == "comprehension"


# ------------------------------------------------------------------ generalized


def test_generalized_fires_once_with_the_lead_over_onset():
    f = Feed()
    grokking_like(f, change_step=500, end=2500)
    gen = [a for a in f.alerts if a.kind == "generalized"]
    assert len(gen) == 1
    onset = f.first("onset")
    assert gen[0].evidence["onset_step"] == onset.step
    assert gen[0].evidence["steps_after_onset"] == gen[0].step - onset.step > 0
    assert gen[0].evidence["val_acc"] >= 0.9
    kinds = [k for k, _ in f.kinds()]
    assert kinds == ["memorized", "onset", "generalized"]


# ------------------------------------------------------------------ diverged


@pytest.mark.parametrize("bad", [math.nan, math.inf, -math.inf])
def test_nonfinite_loss_diverges_once(bad):
    f = Feed()
    for step in range(0, 100, 10):
        f.scalars(step, {"train_loss": 1.0, "train_acc": 0.5})
    f.scalars(100, {"train_loss": bad, "train_acc": 0.5})
    f.scalars(110, {"train_loss": bad, "train_acc": 0.5})
    f.scalars(120, {"val_loss": bad})
    div = [a for a in f.alerts if a.kind == "diverged"]
    assert len(div) == 1 and div[0].step == 100
    assert div[0].evidence["reason"] == "non-finite"
    assert f.det.phase == "diverged"


def test_nonfinite_non_loss_scalar_is_not_divergence():
    f = Feed()
    f.scalars(0, {"train_loss": 1.0, "my_ratio": math.nan})
    assert f.alerts == []


def test_loss_spike_diverges():
    f = Feed()
    for step in range(0, 200, 10):
        f.scalars(step, {"train_loss": 4.0 - step / 100})
    assert f.alerts == []
    f.scalars(200, {"train_loss": 35.0})  # below 10x the starting level (4.0)
    assert f.alerts == []
    f.scalars(210, {"train_loss": 45.0})
    assert [a.kind for a in f.alerts] == ["diverged"]
    assert f.alerts[0].evidence["reason"] == "spike"


def test_diverged_run_gets_no_onset():
    f = Feed()
    f.scalars(0, {"train_loss": math.nan})
    grokking_like(f, change_step=300, end=1200)
    assert [a.kind for a in f.alerts] == ["diverged"]


# ------------------------------------------------------------------ silence, drops, bye


def test_stalled_then_lost_then_resolved_on_resume():
    det = RunDetector("r", lost_after=40.0)
    det.on_scalars(5, 100.0, {"train_acc": 0.3})
    assert det.on_silence(105.0, 100.0) == []
    stall = 100.0 + STALL_FRACTION * 40.0
    out = det.on_silence(stall + 0.1, 100.0)
    assert [(a.kind, a.status) for a in out] == [("stalled", "firing")]
    assert det.on_silence(stall + 5, 100.0) == []  # once
    out = det.on_silence(141.0, 100.0)
    assert [(a.kind, a.status) for a in out] == [("lost", "firing")]
    assert out[0].evidence["threshold_s"] == 40.0
    out = det.on_resume(6, 150.0)
    assert sorted((a.kind, a.status) for a in out) == [("lost", "resolved"),
                                                        ("stalled", "resolved")]
    assert det.on_resume(6, 151.0) == []
    # a new silence fires again
    assert [a.kind for a in det.on_silence(170.0, 151.0)] == ["stalled"]


def test_bye_ends_silence_alerts():
    det = RunDetector("r", lost_after=10.0)
    det.on_silence(105.0, 100.0)
    out = det.on_bye(7, 106.0)
    assert [(a.kind, a.status) for a in out] == [("stalled", "resolved")]
    assert det.on_silence(500.0, 106.0) == []


def test_drops_alert_with_a_cooldown_and_keep_counting():
    det = RunDetector("r")
    out = det.on_drop(10, 100.0, gaps=2, dropped=0)
    assert [a.kind for a in out] == ["dropped"] and out[0].evidence["gaps"] == 2
    assert det.on_drop(11, 105.0, gaps=1, dropped=5) == []  # within the cooldown
    assert det.on_drop(12, 106.0, gaps=0, dropped=0) == []
    out = det.on_drop(13, 140.0, gaps=0, dropped=1)
    assert out[0].evidence["gaps"] == 1 and out[0].evidence["dropped"] == 6
    assert out[0].evidence["total_gaps"] == 3 and out[0].evidence["total_dropped"] == 6
    # drops held back by the cooldown are reported by the clock tick once it has passed
    assert det.on_drop(14, 150.0, gaps=2, dropped=0) == []
    assert det.on_silence(160.0, 159.0) == []
    out = det.on_silence(171.0, 170.5)
    assert [(a.kind, a.evidence["gaps"]) for a in out] == [("dropped", 2)]
    assert det.on_silence(300.0, 299.0) == []


# ------------------------------------------------------------------ phases


def test_phases_follow_liu_et_al():
    # confusion: train never fits and stops improving
    f = Feed()
    for step in range(0, 1000, 10):
        f.scalars(step, {"train_acc": min(0.3, step / 1000), "val_acc": 0.01})
    assert f.det.phase == "confusion"
    # starting: early and still improving
    f = Feed()
    for step in range(0, 100, 10):
        f.scalars(step, {"train_acc": step / 200})
    assert f.det.phase == "starting"
    # grokking: val reaches 0.5 long after train fitted
    f = Feed()
    grokking_like(f, change_step=500, end=2500)
    assert f.det.phase == "grokking"
    assert all(p in PHASES for p in ("starting", "confusion", "grokking"))


def test_records_without_watched_names_change_nothing():
    f = Feed()
    for step in range(100):
        assert f.scalars(step, {"lr": 1e-3, "my.metric": 3.0}) == []
    assert f.det.phase == "starting"


def test_one_onset_per_memorized_episode_and_a_new_episode_rearms():
    f = Feed()
    grokking_like(f, change_step=300, end=800, val=False)
    assert [k for k, _ in f.kinds()] == ["memorized", "onset"]
    # the run loses its fit, then fits again: a new episode with a fresh reference
    for step in range(810, 900, 10):
        f.scalars(step, {"train_acc": 0.3})
        f.scalars(step, geometry(3.0))
    for step in range(900, 2500, 10):
        f.scalars(step, {"train_acc": 1.0})
        f.scalars(step, geometry(3.0 * math.exp(0.003 * max(0, step - 1200)),
                                 wn=40 * math.exp(-0.0005 * max(0, step - 1200))))
    kinds = [k for k, _ in f.kinds()]
    assert kinds == ["memorized", "onset", "memorized", "memorized", "onset"]
    assert f.alerts[2].status == "resolved"
    assert f.alerts[4].step > 1200 + 130


def test_structure_reference_is_the_value_at_memorization():
    # Train acc first reaches 0.99 at step 100; the hold confirms it at step 120. The
    # geometry samples from step 100 on form the reference, not those after the hold.
    f = Feed()
    ratios = {100: 1.00, 110: 1.02, 120: 1.04}
    for step in range(0, 1200, EVERY):
        f.scalars(step, {"train_acc": 1.0 if step >= 100 else 0.5})
        r = ratios.get(step, 1.06) * math.exp(0.004 * max(0, step - 500))
        f.scalars(step, geometry(r, wn=40 * math.exp(-0.0005 * max(0, step - 500))))
    onset = f.first("onset")
    assert onset is not None and onset.evidence["armed_step"] == 120
    ref = onset.evidence["signals"]["neurons.fourier_ipr"]["ref"]["mean"]
    first = [1.0, 1.02, 1.04, 1.06][:OnsetParams().warmup]
    assert ref == pytest.approx(math.log(sum(first) / len(first)), abs=2e-3)


def test_no_late_onset_once_validation_passed_half():
    # Structure rises only after val acc passed 0.5: nothing left to predict.
    f = Feed()
    for step in range(0, 2000, EVERY):
        f.scalars(step, {"train_acc": 1.0, "val_acc": 0.6 if step >= 400 else 0.01})
        d = max(0, step - 600)
        f.scalars(step, geometry(1.2 * math.exp(0.004 * d), wn=40 * math.exp(-0.0005 * d)))
    assert f.first("onset") is None
    assert f.det.phase == "grokking"


_NAMES = ["train_loss", "train_acc", "val_loss", "val_acc", "weight_norm", "grad_norm",
          "neurons.fourier_ipr", "neurons.fourier_ipr_null", "neurons.fourier_conc",
          "neurons.fourier_conc_null", "neurons.fourier_entropy", "neurons.fourier_topk",
          "embed.fourier_gini", "embed.erank", "x.loss", "lr"]


def test_any_scalars_are_handled_without_raising():
    from hypothesis import given, settings
    from hypothesis import strategies as st

    from grokwatch.daemon.alert import ALERT_KINDS
    from grokwatch.daemon.phases import PHASES

    values = st.one_of(st.floats(allow_nan=True, allow_infinity=True),
                       st.floats(min_value=0.0, max_value=1.0))
    records = st.lists(st.dictionaries(st.sampled_from(_NAMES), values, max_size=8),
                       max_size=60)

    @settings(max_examples=100, deadline=None)
    @given(records)
    def check(recs):
        det = RunDetector("fuzz")
        for i, vals in enumerate(recs):
            for a in det.on_scalars(i * 10, 1000.0 + i, vals):
                assert a.kind in ALERT_KINDS and a.status in ("firing", "resolved")
                assert a.summary and "\n" not in a.summary
                msgpack.packb(a.to_wire())  # what the store and the PUB socket do
            assert det.phase in PHASES
        det.on_drop(5, 2000.0, 3, 4)
        det.on_silence(5000.0, 1000.0)
        det.on_resume(6, 5001.0)
        det.on_bye(7, 5002.0)

    check()
