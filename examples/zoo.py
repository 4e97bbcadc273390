"""The detection zoo: every family onset detection is measured on, trained the way users do.

One loop for all families, using only the public probe API, exactly as the
held-out evaluation does::

    probe = Probe(run, endpoint=..., config=..., modulus=p or None, every=10)
    probe.log(step, train_loss=..., train_acc=..., val_loss=..., val_acc=...)   # every 10 steps
    probe.observe(step, model=model, embed=E, neurons=N, features=H, labels=y)  # token tasks
    probe.observe(step, model=model, layer1=W1, features=H, labels=y)           # digits

``features``/``labels`` are the model's last hidden layer on a fixed held-out
batch of at most 256 inputs (:data:`PROBE_BATCH`).

Families (:data:`FAMILIES`): one-hot and quadratic MLPs on a +/- b mod p
(``cyclic``), a 1-layer transformer on a + b mod p trained with mini-batches
(``transformer``), a * b mod p (``mul``), a^2 + b^2 mod p (``sq_add``),
composition in a non-abelian group, dihedral D_n or S4 (``group``), and
Omnigrok-style large-initialization grokking on scikit-learn's digits
(``digits``). Each has controls that memorize but never generalize (weight
decay 0, too little data): see ``bench/detection.py``.
"""

from __future__ import annotations

import contextlib
import time
from collections.abc import Callable
from dataclasses import asdict, dataclass
from typing import Any

import torch

from grokwatch.examples.models import DigitsMLP, build_model
from grokwatch.examples.tasks import OPS, make_digits, make_task
from grokwatch.wire.names import TRAIN_ACC, TRAIN_LOSS, VAL_ACC, VAL_LOSS

PROBE_BATCH = 256  # held-out inputs whose features the probe measures
FIT_ACC = 0.99


@dataclass
class ZooConfig:
    """One run of the zoo (plain values; sent as the run's config)."""

    model: str = "mlp"  # mlp | quadratic | transformer | digits
    op: str = "add"  # add, sub, mul, sq_add (mod p) or a group (D<n>, S4); unused for digits
    modulus: int = 97  # tokens (the group's order for a group)
    frac: float = 0.5  # share of the pairs used for training
    n_train: int = 300  # digits: training images
    width: int | None = None
    init_scale: float = 8.0  # digits: weight multiplier at init
    lr: float = 1e-3
    weight_decay: float = 1.0
    beta2: float = 0.999
    batch: int | None = None  # None: full batch
    steps: int = 3000
    seed: int = 0
    log_every: int = 10
    observe_every: int = 10
    until_val: float | None = 0.95  # stop extra_steps after val acc first reaches this
    extra_steps: int = 40
    shuffle_labels: bool = False  # control: train on permuted labels (memorize, never generalize)

    @property
    def tokens(self) -> bool:
        return self.model != "digits"

    @property
    def probe_modulus(self) -> int | None:
        """What the run tells the probe: p for arithmetic mod p, None for groups and digits."""
        return self.modulus if self.tokens and self.op in OPS else None


def _loss_fn(kind: str, classes: int) -> Callable[[torch.Tensor, torch.Tensor], torch.Tensor]:
    if kind == "mse":
        return lambda out, y: torch.nn.functional.mse_loss(
            out, torch.nn.functional.one_hot(y, classes).to(out.dtype))
    return torch.nn.functional.cross_entropy


def _acc(out: torch.Tensor, y: torch.Tensor) -> float:
    return float((out.argmax(dim=1) == y).float().mean())


class _Data:
    """Train/validation inputs of either kind behind one call: ``model(*inputs)``."""

    def __init__(self, cfg: ZooConfig) -> None:
        if cfg.tokens:
            tr, va = make_task(cfg.op, cfg.modulus, cfg.frac, cfg.seed)
            self.train, self.val = (tr.a, tr.b), (va.a, va.b)
            self.ytr, self.yva = tr.y, va.y
            self.classes = cfg.modulus
        else:
            tr, va = make_digits(cfg.n_train, cfg.seed)
            self.train, self.val = (tr.x,), (va.x,)
            self.ytr, self.yva = tr.y, va.y
            self.classes = 10
        if cfg.shuffle_labels:
            g = torch.Generator().manual_seed(cfg.seed + 7)
            self.ytr = self.ytr[torch.randperm(len(self.ytr), generator=g)]
        k = min(PROBE_BATCH, len(self.yva))
        self.probe_in = tuple(x[:k] for x in self.val)  # the validation split is shuffled
        self.probe_y = self.yva[:k]

    def batch(self, idx: torch.Tensor | None) -> tuple[tuple[torch.Tensor, ...], torch.Tensor]:
        if idx is None:
            return self.train, self.ytr
        return tuple(x[idx] for x in self.train), self.ytr[idx]


def build(cfg: ZooConfig) -> torch.nn.Module:
    """The run's model, seeded."""
    torch.manual_seed(cfg.seed)
    if cfg.model == "digits":
        return DigitsMLP(64, 10, cfg.width or 200, cfg.init_scale)
    return build_model(cfg.model, cfg.modulus, cfg.width)


def observe_kwargs(model: torch.nn.Module, cfg: ZooConfig, data: _Data) -> dict[str, Any]:
    """The matrices a user hands ``observe``: token matrices (or the first layer), features."""
    with torch.no_grad():
        h = model.features(*data.probe_in)
    if cfg.tokens:
        return {"embed": model.embed_matrix().detach(), "neurons": model.neuron_matrix().detach(),
                "features": h, "labels": data.probe_y}
    return {"layer1": model.fc1.weight.detach(), "features": h, "labels": data.probe_y}


def run_zoo(cfg: ZooConfig, probe: Any, *, threads: int = 1) -> dict[str, Any]:
    """Train one zoo run, reporting to ``probe`` (a ``Probe`` or anything with its API).

    Returns milestones (``t_mem``, ``t_50``, ``t_90``: first logged step with train
    acc >= 0.99, val acc >= 0.5, >= 0.9), final accuracies and the wall time.
    """
    torch.set_num_threads(threads)
    data = _Data(cfg)
    model = build(cfg)
    loss_fn = _loss_fn(model.loss, data.classes)
    opt = torch.optim.AdamW(model.parameters(), lr=cfg.lr, weight_decay=cfg.weight_decay,
                            betas=(0.9, cfg.beta2))
    gen = torch.Generator().manual_seed(cfg.seed + 1)
    n = len(data.ytr)
    perm, pos = None, n
    hist: list[dict[str, float]] = []
    stop_at = None
    due = getattr(probe, "due", None)
    t0 = time.perf_counter()
    for step in range(cfg.steps + 1):
        if step % cfg.log_every == 0 or step == cfg.steps:
            with torch.no_grad():
                out = model(*data.train)
                vout = model(*data.val)
                row = {TRAIN_LOSS: float(loss_fn(out, data.ytr)),
                       TRAIN_ACC: _acc(out, data.ytr),
                       VAL_LOSS: float(loss_fn(vout, data.yva)), VAL_ACC: _acc(vout, data.yva)}
            probe.log(step, **row)
            hist.append({"step": step, **row})
            if stop_at is None and cfg.until_val is not None and row[VAL_ACC] >= cfg.until_val:
                stop_at = step + cfg.extra_steps
        if due is None or due(step):
            probe.observe(step, model=model, **observe_kwargs(model, cfg, data))
        if step == cfg.steps or (stop_at is not None and step >= stop_at):
            break
        idx = None
        if cfg.batch is not None and cfg.batch < n:
            if pos + cfg.batch > n:
                perm, pos = torch.randperm(n, generator=gen), 0
            idx = perm[pos:pos + cfg.batch]
            pos += cfg.batch
        xs, ys = data.batch(idx)
        opt.zero_grad(set_to_none=True)
        loss_fn(model(*xs), ys).backward()
        opt.step()
    seconds = time.perf_counter() - t0

    def first(key: str, v: float) -> int | None:
        return next((int(r["step"]) for r in hist if r[key] >= v), None)

    return {"config": asdict(cfg), "seconds": seconds, "steps": int(hist[-1]["step"]),
            "t_mem": first(TRAIN_ACC, FIT_ACC), "t_50": first(VAL_ACC, 0.5),
            "t_90": first(VAL_ACC, 0.9), TRAIN_ACC: hist[-1][TRAIN_ACC],
            VAL_ACC: hist[-1][VAL_ACC], "history": hist}


def run_with_probe(cfg: ZooConfig, run: str, endpoint: str | None = None,
                   threads: int = 1) -> dict[str, Any]:
    """Train with a real :class:`~grokwatch.probe.Probe` at ``endpoint``, closed at the end."""
    from grokwatch.probe import Probe

    probe = Probe(run, endpoint=endpoint, config=asdict(cfg), modulus=cfg.probe_modulus,
                  every=cfg.observe_every)
    try:
        return run_zoo(cfg, probe, threads=threads)
    finally:
        with contextlib.suppress(Exception):
            probe.close()


FAMILIES = ("cyclic", "transformer", "mul", "sq_add", "group", "digits")


def family_of(cfg: ZooConfig) -> str:
    """The family a config belongs to (for the per-family tables)."""
    if cfg.model == "digits":
        return "digits"
    if cfg.model == "transformer":
        return "transformer"
    if cfg.op in ("add", "sub"):
        return "cyclic"
    if cfg.op in OPS:
        return cfg.op
    return "group"
