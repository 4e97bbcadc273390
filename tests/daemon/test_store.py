"""The SQLite store: private file mode, refusals with one line, round trips."""

from __future__ import annotations

import sqlite3
import stat

import pytest

from grokwatch.daemon.store import SCHEMA_VERSION, StoreError, open_store


def test_new_store_is_private(tmp_path):
    db = tmp_path / "sub" / "g.db"
    st = open_store(db)
    st.close()
    assert stat.S_IMODE(db.stat().st_mode) == 0o600
    assert stat.S_IMODE(db.parent.stat().st_mode) == 0o700


def test_wal_mode_and_versions(tmp_path):
    st = open_store(tmp_path / "g.db")
    assert st.db.execute("PRAGMA journal_mode").fetchone()[0] == "wal"
    assert st.db.execute("PRAGMA synchronous").fetchone()[0] == 1  # NORMAL
    assert st.db.execute("PRAGMA user_version").fetchone()[0] == SCHEMA_VERSION
    st.close()


def test_corrupt_file_is_one_line_error(tmp_path):
    db = tmp_path / "g.db"
    db.write_bytes(b"this is not sqlite at all, just text\n" * 100)
    with pytest.raises(StoreError) as e:
        open_store(db)
    assert "\n" not in str(e.value)
    assert str(db) in str(e.value)


def test_foreign_sqlite_is_refused(tmp_path):
    db = tmp_path / "other.db"
    con = sqlite3.connect(db)
    con.execute("CREATE TABLE users(name TEXT)")
    con.commit()
    con.close()
    with pytest.raises(StoreError, match="not a grokwatch store"):
        open_store(db)
    # Nothing of ours was written into it.
    con = sqlite3.connect(db)
    assert [r[0] for r in con.execute("SELECT name FROM sqlite_master")] == ["users"]


def test_newer_schema_is_refused(tmp_path):
    db = tmp_path / "g.db"
    open_store(db).close()
    con = sqlite3.connect(db)
    con.execute(f"PRAGMA user_version={SCHEMA_VERSION + 1}")
    con.commit()
    con.close()
    with pytest.raises(StoreError, match="newer"):
        open_store(db)


def test_readonly_missing_and_empty(tmp_path):
    with pytest.raises(StoreError, match="no such store"):
        open_store(tmp_path / "absent.db", readonly=True)
    (tmp_path / "empty.db").write_bytes(b"")
    with pytest.raises(StoreError):
        open_store(tmp_path / "empty.db", readonly=True)


def test_roundtrip(tmp_path):
    st = open_store(tmp_path / "g.db")
    rid = st.run_id("run-a")
    chunk = [(s, 1, s * 10, 100.0 + s, {"loss": 1.0 / s}) for s in range(1, 6)]
    alert = {"run": "run-a", "kind": "memorized", "t": 1.0, "status": "firing", "step": 3}
    st.write_batch({(rid, 7): chunk}, {"run-a": {"step": 50, "state": "live"}},
                   [(rid, 7, 5, 0, 0, 0, [])], [alert], [{"run": "run-a", "t": 2.0, "rule": "x"}])
    st.close()
    ro = open_store(tmp_path / "g.db", readonly=True)
    assert [r[1] for r in ro.iter_records("run-a")] == [1, 2, 3, 4, 5]
    assert [row["step"] for row in ro.export_rows("run-a", "loss")] == [10, 20, 30, 40, 50]
    assert ro.load_runs()["run-a"]["step"] == 50
    assert ro.load_sessions()[(rid, 7)]["hi"] == 5
    assert ro.load_alerts("run-*") == [alert]
    assert ro.load_alerts("other") == []
    assert ro.load_alerts(kind="onset") == []
    assert ro.load_hook_events()[0]["rule"] == "x"
    assert list(ro.iter_records("no-such-run")) == []
    assert ro.rows_written == 0 and st.rows_written == 5


def test_chunks_that_interleave_come_back_in_seq_order(tmp_path):
    st = open_store(tmp_path / "g.db")
    rid = st.run_id("r")

    def rec(q):
        return (q, 1, q, float(q), {"a": float(q)})
    # Batch 1 stored 1..3 and 8..9 (4..7 were lost in transit); batch 2 has 10..12;
    # batch 3 is the probe's resend filling 4..7, out of order in the batch.
    st.write_batch({(rid, 1): [rec(q) for q in (1, 2, 3, 8, 9)]}, {}, [], [], [])
    st.write_batch({(rid, 1): [rec(q) for q in (10, 11, 12)]}, {}, [], [], [])
    st.write_batch({(rid, 1): [rec(q) for q in (6, 7, 4, 5)]}, {}, [], [], [])
    assert [r[1] for r in st.iter_records("r")] == list(range(1, 13))
    assert [r[1] for r in st.iter_records("r", ("hello",))] == []


def test_sessions_replay_in_start_order_not_sid_order(tmp_path):
    st = open_store(tmp_path / "g.db")
    rid = st.run_id("r")
    # The run was restarted: session 5 (first) then session 2 (second, lower random sid).
    st.write_batch({(rid, 5): [(1, 1, 0, 10.0, {"a": 1.0}), (2, 1, 1, 11.0, {"a": 2.0})],
                    (rid, 2): [(1, 1, 0, 20.0, {"a": 3.0})]}, {}, [], [], [])
    assert [(r[0], r[1]) for r in st.iter_records("r")] == [(5, 1), (5, 2), (2, 1)]
    assert [v["a"] for _, _, v in st.iter_scalars("r")] == [1.0, 2.0, 3.0]
