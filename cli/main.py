"""The ``grokwatch`` command: one console script, a subcommand per job.

Each command module contributes its subcommands through ``register(subparsers)``,
in the help order below: :mod:`.daemon` (daemon), :mod:`.queries` (runs,
status, export, alerts), :mod:`.replay` (replay), :mod:`.hooks` (hooks test,
hooks check), :mod:`.tui` (tui), :mod:`.train` (train), :mod:`.demo` (demo),
:mod:`.sweep` (sweep, phases).
"""

from __future__ import annotations

import argparse
import sys

from grokwatch import __version__
from grokwatch.cli import daemon, demo, hooks, queries, replay, sweep, train, tui

# Modules that contribute subcommands, in help order.
COMMANDS = (daemon, queries, replay, hooks, tui, train, demo, sweep)


def build_parser() -> argparse.ArgumentParser:
    """The full argument parser, with every command module's subcommands."""
    parser = argparse.ArgumentParser(
        prog="grokwatch", description="Watch neural networks learn, live, in the terminal.")
    parser.add_argument("--version", action="version", version=f"grokwatch {__version__}")
    sub = parser.add_subparsers(dest="command", metavar="COMMAND")
    for module in COMMANDS:
        module.register(sub)
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
