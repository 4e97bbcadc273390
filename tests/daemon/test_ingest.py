"""Ingest in-process with a real store: dedup, rejects by reason, acks only after commit,
restore after a restart."""

from __future__ import annotations

import msgpack
import numpy as np

from grokwatch import wire
from grokwatch.daemon.ingest import Ingest
from grokwatch.daemon.store import open_store

PEER = b"peer-1"


def frame(run, sid, recs, dropped=0):
    return wire.encode_frame(run, sid, recs, dropped=dropped)


def sc(seq, step=None, **vals):
    return wire.scalars(seq, seq if step is None else step, vals or {"loss": 1.0 / seq}, t=1000.0 + seq)


def test_records_dedup_and_ack_after_commit(tmp_path):
    ing = Ingest(open_store(tmp_path / "g.db"))
    ing.handle(PEER, frame("r", 1, [wire.hello(1, host="h", pid=1, config={"lr": 0.1}, modulus=7),
                                    sc(2), sc(3)]))
    assert ing.records == 3
    # Not yet committed: nothing to ack, nothing in the store.
    ro = open_store(tmp_path / "g.db", readonly=True)
    assert list(ro.iter_records("r")) == []
    acks = ing.commit()
    assert [(p, wire.decode_ack(a)) for p, a in acks] == [(PEER, ("r", 1, 3))]
    assert [r[1] for r in ro.iter_records("r")] == [1, 2, 3]
    ing.handle(PEER, frame("r", 1, [sc(2), sc(3), sc(4)]))  # a resend overlapping new data
    assert ing.duplicates == 2 and ing.records == 4
    assert [wire.decode_ack(a)[2] for _, a in ing.commit()] == [4]
    assert [r[1] for r in ro.iter_records("r")] == [1, 2, 3, 4]
    rs = ing.runs["r"]
    assert rs.info["config"] == {"lr": 0.1} and rs.info["modulus"] == 7
    assert rs.counters["duplicates"] == 2 and rs.counters["records"] == 4


def test_rejects_counted_by_reason_and_run(tmp_path):
    ing = Ingest(open_store(tmp_path / "g.db"))
    ing.handle(PEER, frame("r", 1, [sc(1)]))
    bad = {
        "malformed": b"\xc1\xc1garbage",
        "version": msgpack.packb({"v": 99, "run": "r", "sid": 1, "recs": []}),
        "run_id": msgpack.packb({"v": 1, "run": "a\nb", "sid": 1, "recs": []}),
        "kind": msgpack.packb({"v": 1, "run": "r", "sid": 1, "recs": [{"k": "x", "seq": 2, "t": 0}]}),
        "oversized": b"\x00" * (wire.DEFAULT_MAX_FRAME + 1),
    }
    for data in bad.values():
        ing.handle(PEER, data)
    assert dict(ing.rejects) == dict.fromkeys(bad, 1)
    assert ing.runs["r"].counters["rejected"] == len(bad)  # attributed via the peer
    assert ing.records == 1


def test_overflow_drops_become_gaps_and_ack_moves_on(tmp_path):
    ing = Ingest(open_store(tmp_path / "g.db"))
    ing.handle(PEER, frame("r", 1, [sc(q) for q in range(1, 11)]))
    ing.commit()
    # The probe dropped 40 records (11..50) in an outage and says so.
    ing.handle(PEER, frame("r", 1, [sc(q) for q in range(51, 61)], dropped=40))
    rs = ing.runs["r"]
    assert rs.counters["dropped"] == 40 and rs.counters["gaps"] == 40
    assert [wire.decode_ack(a)[2] for _, a in ing.commit()] == [60]
    kinds = [a.kind for a in ing.alerts]
    assert "dropped" in kinds


def test_arrays_nan_and_bye(tmp_path):
    ing = Ingest(open_store(tmp_path / "g.db"))
    spec = np.arange(5, dtype=np.float32)
    ing.handle(PEER, frame("r", 3, [sc(1, loss=float("nan")), wire.spectrum(2, 1, "embed", spec),
                                    wire.points(3, 1, "embed", np.ones((4, 2))), wire.bye(4)]))
    ing.commit()
    rs = ing.runs["r"]
    assert rs.info["state"] == "finished"
    assert np.isnan(rs.last["loss"])
    assert wire.unpack_array(rs.spectra["embed"]["arr"]).tolist() == spec.tolist()
    assert rs.points["embed"]["arr"]["sh"] == [4, 2]


def test_restore_rebuilds_runs_sessions_and_dedup(tmp_path):
    db = tmp_path / "g.db"
    ing = Ingest(open_store(db))
    ing.handle(PEER, frame("r", 9, [wire.hello(1, host="h", pid=1, modulus=11)]
                           + [sc(q, train_acc=1.0, train_loss=0.01) for q in range(2, 300)]))
    ing.handle(PEER, frame("r", 9, [sc(q) for q in range(310, 320)]))  # hole 300..309
    ing.commit()
    ing.store.close()
    again = Ingest(open_store(db))
    again.restore()
    rs = again.runs["r"]
    assert rs.info["modulus"] == 11 and rs.info["step"] == 319
    assert rs.series["train_acc"].last() == (299, 1.0)
    assert rs.sessions[9].holes == [[300, 309]]
    again.handle(PEER, frame("r", 9, [sc(q) for q in range(300, 320)]))  # the probe resends
    assert again.records == 10 and again.duplicates == 10
    assert [wire.decode_ack(a)[2] for _, a in again.commit()] == [319]
    ro = open_store(db, readonly=True)
    seqs = [r[1] for r in ro.iter_records("r")]
    assert seqs == list(range(1, 320))


class _Exploding:
    phase = "starting"
    onset_step = None

    def __getattr__(self, name):
        def boom(*args):
            raise ZeroDivisionError("detector bug")
        return boom


def test_a_failing_detector_costs_no_record(tmp_path):
    ing = Ingest(open_store(tmp_path / "g.db"))
    ing._detector = lambda rs, hello=None: _Exploding()
    ing.handle(PEER, frame("r", 1, [wire.hello(1, host="h", pid=1)] + [sc(q) for q in range(2, 6)]
                           + [wire.bye(6)]))
    ing.tick()
    assert ing.detector_errors >= 5
    assert [wire.decode_ack(a)[2] for _, a in ing.commit()] == [6]
    assert [r[1] for r in open_store(tmp_path / "g.db", readonly=True).iter_records("r")] == \
        list(range(1, 7))
