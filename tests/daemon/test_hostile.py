"""Issue 11: a hostile local user against a real daemon (one test per finding).

Each test first reproduces the finding's input, then asserts the daemon holds:
still up, the honest stream intact, the refusal counted by reason.
"""

from __future__ import annotations

import math
import time

import zmq
from waiting import wait_for

from grokwatch import wire
from grokwatch.daemon.ingest import Ingest
from grokwatch.daemon.store import open_store
from grokwatch.probe.outbox import Outbox
from grokwatch.probe.sender import Sender
from grokwatch.wire.frames import ack_rejected


def stored(db, run):
    st = open_store(db, readonly=True)
    try:
        return [(sid, seq, kind) for sid, seq, kind, *_ in st.iter_records(run)]
    finally:
        st.close()


class Dealer:
    """A raw probe-like DEALER (its own routing id, as the real probe has)."""

    def __init__(self, endpoint: str, ident: bytes | None = None) -> None:
        self.ctx = zmq.Context()
        self.s = self.ctx.socket(zmq.DEALER)
        self.s.setsockopt(zmq.LINGER, 0)
        if ident is not None:
            self.s.setsockopt(zmq.ROUTING_ID, ident)
        self.s.connect(endpoint)

    def send(self, run, sid, recs, **kw):
        self.s.send(wire.encode_frame(run, sid, recs, **kw))

    def acks(self, wait: float = 1.0):
        out = []
        while self.s.poll(int(wait * 1000)):
            data = self.s.recv()
            out.append((*wire.decode_ack(data), ack_rejected(data)))
            wait = 0.2
        return out

    def close(self):
        self.s.close()
        self.ctx.term()


def now_sc(seq, step, vals):
    return wire.scalars(seq, step, vals, t=time.time())


# ---------------------------------------------------------------- finding 1


def test_far_future_time_with_nan_is_quarantined_not_a_crash_loop(daemon):
    d = Dealer(daemon.ingest, b"gw-honest-1")
    try:
        d.send("r1", 5, [wire.hello(1, host="h", pid=1, modulus=97), now_sc(2, 1, {"loss": 1.0})])
        assert d.acks()[-1][:3] == ("r1", 5, 2)
        # The finding: t=3e11 (year 11476) with a NaN scalar raised in rfc3339, exit 1.
        d.send("r1", 5, [wire.scalars(3, 2, {"loss": math.nan}, t=3e11)])
        acks = d.acks()
        assert acks and acks[-1][3] == [(3, 3)], acks  # acked as rejected: the probe drops it
        assert acks[-1][2] == 3  # the watermark moved past it: no hole, no resend storm
        d.send("r1", 5, [now_sc(4, 3, {"loss": 0.5}), now_sc(5, 4, {"loss": math.nan})])
        assert d.acks()[-1][:3] == ("r1", 5, 5)
    finally:
        d.close()
    assert daemon.proc.poll() is None
    st = daemon.request("status")["status"]
    assert st["rejected"].get("time") == 1 and st["quarantined"] == 1
    assert [q for _, q, _ in stored(daemon.db, "r1")] == [1, 2, 4, 5]
    # A restart replays the store: nothing quarantined is in it, so no crash loop.
    daemon.restart()
    assert daemon.request("ping")["ok"]


def test_every_numeric_field_has_a_range(daemon):
    d = Dealer(daemon.ingest, b"gw-ranges")
    try:
        d.send("rr", 1, [wire.hello(1, host="h", pid=1), now_sc(2, 1, {"a": 1.0})])
        d.acks()
        d.send("rr", 1, [wire.scalars(3, 1, {"a": 1.0}, t=-5.0)])  # before 1970
        d.send("rr", 1, [now_sc(4, 2**60, {"a": 1.0})])  # step beyond 2**53
        d.send("rr", 1, [now_sc(10**15, 3, {"a": 1.0})])  # seq jump of 10**15
        d.send("rr", 1, [now_sc(5, 3, {"a": 1.0})], dropped=10**12)  # more drops than seqs
        d.acks()
        d.send("rr", 1, [now_sc(6, 4, {"a": 2.0})])
        assert d.acks()[-1][2] == 6
    finally:
        d.close()
    st = daemon.request("status")["status"]
    for reason in ("time", "step", "seq_jump", "counter"):
        assert st["rejected"].get(reason) == 1, (reason, st["rejected"])
    runs = {r["run"]: r for r in daemon.request("runs")["runs"]}
    assert runs["rr"]["counters"]["dropped"] == 0
    assert runs["rr"]["step"] == 4


def test_a_frame_whose_processing_raises_is_quarantined(tmp_path):
    """A bug of ours on one frame: counted, acked as rejected, the next frames flow."""

    class Buggy(Ingest):
        def _apply(self, peer, frame, data, now):
            if frame.recs and frame.recs[0].step == 666:
                raise RuntimeError("boom")
            return super()._apply(peer, frame, data, now)

    ing = Buggy(open_store(tmp_path / "g.db"))
    peer = b"p"
    now = time.time()
    ing.handle(peer, wire.encode_frame("b", 1, [wire.scalars(1, 1, {"a": 1.0}, t=now)]))
    ing.handle(peer, wire.encode_frame("b", 1, [wire.scalars(2, 666, {"a": 1.0}, t=now)]))
    ing.handle(peer, wire.encode_frame("b", 1, [wire.scalars(3, 3, {"a": 1.0}, t=now)]))
    acks = ing.commit()
    assert [(wire.decode_ack(a)[2], ack_rejected(a)) for _, a in acks] == [(3, [(2, 2)])]
    assert ing.rejects["internal"] == 1 and ing.internal_errors == 1
    assert ing.records == 2


def test_probe_drops_records_acked_as_rejected(daemon):
    box = Outbox()
    box.put(wire.hello(0, host="h", pid=1))
    box.put(wire.scalars(0, 1, {"a": 1.0}, t=3e11))  # refused for good
    box.put(wire.scalars(0, 2, {"a": 2.0}))
    errors = []
    s = Sender(daemon.ingest, "pr", 9, box, on_error=errors.append)
    try:
        wait_for(lambda: len(box) == 0, timeout=10)
        time.sleep(0.3)
        assert s.rejected == 1 and box.rejected == 1
    finally:
        s.close(1.0)
    assert [q for _, q, _ in stored(daemon.db, "pr")] == [1, 3]
    assert daemon.request("status")["status"]["rejected"] == {"time": 1}
    assert any("refused" in str(e) for e in errors)


# ---------------------------------------------------------------- finding 3


def test_sessions_belong_to_their_sender(daemon):
    from grokwatch.probe import Probe

    p = Probe("victim", endpoint=daemon.ingest, modulus=7)
    try:
        for step in range(20):
            p.log(step, train_loss=1.0 / (step + 1))
        assert p.flush(5.0)
        runs = {r["run"]: r for r in daemon.request("runs")["runs"]}
        assert runs["victim"]["sid"] is None  # sids are not published
        snap = daemon.request("snapshot")
        assert all(r.get("sid") is None and r.get("summary", {}).get("sid") is None
                   for r in snap["runs"])
        # The finding: another peer with the run and sid closes every hole and ends the run.
        evil = Dealer(daemon.ingest, b"gw-evil")
        try:
            evil.send("victim", p.sid, [now_sc(10**15, 1, {"x": 1.0}), wire.bye(10**15 + 1)],
                      dropped=10**15)
            evil.send("victim", p.sid, [wire.bye(22)])
            assert evil.acks(0.5) == []  # refused: not even an ack
        finally:
            evil.close()
        st = daemon.request("status")["status"]
        assert st["rejected"].get("foreign_session") == 2
        for step in range(20, 40):
            p.log(step, train_loss=1.0 / (step + 1))
        assert p.flush(5.0)
        run = {r["run"]: r for r in daemon.request("runs")["runs"]}["victim"]
        assert run["state"] == "live" and run["step"] == 39
        assert run["counters"]["dropped"] == 0 and run["counters"]["gaps"] == 0
    finally:
        p.close()
    kinds = [k for _, _, k in stored(daemon.db, "victim")]
    assert kinds.count("scalars") == 40 and kinds[-1] == "bye"
    assert {r["run"]: r for r in daemon.request("runs")["runs"]}["victim"]["state"] == "finished"


def test_a_bye_from_another_session_does_not_finish_the_run(daemon):
    a = Dealer(daemon.ingest, b"gw-owner")
    b = Dealer(daemon.ingest, b"gw-other")
    try:
        a.send("own", 1, [wire.hello(1, host="h", pid=1), now_sc(2, 1, {"a": 1.0})])
        a.acks()
        b.send("own", 2, [wire.bye(1)])  # a session of its own on the run, only a bye
        b.acks()
        run = {r["run"]: r for r in daemon.request("runs")["runs"]}["own"]
        assert run["state"] == "live"
    finally:
        a.close()
        b.close()


def test_session_owner_survives_a_restart(daemon):
    a = Dealer(daemon.ingest, b"gw-owner-2")
    try:
        a.send("kept", 1, [wire.hello(1, host="h", pid=1), now_sc(2, 1, {"a": 1.0})])
        assert a.acks()[-1][2] == 2
    finally:
        a.close()
    daemon.restart()
    evil = Dealer(daemon.ingest, b"gw-evil-2")
    a = Dealer(daemon.ingest, b"gw-owner-2")
    try:
        evil.send("kept", 1, [now_sc(3, 2, {"a": 1.0})])
        assert evil.acks(0.5) == []
        a.send("kept", 1, [now_sc(3, 2, {"a": 2.0})])
        assert a.acks()[-1][2] == 3
    finally:
        evil.close()
        a.close()
    assert daemon.request("status")["status"]["rejected"] == {"foreign_session": 1}


# ---------------------------------------------------------------- finding 8 (hooks)


BYPASSES = [
    ["sh", "-c", "--", "echo {run}"],  # the finding's three forms
    ["env", "sh", "-c", "echo {run}"],
    ["python3", "-c", "import sys; print('{run}')"],
    ["sh", "-c", "echo \"$1\"", "sh", "{run}"],  # even as $1: a shell is in the argv
    ["env", "-S", "sh -c 'echo {run}'"],
    ["nice", "-n", "5", "bash", "-ec", "echo {step}"],
    ["timeout", "5", "perl", "-e", "print '{kind}'"],
    ["/usr/bin/env", "python3.12", "-c", "{run}"],
    ["xargs", "-I{}", "sh", "-c", "{run}"],
    ["awk", "BEGIN{print \"{run}\"}"],
    ["node", "-e", "{run}"],
]


def test_a_placeholder_never_reaches_a_shell_or_interpreter(tmp_path):
    import shutil

    import pytest

    from grokwatch.daemon.hookrules import HookConfigError, parse_rules

    for argv in BYPASSES:
        if shutil.which(argv[0]) is None:
            continue
        with pytest.raises(HookConfigError, match="shell or interpreter"):
            parse_rules({"hook": [{"on": "*", "exec": argv}]})
    # Without a placeholder a shell is fine (it reads $GROKWATCH_RUN itself), and a
    # placeholder is fine for a program that takes it as data.
    parse_rules({"hook": [{"on": "*", "exec": ["sh", "-c", "echo \"$GROKWATCH_RUN\""]}]})
    parse_rules({"hook": [{"on": "*", "exec": ["echo", "{run}", "{kind}"]}]})


def test_a_run_named_like_code_or_an_option_never_gets_to_a_hook(daemon):
    d = Dealer(daemon.ingest, b"gw-names")
    try:
        for run in ("x; touch pwned", "-rf", "--output=x", "../../etc", "a/b"):
            d.send(run, 1, [wire.hello(1, host="h", pid=1)])
        d.acks(0.5)
    finally:
        d.close()
    runs = {r["run"] for r in daemon.request("runs")["runs"]}
    assert runs == {"x; touch pwned"}  # printable data: the argv rule keeps it data
    assert daemon.request("status")["status"]["rejected"] == {"run_id": 4}


def test_hooks_inherit_an_allow_listed_environment(monkeypatch):
    from grokwatch.daemon.hookrules import hook_env, parse_rules

    monkeypatch.setenv("AWS_SECRET_ACCESS_KEY", "s3cr3t")
    monkeypatch.setenv("GITHUB_TOKEN", "ghp_x")
    monkeypatch.setenv("LC_ALL", "C.UTF-8")
    monkeypatch.setenv("GROKWATCH_API", "ipc:///x")
    rule = parse_rules({"hook": [{"on": "*", "exec": ["true"], "env": {"SLACK": "#ml"}}]})[0]
    env = hook_env({"run": "r", "kind": "onset", "step": 1}, rule)
    assert "AWS_SECRET_ACCESS_KEY" not in env and "GITHUB_TOKEN" not in env
    assert env["PATH"] == __import__("os").environ["PATH"] and env["LC_ALL"] == "C.UTF-8"
    assert env["SLACK"] == "#ml" and env["GROKWATCH_API"] == "ipc:///x"
    assert env["GROKWATCH_RUN"] == "r"
    assert set(env) <= {"PATH", "HOME", "LANG", "TZ", "USER", "LOGNAME", "SLACK"} | {
        k for k in env if k.startswith(("LC_", "GROKWATCH_"))}


def test_hooks_file_writable_by_others_or_owned_by_another_user_is_refused(tmp_path):
    import os

    import pytest

    from grokwatch.daemon.hookrules import HookConfigError, load_rules

    f = tmp_path / "hooks.toml"
    f.write_text('[[hook]]\non = "*"\nexec = ["true"]\n')
    f.chmod(0o600)
    assert len(load_rules(f)) == 1
    for mode in (0o620, 0o602, 0o666):
        f.chmod(mode)
        with pytest.raises(HookConfigError, match="writable by group or others"):
            load_rules(f)
    f.chmod(0o644)
    assert len(load_rules(f)) == 1
    if os.geteuid() == 0:  # root can hand the file to someone else
        os.chown(f, 12345, 12345)
        with pytest.raises(HookConfigError, match="owned by uid 12345"):
            load_rules(f)


# ---------------------------------------------------------------- finding 2


def _store_with_runs(db, n):
    st = open_store(db)
    now = time.time()
    frames, infos, sessions = [], {}, []
    for i in range(n):
        name = f"run-{i}"
        rid = st.run_id(name)
        recs = [wire.hello(1, host="h", pid=i, t=now), wire.scalars(2, 1, {"a": 1.0}, t=now)]
        frames.append((rid, i + 1, 1, 2, 2, now, wire.encode_frame(name, i + 1, recs)))
        infos[name] = {"state": "finished", "step": 1}
        sessions.append((rid, i + 1, 2, 0, 0, 0, [], b"o"))
    st.write_batch({}, infos, sessions, [], [], frames)
    st.close()


def test_restore_is_linear_in_the_number_of_runs(tmp_path):
    cpu = {}
    for n in (1_000, 6_000):
        db = tmp_path / f"{n}.db"
        _store_with_runs(db, n)
        ing = Ingest(open_store(db))
        t0 = time.process_time()
        ing.restore()
        cpu[n] = time.process_time() - t0
        assert len(ing.runs) == n
        assert all(len(rs.sessions) == 1 for rs in ing.runs.values())
    # Linear: 6x the runs, about 6x the time (the quadratic restore took ~17x here).
    assert cpu[6_000] < 10 * cpu[1_000] + 0.05, cpu


# ---------------------------------------------------------------- findings 4 and 7 (bounds)


def test_bounds_refuse_by_reason_and_keep_the_honest_run(tmp_path):
    import numpy as np

    from grokwatch.daemon.ingest import Limits

    lim = Limits(runs=8, runs_per_peer=5, metrics_per_run=10, metrics_total=30,
                 arrays_per_run=3, array_bytes_per_run=3 * 4096, array_bytes_total=5 * 4096)
    ing = Ingest(open_store(tmp_path / "g.db"), limits=lim)
    now = time.time()

    def send(peer, run, sid, recs):
        ing.handle(peer, wire.encode_frame(run, sid, recs), now)

    send(b"honest", "honest", 1, [wire.hello(1, host="h", pid=1, t=now),
                                  wire.scalars(2, 1, {"loss": 1.0}, t=now)])
    for i in range(7):  # runs per peer: 5 from one connection
        send(b"evil", f"e{i}", 1, [wire.scalars(1, 1, {"a": 1.0}, t=now)])
    for i in range(3):  # runs in total: 8 (1 honest + 5 evil + 2 from a second peer)
        send(b"evil2", f"f{i}", 1, [wire.scalars(1, 1, {"a": 1.0}, t=now)])
    assert ing.rejects["runs_per_peer"] == 2 and ing.rejects["runs_total"] == 1
    assert len(ing.runs) == 8
    # Metric names: 10 per run, 30 in all (8 held: loss and 7 a).
    send(b"evil", "e0", 1, [wire.scalars(2, 2, {f"m{j}": 1.0 for j in range(9)}, t=now)])
    send(b"evil", "e0", 1, [wire.scalars(3, 3, {f"n{j}": 1.0 for j in range(5)}, t=now)])
    assert ing.rejects["metrics_per_run"] == 1
    send(b"evil", "e1", 1, [wire.scalars(2, 2, {f"m{j}": 1.0 for j in range(9)}, t=now)])
    send(b"evil", "e2", 1, [wire.scalars(2, 2, {f"m{j}": 1.0 for j in range(9)}, t=now)])
    assert ing.rejects["metrics_total"] == 1
    # Arrays: 3 names and 3 x 4 KiB per run, 5 x 4 KiB in all; a same-name update is free.
    spec = np.zeros(1024, dtype=np.float32)  # 4 KiB
    for j in range(4):
        send(b"evil", "e3", 1, [wire.spectrum(2 + j, 2, f"s{j}", spec, t=now)])
    send(b"evil", "e3", 1, [wire.spectrum(6, 3, "s0", spec, t=now)])
    assert ing.rejects["arrays_per_run"] == 1
    send(b"evil", "e4", 1, [wire.spectrum(2, 2, "s0", np.zeros(2048, np.float32), t=now)])
    send(b"evil", "e4", 1, [wire.spectrum(3, 2, "s1", np.zeros(1024, np.float32), t=now)])
    assert ing.rejects["array_bytes_total"] == 1
    send(b"honest", "honest", 1, [wire.scalars(3, 2, {"loss": 0.5}, t=now)])
    acks = dict((p, a) for p, a in ing.commit())
    assert wire.decode_ack(acks[b"honest"]) == ("honest", 1, 3)
    assert ing.runs["honest"].counters["records"] == 3
    st = ing.status()
    assert st["held"]["metric_names"] == 26 and st["held"]["array_bytes"] <= 5 * 4096


def test_a_message_over_the_frame_cap_never_reaches_the_daemon(daemon):
    big = Dealer(daemon.ingest, b"gw-big")
    d = Dealer(daemon.ingest, b"gw-fine")
    try:
        # Just over the cap: read and counted. Far over it: libzmq cuts the peer before
        # the message is queued (was: 16x the cap accepted, 10,000 queued per peer).
        big.s.send(b"\x00" * (wire.DEFAULT_MAX_FRAME + 10))
        big.s.send(b"\x00" * (4 * wire.DEFAULT_MAX_FRAME))
        time.sleep(0.5)
        d.send("fine", 1, [wire.hello(1, host="h", pid=1), now_sc(2, 1, {"a": 1.0})])
        assert d.acks()[-1][2] == 2
    finally:
        big.close()
        d.close()
    st = daemon.request("status")["status"]
    assert st["rejected"] == {"oversized": 1}


def test_snapshot_is_bounded_so_a_client_always_connects(tmp_path, monkeypatch):
    import numpy as np

    from grokwatch.daemon import api
    from grokwatch.daemon.publisher import Publisher

    monkeypatch.setattr(api, "SNAPSHOT_MAX_RUNS", 4)
    monkeypatch.setattr(api, "SNAPSHOT_MAX_POINTS", 100)
    monkeypatch.setattr(api, "SNAPSHOT_MAX_ARRAY_BYTES", 10_000)
    ing = Ingest(open_store(tmp_path / "g.db"))
    now = time.time()
    for i in range(6):
        ing.handle(b"p%d" % i, wire.encode_frame(f"r{i}", 1, [
            wire.scalars(q, q, {"a": 1.0, "b": 2.0}, t=now) for q in range(1, 31)]
            + [wire.spectrum(31, 31, "s", np.zeros(1000, np.float32), t=now)]), now)
        ing.runs[f"r{i}"].last_heard = now + i  # r5 heard last
    ctx = zmq.Context()
    pub = ctx.socket(zmq.PUB)
    pub.bind("inproc://snap")

    class D:
        pass

    d = D()
    d.ingest, d.publisher = ing, Publisher(pub)
    d.recent_alerts, d.recent_hooks = [], []
    try:
        snap = api.handle_request(d, wire.encode_msg({"op": "snapshot"}))
    finally:
        pub.close()
        ctx.term()
    assert snap["ok"], snap
    assert [r["run"] for r in snap["runs"]] == ["r5", "r4", "r3", "r2"]  # newest first
    full = [r["run"] for r in snap["runs"] if r["series"]]
    assert full == ["r5"]  # 60 points each: the second would pass 100
    assert snap["truncated"] == {"runs_total": 6, "runs_left_out": 2, "runs_summary_only": 3}
    long_glob = api.handle_request(d, wire.encode_msg({"op": "runs", "run": "*" * 800_000}))
    assert not long_glob["ok"] and "longer than" in long_glob["error"]


# ---------------------------------------------------------------- finding 6 (queries)


def _big_store(db, records):
    st = open_store(db)
    rid = st.run_id("big")
    now = time.time()
    frames, seq = [], 0
    for _lo in range(0, records, 2_000):
        recs = []
        for _ in range(2_000):
            seq += 1
            recs.append(wire.scalars(seq, seq, {"a": 1.0, "b": 2.0, "c": 3.0, "d": 4.0}, t=now))
        frames.append((rid, 1, seq - 1_999, seq, 2_000, now, wire.encode_frame("big", 1, recs)))
    st.write_batch({}, {"big": {"state": "finished", "step": seq}},
                   [(rid, 1, seq, 0, 0, 0, [], b"o")], [], [], frames)
    st.close()


def test_acks_keep_flowing_during_a_big_export(start_daemon, tmp_path):
    from pathlib import Path

    h = start_daemon(wait=False)
    h.stop()
    Path(h.db).parent.mkdir(parents=True, exist_ok=True)
    _big_store(h.db, 150_000)  # 600,000 rows
    h.start()
    ctx = zmq.Context()
    q = ctx.socket(zmq.DEALER)
    q.setsockopt(zmq.LINGER, 0)
    q.connect(h.api)
    d = Dealer(h.ingest, b"gw-during-export")
    try:
        d.send("live", 1, [wire.hello(1, host="h", pid=1)])
        d.acks()
        t0 = time.monotonic()
        q.send(wire.encode_msg({"op": "export", "run": "big"}))
        acked_before_reply, seq = 0, 1
        reply = None
        while reply is None and time.monotonic() - t0 < 60:
            seq += 1
            d.send("live", 1, [now_sc(seq, seq, {"a": 1.0})])
            if d.s.poll(100):
                while d.s.poll(0):
                    d.s.recv()
                    acked_before_reply += 1
            if q.poll(0):
                reply = wire.decode_msg(q.recv())
        export_s = time.monotonic() - t0
    finally:
        d.close()
        q.close()
        ctx.term()
    assert reply is not None and reply["ok"], reply
    assert len(reply["rows"]) == 600_000
    # The loop answered the stream while the worker built the export.
    assert acked_before_reply >= max(1, int(export_s / 0.1) // 3), (acked_before_reply, export_s)


# ---------------------------------------------------------------- finding 5 (disk full)


def test_disk_full_keeps_the_daemon_up_and_loses_nothing(start_daemon, tmp_path):
    import subprocess

    import pytest

    from grokwatch.probe import Probe

    mnt = tmp_path / "small"
    mnt.mkdir()
    if subprocess.run(["mount", "-t", "tmpfs", "-o", "size=384k", "tmpfs", str(mnt)],
                      capture_output=True).returncode != 0:
        pytest.skip("cannot mount a small tmpfs here (needs root)")
    try:
        h = start_daemon(args=["--db", str(mnt / "g.db")], lost_after=2.0)
        p = Probe("full", endpoint=h.ingest, capacity=20_000)
        try:
            names = {f"metric_{j:02d}": 0.5 for j in range(60)}
            n = 1_500  # ~1.5 MB of records: far over the 384 KiB filesystem
            for step in range(n):
                p.log(step, **names)
            st = wait_for(lambda: (lambda s: s if s["store_error"] else None)(
                h.request("status")["status"]), timeout=20)
            assert "full" in st["store_error"]["error"].lower(), st["store_error"]
            time.sleep(1.0)
            assert h.proc.poll() is None  # still up
            assert h.request("ping")["ok"]
            assert p.pending > 0  # not acked: the probe keeps what could not be stored
            alerts = h.request("snapshot")["alerts"]
            assert any(a["kind"] == "store_error" and a["status"] == "firing" for a in alerts)
            import sys
            out = subprocess.run([sys.executable, "-m", "grokwatch", "status", "--api", h.api],
                                 capture_output=True, text=True, timeout=60).stdout
            assert "STORE ERROR" in out and "not acking" in out, out
            time.sleep(3.0)  # past --lost-after: the daemon is not reading, so no run is silent
            # Space again: the daemon resumes on its own and stores everything.
            subprocess.run(["mount", "-o", "remount,size=64m", str(mnt)], check=True)
            wait_for(lambda: h.request("status")["status"]["store_error"] is None, timeout=30)
            assert p.flush(30.0)
        finally:
            p.close(10.0)
        alerts = h.request("snapshot")["alerts"]
        assert any(a["kind"] == "store_error" and a["status"] == "resolved" for a in alerts)
        assert not [a for a in alerts if a["kind"] in ("stalled", "lost")], alerts
        h.stop()
        steps = [q for _, q, k in stored(mnt / "g.db", "full") if k == "scalars"]
        assert len(steps) == n and len(set(steps)) == n
        assert "Traceback" not in h.stderr_text()
    finally:
        subprocess.run(["umount", "-l", str(mnt)], capture_output=True)


# ---------------------------------------------------------------- finding 9 (who may connect)


def _daemon_cmd(*args):
    import sys
    return [sys.executable, "-m", "grokwatch", "daemon", *args]


def test_default_endpoints_are_ipc_in_a_private_runtime_dir(tmp_path):
    import os
    import signal
    import stat
    import subprocess

    from grokwatch import client

    run = tmp_path / "run"
    run.mkdir(mode=0o700)
    env = {**os.environ, "XDG_RUNTIME_DIR": str(run), "XDG_STATE_HOME": str(tmp_path / "st"),
           "XDG_CONFIG_HOME": str(tmp_path / "cfg")}
    for k in ("GROKWATCH_ENDPOINT", "GROKWATCH_API", "GROKWATCH_PUB"):
        env.pop(k, None)
    p = subprocess.Popen(_daemon_cmd(), stderr=subprocess.PIPE, env=env)
    try:
        api = f"ipc://{run}/grokwatch/api"
        wait_for(lambda: _ping(api))
        d = run / "grokwatch"
        assert stat.S_IMODE(d.stat().st_mode) == 0o700 and d.stat().st_uid == os.geteuid()
        st = client.request(api, "status")["status"]
        assert st["endpoints"] == {k: f"ipc://{d}/{k}" for k in ("ingest", "pub", "api")}
    finally:
        p.send_signal(signal.SIGTERM)
        p.communicate(timeout=15)
    assert p.returncode == 0
    # A runtime dir another user could write, or owned by another user, is refused.
    (run / "grokwatch").chmod(0o777)
    r = subprocess.run(_daemon_cmd(), capture_output=True, text=True, env=env, timeout=30)
    assert r.returncode == 1 and "open to other users" in r.stderr, r.stderr
    if os.geteuid() == 0:
        (run / "grokwatch").chmod(0o700)
        os.chown(run / "grokwatch", 12345, 12345)
        r = subprocess.run(_daemon_cmd(), capture_output=True, text=True, env=env, timeout=30)
        assert r.returncode == 1 and "belongs to uid 12345" in r.stderr, r.stderr


def _ping(api, timeout=0.3):
    from grokwatch import client
    try:
        return client.request(api, "ping", timeout=timeout)["ok"]
    except client.DaemonUnavailable:
        return False


def _free_ports():
    import socket
    socks = [socket.socket() for _ in range(3)]
    for s in socks:
        s.bind(("127.0.0.1", 0))
    ports = [s.getsockname()[1] for s in socks]
    for s in socks:
        s.close()
    return ports


def test_tcp_needs_curve_keys_and_an_authorized_client(tmp_path, monkeypatch):
    import os
    import signal
    import subprocess

    from grokwatch.probe import Probe
    from grokwatch.wire import security

    ports = _free_ports()
    eps = [f"tcp://127.0.0.1:{p}" for p in ports]
    args = ["--ingest", eps[0], "--pub", eps[1], "--api", eps[2], "--db", str(tmp_path / "t.db")]
    keys = tmp_path / "keys"
    env = {**os.environ, "GROKWATCH_KEYS_DIR": str(keys), "XDG_CONFIG_HOME": str(tmp_path)}
    # No keys: plain tcp is refused (it was open to every local user).
    r = subprocess.run(_daemon_cmd(*args), capture_output=True, text=True, env=env, timeout=30)
    assert r.returncode == 1 and "grokwatch keys" in r.stderr, r.stderr
    # --insecure-tcp: loopback only.
    r = subprocess.run(_daemon_cmd(*args[:1], "tcp://0.0.0.0:1", *args[2:], "--insecure-tcp",
                                   "--allow-remote"), capture_output=True, text=True, env=env,
                       timeout=30)
    assert r.returncode == 1 and "loopback only" in r.stderr, r.stderr
    security.create_keys(keys)
    p = subprocess.Popen(_daemon_cmd(*args), stderr=subprocess.PIPE, env=env)
    try:
        monkeypatch.setenv("GROKWATCH_KEYS_DIR", str(keys))
        wait_for(lambda: _ping(eps[2], 1.0), timeout=20)
        probe = Probe("curved", endpoint=eps[0])
        for step in range(5):
            probe.log(step, train_loss=1.0)
        assert probe.close(10.0)
        # A client without keys, or with keys the daemon never authorized, gets nothing.
        monkeypatch.setenv("GROKWATCH_KEYS_DIR", str(tmp_path / "none"))
        assert not _ping(eps[2], 1.0)
        other = tmp_path / "other"
        security.create_keys(other)
        (other / "server.key").unlink()
        os.symlink(keys / "server.key", other / "server.key")
        monkeypatch.setenv("GROKWATCH_KEYS_DIR", str(other))
        assert not _ping(eps[2], 1.0)
        monkeypatch.setenv("GROKWATCH_KEYS_DIR", str(keys))
        assert _ping(eps[2], 2.0)
    finally:
        p.send_signal(signal.SIGTERM)
        p.communicate(timeout=15)
    assert [k for _, _, k in stored(tmp_path / "t.db", "curved")].count("scalars") == 5


def test_new_runs_are_rate_limited_so_a_run_flood_cannot_starve_the_stream(tmp_path):
    from grokwatch.daemon.ingest import Limits

    ing = Ingest(open_store(tmp_path / "g.db"),
                 limits=Limits(new_runs_burst=3, new_runs_per_s=1e-6))
    now = time.time()
    ing.handle(b"h", wire.encode_frame("honest", 1, [wire.scalars(1, 1, {"a": 1.0}, t=now)]), now)
    for i in range(5):
        ing.handle(b"e%d" % i, wire.encode_frame(f"x{i}", 1, [
            wire.scalars(1, 1, {"a": 1.0}, t=now)]), now)
    ing.handle(b"h", wire.encode_frame("honest", 1, [wire.scalars(2, 2, {"a": 1.0}, t=now)]), now)
    assert ing.rejects["runs_rate"] == 3 and len(ing.runs) == 3
    assert ing.runs["honest"].counters["records"] == 2


def test_sessions_per_run_are_bounded(tmp_path):
    from grokwatch.daemon.ingest import Limits

    ing = Ingest(open_store(tmp_path / "g.db"), limits=Limits(sessions_per_run=4))
    now = time.time()
    for sid in range(1, 10):
        ing.handle(b"p%d" % sid, wire.encode_frame("r", sid, [
            wire.hello(1, host="h", pid=sid, t=now)]), now)
    assert len(ing.runs["r"].sessions) == 4 and ing.rejects["sessions_per_run"] == 5


def test_a_snapshot_flood_cannot_starve_acks(daemon):
    d = Dealer(daemon.ingest, b"gw-runs")
    now = time.time()
    try:
        for i in range(300):  # something to snapshot: 300 runs of 100 points, 4 metrics
            d.send(f"s{i}", 1, [wire.scalars(q, q, {"a": 1.0, "b": 2.0, "c": 3.0, "d": 4.0},
                                             t=now) for q in range(1, 101)])
        d.acks(2.0)
    finally:
        d.close()
    ctx = zmq.Context()
    evil = ctx.socket(zmq.DEALER)
    evil.setsockopt(zmq.LINGER, 0)
    evil.connect(daemon.api)
    for _ in range(300):  # pipelined: the old loop answered 100 per pass, acks waited
        evil.send(wire.encode_msg({"op": "snapshot"}))
    h = Dealer(daemon.ingest, b"gw-honest-snap")
    lat = []
    try:
        for seq in range(1, 61):
            t0 = time.perf_counter()
            h.send("honest", 1, [now_sc(seq, seq, {"a": 1.0})])
            assert h.s.poll(10_000), "no ack in 10 s"
            h.s.recv()
            lat.append(time.perf_counter() - t0)
            time.sleep(0.02)
    finally:
        h.close()
        evil.close()
        ctx.term()
    lat.sort()
    assert lat[int(0.95 * len(lat))] < 1.0, lat[-5:]
    assert daemon.request("ping", timeout=30)["ok"]


def test_sigterm_during_a_long_restore_cleans_up(start_daemon):
    import signal

    h = start_daemon(wait=False)
    h.stop()
    h.db.parent.mkdir(parents=True, exist_ok=True)
    _store_with_runs(h.db, 40_000)
    h.start(wait=False)
    api_sock = h.sockdir / "api"
    wait_for(lambda: api_sock.exists() or h.proc.poll() is not None, timeout=20, every=0.01)
    time.sleep(0.2)
    assert h.proc.poll() is None, "restore finished too soon to test"
    h.proc.send_signal(signal.SIGTERM)
    assert h.proc.wait(20) == 0
    left = sorted(p.name for p in h.sockdir.iterdir())
    assert left == [], left  # ipc sockets and their lock files removed
    assert not (h.db.parent / (h.db.name + ".lock")).exists()
    assert "Traceback" not in h.stderr_text()


def test_a_reconnecting_probe_takes_its_routing_id_over(daemon):
    a = Dealer(daemon.ingest, b"gw-handover")
    try:
        a.send("ho", 1, [wire.hello(1, host="h", pid=1)])
        assert a.acks()[-1][2] == 1
        b = Dealer(daemon.ingest, b"gw-handover")  # the old connection is still open
        try:
            b.send("ho", 1, [now_sc(2, 1, {"a": 1.0})])
            assert b.acks()[-1][2] == 2
        finally:
            b.close()
    finally:
        a.close()


def test_a_flood_of_alerting_runs_cannot_start_a_hook_thousands_of_times(tmp_path):
    from grokwatch.daemon.hookrules import parse_rules
    from grokwatch.daemon.hooks import HookRunner

    rules = parse_rules({"hook": [{"on": "*", "exec": ["true"], "cooldown": 300}]})
    r = HookRunner(rules, rate_per_min=60, queue_max=10_000)
    try:
        for i in range(3_000):  # each its own fingerprint: cooldown does not help
            r.submit({"run": f"nan-{i}", "kind": "diverged", "status": "firing", "step": 1})
        st = r.stats()
        assert st["rate_limited"] == 3_000 - 60
        assert st["queued"] + st["running"] + st["ok"] + st["failed"] <= 60
    finally:
        r.close(2.0)


def test_max_runs_flag(start_daemon):
    h = start_daemon(args=["--max-runs", "2"])
    d = Dealer(h.ingest, b"gw-max")
    try:
        for i in range(3):
            d.send(f"m{i}", 1, [wire.hello(1, host="h", pid=1)])
        d.acks()
    finally:
        d.close()
    st = h.request("status")["status"]
    assert st["runs"] == 2 and st["rejected"] == {"runs_total": 1}
    assert st["limits"]["runs"] == 2


def test_an_api_message_of_many_parts_is_dropped_not_echoed(daemon):
    ctx = zmq.Context()
    s = ctx.socket(zmq.DEALER)
    s.setsockopt(zmq.LINGER, 0)
    s.connect(daemon.api)
    try:
        s.send_multipart([b"x"] * 10_000 + [wire.encode_msg({"op": "ping"})])
        assert not s.poll(1000)  # no reply that would echo 10,000 envelope parts
        s.send(wire.encode_msg({"op": "ping"}))
        assert s.poll(5000) and wire.decode_msg(s.recv())["ok"]
    finally:
        s.close()
        ctx.term()
