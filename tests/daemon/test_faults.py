"""Faults and hostile input against a real daemon subprocess (issue 3's list)."""

from __future__ import annotations

import os
import random
import signal
import sqlite3
import stat
import subprocess
import sys
import tempfile
import time

import msgpack
import pytest
import zmq
from waiting import wait_for

from grokwatch import client, wire
from grokwatch.daemon.store import open_store
from grokwatch.probe import Probe


def stored_seqs(db, run):
    """(sid, seq) of every stored record of a run, read from the store file."""
    st = open_store(db, readonly=True)
    try:
        return [(sid, seq) for sid, seq, *_ in st.iter_records(run)]
    finally:
        st.close()


# ---------------------------------------------------------------- hostile frames


def hostile_frames(rng: random.Random, n: int) -> list[bytes]:
    """A mix of every kind of bad frame the issue lists."""
    good = wire.encode_frame("h", 1, [wire.scalars(1, 1, {"a": 1.0})])
    makers = [
        lambda: rng.randbytes(rng.randint(1, 200)),  # random bytes
        lambda: good[: rng.randint(1, len(good) - 1)],  # truncated msgpack
        lambda: msgpack.packb({"v": 1, "run": "h", "sid": 1,
                               "recs": [{"k": "scalars", "seq": 1, "t": 0.0, "step": 1,
                                         "vals": {f"m{i}": 1.0 for i in range(5000)}}]}),  # huge map
        lambda: msgpack.packb(_deep(200)),  # deep nesting
        lambda: msgpack.packb({"v": 1, "run": "h", "sid": "one", "recs": []}),  # wrong type
        lambda: msgpack.packb({"v": 1, "run": "h", "sid": 1, "recs": [
            {"k": "scalars", "seq": 1, "t": 0.0, "step": "x", "vals": {}}]}),
        lambda: msgpack.packb({"v": rng.randint(2, 1000), "run": "h", "sid": 1, "recs": []}),
        lambda: msgpack.packb({"run": "h", "sid": 1, "recs": []}),  # no version
        lambda: msgpack.packb({"v": 1, "run": "h", "sid": 1, "recs": [
            {"k": "spectrum", "seq": 1, "t": 0.0, "step": 1, "name": "s",
             "arr": {"dt": "<f4", "sh": [10], "b": b"\x00" * 39}}]}),  # length mismatch
        lambda: msgpack.packb({"v": 1, "run": "bad\x00run", "sid": 1, "recs": []}),
        lambda: msgpack.packb({"v": 1, "run": "h", "sid": 1, "recs": [
            {"k": "telepathy", "seq": 1, "t": 0.0}]}),
        lambda: msgpack.packb({"v": 1, "run": "h", "sid": 1, "recs": [
            {"k": "bye", "seq": 2, "t": 0.0}, {"k": "bye", "seq": 1, "t": 0.0}]}),
    ]
    out = [rng.choice(makers)() for _ in range(n - 20)]
    big = b"\x00" * (wire.DEFAULT_MAX_FRAME + 10)  # over the cap
    out += [big] * 20
    rng.shuffle(out)
    return out


def _deep(n):
    d: dict = {"x": 1}
    for _ in range(n):
        d = {"x": d}
    return {"v": 1, "run": "h", "sid": 1, "recs": [
        {"k": "hello", "seq": 1, "t": 0.0, "host": "h", "pid": 1, "config": d, "start": 0.0}]}


def expected_reason(data: bytes) -> str:
    try:
        wire.decode_frame(data)
    except wire.WireError as e:
        return e.reason
    return "accepted"


def test_10000_hostile_frames_interleaved_with_a_valid_stream(daemon):
    rng = random.Random(1234)
    bad = hostile_frames(rng, 10_000)
    expected: dict[str, int] = {}
    for b in bad:
        r = expected_reason(b)
        expected[r] = expected.get(r, 0) + 1
    assert "accepted" not in expected
    assert len(expected) >= 6  # many different reasons exercised
    n_valid, per = 200, 10
    ctx = zmq.Context()
    s = ctx.socket(zmq.DEALER)
    s.setsockopt(zmq.LINGER, 1000)
    s.connect(daemon.ingest)
    seq = 0
    every = len(bad) // n_valid
    try:
        for i in range(n_valid):
            for b in bad[i * every:(i + 1) * every]:
                s.send(b)
            recs = []
            for _ in range(per):
                seq += 1
                recs.append(wire.scalars(seq, seq, {"loss": 1.0 / seq, "acc": 0.5}))
            s.send(wire.encode_frame("valid", 77, recs))
        for b in bad[n_valid * every:]:
            s.send(b)
        s.send_multipart([b"three", b"part", b"message"])  # not a frame at all
        st = wait_for(lambda: (lambda x: x if x["rejected_total"] >= 10_001 and x["records"]
                               >= n_valid * per else None)(daemon.request("status")["status"]))
        # Every ack the daemon sent is for the valid session only.
        acks = []
        while s.poll(200):
            acks.append(wire.decode_ack(s.recv()))
    finally:
        s.close()
        ctx.term()
    expected["malformed"] = expected.get("malformed", 0) + 1
    assert st["rejected"] == expected
    assert st["records"] == n_valid * per
    assert acks and {(r, sid) for r, sid, _ in acks} == {("valid", 77)}
    assert max(a[2] for a in acks) == n_valid * per
    assert daemon.proc.poll() is None  # still up and serving
    assert daemon.request("ping")["ok"]
    seqs = [q for _, q in stored_seqs(daemon.db, "valid")]
    assert seqs == list(range(1, n_valid * per + 1))
    assert daemon.stop() == 0


# ---------------------------------------------------------------- restarts with a live probe


def _stream_through_outage(daemon, how: str, n: int = 3000, capacity: int = 20_000):
    """Log ``n`` steps over ~2 s; stop the daemon (``how``) a third in, restart it later."""
    p = Probe(f"run-{how}", endpoint=daemon.ingest, config={"how": how}, capacity=capacity,
              ack_timeout=1.0)
    try:
        for step in range(n):
            p.log(step, train_loss=1.0 / (step + 1), train_acc=min(1.0, step / 1000))
            if step == n // 3:
                if how == "kill":
                    daemon.kill()
                else:
                    assert daemon.stop(signal.SIGTERM) == 0
            if step == n // 2:
                daemon.restart()
            time.sleep(0.0006)
        assert p.close(timeout=15.0), p.stats()
        return p.stats()
    finally:
        p.close(timeout=0)


@pytest.mark.parametrize("how", ["term", "kill"])
def test_restart_mid_stream_loses_nothing_and_doubles_nothing(daemon, how):
    stats = _stream_through_outage(daemon, how)
    assert stats["dropped"] == 0
    total = stats["seq"]  # hello + n scalars + bye
    daemon.stop()
    rows = stored_seqs(daemon.db, f"run-{how}")
    assert len(rows) == len(set(rows)) == total
    assert [q for _, q in rows] == list(range(1, total + 1))
    # Restart once more: the history is there again for clients.
    daemon.restart()
    summary = daemon.request("runs")["runs"][0]
    assert summary["step"] == 2999 and summary["state"] == "finished"
    assert summary["counters"]["gaps"] == 0
    export = daemon.request("export", run=f"run-{how}", metric="train_loss")["rows"]
    assert [r["step"] for r in export] == list(range(3000))


def test_overflow_during_outage_shows_drops_and_gaps(daemon):
    p = Probe("overflow", endpoint=daemon.ingest, capacity=100, ack_timeout=1.0)
    try:
        for step in range(50):
            p.log(step, loss=1.0)
        wait_for(lambda: p.stats()["acked"] >= 51)
        assert daemon.stop() == 0
        for step in range(50, 1050):  # 1,000 records into a 100-record buffer
            p.log(step, loss=1.0)
        daemon.restart()
        assert p.close(timeout=15.0)
        stats = p.stats()
    finally:
        p.close(timeout=0)
    assert stats["dropped"] > 800
    run = wait_for(lambda: (lambda r: r if r["state"] == "finished" else None)(
        daemon.request("runs")["runs"][0]))
    assert run["counters"]["dropped"] == stats["dropped"]
    assert run["counters"]["gaps"] == stats["dropped"]  # every dropped seq is a counted gap
    seqs = [q for _, q in stored_seqs(daemon.db, "overflow")]
    assert len(seqs) + stats["dropped"] == stats["seq"]
    alerts = daemon.request("alerts", kind="dropped")["alerts"]
    assert alerts and alerts[0]["run"] == "overflow"


# ---------------------------------------------------------------- refusals at start


def _run_cli(args, env=None, timeout=30):
    return subprocess.run([sys.executable, "-m", "grokwatch", *args], capture_output=True,
                          text=True, timeout=timeout, env={**os.environ, **(env or {})})


def test_store_file_mode_0600(daemon):
    assert stat.S_IMODE(daemon.db.stat().st_mode) == 0o600


@pytest.mark.parametrize("kind", ["garbage", "foreign"])
def test_corrupt_or_foreign_db_is_one_line_error(tmp_path, kind):
    db = tmp_path / "bad.db"
    if kind == "foreign":
        con = sqlite3.connect(db)
        con.execute("CREATE TABLE t(x)")
        con.commit()
        con.close()
    else:
        db.write_bytes(b"garbage, not a database " * 200)
    before = db.read_bytes()
    sock = tempfile.mkdtemp(prefix="gwt-")
    r = _run_cli(["daemon", "--db", str(db), "--ingest", f"ipc://{sock}/i", "--pub",
                  f"ipc://{sock}/p", "--api", f"ipc://{sock}/a"],
                 env={"XDG_CONFIG_HOME": str(tmp_path)})
    assert r.returncode == 1
    lines = r.stderr.strip().splitlines()
    assert len(lines) == 1 and "Traceback" not in r.stderr, r.stderr
    assert str(db) in lines[0]
    assert db.read_bytes() == before  # untouched
    for cmd in (["runs", "--db", str(db)], ["export", "x", "--db", str(db)]):
        r = _run_cli(cmd)
        assert r.returncode == 1 and len(r.stderr.strip().splitlines()) == 1, r.stderr
        assert "Traceback" not in r.stderr


def test_second_daemon_on_same_endpoints_fails_clearly(daemon, tmp_path):
    r = _run_cli(["daemon", "--ingest", daemon.ingest, "--pub", daemon.pub, "--api", daemon.api,
                  "--db", str(tmp_path / "other.db")])
    assert r.returncode == 1
    assert "already" in r.stderr and "Traceback" not in r.stderr
    assert daemon.request("ping")["ok"]  # the first one is unharmed


def test_second_daemon_on_same_tcp_port_fails_clearly(tmp_path):
    port = _free_port()
    eps = [f"tcp://127.0.0.1:{port}", f"tcp://127.0.0.1:{port + 1}", f"tcp://127.0.0.1:{port + 2}"]
    env = {"XDG_CONFIG_HOME": str(tmp_path / "cfg")}
    first = subprocess.Popen([sys.executable, "-m", "grokwatch", "daemon", "--ingest",
                              eps[0], "--pub", eps[1], "--api", eps[2], "--db",
                              str(tmp_path / "a.db"), "--insecure-tcp"], stderr=subprocess.PIPE,
                             env={**os.environ, **env})
    try:
        wait_for(lambda: _pings(eps[2]))
        r = _run_cli(["daemon", "--ingest", eps[0], "--pub", eps[1], "--api", eps[2], "--db",
                      str(tmp_path / "b.db"), "--insecure-tcp"], env=env)
        assert r.returncode == 1
        assert "address in use" in r.stderr and "Traceback" not in r.stderr
    finally:
        first.send_signal(signal.SIGTERM)
        assert first.wait(10) == 0


def _pings(api):
    try:
        return client.request(api, "ping", timeout=0.3)["ok"]
    except client.DaemonUnavailable:
        return False


def _free_port():
    import socket
    for _ in range(50):
        base = random.randint(20000, 60000)
        ok = True
        for k in range(3):
            with socket.socket() as s:
                try:
                    s.bind(("127.0.0.1", base + k))
                except OSError:
                    ok = False
        if ok:
            return base
    raise RuntimeError("no free ports")


def test_non_loopback_bind_refused_without_allow_remote(tmp_path):
    r = _run_cli(["daemon", "--ingest", "tcp://0.0.0.0:7799", "--db", str(tmp_path / "x.db")],
                 env={"XDG_CONFIG_HOME": str(tmp_path)})
    assert r.returncode == 1
    assert "--allow-remote" in r.stderr and "Traceback" not in r.stderr
    assert not (tmp_path / "x.db").exists()  # refused before touching anything


def test_allow_remote_needs_curve_keys(tmp_path):
    """Issue 11 finding 9: --allow-remote used to bind plain TCP with a warning."""
    port = _free_port()
    eps = [f"tcp://0.0.0.0:{port}", f"tcp://127.0.0.1:{port + 1}", f"tcp://127.0.0.1:{port + 2}"]
    cmd = [sys.executable, "-m", "grokwatch", "daemon", "--allow-remote", "--ingest", eps[0],
           "--pub", eps[1], "--api", eps[2], "--db", str(tmp_path / "x.db")]
    env = {**os.environ, "XDG_CONFIG_HOME": str(tmp_path)}
    env.pop("GROKWATCH_KEYS_DIR", None)
    r = subprocess.run(cmd, capture_output=True, text=True, env=env, timeout=30)
    assert r.returncode == 1 and "grokwatch keys" in r.stderr and "Traceback" not in r.stderr
    assert subprocess.run([sys.executable, "-m", "grokwatch", "keys"], env=env,
                          capture_output=True).returncode == 0
    p = subprocess.Popen(cmd, stderr=subprocess.PIPE, text=True, env=env)
    try:
        wait_for(lambda: p.poll() is not None or "CURVE" in _peek_status(eps[2], tmp_path))
    finally:
        p.send_signal(signal.SIGTERM)
        _, err = p.communicate(timeout=10)
    assert p.returncode == 0, err


def _peek_status(api, cfg_home):
    old = os.environ.get("XDG_CONFIG_HOME")
    os.environ["XDG_CONFIG_HOME"] = str(cfg_home)  # this client's keys from `grokwatch keys`
    try:
        st = client.request(api, "status", timeout=0.5)["status"]
        return "CURVE" if st["security"]["curve"] else ""
    except client.DaemonUnavailable:
        return ""
    finally:
        if old is None:
            os.environ.pop("XDG_CONFIG_HOME", None)
        else:
            os.environ["XDG_CONFIG_HOME"] = old


def test_invalid_hooks_file_exits_2_with_one_line(start_daemon, tmp_path):
    hooks = tmp_path / "hooks.toml"
    hooks.write_text('[[hook]]\nname = "x"\nkinds = ["no-such-kind"]\nargv = ["true"]\n')
    h = start_daemon(hooks=hooks, wait=False)
    assert h.proc.wait(20) == 2
    err = h.stderr_text().strip()
    assert len(err.splitlines()) == 1 and "Traceback" not in err, err


def test_sigint_and_sigterm_exit_0_after_commit(daemon):
    with Probe("graceful", endpoint=daemon.ingest) as p:
        for s in range(500):
            p.log(s, loss=1.0)
    assert daemon.stop(signal.SIGINT) == 0
    assert len(stored_seqs(daemon.db, "graceful")) == 502  # hello + 500 + bye
    st = open_store(daemon.db, readonly=True)
    assert st.load_runs()["graceful"]["state"] == "finished"
