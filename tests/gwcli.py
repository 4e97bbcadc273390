"""The ``grokwatch`` command line for tests that run it as a subprocess.

While another part's CLI module is still missing, ``python -m grokwatch`` cannot
build its parser; a test then runs only the parts it needs (its ``fallback``).
"""

from __future__ import annotations

import importlib.util
import sys

# ``grokwatch`` with the daemon's and replay's subcommands only.
DAEMON_AND_REPLAY = [sys.executable, "-c",
                     "import argparse, sys\n"
                     "from grokwatch.daemon import cli, replay_cli\n"
                     "p = argparse.ArgumentParser(prog='grokwatch')\n"
                     "s = p.add_subparsers(dest='command')\n"
                     "cli.register(s); replay_cli.register(s)\n"
                     "a = p.parse_args()\n"
                     "sys.exit(int(a.func(a) or 0))\n"]


def grokwatch_cmd(fallback: list[str]) -> list[str]:
    """``python -m grokwatch`` when every part's CLI module is present, else ``fallback``."""
    from grokwatch.cli import PART_CLIS
    if all(importlib.util.find_spec(m) is not None for m in PART_CLIS):
        return [sys.executable, "-m", "grokwatch"]
    return list(fallback)
