"""``grokwatch keys``: CURVE key pairs for tcp:// endpoints (see grokwatch.wire.security)."""

from __future__ import annotations

import argparse
import sys
from pathlib import Path
from typing import Any


def register(sub: Any) -> None:
    """Add the ``keys`` subcommand."""
    p = sub.add_parser("keys", help="create the CURVE key pairs tcp:// endpoints need")
    p.add_argument("--dir", type=Path, default=None,
                   help="key directory (default $GROKWATCH_KEYS_DIR or "
                        "$XDG_CONFIG_HOME/grokwatch/keys)")
    p.set_defaults(func=cmd_keys)


def cmd_keys(args: argparse.Namespace) -> int:
    """Create (or keep) the daemon's and this client's key pairs; authorize this client."""
    from grokwatch.daemon.auth import keys_summary
    from grokwatch.wire import security

    try:
        created = security.create_keys(args.dir)
    except OSError as e:
        print(f"grokwatch keys: {e}", file=sys.stderr)
        return 1
    print(keys_summary(created))
    return 0
