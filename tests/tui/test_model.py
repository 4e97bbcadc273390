"""The client-side state (ClientState, the TUI's model): snapshot, updates, bounds, events."""

from __future__ import annotations

import math

import numpy as np
import tuidata as D

from grokwatch import wire
from grokwatch.client.state import MAX_POINTS, ClientState, Series, prepare_snapshot


def test_snapshot_builds_runs_series_arrays_and_events():
    m = ClientState()
    m.apply_snapshot(D.snapshot())
    assert sorted(m.runs) == ["grok-wd1", "memo-wd0", "nan-lr1"]
    rv = m.runs["grok-wd1"]
    assert rv.phase == "grokking" and rv.get("onset_step") == 1200
    assert len(rv.series["val_acc"]) == 200
    assert rv.spectra["neurons.fourier"][1].shape == (48,)
    assert rv.points["neurons.constellation"][1].shape == (97, 2)
    # Alerts and hook results merged, oldest first; per-run alerts exclude hooks.
    kinds = [e.kind for e in m.events]
    assert kinds == ["memorized", "memorized", "onset", "hook", "diverged"]
    assert [e.kind for e in rv.alerts] == ["memorized", "onset"]
    assert m.connected


def test_run_update_appends_only_new_points_and_bumps_version():
    m = ClientState()
    m.apply_snapshot(D.snapshot())
    rv = m.runs["memo-wd0"]
    v0, n0 = rv.version, len(rv.series["val_acc"])
    upd = D.update(D.summary("memo-wd0", step=2000, val_acc=0.06), seq=6,
                   series={"val_acc": {"steps": [2000], "values": [0.06]}})
    assert m.apply("run", upd) == "memo-wd0"
    assert len(rv.series["val_acc"]) == n0 + 1
    assert rv.series["val_acc"].array()[-1] == 0.06
    assert rv.get("step") == 2000 and rv.version == v0 + 1


def test_unknown_run_in_update_is_added():
    m = ClientState()
    m.apply_snapshot({"seq": 0, "runs": [], "alerts": [], "hooks": []})
    v = m.version
    m.apply("run", D.update(D.summary("new-run")))
    assert "new-run" in m.runs and m.version > v


def test_bad_messages_are_ignored_not_raised():
    m = ClientState()
    m.apply_snapshot({"seq": 0, "runs": [{"no": "name"}, 5], "alerts": [7], "hooks": None})
    assert m.runs == {}
    assert m.apply("run", {"run": "no-summary"}) is None
    assert m.apply("run", {"run": {"run": "a summary where the name goes"}}) is None
    assert m.apply("run", {"run": "r", "summary": D.summary("other")}) is None
    assert m.apply("alert", {"alert": None}) is None
    m.apply("run", D.update(D.summary("r"), spectra={"x": {"step": 1, "arr": {"dt": "|O"}}}))
    assert "x" not in m.runs["r"].spectra  # a bad array is refused, the rest applied


def test_nan_values_survive():
    m = ClientState()
    m.apply("run", D.update(D.summary("r"),
                            series={"train_loss": {"steps": [1, 2], "values": [1.0, math.nan]}}))
    a = m.runs["r"].series["train_loss"].array()
    assert a[0] == 1.0 and math.isnan(a[1])


def test_series_is_bounded_and_spans_the_whole_run():
    s = Series()
    s.extend(range(MAX_POINTS + 500), np.arange(MAX_POINTS + 500, dtype=float))
    assert MAX_POINTS // 2 <= len(s) <= MAX_POINTS
    assert s.first_step == 0 and s.last_step == MAX_POINTS + 499  # thinned, not cut
    assert np.array_equal(s.array(), s.step_array().astype(float))


def test_disconnect_keeps_state_and_snapshot_replaces_it():
    m = ClientState()
    m.apply_snapshot(D.snapshot())
    m.apply("disconnected", {})
    assert not m.connected and len(m.runs) == 3  # last state kept
    m.apply_snapshot(D.snapshot(n_runs=1))
    assert m.connected and list(m.runs) == ["grok-wd1"] and m.snapshots == 2


def test_alert_and_hook_updates():
    m = ClientState()
    m.apply_snapshot(D.snapshot())
    m.apply("alert", {"seq": 9, "alert": D.alert("memo-wd0", "stalled", 300, D.T0 + 99)})
    m.apply("hook", {"seq": 10, "hook": D.hook("memo-wd0", D.T0 + 100, result="timeout")})
    assert [e.kind for e in list(m.events)[-2:]] == ["stalled", "hook"]
    assert "timeout" in m.events[-1].text
    assert m.runs["memo-wd0"].alerts[-1].kind == "stalled"


def test_packed_arrays_roundtrip_in_run_update():
    m = ClientState()
    arr = np.array([3.0, 1.0, 2.0], dtype=np.float32)
    m.apply("run", D.update(D.summary("r"),
                            spectra={"e.sv": {"step": 5, "arr": wire.pack_array(arr)}}))
    step, got = m.runs["r"].spectra["e.sv"]
    assert step == 5 and np.array_equal(got, arr)


def test_series_skips_bad_points_and_keeps_steps_aligned():
    s = Series()
    s.extend([1, "x", 3, 4], [1.0, 2.0, "nan?", None])
    assert list(s.step_array()) == [1, 3, 4] and len(s.array()) == 3
    v = s.array()
    assert v[0] == 1.0 and math.isnan(v[1]) and math.isnan(v[2])


def test_series_keeps_first_newest_and_an_even_spread_across_thinnings():
    s = Series(maxlen=100)
    rng = np.random.default_rng(1)
    step = 0
    for _ in range(300):  # many small and some large batches, through several thinnings
        k = int(rng.integers(1, 5)) if rng.random() < 0.9 else int(rng.integers(90, 250))
        batch = list(range(step, step + k))
        step += k
        s.extend(batch, [float(x) for x in batch])
        st = s.step_array()
        assert len(s) <= 100 and st[0] == 0 and st[-1] == step - 1
        assert np.all(np.diff(st) > 0)
        assert list(s.array()) == [float(x) for x in st]
        assert s.first_step == 0 and s.last_step == step - 1
    # No stretch of the run is left without points: the widest gap is a few strides.
    st = s.step_array()
    assert len(s) >= 40 and np.diff(st).max() <= 4 * step / len(s)


def test_prepared_snapshot_applies_like_the_raw_one():

    a, b = ClientState(), ClientState()
    a.apply_snapshot(D.snapshot())
    b.apply("snapshot", prepare_snapshot(D.snapshot()))
    assert sorted(a.runs) == sorted(b.runs) and b.snapshots == 1 and b.connected
    assert [e.kind for e in a.events] == [e.kind for e in b.events]
    assert np.array_equal(a.runs["grok-wd1"].series["val_acc"].array(),
                          b.runs["grok-wd1"].series["val_acc"].array())
    assert [e.kind for e in b.runs["grok-wd1"].alerts] == ["memorized", "onset"]


def test_new_events_are_what_the_last_message_brought():
    m = ClientState()
    m.apply("snapshot", D.snapshot())
    assert [e.kind for e in m.new_events] == ["memorized", "memorized", "onset", "hook",
                                              "diverged"]
    m.apply("alert", {"seq": 9, "alert": D.alert("memo-wd0", "stalled", 300, D.T0 + 99)})
    assert [e.raw["kind"] for e in m.new_events] == ["stalled"]
    m.apply("run", D.update(D.summary("memo-wd0", step=2001)))
    assert m.new_events == [] and m.summary("memo-wd0")["step"] == 2001
    assert m.summary("nobody") is None
    assert [a["kind"] for a in m.alerts()][-1] == "stalled" and len(m.hooks()) == 1


def test_bounds_are_the_states_own():
    m = ClientState(max_points=8, max_events=2)
    m.apply("snapshot", D.snapshot())
    assert len(m.events) == 2 and len(m.runs["grok-wd1"].series["val_acc"]) <= 8
    m.apply("run", D.update(D.summary("fresh"), series={
        "x": {"steps": list(range(100)), "values": [0.0] * 100}}))
    assert len(m.runs["fresh"].series["x"]) <= 8
