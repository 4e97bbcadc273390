"""What ``Probe.observe`` computes: every metric of every named matrix, as plain data.

Names follow the wire convention ``<matrix>.<metric>``. A matrix that cannot
be measured (not 2-D, fewer rows than the modulus, a failing SVD) costs its
metrics and one counted error, never an exception.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any

import numpy as np

from .backend import backend_for, is_tensor
from .fourier import fourier_metrics, null_permutation
from .norms import model_norms
from .spectral import svd_metrics


@dataclass
class Observation:
    """One ``observe`` call's results: scalars, spectra (1-D) and points (N x 2)."""

    scalars: dict[str, float] = field(default_factory=dict)
    spectra: dict[str, np.ndarray] = field(default_factory=dict)
    points: dict[str, np.ndarray] = field(default_factory=dict)


def matrix_metrics(name: str, x: Any, *, modulus: int | None = None,
                   perm: np.ndarray | None = None, on_error: Callable[[str], None] | None = None,
                   obs: Observation | None = None) -> Observation:
    """Metrics of one 2-D tensor or array ``x`` under the prefix ``name``."""
    obs = obs or Observation()
    err = on_error or (lambda msg: None)
    if not is_tensor(x):
        x = np.asarray(x)
    if x.ndim != 2 or x.shape[0] == 0 or x.shape[1] == 0:
        err(f"{name}: expected a non-empty 2-D matrix, got shape {tuple(x.shape)}")
        return obs
    ops = backend_for(x)
    scal, sv = svd_metrics(x, ops)
    obs.scalars.update({f"{name}.{k}": v for k, v in scal.items()})
    if len(sv):
        obs.spectra[f"{name}.sv"] = sv.astype(np.float32)
    if modulus is not None:
        if x.shape[0] < modulus:
            err(f"{name}: {x.shape[0]} rows < modulus {modulus}, Fourier metrics skipped")
            return obs
        if perm is None:
            perm = null_permutation(modulus)
        fr = fourier_metrics(x, modulus, perm, ops)
        obs.scalars.update({f"{name}.{k}": v for k, v in fr.scalars.items()})
        obs.spectra[f"{name}.fourier"] = fr.spectrum.astype(np.float32)
        obs.points[f"{name}.constellation"] = fr.constellation.astype(np.float32)
    return obs


def observe_all(model: Any, matrices: dict[str, Any], *, modulus: int | None = None,
                perms: dict[int, np.ndarray] | None = None,
                on_error: Callable[[Any], None] | None = None) -> Observation:
    """Metrics of every named matrix plus the model's norms; errors go to ``on_error``."""
    err = on_error or (lambda e: None)
    obs = Observation()
    perm = None
    if modulus is not None:
        perms = perms if perms is not None else {}
        if modulus not in perms:
            perms[modulus] = null_permutation(modulus)
        perm = perms[modulus]
    measured: dict[tuple, str] = {}  # alias key -> the name its metrics were computed under
    for name, x in matrices.items():
        try:
            key = alias_key(x)
            first = measured.get(key) if key is not None else None
            if first is not None:
                copy_metrics(obs, first, name)
                continue
            matrix_metrics(name, x, modulus=modulus, perm=perm, on_error=err, obs=obs)
            if key is not None:
                measured[key] = name
        except Exception as e:
            err(f"{name}: {type(e).__name__}: {e}")
    if model is not None:
        try:
            obs.scalars.update(model_norms(model))
        except Exception as e:
            err(f"model norms: {type(e).__name__}: {e}")
    return obs


def alias_key(x: Any) -> tuple | None:
    """Identity of the memory a matrix views (address, shape, strides, dtype, device).

    Two names for the same weights (a one-hot MLP's token embeddings *are* its
    first layer's token-to-neuron map) get the same key, so their metrics are
    computed once. ``None`` when the object exposes no address (a list, say).
    """
    if is_tensor(x):
        return ("t", x.data_ptr(), tuple(x.shape), tuple(x.stride()), str(x.dtype), str(x.device))
    if isinstance(x, np.ndarray):
        return ("n", x.__array_interface__["data"][0], x.shape, x.strides, x.dtype.str)
    return None


def copy_metrics(obs: Observation, src: str, dst: str) -> None:
    """Repeat every result of matrix ``src`` under the name ``dst``."""
    pre = f"{src}."
    for table in (obs.scalars, obs.spectra, obs.points):
        for k in [k for k in table if k.startswith(pre)]:
            table[dst + k[len(src):]] = table[k]
