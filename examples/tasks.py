"""Modular-arithmetic datasets: every pair (a, b) of Z_p, split into train and validation.

Plain tensors, no DataLoader: the workloads train full batch.
"""

from __future__ import annotations

from dataclasses import dataclass

import torch

# Binary operations on Z_p, by the name a config uses.
OPS = {
    "add": lambda a, b, p: (a + b) % p,
    "sub": lambda a, b, p: (a - b) % p,
    "mul": lambda a, b, p: (a * b) % p,
    "sq_add": lambda a, b, p: (a * a + b * b) % p,  # a^2 + b^2
}


@dataclass
class Split:
    """One side of the split: operands and labels, int64 tensors of equal length."""

    a: torch.Tensor
    b: torch.Tensor
    y: torch.Tensor

    def __len__(self) -> int:
        return int(self.y.shape[0])


def make_task(op: str, p: int, frac: float, seed: int = 0) -> tuple[Split, Split]:
    """All p*p pairs labelled by ``op`` mod ``p``; a seeded ``frac`` of them is the train set.

    Raises ``ValueError`` for an unknown op, ``p < 2`` or a fraction that leaves either
    side empty.
    """
    if op not in OPS:
        raise ValueError(f"unknown op {op!r}; choose one of {', '.join(OPS)}")
    if p < 2:
        raise ValueError(f"modulus must be >= 2, got {p}")
    n = p * p
    n_train = int(round(frac * n))
    if not 0 < n_train < n:
        raise ValueError(f"train fraction {frac} leaves an empty train or validation set at p={p}")
    a, b = torch.meshgrid(torch.arange(p), torch.arange(p), indexing="ij")
    a, b = a.reshape(-1), b.reshape(-1)
    y = OPS[op](a, b, p)
    # Own generator: the split depends on the seed only, not on torch's global state.
    perm = torch.randperm(n, generator=torch.Generator().manual_seed(seed))
    tr, va = perm[:n_train], perm[n_train:]
    return Split(a[tr], b[tr], y[tr]), Split(a[va], b[va], y[va])
