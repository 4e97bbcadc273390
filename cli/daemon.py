"""``grokwatch daemon``: run the daemon in the foreground."""

from __future__ import annotations

import argparse
import os
import sys
from pathlib import Path
from typing import Any

from grokwatch import wire


def env_api() -> str:
    """The daemon's API endpoint: ``$GROKWATCH_API``, else the wire's default."""
    return os.environ.get(wire.API_ENV, wire.DEFAULT_API)


def env_pub() -> str:
    """The daemon's PUB endpoint: ``$GROKWATCH_PUB``, else the wire's default."""
    return os.environ.get(wire.PUB_ENV, wire.DEFAULT_PUB)


def register(sub: Any) -> None:
    """Add the ``daemon`` subcommand."""
    p = sub.add_parser("daemon", help="run the daemon (ingest, store, detect, serve clients)")
    p.add_argument("--ingest", default=os.environ.get(wire.ENDPOINT_ENV, wire.DEFAULT_INGEST),
                   help="ROUTER endpoint probes connect to (default %(default)s)")
    p.add_argument("--pub", default=env_pub(), help="PUB endpoint for updates (default %(default)s)")
    p.add_argument("--api", default=env_api(),
                   help="ROUTER endpoint for snapshots and queries (default %(default)s)")
    p.add_argument("--db", type=Path, default=None,
                   help="SQLite store (default $XDG_STATE_HOME/grokwatch/grokwatch.db)")
    p.add_argument("--hooks", type=Path, default=None,
                   help="hooks TOML file (default $XDG_CONFIG_HOME/grokwatch/hooks.toml if it exists)")
    p.add_argument("--lost-after", type=float, default=60.0, metavar="S",
                   help="seconds of silence before a live run is lost (default %(default)s)")
    p.add_argument("--allow-remote", action="store_true",
                   help="allow binding non-loopback tcp:// addresses (they need CURVE keys)")
    p.add_argument("--insecure-tcp", action="store_true",
                   help="plain tcp:// on loopback, no CURVE (any local user can connect)")
    p.add_argument("--max-runs", type=int, default=None, metavar="N",
                   help="runs held at most (default 20,000; new ones beyond are refused)")
    p.add_argument("--durability", choices=("normal", "full"), default="normal",
                   help="normal: an ack survives a daemon crash; full: also a power loss "
                        "(SQLite synchronous=FULL, slower commits) (default %(default)s)")
    m = p.add_argument_group("Prometheus endpoint (needs grokwatch[prometheus])")
    m.add_argument("--metrics-port", type=int, default=None, metavar="PORT",
                   help="serve Prometheus/OpenMetrics on http://ADDR:PORT/metrics (off by default)")
    m.add_argument("--metrics-addr", default="127.0.0.1", metavar="ADDR",
                   help="address for --metrics-port (default %(default)s; others need "
                        "--allow-remote)")
    m.add_argument("--metrics-scalars", default=None, metavar="A,B,...",
                   help="scalars exported per run (default train_loss,val_loss,train_acc,val_acc)")
    m.add_argument("--metrics-max-runs", type=int, default=100, metavar="N",
                   help="at most N runs exported, live first (default %(default)s)")
    p.set_defaults(func=cmd_daemon)


def cmd_daemon(args: argparse.Namespace) -> int:
    """Run the daemon in the foreground until SIGINT/SIGTERM."""
    from grokwatch.daemon import paths
    from grokwatch.daemon.hookrules import default_hooks_path
    from grokwatch.daemon.server import Config, serve

    hooks = args.hooks if args.hooks is not None else default_hooks_path()
    if args.lost_after <= 0:
        print("grokwatch: --lost-after must be positive", file=sys.stderr)
        return 1
    if args.db is not None and not args.db.parent.is_dir():
        # A typo in --db must not quietly grow a directory tree (the default path's
        # directories are created, that is what a default is for).
        print(f"grokwatch: --db {args.db}: directory {args.db.parent} does not exist "
              "(create it first)", file=sys.stderr)
        return 1
    cfg = Config(ingest=args.ingest, pub=args.pub, api=args.api,
                 db=args.db if args.db is not None else paths.default_db_path(),
                 hooks=hooks, lost_after=args.lost_after, allow_remote=args.allow_remote,
                 insecure_tcp=args.insecure_tcp, durability=args.durability)
    if args.max_runs is not None:
        if args.max_runs < 1:
            print("grokwatch: --max-runs must be at least 1", file=sys.stderr)
            return 1
        cfg.limits.runs = args.max_runs
    if args.metrics_port is not None:
        from grokwatch.daemon.prometheus import MAX_SCALARS, MetricsConfig
        if not 0 <= args.metrics_port <= 65535 or args.metrics_max_runs < 1:
            print("grokwatch: --metrics-port must be 0..65535 and --metrics-max-runs >= 1",
                  file=sys.stderr)
            return 1
        mc = MetricsConfig(args.metrics_port, args.metrics_addr, max_runs=args.metrics_max_runs)
        if args.metrics_scalars is not None:
            mc.scalars = tuple(x.strip() for x in args.metrics_scalars.split(",") if x.strip())
            if len(mc.scalars) > MAX_SCALARS:
                print(f"grokwatch: --metrics-scalars takes at most {MAX_SCALARS} names",
                      file=sys.stderr)
                return 1
        cfg.metrics = mc
    return serve(cfg)
