"""Hugging Face: ``Trainer(..., callbacks=[GrokwatchCallback()])``.

A ``transformers.TrainerCallback``: ``on_log`` sends what the Trainer logs on the
train side (``loss`` as ``train_loss``, ``grad_norm``, ``learning_rate``,
``epoch``...; the end-of-training summary and throughput figures are left out),
``on_evaluate`` sends the evaluation metrics (``eval_loss`` as ``val_loss``,
``eval_accuracy`` as ``val_acc``: whatever ``compute_metrics`` returns, prefixed
``eval_``), and ``on_step_end`` observes the model every ``every`` steps (the probe
finds the token embedding, and with ``modulus=p`` measures it over Z_p; or name
tensors with ``matrices=``). The run is named ``run=``, else ``args.run_name``, else the
output folder's name. Under DDP only global rank 0 sends. The probe opens at
``on_train_begin`` and closes at ``on_train_end``. Install with
``pip install grokwatch[hf]``.
"""

from __future__ import annotations

import os
from collections.abc import Mapping
from typing import Any

from transformers import TrainerCallback

from grokwatch.probe import Probe

from ._common import MatrixFn, clean_run_name, pick

SKIP_SUFFIXES = ("_runtime", "_per_second", "total_flos")
ARGS_IN_CONFIG = ("learning_rate", "weight_decay", "per_device_train_batch_size",
                  "gradient_accumulation_steps", "max_steps", "num_train_epochs", "seed",
                  "warmup_steps", "lr_scheduler_type", "optim")


class GrokwatchCallback(TrainerCallback):
    """Stream a ``transformers.Trainer`` run to the grokwatch daemon (see the module docs).

    Other keyword arguments (``endpoint``, ``capacity``, ``ranks``...) go to
    :class:`~grokwatch.probe.Probe`.
    """

    def __init__(self, modulus: int | None = None, *, run: str | None = None,
                 every: int = 100, names: Mapping[str, str] | None = None,
                 matrices: MatrixFn | None = None, config: Mapping[str, Any] | None = None,
                 **probe_kw: Any) -> None:
        self.modulus, self.run, self.every = modulus, run, every
        self.names = dict(names or {})
        self.matrices = matrices
        self.config = dict(config or {})
        self.probe_kw = probe_kw
        self.probe: Probe | None = None

    def run_name(self, args: Any) -> str:
        """``run=``, else ``args.run_name``, else the output folder's name."""
        if self.run:
            return self.run
        out = os.path.basename(os.path.normpath(str(args.output_dir or "hf")))
        name = getattr(args, "run_name", None)
        if not name or os.path.normpath(str(name)) == os.path.normpath(str(args.output_dir)):
            name = out  # transformers' old default: the output dir itself
        return clean_run_name(name, "hf-trainer")

    def on_train_begin(self, args: Any, state: Any, control: Any, model: Any = None,
                       **kw: Any) -> None:
        if self.probe is not None:  # a second train() on the same Trainer: a new session
            self.probe.close()
        config: dict[str, Any] = {"framework": "transformers"}
        for k in ARGS_IN_CONFIG:
            v = getattr(args, k, None)
            if v is not None:
                config[k] = v if isinstance(v, (int, float, str, bool)) else str(v)
        mc = getattr(model, "config", None)
        if mc is not None and getattr(mc, "model_type", None):
            config["model_type"] = mc.model_type
        config.update(self.config)
        self.probe = Probe(self.run_name(args), config=config, modulus=self.modulus,
                           every=self.every, **self.probe_kw)

    def on_train_end(self, args: Any, state: Any, control: Any, **kw: Any) -> None:
        if self.probe is not None:
            self.probe.close()

    def on_log(self, args: Any, state: Any, control: Any, logs: Mapping | None = None,
               **kw: Any) -> None:
        p = self.probe
        if p is None or p.silent or not logs or "train_runtime" in logs:
            return  # the summary at the end: averages over the run, not a step's values
        keep = {k: v for k, v in logs.items()
                if isinstance(k, str) and not k.endswith(SKIP_SUFFIXES)}
        vals = pick(keep, validation=False, extra=self.names)
        if vals:
            p.log(state.global_step, **vals)

    def on_evaluate(self, args: Any, state: Any, control: Any,
                    metrics: Mapping | None = None, **kw: Any) -> None:
        p = self.probe
        if p is None or p.silent or not metrics:
            return
        keep = {k: v for k, v in metrics.items()
                if isinstance(k, str) and not k.endswith(SKIP_SUFFIXES)}
        vals = pick(keep, validation=True, extra=self.names)
        if vals:
            p.log(state.global_step, **vals)

    def on_step_end(self, args: Any, state: Any, control: Any, model: Any = None,
                    **kw: Any) -> None:
        p = self.probe
        step = state.global_step
        if p is None or p.silent or model is None:
            return
        if p.due(step):  # only then build the arguments
            p.observe(step, model, **(self.matrices(model) if self.matrices else {}))
