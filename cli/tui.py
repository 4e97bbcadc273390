"""``grokwatch tui``: the terminal monitor (Textual is imported only when it runs)."""

from __future__ import annotations

import argparse
import sys

from grokwatch.wire.names import API_PORT, PUB_PORT


def register(sub: argparse._SubParsersAction) -> None:
    """Add the ``tui`` subcommand."""
    p = sub.add_parser(
        "tui", help="watch runs live in the terminal",
        description="Watch runs live: runs table, run detail (sparklines, spectra, "
                    "constellation), compare, alerts. Keyboard only; press ? for keys.")
    p.add_argument("--connect", metavar="HOST_OR_ENDPOINTS", default=None,
                   help=f"a daemon host (ports {PUB_PORT}/{API_PORT} on it) or PUB,API endpoints, "
                        "e.g. ipc:///run/gw/pub,ipc:///run/gw/api (default: this box)")
    p.add_argument("--ssh", metavar="HOST", default=None,
                   help="watch the daemon on HOST through ssh (the system's OpenSSH client "
                        "and ~/.ssh/config); the tunnel closes when the TUI exits")
    p.add_argument("--remote", metavar="PUB,API", default=None,
                   help="with --ssh: the remote daemon's endpoints (default: ask it, "
                        "via `grokwatch status --json` on HOST)")
    p.add_argument("--ascii", action="store_true",
                   help="plain ASCII drawing (no braille or block characters)")
    p.set_defaults(func=cmd_tui)


def cmd_tui(args: argparse.Namespace) -> int:
    """Run the TUI until the user quits."""
    from grokwatch.tui.feed import parse_connect

    if args.ssh is not None:
        return _tui_over_ssh(args)
    if args.remote is not None:
        print("grokwatch tui: --remote goes with --ssh", file=sys.stderr)
        return 2
    try:
        pub, api = parse_connect(args.connect)
    except ValueError as e:
        print(f"grokwatch tui: --connect: {e}", file=sys.stderr)
        return 2
    from grokwatch.tui.app import run

    run(api=api, pub=pub, ascii=args.ascii)
    return 0


def _tui_over_ssh(args: argparse.Namespace) -> int:
    """Open the tunnel (cli/ssh.py), run the TUI on its local ends, close it on exit."""
    from grokwatch.cli.ssh import SSHError, Tunnel

    if args.connect is not None:
        print("grokwatch tui: --ssh and --connect do not go together", file=sys.stderr)
        return 2
    remote = None
    if args.remote is not None:
        parts = [x.strip() for x in args.remote.split(",")]
        if len(parts) != 2 or not all(parts):
            print("grokwatch tui: --remote takes PUB,API endpoints", file=sys.stderr)
            return 2
        remote = (parts[0], parts[1])
    try:
        with Tunnel(args.ssh, remote=remote) as (pub, api):
            from grokwatch.tui.app import run

            run(api=api, pub=pub, ascii=args.ascii)
    except SSHError as e:
        print(f"grokwatch tui: --ssh {args.ssh}: {e}", file=sys.stderr)
        return 1
    return 0
