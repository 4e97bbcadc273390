"""The scalars shortcut of wire.decode_frame must change nothing: same records, same refusals."""

from __future__ import annotations

import random

import msgpack
import pytest

from grokwatch import wire
from grokwatch.wire import frames


def outcome(fn, data):
    try:
        return ("ok", fn(data))
    except wire.WireError as e:
        return ("err", e.reason)


def base_frame(rng):
    n = rng.randint(1, 5)
    return {"v": 1, "run": "r", "sid": rng.randint(0, 10), "dropped": 0, "errors": 0,
            "recs": [{"k": "scalars", "seq": i + 1, "t": 1.5 + i, "step": i,
                      "vals": {"loss": 0.5, "acc": 1.0}} for i in range(n)]}


ODD_VALUES = [None, True, False, -1, 0, 1, 2**63 - 1, 2**63, -(2**63), 1.5, float("nan"),
              float("inf"), float("-inf"), "x", "", b"x", [], {}, [1], {"a": 1}, "a\nb",
              "x" * 200, 10**18]


def mutate(rng, f):
    """Change one thing anywhere in the frame to an odd value."""
    choice = rng.random()
    recs = f.get("recs")
    if not (isinstance(recs, list) and recs and all(isinstance(r, dict) for r in recs)):
        choice = 0.0  # only the frame's own fields are left to change
    elif choice >= 0.55 and choice < 0.8 and not isinstance(rng.choice(recs).get("vals"), dict):
        choice = 0.4
    if choice < 0.3:
        f[rng.choice(["v", "run", "sid", "recs", "dropped", "errors", "extra"])] = rng.choice(
            ODD_VALUES)
    elif choice < 0.55:
        r = rng.choice(f["recs"])
        r[rng.choice(["k", "seq", "t", "step", "vals", "other"])] = rng.choice(
            ODD_VALUES + ["hello", "bye", "spectrum"])
    elif choice < 0.8:
        r = rng.choice([r for r in recs if isinstance(r.get("vals"), dict)] or [{"vals": {}}])
        r["vals"][rng.choice(["loss", "new", "a\x00", "é", "x" * 129, "x" * 128, 7])] = \
            rng.choice(ODD_VALUES)
    elif choice < 0.9:
        rng.shuffle(f["recs"])  # seq order
    else:
        f["recs"].append({"k": "bye", "seq": 10**6, "t": 2.0})
    return f


@pytest.mark.parametrize("seed", range(4))
def test_shortcut_agrees_with_the_general_checks(seed):
    rng = random.Random(seed)
    ok = refused = 0
    for _ in range(2500):
        f = base_frame(rng)
        for _ in range(rng.randint(0, 3)):
            f = mutate(rng, f)
        try:
            data = msgpack.packb(f, use_bin_type=True)
        except (TypeError, ValueError, OverflowError):
            continue
        a = outcome(lambda d: wire.decode_frame(d, shortcut=False), data)
        b = outcome(wire.decode_frame, data)
        if a[0] == "ok" and b[0] == "ok":
            fa, fb = a[1], b[1]
            assert (fa.run, fa.sid, fa.dropped, fa.errors) == (fb.run, fb.sid, fb.dropped,
                                                               fb.errors)
            assert len(fa.recs) == len(fb.recs)
            for ra, rb in zip(fa.recs, fb.recs):
                assert (ra.kind, ra.seq, ra.t, ra.step) == (rb.kind, rb.seq, rb.t, rb.step)
                assert repr(ra.vals) == repr(rb.vals)  # repr: NaN == NaN here
                assert all(type(v) is float for v in rb.vals.values())
                assert ra.nonfinite == rb.nonfinite
            ok += 1
        else:
            assert a == b, (f, a, b)
            refused += a[0] == "err"
    assert ok > 100 and refused > 100  # both outcomes exercised


def test_cached_names_still_refused_in_bad_frames():
    good = wire.encode_frame("r", 1, [wire.scalars(1, 1, {"loss": 1.0})])
    wire.decode_frame(good)
    assert "loss" in frames._NAMES and "r" in frames._RUN_IDS  # the shortcut took it
    bad = msgpack.packb({"v": 1, "run": "r", "sid": 1, "recs": [
        {"k": "scalars", "seq": 1, "t": 0.0, "step": 1, "vals": {"loss": "high"}}]})
    with pytest.raises(wire.WireError) as e:
        wire.decode_frame(bad)
    assert e.value.reason == "schema"
