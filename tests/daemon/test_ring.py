"""Bounded series: ring plus thinned history."""

from __future__ import annotations

import numpy as np

from grokwatch.daemon.ring import Series


def test_short_series_keeps_everything():
    s = Series(cap=8, hist_cap=4)
    for i in range(5):
        s.append(i, float(i) / 2)
    steps, vals = s.recent()
    assert steps.tolist() == [0, 1, 2, 3, 4]
    assert vals.tolist() == [0.0, 0.5, 1.0, 1.5, 2.0]
    assert s.last() == (4, 2.0)
    assert s.recent(2)[0].tolist() == [3, 4]


def test_ring_wraps_in_order_and_history_spans_the_run():
    s = Series(cap=16, hist_cap=8)
    n = 10_000
    for i in range(n):
        s.append(i, float(i))
    steps, vals = s.recent()
    assert steps.tolist() == list(range(n - 16, n))
    assert np.array_equal(steps.astype(float), vals)
    hs, hv = s.history()
    assert len(hs) <= 16 + 8  # bounded whatever the run length
    assert hs[0] < 2_000  # still reaches back to the early run
    assert np.all(np.diff(hs) > 0)
    assert s.last() == (n - 1, float(n - 1))


def test_memory_is_bounded():
    s = Series(cap=512, hist_cap=256)
    for i in range(100_000):
        s.append(i, 1.0)
    assert s.nbytes() <= (512 + 256) * 16


def test_nan_is_kept():
    s = Series(cap=4, hist_cap=0)
    s.append(1, float("nan"))
    assert np.isnan(s.recent()[1][0])
