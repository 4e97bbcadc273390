"""The daemon's lock files: one daemon per store and ipc endpoint, and no lock left behind."""

from __future__ import annotations

import signal
import subprocess

import pytest

from grokwatch.daemon.server import DaemonError, _Lock


def lock_files(d) -> list[str]:
    return sorted(p.name for p in [*d.sockdir.glob("*.lock"), *d.db.parent.glob("*.lock")])


def test_a_clean_exit_removes_the_daemons_own_lock_files(daemon):
    assert lock_files(daemon) == ["api.lock", "grokwatch.db.lock", "ingest.lock", "pub.lock"]
    assert daemon.stop(signal.SIGTERM) == 0
    assert lock_files(daemon) == []
    assert not list(daemon.sockdir.iterdir())  # the sockets are gone too
    daemon.start()  # and the next daemon starts on the same paths
    assert daemon.request("ping")["ok"]
    assert daemon.stop(signal.SIGINT) == 0
    assert lock_files(daemon) == []


def test_a_refused_second_daemon_leaves_the_first_ones_locks(daemon, tmp_path):
    before = {p: p.read_text() for p in [*daemon.sockdir.glob("*.lock"),
                                         *daemon.db.parent.glob("*.lock")]}
    second = subprocess.run(daemon.cmd, capture_output=True, text=True, timeout=30,
                            env=daemon.env, cwd=tmp_path)
    assert second.returncode == 1
    assert "already using" in second.stderr
    assert {p: p.read_text() for p in before} == before  # still there, same pid inside
    assert daemon.request("ping")["ok"]
    third = subprocess.run(daemon.cmd, capture_output=True, text=True, timeout=30,
                           env=daemon.env, cwd=tmp_path)
    assert third.returncode == 1  # the first daemon's lock still holds


def test_release_never_removes_a_lock_file_that_is_not_its_own(tmp_path):
    path = tmp_path / "x.lock"
    mine = _Lock(path, "x")
    with pytest.raises(DaemonError, match="already using"):
        _Lock(path, "x")
    path.unlink()  # someone removed it; another daemon then took the path
    other = _Lock(path, "x")
    mine.release()
    assert path.exists() and path.read_text().strip()  # the other's file is kept
    other.release()
    assert not path.exists()
