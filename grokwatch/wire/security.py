"""Who may connect: a private per-user directory for ipc://, CURVE keys for tcp://.

* **ipc (the default).** The daemon's sockets live in ``$XDG_RUNTIME_DIR/grokwatch``
  (or ``/tmp/grokwatch-$UID``), a directory of mode 0700 owned by the user: other
  users cannot connect at all. Both sides refuse a directory someone else owns or
  can write (it could hold a fake daemon, or let others in).
* **tcp.** ZeroMQ CURVE: ``grokwatch keys`` makes a server key pair and a client
  key pair in ``$XDG_CONFIG_HOME/grokwatch/keys`` (0700) and authorizes the client
  key (``.../keys/authorized/*.key``: the daemon accepts only those). Probes and
  clients find the daemon's public key and their own key pair there, or through
  ``GROKWATCH_SERVER_KEY`` (the daemon's ``server.key``) and
  ``GROKWATCH_CLIENT_KEY`` (a ``*.key_secret`` file). Plain TCP only with
  ``grokwatch daemon --insecure-tcp``, on loopback.

Key files are ZeroMQ's certificate format (``zmq.auth.create_certificates``).
"""

from __future__ import annotations

import os
import stat
import tempfile
from pathlib import Path
from typing import Any

RUNTIME_ENV = "XDG_RUNTIME_DIR"
KEYS_DIR_ENV = "GROKWATCH_KEYS_DIR"  # default $XDG_CONFIG_HOME/grokwatch/keys
SERVER_KEY_ENV = "GROKWATCH_SERVER_KEY"  # the daemon's public key file (clients, probes)
CLIENT_KEY_ENV = "GROKWATCH_CLIENT_KEY"  # this side's secret key file (clients, probes)
SERVER_NAME = "server"  # server.key / server.key_secret
CLIENT_NAME = "client"  # client.key / client.key_secret
AUTHORIZED = "authorized"  # keys_dir()/authorized/*.key: the client keys the daemon accepts


class InsecureDirectory(OSError):
    """A socket or key directory that another user owns or may write."""


def runtime_dir() -> Path:
    """Where the daemon's ipc sockets live by default (not created here)."""
    base = os.environ.get(RUNTIME_ENV)
    if base and os.path.isdir(base) and os.path.isabs(base):
        return Path(base) / "grokwatch"
    return Path(tempfile.gettempdir()) / f"grokwatch-{os.getuid()}"


def default_endpoint(name: str) -> str:
    """``ipc://<runtime dir>/<name>``: the default ingest, pub and api endpoints."""
    return f"ipc://{runtime_dir() / name}"


def check_private(path: Path, *, create: bool = False) -> None:
    """Make sure ``path`` is a directory only this user can enter and write.

    With ``create``, a missing directory is made 0700. Raises :class:`InsecureDirectory`
    (one line) for a directory owned by another user or open to group or others.
    """
    path = Path(path)
    if create:
        try:
            path.mkdir(mode=0o700, parents=True)
        except FileExistsError:
            pass
    st = os.lstat(path)
    if not stat.S_ISDIR(st.st_mode):
        raise InsecureDirectory(f"{path} is not a directory")
    if st.st_uid != os.geteuid():
        raise InsecureDirectory(f"{path} belongs to uid {st.st_uid}, not to this user "
                                f"({os.geteuid()}): refusing to use it")
    if st.st_mode & 0o077:
        raise InsecureDirectory(f"{path} is open to other users (mode "
                                f"{st.st_mode & 0o777:o}); chmod 700 {path}")


def check_ipc(endpoint: str) -> None:
    """For an ``ipc://`` endpoint in a directory: that directory must be private."""
    if endpoint.startswith("ipc://") and not endpoint.startswith("ipc://@"):
        parent = Path(endpoint[len("ipc://"):]).parent
        if parent.exists():
            check_private(parent)


def keys_dir() -> Path:
    """``$GROKWATCH_KEYS_DIR``, else ``$XDG_CONFIG_HOME/grokwatch/keys``."""
    d = os.environ.get(KEYS_DIR_ENV)
    if d:
        return Path(d)
    base = os.environ.get("XDG_CONFIG_HOME") or os.path.join(os.path.expanduser("~"), ".config")
    return Path(base) / "grokwatch" / "keys"


def authorized_dir() -> Path:
    """The daemon accepts CURVE clients whose public ``*.key`` files are in here."""
    return keys_dir() / AUTHORIZED


def _load(path: Path) -> tuple[bytes, bytes | None]:
    import zmq.auth
    public, secret = zmq.auth.load_certificate(str(path))
    return public, secret


def server_public_key() -> bytes | None:
    """The daemon's public key for a client or probe (None when none is set up)."""
    p = os.environ.get(SERVER_KEY_ENV)
    path = Path(p) if p else keys_dir() / f"{SERVER_NAME}.key"
    if not path.is_file():
        return None
    return _load(path)[0]


def client_keypair() -> tuple[bytes, bytes] | None:
    """This client's (public, secret) CURVE keys (None when none is set up)."""
    p = os.environ.get(CLIENT_KEY_ENV)
    path = Path(p) if p else keys_dir() / f"{CLIENT_NAME}.key_secret"
    if not path.is_file():
        return None
    public, secret = _load(path)
    return (public, secret) if secret else None


def server_keypair() -> tuple[bytes, bytes] | None:
    """The daemon's own (public, secret) keys from :func:`keys_dir` (None if absent)."""
    path = keys_dir() / f"{SERVER_NAME}.key_secret"
    if not path.is_file():
        return None
    public, secret = _load(path)
    return (public, secret) if secret else None


def secure_client(sock: Any, endpoint: str) -> bool:
    """Set up a client or probe socket for ``endpoint`` before it connects.

    tcp: CURVE with the daemon's public key and this side's key pair when both are
    found (returns True); otherwise the socket stays plain (only a daemon started
    with ``--insecure-tcp`` will talk to it). ipc: refuses a socket directory that
    is not private (:class:`InsecureDirectory`).
    """
    if endpoint.startswith("ipc://"):
        check_ipc(endpoint)
        return False
    if not endpoint.startswith("tcp://"):
        return False
    server = server_public_key()
    mine = client_keypair()
    if server is None or mine is None:
        return False
    sock.curve_serverkey = server
    sock.curve_publickey, sock.curve_secretkey = mine
    return True


def create_keys(directory: Path | None = None) -> dict[str, Path]:
    """Make the server and client key pairs (kept if present) and authorize the client.

    Returns the paths: server/client public and secret files and the authorized copy.
    """
    import shutil

    import zmq.auth

    d = Path(directory) if directory is not None else keys_dir()
    check_private(d, create=True)
    auth = d / AUTHORIZED
    check_private(auth, create=True)
    out: dict[str, Path] = {}
    for name in (SERVER_NAME, CLIENT_NAME):
        pub, sec = d / f"{name}.key", d / f"{name}.key_secret"
        if not sec.is_file():
            old = os.umask(0o077)
            try:
                zmq.auth.create_certificates(str(d), name)
            finally:
                os.umask(old)
        os.chmod(sec, 0o600)
        out[name], out[f"{name}_secret"] = pub, sec
    mine = auth / f"{os.uname().nodename}-{CLIENT_NAME}.key"
    if not mine.exists():
        shutil.copyfile(d / f"{CLIENT_NAME}.key", mine)
    out["authorized"] = mine
    return out
