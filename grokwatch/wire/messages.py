"""Messages between the daemon and its clients (filled in by the next commit)."""

from __future__ import annotations

CLIENT_OPS = ("snapshot", "runs", "status", "export", "alerts", "ping")
UPDATE_TOPICS = (b"run", b"alert", b"hook", b"hugz")
