"""The training loop of the workload zoo, and the worked example of using the probe.

``run_workload(cfg)`` trains one model full batch with AdamW on one modular-arithmetic
task and streams it to the daemon::

    with Probe(run, endpoint=..., config=asdict(cfg), modulus=p, every=cfg.observe_every) as probe:
        for step in range(cfg.steps + 1):
            ...forward, backward, optimizer step...
            probe.log(step, train_loss=..., train_acc=..., val_loss=..., val_acc=...)
            probe.observe(step, model=model, embed=model.embed_matrix(),
                          neurons=model.neuron_matrix())

It returns a plain summary (milestone steps, final accuracies, timings) so tests and
benches can run it in-process as well as through ``grokwatch train``.
"""

from __future__ import annotations

import contextlib
import math
import threading
import time
from collections.abc import Callable
from dataclasses import asdict, dataclass, fields
from typing import Any

import torch

from grokwatch.examples.models import MODELS, build_model
from grokwatch.examples.tasks import OPS, Split, make_task
from grokwatch.wire.names import TRAIN_ACC, TRAIN_LOSS, VAL_ACC, VAL_LOSS

FIT_ACC = 0.99  # train accuracy that counts as "memorized" in the summary


@dataclass
class WorkloadConfig:
    """Everything that defines one training run (all plain values, sent as the run's config)."""

    op: str = "add"
    modulus: int = 97
    frac: float = 0.5  # share of the p*p pairs used for training
    model: str = "mlp"  # mlp | quadratic | transformer
    width: int | None = None  # None = the model's default
    lr: float = 1e-3
    weight_decay: float = 1.0
    beta2: float = 0.999
    seed: int = 0
    steps: int = 3000
    threads: int = 1
    log_every: int = 10  # train/val loss and accuracy
    observe_every: int = 20  # geometry metrics (the probe's `every`)
    until_val: float | None = None  # stop `extra_steps` after val acc first reaches this
    extra_steps: int = 0

    def __post_init__(self) -> None:
        self.validate()

    def validate(self) -> None:
        """Raise ``ValueError`` naming the first bad field."""
        if self.op not in OPS:
            raise ValueError(f"op: unknown {self.op!r}; choose one of {', '.join(OPS)}")
        if self.model not in MODELS:
            raise ValueError(f"model: unknown {self.model!r}; choose one of {', '.join(MODELS)}")
        checks = [
            ("modulus", self.modulus >= 3),
            ("frac", 0.0 < self.frac < 1.0),
            ("width", self.width is None or self.width >= 1),
            ("lr", self.lr > 0 and math.isfinite(self.lr)),
            ("weight_decay", self.weight_decay >= 0 and math.isfinite(self.weight_decay)),
            ("beta2", 0.0 < self.beta2 < 1.0),
            ("steps", self.steps >= 0),
            ("threads", self.threads >= 1),
            ("log_every", self.log_every >= 1),
            ("observe_every", self.observe_every >= 1),
            ("until_val", self.until_val is None or 0.0 < self.until_val <= 1.0),
            ("extra_steps", self.extra_steps >= 0),
        ]
        for name, ok in checks:
            if not ok:
                raise ValueError(f"{name}: invalid value {getattr(self, name)!r}")

    @classmethod
    def from_dict(cls, d: dict[str, Any]) -> WorkloadConfig:
        """Build from a map, refusing unknown keys (a typo must not be silently ignored)."""
        known = {f.name for f in fields(cls)}
        unknown = sorted(set(d) - known)
        if unknown:
            raise ValueError(f"unknown workload field(s): {', '.join(unknown)}")
        return cls(**d)


def default_run_name(cfg: WorkloadConfig) -> str:
    """A readable run name from the fields that tell runs of the zoo apart."""
    return f"{cfg.model}-{cfg.op}-p{cfg.modulus}-f{cfg.frac:g}-wd{cfg.weight_decay:g}-s{cfg.seed}"


def _loss_fn(kind: str, p: int) -> Callable[[torch.Tensor, torch.Tensor], torch.Tensor]:
    if kind == "mse":
        # Gromov's MSE against one-hot targets.
        return lambda out, y: torch.nn.functional.mse_loss(
            out, torch.nn.functional.one_hot(y, p).to(out.dtype))
    return torch.nn.functional.cross_entropy


def _accuracy(out: torch.Tensor, y: torch.Tensor) -> float:
    return float((out.argmax(dim=1) == y).float().mean())


def _first(history: list[dict[str, float]], key: str, at_least: float) -> int | None:
    for row in history:
        if row[key] >= at_least:
            return int(row["step"])
    return None


class _NoProbe:
    """Stand-in when training without a daemon connection (calibration, benches)."""

    def log(self, step: int, **scalars: Any) -> None:
        pass

    def observe(self, step: int, model: Any = None, **matrices: Any) -> None:
        pass

    def close(self) -> None:
        pass


def _open_probe(run: str, endpoint: str | None, cfg: WorkloadConfig, extra: dict) -> Any:
    from grokwatch.probe import Probe  # the probe is the only grokwatch part a workload needs

    config = {**asdict(cfg), **extra}
    return Probe(run, endpoint=endpoint, config=config, modulus=cfg.modulus,
                 every=cfg.observe_every)


def run_workload(cfg: WorkloadConfig, probe_endpoint: str | None = None, *,
                 run: str | None = None, use_probe: bool = True,
                 stop: threading.Event | None = None,
                 on_log: Callable[[dict[str, float]], None] | None = None,
                 labels: dict[str, Any] | None = None) -> dict[str, Any]:
    """Train one workload, streaming to the daemon at ``probe_endpoint``; return a summary.

    ``probe_endpoint=None`` uses the probe's default (``$GROKWATCH_ENDPOINT`` or the
    loopback ingest port); ``use_probe=False`` trains without one. ``stop`` ends the
    run early (cleanly: the probe still says bye). ``on_log`` gets each logged row.
    ``labels`` are extra config entries sent with the run (e.g. the preset name).
    The summary holds ``run``, ``steps`` (the last step trained), ``seconds``,
    ``t_mem`` / ``t_50`` / ``t_90`` (first logged step with train acc >= 0.99, val acc
    >= 0.5, >= 0.9; None if never), the final accuracies, ``stopped`` and ``history``.
    """
    cfg.validate()
    run = run or default_run_name(cfg)
    torch.set_num_threads(cfg.threads)
    torch.manual_seed(cfg.seed)
    train, val = make_task(cfg.op, cfg.modulus, cfg.frac, cfg.seed)
    model = build_model(cfg.model, cfg.modulus, cfg.width)
    loss_fn = _loss_fn(model.loss, cfg.modulus)
    opt = torch.optim.AdamW(model.parameters(), lr=cfg.lr, weight_decay=cfg.weight_decay,
                            betas=(0.9, cfg.beta2))
    probe = _open_probe(run, probe_endpoint, cfg, labels or {}) if use_probe else _NoProbe()
    history: list[dict[str, float]] = []
    last_step, stopped, stop_at = -1, False, None
    t0 = time.perf_counter()
    try:
        for step in range(cfg.steps + 1):
            if stop is not None and stop.is_set():
                stopped = True
                break
            opt.zero_grad(set_to_none=True)
            out = model(train.a, train.b)
            loss = loss_fn(out, train.y)
            logging = step % cfg.log_every == 0 or step == cfg.steps
            if logging:
                # Metrics of the weights *before* this step's update, as is customary.
                row = {"step": step, TRAIN_LOSS: float(loss.detach()),
                       TRAIN_ACC: _accuracy(out.detach(), train.y),
                       **_evaluate(model, loss_fn, val)}
            if step < cfg.steps:  # the last index only measures
                loss.backward()
                opt.step()
            last_step = step
            if logging:
                history.append(row)
                probe.log(step, **{k: v for k, v in row.items() if k != "step"})
                if on_log is not None:
                    on_log(row)
                if stop_at is None and cfg.until_val is not None and row[VAL_ACC] >= cfg.until_val:
                    stop_at = step + cfg.extra_steps
            if step % cfg.observe_every == 0:
                probe.observe(step, model=model, embed=model.embed_matrix().detach(),
                              neurons=model.neuron_matrix().detach())
            if stop_at is not None and step >= stop_at:
                break
    finally:
        seconds = time.perf_counter() - t0
        with contextlib.suppress(Exception):  # closing must not mask the real error
            probe.close()
    final = history[-1] if history else {}
    return {
        "run": run, "config": asdict(cfg), "steps": last_step, "seconds": seconds,
        "t_mem": _first(history, TRAIN_ACC, FIT_ACC), "t_50": _first(history, VAL_ACC, 0.5),
        "t_90": _first(history, VAL_ACC, 0.9),
        TRAIN_ACC: final.get(TRAIN_ACC), VAL_ACC: final.get(VAL_ACC),
        "stopped": stopped, "history": history,
    }


@torch.no_grad()
def _evaluate(model: torch.nn.Module, loss_fn: Callable, split: Split) -> dict[str, float]:
    out = model(split.a, split.b)
    return {VAL_LOSS: float(loss_fn(out, split.y)), VAL_ACC: _accuracy(out, split.y)}
