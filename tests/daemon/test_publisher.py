"""The update stream: global seq, per-run coalescing, hugz, round-robin budget."""

from __future__ import annotations

import time

import zmq

from grokwatch import wire
from grokwatch.daemon.publisher import Publisher
from grokwatch.daemon.runstate import RunState


def pair(name):
    ctx = zmq.Context.instance()
    pub = ctx.socket(zmq.PUB)
    pub.bind(f"inproc://{name}")
    sub = ctx.socket(zmq.SUB)
    sub.setsockopt(zmq.SUBSCRIBE, b"")
    sub.connect(f"inproc://{name}")
    time.sleep(0.05)
    return pub, sub


def drain(sub):
    out = []
    while sub.poll(50):
        topic, body = sub.recv_multipart()
        out.append((topic, wire.decode_msg(body)))
    return out


def test_updates_are_coalesced_per_run_and_carry_every_point():
    pub, sub = pair("coalesce")
    p = Publisher(pub, min_interval=0.1)
    rs = RunState("r", 1)
    t0 = time.monotonic()
    step = 0
    while time.monotonic() - t0 < 0.5:  # a run logging ~1,000 steps/s for half a second
        rs.add_scalars(step, {"loss": float(step)})
        step += 1
        p.flush_runs({"r": rs})
        time.sleep(0.001)
    p.flush_runs({"r": rs}, force=True)
    msgs = drain(sub)
    runs = [m for t, m in msgs if t == b"run"]
    assert 3 <= len(runs) <= 8  # ~10/s, not one per step
    steps = [s for m in runs for s in m["series"]["loss"]["steps"]]
    assert steps == list(range(step))  # nothing lost by coalescing
    seqs = [m["seq"] for _, m in msgs]
    assert seqs == list(range(1, len(seqs) + 1))
    assert all(m["epoch"] == p.epoch for _, m in msgs)
    pub.close(0)
    sub.close(0)


def test_hugz_repeats_the_latest_seq_and_alerts_go_at_once():
    pub, sub = pair("hugz")
    p = Publisher(pub, hugz_interval=0.0)
    p.alert({"run": "r", "kind": "onset"})
    p.hook({"run": "r", "result": "ok"})
    assert p.maybe_hugz()
    msgs = drain(sub)
    assert [t for t, _ in msgs] == [b"alert", b"hook", b"hugz"]
    assert [m["seq"] for _, m in msgs] == [1, 2, 2]
    pub.close(0)
    sub.close(0)


def test_budget_serves_every_run_round_robin():
    pub, sub = pair("budget")
    p = Publisher(pub, min_interval=0.0)
    runs = {f"r{i}": RunState(f"r{i}", i) for i in range(10)}
    for rs in runs.values():
        rs.add_scalars(1, {"x": 1.0})
    published = []
    for _ in range(5):
        p.flush_runs(runs, budget=2)
        published += [m["run"] for t, m in drain(sub) if t == b"run"]
    assert sorted(published) == sorted(runs)  # 5 calls x 2 = all 10, none twice
    pub.close(0)
    sub.close(0)
