"""``grokwatch tui --ssh HOST``: an SSH tunnel to a remote daemon, opened and closed for the TUI.

The system's OpenSSH client does the work, so ``~/.ssh/config``, agents, jump
hosts and password prompts behave as with plain ``ssh HOST``. One connection
(a control master in a private 0700 temp dir) carries everything:

1. ``ssh -N -M -S CTL HOST``: authenticate once (prompts, if any, on the terminal);
2. unless the remote endpoints are given (``--remote PUB,API``), ask the remote
   daemon for them through that connection: ``ssh -S CTL HOST grokwatch status
   --json`` (the remote's own defaults and environment decide: TCP ports or
   ``ipc://`` sockets in a runtime dir);
3. ``ssh -S CTL -O forward -L ...`` per endpoint: a TCP endpoint to a free
   loopback port here, an ``ipc://`` socket to a unix socket in the temp dir;
4. on exit, ``ssh -S CTL -O exit HOST``, and the temp dir is removed.

``$GROKWATCH_SSH_COMMAND`` replaces ``ssh`` (shell words, e.g. ``ssh -F cfg``),
like git's ``GIT_SSH_COMMAND``. Every failure is an :class:`SSHError` whose
message says what failed, with ssh's own last words.
"""

from __future__ import annotations

import json
import os
import shlex
import shutil
import socket
import subprocess
import tempfile
import time
from pathlib import Path

SSH_ENV = "GROKWATCH_SSH_COMMAND"
CONNECT_TIMEOUT = 60.0  # s for authentication (a person may be typing a password)


class SSHError(RuntimeError):
    """The tunnel could not be opened; ``str(e)`` is one line for the user."""


def ssh_command() -> list[str]:
    """The ssh client argv: ``$GROKWATCH_SSH_COMMAND`` split as shell words, else ``ssh``."""
    cmd = shlex.split(os.environ.get(SSH_ENV, "") or "ssh")
    if shutil.which(cmd[0]) is None:
        raise SSHError(f"no ssh client found ({cmd[0]!r} is not on PATH)")
    return cmd


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def _last_line(text: str) -> str:
    lines = [ln.strip() for ln in text.splitlines() if ln.strip()]
    return lines[-1] if lines else ""


class Tunnel:
    """``with Tunnel(host) as (pub, api):`` local endpoints forwarded to the remote daemon's."""

    def __init__(self, host: str, *, remote: tuple[str, str] | None = None,
                 remote_grokwatch: str = "grokwatch", status_timeout: float = 5.0,
                 connect_timeout: float = CONNECT_TIMEOUT) -> None:
        if not host or host.startswith("-"):
            raise SSHError(f"bad host {host!r}")
        self.host = host
        self.remote = remote
        self.remote_grokwatch = remote_grokwatch
        self.status_timeout = status_timeout
        self.connect_timeout = connect_timeout
        self.ssh = ssh_command()
        self.dir: Path | None = None
        self.master: subprocess.Popen | None = None
        self.local: tuple[str, str] | None = None

    # ------------------------------------------------------------ public

    def __enter__(self) -> tuple[str, str]:
        return self.open()

    def __exit__(self, *exc: object) -> None:
        self.close()

    def open(self) -> tuple[str, str]:
        """Connect, find the remote endpoints, forward them; returns the local (pub, api)."""
        self.dir = Path(tempfile.mkdtemp(prefix="gwssh-"))  # 0700; ipc paths stay short
        try:
            self._start_master()
            pub, api = self.remote or self._discover()
            self.local = (self._forward("pub", pub), self._forward("api", api))
        except BaseException:
            self.close()  # a failed open leaves no connection and no temp dir
            raise
        return self.local

    def close(self) -> None:
        """Close the forwards and the connection; remove the temp dir. Idempotent."""
        if self.master is not None:
            if self.master.poll() is None:
                try:
                    self._mux("-O", "exit", timeout=5)
                except (SSHError, subprocess.TimeoutExpired):
                    pass
                try:
                    self.master.wait(5)
                except subprocess.TimeoutExpired:
                    self.master.terminate()
                    try:
                        self.master.wait(5)
                    except subprocess.TimeoutExpired:
                        self.master.kill()
                        self.master.wait(5)
            if self.master.stderr is not None:
                self.master.stderr.close()
            self.master = None
        if self.dir is not None:
            shutil.rmtree(self.dir, ignore_errors=True)
            self.dir = None

    # ------------------------------------------------------------ steps

    @property
    def ctl(self) -> str:
        return str(self.dir / "ctl")

    def _start_master(self) -> None:
        argv = [*self.ssh, "-N", "-M", "-S", self.ctl, "-o", "ControlPersist=no",
                "-o", "ExitOnForwardFailure=yes", "-o", "ServerAliveInterval=15",
                "-o", "StreamLocalBindUnlink=yes", self.host]
        self.master = subprocess.Popen(argv, stdin=subprocess.DEVNULL,
                                       stdout=subprocess.DEVNULL, stderr=subprocess.PIPE)
        deadline = time.monotonic() + self.connect_timeout
        while time.monotonic() < deadline:
            if self.master.poll() is not None:
                err = self.master.stderr.read().decode(errors="replace")
                raise SSHError(f"ssh {self.host} failed (exit {self.master.returncode}): "
                               f"{_last_line(err) or 'no message'}")
            if os.path.exists(self.ctl):
                r = self._mux("-O", "check", timeout=10, check=False)
                if r.returncode == 0:
                    return
            time.sleep(0.05)
        raise SSHError(f"ssh {self.host}: not connected after {self.connect_timeout:g} s")

    def _mux(self, *args: str, timeout: float = 30, check: bool = True,
             remote_cmd: list[str] | None = None) -> subprocess.CompletedProcess:
        argv = [*self.ssh, "-S", self.ctl, *args, self.host, *(remote_cmd or [])]
        r = subprocess.run(argv, stdin=subprocess.DEVNULL, capture_output=True,
                           timeout=timeout)
        if check and r.returncode != 0:
            what = " ".join(args + tuple(remote_cmd or ()))
            raise SSHError(f"ssh {self.host} {what}: "
                           f"{_last_line(r.stderr.decode(errors='replace')) or 'failed'}")
        return r

    def _discover(self) -> tuple[str, str]:
        """The remote daemon's (pub, api), from its own ``grokwatch status --json``."""
        cmd = [*shlex.split(self.remote_grokwatch), "status", "--json",
               "--timeout", f"{self.status_timeout:g}"]
        r = self._mux(timeout=self.status_timeout + 30, check=False,
                      remote_cmd=[shlex.join(cmd)])
        out, err = r.stdout.decode(errors="replace"), r.stderr.decode(errors="replace")
        if r.returncode != 0:
            raise SSHError(f"on {self.host}, `{shlex.join(cmd)}` failed (exit {r.returncode}): "
                           f"{_last_line(err) or _last_line(out) or 'no message'} "
                           "(is the daemon running there? or pass --remote PUB,API)")
        try:
            body = json.loads(out)
            body = body.get("status", body)
            eps = body["endpoints"]
            return str(eps["pub"]), str(eps["api"])
        except (ValueError, KeyError, TypeError, AttributeError):
            raise SSHError(f"on {self.host}, `{shlex.join(cmd)}` did not report the daemon's "
                           "endpoints (pass --remote PUB,API)") from None

    def _forward(self, name: str, remote: str) -> str:
        """Forward one remote endpoint; returns the local endpoint."""
        if remote.startswith("tcp://"):
            hostport = remote[len("tcp://"):]
            rhost, _, rport = hostport.rpartition(":")
            rhost = rhost.strip("[]")
            if rhost in ("*", "0.0.0.0", "::", ""):
                rhost = "127.0.0.1"
            if not rport.isdigit():
                raise SSHError(f"cannot forward {remote!r}: no port")
            lport = _free_port()
            host_part = f"[{rhost}]" if ":" in rhost else rhost
            self._mux("-O", "forward", "-L", f"127.0.0.1:{lport}:{host_part}:{rport}")
            return f"tcp://127.0.0.1:{lport}"
        if remote.startswith("ipc://"):
            local = self.dir / name
            self._mux("-O", "forward", "-L", f"{local}:{remote[len('ipc://'):]}")
            return f"ipc://{local}"
        raise SSHError(f"cannot forward {remote!r}: only tcp:// and ipc:// endpoints")
