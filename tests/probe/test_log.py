"""``log`` and ``observe`` through a real ROUTER: accepted types, counted errors, cadence."""

from __future__ import annotations

import logging
import math

import numpy as np
import pytest

from grokwatch import wire
from grokwatch.probe import Probe

torch = pytest.importorskip("torch")


def scalars(router, sid):
    return [r for (_run, s, _seq, r) in router.records if s == sid and r.kind == "scalars"]


def test_log_accepts_numbers_of_every_kind(router):
    with Probe("types", endpoint=router.endpoint) as p:
        p.log(1, f=0.5, i=3, b=True, nf32=np.float32(0.25), ni64=np.int64(7),
              nf16=np.float16(1.5), t0=torch.tensor(2.5), tg=torch.tensor(4.0, requires_grad=True),
              ti=torch.tensor(9), nan=math.nan, inf=-math.inf)
        p.log(np.int64(2), x=1.0)
        p.log(torch.tensor(3), x=1.0)
    assert p.errors == 0
    recs = scalars(router, p.sid)
    assert recs[0].vals == pytest.approx({"f": 0.5, "i": 3.0, "b": 1.0, "nf32": 0.25, "ni64": 7.0,
                                          "nf16": 1.5, "t0": 2.5, "tg": 4.0, "ti": 9.0,
                                          "nan": math.nan, "inf": -math.inf}, nan_ok=True)
    assert set(recs[0].nonfinite) == {"nan", "inf"}
    assert [r.step for r in recs] == [1, 2, 3]


def test_non_numbers_are_counted_not_raised(router, caplog):
    caplog.set_level(logging.WARNING, logger="grokwatch.probe")
    with Probe("bad", endpoint=router.endpoint) as p:
        p.log(0, ok=1.0, s="1.5", n=None, lst=[1, 2], vec=torch.ones(3), arr=np.ones(2))
        p.log(-1, ok=1.0)  # negative step
        p.log("7", ok=1.0)  # a string step
        p.log(1.5, ok=1.0)  # a fractional step
        p.log(2, **{"bad\nname": 1.0, "": 2.0, "ok": 3.0})
        p.log(3)  # nothing to log: not an error, nothing sent
    assert p.errors == 5 + 3 + 2
    recs = scalars(router, p.sid)
    assert [(r.step, r.vals) for r in recs] == [(0, {"ok": 1.0}), (2, {"ok": 3.0})]
    # One warning, then only counting; the count travels in the frames.
    assert len([r for r in caplog.records if r.name == "grokwatch.probe"]) == 1
    assert router.frames[-1].errors == p.errors


def test_constructor_refuses_bad_arguments():
    for bad in ("", " x", "a\nb", "x" * 200, 5):
        with pytest.raises(ValueError):
            Probe(bad, endpoint="tcp://127.0.0.1:1")
    with pytest.raises(ValueError):
        Probe("r", endpoint="tcp://127.0.0.1:1", modulus=1)
    with pytest.raises(ValueError):
        Probe("r", endpoint="tcp://127.0.0.1:1", every=0)
    with pytest.raises(ValueError):
        Probe("r", endpoint="nonsense://where")


def test_endpoint_from_environment(router, monkeypatch):
    monkeypatch.setenv("GROKWATCH_ENDPOINT", router.endpoint)
    with Probe("env") as p:
        p.log(0, x=1.0)
    assert p.endpoint == router.endpoint and len(scalars(router, p.sid)) == 1


def test_default_endpoint(monkeypatch):
    monkeypatch.delenv("GROKWATCH_ENDPOINT", raising=False)
    p = Probe("default")
    assert p.endpoint == wire.DEFAULT_INGEST and p.endpoint.startswith("ipc://")
    p.close(timeout=0.1)


def test_config_is_sanitized_for_the_wire(router):
    cfg = {"lr": 1e-3, "dims": (128, 128), 3: "int key", "obj": object(), "np": np.float32(0.5),
           "deep": {"a": {"b": {"c": {"d": {"e": {"f": {"g": {"h": 1}}}}}}}}, "big": 2**80}
    with Probe("cfg", endpoint=router.endpoint, config=cfg) as p:
        pass
    hello = router.records[0][3]
    assert hello.kind == "hello" and not router.rejects
    c = hello.hello["config"]
    assert c["lr"] == 1e-3 and c["dims"] == [128, 128] and c["3"] == "int key"
    assert c["np"] == 0.5 and isinstance(c["obj"], str) and c["big"] == str(2**80)
    assert isinstance(c["deep"]["a"]["b"]["c"]["d"]["e"]["f"], str)  # clipped to the wire's depth
    assert p.errors == 0


def test_observe_runs_at_cadence_and_sends_metrics(router):
    p97 = 97
    torch.manual_seed(0)
    model = torch.nn.Linear(2 * p97, 64)
    with Probe("obs", endpoint=router.endpoint, modulus=p97, every=100) as p:
        for step in range(0, 350, 10):
            model.zero_grad()
            model(torch.randn(8, 2 * p97)).sum().backward()
            p.observe(step, model, embed=model.weight.T, short=model.weight[:10])
    recs = [r for (_run, s, _seq, r) in router.records if s == p.sid]
    obs_steps = sorted({r.step for r in recs if r.kind == "spectrum"})
    assert obs_steps == [0, 100, 200, 300]
    sc = [r for r in recs if r.kind == "scalars"]
    assert all("weight_norm" in r.vals and "grad_norm" in r.vals for r in sc)
    assert all("embed.fourier_ipr_null" in r.vals and "embed.erank" in r.vals for r in sc)
    assert all("short.erank" in r.vals and "short.fourier_conc" not in r.vals for r in sc)
    names = {(r.kind, r.name) for r in recs if r.kind in ("spectrum", "points")}
    assert names == {("spectrum", "embed.sv"), ("spectrum", "embed.fourier"),
                     ("points", "embed.constellation"), ("spectrum", "short.sv")}
    pts = next(r for r in recs if r.kind == "points")
    assert pts.arr.shape == (p97, 2)
    assert p.errors == 4  # "short" has 10 < 97 rows, once per observation


def test_probe_never_raises_after_close(router):
    p = Probe("closed", endpoint=router.endpoint)
    assert p.close() is True
    p.log(1, x=1.0)
    p.observe(100, None, w=np.ones((3, 3)))
    assert p.close() is True


def test_what_the_daemon_would_refuse_never_enters_the_buffer(router):
    # A refused frame would be resent forever: the probe must not build one.
    p97 = 140_000  # constellation 140,000 x 2 exceeds the wire's array cap; the spectrum fits
    with Probe("limits", endpoint=router.endpoint, modulus=p97) as p:
        p.log(2**63, x=1.0)  # beyond a 64-bit signed column
        p.log(np.int64(2**62), x=1.0)
        p.observe(0, None, big=np.random.default_rng(0).standard_normal((p97, 2)))
    assert p.close() is True and not router.rejects
    assert p.errors == 2
    recs = [r for (_run, s, _seq, r) in router.records if s == p.sid]
    assert [r.step for r in recs if r.kind == "scalars" and "x" in r.vals] == [2**62]
    assert {r.name for r in recs if r.kind == "spectrum"} == {"big.sv", "big.fourier"}
    assert not [r for r in recs if r.kind == "points"]


def test_config_may_be_a_dataclass_or_namespace(router):
    import argparse
    from dataclasses import dataclass

    @dataclass
    class Cfg:
        lr: float = 1e-3
        width: int = 128

    with Probe("dc", endpoint=router.endpoint, config=Cfg()):
        pass
    with Probe("ns", endpoint=router.endpoint, config=argparse.Namespace(lr=0.5, name="x")):
        pass
    hellos = {run: r.hello["config"] for (run, _s, _q, r) in router.records if r.kind == "hello"}
    assert hellos == {"dc": {"lr": 1e-3, "width": 128}, "ns": {"lr": 0.5, "name": "x"}}
