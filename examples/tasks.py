"""Datasets of the workload zoo: every pair (a, b) of a finite group or of Z_p, split into
train and validation, and scikit-learn's 8x8 digits for real-data grokking.

Plain tensors, no DataLoader. ``make_task`` covers the binary operations mod p
(:data:`OPS`) and composition in small non-abelian groups (:data:`GROUPS`:
dihedral ``D<n>`` of order 2n, the symmetric group ``S4``); ``make_digits``
needs scikit-learn (the ``sklearn`` extra), whose copy of the data set ships in
the package, so nothing downloads.
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


def dihedral_table(n: int) -> torch.Tensor:
    """Multiplication table of the dihedral group D_n (order 2n): element ``f*n + k`` is r^k s^f.

    (r^k1 s^f1)(r^k2 s^f2) = r^(k1 + (-1)^f1 k2) s^(f1 xor f2).
    """
    if n < 3:
        raise ValueError(f"dihedral group needs n >= 3, got {n}")
    k = torch.arange(2 * n) % n
    f = torch.arange(2 * n) // n
    k1, k2 = k[:, None], k[None, :]
    f1, f2 = f[:, None], f[None, :]
    kk = (k1 + torch.where(f1 == 1, -k2, k2)) % n
    return (f1 ^ f2) * n + kk


def symmetric_table(m: int = 4) -> torch.Tensor:
    """Multiplication table of S_m (order m!): element i is the i-th permutation in
    lexicographic order, and ``table[i, j]`` is the composition ``perm_i o perm_j``."""
    from itertools import permutations

    perms = list(permutations(range(m)))
    index = {q: i for i, q in enumerate(perms)}
    return torch.tensor([[index[tuple(p1[x] for x in p2)] for p2 in perms] for p1 in perms])


def group_table(name: str) -> torch.Tensor:
    """The table of a group in :data:`GROUPS` by name (``D<n>`` or ``S4``)."""
    if name == "S4":
        return symmetric_table(4)
    if name.startswith("D") and name[1:].isdigit():
        return dihedral_table(int(name[1:]))
    raise ValueError(f"unknown group {name!r}; choose D<n> (n >= 3) or S4")


GROUPS = ("D<n>", "S4")  # non-abelian groups: composition a o b of two elements


def group_order(op: str) -> int | None:
    """Number of elements of the group ``op`` names, or None when ``op`` is mod-p arithmetic."""
    if op in OPS:
        return None
    return int(group_table(op).shape[0])


def make_task(op: str, p: int, frac: float, seed: int = 0) -> tuple[Split, Split]:
    """All p*p pairs labelled by ``op`` mod ``p``; a seeded ``frac`` of them is the train set.

    ``op`` may also name a group (``D30``, ``S4``): then ``p`` must be its order and
    the label of (a, b) is the composition a o b. Raises ``ValueError`` for an unknown
    op, ``p < 2``, a wrong group order or a fraction that leaves either side empty.
    """
    table = None
    if op not in OPS:
        try:
            table = group_table(op)
        except ValueError:
            raise ValueError(f"unknown op {op!r}; choose one of {', '.join(OPS)}, "
                             f"or a group D<n> / S4") from None
        if table.shape[0] != p:
            raise ValueError(f"group {op} has {table.shape[0]} elements, not {p}")
    if p < 2:
        raise ValueError(f"modulus must be >= 2, got {p}")
    n = p * p
    n_train = int(round(frac * n))
    if not 0 < n_train < n:
        raise ValueError(f"train fraction {frac} leaves an empty train or validation set at p={p}")
    a, b = torch.meshgrid(torch.arange(p), torch.arange(p), indexing="ij")
    a, b = a.reshape(-1), b.reshape(-1)
    y = OPS[op](a, b, p) if table is None else table[a, b]
    # Own generator: the split depends on the seed only, not on torch's global state.
    perm = torch.randperm(n, generator=torch.Generator().manual_seed(seed))
    tr, va = perm[:n_train], perm[n_train:]
    return Split(a[tr], b[tr], y[tr]), Split(a[va], b[va], y[va])


@dataclass
class Dataset:
    """Inputs ``x`` (float32, n x features) and labels ``y`` (int64) of real data."""

    x: torch.Tensor
    y: torch.Tensor

    def __len__(self) -> int:
        return int(self.y.shape[0])


def make_digits(n_train: int = 300, seed: int = 0) -> tuple[Dataset, Dataset]:
    """scikit-learn's 8x8 digits (1,797 images, 10 classes), pixels scaled to [0, 1].

    A seeded ``n_train`` of them is the train set, the rest validation. Needs
    scikit-learn (``pip install grokwatch[sklearn]``); the data ship with it.
    """
    try:
        from sklearn.datasets import load_digits
    except ImportError as e:  # pragma: no cover - depends on the install
        raise ImportError("the digits task needs scikit-learn: pip install 'grokwatch[sklearn]'"
                          ) from e
    d = load_digits()
    x = torch.tensor(d.data, dtype=torch.float32) / 16.0
    y = torch.tensor(d.target, dtype=torch.int64)
    if not 0 < n_train < len(y):
        raise ValueError(f"n_train must be in 1..{len(y) - 1}, got {n_train}")
    perm = torch.randperm(len(y), generator=torch.Generator().manual_seed(seed))
    tr, va = perm[:n_train], perm[n_train:]
    return Dataset(x[tr], y[tr]), Dataset(x[va], y[va])
