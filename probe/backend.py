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
    def rfft_power(x: np.ndarray) -> np.ndarray:
        """|rfft|^2 along axis 0 (rows are tokens)."""
        f = np.fft.rfft(x, axis=0)
        return f.real ** 2 + f.imag ** 2

    @staticmethod
    def rfft_row(x: np.ndarray, k: int) -> tuple[np.ndarray, np.ndarray]:
        """Real and imaginary parts of DFT coefficient ``k`` along axis 0 (length-d vectors)."""
        p = x.shape[0]
        a = 2 * np.pi * k * np.arange(p) / p
        return np.cos(a) @ x, -(np.sin(a) @ x)

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
    def stack(xs: list) -> np.ndarray:
        return np.stack(xs)


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

    def rfft_power(self, x: Any) -> Any:
        f = self.torch.fft.rfft(x, dim=0)
        return f.real ** 2 + f.imag ** 2

    def rfft_row(self, x: Any, k: int) -> tuple[Any, Any]:
        p = x.shape[0]
        a = 2 * np.pi * k * self.torch.arange(p, device=x.device, dtype=x.dtype) / p
        return self.torch.cos(a) @ x, -(self.torch.sin(a) @ x)

    def take_rows(self, x: Any, perm: np.ndarray) -> Any:
        return x[self.torch.as_tensor(perm, device=x.device)]

    def qr(self, x: Any) -> Any:
        return self.torch.linalg.qr(x)[0]

    def amax(self, x: Any, axis: int) -> Any:
        return x.amax(dim=axis)

    def stack(self, xs: list) -> Any:
        return self.torch.stack(xs)


def backend_for(x: Any) -> NumpyOps | TorchOps:
    """The backend for ``x``: torch for tensors (on their device), numpy for the rest."""
    if is_tensor(x):
        return TorchOps(x.device)
    return NumpyOps()
