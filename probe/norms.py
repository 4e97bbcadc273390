"""Whole-model norms: total weight norm and total gradient norm (when gradients exist)."""

from __future__ import annotations

import math
from typing import Any

from grokwatch.wire.names import GRAD_NORM, WEIGHT_NORM


def model_norms(model: Any) -> dict[str, float]:
    """``weight_norm`` (L2 over all parameters) and ``grad_norm`` (over existing grads).

    ``model`` is anything with ``parameters()`` yielding tensors (a
    ``torch.nn.Module``). Per-parameter norms are reduced on each parameter's
    device; one small vector per device crosses to the host.
    """
    params = list(model.parameters())
    if not params:
        return {}
    out = {WEIGHT_NORM: _total_norm([p.detach() for p in params])}
    grads = [p.grad.detach() for p in params if getattr(p, "grad", None) is not None]
    if grads:
        out[GRAD_NORM] = _total_norm(grads)
    return out


def _total_norm(tensors: list) -> float:
    import torch

    by_dev: dict[Any, list] = {}
    for t in tensors:
        by_dev.setdefault(t.device, []).append(
            torch.linalg.vector_norm(t, dtype=torch.float32 if t.is_cuda else torch.float64))
    sq = 0.0
    for norms in by_dev.values():
        sq += float(torch.stack(norms).double().pow(2).sum().item())
    return math.sqrt(sq)
