"""Real probe traffic for the TUI's live tests: short runs on Z_13 with a clean circle."""

from __future__ import annotations

import numpy as np

from grokwatch.probe import Probe

P = 13  # a small modulus: fast observe, 6 frequencies


def embedding(k: int, seed: int) -> np.ndarray:
    """A Z_p embedding whose two first columns are a clean frequency-k circle."""
    rng = np.random.default_rng(seed)
    a = np.arange(P)
    circle = np.stack([np.cos(2 * np.pi * k * a / P), np.sin(2 * np.pi * k * a / P)], 1)
    return np.concatenate([circle + 0.05 * rng.standard_normal((P, 2)),
                           0.1 * rng.standard_normal((P, 6))], 1)


def send_run(endpoint: str, run: str, *, steps: int = 40, k: int = 3, val: float = 0.1,
             start: int = 0, close: bool = True) -> Probe:
    """A short run: fits its training set by step 10, observed every 10 steps."""
    pr = Probe(run, endpoint=endpoint, modulus=P, every=10, config={"k": k})
    for s in range(start, start + steps):
        pr.log(s, train_loss=1 / (s + 1), train_acc=min(1.0, s / 10), val_acc=val,
               val_loss=2.0 - val)
        pr.observe(s, embed=embedding(k, s))
    if close:
        pr.close()
    return pr
