"""The Fourier null's row permutation: one per run, the same for the same run id and modulus."""

from __future__ import annotations

import numpy as np

from grokwatch.probe import Probe
from grokwatch.probe.metrics import observe_all


def perm_of(run: str, modulus: int, endpoint: str) -> np.ndarray:
    p = Probe(run, endpoint=endpoint, modulus=modulus)
    try:
        return p.null_permutation()
    finally:
        p.close(timeout=0)


def test_same_run_id_gives_the_same_null_and_other_ids_or_moduli_differ(router):
    ep = router.endpoint
    a, b = perm_of("grok-seed-1", 97, ep), perm_of("grok-seed-1", 97, ep)
    assert np.array_equal(a, b)
    assert sorted(a.tolist()) == list(range(97))
    assert not np.array_equal(a, perm_of("grok-seed-2", 97, ep))
    assert not np.array_equal(perm_of("grok-seed-1", 89, ep)[:10], a[:10])
    q = Probe("no-mod", endpoint=ep)
    assert q.null_permutation() is None
    q.close(timeout=0)


def test_observe_uses_the_seeded_null_and_keeps_it(router):
    rng = np.random.default_rng(0)
    embed = rng.standard_normal((13, 16))
    scores = []
    for _ in range(2):
        p = Probe("same-run", endpoint=router.endpoint, modulus=13, every=1)
        try:
            perm = p.null_permutation()
            p.observe(0, embed=embed)
            p.observe(1, embed=embed)
            assert p._perms[13] is perm  # one fixed permutation for the whole run
        finally:
            p.close(timeout=0)
        obs = observe_all(None, {"embed": embed}, modulus=13, perms={13: perm})
        scores.append({k: v for k, v in obs.scalars.items() if "null" in k})
    assert scores[0] and scores[0] == scores[1]
