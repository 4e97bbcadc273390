"""The Fourier null: fixed permutations drawn from the modulus alone, averaged over draws."""

from __future__ import annotations

import numpy as np
import pytest

from grokwatch.probe import Probe
from grokwatch.probe.fourier import NULL_DRAWS, fourier_metrics, null_permutations
from grokwatch.probe.metrics import observe_all


def perm_of(run: str, modulus: int, endpoint: str) -> np.ndarray:
    p = Probe(run, endpoint=endpoint, modulus=modulus)
    try:
        return p.null_permutation()
    finally:
        p.close(timeout=0)


def test_the_null_depends_on_the_modulus_only_never_on_the_run_name(router):
    ep = router.endpoint
    a, b = perm_of("grok-seed-1", 97, ep), perm_of("another-name", 97, ep)
    assert np.array_equal(a, b) and a.shape == (NULL_DRAWS, 97)
    assert all(sorted(row.tolist()) == list(range(97)) for row in a)
    assert len({row.tobytes() for row in a}) == NULL_DRAWS  # distinct draws
    assert not np.array_equal(perm_of("grok-seed-1", 89, ep)[:, :10], a[:, :10])
    q = Probe("no-mod", endpoint=ep)
    assert q.null_permutation() is None
    q.close(timeout=0)


def test_same_training_same_scores_whatever_the_run_name(router):
    rng = np.random.default_rng(0)
    embed = rng.standard_normal((13, 16))
    scores = []
    for name in ("run-a", "run-b"):
        p = Probe(name, endpoint=router.endpoint, modulus=13, every=1)
        try:
            perm = p.null_permutation()
            p.observe(0, embed=embed)
            assert p._perms[13] is perm  # kept for the whole run
        finally:
            p.close(timeout=0)
        obs = observe_all(None, {"embed": embed}, modulus=13, perms={13: perm})
        scores.append({k: v for k, v in obs.scalars.items() if "null" in k})
    assert scores[0] and scores[0] == scores[1]


def test_the_null_is_the_mean_over_the_draws():
    rng = np.random.default_rng(1)
    m = rng.standard_normal((31, 8))
    perms = null_permutations(31)
    both = fourier_metrics(m, 31, perms).scalars
    each = [fourier_metrics(m, 31, q).scalars for q in perms]
    for k in ("fourier_ipr_null", "fourier_conc_null"):
        assert both[k] == pytest.approx(np.mean([e[k] for e in each]), rel=1e-12)
    assert both["fourier_ipr"] == each[0]["fourier_ipr"]
