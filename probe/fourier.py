"""Fourier metrics over the cyclic group Z_p, for a matrix whose rows are tokens 0..p-1.

The DFT runs along the token axis. Power at frequency ``k`` and ``p-k`` is the
same for real data, so the two are merged: power per ``k = 1..p//2``. The
DC component (k = 0) is ignored everywhere (the matrix is centred too).
Per-column ("neuron") statistics follow Doshi/Gromov and Nanda et al.; each
has a *null*: the same statistic on a row-permuted copy (one fixed
permutation per probe), so a score says how far structure is above chance
for this p and width.
"""

from __future__ import annotations

import math
from dataclasses import dataclass, field
from typing import Any

import numpy as np

from .backend import NumpyOps, TorchOps, backend_for

# ``fourier_topk`` counts the energy in the top TOPK frequencies. Grokked
# modular-arithmetic networks use a handful of key frequencies (about 3 to 7,
# Nanda et al. 2023) whatever p is, so a fixed k, not a fraction of p.
TOPK = 5


@dataclass
class FourierResult:
    """Scalars (without the matrix-name prefix), the spectrum and the constellation."""

    scalars: dict[str, float] = field(default_factory=dict)
    spectrum: np.ndarray = field(default_factory=lambda: np.zeros(0))
    constellation: np.ndarray = field(default_factory=lambda: np.zeros((0, 2)))


def null_permutation(p: int, rng: np.random.Generator | None = None) -> np.ndarray:
    """A random permutation of ``0..p-1`` (draw once and keep it for the null)."""
    return (rng or np.random.default_rng()).permutation(p)


def _merge_weights(p: int) -> np.ndarray:
    # rfft gives k = 0..p//2; k and p-k merge into 2x the power, except the
    # Nyquist frequency of an even p, which is its own mirror.
    w = np.full(p // 2, 2.0)
    if p % 2 == 0:
        w[-1] = 1.0
    return w


def column_power(m: Any, p: int, ops: NumpyOps | TorchOps) -> Any:
    """Merged power, K x d (K = p//2), of the centred p x d matrix ``m`` (stays on device)."""
    pw = ops.rfft_power(m)[1:]
    w = _merge_weights(p)
    if isinstance(ops, TorchOps):
        w = ops.torch.as_tensor(w, device=m.device, dtype=m.dtype)
    return pw * w[:, None]


def column_stats(pw: Any, ops: NumpyOps | TorchOps) -> tuple[float, float]:
    """Mean over columns of (share of energy in the best frequency, IPR r=2).

    IPR = sum_k (|c_k| / ||c||)^4 = sum_k P_k^2 / (sum_k P_k)^2. Columns with
    no energy (dead neurons) are left out; if none has any, both are 0.
    """
    tot = pw.sum(0)
    mx = float(ops.host(tot.max()).item()) if tot.shape[0] else 0.0
    if mx <= 0.0 or not math.isfinite(mx):
        return 0.0, 0.0
    live = tot > mx * 1e-12
    tot_l = tot[live]
    conc = ops.amax(pw[:, live], 0) / tot_l
    ipr = (pw[:, live] ** 2).sum(0) / (tot_l * tot_l)
    both = ops.host(ops.stack([conc.mean(), ipr.mean()]))
    return float(both[0]), float(both[1])


def spectrum_scalars(spec: np.ndarray) -> dict[str, float]:
    """Normalized entropy, Gini, top-k energy fraction and key frequency of a power spectrum."""
    spec = np.asarray(spec, dtype=np.float64)
    K = len(spec)
    tot = float(spec.sum())
    if K == 0 or tot <= 0.0 or not math.isfinite(tot):
        return {"fourier_entropy": math.nan if K and not math.isfinite(tot) else 0.0,
                "fourier_gini": 0.0, "fourier_topk": 0.0, "fourier_key": 0.0}
    q = spec / tot
    nz = q[q > 0]
    ent = float(-(nz * np.log(nz)).sum() / math.log(K)) if K > 1 else 0.0
    srt = np.sort(spec)
    gini = float((2 * np.arange(1, K + 1) - K - 1).dot(srt) / (K * tot))
    topk = float(srt[::-1][:TOPK].sum() / tot)
    return {"fourier_entropy": ent, "fourier_gini": gini, "fourier_topk": topk,
            "fourier_key": float(int(np.argmax(spec)) + 1)}


def constellation(m: Any, k: int, ops: NumpyOps | TorchOps) -> np.ndarray:
    """Rows of the centred ``m`` projected on the (orthonormalized) cos/sin pair of frequency k."""
    re, im = ops.rfft_row(m, k)
    basis = ops.qr(ops.stack([re, im]).T)  # d x 2 (d x 1 when d == 1)
    pts = ops.host(m @ basis)
    if pts.shape[1] < 2:
        pts = np.concatenate([pts, np.zeros((pts.shape[0], 2 - pts.shape[1]))], axis=1)
    return pts


def fourier_metrics(x: Any, p: int, perm: np.ndarray,
                    ops: NumpyOps | TorchOps | None = None) -> FourierResult:
    """All Z_p metrics of ``x`` (rows beyond ``p`` ignored). Raises ValueError if rows < p."""
    ops = ops or backend_for(x)
    if x.shape[0] < p:
        raise ValueError(f"{x.shape[0]} rows < modulus {p}: Fourier metrics need a row per token")
    if p < 2:
        raise ValueError("modulus must be >= 2")
    m = ops.asfloat(x)[:p]
    m = m - m.mean(0)
    pw = column_power(m, p, ops)
    spec = ops.host(pw.sum(1))
    out = spectrum_scalars(spec)
    conc, ipr = column_stats(pw, ops)
    conc0, ipr0 = column_stats(column_power(ops.take_rows(m, perm), p, ops), ops)
    out.update(fourier_conc=conc, fourier_conc_null=conc0, fourier_ipr=ipr,
               fourier_ipr_null=ipr0)
    key = int(out["fourier_key"])
    pts = constellation(m, key, ops) if key > 0 else np.zeros((p, 2))
    return FourierResult(scalars=out, spectrum=spec, constellation=pts)
