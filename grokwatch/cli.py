"""The ``grokwatch`` command: one console script, a subcommand per job.

Each part contributes its subcommands through a ``register(subparsers)``
function in its own CLI module, imported here; those modules import their
heavy dependencies (torch, textual) only inside the command functions, so
``grokwatch runs`` never pays for torch.
"""

from __future__ import annotations

import argparse
import importlib
import sys

# Modules that contribute subcommands, in help order.
PART_CLIS = (
    "grokwatch.daemon.cli",  # daemon, runs, status, export, alerts
    "grokwatch.daemon.replay_cli",  # replay
    "grokwatch.daemon.hooks_cli",  # hooks test
    "grokwatch.tui.cli",  # tui
    "grokwatch.examples.cli",  # train
    "grokwatch.demo",  # demo
)


def build_parser() -> argparse.ArgumentParser:
    """The full argument parser, with every part's subcommands."""
    from grokwatch import __version__

    parser = argparse.ArgumentParser(
        prog="grokwatch", description="Watch neural networks learn, live, in the terminal.")
    parser.add_argument("--version", action="version", version=f"grokwatch {__version__}")
    sub = parser.add_subparsers(dest="command", metavar="COMMAND")
    for name in PART_CLIS:
        importlib.import_module(name).register(sub)
    return parser


def main(argv: list[str] | None = None) -> int:
    """Entry point of the ``grokwatch`` console script; returns the exit status."""
    parser = build_parser()
    args = parser.parse_args(argv)
    if not getattr(args, "func", None):
        parser.print_help()
        return 2
    try:
        rc = args.func(args)
    except KeyboardInterrupt:
        return 130
    return int(rc or 0)


if __name__ == "__main__":
    sys.exit(main())
