"""Large matrices are measured Gram-side (row-sampled beyond 2 x ROW_CAP rows) within 2 %."""

from __future__ import annotations

import numpy as np
import pytest

from grokwatch.probe import spectral
from grokwatch.probe.spectral import spectral_scalars, svd_metrics


def exact(x: np.ndarray) -> dict[str, float]:
    xc = x.astype(np.float64)
    return spectral_scalars(np.linalg.svd(xc - xc.mean(0), compute_uv=False))


def test_gram_side_equals_the_svd_for_tall_matrices():
    rng = np.random.default_rng(0)
    x = rng.standard_normal((3000, 64)) @ np.diag(np.linspace(0.1, 3, 64)) + 5.0
    got, sv = svd_metrics(x)
    want = exact(x)
    for k in want:
        assert got[k] == pytest.approx(want[k], rel=1e-9)
    assert sv[0] == pytest.approx(np.linalg.svd(x - x.mean(0), compute_uv=False)[0], rel=1e-9)


def test_row_sampled_statistics_of_a_structured_matrix_are_within_two_percent(monkeypatch):
    monkeypatch.setattr(spectral, "ROW_CAP", 2048)  # sample beyond 4,096 rows: a small test
    rng = np.random.default_rng(1)
    n, d = 20_000, 48
    x = (rng.standard_normal((n, 6)) @ rng.standard_normal((6, d))
         + 0.3 * rng.standard_normal((n, d))).astype(np.float32)
    want = exact(x)
    for arr in (x, pytest.importorskip("torch").from_numpy(x)):
        got, _ = svd_metrics(arr)
        for k in want:
            assert got[k] == pytest.approx(want[k], rel=0.02), k
    # a fixed seed: the same matrix gives the same statistics, whatever was measured before
    first, _ = svd_metrics(x)
    svd_metrics(np.flipud(x).copy())
    again, _ = svd_metrics(x)
    assert first == again


def test_a_non_finite_entry_makes_every_statistic_nan():
    x = np.ones((5000, 8), dtype=np.float32)
    x[7, 3] = np.inf
    got, sv = svd_metrics(x)
    assert all(np.isnan(v) for v in got.values()) and sv.size == 0


def _kind(kind: str, n: int, d: int, rng: np.random.Generator) -> np.ndarray:
    g = rng.standard_normal((n, d))
    if kind == "lowrank":
        g = rng.standard_normal((n, 6)) @ rng.standard_normal((6, d)) + 0.3 * g
    elif kind == "powerlaw":
        g = g @ np.diag(np.arange(1, d + 1) ** -0.7) @ np.linalg.qr(rng.standard_normal((d, d)))[0]
    elif kind == "spiked":
        g = g + (rng.standard_normal((n, 2)) * [6, 3]) @ np.linalg.qr(
            rng.standard_normal((d, 2)))[0].T
    elif kind == "rownorm":
        g = g * np.exp(rng.standard_normal((n, 1)))
    return g.astype(np.float32)


@pytest.mark.parametrize("kind", ["iid", "lowrank", "powerlaw", "spiked", "rownorm"])
def test_row_sampled_statistics_are_within_two_percent_on_every_kind(monkeypatch, kind):
    # Issue 12: an isotropic matrix (an embedding at initialization) read 23 % low in stable
    # rank from a plain row sample; a few heavy rows skewed everything.
    monkeypatch.setattr(spectral, "ROW_CAP", 4096)
    x = _kind(kind, 20_000, 192, np.random.default_rng(0))
    want = exact(x)
    # Where the top eigenvalue sits at the edge of a continuum (iid, rownorm), the stable rank
    # is an edge estimate: within 2 % at 768 columns, but across seeds up to 3.4 % at 192.
    tol = {k: 0.02 for k in want}
    if kind in ("iid", "rownorm"):
        tol["stable_rank"] = 0.04
    for arr in (x, pytest.importorskip("torch").from_numpy(x)):
        got, _ = svd_metrics(arr)
        for k in want:
            assert got[k] == pytest.approx(want[k], rel=tol[k]), (k, got[k], want[k])
