"""The client side against a real daemon: request, and the clone pattern's promise that a
client joining late, or reconnecting, ends with the same state as one there from the start."""

from __future__ import annotations

import time

import numpy as np
import pytest

from grokwatch import client
from grokwatch.client import ClientState, CloneClient
from grokwatch.probe import Probe


def comparable(state: ClientState, tail: int = 256) -> dict:
    """A client's state minus the one field that is a moving measurement (rate), each series
    cut to the snapshot's ``tail`` (a client there from the start holds more)."""
    out = {}
    for name, rv in state.runs.items():
        summary = {k: v for k, v in rv.summary.items() if k != "rate"}
        series = {n: {"steps": s.step_array()[-tail:].tolist(),
                      "values": s.array()[-tail:].tolist()} for n, s in rv.series.items()}
        arrays = [{n: (step, a.tolist()) for n, (step, a) in d.items()}
                  for d in (rv.spectra, rv.points)]
        out[name] = {"summary": summary, "series": series, "spectra": arrays[0],
                     "points": arrays[1]}
    return {"runs": out, "alerts": state.alerts()}


def pump(pairs, seconds):
    end = time.monotonic() + seconds
    while time.monotonic() < end:
        for cc, st in pairs:
            for kind, msg in cc.poll(timeout=0.005):
                st.apply(kind, msg)


def test_request_to_absent_daemon_fails_fast(tmp_path):
    t0 = time.monotonic()
    with pytest.raises(client.DaemonUnavailable):
        client.request(f"ipc://{tmp_path}/nobody", "ping", timeout=0.5)
    assert time.monotonic() - t0 < 2.0


def test_request_errors_are_one_line(daemon):
    with pytest.raises(RuntimeError, match="unknown op"):
        client.request(daemon.api, "launch_missiles")
    with pytest.raises(RuntimeError, match="no run named"):
        client.request(daemon.api, "export", run="nope")
    assert client.request(daemon.api, "ping")["ok"]


def test_late_and_reconnecting_clients_match_the_early_one(daemon):
    early = (CloneClient(daemon.api, daemon.pub), ClientState())
    pump([early], 0.3)
    assert early[1].snapshots == 1 and early[1].runs == {}
    rng = np.random.default_rng(0)
    probes = [Probe(f"clone-{i}", endpoint=daemon.ingest, config={"i": i}, modulus=5)
              for i in range(3)]
    late = reconn = None
    try:
        for step in range(600):
            for i, p in enumerate(probes):
                p.log(step, train_loss=1.0 / (step + 1) + i, train_acc=step / 600)
                # Every 100 steps: geometry metrics, spectra and a constellation.
                p.observe(step, embed=rng.standard_normal((5, 8)))
            if step == 250:
                late = (CloneClient(daemon.api, daemon.pub), ClientState())
                reconn = (CloneClient(daemon.api, daemon.pub), ClientState())
            if step == 400:
                reconn[0].close()  # disconnect, miss a stretch of updates, reconnect
            if step == 480:
                reconn = (CloneClient(daemon.api, daemon.pub), reconn[1])
            live = [early] + [c for c in (late,) if c] + (
                [reconn] if reconn and not (400 <= step < 480) else [])
            for cc, st in live:
                for kind, msg in cc.poll(timeout=0.001):
                    st.apply(kind, msg)
        for p in probes:
            assert p.close(timeout=10)
        pump([early, late, reconn], 1.5)
        assert len(early[1].runs) == 3
        a, b, c = comparable(early[1]), comparable(late[1]), comparable(reconn[1])
        assert a == b
        assert a == c
        run = a["runs"]["clone-1"]
        assert run["summary"]["state"] == "finished" and run["summary"]["step"] == 599
        assert run["series"]["train_acc"]["steps"] == list(range(600 - 256, 600))
        assert run["spectra"] and all(step == 500 for step, _ in run["spectra"].values())
        assert run["points"] and "embed.fourier_conc" in run["summary"]["last"]
        assert reconn[1].snapshots == 2
    finally:
        for p in probes:
            p.close(timeout=0)
        for cc, _ in (early, late, reconn):
            if cc:
                cc.close()


def test_client_resnapshots_after_a_daemon_restart(daemon):
    cc, st = CloneClient(daemon.api, daemon.pub, heartbeat_timeout=1.5), ClientState()
    try:
        with Probe("before", endpoint=daemon.ingest) as p:
            p.log(1, loss=1.0)
        pump([(cc, st)], 0.5)
        assert "before" in st.runs
        first_epoch = cc.epoch
        daemon.restart()
        with Probe("after", endpoint=daemon.ingest) as p:
            p.log(1, loss=2.0)
        deadline = time.monotonic() + 10
        while "after" not in st.runs and time.monotonic() < deadline:
            pump([(cc, st)], 0.2)
        assert set(st.runs) == {"before", "after"}  # history restored, new run seen
        assert st.snapshots >= 2
        assert cc.epoch and cc.epoch != first_epoch  # the state is the new daemon's
    finally:
        cc.close()


def test_client_reports_a_dropped_link_at_once_and_resnapshots_when_back(daemon):
    # A heartbeat timeout far beyond the test: only the SUB socket's monitor can tell.
    cc, st = CloneClient(daemon.api, daemon.pub, heartbeat_timeout=60), ClientState()
    kinds: list[str] = []

    def pump_until(cond, seconds):
        end = time.monotonic() + seconds
        while not cond() and time.monotonic() < end:
            for kind, msg in cc.poll(timeout=0.05):
                kinds.append(kind)
                st.apply(kind, msg)

    try:
        pump_until(lambda: st.snapshots == 1, 5)
        assert cc.linked and st.snapshots == 1
        daemon.stop()
        t0 = time.monotonic()
        pump_until(lambda: "disconnected" in kinds, 5)
        assert "disconnected" in kinds and time.monotonic() - t0 < 5
        assert cc.drops == 1 and not cc.linked and cc.seq == -1
        # While the link is down no snapshot is attempted (it would wait out the timeout).
        t1 = time.monotonic()
        list(cc.poll(timeout=0.05))
        assert time.monotonic() - t1 < 1 and st.snapshots == 1
        daemon.start()
        pump_until(lambda: st.snapshots == 2, 10)
        assert st.snapshots == 2 and cc.connected and cc.linked
    finally:
        cc.close()
