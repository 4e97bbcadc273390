"""Lightning: ``Trainer(callbacks=[GrokwatchCallback(modulus=97)])``.

Logs what the Trainer logs (``self.log(...)`` in the module: the train side
every ``log_every`` steps, default the Trainer's ``log_every_n_steps``, and the
validation side after each validation run), under grokwatch's names where a
usual name is recognised (``train_loss``, ``train/acc``, ``val_accuracy``,
``valid_loss``... -> ``train_loss``/``train_acc``/``val_loss``/``val_acc``;
``names={"mine": wire.names.VAL_ACC}`` adds your own), and observes the model every
``every`` optimizer steps. The run is named after the logger
(``{logger.name}.version_{logger.version}``, Lightning's log folder; a run
name holds no ``/``), else
after the module's class and the start time; ``run=`` overrides it. Under DDP
only global rank 0 sends (the probe's distributed rule). Install with
``pip install grokwatch[lightning]`` (``lightning`` or ``pytorch_lightning``).
"""

from __future__ import annotations

import time
from collections.abc import Mapping
from typing import Any

try:
    import lightning.pytorch as pl
except ImportError:  # the older package name
    import pytorch_lightning as pl

from grokwatch.probe import Probe
from grokwatch.wire import names

from ._common import MatrixFn, clean_run_name, pick, scalar


class GrokwatchCallback(pl.Callback):
    """Stream a Lightning run to the grokwatch daemon (see the module docstring).

    ``matrices(module) -> {name: 2-D tensor}`` names what ``observe`` measures
    (default: what the probe finds in the model, the token embedding); other
    keyword arguments (``endpoint``, ``capacity``, ``ranks``...) go to
    :class:`~grokwatch.probe.Probe`.
    """

    def __init__(self, modulus: int | None = None, *, run: str | None = None,
                 every: int = 100, log_every: int | None = None,
                 names: Mapping[str, str] | None = None, matrices: MatrixFn | None = None,
                 config: Mapping[str, Any] | None = None, **probe_kw: Any) -> None:
        super().__init__()
        self.modulus, self.run, self.every, self.log_every = modulus, run, every, log_every
        self.names = dict(names or {})
        self.matrices = matrices
        self.config = dict(config or {})
        self.probe_kw = probe_kw
        self.probe: Probe | None = None

    # ------------------------------------------------------------ lifecycle

    def run_name(self, trainer: Any, pl_module: Any) -> str:
        """``run=``, else the logger's ``name.version_N``, else ``Module-YYYYmmdd-HHMMSS``."""
        if self.run:
            return self.run
        lg = getattr(trainer, "logger", None)
        if lg is not None:
            try:
                name, version = lg.name, lg.version
                if name:
                    v = version if isinstance(version, str) else f"version_{version}"
                    return clean_run_name(f"{name}.{v}" if version is not None else name,
                                    type(pl_module).__name__)
            except Exception:
                pass
        return f"{type(pl_module).__name__}-{time.strftime('%Y%m%d-%H%M%S')}"

    def on_fit_start(self, trainer: Any, pl_module: Any) -> None:
        if self.probe is not None:
            return
        config: dict[str, Any] = {"framework": "lightning", "max_steps": trainer.max_steps,
                                  "max_epochs": trainer.max_epochs}
        try:
            config.update(dict(pl_module.hparams))
        except Exception:
            pass
        config.update(self.config)
        self.probe = Probe(self.run_name(trainer, pl_module), config=config,
                           modulus=self.modulus, every=self.every, **self.probe_kw)
        if self.log_every is None:
            self.log_every = max(1, int(getattr(trainer, "log_every_n_steps", 50) or 1))

    def on_fit_end(self, trainer: Any, pl_module: Any) -> None:
        self._close()

    def on_exception(self, trainer: Any, pl_module: Any, exception: BaseException) -> None:
        self._close()

    def _close(self) -> None:
        if self.probe is not None:
            self.probe.close()

    # ------------------------------------------------------------ data

    def on_train_batch_end(self, trainer: Any, pl_module: Any, outputs: Any, batch: Any,
                           batch_idx: int) -> None:
        p = self.probe
        if p is None or p.silent:
            return
        step = trainer.global_step
        if step % self.log_every == 0:
            vals = pick(trainer.callback_metrics, validation=False, extra=self.names)
            if names.TRAIN_LOSS not in vals and isinstance(outputs, Mapping):
                loss = scalar(outputs.get("loss"))  # the loss the optimizer used
                if loss is not None:
                    vals[names.TRAIN_LOSS] = loss
            if vals:
                p.log(step, **vals)
        if p.due(step):  # only then build the arguments
            p.observe(step, pl_module, **(self.matrices(pl_module) if self.matrices else {}))

    def on_validation_end(self, trainer: Any, pl_module: Any) -> None:
        p = self.probe
        if p is None or p.silent or trainer.sanity_checking:
            return
        vals = pick(trainer.callback_metrics, validation=True, extra=self.names)
        if vals:
            p.log(trainer.global_step, **vals)
