"""The unacked buffer: seq order, acks, rewinds and overflow that keeps the hello."""

from __future__ import annotations

import numpy as np
import pytest

from grokwatch import wire
from grokwatch.probe.outbox import Outbox


def filled(n: int, capacity: int = 100) -> Outbox:
    ob = Outbox(capacity)
    ob.put(wire.hello(0, host="h", pid=1))
    for i in range(n):
        ob.put(wire.scalars(0, i, {"x": float(i)}))
    return ob


def seqs(recs) -> list[int]:
    return [r["seq"] for r in recs]


def test_seqs_are_given_in_put_order():
    ob = filled(5)
    assert seqs(ob.unsent) == [1, 2, 3, 4, 5, 6] and ob.seq == 6


def test_take_ack_rewind_keep_seq_order():
    ob = filled(9)
    assert seqs(ob.take(4, 1 << 20)) == [1, 2, 3, 4]
    assert seqs(ob.take(3, 1 << 20)) == [5, 6, 7]
    assert ob.ack(2) == 2 and ob.acked == 2
    assert ob.ack(1) == 0  # stale ack: nothing changes
    assert ob.rewind() == 5
    assert seqs(ob.unsent) == [3, 4, 5, 6, 7, 8, 9, 10] and not ob.inflight
    # An ack after a rewind frees the rewound records too.
    assert ob.ack(6) == 4 and seqs(ob.unsent) == [7, 8, 9, 10]


def test_untake_restores_a_failed_send():
    ob = filled(5)
    first = ob.take(2, 1 << 20)
    second = ob.take(2, 1 << 20)
    ob.untake(second)
    assert seqs(ob.inflight) == seqs(first) and seqs(ob.unsent) == [3, 4, 5, 6]


def test_take_respects_the_byte_budget_but_always_takes_one():
    ob = Outbox(10)
    big = wire.spectrum(0, 0, "s", np.zeros(10_000))
    ob.put(big)
    ob.put(wire.scalars(0, 1, {"x": 1.0}))
    assert seqs(ob.take(10, 1000)) == [1]  # alone over budget, still sent
    assert seqs(ob.take(10, 1000)) == [2]


def test_overflow_drops_oldest_but_keeps_the_hello():
    ob = filled(0, capacity=5)
    ob.take(1, 1 << 20)  # the hello is in flight
    for i in range(10):
        ob.put(wire.scalars(0, i, {"x": 1.0}))
    assert len(ob) == 5 and ob.dropped == 6
    assert seqs(list(ob.inflight) + list(ob.unsent)) == [1, 8, 9, 10, 11]
    ob.ack(1)  # once acknowledged, the hello is an ordinary old record
    for i in range(2):
        ob.put(wire.scalars(0, i, {"x": 1.0}))
    assert seqs(ob.unsent) == [9, 10, 11, 12, 13] and ob.dropped == 7


def test_capacity_must_hold_something():
    with pytest.raises(ValueError):
        Outbox(1)


def test_the_bye_may_exceed_capacity_instead_of_evicting_a_sent_record():
    ob = filled(4, capacity=5)  # hello + 4 scalars: full
    ob.take(5, 1 << 20)  # all sent, none acked yet: the daemon may have stored them
    ob.put(wire.bye(0), over_capacity=True)
    assert ob.dropped == 0 and len(ob) == 6
    assert seqs(list(ob.inflight) + list(ob.unsent)) == [1, 2, 3, 4, 5, 6]
    ob.put(wire.scalars(0, 9, {"x": 1.0}))  # an ordinary record still evicts
    assert ob.dropped >= 1
