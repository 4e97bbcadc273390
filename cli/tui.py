"""``grokwatch tui``: the terminal monitor (Textual is imported only when it runs)."""

from __future__ import annotations

import argparse
import sys


def register(sub: argparse._SubParsersAction) -> None:
    """Add the ``tui`` subcommand."""
    p = sub.add_parser(
        "tui", help="watch runs live in the terminal",
        description="Watch runs live: runs table, run detail (sparklines, spectra, "
                    "constellation), compare, alerts. Keyboard only; press ? for keys.")
    p.add_argument("--connect", metavar="HOST_OR_ENDPOINTS", default=None,
                   help="a daemon host (ports 7711/7712 on it) or PUB,API endpoints, "
                        "e.g. ipc:///run/gw/pub,ipc:///run/gw/api (default: this box)")
    p.add_argument("--ascii", action="store_true",
                   help="plain ASCII drawing (no braille or block characters)")
    p.set_defaults(func=cmd_tui)


def cmd_tui(args: argparse.Namespace) -> int:
    """Run the TUI until the user quits."""
    from grokwatch.tui.feed import parse_connect

    try:
        pub, api = parse_connect(args.connect)
    except ValueError as e:
        print(f"grokwatch tui: --connect: {e}", file=sys.stderr)
        return 2
    from grokwatch.tui.app import run

    run(api=api, pub=pub, ascii=args.ascii)
    return 0
