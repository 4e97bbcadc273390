"""Onset fusion: has a memorized network started to generalize?

Armed only once the run has memorized (the caller decides that from train
accuracy), it watches the probe's geometry metrics, never validation data:

* **required** - structure above its chance null: for every matrix prefix
  ``P`` with ``P.fourier_ipr`` / ``P.fourier_ipr_null`` (or ``fourier_conc``),
  the log-ratio ``log(metric / null)`` must rise by ``struct_effect`` (x1.5
  by default) above its level at memorization, confirmed by a prewhitened
  CUSUM and held for ``hold`` samples. Dividing by the null makes the
  statistic free of modulus and width (research: IPR x1.5 at memorization
  fired before val acc 0.5 in 5/5 grokking runs, 0/4 memorization-only runs);
* **agreeing**, at least one other statistic within ``coincidence`` samples:
  the other per-neuron structure metric (top-1 concentration when IPR fired,
  or IPR when concentration did) above its own null by ``corr_effect``; the weight
  norm turning down (windowed slope significantly negative, AR(1)-inflated,
  and below its post-memorization peak), or ``P.fourier_entropy`` falling,
  ``P.fourier_topk`` or ``P.fourier_gini`` rising (each
  turning from their most extreme value since the warm-up, by ``corr_effect``
  (x1.15) and by ``corr_z`` warm-up noise sds).

Why the other structure metric counts: in models whose neurons spread evenly
over frequencies (Gromov's quadratic MLP) the aggregate spectrum stays flat
and the weight norm turns down only once validation accuracy moves (measured
on the zoo), so without it those runs would get their onset after the fact.
Two different statistics of the per-neuron spectra, each against its own
null, still guard against one statistic's artefact.

Measured on the workload zoo (``bench/detection.py``, 12 grokking runs of the
quadratic and one-hot MLPs, 6 controls): the largest structure ratio a control
reached was x1.31 (one-hot MLP, weight decay 0, 2,500 steps) against the x1.5
threshold; onset came before val acc 0.5 in 12/12 grokking runs, at a median
47 % of the memorized plateau ahead of it (one-hot MLP 62-70 %, quadratic MLP
42-54 %: its structure climbs steadily from memorization, so x1.5 is reached
later in its plateau). Multiplication gets no onset: its structure lives in the
discrete-log basis, not the token index the probe's DFT uses.

Effective rank is never used: without weight decay it collapses in runs that
never generalize. At most one onset per armed episode.
"""

from __future__ import annotations

import math
from dataclasses import dataclass
from typing import Any

from grokwatch.daemon.changepoint import ShiftDetector, TurnDetector, WindowSlope

STRUCTURE_METRICS = ("fourier_ipr", "fourier_conc")
# Aggregate-spectrum statistics that agree by turning towards more structure (entropy
# is watched as log(1 - H) so that every one of them rises).
CORROBORATING = ("fourier_entropy", "fourier_topk", "fourier_gini")
WEIGHT_NORM = "weight_norm"


@dataclass
class OnsetParams:
    """Tunables of the fusion (all relative; defaults calibrated on the workload zoo)."""

    warmup: int = 4  # geometry samples after arming that form each reference
    struct_effect: float = math.log(1.5)  # rise of log(metric/null) above memorization
    corr_effect: float = math.log(1.15)  # turn of a corroborating log-statistic from its extreme
    corr_z: float = 2.0  # and that turn in warm-up noise sds (AR(1)-inflated)
    norm_window: int = 6  # samples in the weight-norm slope window
    norm_t: float = 3.0  # slope t-statistic (AR(1)-inflated) below -norm_t
    norm_drop: float = 0.005  # and log(peak / now) at least this (0.5 %)
    cusum_k: float = 0.5
    cusum_h: float = 4.0
    hold: int = 2  # consecutive samples a condition must hold
    coincidence: int = 10  # samples a corroborating signal stays "agreeing"
    sd_floor_frac: float = 0.25  # noise scale floor as a fraction of the effect


def _log(x: float) -> float:
    return math.log(x) if x > 0.0 and math.isfinite(x) else math.nan


class _NormTurn:
    """Weight norm turning down: significant negative slope and below its peak."""

    __slots__ = ("slope", "peak", "t", "b", "drop", "params")

    def __init__(self, params: OnsetParams) -> None:
        self.params = params
        self.slope = WindowSlope(params.norm_window)
        self.peak = -math.inf
        self.t = self.b = self.drop = 0.0

    def update(self, x: float) -> bool:
        if not math.isfinite(x):
            return False
        self.peak = max(self.peak, x)
        self.slope.update(x)
        self.b, self.t, _ = self.slope.stats()
        self.drop = self.peak - x
        p = self.params
        return self.slope.full and self.t < -p.norm_t and self.drop >= p.norm_drop

    def evidence(self) -> dict[str, float]:
        p = self.params
        return {"slope_log_per_sample": self.b, "t": self.t, "t_threshold": -p.norm_t,
                "drop_from_peak": self.drop, "drop_threshold": p.norm_drop,
                "window": p.norm_window}


class OnsetFusion:
    """Streaming onset detector over one armed episode of one run."""

    def __init__(self, params: OnsetParams | None = None) -> None:
        self.p = params or OnsetParams()
        self._reset()

    def _reset(self) -> None:
        self.armed_step: int | None = None
        self.samples = 0  # geometry samples seen while armed
        self.fired = False
        self.struct: dict[str, ShiftDetector] = {}
        self.corr: dict[str, TurnDetector] = {}
        self.norm: _NormTurn | None = None
        self.agree_at: dict[str, int] = {}  # corroborating signal -> sample index it last agreed

    def arm(self, step: int) -> None:
        """Start an episode (the run has just memorized): fresh references."""
        self._reset()
        self.armed_step = step

    def disarm(self) -> None:
        """End the episode (the run lost its fit, or diverged)."""
        self._reset()

    @property
    def armed(self) -> bool:
        return self.armed_step is not None

    def _shift(self, effect: float) -> ShiftDetector:
        p = self.p
        return ShiftDetector(effect=effect, warmup=p.warmup, k=p.cusum_k, h=p.cusum_h,
                             hold=p.hold, sd_floor=p.sd_floor_frac * effect)

    def update(self, step: int, vals: dict[str, float]) -> dict[str, Any] | None:
        """Feed one geometry record; return the onset evidence on the sample it fires."""
        if not self.armed or self.fired:
            return None
        p = self.p
        self.samples += 1
        i = self.samples
        struct_active: list[str] = []
        for name, v in vals.items():
            metric = name.rpartition(".")[2]
            if metric in STRUCTURE_METRICS:
                null = vals.get(name + "_null")
                if null is None:
                    continue
                det = self.struct.get(name)
                if det is None:
                    det = self.struct[name] = self._shift(p.struct_effect)
                det.update(_log(v) - _log(null))
                if det.active:
                    struct_active.append(name)
                if det.cusum.alarm and det.excess() >= p.corr_effect:
                    self.agree_at[name] = i
            elif metric in CORROBORATING:
                # entropy falls as structure forms: watch log(1 - H) rising instead
                x = _log(1.0 - v) if metric == "fourier_entropy" else _log(v)
                turn = self.corr.get(name)
                if turn is None:
                    turn = self.corr[name] = TurnDetector(
                        effect=p.corr_effect, warmup=p.warmup, z=p.corr_z, hold=p.hold,
                        sd_floor=p.sd_floor_frac * p.corr_effect)
                turn.update(x)
                if turn.active:
                    self.agree_at[name] = i
        wn = vals.get(WEIGHT_NORM)
        if wn is not None:
            if self.norm is None:
                self.norm = _NormTurn(p)
            if self.norm.update(_log(wn)):
                self.agree_at[WEIGHT_NORM] = i
        if not struct_active:
            return None
        # Agreement must come from another statistic: the other structure metric
        # (IPR vs top-1 concentration) or a corroborating one, never the same
        # metric of another matrix (embed and neurons may be the same weights).
        metrics = {n.rpartition(".")[2] for n in struct_active}
        agreeing = sorted(k for k, at in self.agree_at.items()
                          if i - at < p.coincidence and not (
                              k in self.struct and k.rpartition(".")[2] in metrics
                              and len(metrics) == 1))
        if not agreeing:
            return None
        self.fired = True
        return self._evidence(step, struct_active, agreeing)

    def _evidence(self, step: int, struct: list[str], agree: list[str]) -> dict[str, Any]:
        signals: dict[str, Any] = {}
        for name in struct:
            ev = self.struct[name].evidence()
            ev["ratio_vs_memorization"] = math.exp(ev["excess"])
            signals[name] = ev
        for name in agree:
            if name in signals:
                continue
            if name == WEIGHT_NORM and self.norm is not None:
                signals[name] = self.norm.evidence()
            elif name in self.struct:
                ev = self.struct[name].evidence()
                ev["ratio_vs_memorization"] = math.exp(ev["excess"])
                signals[name] = ev
            else:
                ev = self.corr[name].evidence()
                ev["ratio_vs_extreme"] = math.exp(ev["move_from_extreme"])
                signals[name] = ev
        return {"structure": struct, "corroborating": agree, "signals": signals,
                "armed_step": self.armed_step, "samples_since_armed": self.samples,
                "warmup_samples": self.p.warmup, "hold": self.p.hold,
                "coincidence": self.p.coincidence}

    def watching(self) -> list[str]:
        """Structure signals currently tracked (empty: this run cannot get an onset)."""
        return sorted(self.struct)
