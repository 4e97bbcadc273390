"""Learning-phase classification after Liu et al. 2022 ("Towards understanding grokking").

Liu et al. name four phases by how train and validation accuracy evolve:
*comprehension* (both rise together), *memorization* (train fits, validation
stays low), *grokking* (validation rises long after train fitted) and
*confusion* (neither). grokwatch adds ``starting`` (too early to tell) and
``diverged`` (NaN/Inf or a loss spike), and calls a memorized run
``grokking`` as soon as ``onset`` has fired, before validation moves.

The rule for a run that fits its train set (first fitted at ``t_fit``; steps
counted from the run's first step), with :data:`TOGETHER_FACTOR` = 2 and
:data:`GEN_FACTOR` = 4:

* validation past :data:`VAL_HALF` (0.5) only after ``2 t_fit``: **grokking**;
* otherwise, validation at :data:`VAL_GEN` (0.9, held as for the `generalized`
  alert) by ``4 t_fit``: **comprehension**; later than that: **grokking**;
* past 0.5 but not yet at 0.9: **grokking** if onset fired or the run is already
  past ``4 t_fit`` (generalization lags the fit), else **comprehension** (it
  may still turn into grokking);
* below 0.5: **grokking** once onset fired, else **memorization**.

So a slow real-data run (Omnigrok's large-init MNIST; issue 12's digits run: val
acc 0.41 at the fit, 0.9 only at 8x the fitting step) is grokking, as Omnigrok
calls it, while a run whose validation reaches 0.5 with the fit and 0.9 within
four times the fitting time is comprehension (the presets: 0.9 at 1.5-2.5x).

:func:`classify` is a pure function of :class:`PhaseFacts`, which keep
themselves up to date from the run's accuracies (:meth:`PhaseFacts.val`), so
the live daemon and ``grokwatch replay`` agree by construction.
"""

from __future__ import annotations

from dataclasses import dataclass

from grokwatch.wire.names import (
    COMPREHENSION,
    CONFUSION,
    DIVERGED,
    GROKKING,
    MEMORIZATION,
    PHASES,
    STARTING,
)

__all__ = ["PHASES", "PhaseFacts", "classify"]

VAL_HALF = 0.5  # val accuracy that counts as "validation has moved"
VAL_GEN = 0.9  # val accuracy that counts as generalized (the `generalized` alert's level)
# Validation reaching VAL_HALF within this factor of the fitting step means
# train and validation rose together (comprehension), not long after (grokking).
TOGETHER_FACTOR = 2.0
GEN_FACTOR = 4.0  # validation at VAL_GEN within this factor of the fitting step: together
CONFUSION_MIN_SAMPLES = 20  # train samples before "never fits" can be said
CONFUSION_STALE_FRAC = 0.5  # no train-acc progress in this share of the run so far


@dataclass
class PhaseFacts:
    """What the classifier needs; all fields are plain values the detector keeps."""

    diverged: bool = False
    memorized: bool = False  # train accuracy held >= the fit threshold, right now
    mem_step: int | None = None  # first step of the current memorized episode
    onset_step: int | None = None
    first_step: int | None = None  # first train sample's step
    val_half_step: int | None = None  # first step val acc >= VAL_HALF (this episode or before)
    val_acc: float | None = None  # latest
    train_samples: int = 0
    samples_since_progress: int = 0  # train samples since train acc last improved
    gen_step: int | None = None  # first step val acc >= VAL_GEN (held, per the detector)
    last_step: int = 0  # latest step seen

    def val(self, step: int, vacc: float) -> None:
        """Record a validation accuracy at ``step``."""
        self.val_acc = vacc
        if vacc >= VAL_HALF and self.val_half_step is None:
            self.val_half_step = step
        self.last_step = max(self.last_step, step)


def classify(f: PhaseFacts) -> str:
    """The current phase of one run (one of :data:`PHASES`)."""
    if f.diverged:
        return DIVERGED
    if f.memorized:
        start = f.first_step or 0
        t_fit = f.mem_step if f.mem_step is not None else (f.val_half_step or f.last_step)
        fit = max(t_fit - start, 1)
        if f.val_half_step is not None and f.val_half_step - start > TOGETHER_FACTOR * fit:
            return GROKKING
        if f.gen_step is not None:
            return COMPREHENSION if f.gen_step - start <= GEN_FACTOR * fit else GROKKING
        if f.val_half_step is not None:
            late = f.onset_step is not None or f.last_step - start > GEN_FACTOR * fit
            return GROKKING if late else COMPREHENSION
        if f.onset_step is not None:
            return GROKKING
        return MEMORIZATION
    if f.val_half_step is not None and f.val_acc is not None and f.val_acc >= VAL_HALF:
        return COMPREHENSION  # validation keeps pace with a train set not yet fitted
    if (f.train_samples >= CONFUSION_MIN_SAMPLES
            and f.samples_since_progress >= CONFUSION_STALE_FRAC * f.train_samples):
        return CONFUSION
    return STARTING
