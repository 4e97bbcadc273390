"""TUI test helpers: deterministic data (tuidata.py), screen text, pinned time zone."""

from __future__ import annotations

import sys
import time
from pathlib import Path

import pytest

sys.path.insert(0, str(Path(__file__).parent))  # for `import tuidata`


@pytest.fixture
def utc(monkeypatch: pytest.MonkeyPatch):
    """Pin the local time zone so rendered clock times are stable."""
    monkeypatch.setenv("TZ", "UTC")
    time.tzset()
    yield
    monkeypatch.undo()
    time.tzset()
