"""``grokwatch tui --ssh HOST``: the tunnel against a real sshd on a loopback port.

The test starts Debian's ``sshd`` on a free loopback port with a throwaway
host key and client key (``~/.ssh`` is never touched: the client is pointed at
a private config through ``$GROKWATCH_SSH_COMMAND``), and a real daemon as the
"remote" one, on ipc:// sockets (forwarded as unix sockets) or TCP ports.
"""

from __future__ import annotations

import os
import shutil
import socket
import subprocess
import sys
import tempfile
import textwrap
import time
from pathlib import Path

import pytest
import zmq
from gwcli import GROKWATCH

from grokwatch import client
from grokwatch.cli.ssh import SSH_ENV, SSHError, Tunnel
from grokwatch.probe import Probe

SSHD = shutil.which("sshd") or ("/usr/sbin/sshd" if os.path.exists("/usr/sbin/sshd") else None)
KEYGEN = shutil.which("ssh-keygen")
pytestmark = pytest.mark.skipif(
    SSHD is None or KEYGEN is None or shutil.which("ssh") is None,
    reason="OpenSSH server/client not installed (apt-get install openssh-server "
           "openssh-client), so the --ssh tunnel is not tested")


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


class PrivateSSHD:
    """A private sshd on 127.0.0.1 and an ssh client config with Host ``gwtest``."""

    def __init__(self, root: Path, env: dict[str, str]) -> None:
        self.root = root
        self.port = free_port()
        for name in ("host", "client"):
            subprocess.run([KEYGEN, "-q", "-t", "ed25519", "-N", "", "-f", str(root / name)],
                           check=True, timeout=30)
        (root / "authorized_keys").write_text((root / "client.pub").read_text())
        setenv = " ".join(f'"{k}={v}"' for k, v in env.items())
        (root / "sshd_config").write_text(textwrap.dedent(f"""
            Port {self.port}
            ListenAddress 127.0.0.1
            HostKey {root / 'host'}
            PidFile {root / 'sshd.pid'}
            AuthorizedKeysFile {root / 'authorized_keys'}
            PasswordAuthentication no
            KbdInteractiveAuthentication no
            PubkeyAuthentication yes
            PermitRootLogin prohibit-password
            StrictModes no
            UsePAM no
            AllowTcpForwarding yes
            AllowStreamLocalForwarding yes
            SetEnv {setenv}
        """))
        (root / "ssh_config").write_text(textwrap.dedent(f"""
            Host gwtest
                HostName 127.0.0.1
                Port {self.port}
                User {os.environ.get('USER') or _user()}
                IdentityFile {root / 'client'}
                IdentitiesOnly yes
                BatchMode yes
                StrictHostKeyChecking no
                UserKnownHostsFile /dev/null
                LogLevel ERROR
            Host gwtest-down
                HostName 127.0.0.1
                Port {free_port()}
                BatchMode yes
                ConnectTimeout 5
        """))
        self.ssh_command = f"ssh -F {root / 'ssh_config'}"
        self.log = open(root / "sshd.log", "wb")  # noqa: SIM115 (closed in stop)
        self.proc = subprocess.Popen([SSHD, "-D", "-e", "-f", str(root / "sshd_config")],
                                     stdout=self.log, stderr=subprocess.STDOUT)
        deadline = time.monotonic() + 10
        while time.monotonic() < deadline:
            if self.proc.poll() is not None:
                self.log.close()
                raise RuntimeError((root / "sshd.log").read_text())
            try:
                socket.create_connection(("127.0.0.1", self.port), 0.2).close()
                return
            except OSError:
                time.sleep(0.05)
        raise RuntimeError("sshd did not listen")

    def stop(self) -> None:
        self.proc.terminate()
        try:
            self.proc.wait(5)
        except subprocess.TimeoutExpired:
            self.proc.kill()
        self.log.close()


def _user() -> str:
    import pwd
    return pwd.getpwuid(os.getuid()).pw_name


@pytest.fixture
def remote(daemon, monkeypatch):
    """(sshd, daemon): logging in over ssh finds that daemon as its default (env via SetEnv)."""
    if os.geteuid() == 0:
        os.makedirs("/run/sshd", mode=0o755, exist_ok=True)  # sshd's privilege-separation dir
    elif not os.path.isdir("/run/sshd"):
        pytest.skip("sshd needs /run/sshd, which only root can create here")
    root = Path(tempfile.mkdtemp(prefix="gwsshd-"))  # short: unix socket paths stay < 107 bytes
    env = {"GROKWATCH_API": daemon.api, "GROKWATCH_PUB": daemon.pub,
           "PATH": f"{Path(sys.executable).parent}:/usr/local/bin:/usr/bin:/bin"}
    try:
        sshd = PrivateSSHD(root, env)
    except RuntimeError as e:
        shutil.rmtree(root, ignore_errors=True)
        pytest.skip(f"cannot start a private sshd here: {str(e)[-300:]}")
    monkeypatch.setenv(SSH_ENV, sshd.ssh_command)
    yield sshd, daemon
    sshd.stop()
    shutil.rmtree(root, ignore_errors=True)


def feed(daemon, run: str) -> None:
    with Probe(run, endpoint=daemon.ingest) as p:
        for i in range(20):
            p.log(i, train_loss=1.0 / (i + 1))


def runs_via(api: str) -> set[str]:
    r = client.request(api, "runs", timeout=5)
    return {x["run"] for x in r["runs"]}


def one_update(pub: str, timeout: float = 10.0) -> bytes:
    ctx = zmq.Context.instance()
    s = ctx.socket(zmq.SUB)
    s.setsockopt(zmq.SUBSCRIBE, b"")
    s.setsockopt(zmq.LINGER, 0)
    s.connect(pub)
    try:
        if not s.poll(timeout * 1000):
            raise AssertionError("nothing published through the tunnel")
        return s.recv_multipart()[0]
    finally:
        s.close(0)


def test_ipc_endpoints_discovered_and_forwarded_as_sockets(remote):
    sshd, d = remote
    feed(d, "over-ssh")
    with Tunnel("gwtest") as (pub, api):
        assert pub.startswith("ipc://") and api.startswith("ipc://")
        assert pub != d.pub and api != d.api, "local sockets, not the remote's paths"
        assert "over-ssh" in runs_via(api)
        assert one_update(pub)  # the daemon's heartbeat or an update, through the forward
        master = Path(api[len("ipc://"):]).parent
        assert master.exists()
    assert not master.exists(), "the tunnel's temp dir (sockets, control socket) is removed"
    with pytest.raises(client.DaemonUnavailable):
        client.request(api, "ping", timeout=0.5)


def test_tcp_endpoints_forwarded_as_ports(start_daemon, remote):
    sshd, _ = remote
    pub_port, api_port = free_port(), free_port()
    d = start_daemon(args=["--pub", f"tcp://127.0.0.1:{pub_port}",
                           "--api", f"tcp://127.0.0.1:{api_port}", "--insecure-tcp"],
                     wait=False)
    d.pub, d.api = f"tcp://127.0.0.1:{pub_port}", f"tcp://127.0.0.1:{api_port}"
    d.wait_ready()
    feed(d, "over-tcp")
    with Tunnel("gwtest", remote=(d.pub, d.api)) as (pub, api):
        assert pub.startswith("tcp://127.0.0.1:") and pub != d.pub
        assert "over-tcp" in runs_via(api)
        assert one_update(pub)


def test_clear_errors_when_ssh_or_the_remote_daemon_fails(remote):
    sshd, d = remote
    with pytest.raises(SSHError, match=r"ssh gwtest-down failed \(exit 255\): .*refused"):
        Tunnel("gwtest-down").open()
    # reachable host, no daemon answering there: says so and how to go on
    t = Tunnel("gwtest", remote_grokwatch="env GROKWATCH_API=ipc:///nonexistent/api grokwatch",
               status_timeout=1)
    with pytest.raises(SSHError, match=r"is the daemon running there\? or pass --remote"):
        t.open()
    assert t.master is None and t.dir is None, "a failed open leaves nothing behind"
    # the command line: one line on stderr, exit 1, no traceback
    r = subprocess.run([*GROKWATCH, "tui", "--ssh", "gwtest-down"], capture_output=True,
                       text=True, timeout=60, env={**os.environ, SSH_ENV: sshd.ssh_command})
    assert r.returncode == 1, r.stderr
    assert r.stderr.startswith("grokwatch tui: --ssh gwtest-down: ssh gwtest-down failed")
    assert "Traceback" not in r.stderr


def test_tui_command_runs_the_monitor_on_the_tunnel_and_closes_it(remote, monkeypatch):
    # The real command line and tunnel; only the Textual app is replaced by a stand-in
    # that does what the monitor does first: a snapshot request and a subscription.
    sshd, d = remote
    feed(d, "cli-ssh")
    import grokwatch.tui.app as app
    from grokwatch.cli.main import main

    seen = {}

    def monitor(*, api, pub, ascii=False, **kw):
        seen["runs"] = runs_via(api)
        seen["update"] = one_update(pub)
        seen["dir"] = Path(api[len("ipc://"):]).parent

    monkeypatch.setattr(app, "run", monitor)
    assert main(["tui", "--ssh", "gwtest"]) == 0
    assert "cli-ssh" in seen["runs"] and seen["update"]
    assert not seen["dir"].exists(), "tunnel closed when the monitor returned"
    assert main(["tui", "--ssh", "gwtest", "--connect", "127.0.0.1"]) == 2
