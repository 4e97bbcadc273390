"""Bounded series: a ring of recent points plus a downsampled longer history.

Memory per metric is fixed (``cap + hist_cap`` points) however long a run is,
which keeps 1,000 concurrent runs within a few hundred MB.
"""

from __future__ import annotations

import numpy as np


class Series:
    """Recent ``(step, value)`` points in a ring, older ones thinned into a history.

    Points pushed out of the ring enter the history at a stride that doubles
    whenever the history fills (then every other point is kept), so the
    history always spans the whole run at decreasing resolution.
    """

    __slots__ = ("cap", "hist_cap", "_steps", "_vals", "_n", "_head",
                 "_hsteps", "_hvals", "_hn", "_stride", "_skip")

    def __init__(self, cap: int = 512, hist_cap: int = 256) -> None:
        self.cap, self.hist_cap = cap, hist_cap
        # Grown lazily up to ``cap``: most metrics of most runs stay short.
        self._steps = np.empty(min(16, cap), np.int64)
        self._vals = np.empty(min(16, cap), np.float64)
        self._n = 0  # points in the ring
        self._head = 0  # next write position once full
        self._hsteps = np.empty(0, np.int64)
        self._hvals = np.empty(0, np.float64)
        self._hn = 0
        self._stride = 1
        self._skip = 0

    def __len__(self) -> int:
        return self._n + self._hn

    def append(self, step: int, value: float) -> None:
        """Add one point."""
        n = self._n
        if n < self.cap:
            if n == len(self._steps):
                size = min(self.cap, 2 * n)
                self._steps = np.resize(self._steps, size)
                self._vals = np.resize(self._vals, size)
            self._steps[n] = step
            self._vals[n] = value
            self._n = n + 1
            return
        h = self._head
        self._to_history(int(self._steps[h]), float(self._vals[h]))
        self._steps[h] = step
        self._vals[h] = value
        self._head = (h + 1) % self.cap

    def _to_history(self, step: int, value: float) -> None:
        if self.hist_cap <= 0:
            return
        self._skip += 1
        if self._skip < self._stride:
            return
        self._skip = 0
        if not len(self._hsteps):
            self._hsteps = np.empty(self.hist_cap, np.int64)
            self._hvals = np.empty(self.hist_cap, np.float64)
        if self._hn == self.hist_cap:  # full: keep every other point, double the stride
            half = self._hn // 2
            self._hsteps[:half] = self._hsteps[1:self._hn:2][:half]
            self._hvals[:half] = self._hvals[1:self._hn:2][:half]
            self._hn = half
            self._stride *= 2
        self._hsteps[self._hn] = step
        self._hvals[self._hn] = value
        self._hn += 1

    def recent(self, n: int | None = None) -> tuple[np.ndarray, np.ndarray]:
        """The last ``n`` ring points (all when ``None``), oldest first."""
        if self._n < self.cap:
            s, v = self._steps[:self._n], self._vals[:self._n]
        else:
            s = np.roll(self._steps, -self._head)
            v = np.roll(self._vals, -self._head)
        if n is not None:
            s, v = s[-n:] if n else s[:0], v[-n:] if n else v[:0]
        return s.copy(), v.copy()

    def history(self) -> tuple[np.ndarray, np.ndarray]:
        """The whole series: thinned history followed by the ring, oldest first."""
        s, v = self.recent()
        return (np.concatenate([self._hsteps[:self._hn], s]),
                np.concatenate([self._hvals[:self._hn], v]))

    def last(self) -> tuple[int, float] | None:
        """The newest point, or ``None`` when empty."""
        if not self._n:
            return None
        i = self._n - 1 if self._n < self.cap else (self._head - 1) % self.cap
        return int(self._steps[i]), float(self._vals[i])

    def nbytes(self) -> int:
        """Bytes held by the arrays (for status)."""
        return (self._steps.nbytes + self._vals.nbytes + self._hsteps.nbytes
                + self._hvals.nbytes)


def to_lists(steps: np.ndarray, vals: np.ndarray) -> dict[str, list]:
    """A series as the wire's ``{"steps": [...], "values": [...]}``."""
    return {"steps": steps.tolist(), "values": [float(x) for x in vals.tolist()]}
