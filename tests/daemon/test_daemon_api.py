"""The daemon's alerts, silence handling, API replies and CLI clients, end to end."""

from __future__ import annotations

import csv
import io
import json
import os
import subprocess
import sys
import threading
import time

from waiting import wait_for

from grokwatch.client import ClientState, CloneClient
from grokwatch.probe import Probe


def cli(*args, timeout=30):
    return subprocess.run([sys.executable, "-m", "grokwatch", *args], capture_output=True,
                          text=True, timeout=timeout, env=os.environ.copy())


def test_alert_is_stored_published_and_listed(daemon):
    cc, st = CloneClient(daemon.api, daemon.pub), ClientState()
    try:
        for kind, msg in cc.poll(0.2):
            st.apply(kind, msg)
        with Probe("nan-run", endpoint=daemon.ingest, config={"lr": 0.5}) as p:
            for s in range(20):
                p.log(s, train_loss=1.0, train_acc=0.1)
            p.log(20, train_loss=float("nan"), train_acc=0.1)
        deadline = time.monotonic() + 5
        while not st.alerts() and time.monotonic() < deadline:
            for kind, msg in cc.poll(0.1):
                st.apply(kind, msg)
    finally:
        cc.close()
    [pub] = st.alerts()
    assert pub["kind"] == "diverged" and pub["step"] == 20 and pub["run"] == "nan-run"
    assert pub["labels"] == {"lr": 0.5}  # the run's config
    stored = daemon.request("alerts", run="nan-*")["alerts"]
    assert stored == [pub]
    assert daemon.request("alerts", run="other-*")["alerts"] == []
    assert daemon.request("alerts", kind="onset")["alerts"] == []
    summary = daemon.request("runs")["runs"][0]
    assert summary["phase"] == "diverged"
    # The alert survives a restart, and the run's phase is rebuilt by its detector.
    daemon.restart()
    assert daemon.request("alerts")["alerts"] == [pub]
    assert daemon.request("runs")["runs"][0]["phase"] == "diverged"
    r = cli("alerts", "--api", daemon.api, "--json")
    assert r.returncode == 0
    assert json.loads(r.stdout)["alerts"][0]["kind"] == "diverged"


def test_silence_makes_stalled_then_lost_and_resume_resolves(start_daemon):
    d = start_daemon(lost_after=1.0)
    p = Probe("quiet", endpoint=d.ingest)
    try:
        p.log(1, loss=1.0)
        run = wait_for(lambda: (lambda r: r if r and r[0]["state"] == "lost" else None)(
            d.request("runs")["runs"]), timeout=10)
        assert run[0]["run"] == "quiet"
        kinds = [(a["kind"], a["status"]) for a in d.request("alerts")["alerts"]]
        assert kinds == [("stalled", "firing"), ("lost", "firing")]
        p.log(2, loss=1.0)
        wait_for(lambda: d.request("runs")["runs"][0]["state"] == "live")
        alerts = wait_for(lambda: (lambda a: a if len(a) == 4 else None)(
            d.request("alerts")["alerts"]))
        assert {(a["kind"], a["status"]) for a in alerts[2:]} == {("stalled", "resolved"),
                                                                  ("lost", "resolved")}
    finally:
        p.close(timeout=5)
    assert d.request("runs")["runs"][0]["state"] == "finished"


def test_cli_runs_status_export_with_and_without_daemon(daemon):
    with Probe("cli-run", endpoint=daemon.ingest, config={"wd": 1.0}) as p:
        for s in range(50):
            p.log(s, train_loss=1.0 / (s + 1), val_acc=0.0)
    r = cli("runs", "--api", daemon.api, "--json")
    assert r.returncode == 0, r.stderr
    [run] = json.loads(r.stdout)
    assert run["run"] == "cli-run" and run["step"] == 49 and run["config"] == {"wd": 1.0}
    r = cli("runs", "--api", daemon.api)
    assert "cli-run" in r.stdout and "finished" in r.stdout
    r = cli("status", "--api", daemon.api, "--json")
    st = json.loads(r.stdout)
    assert st["records"] == 52 and st["runs"] == 1 and st["rejected_total"] == 0
    assert "hooks" in st["queues"]
    r = cli("status", "--api", daemon.api)
    assert "rejected frames 0" in r.stdout
    r = cli("export", "cli-run", "--api", daemon.api, "--metric", "train_loss")
    rows = [json.loads(line) for line in r.stdout.splitlines()]
    assert [row["step"] for row in rows] == list(range(50))
    assert rows[3]["value"] == 0.25
    live_csv = cli("export", "cli-run", "--api", daemon.api, "--format", "csv").stdout
    # The store can be read while the daemon writes it (WAL readers do not block it).
    r = cli("export", "cli-run", "--db", str(daemon.db), "--format", "csv")
    assert r.returncode == 0 and r.stdout == live_csv
    assert daemon.stop() == 0
    # No daemon now: the same answers straight from the store.
    r = cli("runs", "--db", str(daemon.db), "--json")
    assert json.loads(r.stdout)[0]["step"] == 49
    db_csv = cli("export", "cli-run", "--db", str(daemon.db), "--format", "csv").stdout
    assert db_csv == live_csv
    rows = list(csv.DictReader(io.StringIO(db_csv)))
    assert len(rows) == 100 and {r["name"] for r in rows} == {"train_loss", "val_acc"}
    r = cli("export", "nope", "--db", str(daemon.db))
    assert r.returncode == 1 and "no run named" in r.stderr
    r = cli("runs", "--api", daemon.api, "--timeout", "0.5")
    assert r.returncode == 1 and "--db" in r.stderr and "Traceback" not in r.stderr


def test_alerts_follow_streams_json_lines(daemon):
    proc = subprocess.Popen([sys.executable, "-m", "grokwatch", "alerts", "--follow",
                             "--json", "--api", daemon.api, "--pub", daemon.pub],
                            stdout=subprocess.PIPE, text=True)
    guard = threading.Timer(20, proc.kill)  # a missing alert fails the test, never hangs it
    guard.start()
    try:
        time.sleep(1.0)  # let it subscribe
        with Probe("follow-me", endpoint=daemon.ingest) as p:
            p.log(1, train_loss=float("inf"))
        line = proc.stdout.readline()
    finally:
        guard.cancel()
        proc.terminate()
        proc.wait(10)
    alert = json.loads(line)
    assert alert["kind"] == "diverged" and alert["run"] == "follow-me"


def test_bad_client_requests_get_one_line_errors(daemon):
    import zmq

    from grokwatch import wire
    ctx = zmq.Context()
    s = ctx.socket(zmq.DEALER)
    s.setsockopt(zmq.LINGER, 0)
    s.connect(daemon.api)
    try:
        for payload in (b"\xc1not msgpack", wire.encode_msg({"op": 42}),
                        wire.encode_msg({"op": "export", "run": 7}),
                        wire.encode_msg({"op": "snapshot", "tail": -1}),
                        wire.encode_msg({"op": "alerts", "kind": ["x"]})):
            s.send(payload)
            assert s.poll(5000)
            reply = wire.decode_msg(s.recv())
            assert reply["ok"] is False and "\n" not in reply["error"], reply
    finally:
        s.close()
        ctx.term()
    assert daemon.request("ping")["ok"]


def test_default_store_is_under_xdg_state_home(tmp_path):
    import signal
    import stat
    import tempfile
    sock = tempfile.mkdtemp(prefix="gwx-")
    env = {**os.environ, "XDG_STATE_HOME": str(tmp_path / "st"),
           "XDG_CONFIG_HOME": str(tmp_path / "cfg")}
    api = f"ipc://{sock}/a"
    p = subprocess.Popen([sys.executable, "-m", "grokwatch", "daemon", "--ingest",
                          f"ipc://{sock}/i", "--pub", f"ipc://{sock}/p", "--api", api],
                         stderr=subprocess.DEVNULL, env=env)
    try:
        from grokwatch import client
        wait_for(lambda: _ping(client, api))
        db = tmp_path / "st" / "grokwatch" / "grokwatch.db"
        assert db.exists() and stat.S_IMODE(db.stat().st_mode) == 0o600
    finally:
        p.send_signal(signal.SIGTERM)
        assert p.wait(10) == 0


def _ping(client, api):
    try:
        return client.request(api, "ping", timeout=0.3)["ok"]
    except client.DaemonUnavailable:
        return False


def test_snapshot_tail_and_history(daemon):
    with Probe("long", endpoint=daemon.ingest) as p:
        for s in range(3000):
            p.log(s, loss=float(s))
    snap = daemon.request("snapshot", tail=10)
    [run] = snap["runs"]
    assert run["series"]["loss"]["steps"] == list(range(2990, 3000))
    hist = daemon.request("snapshot", run="long", history=True)["runs"][0]["series"]["loss"]
    steps = hist["steps"]
    assert steps[0] < 300 and steps[-512:] == list(range(2488, 3000))  # whole run, bounded
    assert len(steps) <= 512 + 256 and steps == sorted(steps)
    assert daemon.request("snapshot", run="other*")["runs"] == []


def test_a_quiet_runs_rate_decays_to_zero_in_clients(daemon):
    cc, st = CloneClient(daemon.api, daemon.pub), ClientState()

    def rate():
        for kind, msg in cc.poll(0.05):
            st.apply(kind, msg)
        summary = st.summary("quiet-rate")
        return summary and summary["rate"]

    p = Probe("quiet-rate", endpoint=daemon.ingest)  # left open: the run stays live
    try:
        wait_for(lambda: (rate(), st.snapshots)[1])
        for s in range(200):
            p.log(s, train_loss=1.0)
            time.sleep(0.005)
        assert wait_for(lambda: (rate() or 0) > 10)
        # Nothing more arrives: the published rate must fall to 0 without new records.
        wait_for(lambda: rate() == 0.0, timeout=8)
        assert st.summary("quiet-rate")["state"] == "live"
    finally:
        p.close(timeout=2)
        cc.close()
