#!/usr/bin/env python3
"""grokwatch hook: append each alert to a JSON-lines journal.

    exec = ["./log_alert.py", "--out", "/path/to/alerts.jsonl"]

Reads the alert document from stdin (see hooks.toml), adds the GROKWATCH_RULE
that sent it, and appends it as one line, so that `jq` or pandas can read the
history later. Exits non-zero on a malformed document so that the daemon
retries and then logs the failure. Standard library only.
"""

import argparse
import json
import os
import sys


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--out", required=True, help="JSON-lines file to append to")
    args = ap.parse_args()
    try:
        alert = json.load(sys.stdin)
    except ValueError as e:
        print(f"log_alert: stdin is not a JSON alert: {e}", file=sys.stderr)
        return 1
    alert["received_by"] = os.environ.get("GROKWATCH_RULE", "")
    # One write() of one line: concurrent hooks appending to the same file do not interleave.
    with open(args.out, "a", encoding="utf-8") as f:
        f.write(json.dumps(alert, ensure_ascii=False) + "\n")
    return 0


if __name__ == "__main__":
    sys.exit(main())
