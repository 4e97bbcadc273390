"""The shared vocabulary: names every part must spell the same way.

Metric names are the keys of a ``scalars`` record's ``vals``. The training
loop reports the four top-level ones; the probe reports per-matrix metrics
as ``"<matrix>.<metric>"`` (``"embed.fourier_ipr"``), spectra as
``"<matrix>.sv"`` / ``"<matrix>.fourier"`` and points as
``"<matrix>.constellation"``. A ``*_null`` metric (``"embed.fourier_ipr_null"``)
is the same statistic on a row-permuted copy: the chance level.

Nothing here imports anything but the standard library (the default endpoints
come from :mod:`.security`): every part (probe, daemon, client, TUI, examples)
may import it.
"""

from __future__ import annotations

from grokwatch.wire.security import default_endpoint

# ---------------------------------------------------------------- metrics

# Reported by the training loop.
TRAIN_ACC = "train_acc"
VAL_ACC = "val_acc"
TRAIN_LOSS = "train_loss"
VAL_LOSS = "val_loss"
ACC_METRICS = (TRAIN_ACC, VAL_ACC)
LOSS_METRICS = (TRAIN_LOSS, VAL_LOSS)
TRAINING_METRICS = (TRAIN_LOSS, VAL_LOSS, TRAIN_ACC, VAL_ACC)

# Whole-model norms (the probe, when given the model).
WEIGHT_NORM = "weight_norm"
GRAD_NORM = "grad_norm"
NORM_METRICS = (WEIGHT_NORM, GRAD_NORM)

# Per matrix, spectral (singular values).
ERANK = "erank"
PR = "pr"
STABLE_RANK = "stable_rank"
SPECTRAL_METRICS = (ERANK, PR, STABLE_RANK)

# Per matrix, Fourier over Z_p (only with a modulus).
FOURIER_CONC = "fourier_conc"
FOURIER_IPR = "fourier_ipr"
FOURIER_ENTROPY = "fourier_entropy"
FOURIER_GINI = "fourier_gini"
FOURIER_TOPK = "fourier_topk"
FOURIER_KEY = "fourier_key"
FOURIER_METRICS = (FOURIER_ENTROPY, FOURIER_GINI, FOURIER_TOPK, FOURIER_KEY,
                   FOURIER_CONC, FOURIER_IPR)

NULL_SUFFIX = "_null"  # metric + NULL_SUFFIX: the same statistic at chance
FOURIER_CONC_NULL = FOURIER_CONC + NULL_SUFFIX
FOURIER_IPR_NULL = FOURIER_IPR + NULL_SUFFIX

# Class geometry of a fixed labelled batch (Probe.observe(features=..., labels=...)): under
# the matrix name FEATURES, and READOUT_* through the model's readout when it is found.
FEATURES = "features"
CLASS_ETA2 = "class_eta2"
CLASS_ETA2_NULL = CLASS_ETA2 + "_null"
CLASS_SEP = "class_sep"
CLASSES = "classes"
READOUT_SEP = "readout_sep"
READOUT_ETA2 = "readout_eta2"
READOUT_ALIGN = "readout_align"
GEOMETRY_METRICS = (CLASS_ETA2, CLASS_ETA2_NULL, CLASS_SEP, CLASSES, READOUT_SEP, READOUT_ETA2,
                    READOUT_ALIGN)

# Per-matrix spectra and points (record names "<matrix>.<suffix>").
SV = "sv"
FOURIER = "fourier"
CONSTELLATION = "constellation"

SEP = "."  # between a matrix name and its metric


def metric(matrix: str, name: str) -> str:
    """The full name of a per-matrix metric: ``metric("embed", FOURIER_IPR)``."""
    return f"{matrix}{SEP}{name}"


def base(name: str) -> str:
    """The metric part of a full name: ``base("embed.fourier_ipr") == "fourier_ipr"``."""
    return name.rpartition(SEP)[2]


def null_of(name: str) -> str:
    """The chance-level companion of a metric name."""
    return name + NULL_SUFFIX


# ---------------------------------------------------------------- phases and alerts

STARTING = "starting"
COMPREHENSION = "comprehension"
MEMORIZATION = "memorization"
GROKKING = "grokking"
CONFUSION = "confusion"
DIVERGED = "diverged"
PHASES = (STARTING, COMPREHENSION, MEMORIZATION, GROKKING, CONFUSION, DIVERGED)

# Alert kinds (an alert's ``kind``); "diverged" is both a phase and an alert kind.
MEMORIZED = "memorized"
ONSET = "onset"
GENERALIZED = "generalized"
STALLED = "stalled"
LOST = "lost"
DROPPED = "dropped"
STORE_ERROR = "store_error"  # the daemon cannot write its store (disk full): run "daemon"
ALERT_KINDS = (MEMORIZED, ONSET, GENERALIZED, DIVERGED, STALLED, LOST, DROPPED, STORE_ERROR)
FIRING = "firing"
RESOLVED = "resolved"
STATUSES = (FIRING, RESOLVED)

# ---------------------------------------------------------------- endpoints and environment


INGEST_PORT, PUB_PORT, API_PORT = 7710, 7711, 7712
LOCALHOST = "127.0.0.1"


def tcp(host: str, port: int) -> str:
    """A ZeroMQ tcp endpoint."""
    return f"tcp://{host}:{port}"


# The defaults are ipc sockets in a private per-user directory (other users cannot
# connect: see grokwatch.wire.security); tcp:// needs CURVE keys or --insecure-tcp.
DEFAULT_INGEST = default_endpoint("ingest")  # probes -> daemon
DEFAULT_PUB = default_endpoint("pub")  # daemon -> clients (updates)
DEFAULT_API = default_endpoint("api")  # clients <-> daemon (requests)

ENDPOINT_ENV = "GROKWATCH_ENDPOINT"  # the probe's (and the daemon's) ingest endpoint
API_ENV = "GROKWATCH_API"  # the clients' API endpoint
PUB_ENV = "GROKWATCH_PUB"  # the clients' PUB endpoint
SIGTERM_ENV = "GROKWATCH_SIGTERM"  # "0": the probe leaves SIGTERM alone
# Set by `grokwatch sweep` for each trial: the trial's run name (the probe uses it instead of
# the name the program gives) and a JSON map of labels (sweep, axis values) merged into config.
SWEEP_RUN_ENV = "GROKWATCH_SWEEP_RUN"
SWEEP_LABELS_ENV = "GROKWATCH_SWEEP_LABELS"
