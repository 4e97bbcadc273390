"""Learning-phase classification after Liu et al. 2022 ("Towards understanding grokking").

Liu et al. name four phases by how train and validation accuracy evolve:
*comprehension* (both rise together), *memorization* (train fits, validation
stays low), *grokking* (validation rises long after train fitted) and
*confusion* (neither). grokwatch adds ``starting`` (too early to tell) and
``diverged`` (NaN/Inf or a loss spike), and calls a memorized run
``grokking`` as soon as ``onset`` has fired, before validation moves.

:func:`classify` is a pure function of a few facts the detector keeps, so the
live daemon and ``grokwatch replay`` agree by construction.
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
# Validation reaching VAL_HALF within this factor of the fitting step means
# train and validation rose together (comprehension), not long after (grokking).
TOGETHER_FACTOR = 2.0
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


def classify(f: PhaseFacts) -> str:
    """The current phase of one run (one of :data:`PHASES`)."""
    if f.diverged:
        return DIVERGED
    if f.memorized:
        if f.val_half_step is not None:
            start = f.first_step or 0
            t_mem = f.mem_step if f.mem_step is not None else f.val_half_step
            together = (f.val_half_step - start) <= TOGETHER_FACTOR * max(t_mem - start, 1)
            return COMPREHENSION if together else GROKKING
        if f.onset_step is not None:
            return GROKKING
        return MEMORIZATION
    if f.val_half_step is not None and f.val_acc is not None and f.val_acc >= VAL_HALF:
        return COMPREHENSION  # validation keeps pace with a train set not yet fitted
    if (f.train_samples >= CONFUSION_MIN_SAMPLES
            and f.samples_since_progress >= CONFUSION_STALE_FRAC * f.train_samples):
        return CONFUSION
    return STARTING
