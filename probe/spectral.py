"""Singular-value metrics of a matrix: effective rank, participation ratio, stable rank.

The matrix is centred (column means over rows removed) before its SVD, so a
constant offset shared by all rows does not count as a dimension.
"""

from __future__ import annotations

import math
from typing import Any

import numpy as np

from grokwatch.wire.names import ERANK, PR, STABLE_RANK

from .backend import NumpyOps, TorchOps, backend_for

TOP_SV = 64  # singular values sent as the ``<m>.sv`` spectrum


def singular_values(x: Any, ops: NumpyOps | TorchOps | None = None) -> np.ndarray:
    """Singular values (descending, float64, on the host) of the centred matrix ``x``."""
    ops = ops or backend_for(x)
    m = ops.asfloat(x)
    m = m - m.mean(0)
    return ops.host(ops.svdvals(m))


def spectral_scalars(s: np.ndarray) -> dict[str, float]:
    """``erank``, ``pr`` and ``stable_rank`` from singular values ``s``.

    erank = exp(entropy of s_i^2 / sum s^2) (Roy & Vetterli 2007), pr =
    (sum s^2)^2 / sum s^4, stable rank = sum s^2 / max s^2. A zero matrix
    scores 0 on all three; non-finite values give NaN (news, not an error).
    """
    s = np.asarray(s, dtype=np.float64)
    if not np.all(np.isfinite(s)):
        return {ERANK: math.nan, PR: math.nan, STABLE_RANK: math.nan}
    e = s * s
    tot = float(e.sum())
    if tot <= 0.0:
        return {ERANK: 0.0, PR: 0.0, STABLE_RANK: 0.0}
    q = e[e > 0] / tot
    return {ERANK: float(math.exp(-(q * np.log(q)).sum())),
            PR: float(tot * tot / (e * e).sum()),
            STABLE_RANK: float(tot / e.max())}


def svd_metrics(x: Any, ops: NumpyOps | TorchOps | None = None) -> tuple[dict[str, float], np.ndarray]:
    """Scalars of :func:`spectral_scalars` and the top :data:`TOP_SV` singular values."""
    ops = ops or backend_for(x)
    m = ops.asfloat(x)
    if not math.isfinite(float(ops.host(abs(m).sum()))):
        nan = {ERANK: math.nan, PR: math.nan, STABLE_RANK: math.nan}
        return nan, np.zeros(0)
    s = singular_values(m, ops)
    return spectral_scalars(s), s[:TOP_SV]
