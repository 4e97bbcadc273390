"""What ``Probe.observe`` computes: every metric of every named matrix, as plain data.

Names follow the wire convention ``<matrix>.<metric>``. A matrix that cannot
be measured (not 2-D, fewer rows than the modulus, a failing SVD) costs its
metrics and one counted error, never an exception.

Two names are reserved: ``features`` (an ``N x d`` batch of representations)
with ``labels`` (its ``N`` integer labels) are measured by class geometry
(:mod:`.geometry`): ``features.class_sep`` on the features as given and, when
``model`` has a final ``Linear`` that reads them (``in_features == d``),
``features.readout_sep`` on what that readout computes from them (the batch's
logits). Any argument may be a callable, called only here, when an observation
is due. Without ``embed`` the token embedding is found in ``model`` (see
:func:`discover`).
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any

import numpy as np

from .backend import backend_for, is_tensor
from .fourier import fourier_metrics, null_permutations
from .geometry import class_geometry
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
            perm = null_permutations(modulus)
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
            perms[modulus] = null_permutations(modulus)
        perm = perms[modulus]
    matrices = dict(matrices)
    for name, x in list(matrices.items()):
        if callable(x) and not is_tensor(x) and not isinstance(x, np.ndarray):
            try:
                matrices[name] = x()  # an expensive argument, evaluated only when due
            except Exception as e:
                err(f"{name}: calling it raised {type(e).__name__}: {e}")
                del matrices[name]
    feats, labels = matrices.pop("features", None), matrices.pop("labels", None)
    if model is not None and "embed" not in matrices:
        try:
            matrices.update(discover(model, modulus))
        except Exception as e:
            err(f"model discovery: {type(e).__name__}: {e}")
    if feats is not None:
        if labels is None:
            err("features given without labels: class geometry skipped")
        else:
            try:
                feature_metrics(feats, labels, model, obs)
            except Exception as e:
                err(f"features: {type(e).__name__}: {e}")
    elif labels is not None:
        err("labels given without features: class geometry skipped")
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


def feature_metrics(h: Any, labels: Any, model: Any, obs: Observation) -> None:
    """Class geometry of a batch's features, as given and through the model's readout."""
    if not is_tensor(h):
        h = np.asarray(h)
    ops = backend_for(h)
    g = class_geometry(h, labels, ops)
    obs.scalars.update({f"features.{k}": v for k, v in g.items()})
    ro = readout(model, int(h.shape[1])) if model is not None else None
    if ro is not None:
        w, b = ro
        x = ops.asfloat(h)
        z = x @ ops.asfloat(w.detach()).T
        if b is not None:
            z = z + ops.asfloat(b.detach())
        r = class_geometry(z, labels, ops)
        obs.scalars["features.readout_sep"] = r["class_sep"]
        obs.scalars["features.readout_eta2"] = r["class_eta2"]
        a = readout_alignment(z, labels, ops)
        if a is not None:
            obs.scalars["features.readout_align"] = a


def readout_alignment(z: Any, labels: Any, ops: Any) -> float | None:
    """Mean standardized true-class logit of a batch: ``mean_i (z_iy - mean_j z_ij) / sd_i``.

    0 in expectation when the logits carry no information about the labels (any
    scale, any number of classes); positive when the readout points the batch at
    its own classes, negative when it points away (memorizing networks push the
    held-out true class down). None when a label has no logit column.
    """
    y = np.asarray(labels.detach().cpu() if is_tensor(labels) else labels).reshape(-1)
    k = int(z.shape[1])
    if k < 2 or y.size == 0 or y.min() < 0 or y.max() >= k:
        return None
    zc = z - z.mean(1, keepdims=True) if isinstance(z, np.ndarray) else z - z.mean(1, keepdim=True)
    sd = (zc * zc).mean(1) ** 0.5
    idx = ops.const(("labels", y.tobytes()), lambda: y.astype(np.int64), like=zc)
    if isinstance(zc, np.ndarray):
        true = zc[np.arange(len(y)), y]
    else:
        true = zc.gather(1, idx.long()[:, None])[:, 0]
    return float(ops.host((true / ops.maximum(sd, 1e-30)).mean()))


def readout(model: Any, width: int) -> tuple[Any, Any] | None:
    """(weight, bias) of the model's output layer when it reads ``width`` features, else None.

    The output layer is the last ``Linear`` registered in the model (the
    unembedding of a transformer, the output layer of an MLP). Features of
    another width (a hidden layer further down) have no readout: they are
    measured as given, and the alignment gate does not apply.
    """
    last = None
    for m in model.modules():
        w = getattr(m, "weight", None)
        if type(m).__name__ == "Linear" and w is not None and w.ndim == 2:
            last = m
    if last is None or int(last.weight.shape[1]) != width:
        return None
    return last.weight, getattr(last, "bias", None)


def discover(model: Any, modulus: int | None) -> dict[str, Any]:
    """Token matrices of a model with an ``nn.Embedding``: ``embed`` and, when a transformer
    block follows, ``neurons`` (the embedding as seen by the first MLP).

    ``embed`` is the first ``Embedding``'s weight (its first ``modulus`` rows when a
    modulus is set and the vocabulary has extra tokens such as ``=``). ``neurons`` is
    ``embed @ W_in.T`` for the first ``Linear`` after it that widens the embedding
    dimension (``in_features == d < out_features``: a transformer MLP's input; the
    attention projections keep or triple the width and are skipped when they are
    ``3d``-wide fused qkv maps). The residual path alone is read, ignoring attention
    mixing, as Nanda et al. do. Returns ``{}`` when the model has no Embedding: the
    user then names the tensors (``embed=``, ``neurons=``, ``layer1=``).
    """
    mods = list(model.modules())
    emb_i = next((i for i, m in enumerate(mods) if type(m).__name__ == "Embedding"), None)
    if emb_i is None:
        return {}
    e = mods[emb_i].weight.detach()
    if modulus is not None and e.shape[0] > modulus:
        e = e[:modulus]
    out = {"embed": e}
    d = int(e.shape[1])
    for m in mods[emb_i + 1:]:
        w = getattr(m, "weight", None)
        if type(m).__name__ == "Linear" and w is not None and int(w.shape[1]) == d \
                and d < int(w.shape[0]) != 3 * d:
            out["neurons"] = e @ w.detach().T
            break
    return out
