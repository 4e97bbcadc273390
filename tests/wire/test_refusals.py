"""Each class of bad input is refused with :class:`WireError` and its reason."""

from __future__ import annotations

import math

import msgpack
import numpy as np
import pytest

from grokwatch import wire


def frame(**over) -> dict:
    obj = {"v": 1, "run": "r", "sid": 1, "recs": [wire.scalars(1, 0, {"a": 1.0}, t=1.0)],
           "dropped": 0, "errors": 0}
    obj.update(over)
    return obj


def pack(obj) -> bytes:
    return msgpack.packb(obj, use_bin_type=True)


def refused(data: bytes, reason: str, **kw) -> wire.WireError:
    with pytest.raises(wire.WireError) as ei:
        wire.decode_frame(data, **kw)
    assert ei.value.reason == reason, ei.value
    return ei.value


def rec(**fields) -> dict:
    r = wire.scalars(1, 0, {"a": 1.0}, t=1.0)
    r.update(fields)
    return r


# ---------------------------------------------------------------- version


@pytest.mark.parametrize("v", [2, 0, -1, 10**6])
def test_unknown_version(v):
    e = refused(pack(frame(v=v)), "version")
    assert str(v) in str(e)


@pytest.mark.parametrize("v", [None, "1", 1.0, True])
def test_missing_or_mistyped_version(v):
    obj = frame()
    if v is None:
        del obj["v"]
    else:
        obj["v"] = v
    refused(pack(obj), "version")


# ---------------------------------------------------------------- types


@pytest.mark.parametrize("obj", [[1, 2], "frame", 5, None, b"x"])
def test_frame_not_a_map(obj):
    refused(pack(obj), "schema")


@pytest.mark.parametrize("over", [
    {"sid": "1"}, {"sid": -1}, {"sid": 1.5}, {"sid": 2**63}, {"sid": True},
    {"recs": {"a": 1}}, {"recs": None}, {"recs": [5]},
    {"dropped": -1}, {"errors": "3"}, {"dropped": 1.0},
])
def test_frame_field_types(over):
    refused(pack(frame(**over)), "schema")


@pytest.mark.parametrize("fields", [
    {"t": "now"}, {"t": None}, {"t": math.nan}, {"t": math.inf},
    {"step": "3"}, {"step": -1}, {"step": 1.5}, {"step": 2**64 - 1},
    {"vals": [1.0]}, {"vals": {"a": "1.0"}}, {"vals": {"a": None}}, {"vals": {"a": True}},
    {"vals": {"": 1.0}}, {"vals": {"a\nb": 1.0}}, {"vals": {"x" * 129: 1.0}},
])
def test_scalars_record_types(fields):
    refused(pack(frame(recs=[rec(**fields)])), "schema")


def test_non_string_map_key_is_malformed():
    refused(pack(frame(recs=[rec(vals={1: 1.0})])), "malformed")


@pytest.mark.parametrize("fields", [
    {"host": 5}, {"host": "h" * 300}, {"pid": -3}, {"pid": "1"}, {"config": [1]},
    {"config": {"k": b"bytes"}}, {"start": "x"}, {"start": math.nan}, {"modulus": 1},
    {"modulus": 97.0}, {"modulus": "97"},
])
def test_hello_record_types(fields):
    h = wire.hello(1, host="h", pid=1, config={"a": 1}, modulus=97, t=1.0)
    h.update(fields)
    refused(pack(frame(recs=[h])), "schema")


@pytest.mark.parametrize("fields", [
    {"name": None}, {"name": ""}, {"name": "a\x00b"}, {"step": None}, {"arr": [1.0, 2.0]},
])
def test_array_record_types(fields):
    r = wire.spectrum(1, 0, "s", np.ones(3), t=1.0)
    r.update(fields)
    with pytest.raises(wire.WireError) as ei:
        wire.decode_frame(pack(frame(recs=[r])))
    assert ei.value.reason in ("schema", "array")


@pytest.mark.parametrize("k", ["Scalars", "hb", None, 3])
def test_unknown_kind(k):
    refused(pack(frame(recs=[rec(k=k)])), "kind")


@pytest.mark.parametrize("seq", [0, -1, "1", 1.0, None, True, 2**63])
def test_bad_seq(seq):
    refused(pack(frame(recs=[rec(seq=seq)])), "seq")


@pytest.mark.parametrize("seqs", [[2, 2], [3, 2], [1, 5, 4]])
def test_seq_must_increase_within_a_frame(seqs):
    refused(pack(frame(recs=[rec(seq=s) for s in seqs])), "seq")


# ---------------------------------------------------------------- sizes


def test_oversized_frame_default_cap():
    big = wire.encode_frame("r", 1, [wire.scalars(i + 1, i, {"x" * 100: 1.0}) for i in range(9000)])
    assert len(big) > wire.DEFAULT_MAX_FRAME
    e = refused(big, "oversized")
    assert str(wire.DEFAULT_MAX_FRAME) in str(e)


def test_cap_is_configurable():
    data = pack(frame())
    assert wire.decode_frame(data, max_size=len(data)).run == "r"
    refused(data, "oversized", max_size=len(data) - 1)
    big = wire.encode_frame("r", 1, [wire.spectrum(1, 0, "s", np.zeros(200_000, np.float64))])
    assert len(big) > wire.DEFAULT_MAX_FRAME
    assert wire.decode_frame(big, max_size=2 << 20).recs[0].arr.shape == (200_000,)


def test_too_many_records():
    recs = [wire.scalars(i + 1, 0, {"a": 1.0}, t=1.0) for i in range(wire.MAX_RECORDS + 1)]
    refused(wire.encode_frame("r", 1, recs), "too_large", max_size=4 << 20)


def test_too_many_scalars_hits_msgpacks_map_limit():
    vals = {f"s{i}": 1.0 for i in range(wire.MAX_SCALARS + 1)}
    refused(pack(frame(recs=[rec(vals=vals)])), "too_large")


def test_deep_config_is_refused():
    cfg: dict = {}
    cur = cfg
    for _ in range(wire.MAX_DEPTH + 2):
        cur["d"] = {}
        cur = cur["d"]
    h = wire.hello(1, host="h", pid=1, config=cfg, t=1.0)
    refused(pack(frame(recs=[h])), "too_large")


def test_huge_config_is_refused():
    h = wire.hello(1, host="h", pid=1, config={f"k{i}": "v" * 100 for i in range(1000)}, t=1.0)
    refused(pack(frame(recs=[h])), "too_large")


def test_absurd_nesting_is_refused_by_msgpack():
    data = b"\x91" * 100_000 + b"\xc0"  # 100,000 nested one-element arrays
    with pytest.raises(wire.WireError) as ei:
        wire.decode_frame(data, max_size=1 << 20)
    assert ei.value.reason in ("malformed", "schema")


@pytest.mark.parametrize("data", [
    b"\xdb\xff\xff\xff\xff",  # str32 claiming 4 GiB, no body
    b"\xdd\xff\xff\xff\xff",  # array32 claiming 4 billion items
    b"\xdf\xff\xff\xff\xff",  # map32 claiming 4 billion pairs
    b"\xc6\x7f\xff\xff\xff",  # bin32 claiming 2 GiB
])
def test_absurd_declared_sizes(data):
    with pytest.raises(wire.WireError) as ei:
        wire.decode_frame(data)
    assert ei.value.reason in ("malformed", "too_large")


@pytest.mark.parametrize("data", [b"", b"\xc1", b"\x82\xa1v", pack(frame()) + b"\x00",
                                  pack(frame())[:-3], "not bytes"])
def test_malformed(data):
    refused(data, "malformed")


def test_ext_types_are_refused():
    data = pack(frame(recs=[rec(t=msgpack.ExtType(5, b"abc"))]))
    refused(data, "malformed")
    ts = msgpack.packb(frame(recs=[rec(t=msgpack.Timestamp(1, 0))]))
    refused(ts, "malformed")


# ---------------------------------------------------------------- arrays


def arr_frame(arr: dict, kind: str = "spectrum") -> bytes:
    r = {"k": kind, "seq": 1, "t": 1.0, "step": 0, "name": "s", "arr": arr}
    return pack(frame(recs=[r]))


@pytest.mark.parametrize("arr", [
    {"dt": "<f4", "sh": [3], "b": b"\x00" * 11},  # one byte short
    {"dt": "<f8", "sh": [3], "b": b"\x00" * 12},  # bytes for f4, dtype f8
    {"dt": "<f4", "sh": [2], "b": b"\x00" * 12},  # one element too many
])
def test_array_byte_length_must_match_shape_times_dtype(arr):
    e = refused(arr_frame(arr), "array")
    assert "bytes" in str(e)


@pytest.mark.parametrize("arr", [
    {"dt": "|O", "sh": [1], "b": b"\x00" * 8}, {"dt": ">f4", "sh": [1], "b": b"\x00" * 4},
    {"dt": "<c16", "sh": [1], "b": b"\x00" * 16}, {"dt": "<f4", "sh": [-1], "b": b""},
    {"dt": "<f4", "sh": "3", "b": b""}, {"dt": "<f4", "sh": [1], "b": "abcd"},
    {"dt": "<f4", "sh": [2, 2], "b": b"\x00" * 16},  # spectrum must be 1-D
    {"dt": "<f4", "sh": [True], "b": b"\x00" * 4},
    "not a map",
])
def test_bad_arrays(arr):
    refused(arr_frame(arr), "array")


def test_points_must_be_n_by_2():
    a = wire.pack_array(np.zeros((4, 3), np.float32))
    refused(arr_frame(a, "points"), "array")


def test_too_many_elements():
    n = wire.MAX_ARRAY_ELEMS + 1
    refused(arr_frame({"dt": "<f4", "sh": [n], "b": b"\x00" * 4 * n}), "too_large",
            max_size=8 << 20)
    # An empty array with an absurd dimension must not reach numpy's reshape.
    refused(arr_frame({"dt": "<f4", "sh": [0, 2**62], "b": b""}, "points"), "too_large")
    refused(arr_frame({"dt": "<f4", "sh": [600, 600], "b": b"\x00" * 4 * 360_000}, "points"),
            "too_large", max_size=8 << 20)


# ---------------------------------------------------------------- run ids


@pytest.mark.parametrize("run", ["", " lead", "trail ", "a\nb", "tab\there", "nul\x00",
                                 "x" * (wire.MAX_RUN_LEN + 1), 5, None, b"bytes", ["r"],
                                 "-rf", "--output=/etc/x", "a/b", "../up", "/abs"])
def test_bad_run_ids(run):
    refused(pack(frame(run=run)), "run_id")


@pytest.mark.parametrize("run", ["r", "mod97 wd=1 seed 3", "ünïcode-ok", "a-b", "x.rank1",
                                 "x" * wire.MAX_RUN_LEN])
def test_good_run_ids(run):
    assert wire.decode_frame(pack(frame(run=run))).run == run


# ---------------------------------------------------------------- acks


@pytest.mark.parametrize("data", [
    msgpack.packb({"v": 2, "op": "ack", "run": "r", "sid": 1, "seq": 1}),
    msgpack.packb({"v": 1, "op": "nak", "run": "r", "sid": 1, "seq": 1}),
    msgpack.packb({"v": 1, "op": "ack", "run": "", "sid": 1, "seq": 1}),
    msgpack.packb({"v": 1, "op": "ack", "run": "r", "sid": -1, "seq": 1}),
    msgpack.packb({"v": 1, "op": "ack", "run": "r", "sid": 1, "seq": "1"}),
    b"\xff\x00", b"",
])
def test_bad_acks(data):
    with pytest.raises(wire.WireError):
        wire.decode_ack(data)


def test_decode_msg_refuses_other_versions_and_oversize():
    with pytest.raises(wire.WireError) as ei:
        wire.decode_msg(msgpack.packb({"v": 9, "op": "ping"}))
    assert ei.value.reason == "version"
    with pytest.raises(wire.WireError) as ei:
        wire.decode_msg(wire.encode_msg({"op": "ping", "pad": "x" * 100}), max_size=50)
    assert ei.value.reason == "oversized"
