#!/bin/sh
# grokwatch hook: say that an alert fired, wherever you like.
#
#   exec = ["./notify.sh", "{kind}", "{run}", "{step}"]
#
# The run name arrives as "$2" (a single argument, whatever it contains) and
# as $GROKWATCH_RUN; always quote them. The full alert is JSON on stdin.
# Set WEBHOOK_URL (via the rule's env table) to post the alert JSON to a chat
# webhook with curl; otherwise this uses notify-send if present, else stderr.
set -eu

kind="$1"; run="$2"; step="$3"
msg="grokwatch: $kind on run '$run' at step $step: ${GROKWATCH_SUMMARY:-}"

if [ -n "${WEBHOOK_URL:-}" ]; then
    # The alert document from stdin goes out as the request body, untouched.
    exec curl -fsS --max-time 20 -H 'Content-Type: application/json' --data-binary @- "$WEBHOOK_URL"
fi
if command -v notify-send >/dev/null 2>&1 && [ -n "${DISPLAY:-}${WAYLAND_DISPLAY:-}" ]; then
    exec notify-send "grokwatch: $kind" "$msg"
fi
printf '%s\n' "$msg" >&2
