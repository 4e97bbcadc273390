"""Hypothesis-generated garbage never raises anything but WireError."""

from __future__ import annotations

import os

import msgpack
import numpy as np
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from grokwatch import wire

# GROKWATCH_FUZZ_EXAMPLES raises the budget for a longer hunt (the suite keeps it short).
FAST = settings(max_examples=int(os.environ.get("GROKWATCH_FUZZ_EXAMPLES", "300")), deadline=None,
                suppress_health_check=[HealthCheck.too_slow, HealthCheck.data_too_large])

scalar = (st.none() | st.booleans() | st.integers(-(2**63), 2**64 - 1)
          | st.floats(allow_nan=True, allow_infinity=True) | st.text(max_size=20)
          | st.binary(max_size=20))
key = st.text(max_size=10) | st.sampled_from(
    ["v", "run", "sid", "recs", "k", "seq", "t", "step", "vals", "name", "arr", "dt", "sh", "b",
     "host", "pid", "config", "start", "modulus", "dropped", "errors", "op"])
structure = st.recursive(scalar, lambda kids: st.lists(kids, max_size=5)
                         | st.dictionaries(key, kids, max_size=6), max_leaves=40)


def only_wire_errors(fn, data):
    try:
        fn(data)
    except wire.WireError:
        pass


@FAST
@given(st.binary(max_size=512))
def test_random_bytes(data):
    only_wire_errors(wire.decode_frame, data)
    only_wire_errors(wire.decode_ack, data)
    only_wire_errors(wire.decode_msg, data)


@FAST
@given(structure)
def test_random_msgpack_structures(obj):
    data = msgpack.packb(obj, use_bin_type=True)
    only_wire_errors(wire.decode_frame, data)
    only_wire_errors(wire.decode_ack, data)
    only_wire_errors(wire.decode_msg, data)


def _valid_frame() -> dict:
    return {"v": 1, "run": "r", "sid": 3, "dropped": 0, "errors": 0, "recs": [
        wire.hello(1, host="h", pid=2, config={"a": [1, {"b": 2}]}, modulus=97, t=1.0),
        wire.scalars(2, 5, {"loss": 0.5}, t=1.0),
        wire.spectrum(3, 5, "s", np.arange(4, dtype=np.float32), t=1.0),
        wire.points(4, 5, "p", np.zeros((3, 2)), t=1.0),
        wire.bye(5, t=2.0)]}


def _paths(obj, prefix=()):
    yield prefix
    if isinstance(obj, dict):
        for k, v in obj.items():
            yield from _paths(v, prefix + (k,))
    elif isinstance(obj, list):
        for i, v in enumerate(obj):
            yield from _paths(v, prefix + (i,))


PATHS = [p for p in _paths(_valid_frame()) if p]


@FAST
@given(st.sampled_from(PATHS), structure)
def test_one_field_of_a_valid_frame_replaced(path, value):
    obj = _valid_frame()
    cur = obj
    for p in path[:-1]:
        cur = cur[p]
    cur[path[-1]] = value
    data = msgpack.packb(obj, use_bin_type=True)
    try:
        f = wire.decode_frame(data)
    except wire.WireError:
        return
    # Accepted: then it must be well-formed for the daemon.
    assert wire.valid_run_id(f.run)
    assert all(type(r.seq) is int and r.seq >= 1 for r in f.recs)


@FAST
@given(st.binary(min_size=1, max_size=64), st.integers(0, 2000))
def test_corrupted_valid_frame(junk, at):
    data = bytearray(msgpack.packb(_valid_frame(), use_bin_type=True))
    at %= len(data)
    data[at:at + len(junk)] = junk
    only_wire_errors(wire.decode_frame, bytes(data))


def test_valid_frame_decodes():
    f = wire.decode_frame(msgpack.packb(_valid_frame(), use_bin_type=True))
    assert [r.kind for r in f.recs] == list(wire.KINDS)
