"""Class geometry of a fixed batch's representations: how much of their spread is label structure.

``observe(..., features=H, labels=y)`` hands the probe an ``N x d`` matrix of
representations (the model's last hidden layer on a fixed batch the user
picks, typically held-out inputs) and the ``N`` integer labels. With class
centroids ``mu_c`` (``n_c`` rows each) and the batch mean ``mu``:

* between-class sum of squares ``SSB = sum_c n_c |mu_c - mu|^2``,
* total ``SST = sum_i |h_i - mu|^2``, within ``SSW = SST - SSB``,
* ``eta2 = SSB / SST`` (the trace form of Fisher's ratio, as in the ILDR paper's
  inter/intra-class distance ratio), and
* ``class_sep = (SSB / (C - 1)) / (SSW / (N - C))``: the ANOVA F ratio of the
  trace, with ``C`` the classes present.

The chance level needs no random draw: under a random relabelling of the batch
(class sizes fixed) ``E[eta2] = (C - 1) / (N - 1)`` exactly, for any data, so
``class_sep`` is about 1 for features that carry no label structure whatever
the width, the batch or the number of classes, and grows as classes separate.
The same batch gives the same value every time (no seed, no run name).
``class_eta2_null`` is that expectation, sent for reference.

Cost: one pass over ``H`` and a scatter-add of the ``C`` centroids, O(N d), on
the tensor's own device; one 4-number copy to the host.
"""

from __future__ import annotations

import math
from typing import Any

import numpy as np

from .backend import NumpyOps, TorchOps, backend_for, is_tensor


def class_geometry(h: Any, labels: Any, ops: NumpyOps | TorchOps | None = None
                   ) -> dict[str, float]:
    """``class_eta2``, ``class_eta2_null``, ``class_sep`` and ``classes`` of features ``h``.

    ``labels`` are integers, one per row of ``h`` (any array or tensor). Raises
    ``ValueError`` on mismatched shapes, fewer than two classes, or no class with two
    rows (the within-class scatter would be undefined).
    """
    ops = ops or backend_for(h)
    if h.ndim != 2:
        raise ValueError(f"features must be 2-D (batch x width), got shape {tuple(h.shape)}")
    y = np.asarray(labels.detach().cpu() if is_tensor(labels) else labels).reshape(-1)
    n = int(h.shape[0])
    if y.shape[0] != n:
        raise ValueError(f"{y.shape[0]} labels for {n} feature rows")
    if y.dtype.kind not in "iub":
        if y.dtype.kind == "f" and np.all(np.isfinite(y)) and np.all(y == np.round(y)):
            y = y.astype(np.int64)
        else:
            raise ValueError("labels must be integers")
    uniq, inv, counts = np.unique(y, return_inverse=True, return_counts=True)
    c = len(uniq)
    if c < 2 or n - c < 1:
        raise ValueError(f"class geometry needs >= 2 classes and more rows than classes "
                         f"({n} rows, {c} classes)")
    x = ops.asfloat(h)
    x = x - x.mean(0)
    sst = (x * x).sum()
    # Class sums by scatter-add (a one-hot matmul: C x N @ N x d), then sum_c |S_c|^2 / n_c.
    onehot = np.zeros((c, n))
    onehot[inv, np.arange(n)] = 1.0 / np.sqrt(counts)[inv]
    oh = ops.const(("onehot", inv.tobytes(), c), lambda: onehot, like=x)
    s = oh @ x
    ssb = (s * s).sum()
    sst, ssb = (float(v) for v in ops.host(ops.stack([sst, ssb])))
    null = (c - 1) / (n - 1)
    if not (math.isfinite(sst) and math.isfinite(ssb)):
        return {"class_eta2": math.nan, "class_eta2_null": null, "class_sep": math.nan,
                "classes": float(c)}
    if sst <= 0.0:
        return {"class_eta2": 0.0, "class_eta2_null": null, "class_sep": 0.0, "classes": float(c)}
    eta2 = min(max(ssb / sst, 0.0), 1.0)
    ssw = max(sst - ssb, sst * 1e-12)
    sep = (ssb / (c - 1)) / (ssw / (n - c))
    return {"class_eta2": eta2, "class_eta2_null": null, "class_sep": sep, "classes": float(c)}
