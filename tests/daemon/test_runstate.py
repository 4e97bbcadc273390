"""Session bookkeeping: duplicates, holes, when a hole becomes a counted gap, the ack."""

from __future__ import annotations

from grokwatch.daemon.runstate import RunState, Session


def test_in_order_and_duplicates():
    s = Session()
    assert all(s.accept(q, 0.0) for q in range(1, 11))
    assert not s.accept(5, 0.0) and not s.accept(10, 0.0)
    assert s.watermark() == 10 and s.gaps == 0 and s.missing() == 0


def test_hole_fills_from_a_resend_and_holds_the_ack_back():
    s = Session()
    for q in range(1, 51):
        s.accept(q, 0.0)
    for q in range(101, 111):  # 51..100 lost in transit: still in the probe's buffer
        s.accept(q, 0.0)
    assert s.watermark() == 50  # acking 110 would make the probe forget 51..100
    assert s.missing() == 50 and s.gaps == 0
    for q in range(51, 101):
        assert s.accept(q, 0.0)
    assert s.watermark() == 110 and s.missing() == 0 and s.gaps == 0
    assert not s.accept(75, 0.0)


def test_fill_in_the_middle_splits_the_hole():
    s = Session()
    s.accept(1, 0.0)
    s.accept(10, 0.0)
    assert s.accept(5, 0.0)
    assert s.holes == [[2, 4], [6, 9]]
    assert s.watermark() == 1


def test_close_below_between_oldest_and_stale():
    s = Session()
    s.accept(1, 0.0)
    s.accept(100, 0.0)  # hole 2..99
    assert s.close_between([1, 40, 41]) == 38  # 2..39 lie between two records of one frame
    assert s.holes == [[40, 99]] and s.gaps == 38
    assert s.close_oldest(10) == 10
    assert s.holes == [[50, 99]] and s.gaps == 48
    assert s.close_below(60) == 10
    assert s.holes == [[60, 99]]
    s.accept(200, 15.0)  # second hole 101..199, opened at t=15
    assert s.close_stale(now=20.0, timeout=10.0) == 40  # only the first is older than 10 s
    assert s.holes == [[101, 199]] and s.watermark() == 100
    assert s.gaps == 98


def test_runstate_pending_update_is_consumed():
    rs = RunState("r", 1)
    rs.add_scalars(1, {"a": 1.0, "b": 2.0})
    rs.add_scalars(2, {"a": 3.0})
    upd = rs.take_update()
    assert upd["series"]["a"] == {"steps": [1, 2], "values": [1.0, 3.0]}
    assert upd["run"] == "r" and upd["summary"]["step"] == 2 and upd["summary"]["last"] == {"a": 3.0, "b": 2.0}
    assert rs.take_update()["series"] == {}
    assert rs.series_tail(1)["a"] == {"steps": [2], "values": [3.0]}


def test_rate_is_a_sliding_window_that_decays_to_zero_when_the_run_goes_quiet():
    rs = RunState("r", 1)
    t0 = rs._rate_since
    for i in range(40):  # 100 records/s for 4 s
        rs.count_records(10, t0 + 0.1 * i)
    assert abs(rs.rate(t0 + 3.95) - 100) < 10
    assert 20 < rs.rate(t0 + 5.0) < 80  # half the window quiet
    assert rs.rate(t0 + 7.0) == 0.0  # the window has passed with nothing in it
    rs.count_records(5, t0 + 8.0)
    assert rs.rate(t0 + 9.0) > 0


def test_a_young_run_is_averaged_over_its_age():
    rs = RunState("r", 1)
    t0 = rs._rate_since
    for i in range(5):
        rs.count_records(10, t0 + 0.1 * i)
    assert abs(rs.rate(t0 + 0.5) - 100) < 1


def test_a_quiet_run_is_republished_with_its_rate_at_zero():
    rs = RunState("r", 1)
    t0 = rs._rate_since
    for i in range(20):
        rs.count_records(10, t0 + 0.1 * i)
    rs.add_scalars(1, {"loss": 1.0})
    assert rs.take_update(t0 + 2.0)["summary"]["rate"] > 0 and not rs.dirty
    assert not rs.refresh_rate(t0 + 2.0)  # as published: nothing to do
    assert rs.refresh_rate(t0 + 10.0) and rs.dirty  # quiet: clients must see it drop
    upd = rs.take_update(t0 + 10.0)
    assert upd["run"] == rs.name and upd["summary"]["rate"] == 0.0 and upd["series"] == {}
    assert not rs.refresh_rate(t0 + 20.0)  # 0 published: a quiet run stays quiet
