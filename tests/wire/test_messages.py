"""The daemon<->client messages: each builder's output is what its parser accepts, and the
parsers refuse the shapes the old overloaded "run" key allowed."""

from __future__ import annotations

import numpy as np
import pytest

from grokwatch import wire
from grokwatch.wire import messages as M
from grokwatch.wire import names


def summary(run: str = "r1", **kw) -> M.RunSummary:
    return M.run_summary(run, step=7, phase=names.MEMORIZATION, last={names.VAL_ACC: 0.1}, **kw)


def roundtrip(obj: dict) -> dict:
    """Through the real envelope, as it crosses the socket."""
    return wire.decode_msg(wire.encode_msg(obj))


def test_run_data_roundtrips_and_run_is_always_the_name():
    packed = wire.pack_array(np.arange(6, dtype=np.float32).reshape(3, 2))
    data = M.run_data(summary(), series={names.VAL_ACC: M.series([1, 2], [0.1, 0.2])},
                      points={"embed.constellation": M.array(2, packed)})
    got = M.parse_update("run", roundtrip(M.run_update(data)))
    assert got["run"] == "r1" and isinstance(got["run"], str)
    assert got["summary"]["run"] == "r1" and got["summary"]["step"] == 7
    assert got["series"][names.VAL_ACC] == {"steps": [1, 2], "values": [0.1, 0.2]}
    arr = wire.unpack_array(got["points"]["embed.constellation"]["arr"])
    assert arr.shape == (3, 2) and arr[2, 1] == 5.0


@pytest.mark.parametrize("bad", [
    {"run": {"run": "r1", "step": 1}},  # the old shape: a summary under "run"
    {"run": "r1"},  # no summary
    {"run": "r1", "summary": dict(summary("r2"))},  # someone else's summary
    {"summary": dict(summary())},  # no name
    [1, 2],
])
def test_run_data_of_the_wrong_shape_is_refused(bad):
    with pytest.raises(wire.WireError) as e:
        M.parse_run_data(bad)
    assert e.value.reason == "schema"


def test_malformed_entries_are_left_out_not_fatal():
    d = dict(M.run_data(summary()))
    d["series"] = {"ok": {"steps": [1], "values": [1.0]}, "bad": 5}
    d["spectra"] = {"ok": M.array(1, wire.pack_array(np.ones(3))), "bad": {"step": 1}}
    got = M.parse_run_data(d)
    assert list(got["series"]) == ["ok"] and list(got["spectra"]) == ["ok"]


def test_snapshot_reply_keeps_good_runs_and_drops_bad_ones():
    snap = M.snapshot_reply(seq=4, epoch="e1", runs=[M.run_data(summary()), {"run": 3}],
                            alerts=[M.alert(run="r1", step=3, t=1.0, kind=names.ONSET,
                                            summary="s"), 7], hooks=[])
    got = M.parse_snapshot(roundtrip(M.reply("snapshot", "id1", dict(snap))))
    assert got["seq"] == 4 and got["epoch"] == "e1"
    assert [r["run"] for r in got["runs"]] == ["r1"] and len(got["alerts"]) == 1


def test_alert_and_hook_event_builders():
    a = M.alert(run="r1", step=3, t=0.0, kind=names.DIVERGED, summary="nan",
                status=names.RESOLVED, evidence={"x": 1})
    assert a["time"] == "1970-01-01T00:00:00.000Z"
    assert a["fingerprint"] == M.fingerprint("r1", names.DIVERGED)
    assert M.parse_update("alert", roundtrip(M.alert_update(a))) == a
    h = M.hook_event(t=1.0, rule="pager", for_alert=a, result="ok", rc=0, attempts=1,
                     duration=0.12345, detail="")
    assert (h["run"], h["alert_kind"], h["status"], h["duration"]) == (
        "r1", names.DIVERGED, names.RESOLVED, 0.123)
    assert M.parse_update("hook", roundtrip(M.hook_update(h))) == h
    assert M.alert_key(a) != M.alert_key({**a, "status": names.FIRING})


def test_request_parser_checks_arguments_and_fills_defaults():
    assert M.parse_request(M.request("snapshot", "x")) == {
        "op": "snapshot", "id": "x", "run": "*", "tail": M.DEFAULT_TAIL, "history": False}
    assert M.parse_request(M.request("alerts", None, run="r*"))["limit"] == M.DEFAULT_ALERTS_LIMIT
    for req, msg in ((M.request("launch"), "unknown op"),
                     (M.request("snapshot", tail=-1), "tail must be"),
                     (M.request("export", run=7), "no run named"),
                     (M.request("alerts", kind=["x"]), "kind must be"),
                     (M.request("runs", run=3), "run must be a string")):
        with pytest.raises(M.RequestError, match=msg):
            M.parse_request(req)


def test_reply_parsers():
    assert M.parse_runs(M.runs_reply([summary(), {"no": "name"}])) == [summary()]
    assert M.parse_alerts(M.alerts_reply([], [])) == ([], [])
    assert M.parse_export(M.export_reply("r1", [{"step": 1}])) == [{"step": 1}]
    assert M.parse_status(M.status_reply({"pid": 1})) == {"pid": 1}
    assert M.error_reply("ping", "i", "boom") == {"op": "ping", "id": "i", "ok": False,
                                                  "error": "boom"}
