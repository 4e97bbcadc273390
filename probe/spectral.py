"""Singular-value metrics of a matrix: effective rank, participation ratio, stable rank.

The matrix is centred (column means over rows removed) before its SVD, so a
constant offset shared by all rows does not count as a dimension.

Large matrices (a language model's 50,257 x 768 token embedding) are measured
Gram-side: with ``n`` rows and ``d`` columns, ``n >= GRAM_MIN_ROWS`` and
``n >= 2 d``, the squared singular values are the eigenvalues of the ``d x d``
matrix ``X^T X`` (computed in the tensor's dtype on its device, eigenvalues in
float64). Beyond twice :data:`ROW_CAP` rows it is estimated from a row sample:

* rows are drawn (two independent halves of ``ROW_CAP / 2``, with replacement) with
  probability proportional to their centred squared norm, from fixed uniforms (a
  constant seed: the same matrix always gives the same rows), and weighted so every
  sampled row carries ``||X - mean||_F^2 / h`` (a few heavy rows can't dominate);
* the top ``k = min(RITZ, d // 16)`` directions of the first half (subspace iteration)
  are measured on every row: ``Y = Xc V`` and ``W = Xc^T Y = C V``; the top values
  are the singular values of ``C V`` (one power step; for true eigenvectors they are the
  eigenvalues), their energy ``||C V||_F^2`` is exact;
* ``tr(C^2)`` (so pr) = exact top part + an unbiased pair U-statistic of what is left
  on the second half (independent of ``V``, so not biased by its selection);
* the bulk is the deflated sample spectrum, rescaled to the exact trace and shrunk
  toward its mean (linearly in the singular values) until its second moment is the
  unbiased one: this undoes the Marchenko-Pastur spreading of a row sample;
* stable rank = trace / max(top value, bulk edge), the edge being the smaller of the
  shrunk sample edge and the Marchenko-Pastur edge of the bulk's mean and variance.

Stated error (bench/observe_scale.py, one CPU thread, medians): at 50,257 x 768
float32 about 200 ms (numpy) / 180-250 ms (torch; medians of 7, the spread is
another process's load on the 2-core bench machine); on iid (an embedding at
initialization), low rank plus noise, power-law, spiked (noise plus a few strong
directions) and log-normal row norms, every statistic within 1.1 % of exact at
20,000 and 50,257 x 768 (before: iid erank 3.5 %, pr 6.6 %, stable rank 23 % low;
log-normal rows 15-52 % off). Known limits: the stable rank is an edge estimate
where the top eigenvalue sits at the edge of a continuum (iid, heavy-row kinds); it
is noisier at small widths (up to 3.4 % across seeds at 20,000 x 192, 5-10 % at 48
columns) and biased where the top is a wide flat cluster (half the directions with
2.25x the variance: about 10 % low). erank and pr stay within 2 % there. The
``d x d`` eigen-maths run on the host in float64 (a few MB); every pass over rows
runs on the tensor's device.
"""

from __future__ import annotations

import math
from typing import Any

import numpy as np

from grokwatch.wire.names import ERANK, PR, STABLE_RANK

from .backend import NumpyOps, TorchOps, backend_for

TOP_SV = 64  # singular values sent as the ``<m>.sv`` spectrum
GRAM_MIN_ROWS = 2048  # from here (and rows >= 2 columns) the Gram side is cheaper than an SVD
ROW_CAP = 8192  # beyond 2x this many rows the Gram is estimated from a sample of this many
ROW_SEED = 0x5EED
RITZ = 16  # at most this many top directions measured on every row (d // 16 for narrow ones)


def singular_values(x: Any, ops: NumpyOps | TorchOps | None = None) -> np.ndarray:
    """Singular values (descending, float64, on the host) of the centred matrix ``x``.

    Gram-side (and row-sampled beyond :data:`ROW_CAP` rows) for tall matrices: see the
    module docstring for when, and for the stated error.
    """
    ops = ops or backend_for(x)
    n, d = int(x.shape[0]), int(x.shape[1])
    if n < GRAM_MIN_ROWS or n < 2 * d:
        m = ops.asfloat(x)
        m = m - m.mean(0)
        return ops.host(ops.svdvals(m))
    return np.sqrt(gram_eigenvalues(x, ops))


def _svd_scalars(x: Any, ops: NumpyOps | TorchOps) -> tuple[dict[str, float], np.ndarray]:
    """Scalars and singular values; row-sampled matrices take pr and stable rank as estimated."""
    n, d = int(x.shape[0]), int(x.shape[1])
    if n < GRAM_MIN_ROWS or n < 2 * d:
        s = singular_values(x, ops)
        return spectral_scalars(s), s
    ev, extra = _gram(x, ops)
    s = np.sqrt(ev)
    scal = spectral_scalars(s)
    if scal[ERANK] > 0:
        scal.update(extra)
    return scal, s


def gram_eigenvalues(x: Any, ops: NumpyOps | TorchOps) -> np.ndarray:
    """Eigenvalues (descending, >= 0) of ``Xc^T Xc`` for the centred ``x``, as described above."""
    return _gram(x, ops)[0]


def _gram(x: Any, ops: NumpyOps | TorchOps) -> tuple[np.ndarray, dict[str, float]]:
    """Gram-side eigenvalues, plus pr / stable rank estimated directly when row-sampled."""
    n = int(x.shape[0])
    torch = ops.torch if type(ops).__name__ == "TorchOps" else None
    if torch is None:
        x = np.asarray(x)
        if x.dtype not in (np.float32, np.float64):
            x = x.astype(np.float64)
    if n > 2 * ROW_CAP:
        return _sampled(x, torch)
    mean = _col_mean(x, torch)
    if torch is not None:
        # Block by block, summed in float64 (an upcast would copy a 50,257 x 768 matrix; one
        # float32 norm over all of it lost ~1 % and skewed the rescaled spectrum).
        total = sum(float(torch.linalg.vector_norm(b)) ** 2 for b in x.split(4096)) \
            - n * float(mean.pow(2).sum())
        xs = x - mean.to(x.dtype)
        ev = ops.host(torch.linalg.eigvalsh((xs.T @ xs).to(torch.float64)))
    else:
        total = sum(float(np.linalg.norm(b.reshape(-1))) ** 2
                    for b in np.array_split(x, max(1, n // 4096))) - n * float(mean @ mean)
        xs = x - mean.astype(x.dtype)
        ev = np.linalg.eigvalsh((xs.T @ xs).astype(np.float64))
    return _rescale(ev, total), {}


def _sampled(x: Any, torch: Any) -> tuple[np.ndarray, dict[str, float]]:
    """The row-sampled estimate (module docstring): spectrum, pr and stable rank."""
    n, d = int(x.shape[0]), int(x.shape[1])
    k = min(RITZ, max(1, d // 16))
    h = ROW_CAP // 2
    # Centred squared row norms on every row (blocks: the centred copy of one block at a time).
    mean = _col_mean(x, torch)
    if torch is not None:
        mu = mean.to(x.dtype)
        r = torch.cat([torch.linalg.vector_norm(b - mu, dim=1) for b in x.split(4096)])
        r = _host(r) ** 2
    else:
        mu = mean.astype(x.dtype)
        r = np.concatenate([_sqnorms(b - mu) for b in np.array_split(x, max(1, n // 4096))])
    total = float(r.sum())
    if not (total > 0 and math.isfinite(total)):
        return np.zeros(d), {}
    cum = np.cumsum(r)
    halves, grams = [], []
    for half in (1, 2):
        # Length-squared sampling with fixed uniforms: rows drawn with probability |x_i|^2 / total
        # and weighted 1/sqrt(h p_i), so every weighted row has norm^2 total/h (a heavy row can
        # not dominate the sample; rows only change as their norms change).
        u = np.sort(np.random.default_rng([ROW_SEED, n, half]).random(h)) * total
        idx = np.minimum(np.searchsorted(cum, u, side="right"), n - 1)
        w = np.sqrt(total / (h * np.maximum(r[idx], 1e-300)))
        if torch is not None:
            ti = torch.as_tensor(idx, device=x.device)
            z = (x[ti] - mu) * torch.as_tensor(w, device=x.device, dtype=x.dtype)[:, None]
            g = _host(_tgram(torch, z))
        else:
            z = (x[idx] - mu) * w.astype(x.dtype)[:, None]
            g = (z.T @ z).astype(np.float64)
        halves.append(z)
        grams.append(g)
    g1, g2 = grams
    # Top-k directions of the first half only (subspace iteration: no full eigh needed), so the
    # second half is an independent sample for the second moment of what is left.
    v = np.linalg.qr(np.random.default_rng([ROW_SEED, d]).standard_normal((d, k)))[0]
    for _ in range(12):
        v = np.linalg.qr(g1 @ v)[0]
    if torch is not None:
        tv = torch.as_tensor(v, device=x.device, dtype=x.dtype)
        # Centred rows projected (every row) and X^T Y in one pass of 1,024-row blocks: each
        # block is reused while in cache (~20 % less than two whole-matrix products).
        mv = mu @ tv
        acc = torch.zeros((d, k), dtype=x.dtype, device=x.device)
        ys = []
        for blk in x.split(1024):
            yb = blk @ tv - mv
            acc.addmm_(blk.T, yb)
            ys.append(yb)
        y = torch.cat(ys)
        wv = _host(acc) - np.outer(_host(mean), _host(y.sum(0)))  # C V
        y2 = _host(halves[1] @ tv)
        y = _host(y)
    else:
        vx = v.astype(x.dtype)
        y = (x @ vx - mu @ vx).astype(np.float64)
        wv = (x.T @ y.astype(x.dtype)).astype(np.float64) - np.outer(mean, y.sum(0))
        y2 = (halves[1] @ vx).astype(np.float64)
    b = y.T @ y  # V^T C V, exact
    cross = float((wv * wv).sum() - (b * b).sum())  # ||P_perp C V||_F^2, exact
    # ||P_perp C P_perp||_F^2: unbiased pair U-statistic on the second half (weighted rows all
    # have norm^2 total/h, so their projected norms need only y2).
    pg2 = _deflate(g2, v)
    zp = total / h - (y2 * y2).sum(1)
    q_perp = h / (h - 1) * (float((pg2 * pg2).sum()) - float((zp * zp).sum()))
    tr_c2 = float((b * b).sum()) + 2 * cross + q_perp
    # Top values: ||C v|| over the subspace (>= the Ritz values, each a lower bound on its
    # eigenvalue); bulk: the sample's deflated spectrum, rescaled to the exact trace and shrunk
    # (Marchenko-Pastur spreading) until its second moment is the unbiased one.
    top = np.sqrt(np.clip(np.linalg.eigvalsh(wv.T @ wv)[::-1], 0.0, None))
    bulk = np.clip(np.linalg.eigvalsh(_deflate((g1 + g2) / 2, v))[k:], 0.0, None)
    rest = total - float(top.sum())
    if bulk.sum() > 0 and rest > 0:
        bulk = _shrink(bulk * (rest / bulk.sum()), tr_c2 - float((top * top).sum()))
    ev = np.sort(np.concatenate([top, bulk]))[::-1]
    lam = float(top[0])
    if len(bulk):
        # The bulk's top edge: the shrunk sample edge, or the Marchenko-Pastur edge of a bulk
        # with that mean and variance (the steadier of two overestimates where the top sits in
        # a continuum, as at initialization).
        mb = float(bulk.mean())
        var = max((tr_c2 - float((top * top).sum())) / len(bulk) / mb ** 2 - 1, 0.0) \
            if mb > 0 else 0.0
        lam = max(lam, min(float(bulk.max()), mb * (1 + math.sqrt(var)) ** 2))
    extra = {}
    if tr_c2 > 0:
        extra[PR] = total * total / tr_c2
    if lam > 0:
        extra[STABLE_RANK] = total / lam
    return ev, extra


def _col_mean(x: Any, torch: Any) -> Any:
    """Column means in float64, on the tensor's device (torch) or as a numpy array."""
    if torch is None:
        return x.mean(0, dtype=np.float64)
    # float32 sums of 4,096-row blocks, added in float64 (dtype=float64 sums are 3x slower)
    return sum(b.sum(0).to(torch.float64) for b in x.split(4096)) / int(x.shape[0])


def _rescale(ev: np.ndarray, total: float) -> np.ndarray:
    """Descending, clipped at 0, rescaled so the sum is the exact total (float32 Gram drift)."""
    ev = np.clip(np.asarray(ev, dtype=np.float64)[::-1], 0.0, None)
    if total > 0 and math.isfinite(total) and ev.sum() > 0:
        ev *= total / ev.sum()
    return ev


def _sqnorms(c: np.ndarray) -> np.ndarray:
    """Squared row norms (float64) of one centred block."""
    return np.einsum("ij,ij->i", c, c, dtype=np.float64)


def _host(t: Any) -> np.ndarray:
    """A tensor on the host in float64."""
    return t.detach().to("cpu").double().numpy()


def _tgram(torch: Any, z: Any) -> Any:
    """``z^T z`` from its lower block triangle (torch has no syrk: ~60 % of a full gemm)."""
    d = int(z.shape[1])
    g = torch.empty((d, d), dtype=z.dtype, device=z.device)
    step = max(1, (d + 3) // 4)
    for i in range(0, d, step):
        blk = z[:, i:].T @ z[:, i:i + step]
        g[i:, i:i + step] = blk
        g[i:i + step, i:] = blk.T
    return g


def _deflate(g: np.ndarray, v: np.ndarray) -> np.ndarray:
    """``(I - V V^T) G (I - V V^T)`` for orthonormal ``V``."""
    p = g - v @ (v.T @ g)
    return p - (p @ v) @ v.T


def _shrink(bulk: np.ndarray, target: float) -> np.ndarray:
    """Singular values pulled toward their mean until the eigenvalues' sum of squares is ``target``.

    The sum is kept. Linear in the square root, which maps one Marchenko-Pastur law onto a
    narrower one edge for edge; never widened (a sample less spread than the target is kept).
    """
    tb = float(bulk.sum())
    sq = np.sqrt(bulk)
    c = float(sq.mean())

    def at(beta: float) -> np.ndarray:
        e = (c + beta * (sq - c)) ** 2
        return e * (tb / e.sum())

    if float((bulk * bulk).sum()) <= target:
        return bulk
    lo, hi = 0.0, 1.0
    for _ in range(40):
        mid = (lo + hi) / 2
        if float((at(mid) ** 2).sum()) > target:
            hi = mid
        else:
            lo = mid
    return at(lo)


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
    # One norm pass tells whether anything is non-finite (cheaper than isfinite().all()).
    if type(ops).__name__ == "TorchOps":
        finite = math.isfinite(float(ops.torch.linalg.vector_norm(x.detach())))
    else:
        xa = np.asarray(x)
        finite = math.isfinite(float(np.linalg.norm(xa.reshape(-1)))) if xa.size else True
    if not finite:
        nan = {"erank": math.nan, "pr": math.nan, "stable_rank": math.nan}
        return nan, np.zeros(0)
    scal, s = _svd_scalars(x, ops)
    return scal, s[:TOP_SV]
