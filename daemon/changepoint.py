"""Streaming change statistics for smooth, autocorrelated metric streams.

Training metrics are computed on slowly moving weights, so consecutive samples
are strongly correlated (lag-1 autocorrelation 0.5-0.95). Textbook CUSUM
settings assume i.i.d. noise and false-alarm every few dozen samples on such
streams (research/onset-detection.md, section 2.1), so every statistic here
takes its reference *and* its lag-1 autocorrelation from a frozen warm-up and
either prewhitens the stream or inflates its variance by (1 + r1) / (1 - r1).

Everything is pure Python on floats: O(1) per sample, or O(window) for the
windowed slope. No numpy array is allocated per sample.
"""

from __future__ import annotations

import math
from collections import deque

R1_MAX = 0.9  # beyond this the correction is unreliable (research 5.1): cap it


def clip_r1(r1: float) -> float:
    """Clamp an estimated lag-1 autocorrelation to ``[0, R1_MAX]``.

    Negative estimates are treated as 0: deflating the variance on a noisy
    estimate would only make false alarms likelier.
    """
    if not math.isfinite(r1):
        return 0.0
    return min(max(r1, 0.0), R1_MAX)


def ar1_inflation(r1: float) -> float:
    """Variance inflation of a mean or slope under AR(1) noise: ``(1 + r1) / (1 - r1)``."""
    r = clip_r1(r1)
    return (1.0 + r) / (1.0 - r)


def line_fit(ys: list[float]) -> tuple[float, float, list[float]]:
    """OLS line through ``ys`` at x = 0..n-1: ``(intercept, slope, residuals)``."""
    n = len(ys)
    if n < 2:
        return (ys[0] if ys else 0.0), 0.0, [0.0] * n
    xm = (n - 1) / 2.0
    ym = sum(ys) / n
    sxx = n * (n * n - 1) / 12.0
    sxy = sum((i - xm) * (y - ym) for i, y in enumerate(ys))
    b = sxy / sxx
    a = ym - b * xm
    return a, b, [y - (a + b * i) for i, y in enumerate(ys)]


def lag1(res: list[float]) -> float:
    """Lag-1 autocorrelation of a residual series (0 when undefined)."""
    den = sum(r * r for r in res)
    if len(res) < 3 or den <= 0.0:
        return 0.0
    return sum(a * b for a, b in zip(res, res[1:])) / den


class Reference:
    """Level, noise scale and lag-1 autocorrelation of a warm-up, then frozen.

    The noise scale and r1 come from the residuals of a straight line through
    the warm-up, so a gentle drift during the warm-up is not mistaken for
    noise (it would inflate the scale) nor for autocorrelation.
    """

    __slots__ = ("n", "buf", "mean", "sd", "sd_innov", "r1", "slope", "ready")

    def __init__(self, n: int) -> None:
        if n < 1:
            raise ValueError("warm-up needs at least one sample")
        self.n = n
        self.buf: list[float] = []
        self.mean = self.sd = self.sd_innov = self.r1 = self.slope = 0.0
        self.ready = False

    def add(self, x: float) -> bool:
        """Feed one warm-up sample; return True once the reference is frozen."""
        if self.ready:
            return True
        self.buf.append(x)
        if len(self.buf) >= self.n:
            ys = self.buf
            _, b, res = line_fit(ys)
            self.mean = sum(ys) / len(ys)
            self.slope = b
            dof = max(len(ys) - 2, 1)
            self.sd = math.sqrt(sum(r * r for r in res) / dof) if len(ys) > 2 else 0.0
            # lag-1 estimates are biased low by about (1 + 3 r1) / n (Kendall 1954);
            # an under-estimate leaves autocorrelation in the CUSUM input.
            r = lag1(res)
            self.r1 = clip_r1(r + (1.0 + 3.0 * r) / len(ys) if len(ys) >= 10 else r)
            # Innovation scale of the AR(1) fit: better determined than the
            # stationary sd when r1 is high (which divides by sqrt(1 - r1^2)).
            inn = [b2 - self.r1 * a2 for a2, b2 in zip(res, res[1:])]
            self.sd_innov = (math.sqrt(sum(v * v for v in inn) / max(len(inn) - 1, 1))
                             if len(inn) > 2 else self.sd)
            self.ready = True
            self.buf = []
        return self.ready

    def as_dict(self) -> dict[str, float]:
        """The frozen reference, for alert evidence."""
        return {"mean": self.mean, "sd": self.sd, "sd_innov": self.sd_innov, "r1": self.r1,
                "slope": self.slope}


class Cusum:
    """One-sided tabular CUSUM on a prewhitened, standardized stream.

    ``S <- max(0, S + d*e - k)`` with ``e`` the AR(1)-prewhitened z-score
    against a frozen warm-up reference and ``d`` = +1 (detect a rise) or -1
    (a fall); alarms while ``S > h``. With k = 0.5 the i.i.d. in-control run
    length grows like exp(2k(h + 1.17)) / 2k^2: about 465 samples at h = 5 and
    over 10^5 at h = 10, which is what a monitor that must stay quiet for
    10,000 samples needs.
    """

    __slots__ = ("k", "h", "d", "sd_floor", "prewhiten", "ref", "s", "prev_z", "alarm", "peak")

    def __init__(self, *, k: float = 0.5, h: float = 10.0, warmup: int = 50,
                 direction: int = 1, sd_floor: float = 0.0, prewhiten: bool = True) -> None:
        if direction not in (1, -1):
            raise ValueError("direction must be +1 or -1")
        self.k, self.h, self.d, self.sd_floor = k, h, direction, sd_floor
        self.prewhiten = prewhiten  # False: the textbook i.i.d. CUSUM (for comparison)
        self.ref = Reference(warmup)
        self.s = 0.0
        self.prev_z: float | None = None
        self.alarm = False
        self.peak = 0.0

    def update(self, x: float) -> bool:
        """Feed one sample; return whether the statistic is above ``h``."""
        if not math.isfinite(x):
            return self.alarm  # a missing value carries no evidence either way
        ref = self.ref
        if not ref.ready:
            ref.add(x)
            return False
        # Prewhiten: the AR(1) innovation of the deviation, in innovation sds.
        dev = x - ref.mean
        r = ref.r1
        if self.prev_z is None or not self.prewhiten:
            e = dev / max(ref.sd, self.sd_floor, 1e-12)
        else:
            e = (dev - r * self.prev_z) / max(ref.sd_innov, self.sd_floor, 1e-12)
        self.prev_z = dev
        e = max(-6.0, min(6.0, e))  # one wild sample cannot carry the sum
        self.s = max(0.0, self.s + self.d * e - self.k)
        self.peak = max(self.peak, self.s)
        self.alarm = self.s > self.h
        return self.alarm


class WindowSlope:
    """OLS slope of the last ``window`` samples and its AR(1)-inflated t-statistic.

    The t-statistic uses the residual scale inside the window and the larger
    of the window's own residual lag-1 autocorrelation and ``r1_floor`` (a
    warm-up estimate, when one exists: a short window underestimates r1).
    O(window) per sample.
    """

    __slots__ = ("window", "buf", "r1_floor")

    def __init__(self, window: int = 10, *, r1_floor: float = 0.0) -> None:
        if window < 4:
            raise ValueError("a slope test needs a window of at least 4 samples")
        self.window = window
        self.buf: deque[float] = deque(maxlen=window)
        self.r1_floor = r1_floor

    @property
    def full(self) -> bool:
        return len(self.buf) == self.window

    def update(self, x: float) -> None:
        """Append one sample (non-finite samples are skipped)."""
        if math.isfinite(x):
            self.buf.append(x)

    def stats(self) -> tuple[float, float, float]:
        """``(slope, t, r1)`` over the current window (zeros until it is full)."""
        if not self.full:
            return 0.0, 0.0, 0.0
        ys = list(self.buf)
        n = len(ys)
        _, b, res = line_fit(ys)
        r1 = max(clip_r1(lag1(res)), clip_r1(self.r1_floor))
        s2 = sum(r * r for r in res) / (n - 2)
        se = math.sqrt(max(s2, 0.0) * 12.0 / (n * (n * n - 1)) * ar1_inflation(r1))
        if se <= 0.0:
            t = math.copysign(math.inf, b) if b != 0 else 0.0
        else:
            t = b / se
        return b, t, r1


class Hold:
    """Debounce with hysteresis: on after ``on`` consecutive hits, off after ``off`` misses."""

    __slots__ = ("on", "off", "hits", "misses", "state")

    def __init__(self, on: int = 3, off: int = 3) -> None:
        self.on, self.off = on, off
        self.hits = self.misses = 0
        self.state = False

    def update(self, hit: bool) -> bool:
        """Feed one sample's condition; return the debounced state."""
        if hit:
            self.hits += 1
            self.misses = 0
            if self.hits >= self.on:
                self.state = True
        else:
            self.misses += 1
            self.hits = 0
            if self.misses >= self.off:
                self.state = False
        return self.state


class ShiftDetector:
    """A sustained one-directional shift away from a frozen warm-up level.

    A sample is a *hit* when the effect ``d * (x - ref.mean) >= effect`` (in
    the stream's own units, e.g. a log-ratio, so the threshold is relative,
    never tied to one model) and the prewhitened CUSUM is above ``h`` (the
    shift is not AR(1) noise). ``active`` is the hits debounced by ``hold``
    consecutive samples; ``fired`` latches the first time it becomes active.
    """

    __slots__ = ("effect", "cusum", "hold", "fired", "active", "last_x")

    def __init__(self, *, effect: float, direction: int = 1, warmup: int = 3,
                 k: float = 0.5, h: float = 10.0, hold: int = 2,
                 sd_floor: float = 0.0) -> None:
        self.effect = effect
        self.cusum = Cusum(k=k, h=h, warmup=warmup, direction=direction, sd_floor=sd_floor)
        self.hold = Hold(on=hold, off=hold)
        self.fired = False
        self.active = False
        self.last_x = math.nan

    @property
    def ready(self) -> bool:
        return self.cusum.ref.ready

    def excess(self) -> float:
        """Signed shift of the last sample from the reference, in the detection direction."""
        if not self.ready or not math.isfinite(self.last_x):
            return 0.0
        return self.cusum.d * (self.last_x - self.cusum.ref.mean)

    def update(self, x: float) -> bool:
        """Feed one sample; return True on the sample where it first fires."""
        if math.isfinite(x):
            self.last_x = x
        ready_before = self.ready
        alarm = self.cusum.update(x)
        if not ready_before:
            return False
        self.active = self.hold.update(alarm and self.excess() >= self.effect)
        if self.active and not self.fired:
            self.fired = True
            return True
        return False

    def evidence(self) -> dict[str, float | dict[str, float]]:
        """Statistics and thresholds for alert evidence."""
        return {"excess": self.excess(), "effect_threshold": self.effect,
                "cusum": self.cusum.s, "cusum_h": self.cusum.h, "cusum_k": self.cusum.k,
                "ref": self.cusum.ref.as_dict()}


class TurnDetector:
    """A stream turning: moving away from its most extreme value since the warm-up.

    With ``direction=+1`` it watches for a rise from the running minimum (a
    falling stream that turns up, or a flat one that starts rising). A sample
    is a hit when the move ``d * (x - extreme) >= effect`` and it is
    significant: at least ``z`` warm-up noise sds, the sd inflated by the
    warm-up's AR(1) factor. Debounced by ``hold``; ``fired`` latches.
    """

    __slots__ = ("effect", "d", "z", "sd_floor", "ref", "extreme", "hold", "fired", "active",
                 "move", "score")

    def __init__(self, *, effect: float, direction: int = 1, warmup: int = 3, z: float = 3.0,
                 hold: int = 2, sd_floor: float = 0.0) -> None:
        if direction not in (1, -1):
            raise ValueError("direction must be +1 or -1")
        self.effect, self.d, self.z, self.sd_floor = effect, direction, z, sd_floor
        self.ref = Reference(warmup)
        self.extreme = math.inf  # of d * x: the running minimum in the detection frame
        self.hold = Hold(on=hold, off=hold)
        self.fired = self.active = False
        self.move = self.score = 0.0

    def update(self, x: float) -> bool:
        """Feed one sample; return True on the sample where it first fires."""
        if not math.isfinite(x):
            return False
        y = self.d * x
        if not self.ref.ready:
            if self.ref.add(x):
                self.extreme = y  # turns are measured from the end of the warm-up on
            return False
        self.extreme = min(self.extreme, y)
        self.move = y - self.extreme
        sd = max(self.ref.sd, self.sd_floor, 1e-12) * math.sqrt(ar1_inflation(self.ref.r1))
        self.score = self.move / sd
        self.active = self.hold.update(self.move >= self.effect and self.score >= self.z)
        if self.active and not self.fired:
            self.fired = True
            return True
        return False

    def evidence(self) -> dict[str, float | dict[str, float]]:
        """Statistics and thresholds for alert evidence."""
        return {"move_from_extreme": self.move, "effect_threshold": self.effect,
                "z": self.score, "z_threshold": self.z, "ref": self.ref.as_dict()}
