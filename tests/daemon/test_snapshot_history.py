"""A history snapshot over its point budget thins runs, never drops their series
(issue 13 item 1: every client gets each run's whole history at any connect time).

Before, a run past the budget came as a bare summary: with ~30 metrics a run, the
TUI's whole-history snapshot left every run after the 86th without a single point.
Real RunStates and a real PUB socket; the budget is lowered to make it bite.
"""

from __future__ import annotations

import types

import zmq

from grokwatch.daemon import api
from grokwatch.daemon.publisher import Publisher
from grokwatch.daemon.runstate import RunState


def test_history_snapshot_thins_to_fit_and_keeps_every_run_whole(monkeypatch, tmp_path):
    ctx = zmq.Context()
    sock = ctx.socket(zmq.PUB)
    sock.bind(f"ipc://{tmp_path}/pub")
    try:
        runs = {}
        for r in range(6):
            rs = RunState(f"run{r}", r + 1)
            for step in range(0, 20_000, 10):
                rs.add_scalars(step, {f"m{k}": float(step + k) for k in range(5)})
            rs.fold()
            runs[rs.name] = rs
        full = sum(len(s) for rs in runs.values() for s in rs.series.values())
        monkeypatch.setattr(api, "SNAPSHOT_MAX_POINTS", full // 4)
        daemon = types.SimpleNamespace(ingest=types.SimpleNamespace(runs=runs),
                                       publisher=Publisher(sock), recent_alerts=[],
                                       recent_hooks=[])
        body = api._snapshot(daemon, {"run": "*", "tail": 256, "history": True})
        assert "truncated" not in body
        sent = 0
        for r in body["runs"]:
            assert len(r["series"]) == 5, r["summary"]["run"]  # no run left bare
            for s in r["series"].values():
                st = s["steps"]
                assert st[0] == 0 and st[-1] == 19_990  # whole run, first to last step
                assert all(b > a for a, b in zip(st, st[1:]))
                assert len({v - t for t, v in zip(st, s["values"])}) == 1  # pairs kept
                sent += len(st)
        assert sent <= full // 4 + 6 * 5  # within the budget (one extra last point each)
        # Under the budget nothing is thinned.
        monkeypatch.setattr(api, "SNAPSHOT_MAX_POINTS", full)
        body = api._snapshot(daemon, {"run": "*", "tail": 256, "history": True})
        assert sum(len(s["steps"]) for r in body["runs"] for s in r["series"].values()) == full
    finally:
        sock.close(0)
        ctx.term()


def test_history_snapshot_brings_every_stored_alert_and_the_client_keeps_them(tmp_path):
    """The daemon keeps 1,000 recent alerts in memory for all runs together; a run's
    early alerts (memorized, onset) fall out of that window in a busy daemon. The
    whole-history snapshot adds them from the store, and the client gives every run
    its own alerts before it trims the all-runs list."""
    from grokwatch.client.state import prepare_snapshot
    from grokwatch.daemon.store import open_store
    from grokwatch.wire import messages

    store = open_store(tmp_path / "s.db")
    try:
        alerts = []
        for i in range(300):  # 3 runs x 100 alerts, oldest first
            run = f"run{i % 3}"
            alerts.append({"run": run, "step": i, "time": "x", "t": 1000.0 + i,
                           "kind": "memorized" if i < 3 else "stalled", "status": "firing",
                           "fingerprint": f"{run}-{i}", "summary": "", "evidence": {},
                           "labels": {}})
        store.write_batch({}, {}, [], alerts, [])
        runs = {f"run{r}": RunState(f"run{r}", r + 1) for r in range(3)}
        ctx = zmq.Context()
        sock = ctx.socket(zmq.PUB)
        try:
            daemon = types.SimpleNamespace(ingest=types.SimpleNamespace(runs=runs),
                                           publisher=Publisher(sock), store=store,
                                           recent_alerts=alerts[-10:], recent_hooks=[])
            tail = api._snapshot(daemon, {"run": "*", "tail": 256, "history": False})
            assert len(tail["alerts"]) == 10  # the live tail snapshot is unchanged
            body = api._snapshot(daemon, {"run": "*", "tail": 256, "history": True})
        finally:
            sock.close(0)
            ctx.term()
        assert [a["t"] for a in body["alerts"]] == [a["t"] for a in alerts]
        prepared = prepare_snapshot(messages.parse_snapshot(body), max_events=50)
        assert len(prepared.events) == 50  # the all-runs list is bounded...
        for r in range(3):  # ...but each run has its early memorized alert
            kinds = [e.kind for e in prepared.runs[f"run{r}"].alerts]
            assert kinds[0] == "memorized" and len(kinds) == 100
    finally:
        store.close()


def test_a_burst_reaches_live_clients_as_its_whole_span():
    """More points between two updates than an update carries (a fast run, a resend):
    the update keeps an even spread from the first to the newest, not the newest only."""
    from grokwatch.daemon.runstate import PENDING_CAP

    rs = RunState("burst", 1)
    for step in range(0, 12_000, 10):
        rs.add_scalars(step, {"train_acc": step / 12_000})
    upd = rs.take_update()
    st = upd["series"]["train_acc"]["steps"]
    assert st[0] == 0 and st[-1] == 11_990 and len(st) <= PENDING_CAP
    assert all(b > a for a, b in zip(st, st[1:]))
    # A second burst into a pending update already part full: still first to newest.
    for step in range(12_000, 14_000, 10):
        rs.add_scalars(step, {"train_acc": 1.0})
    rs.fold()
    for step in range(14_000, 20_000, 10):
        rs.add_scalars(step, {"train_acc": 1.0})
    st = rs.take_update()["series"]["train_acc"]["steps"]
    assert st[0] == 12_000 and st[-1] == 19_990 and len(st) <= PENDING_CAP
