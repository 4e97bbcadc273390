"""Named workloads, calibrated on a 2-core CPU with one torch thread (see notes/presets.md).

Plain maps of :class:`grokwatch.examples.train.WorkloadConfig` fields, importable without
torch (the CLI lists them in ``--help``). Each shows one phase of Liu et al. 2022 in about
a minute or less.
"""

from __future__ import annotations

import math
from typing import Any

# The reference model of the issue: one-hot(a)||one-hot(b) -> 128 -> ReLU -> 128 -> ReLU -> 97
# on (a + b) mod 97, full-batch AdamW lr 1e-3. Presets differ in data and weight decay.
_MLP: dict[str, Any] = {"op": "add", "modulus": 97, "model": "mlp", "lr": 1e-3, "beta2": 0.999,
                        "log_every": 10, "observe_every": 20}

PRESETS: dict[str, dict[str, Any]] = {
    # Fits the train set by step ~350, val acc 0.5 at ~1600: a long memorized plateau.
    # Stops 100 steps after val acc 0.95 so the generalized phase is visible.
    "grokking": {**_MLP, "frac": 0.5, "weight_decay": 1.0, "steps": 3000,
                 "until_val": 0.95, "extra_steps": 100},
    # 90% of pairs: train and val accuracy rise together.
    "comprehension": {**_MLP, "frac": 0.9, "weight_decay": 1.0, "steps": 600},
    # Weight decay 0: fits train, val stays at chance for as long as grokking takes.
    "memorization": {**_MLP, "frac": 0.5, "weight_decay": 0.0, "steps": 2000},
    # Weight decay 30 (lr 3e-3): too strong to fit even the train set; wd 20 creeps up slowly.
    "confusion": {**_MLP, "frac": 0.5, "lr": 3e-3, "weight_decay": 30.0, "steps": 1000},
}

DESCRIPTIONS = {
    "grokking": "memorizes early, generalizes much later (MLP, a+b mod 97, 50% of pairs, wd 1)",
    "comprehension": "generalizes with training (90% of pairs)",
    "memorization": "memorizes, never generalizes (weight decay 0)",
    "confusion": "never fits (weight decay 30)",
}

# Short versions for tests and quick looks: Gromov's quadratic MLP at p=53 shows the same
# phases in seconds (its memorized plateau is ~500 steps, not ~1,300).
_QUAD: dict[str, Any] = {"op": "add", "modulus": 53, "model": "quadratic", "lr": 1e-2,
                         "beta2": 0.98, "log_every": 10, "observe_every": 10}
FAST: dict[str, dict[str, Any]] = {
    "grokking": {**_QUAD, "frac": 0.3, "weight_decay": 1.0, "steps": 1500, "until_val": 0.95,
                 "extra_steps": 60},
    "comprehension": {**_QUAD, "frac": 0.6, "weight_decay": 5.0, "steps": 100},
    "memorization": {**_QUAD, "frac": 0.3, "weight_decay": 0.0, "steps": 500},
    # The quadratic model oscillates under heavy weight decay; the MLP stalls flat.
    "confusion": {"op": "add", "modulus": 53, "model": "mlp", "lr": 1e-3, "beta2": 0.999,
                  "log_every": 10, "observe_every": 10, "frac": 0.5, "weight_decay": 50.0,
                  "steps": 400},
}


def preset_config(name: str, *, fast: bool = False, scale: float | None = None,
                  steps: int | None = None, **overrides: Any) -> dict[str, Any]:
    """The config map of preset ``name`` with overrides applied (None values are ignored).

    ``scale`` multiplies the step budget and the post-generalization tail; ``steps``
    sets the budget outright. ``fast`` picks the short test version where one exists.
    Raises ``ValueError`` for an unknown preset or a non-positive scale.
    """
    table = FAST if fast else PRESETS
    if name not in table:
        raise ValueError(f"unknown preset {name!r}; choose one of {', '.join(table)}")
    cfg = dict(table[name])
    if scale is not None:
        if not (scale > 0 and math.isfinite(scale)):
            raise ValueError(f"scale must be a positive number, got {scale!r}")
        cfg["steps"] = max(1, round(cfg["steps"] * scale))
        cfg["extra_steps"] = round(cfg.get("extra_steps", 0) * scale)
    if steps is not None:
        cfg["steps"] = steps
    cfg.update({k: v for k, v in overrides.items() if v is not None})
    return cfg
