"""What the framework callbacks share: metric-name mapping, value filtering, run names."""

from __future__ import annotations

import re
from collections.abc import Callable, Mapping
from typing import Any

from grokwatch.probe.backend import is_tensor
from grokwatch.wire import names

# The names frameworks and people commonly log, mapped to grokwatch's (lower case,
# "/" and "-" read as "_"). Anything else is logged under its own name.
ALIASES: dict[str, str] = {}
for _canon, _side, _what in ((names.TRAIN_LOSS, "train", "loss"),
                             (names.TRAIN_ACC, "train", "acc"),
                             (names.VAL_LOSS, "val", "loss"),
                             (names.VAL_ACC, "val", "acc")):
    sides = (("train", "training", "") if _side == "train"
             else ("val", "valid", "validation", "eval"))
    whats = ("loss",) if _what == "loss" else ("acc", "accuracy")
    for s in sides:
        for w in whats:
            ALIASES[f"{s}_{w}" if s else w] = _canon

VAL_PREFIXES = ("val", "valid", "validation", "eval")
_SEP = re.compile(r"[/\-\s]+")


def canonical(key: str, extra: Mapping[str, str] | None = None) -> str:
    """The grokwatch name for a logged metric name (``extra`` is the user's own mapping)."""
    if extra and key in extra:
        return extra[key]
    k = _SEP.sub("_", key.strip()).lower()
    return ALIASES.get(k, key)


def is_validation(key: str) -> bool:
    """Whether a logged name is a validation/evaluation metric."""
    k = _SEP.sub("_", key.strip()).lower()
    return any(k == p or k.startswith(p + "_") for p in VAL_PREFIXES)


def scalar(v: Any) -> float | None:
    """A float from a number, numpy scalar or one-element tensor; else None."""
    if isinstance(v, (bool, str, bytes)):
        return None
    try:
        numel = getattr(v, "numel", None)
        if numel is not None and numel() != 1:
            return None
        item = getattr(v, "item", None)
        f = float(item() if item is not None else v)
    except (TypeError, ValueError, RuntimeError, OverflowError):
        return None
    return f


def pick(metrics: Mapping[str, Any], *, validation: bool,
         extra: Mapping[str, str] | None = None) -> dict[str, float]:
    """The scalars of one side (train or validation) of a framework's logged metrics,
    under grokwatch names. ``x_step`` is read as ``x``; on the train side ``x_epoch``
    aggregates are left out (stale between epochs); on the validation side they are ``x``.
    """
    out: dict[str, float] = {}
    for key, v in metrics.items():
        if not isinstance(key, str):
            continue
        k = key
        if k.endswith("_step"):
            k = k[:-5]
        elif k.endswith("_epoch"):
            if not validation:
                continue
            k = k[:-6]
        name = canonical(k, extra)
        # the side is the grokwatch name's (a user's acc_holdout -> val_acc is validation)
        if is_validation(name if name != k else k) != validation:
            continue
        if name not in out or k == key:  # the plain name wins over a _step/_epoch twin
            out[name] = v
    return to_floats(out)


def to_floats(vals: Mapping[str, Any]) -> dict[str, float]:
    """``vals`` as floats, values that are not numbers left out. One-element tensors
    are read with one device-to-host copy per device (one sync on a GPU, not one
    per metric)."""
    out: dict[str, float] = {}
    by_dev: dict[Any, list[tuple[str, Any]]] = {}
    for name, v in vals.items():
        if is_tensor(v) and v.numel() == 1:
            by_dev.setdefault(v.device, []).append((name, v))
            continue
        f = scalar(v)
        if f is not None:
            out[name] = f
    for group in by_dev.values():
        import torch

        stacked = torch.stack([t.detach().reshape(()).to(torch.float64)
                               if t.device.type == "cpu" else t.detach().reshape(()).float()
                               for _, t in group])
        for (name, _), f in zip(group, stacked.cpu().tolist()):
            out[name] = float(f)
    return out


def clean_run_name(name: Any, fallback: str) -> str:
    """A framework's run or log name as a grokwatch run name (no ``/``, no edge spaces,
    no leading ``-``, at most 128 characters), else ``fallback``."""
    run = str(name).replace("/", ".").replace("\\", ".").strip().lstrip("-. ")[-128:] \
        if name is not None else ""
    return run if run and run.isprintable() else fallback


MatrixFn = Callable[[Any], Mapping[str, Any]]
