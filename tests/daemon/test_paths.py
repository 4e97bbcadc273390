"""Endpoint checks and XDG paths."""

from __future__ import annotations

import pytest

from grokwatch.daemon import paths


@pytest.mark.parametrize("ep", ["tcp://127.0.0.1:7710", "tcp://localhost:1", "tcp://[::1]:5",
                                "tcp://127.0.0.2:9", "ipc:///tmp/x", "inproc://a"])
def test_local(ep):
    assert paths.is_local(ep)


@pytest.mark.parametrize("ep", ["tcp://*:7710", "tcp://0.0.0.0:7710", "tcp://10.1.2.3:1",
                                "tcp://eth0:7710", "tcp://example.com:80", "udp://127.0.0.1:1",
                                "tcp://[::]:5"])
def test_not_local(ep):
    assert not paths.is_local(ep)


def test_state_dir_follows_xdg(monkeypatch, tmp_path):
    monkeypatch.setenv("XDG_STATE_HOME", str(tmp_path))
    assert paths.default_db_path() == tmp_path / "grokwatch" / "grokwatch.db"
    monkeypatch.delenv("XDG_STATE_HOME")
    monkeypatch.setenv("HOME", str(tmp_path / "home"))
    assert paths.state_dir() == tmp_path / "home" / ".local" / "state" / "grokwatch"
