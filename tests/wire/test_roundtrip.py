"""Every record kind crosses a real DEALER -> ROUTER pair and decodes to what was sent."""

from __future__ import annotations

import math

import numpy as np
import pytest
import zmq

from grokwatch import wire


@pytest.fixture
def pair(tmp_path):
    ctx = zmq.Context()
    router = ctx.socket(zmq.ROUTER)
    dealer = ctx.socket(zmq.DEALER)
    for s in (router, dealer):
        s.setsockopt(zmq.LINGER, 0)
        s.setsockopt(zmq.RCVTIMEO, 5000)
    ep = f"ipc://{tmp_path}/ingest"
    router.bind(ep)
    dealer.connect(ep)
    yield dealer, router
    ctx.destroy(linger=0)


def _through(pair, data: bytes) -> bytes:
    dealer, router = pair
    dealer.send(data)
    ident, payload = router.recv_multipart()
    router.send_multipart([ident, wire.encode_ack("r", 1, 9)])
    assert wire.decode_ack(dealer.recv()) == ("r", 1, 9)
    return payload


def test_every_kind_round_trips(pair):
    spec = np.linspace(0, 1, 48, dtype=np.float32)
    pts = np.arange(194, dtype=np.float64).reshape(97, 2)
    recs = [
        wire.hello(1, host="box", pid=42, config={"lr": 1e-3, "tags": ["a", {"b": None}]},
                   start=100.0, modulus=97, t=100.5),
        wire.scalars(2, 10, {"train_loss": 0.25, "n": 3, "bad": math.nan, "big": -math.inf},
                     t=101.0),
        wire.spectrum(3, 10, "embed.fourier", spec, t=101.0),
        wire.points(4, 10, "embed.constellation", pts, t=101.0),
        wire.bye(5, t=102.0),
    ]
    data = wire.encode_frame("mod97.run-1", 2**62 + 5, recs, dropped=7, errors=2)
    f = wire.decode_frame(_through(pair, data))
    assert (f.run, f.sid, f.dropped, f.errors) == ("mod97.run-1", 2**62 + 5, 7, 2)
    assert [r.kind for r in f.recs] == list(wire.KINDS)
    assert [r.seq for r in f.recs] == [1, 2, 3, 4, 5]
    h = f.recs[0]
    assert h.hello == {"host": "box", "pid": 42, "config": {"lr": 1e-3, "tags": ["a", {"b": None}]},
                       "start": 100.0, "modulus": 97}
    assert h.t == 100.5
    s = f.recs[1]
    assert s.step == 10 and s.vals["train_loss"] == 0.25 and s.vals["n"] == 3.0
    assert math.isnan(s.vals["bad"]) and s.vals["big"] == -math.inf
    assert set(s.nonfinite) == {"bad", "big"}
    assert f.recs[2].name == "embed.fourier" and f.recs[2].arr.dtype == np.float32
    np.testing.assert_array_equal(f.recs[2].arr, spec)
    assert f.recs[3].arr.shape == (97, 2)
    np.testing.assert_array_equal(f.recs[3].arr, pts)
    assert f.recs[4].t == 102.0


@pytest.mark.parametrize("dtype", ["<f4", "<f8", "<i4", "<i8", ">f8", "float16", "bool", "uint8"])
def test_arrays_travel_little_endian(dtype):
    a = (np.arange(6) % 2 == 0) if dtype == "bool" else np.arange(6).astype(dtype)
    packed = wire.pack_array(a)
    assert packed["dt"] in wire.DTYPES
    out = wire.unpack_array(packed, ndim=1)
    np.testing.assert_array_equal(out, a.astype(np.float64))


def test_finite_scalars_are_not_flagged():
    f = wire.decode_frame(wire.encode_frame("r", 1, [wire.scalars(1, 0, {"a": 1.0})]))
    assert f.recs[0].nonfinite == ()


def test_unknown_fields_are_ignored():
    import msgpack

    rec = wire.scalars(1, 3, {"a": 1.0})
    rec["future_field"] = {"x": 1}
    obj = {"v": 1, "run": "r", "sid": 1, "recs": [rec], "dropped": 0, "errors": 0, "extra": 5}
    f = wire.decode_frame(msgpack.packb(obj, use_bin_type=True))
    assert f.recs[0].vals == {"a": 1.0}


def test_empty_frame_is_valid_and_counters_default_to_zero():
    import msgpack

    f = wire.decode_frame(msgpack.packb({"v": 1, "run": "r", "sid": 0, "recs": []}))
    assert f.recs == [] and f.dropped == 0 and f.errors == 0


def test_client_messages_round_trip():
    msg = wire.decode_msg(wire.encode_msg({"op": "ping", "id": "x", "n": [1, 2]}))
    assert msg == {"v": 1, "op": "ping", "id": "x", "n": [1, 2]}
