"""``grokwatch train PRESET [--flag ...]``: run one workload with the probe.

torch is imported inside the command, so ``grokwatch --help`` stays light.
"""

from __future__ import annotations

import argparse
import json
import signal
import sys
from typing import Any

from grokwatch.examples.presets import DESCRIPTIONS, PRESETS
from grokwatch.wire.names import DEFAULT_INGEST, ENDPOINT_ENV

# CLI flag -> WorkloadConfig field, with its type; None default = keep the preset's value.
_FIELDS: tuple[tuple[str, type, str], ...] = (
    ("op", str, "operation: add, sub, mul, sq_add"),
    ("modulus", int, "the modulus p"),
    ("frac", float, "share of the p*p pairs used for training"),
    ("model", str, "mlp, quadratic or transformer"),
    ("width", int, "hidden width"),
    ("lr", float, "AdamW learning rate"),
    ("weight_decay", float, "AdamW weight decay"),
    ("beta2", float, "AdamW beta2"),
    ("seed", int, "seed of the split and the init"),
    ("threads", int, "torch threads (default 1)"),
    ("log_every", int, "steps between train/val scalars"),
    ("observe_every", int, "steps between geometry metrics"),
    ("until_val", float, "stop --extra-steps after val acc reaches this"),
    ("extra_steps", int, "steps to keep training after --until-val"),
)


def register(sub: argparse._SubParsersAction) -> None:
    """Add the ``train`` subcommand."""
    presets = "\n".join(f"  {k:14s} {v}" for k, v in DESCRIPTIONS.items())
    p = sub.add_parser(
        "train", help="run an example workload (needs torch) streaming to the daemon",
        description="Train one example workload full batch and stream it to the daemon.",
        epilog=f"presets:\n{presets}", formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("preset", choices=sorted(PRESETS), metavar="PRESET",
                   help=f"one of: {', '.join(PRESETS)}")
    p.add_argument("--run", help="run name (default: the preset's name)")
    p.add_argument("--endpoint", help=f"daemon ingest endpoint (default: ${ENDPOINT_ENV} "
                                      f"or {DEFAULT_INGEST})")
    p.add_argument("--no-probe", action="store_true", help="train without streaming")
    p.add_argument("--steps", type=int, help="step budget (overrides the preset)")
    p.add_argument("--scale", type=float, help="multiply the preset's step budget")
    p.add_argument("--fast", action="store_true",
                   help="the short test version of the preset (seconds, not a minute)")
    for name, typ, help_ in _FIELDS:
        p.add_argument("--" + name.replace("_", "-"), dest=name, type=typ, help=help_)
    p.add_argument("--quiet", action="store_true", help="no progress lines")
    p.add_argument("--json", action="store_true", help="print the summary as one JSON line")
    p.set_defaults(func=cmd_train)


def cmd_train(args: argparse.Namespace) -> int:
    """Run the workload; exit 0 when done, 128+signal when stopped by SIGTERM/SIGINT."""
    from grokwatch.examples.presets import preset_config

    try:
        import threading

        from grokwatch.examples.train import WorkloadConfig, run_workload
    except ModuleNotFoundError as e:
        if e.name != "torch":
            raise
        print("grokwatch train: the workloads need torch: pip install 'grokwatch[torch]'",
              file=sys.stderr)
        return 2
    try:
        cfgmap = preset_config(args.preset, fast=args.fast, scale=args.scale, steps=args.steps,
                               **{name: getattr(args, name) for name, _, _ in _FIELDS})
        cfgmap.setdefault("threads", 1)
        cfg = WorkloadConfig.from_dict(cfgmap)
    except ValueError as e:
        print(f"grokwatch train: {e}", file=sys.stderr)
        return 2

    stop = threading.Event()
    got: list[int] = []

    def on_signal(signum: int, frame: Any) -> None:
        got.append(signum)
        stop.set()  # the loop ends at the next step and the probe says bye

    old = {s: signal.signal(s, on_signal) for s in (signal.SIGTERM, signal.SIGINT)}
    run = args.run or args.preset
    every = max(cfg.log_every, (cfg.steps // 10) // cfg.log_every * cfg.log_every)

    def progress(row: dict[str, float]) -> None:
        if not (args.quiet or args.json) and row["step"] % every == 0:
            print(f"{run}: step {int(row['step']):6d}  train_acc {row['train_acc']:.3f}  "
                  f"val_acc {row['val_acc']:.3f}  train_loss {row['train_loss']:.4g}",
                  flush=True)

    try:
        summary = run_workload(cfg, args.endpoint, run=run, use_probe=not args.no_probe,
                               stop=stop, on_log=progress, labels={"preset": args.preset})
    except ValueError as e:  # e.g. a bad endpoint, refused before training starts
        print(f"grokwatch train: {e}", file=sys.stderr)
        return 2
    finally:
        for s, h in old.items():
            signal.signal(s, h)
    summary.pop("history")
    if args.json:
        print(json.dumps(summary), flush=True)
    elif not args.quiet:
        state = "stopped" if summary["stopped"] else "done"
        print(f"{run}: {state} at step {summary['steps']} in {summary['seconds']:.1f} s; "
              f"train_acc {_fmt(summary['train_acc'])} val_acc {_fmt(summary['val_acc'])}; "
              f"memorized at {summary['t_mem']}, val 0.5 at {summary['t_50']}", flush=True)
    return 128 + got[0] if got else 0


def _fmt(v: float | None) -> str:
    return "-" if v is None else f"{v:.3f}"
