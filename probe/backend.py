"""The few array operations the metrics need, for numpy arrays and torch tensors alike.

Metric code calls ``ops = backend_for(x)`` and works on ``ops.asfloat(x)``,
so the maths run on the tensor's own device (CPU or CUDA) and only the
small results cross to the host through ``ops.host``. torch is imported
only when a tensor is actually given (checked by its type's module), so
``import grokwatch.probe`` never loads it.
"""

from __future__ import annotations

import sys
from typing import Any

import numpy as np


def is_tensor(x: Any) -> bool:
    """True for a torch tensor, without importing torch."""
    return type(x).__module__.startswith("torch") and "torch" in sys.modules and \
        isinstance(x, sys.modules["torch"].Tensor)


class NumpyOps:
    """Backend over numpy, in float64."""

    name = "numpy"

    @staticmethod
    def asfloat(x: Any) -> np.ndarray:
        return np.asarray(x, dtype=np.float64)

    @staticmethod
    def host(x: Any) -> np.ndarray:
        return np.asarray(x, dtype=np.float64)

    @staticmethod
    def svdvals(x: np.ndarray) -> np.ndarray:
        return np.linalg.svd(x, compute_uv=False)

    @staticmethod
    def const(key: Any, make: Any, like: Any) -> np.ndarray:
        return _cached(("numpy", key), make)

    @staticmethod
    def rfft(x: np.ndarray) -> np.ndarray:
        return np.fft.rfft(x, axis=0)

    @staticmethod
    def take_rows(x: np.ndarray, perm: np.ndarray) -> np.ndarray:
        return x[perm]

    @staticmethod
    def qr(x: np.ndarray) -> np.ndarray:
        return np.linalg.qr(x)[0]

    @staticmethod
    def amax(x: np.ndarray, axis: int) -> np.ndarray:
        return x.max(axis=axis)

    @staticmethod
    def maximum(x: Any, v: float) -> Any:
        return np.maximum(x, v)

    @staticmethod
    def tofloat(x: Any) -> Any:
        return np.asarray(x, dtype=np.float64)

    @staticmethod
    def stack(xs: list) -> np.ndarray:
        return np.stack(xs)

    @staticmethod
    def cat(xs: list) -> np.ndarray:
        return np.concatenate(xs)


class TorchOps:
    """Backend over torch, on the tensor's device; float64 on CPU, float32 elsewhere."""

    name = "torch"

    def __init__(self, device: Any) -> None:
        import torch

        self.torch = torch
        self.dtype = torch.float64 if device.type == "cpu" else torch.float32

    def asfloat(self, x: Any) -> Any:
        return x.detach().to(self.dtype)

    def host(self, x: Any) -> np.ndarray:
        if isinstance(x, self.torch.Tensor):
            return x.detach().to("cpu", self.torch.float64).numpy()
        return np.asarray(x, dtype=np.float64)

    def svdvals(self, x: Any) -> Any:
        return self.torch.linalg.svdvals(x)

    def const(self, key: Any, make: Any, like: Any) -> Any:
        """A host-made constant, moved to ``like``'s device and dtype once, then cached."""
        return _cached(("torch", key, str(like.device), str(like.dtype)),
                       lambda: self.torch.as_tensor(make(), device=like.device, dtype=like.dtype))

    def rfft(self, x: Any) -> Any:
        return self.torch.fft.rfft(x, dim=0)

    def take_rows(self, x: Any, perm: np.ndarray) -> Any:
        return x[self.torch.as_tensor(perm, device=x.device)]

    def qr(self, x: Any) -> Any:
        return self.torch.linalg.qr(x)[0]

    def amax(self, x: Any, axis: int) -> Any:
        return x.amax(dim=axis)

    def maximum(self, x: Any, v: float) -> Any:
        return x.clamp_min(v)

    def tofloat(self, x: Any) -> Any:
        return x.to(self.dtype)

    def stack(self, xs: list) -> Any:
        return self.torch.stack(xs)

    def cat(self, xs: list) -> Any:
        return self.torch.cat(xs)


_CACHE: dict[Any, Any] = {}
_CACHE_MAX = 32  # a probe uses a handful (one per modulus and device)


def _cached(key: Any, make: Any) -> Any:
    v = _CACHE.get(key)
    if v is None:
        if len(_CACHE) >= _CACHE_MAX:
            _CACHE.clear()
        v = _CACHE[key] = make()
    return v


def backend_for(x: Any) -> NumpyOps | TorchOps:
    """The backend for ``x``: torch for tensors (on their device), numpy for the rest."""
    if is_tensor(x):
        return TorchOps(x.device)
    return NumpyOps()
