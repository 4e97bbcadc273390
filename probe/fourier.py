"""Fourier metrics over the cyclic group Z_p, for a matrix whose rows are tokens 0..p-1.

The DFT runs along the token axis. Power at frequency ``k`` and ``p-k`` is the
same for real data, so the two are merged: power per ``k = 1..p//2``. The
DC component (k = 0) is ignored everywhere (the matrix is centred too).
Per-column ("neuron") statistics follow Doshi/Gromov and Nanda et al.; each
has a *null*: the same statistic on row-permuted copies, averaged over
:data:`NULL_DRAWS` fixed permutations drawn from a generator seeded by ``p``
alone (:func:`null_permutations`), so a score says how far structure is above
chance for this p and width, and the same training gives the same scores and
onset step whatever the run is called.
"""

from __future__ import annotations

import math
from dataclasses import dataclass, field
from typing import Any

import numpy as np

from grokwatch.wire.names import (
    FOURIER_CONC,
    FOURIER_CONC_NULL,
    FOURIER_ENTROPY,
    FOURIER_GINI,
    FOURIER_IPR,
    FOURIER_IPR_NULL,
    FOURIER_KEY,
    FOURIER_TOPK,
)

from .backend import NumpyOps, TorchOps, backend_for

# ``fourier_topk`` counts the energy in the top TOPK frequencies. Grokked
# modular-arithmetic networks use a handful of key frequencies (about 3 to 7,
# Nanda et al. 2023) whatever p is, so a fixed k, not a fraction of p.
TOPK = 5
DFT_MAX_P = 512  # up to here a cached DFT matrix ((2 + 2 draws) K x p); FFTs above
NULL_DRAWS = 4  # row permutations averaged in the null (one draw is a noisy reference)
NULL_SEED = 0x6772_6F6B  # the null depends on p only, never on the run's name


@dataclass
class FourierResult:
    """Scalars (without the matrix-name prefix), the spectrum and the constellation."""

    scalars: dict[str, float] = field(default_factory=dict)
    spectrum: np.ndarray = field(default_factory=lambda: np.zeros(0))
    constellation: np.ndarray = field(default_factory=lambda: np.zeros((0, 2)))


def null_permutation(p: int, rng: np.random.Generator | None = None) -> np.ndarray:
    """A random permutation of ``0..p-1`` (draw once and keep it for the null)."""
    return (rng or np.random.default_rng()).permutation(p)


def null_permutations(p: int, draws: int = NULL_DRAWS) -> np.ndarray:
    """The ``draws x p`` fixed null permutations for modulus ``p`` (seeded by ``p`` only)."""
    rng = np.random.default_rng([NULL_SEED, p])
    return np.stack([rng.permutation(p) for _ in range(draws)])


def _merge_weights(p: int) -> np.ndarray:
    # k and p-k merge into 2x the power of k, except the Nyquist frequency of an
    # even p, which is its own mirror.
    w = np.full(p // 2, 2.0)
    if p % 2 == 0:
        w[-1] = 1.0
    return w


def _as_perms(perm: np.ndarray) -> np.ndarray:
    perm = np.asarray(perm)
    return perm[None, :] if perm.ndim == 1 else perm


def dft_rows(p: int, perm: np.ndarray) -> np.ndarray:
    """The ((2 + 2 draws) K x p) real DFT rows for k = 1..K (K = p//2), merge weights in.

    Stacked: cos and -sin rows for the matrix itself, then for each null
    permutation the same with columns re-ordered so that ``rows @ m`` equals the
    DFT of the row-permuted ``m[perm]``. One matmul then gives every coefficient:
    for small p that is far cheaper than an FFT per matrix plus a gather, and p is
    often prime (97, 113). ``perm`` is one permutation or a stack of them.
    """
    K = p // 2
    ang = 2 * np.pi * np.arange(1, K + 1)[:, None] * np.arange(p)[None, :] / p
    sw = np.sqrt(_merge_weights(p))[:, None]
    c, s = sw * np.cos(ang), -sw * np.sin(ang)
    out = [c, s]
    for q in _as_perms(perm):
        inv = np.argsort(q)
        out += [c[:, inv], s[:, inv]]
    return np.vstack(out)


def coefficients(m: Any, p: int, perm: np.ndarray, ops: NumpyOps | TorchOps) -> Any:
    """((2 + 2 draws) K x d) on device: cos, -sin coefficients of ``m`` then of each
    ``m[perm]``, weighted.

    A cached DFT matmul for p up to :data:`DFT_MAX_P`, FFTs beyond (where the
    DFT rows would take too much memory).
    """
    perms = _as_perms(perm)
    if p <= DFT_MAX_P:
        rows = ops.const(("dft", p, perms.tobytes()), lambda: dft_rows(p, perms), like=m)
        return rows @ m
    K = p // 2
    sw = ops.const(("sw", p), lambda: np.sqrt(_merge_weights(p))[:, None], like=m)
    f = ops.rfft(m)[1:K + 1]
    parts = [f.real * sw, f.imag * sw]
    for q in perms:
        f0 = ops.rfft(ops.take_rows(m, q))[1:K + 1]
        parts += [f0.real * sw, f0.imag * sw]
    return ops.cat(parts)


def column_stats(pw: Any, ops: NumpyOps | TorchOps) -> tuple[Any, Any]:
    """Mean over columns of (share of energy in the best frequency, IPR r=2), on device.

    IPR = sum_k (|c_k| / ||c||)^4 = sum_k P_k^2 / (sum_k P_k)^2. Columns with
    no energy (dead neurons) are left out; if none has any, both are 0.
    """
    tot = pw.sum(0)
    live = ops.tofloat(tot > tot.max() * 1e-12)
    n = ops.maximum(live.sum(), 1.0)
    safe = ops.maximum(tot, 1e-30)  # representable in float32 too
    conc = (ops.amax(pw, 0) / safe * live).sum() / n
    ipr = ((pw * pw).sum(0) / (safe * safe) * live).sum() / n
    return conc, ipr


def spectrum_scalars(spec: np.ndarray) -> dict[str, float]:
    """Normalized entropy, Gini, top-k energy fraction and key frequency of a power spectrum."""
    spec = np.asarray(spec, dtype=np.float64)
    K = len(spec)
    tot = float(spec.sum())
    if K == 0 or tot <= 0.0 or not math.isfinite(tot):
        return {FOURIER_ENTROPY: math.nan if K and not math.isfinite(tot) else 0.0,
                FOURIER_GINI: 0.0, FOURIER_TOPK: 0.0, FOURIER_KEY: 0.0}
    q = spec / tot
    nz = q[q > 0]
    ent = float(-(nz * np.log(nz)).sum() / math.log(K)) if K > 1 else 0.0
    srt = np.sort(spec)
    gini = float((2 * np.arange(1, K + 1) - K - 1).dot(srt) / (K * tot))
    topk = float(srt[::-1][:TOPK].sum() / tot)
    return {FOURIER_ENTROPY: ent, FOURIER_GINI: gini, FOURIER_TOPK: topk,
            FOURIER_KEY: float(int(np.argmax(spec)) + 1)}


def constellation(m: Any, re: Any, im: Any, ops: NumpyOps | TorchOps) -> np.ndarray:
    """Rows of the centred ``m`` projected on the orthonormalized (cos, sin) coefficient pair."""
    basis = ops.qr(ops.stack([re, im]).T)  # d x 2 (d x 1 when d == 1)
    pts = ops.host(m @ basis)
    if pts.shape[1] < 2:
        pts = np.concatenate([pts, np.zeros((pts.shape[0], 2 - pts.shape[1]))], axis=1)
    return pts


def fourier_metrics(x: Any, p: int, perm: np.ndarray,
                    ops: NumpyOps | TorchOps | None = None) -> FourierResult:
    """All Z_p metrics of ``x`` (rows beyond ``p`` ignored). Raises ValueError if rows < p.

    ``perm``: one null permutation or a stack of them (the null statistics are the
    mean over the stack).
    """
    ops = ops or backend_for(x)
    if p < 2:
        raise ValueError("modulus must be >= 2")
    if x.shape[0] < p:
        raise ValueError(f"{x.shape[0]} rows < modulus {p}: Fourier metrics need a row per token")
    m = ops.asfloat(x)[:p]
    m = m - m.mean(0)
    K = p // 2
    perms = _as_perms(perm)
    z = coefficients(m, p, perms, ops)
    sq = z * z
    pw = sq[:K] + sq[K:2 * K]
    conc, ipr = column_stats(pw, ops)
    nulls = [column_stats(sq[(2 + 2 * j) * K:(3 + 2 * j) * K] + sq[(3 + 2 * j) * K:(4 + 2 * j) * K],
                          ops) for j in range(len(perms))]
    conc0 = sum(c for c, _ in nulls) / len(nulls)
    ipr0 = sum(i for _, i in nulls) / len(nulls)
    small = ops.host(ops.cat([pw.sum(1), ops.stack([conc, ipr, conc0, ipr0])]))  # one copy
    spec = small[:K]
    out = spectrum_scalars(spec)
    out.update({FOURIER_CONC: float(small[K]), FOURIER_IPR: float(small[K + 1]),
                FOURIER_CONC_NULL: float(small[K + 2]), FOURIER_IPR_NULL: float(small[K + 3])})
    key = int(out[FOURIER_KEY])
    pts = constellation(m, z[key - 1], z[K + key - 1], ops) if key > 0 else np.zeros((p, 2))
    return FourierResult(scalars=out, spectrum=spec, constellation=pts)
