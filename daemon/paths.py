"""Where the daemon keeps things: XDG state dir, default store path, endpoint checks."""

from __future__ import annotations

import ipaddress
import os
from pathlib import Path

LOOPBACK_HOSTS = ("localhost", "127.0.0.1", "::1", "[::1]")


def state_dir() -> Path:
    """``$XDG_STATE_HOME/grokwatch``, falling back to ``~/.local/state/grokwatch``."""
    base = os.environ.get("XDG_STATE_HOME") or os.path.join(Path.home(), ".local", "state")
    return Path(base) / "grokwatch"


def default_db_path() -> Path:
    """The default store file."""
    return state_dir() / "grokwatch.db"


def endpoint_host(endpoint: str) -> str | None:
    """The host part of a ``tcp://host:port`` endpoint; ``None`` for other transports."""
    if not endpoint.startswith("tcp://"):
        return None
    rest = endpoint[len("tcp://"):]
    if rest.startswith("["):  # [v6]:port
        return rest[1:rest.find("]")] if "]" in rest else rest
    return rest.rsplit(":", 1)[0]


def is_local(endpoint: str) -> bool:
    """True for ``ipc://``, ``inproc://`` and loopback TCP; the only binds allowed by default."""
    if endpoint.startswith(("ipc://", "inproc://")):
        return True
    host = endpoint_host(endpoint)
    if host is None:
        return False
    if host in LOOPBACK_HOSTS:
        return True
    try:
        return ipaddress.ip_address(host).is_loopback
    except ValueError:
        return False  # '*', interface names, other host names


def ipc_path(endpoint: str) -> Path | None:
    """The filesystem path of an ``ipc://`` endpoint (``None`` for other transports)."""
    if endpoint.startswith("ipc://") and not endpoint.startswith("ipc://@"):
        return Path(endpoint[len("ipc://"):])
    return None
