"""The phase rule (daemon/phases.py), including slow real-data grokking (Omnigrok)."""

from __future__ import annotations

from grokwatch.daemon.phases import PhaseFacts, classify


def facts(mem_step, vals, onset=None, gen_hold=2):
    """Facts after a run fitted at ``mem_step`` and logged (step, val_acc) pairs."""
    f = PhaseFacts(first_step=0, memorized=True, mem_step=mem_step, onset_step=onset)
    hits = 0
    for step, v in vals:
        f.val(step, v)
        hits = hits + 1 if v >= 0.9 else 0
        if hits >= gen_hold and f.gen_step is None:
            f.gen_step = step
    return f


def test_slow_real_data_run_is_grokking_as_omnigrok_calls_it():
    # the digits run of issue 12: val 0.41 at the fit (6,670), 0.5 soon after, 0.9 at 8x
    vals = [(6670, 0.41), (9000, 0.5), (13000, 0.6), (30000, 0.8), (42688, 0.9), (43000, 0.91)]
    assert classify(facts(6670, vals[:2])) == "comprehension"  # too early to tell
    assert classify(facts(6670, vals[:3])) == "comprehension"  # 13,000 < 4 x 6,670
    assert classify(facts(6670, vals[:4])) == "grokking"  # past 4x the fit, still short of 0.9
    assert classify(facts(6670, vals)) == "grokking"


def test_the_zoo_digits_run_reaches_half_only_after_twice_the_fit():
    assert classify(facts(2100, [(2100, 0.245), (4840, 0.5), (6000, 0.65)])) == "grokking"


def test_validation_generalizing_within_four_times_the_fit_is_comprehension():
    vals = [(300, 0.3), (400, 0.7), (500, 0.92), (510, 0.95)]
    assert classify(facts(300, vals)) == "comprehension"
    # the fast comprehension preset: fit at 20, val 0.5 at 30, 0.9 held at 50 (2.5x)
    assert classify(facts(20, [(20, 0.3), (30, 0.6), (40, 0.92), (50, 0.95)])) \
        == "comprehension"
    assert classify(facts(20, [(20, 0.3), (30, 0.6), (90, 0.92), (100, 0.95)])) == "grokking"


def test_classic_grokking_and_memorization():
    assert classify(facts(300, [(300, 0.01), (2000, 0.02)])) == "memorization"
    assert classify(facts(300, [(300, 0.01), (2000, 0.02)], onset=1500)) == "grokking"
    assert classify(facts(300, [(300, 0.01), (1600, 0.6), (2000, 0.95), (2010, 0.96)])) \
        == "grokking"


def test_onset_makes_a_half_generalized_run_grokking_before_the_horizon():
    assert classify(facts(1000, [(1000, 0.2), (1500, 0.55)], onset=1200)) == "grokking"
    assert classify(facts(1000, [(1000, 0.2), (1500, 0.55)])) == "comprehension"


def test_not_fitted_runs():
    f = PhaseFacts(first_step=0, train_samples=30, samples_since_progress=20)
    assert classify(f) == "confusion"
    assert classify(PhaseFacts(diverged=True, memorized=True)) == "diverged"
    f = PhaseFacts(first_step=0, train_samples=3)
    f.val(30, 0.6)
    assert classify(f) == "comprehension"
