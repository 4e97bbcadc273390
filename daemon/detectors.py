"""All streaming detectors of one run, behind one small seam the daemon calls.

``RunDetector`` turns a run's scalars (and the daemon's clock) into alerts:

``memorized``    train_acc >= 0.99 for 3 consecutive train samples (one per
                 episode; resolved when train_acc stays < 0.9 for 3 samples)
``onset``        decided entirely in :mod:`grokwatch.daemon.onset` (statistics,
                 arming, veto, onset step); never triggered by val accuracy
``generalized``  val_acc >= 0.9 for 2 consecutive samples (once per run)
``diverged``     NaN/Inf in a loss or in the weight/gradient norm, or a
                 train-loss spike above 10x its starting level (once per run)
``stalled``      silent for ``STALL_FRACTION`` of ``lost_after`` seconds
``lost``         silent for ``lost_after`` seconds (both resolved on resume)
``dropped``      seq gaps or probe-reported drops (at most one per
                 ``DROP_COOLDOWN`` seconds of record time; counts accumulate)

Cost: a scalars record carrying none of the watched names returns after a
few dict look-ups; geometry records (one every ``every`` steps) do O(window)
pure-Python work. numpy is not even needed.
"""

from __future__ import annotations

import math
from typing import Any

from grokwatch.daemon.alert import Alert
from grokwatch.daemon.changepoint import Hold
from grokwatch.daemon.onset import WEIGHT_NORM, Onset, OnsetParams, is_geometry
from grokwatch.daemon.phases import PhaseFacts, classify
from grokwatch.wire.names import GRAD_NORM, STARTING, TRAIN_ACC, TRAIN_LOSS, VAL_ACC, VAL_LOSS

FIT_ACC = 0.99  # train accuracy that counts as fitted
UNFIT_ACC = 0.9  # hysteresis: the episode ends only below this
MEM_HOLD = 3  # consecutive train samples
GEN_ACC = 0.9  # val accuracy that counts as generalized ("grokked": Power et al. use ~0.99,
# Liu et al. and this project's bench read t_90; 0.9 fires well before the slow tail)
GEN_HOLD = 2
SPIKE_FACTOR = 10.0  # train loss above this many times its starting level = diverged
SPIKE_WARMUP = 5  # train-loss samples that define the starting level
STALL_FRACTION = 0.25  # stalled after this share of lost_after
DROP_COOLDOWN = 30.0  # seconds (record time) between two `dropped` alerts


def _is_loss(name: str) -> bool:
    return name.endswith("loss")


class RunDetector:
    """All streaming detectors of one run (pure Python, O(1)/O(window) per sample)."""

    def __init__(self, run: str, *, modulus: int | None = None, config: dict | None = None,
                 lost_after: float = 60.0, onset_params: OnsetParams | None = None) -> None:
        self.run = run
        self.modulus = modulus
        self.config = dict(config or {})
        self.lost_after = float(lost_after)
        self.phase = STARTING
        self.onset = Onset(onset_params)
        self.facts = PhaseFacts()
        self.mem_hold = Hold(on=MEM_HOLD, off=MEM_HOLD)
        self._mem_first: int | None = None  # first step of the current >= FIT_ACC streak
        self._gen_hits = 0
        self.generalized_step: int | None = None
        self._best_train = -math.inf
        self._loss_start: list[float] = []
        self._loss_level: float | None = None
        self._silence: set[str] = set()  # silence kinds firing now
        self.finished = False
        self._drops = [0, 0]  # gaps, dropped accumulated since the last alert
        self._drop_totals = [0, 0]
        self._last_drop_alert: float | None = None
        self.last_step = 0

    # ------------------------------------------------------------ helpers

    def _alert(self, kind: str, step: int, t: float, summary: str, evidence: dict[str, Any],
               status: str = "firing") -> Alert:
        return Alert(run=self.run, step=step, t=t, kind=kind, summary=summary, status=status,
                     evidence=evidence)

    @property
    def onset_step(self) -> int | None:
        """Step of the latest onset (decided by :class:`grokwatch.daemon.onset.Onset`)."""
        return self.onset.step

    def _update_phase(self) -> None:
        self.phase = classify(self.facts)

    # ------------------------------------------------------------ scalars

    def on_scalars(self, step: int, t: float, vals: dict[str, float]) -> list[Alert]:
        """Feed one scalars record; return the alerts it raises (often none)."""
        out: list[Alert] = []
        self.last_step = step
        if self.facts.diverged:
            return out
        # Non-finite first: a NaN loss is news even if nothing else is watched. One
        # C-level sum tells whether any value is non-finite (overflow to inf counts too,
        # and only then are names looked at).
        if not math.isfinite(sum(vals.values())):
            for name, v in vals.items():
                if not math.isfinite(v) and (_is_loss(name)
                                             or name in (WEIGHT_NORM, GRAD_NORM)):
                    return self._diverge(step, t, f"{name} is {v}", {
                        "signal": name, "value": str(v), "reason": "non-finite"})
        loss = vals.get(TRAIN_LOSS)
        if loss is not None:
            a = self._check_spike(step, t, loss)
            if a is not None:
                return [a]
        acc = vals.get(TRAIN_ACC)
        if acc is not None and math.isfinite(acc):
            out.extend(self._on_train_acc(step, t, acc, vals))
        vacc = vals.get(VAL_ACC)
        if vacc is not None and math.isfinite(vacc):
            out.extend(self._on_val_acc(step, t, vacc))
        vloss = vals.get(VAL_LOSS)
        if vloss is not None:
            self.onset.val_loss(vloss)
        if is_geometry(vals):
            ev = self.onset.geometry(step, vals)
            if ev is not None:
                out.append(self._fire_onset(step, t, ev))
        self.facts.last_step = max(self.facts.last_step, step)
        if acc is not None or vacc is not None or out:
            self._update_phase()
        return out

    def _check_spike(self, step: int, t: float, loss: float) -> Alert | None:
        if not math.isfinite(loss):
            return None
        if self._loss_level is None:
            self._loss_start.append(loss)
            if len(self._loss_start) >= SPIKE_WARMUP:
                self._loss_level = max(self._loss_start)
            return None
        if self._loss_level > 0 and loss > SPIKE_FACTOR * self._loss_level:
            [a] = self._diverge(step, t, f"train_loss {loss:.4g} > {SPIKE_FACTOR:g}x its "
                                f"starting level {self._loss_level:.4g}",
                                {"signal": TRAIN_LOSS, "value": loss, "reason": "spike",
                                 "start_level": self._loss_level, "factor": SPIKE_FACTOR})
            return a
        return None

    def _diverge(self, step: int, t: float, why: str, ev: dict[str, Any]) -> list[Alert]:
        self.facts.diverged = True
        self.onset.stop()
        self._update_phase()
        return [self._alert("diverged", step, t, f"{self.run} diverged at step {step}: {why}", ev)]

    def _on_train_acc(self, step: int, t: float, acc: float,
                      vals: dict[str, float]) -> list[Alert]:
        f = self.facts
        out: list[Alert] = []
        if f.first_step is None:
            f.first_step = step
        f.train_samples += 1
        if acc > self._best_train + 0.01:
            self._best_train = acc
            f.samples_since_progress = 0
        else:
            f.samples_since_progress += 1
        if acc >= FIT_ACC:
            if self._mem_first is None:
                self._mem_first = step
            self.onset.fitting(step)
            hit = True
        else:
            self._mem_first = None
            self.onset.unfitting()
            hit = False
        was = self.mem_hold.state
        # Hysteresis: once memorized, only a drop below UNFIT_ACC counts as a miss.
        state = self.mem_hold.update(hit or (was and acc >= UNFIT_ACC))
        if state and not was:
            f.memorized = True
            f.mem_step = self._mem_first if self._mem_first is not None else step
            self.onset.memorized(step, f.mem_step)
            vacc = vals.get(VAL_ACC, f.val_acc)
            out.append(self._alert(
                "memorized", step, t,
                f"{self.run} memorized: train_acc >= {FIT_ACC:g} since step {f.mem_step}"
                + (f", val_acc {vacc:.3f}" if vacc is not None else ""),
                {TRAIN_ACC: acc, "threshold": FIT_ACC, "held_samples": MEM_HOLD,
                 "since_step": f.mem_step, VAL_ACC: vacc}))
        elif was and not state:
            f.memorized = False
            self.onset.unfit()
            out.append(self._alert(
                "memorized", step, t,
                f"{self.run} lost its fit: train_acc {acc:.3f} < {UNFIT_ACC:g}",
                {TRAIN_ACC: acc, "threshold": UNFIT_ACC, "held_samples": MEM_HOLD,
                 "since_step": f.mem_step}, status="resolved"))
            f.mem_step = None
        return out

    def _on_val_acc(self, step: int, t: float, vacc: float) -> list[Alert]:
        f = self.facts
        f.val(step, vacc)
        self.onset.val_acc(vacc)
        if self.generalized_step is not None:
            return []
        self._gen_hits = self._gen_hits + 1 if vacc >= GEN_ACC else 0
        if self._gen_hits < GEN_HOLD:
            return []
        self.generalized_step = step
        f.gen_step = step
        lead = None if self.onset_step is None else step - self.onset_step
        summary = f"{self.run} generalized: val_acc {vacc:.3f} >= {GEN_ACC:g}"
        if lead is not None:
            summary += f" ({lead} steps after onset at {self.onset_step})"
        elif f.mem_step is not None:
            summary += " (no onset was predicted)"
        return [self._alert("generalized", step, t, summary, {
            VAL_ACC: vacc, "threshold": GEN_ACC, "held_samples": GEN_HOLD,
            "onset_step": self.onset_step, "memorized_step": f.mem_step,
            "steps_after_onset": lead, "onset_confirmed": lead is not None})]

    def _fire_onset(self, step: int, t: float, ev: dict[str, Any]) -> Alert:
        self.facts.onset_step = step
        ev[VAL_ACC] = self.facts.val_acc  # for the record only: it did not trigger
        summary = f"{self.run} onset at step {step}: {ev.pop('summary')}"
        if self.facts.val_acc is not None:
            summary += f"; val_acc still {self.facts.val_acc:.3f}"
        return self._alert("onset", step, t, summary, ev)

    # ------------------------------------------------------------ transport

    def on_drop(self, step: int, t: float, gaps: int, dropped: int) -> list[Alert]:
        """Seq gaps and/or probe-reported drops grew by these increments."""
        gaps, dropped = max(int(gaps), 0), max(int(dropped), 0)
        if gaps == 0 and dropped == 0:
            return []
        self._drops[0] += gaps
        self._drops[1] += dropped
        self._drop_totals[0] += gaps
        self._drop_totals[1] += dropped
        if self._last_drop_alert is not None and t - self._last_drop_alert < DROP_COOLDOWN:
            return []  # counted; reported by the next alert (or the clock tick) after the cooldown
        return self._drop_alert(step, t)

    def _drop_alert(self, step: int, t: float) -> list[Alert]:
        g, d = self._drops
        self._drops = [0, 0]
        self._last_drop_alert = t
        return [self._alert(
            "dropped", step, t,
            f"{self.run} lost records: {g} seq gap(s), {d} dropped by the probe",
            {"gaps": g, "dropped": d, "total_gaps": self._drop_totals[0],
             "total_dropped": self._drop_totals[1], "cooldown_s": DROP_COOLDOWN})]

    def on_silence(self, now: float, last_heard: float) -> list[Alert]:
        """The daemon's clock tick: raise ``stalled`` / ``lost`` once each while silent.

        It also reports drops held back by the cooldown once the cooldown has passed.
        """
        out: list[Alert] = []
        if (self._drops[0] or self._drops[1]) and self._last_drop_alert is not None \
                and now - self._last_drop_alert >= DROP_COOLDOWN:
            out += self._drop_alert(self.last_step, now)
        if self.finished:
            return out
        silent = now - last_heard
        stall_after = STALL_FRACTION * self.lost_after
        for kind, limit in (("stalled", stall_after), ("lost", self.lost_after)):
            if silent >= limit and kind not in self._silence:
                self._silence.add(kind)
                out.append(self._alert(
                    kind, self.last_step, now,
                    f"{self.run} {kind}: no message for {silent:.0f} s (limit {limit:g} s)",
                    {"silent_s": silent, "threshold_s": limit, "last_heard": last_heard,
                     "lost_after_s": self.lost_after}))
        return out

    def on_resume(self, step: int, t: float) -> list[Alert]:
        """A message arrived after silence alerts fired: resolve them."""
        out = [self._alert(kind, step, t, f"{self.run} is back: heard at step {step}",
                           {"resumed_step": step}, status="resolved")
               for kind in ("stalled", "lost") if kind in self._silence]
        self._silence.clear()
        return out

    def on_bye(self, step: int, t: float) -> list[Alert]:
        """The run ended cleanly: no silence alerts from now on."""
        out = self.on_resume(step, t)
        self.finished = True
        return out
