"""The ``grokwatch`` command: one console script, a subcommand per job.

Each command module contributes its subcommands through ``register(subparsers)``,
in the help order below: :mod:`.daemon` (daemon), :mod:`.queries` (runs,
status, export, alerts), :mod:`.replay` (replay), :mod:`.plot` (plot), :mod:`.hooks` (hooks test,
hooks check), :mod:`.keys` (keys), :mod:`.tui` (tui), :mod:`.train` (train), :mod:`.demo` (demo),
:mod:`.sweep` (sweep, phases).
"""

from __future__ import annotations

import argparse
import os
import sys

from grokwatch import __version__
from grokwatch.cli import daemon, demo, hooks, keys, plot, queries, replay, sweep, train, tui

# Modules that contribute subcommands, in help order.
COMMANDS = (daemon, queries, replay, plot, hooks, keys, tui, train, demo, sweep)


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
        sys.stdout.flush()  # a closed pipe shows here, not at exit
    except KeyboardInterrupt:
        return 130
    except BrokenPipeError:
        return _closed_pipe()
    return int(rc or 0)


def _closed_pipe() -> int:
    """The reader went away (``grokwatch export X | head -3``): stop quietly, like
    other Unix tools, with SIGPIPE's status. Python's flush of stdout at exit
    would raise again, so stdout now points at /dev/null."""
    try:
        devnull = os.open(os.devnull, os.O_WRONLY)
        os.dup2(devnull, sys.stdout.fileno())
        os.close(devnull)
    except (OSError, ValueError):
        pass
    return 128 + 13  # SIGPIPE


if __name__ == "__main__":
    sys.exit(main())
