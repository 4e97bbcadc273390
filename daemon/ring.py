"""Bounded series: a ring of recent points plus a downsampled longer history.

Memory per metric is fixed (``cap + hist_cap`` points, 16 bytes each) however
long a run is, which keeps 1,000 concurrent runs within a few hundred MB.
``array.array`` rather than numpy: one append is a few plain item stores, and
numpy's per-item cost dominated the ingest profile.
"""

from __future__ import annotations

from array import array

import numpy as np


class Series:
    """Recent ``(step, value)`` points in a ring, older ones thinned into a history.

    Points pushed out of the ring enter the history at a stride that doubles
    whenever the history fills (then every other point is kept), so the
    history always spans the whole run at decreasing resolution.
    """

    __slots__ = ("cap", "hist_cap", "_steps", "_vals", "_head", "_hsteps", "_hvals",
                 "_stride", "_skip")

    def __init__(self, cap: int = 512, hist_cap: int = 256) -> None:
        self.cap, self.hist_cap = cap, hist_cap
        self._steps = array("q")  # grows to ``cap``, then wraps at ``_head``
        self._vals = array("d")
        self._head = 0
        self._hsteps = array("q")
        self._hvals = array("d")
        self._stride = 1
        self._skip = 0

    def __len__(self) -> int:
        return len(self._steps) + len(self._hsteps)

    def append(self, step: int, value: float) -> None:
        """Add one point."""
        steps = self._steps
        if len(steps) < self.cap:
            steps.append(step)
            self._vals.append(value)
            return
        h = self._head
        if self.hist_cap > 0:
            self._skip += 1
            if self._skip >= self._stride:
                self._skip = 0
                self._to_history(steps[h], self._vals[h])
        steps[h] = step
        self._vals[h] = value
        h += 1
        self._head = 0 if h == self.cap else h

    def extend(self, steps: list[int], values: list[float]) -> None:
        """Add many points at once (the ingest path: one call per metric per batch)."""
        if len(steps) == 1:
            self.append(steps[0], values[0])
            return
        n_over = len(self._steps) + len(steps) - self.cap
        if n_over <= 0:  # not full yet, so not wrapped either
            self._steps.extend(steps)
            self._vals.extend(values)
            return
        old_s, old_v = self._ordered()
        all_s = old_s + array("q", steps)
        all_v = old_v + array("d", values)
        if self.hist_cap > 0:
            # The evicted points enter the history at its current stride.
            first = (self._stride - 1 - self._skip) % self._stride
            ev_s = all_s[first:n_over:self._stride]
            ev_v = all_v[first:n_over:self._stride]
            self._skip = (self._skip + n_over) % self._stride
            self._hsteps.extend(ev_s)
            self._hvals.extend(ev_v)
            while len(self._hsteps) > self.hist_cap:
                self._hsteps = self._hsteps[::2]
                self._hvals = self._hvals[::2]
                self._stride *= 2
        self._steps = all_s[n_over:]
        self._vals = all_v[n_over:]
        self._head = 0

    def _to_history(self, step: int, value: float) -> None:
        if len(self._hsteps) >= self.hist_cap:  # full: keep every other point (the first
            # always, so the history starts where the run did), double the stride
            self._hsteps = self._hsteps[::2]
            self._hvals = self._hvals[::2]
            self._stride *= 2
        self._hsteps.append(step)
        self._hvals.append(value)

    def _ordered(self) -> tuple[array, array]:
        h = self._head
        if not h:
            return self._steps, self._vals
        return self._steps[h:] + self._steps[:h], self._vals[h:] + self._vals[:h]

    def recent(self, n: int | None = None) -> tuple[np.ndarray, np.ndarray]:
        """The last ``n`` ring points (all when ``None``), oldest first."""
        s, v = self._ordered()
        if n is not None:
            k = max(0, len(s) - n)
            s, v = s[k:], v[k:]
        return np.array(s, np.int64), np.array(v, np.float64)

    def history(self) -> tuple[np.ndarray, np.ndarray]:
        """The whole series: thinned history followed by the ring, oldest first."""
        s, v = self._ordered()
        return (np.array(self._hsteps + s, np.int64), np.array(self._hvals + v, np.float64))

    def last(self) -> tuple[int, float] | None:
        """The newest point, or ``None`` when empty."""
        if not self._steps:
            return None
        i = self._head - 1 if self._head else len(self._steps) - 1
        return self._steps[i], self._vals[i]

    def nbytes(self) -> int:
        """Bytes held by the arrays (for status)."""
        return 8 * (len(self._steps) + len(self._vals) + len(self._hsteps) + len(self._hvals))


def to_lists(steps: np.ndarray, vals: np.ndarray) -> dict[str, list]:
    """A series as the wire's ``{"steps": [...], "values": [...]}``."""
    return {"steps": steps.tolist(), "values": vals.tolist()}
