"""Who may connect to the daemon (issue 11 finding 9).

* ipc:// endpoints (the default) sit in a directory only this user can enter:
  created 0700, refused when another user owns it or it is open to others.
* tcp:// endpoints need ZeroMQ CURVE: the daemon's key pair from ``grokwatch keys``
  and a ZAP handler (``zmq.auth.thread.ThreadAuthenticator``) that accepts only
  the client keys in the authorized directory. Plain TCP only with
  ``--insecure-tcp``, and then only on loopback; any non-loopback address also
  needs ``--allow-remote``.
"""

from __future__ import annotations

import logging
from pathlib import Path
from typing import Any

import zmq

from grokwatch.daemon import paths
from grokwatch.wire import security

log = logging.getLogger("grokwatch.daemon")


class AuthError(RuntimeError):
    """A refused endpoint set-up; one line for the user."""


def check_endpoints(endpoints: list[str], *, insecure_tcp: bool, allow_remote: bool) -> bool:
    """Validate the endpoints before anything is bound; return True when CURVE is needed."""
    curve = False
    for ep in endpoints:
        p = paths.ipc_path(ep)
        if p is not None:
            try:
                security.check_private(p.parent, create=True)
            except OSError as e:
                raise AuthError(f"cannot use {ep}: {e}") from None
            continue
        if not ep.startswith("tcp://"):
            continue
        local = paths.is_local(ep)
        if not local and not allow_remote:
            raise AuthError(f"refusing to bind {ep}: not loopback or ipc:// "
                            "(pass --allow-remote to expose it; it will need CURVE keys)")
        if insecure_tcp:
            if not local:
                raise AuthError(f"refusing to bind {ep} without encryption: --insecure-tcp "
                                "is for loopback only (drop it to use CURVE keys)")
            continue
        curve = True
    if curve and security.server_keypair() is None:
        raise AuthError(f"tcp:// endpoints need CURVE keys: run `grokwatch keys` (makes "
                        f"{security.keys_dir()}), or pass --insecure-tcp for loopback, or "
                        "use the default ipc:// endpoints")
    return curve


class Curve:
    """The daemon's CURVE identity and its ZAP handler (one per context)."""

    def __init__(self, ctx: zmq.Context) -> None:
        from zmq.auth.thread import ThreadAuthenticator

        keys = security.server_keypair()
        if keys is None:
            raise AuthError("no server key pair: run `grokwatch keys`")
        self.public, self.secret = keys
        self.authorized = security.authorized_dir()
        try:
            security.check_private(self.authorized.parent, create=True)
            security.check_private(self.authorized, create=True)
        except OSError as e:
            raise AuthError(f"authorized keys: {e}") from None
        n = len(list(self.authorized.glob("*.key")))
        if n == 0:
            log.warning("no client keys in %s: no tcp client can connect", self.authorized)
        self.auth = ThreadAuthenticator(ctx, log=logging.getLogger("grokwatch.zap"))
        self.auth.start()
        self.auth.configure_curve(domain="*", location=str(self.authorized))
        log.info("CURVE on tcp endpoints: %d authorized client key(s) in %s", n,
                 self.authorized)

    def serve(self, sock: Any) -> None:
        """Make ``sock`` a CURVE server (before bind)."""
        sock.curve_secretkey = self.secret
        sock.curve_publickey = self.public
        sock.curve_server = True

    def stop(self) -> None:
        self.auth.stop()


def keys_summary(created: dict[str, Path]) -> str:
    """What ``grokwatch keys`` prints."""
    import zmq.auth

    pub = zmq.auth.load_certificate(str(created["server"]))[0].decode()
    cli = zmq.auth.load_certificate(str(created["client"]))[0].decode()
    return "\n".join([
        f"keys in {created['server'].parent} (0700)",
        f"  daemon  public {pub}  ({created['server'].name}; secret {created['server_secret'].name})",
        f"  client  public {cli}  ({created['client'].name}; secret {created['client_secret'].name})",
        f"  authorized client keys: {created['authorized'].parent}/ (this client's is there)",
        "a probe or client elsewhere needs the daemon's server.key and its own key pair:",
        "  export GROKWATCH_SERVER_KEY=/path/to/server.key "
        "GROKWATCH_CLIENT_KEY=/path/to/client.key_secret",
        "and its client.key copied into the daemon's authorized directory (then restart it).",
    ])
