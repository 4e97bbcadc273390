"""Onset: has a memorized network started to generalize? Decided here and only here.

:class:`Onset` owns one run's onset: it is armed when the run has memorized
(train accuracy held >= 0.99; the geometry seen while the fit was being
confirmed is replayed so references start at the fit), vetoed once
validation accuracy reaches 0.5 (an onset then would predict the past), and
fires at most once per armed episode. Validation accuracy never triggers.
:class:`OnsetFusion` holds the statistics; any channel fires, and the
alert's evidence says which (``evidence``: ``held_out_margin``,
``class_geometry`` or ``token_structure``):

* **held-out margin** (any classifier that logs ``val_loss`` and hands the probe
  ``features``/``labels`` of a fixed held-out batch): ``P.readout_align`` (the
  batch's mean standardized true-class logit, chance 0) has risen
  ``margin_effect`` (0.3 of a logit sd) from its lowest since memorization,
  **and** ``val_loss`` has fallen ``vloss_effect`` (5 %) below its highest since
  memorization, both significant against warm-up noise and held. Either alone
  is common in runs that never generalize: without weight decay the alignment
  creeps up while growing logits push the validation loss up; with weight
  decay but no signal (shuffled labels, too little data) shrinking logits
  pull the validation loss down while nothing points at the true class. The
  held-out argmax (validation accuracy) moves much later: the margin of the
  true class first has to overtake the memorized answers;
* **class geometry** (any model, any task with labels): ``P.readout_sep``, the
  ANOVA trace F ratio of a fixed (held-out) batch's logits by class (chance
  level 1 exactly, see :mod:`grokwatch.probe.geometry`), has risen
  ``geo_effect`` (x1.2) from its lowest value since memorization, held for
  ``hold`` samples, **and** ``P.readout_align`` has risen ``align_effect``
  (0.05) from its own lowest: the readout must point held-out inputs at their
  own classes, not merely cluster them. Without a readout (features of a hidden
  layer) ``P.class_sep`` of the features as given is watched, ungated;
* **token structure** (a modulus and token matrices): ``log(P.fourier_ipr /
  null)`` (or ``fourier_conc``) risen x1.5 above memorization (prewhitened
  CUSUM, held), with another statistic agreeing within ``coincidence``
  samples: the other per-neuron statistic, the weight norm turning down, or an
  aggregate-spectrum statistic turning.

Effective rank is never used: without weight decay it collapses in runs that
never generalize. Why these statistics, the measurements behind the
thresholds and where they fail: docs/onset-research.md.
"""

from __future__ import annotations

import math
from collections import deque
from dataclasses import dataclass, fields, replace
from typing import Any

from grokwatch.daemon.changepoint import ShiftDetector, TurnDetector, WindowSlope
from grokwatch.wire.names import (
    CLASS_SEP,
    FOURIER_CONC,
    FOURIER_ENTROPY,
    FOURIER_GINI,
    FOURIER_IPR,
    FOURIER_TOPK,
    READOUT_ALIGN,
    READOUT_SEP,
    VAL_LOSS,
    WEIGHT_NORM,
)

STRUCTURE_METRICS = (FOURIER_IPR, FOURIER_CONC)
# Class geometry of a fixed (held-out) batch, each a ratio to its exact chance level (about
# 1): through the model's readout when the probe found it, else of the features as given.
GEOMETRY_METRICS = (READOUT_SEP, CLASS_SEP)
# Standardized true-class logit of the same batch (chance 0): the readout must point the
# batch at its own classes, not merely cluster it (a label-shuffled run's readout clusters
# held-out digits by class as weight decay shrinks it, pointing them nowhere).
ALIGN_METRIC = READOUT_ALIGN
# Aggregate-spectrum statistics that agree by turning towards more structure (entropy
# is watched as log(1 - H) so that every one of them rises).
CORROBORATING = (FOURIER_ENTROPY, FOURIER_TOPK, FOURIER_GINI)


@dataclass
class OnsetParams:
    """Tunables of the fusion (all relative; defaults calibrated on the workload zoo)."""

    # Samples after arming that form each reference: few, because a quadratic MLP memorizes
    # in 10 steps and generalizes within ~40 samples; the noise floors keep 2 samples safe.
    warmup: int = 2
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
    geo_effect: float = math.log(1.2)  # rise of log(class separation) above memorization
    align_effect: float = 0.05  # rise of readout_align from its lowest since memorization
    margin_effect: float = 0.3  # rise of readout_align for the held-out margin channel
    vloss_effect: float = -math.log(0.95)  # fall of log(val_loss) from its highest since armed

    def scaled(self, f: float) -> OnsetParams:
        """These parameters with every ``*_effect`` threshold multiplied by ``f`` (margins)."""
        return replace(self, **{k.name: getattr(self, k.name) * f for k in fields(self)
                                if k.name.endswith("_effect")})


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
        self.geo: dict[str, TurnDetector] = {}
        self.align: dict[str, TurnDetector] = {}
        self.corr: dict[str, TurnDetector] = {}
        self.margin: dict[str, TurnDetector] = {}
        self.vloss: TurnDetector | None = None
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

    def val_loss(self, v: float) -> None:
        """Feed one validation loss (armed only): the held-out margin channel's corroboration."""
        if not self.armed or self.fired or not (v > 0.0 and math.isfinite(v)):
            return
        if self.vloss is None:
            self.vloss = self._turn(self.p.vloss_effect, direction=-1)
        self.vloss.update(math.log(v))

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
        geo_active: list[str] = []
        self._update_align(vals)
        for name, v in vals.items():
            metric = name.rpartition(".")[2]
            if metric in GEOMETRY_METRICS:
                if metric == CLASS_SEP and name.rpartition(".")[0] + "." + READOUT_SEP in vals:
                    continue  # the readout's view is the one watched
                det = self.geo.get(name)
                if det is None:
                    # From its lowest value since memorization: a memorizing network's
                    # held-out separation often dips after the fit before structure forms.
                    det = self.geo[name] = self._turn(p.geo_effect)
                det.update(_log(v))
                if det.active and self._aligned(name, metric, vals):
                    geo_active.append(name)
            elif metric in STRUCTURE_METRICS:
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
                x = _log(1.0 - v) if metric == FOURIER_ENTROPY else _log(v)
                turn = self.corr.get(name)
                if turn is None:
                    turn = self.corr[name] = self._turn(p.corr_effect)
                turn.update(x)
                if turn.active:
                    self.agree_at[name] = i
        wn = vals.get(WEIGHT_NORM)
        if wn is not None:
            if self.norm is None:
                self.norm = _NormTurn(p)
            if self.norm.update(_log(wn)):
                self.agree_at[WEIGHT_NORM] = i
        if geo_active:
            self.fired = True
            ev = self._evidence(step, geo_active, [])
            ev["evidence"] = "class_geometry"
            return ev
        margin_active = [n for n, t in self.margin.items() if t.active]
        if margin_active and self.vloss is not None and self.vloss.active:
            self.fired = True
            ev = self._evidence(step, margin_active, [VAL_LOSS])
            ev["evidence"] = "held_out_margin"
            return ev
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
        ev = self._evidence(step, struct_active, agreeing)
        ev["evidence"] = "token_structure"
        return ev

    def _aligned(self, name: str, metric: str, vals: dict[str, float]) -> bool:
        """The readout gate of a class-geometry signal (none for features without a readout)."""
        if metric != READOUT_SEP:
            return True
        aname = name.rpartition(".")[0] + "." + ALIGN_METRIC
        turn = self.align.get(aname)
        return turn is not None and turn.active

    def _turn(self, effect: float, direction: int = 1) -> TurnDetector:
        """A turn detector for one statistic, its noise floor a share of the effect it watches."""
        p = self.p
        return TurnDetector(effect=effect, direction=direction, warmup=p.warmup, z=p.corr_z,
                            hold=p.hold, sd_floor=p.sd_floor_frac * effect)

    def _update_align(self, vals: dict[str, float]) -> None:
        p = self.p
        for name, v in vals.items():
            if name.rpartition(".")[2] == ALIGN_METRIC:
                turn = self.align.get(name)
                if turn is None:
                    turn = self.align[name] = self._turn(p.align_effect)
                    self.margin[name] = self._turn(p.margin_effect)
                turn.update(v)
                self.margin[name].update(v)

    def _evidence(self, step: int, struct: list[str], agree: list[str]) -> dict[str, Any]:
        signals: dict[str, Any] = {}
        for name in struct:
            if name in self.margin:
                ev = self.margin[name].evidence()
                ev["rise_from_lowest"] = ev["move_from_extreme"]
            elif name in self.geo:
                ev = self.geo[name].evidence()
                ev["ratio_vs_memorization"] = math.exp(ev["move_from_extreme"])
                aname = name.rpartition(".")[0] + "." + ALIGN_METRIC
                if aname in self.align:
                    ev[READOUT_ALIGN] = self.align[aname].evidence()
            else:
                ev = self.struct[name].evidence()
                ev["ratio_vs_memorization"] = math.exp(ev["excess"])
            signals[name] = ev
        for name in agree:
            if name in signals:
                continue
            if name == WEIGHT_NORM and self.norm is not None:
                signals[name] = self.norm.evidence()
            elif name == VAL_LOSS and self.vloss is not None:
                ev = self.vloss.evidence()
                ev["ratio_vs_highest"] = math.exp(-ev["move_from_extreme"])
                signals[name] = ev
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


VAL_MOVED = 0.5  # val accuracy at which validation "has moved": an onset now would be late
BACKLOG = 8  # geometry records kept while the fit is being confirmed
GEOMETRY_SUFFIXES = STRUCTURE_METRICS + CORROBORATING + GEOMETRY_METRICS + (ALIGN_METRIC,)


def is_geometry(vals: dict[str, float]) -> bool:
    """Whether a scalars record carries anything the onset statistics watch."""
    if WEIGHT_NORM in vals:
        return True
    return any(n.rpartition(".")[2] in GEOMETRY_SUFFIXES for n in vals)


class Onset:
    """Everything about one run's onset: arming, statistics, veto and the onset step.

    The run detector tells it what it sees: :meth:`fitting` when train accuracy
    first reaches the fit threshold (geometry from then on is kept, so the
    reference is the value *at* memorization, not after the confirmation hold),
    :meth:`memorized` when the fit is confirmed (arms an episode and replays the
    kept records: warm-up only, they cannot fire), :meth:`unfit` / :meth:`stop` when
    the fit is lost or the run diverged, :meth:`val_acc` for each validation
    accuracy (it never triggers: at :data:`VAL_MOVED` it vetoes the episode,
    since an onset then would predict the past), and :meth:`geometry` for each
    geometry record, which returns the onset evidence on the record that fires.
    At most one onset per armed episode; :attr:`step` is the latest onset step.
    """

    def __init__(self, params: OnsetParams | None = None) -> None:
        self.fusion = OnsetFusion(params)
        self.step: int | None = None
        self._fit_since: int | None = None
        self._backlog: deque[tuple[int, dict[str, float]]] = deque(maxlen=BACKLOG)
        self._val_moved = False

    @property
    def armed(self) -> bool:
        return self.fusion.armed

    @property
    def open(self) -> bool:
        """Armed and neither fired nor vetoed: an onset can still come."""
        return self.fusion.armed and not self.fusion.fired

    def fitting(self, step: int) -> None:
        """Train accuracy reached the fit threshold at ``step`` (start of a streak)."""
        if self._fit_since is None:
            self._fit_since = step
            self._backlog.clear()

    def unfitting(self) -> None:
        """The streak broke before it was confirmed."""
        self._fit_since = None

    def memorized(self, step: int, mem_step: int) -> None:
        """The fit since ``mem_step`` is confirmed at ``step``: arm a fresh episode."""
        self.fusion.arm(step)
        for s, vals in self._backlog:
            if s >= mem_step:
                self.fusion.update(s, vals)  # warm-up samples only: cannot fire yet
        self._backlog.clear()
        if self._val_moved:
            self.fusion.fired = True  # validation already moved: nothing left to predict

    def unfit(self) -> None:
        """The run lost its fit: the episode ends."""
        self.fusion.disarm()
        self._fit_since = None

    def stop(self) -> None:
        """The run diverged: no onset from now on."""
        self.fusion.disarm()
        self._fit_since = None

    def val_acc(self, vacc: float) -> None:
        """A validation accuracy: never a trigger; once it reaches VAL_MOVED, a veto."""
        if vacc >= VAL_MOVED:
            self._val_moved = True
            if self.fusion.armed:
                self.fusion.fired = True

    def val_loss(self, vloss: float) -> None:
        """A validation loss: never a trigger alone; it corroborates the held-out margin."""
        self.fusion.val_loss(vloss)

    def geometry(self, step: int, vals: dict[str, float]) -> dict[str, Any] | None:
        """Feed one geometry record; the evidence (with ``summary``) on the record that fires."""
        if self.fusion.armed:
            if self.fusion.fired:
                return None
            ev = self.fusion.update(step, vals)
            if ev is not None:
                self.step = step
                ev["summary"] = describe(ev)
            return ev
        if self._fit_since is not None:
            self._backlog.append((step, vals))
        return None


def describe(ev: dict[str, Any]) -> str:
    """One line naming the statistics that fired and agreed, with their ratios."""
    parts = []
    for name in ev["structure"]:
        s = ev["signals"][name]
        if "rise_from_lowest" in s:
            parts.append(f"{name} +{s['rise_from_lowest']:.2f} from its lowest (held-out margin)")
            continue
        kind = ("class geometry of held-out features"
                if name.rpartition(".")[2] in GEOMETRY_METRICS else "structure above its null")
        parts.append(f"{name} x{s['ratio_vs_memorization']:.2f} ({kind})")
    for name in ev["corroborating"]:
        s = ev["signals"][name]
        if name == WEIGHT_NORM:
            parts.append(f"weight_norm turning down (t={s['t']:.1f})")
        elif name == VAL_LOSS:
            parts.append(f"val_loss x{s['ratio_vs_highest']:.2f} of its highest")
        elif "ratio_vs_memorization" in s:
            if name not in ev["structure"]:
                parts.append(f"{name} x{s['ratio_vs_memorization']:.2f}")
        else:
            parts.append(f"{name} x{s['ratio_vs_extreme']:.2f}")
    return "vs memorization: " + "; ".join(parts)
