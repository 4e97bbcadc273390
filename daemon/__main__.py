"""``python -m grokwatch.daemon ...``: the daemon part's commands alone (no other part's CLI)."""

import argparse
import sys

from grokwatch.daemon.cli import register

parser = argparse.ArgumentParser(prog="grokwatch")
register(parser.add_subparsers(dest="command"))
args = parser.parse_args()
if not getattr(args, "func", None):
    parser.print_help()
    sys.exit(2)
sys.exit(int(args.func(args) or 0))
