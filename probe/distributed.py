"""Distributed training: which rank speaks, under which run name, and DDP unwrapping.

With ``torch.distributed`` initialised (or, before that, under a launcher that
sets ``RANK``/``WORLD_SIZE``, such as ``torchrun`` or Lightning), a
:class:`~grokwatch.probe.Probe` built on every rank does the right thing:

- ``ranks=0`` (the default): rank 0 logs and observes; every other rank's
  probe is silent (no socket, no thread, ``log``/``observe`` return at once);
  ``ranks=k`` picks rank ``k`` instead;
- ``ranks="each"``: every rank logs, each as its own run ``{run}.rank{r}``,
  grouped by the ``group`` (the given run name), ``rank`` and ``world_size``
  entries added to the run's config (``grokwatch runs "name.rank*"`` lists them).

The probe never calls a collective (no barrier, broadcast or all-reduce): a
rank that observes is only slower on that step, never out of step with the
others. Reading the rank (``get_rank``/``get_world_size``) is local.
Importing this module never imports torch.
"""

from __future__ import annotations

import os
import sys
from typing import Any

EACH = "each"


def rank_world() -> tuple[int, int]:
    """``(rank, world_size)``: from ``torch.distributed`` when initialised, else the
    launcher's ``RANK``/``WORLD_SIZE`` environment, else ``(0, 1)``."""
    torch = sys.modules.get("torch")  # a program using torch.distributed imported it already
    if torch is not None:
        try:
            dist = torch.distributed
            if dist.is_available() and dist.is_initialized():
                return int(dist.get_rank()), int(dist.get_world_size())
        except Exception:
            pass
    try:
        rank = int(os.environ.get("RANK", "0"))
        world = int(os.environ.get("WORLD_SIZE", "1"))
    except ValueError:
        return 0, 1
    if world < 1 or not 0 <= rank < world:
        return 0, 1
    return rank, world


def check_ranks(ranks: Any) -> None:
    """Raise ValueError unless ``ranks`` is a rank (int >= 0) or ``"each"``."""
    if ranks == EACH and isinstance(ranks, str):
        return
    if type(ranks) is not int or ranks < 0:
        raise ValueError(f'ranks must be a rank (int >= 0) or "each", got {ranks!r}')


def placement(run: str, ranks: int | str) -> tuple[str | None, dict[str, Any]]:
    """``(run name or None when this rank is silent, config entries to add)``."""
    rank, world = rank_world()
    if world == 1:
        return run, {}
    if ranks == EACH:
        return f"{run}.rank{rank}", {"group": run, "rank": rank, "world_size": world}
    if rank != ranks:
        return None, {}
    return run, {"rank": rank, "world_size": world}


def unwrap(model: Any) -> Any:
    """The module inside DDP or DataParallel and ``torch.compile`` (FSDP shards: not unwrapped)."""
    for _ in range(8):  # wrappers nest (compile around DDP), never deeply
        inner = getattr(model, "_orig_mod", None)  # torch.compile's OptimizedModule
        if inner is None and type(model).__name__ in (
                "DistributedDataParallel", "DataParallel"):
            inner = getattr(model, "module", None)
        if inner is None:
            return model
        model = inner
    return model
