"""``grokwatch hooks``: check a hooks file and try its rules with a synthetic alert."""

from __future__ import annotations

import argparse
import json
import sys
import time
from pathlib import Path

from grokwatch.daemon.alert import ALERT_KINDS, Alert

TEST_EPILOG = """\
The alert goes through the rules exactly as the daemon's would (kind, run glob,
status), and the matching hooks run for real, with the alert as JSON on stdin and
GROKWATCH_* variables; cooldowns do not apply. Exit status: 0 every hook ok,
1 a hook failed or timed out, 2 invalid hooks file, 3 no rule matched.
"""


def register(sub: argparse._SubParsersAction) -> None:
    """Add ``grokwatch hooks test`` and ``grokwatch hooks check``."""
    p = sub.add_parser("hooks", help="check a hooks file, try its rules with a synthetic alert",
                       description="Alert hooks: programs the daemon runs on alerts.")
    hs = p.add_subparsers(dest="hooks_command", metavar="ACTION")
    p.set_defaults(func=lambda _a: p.print_help() or 2)

    t = hs.add_parser("test", help="fire a synthetic alert through FILE's rules, run the hooks",
                      description="Fire a synthetic alert through a hooks file's rules and "
                                  "run the matching hooks.", epilog=TEST_EPILOG,
                      formatter_class=argparse.RawDescriptionHelpFormatter)
    t.add_argument("file", type=Path, metavar="FILE", help="hooks file (TOML)")
    t.add_argument("--kind", required=True, choices=ALERT_KINDS, help="alert kind")
    t.add_argument("--run", required=True, help="run name")
    t.add_argument("--step", type=int, default=0, help="step (default 0)")
    t.add_argument("--status", choices=("firing", "resolved"), default="firing")
    t.add_argument("--summary", default=None, help="alert summary text")
    t.add_argument("--label", action="append", default=[], metavar="KEY=VALUE",
                   help="a label (the run's config in real alerts); repeatable")
    t.add_argument("--rule", action="append", default=[], metavar="NAME",
                   help="only this rule (repeatable); default every rule that matches")
    t.add_argument("--json", action="store_true", help="print each result as a JSON line")
    t.set_defaults(func=cmd_test)

    c = hs.add_parser("check", help="validate FILE and list its rules",
                      description="Validate a hooks file (as the daemon does at start).")
    c.add_argument("file", type=Path, metavar="FILE", help="hooks file (TOML)")
    c.set_defaults(func=cmd_check)


def _load(path: Path) -> list | None:
    from grokwatch.daemon.hookrules import HookConfigError, load_rules

    try:
        return load_rules(path)
    except HookConfigError as e:
        print(f"grokwatch hooks: {e}", file=sys.stderr)
        return None


def cmd_check(args: argparse.Namespace) -> int:
    """Validate a hooks file; print one line per rule."""
    rules = _load(args.file)
    if rules is None:
        return 2
    for r in rules:
        print(f"{r.name}: on {','.join(r.on)} runs {','.join(r.runs)} status {r.status} "
              f"timeout {r.timeout:g}s cooldown {r.cooldown:g}s retries {r.retries} "
              f"exec {json.dumps(list(r.exec))}")
    print(f"{args.file}: {len(rules)} rule(s) OK")
    return 0


def cmd_test(args: argparse.Namespace) -> int:
    """Run the hooks that match a synthetic alert and print each result."""
    from grokwatch.daemon.hooks import HookRunner

    rules = _load(args.file)
    if rules is None:
        return 2
    labels = {}
    for item in args.label:
        key, sep, val = item.partition("=")
        if not sep or not key:
            print(f"grokwatch hooks: --label {item!r}: expected KEY=VALUE", file=sys.stderr)
            return 2
        labels[key] = val
    alert = Alert(run=args.run, step=args.step, t=time.time(), kind=args.kind,
                  status=args.status, labels=labels, evidence={"synthetic": True},
                  summary=args.summary or f"synthetic {args.kind} alert from grokwatch hooks test"
                  ).to_wire()
    unknown = sorted(set(args.rule) - {r.name for r in rules})
    if unknown:
        print(f"grokwatch hooks: no rule named {unknown[0]!r} in {args.file}", file=sys.stderr)
        return 2
    matched = [r for r in rules if r.matches(alert) and (not args.rule or r.name in args.rule)]
    if not matched:
        print(f"no rule matches kind={args.kind} run={args.run!r} status={args.status}",
              file=sys.stderr)
        return 3
    # A fresh runner per invocation: cooldowns never hide a test; every match runs at once.
    runner = HookRunner(matched, concurrency=len(matched), queue_max=max(1, len(matched)))
    try:
        runner.submit(alert)
        runner.wait_idle()
    finally:
        runner.close(timeout=0)
    events = runner.drain_events()
    for ev in events:
        if args.json:
            print(json.dumps(ev), flush=True)
        else:
            print(f"{ev['result']:<8} {ev['rule']}  rc={ev['rc']}  attempts={ev['attempts']}  "
                  f"{ev['duration']:.2f}s  {ev['detail']}", flush=True)
    return 0 if events and all(ev["result"] == "ok" for ev in events) else 1
