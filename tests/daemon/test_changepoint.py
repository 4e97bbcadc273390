"""Streaming change statistics on synthetic streams with known answers."""

from __future__ import annotations

import math

import numpy as np
import pytest

from grokwatch.daemon.changepoint import (
    Cusum,
    Hold,
    Reference,
    ShiftDetector,
    WindowSlope,
    ar1_inflation,
    clip_r1,
    line_fit,
)


def ar1(n: int, phi: float, seed: int, sd: float = 1.0) -> list[float]:
    """A stationary AR(1) stream with stationary standard deviation ``sd``."""
    rng = np.random.default_rng(seed)
    e = rng.standard_normal(n) * sd * math.sqrt(1 - phi * phi)
    x = np.empty(n)
    x[0] = rng.standard_normal() * sd
    for i in range(1, n):
        x[i] = phi * x[i - 1] + e[i]
    return x.tolist()


def first_alarm(det: Cusum, xs: list[float]) -> int | None:
    for i, x in enumerate(xs):
        if det.update(x):
            return i
    return None


def test_line_fit_recovers_a_line():
    a, b, res = line_fit([3.0 + 0.5 * i for i in range(10)])
    assert a == pytest.approx(3.0) and b == pytest.approx(0.5)
    assert max(abs(r) for r in res) < 1e-12


def test_reference_estimates_level_noise_and_autocorrelation():
    xs = ar1(2000, 0.7, seed=1, sd=2.0)
    ref = Reference(2000)
    for x in xs:
        ref.add(x)
    assert ref.ready
    assert abs(ref.mean) < 0.5
    assert ref.sd == pytest.approx(2.0, rel=0.1)
    assert ref.r1 == pytest.approx(0.7, abs=0.06)
    # innovation sd of AR(1) = sd * sqrt(1 - phi^2)
    assert ref.sd_innov == pytest.approx(2.0 * math.sqrt(1 - 0.49), rel=0.1)


def test_r1_is_clipped_and_inflation_grows_with_it():
    assert clip_r1(-0.4) == 0.0 and clip_r1(0.99) == 0.9 and clip_r1(math.nan) == 0.0
    assert ar1_inflation(0.0) == 1.0
    assert ar1_inflation(0.5) == pytest.approx(3.0)
    assert ar1_inflation(0.99) == pytest.approx(19.0)  # capped at r1 = 0.9


def test_cusum_detects_a_step_after_it_within_the_expected_delay():
    delays = []
    for seed in range(20):
        xs = ar1(1500, 0.0, seed)
        for i in range(1000, 1500):
            xs[i] += 2.0  # a 2-sigma step at sample 1000
        det = Cusum(k=0.5, h=10.0, warmup=200)
        at = first_alarm(det, xs)
        assert at is not None and at >= 1000, f"seed {seed}: alarm at {at}, before the change"
        delays.append(at - 1000)
    # ARL1 of a 2-sigma shift at k=0.5, h=10 is about (h + 1.17) / (2 - 0.5) = 7.4
    assert 4 <= float(np.median(delays)) <= 12
    assert max(delays) <= 25


@pytest.mark.parametrize("phi", [0.5, 0.9])
def test_prewhitening_restores_quiet_on_autocorrelated_noise(phi):
    n = 10_000
    raw_runs, white_runs = [], []
    for seed in range(8):
        xs = ar1(n, phi, seed=100 + seed)
        raw = first_alarm(Cusum(k=0.5, h=10.0, warmup=200, prewhiten=False), xs)
        white = first_alarm(Cusum(k=0.5, h=10.0, warmup=200), xs)
        raw_runs.append(n if raw is None else raw)
        white_runs.append(n if white is None else white)
    # The textbook (i.i.d.) CUSUM alarms within a few hundred samples on every
    # autocorrelated stream; prewhitened, the median stream stays quiet for
    # for 5,000+ samples (a one-sided CUSUM still needs the effect gate of
    # ShiftDetector to stay silent for 10,000 samples at phi = 0.9).
    assert float(np.median(raw_runs)) < 1000
    assert float(np.median(white_runs)) >= 10 * float(np.median(raw_runs))
    assert float(np.median(white_runs)) >= 5000


def test_cusum_ignores_nonfinite_samples_and_clips_outliers():
    det = Cusum(k=0.5, h=10.0, warmup=50)
    for x in ar1(50, 0.0, seed=3):
        det.update(x)
    assert not det.update(math.nan)
    assert not det.update(1e9)  # one wild sample adds at most 6 - k
    assert det.s <= 6.0


def test_window_slope_t_is_large_on_a_ramp_and_calibrated_on_noise():
    ws = WindowSlope(20)
    for i, x in enumerate(ar1(20, 0.0, seed=5, sd=0.1)):
        ws.update(x - 0.05 * i)
    b, t, _ = ws.stats()
    assert b == pytest.approx(-0.05, abs=0.01)
    assert t < -8
    # On AR(1) noise, t inflated by a warm-up r1 stays within +-4 nearly always;
    # a 20-sample window alone underestimates r1 and lets |t| > 4 through often.
    xs = ar1(5000, 0.9, seed=6)

    def share_big(r1_floor: float) -> float:
        ws = WindowSlope(20, r1_floor=r1_floor)
        big = 0
        for x in xs:
            ws.update(x)
            big += ws.full and abs(ws.stats()[1]) > 4
        return big / len(xs)

    assert share_big(0.9) < 0.01
    assert share_big(0.0) > 5 * share_big(0.9)


def test_window_slope_refuses_tiny_windows():
    with pytest.raises(ValueError):
        WindowSlope(3)


def test_hold_needs_consecutive_hits_and_consecutive_misses():
    h = Hold(on=3, off=2)
    assert [h.update(x) for x in (True, True, False, True, True, True)] == [
        False, False, False, False, False, True]
    assert [h.update(x) for x in (False, True, False, False)] == [True, True, True, False]


@pytest.mark.parametrize("phi", [0.0, 0.5, 0.9])
def test_shift_detector_stays_quiet_on_flat_ar1_for_10000_samples(phi):
    # Log-ratio stream with 5 % noise; the effect threshold is a 1.5x rise.
    for seed in range(3):
        det = ShiftDetector(effect=math.log(1.5), warmup=4, h=4.0, hold=2,
                            sd_floor=0.25 * math.log(1.5))
        fired = [i for i, x in enumerate(ar1(10_000, phi, seed=200 + seed, sd=0.05))
                 if det.update(x)]
        assert fired == []


def test_shift_detector_fires_after_a_ramp_within_the_expected_delay():
    effect = math.log(1.5)
    for seed in range(5):
        xs = ar1(400, 0.5, seed=300 + seed, sd=0.02)
        for i in range(100, 400):
            xs[i] += 0.02 * (i - 100)  # reaches the effect at sample 100 + 20.3
        det = ShiftDetector(effect=effect, warmup=4, h=4.0, hold=2, sd_floor=0.25 * effect)
        fired = [i for i, x in enumerate(xs) if det.update(x)]
        assert len(fired) == 1, "fires once, then latches"
        assert 118 <= fired[0] <= 130


def test_shift_detector_falling_direction():
    det = ShiftDetector(effect=0.3, direction=-1, warmup=4, h=4.0, hold=2, sd_floor=0.05)
    xs = [0.0, 0.01, -0.01, 0.0] + [-0.05 * i for i in range(1, 30)]
    fired = [i for i, x in enumerate(xs) if det.update(x)]
    assert len(fired) == 1 and fired[0] >= 4 + 6


def test_turn_detector_measures_from_the_extreme_after_the_warm_up():
    from grokwatch.daemon.changepoint import TurnDetector

    det = TurnDetector(effect=0.1, warmup=4, z=2.0, hold=2, sd_floor=0.01)
    # falls during and after the warm-up, bottoms out at -0.5, then rises again
    xs = [0.0, -0.1, -0.2, -0.3, -0.4, -0.5, -0.45, -0.42, -0.39, -0.36, -0.33]
    fired = [i for i, x in enumerate(xs) if det.update(x)]
    # move from -0.5 reaches 0.1 at index 8 (-0.39 + 0.5 = 0.11), held at index 9
    assert fired == [9]
    assert det.evidence()["move_from_extreme"] == pytest.approx(0.17)


def test_turn_detector_needs_significance_against_warm_up_noise():
    from grokwatch.daemon.changepoint import TurnDetector

    # a noisy warm-up (sd ~ 0.3) makes a 0.15 turn insignificant at z = 2
    det = TurnDetector(effect=0.1, warmup=6, z=2.0, hold=1)
    for x in [0.3, -0.3, 0.35, -0.25, 0.3, -0.3]:
        det.update(x)
    assert not any(det.update(x) for x in [-0.2, -0.05, -0.05, -0.05])
    assert det.score < 2.0
