"""bench/tui_load.py measures lags with a subclass of the product's app (nothing in the TUI)."""

from __future__ import annotations

import importlib.util
from pathlib import Path

import pytest
import tuidata as D

BENCH = Path(__file__).resolve().parents[2] / "bench" / "tui_load.py"


def _bench():
    spec = importlib.util.spec_from_file_location("tui_load_bench", BENCH)
    mod = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(mod)
    return mod


async def test_lag_app_writes_a_line_per_painted_update(tmp_path: Path) -> None:
    bench = _bench()
    lagfile = tmp_path / "lags.txt"
    app = bench.lag_app(f"ipc://{tmp_path}/api", f"ipc://{tmp_path}/pub", lagfile)
    assert type(app.feed).__name__ == "StampingFeed"
    s = D.summary("r")
    s["last"][bench.LAG_SCALAR] = 100.0
    async with app.run_test(size=(80, 24)) as pilot:
        app.apply_messages([("snapshot", D.snapshot())])
        app.apply_messages([("run", {**D.update(s), "_recv": 101.0}),
                            ("run", D.update(D.summary("no-stamp")))])
        await pilot.pause()
        assert "r" in app.model.runs and "no-stamp" in app.model.runs
    lines = lagfile.read_text().split("\n")[:-1]  # flushed when the app unmounts
    assert len(lines) == 1, lines
    send_to_paint, recv_to_paint = map(float, lines[0].split())
    assert send_to_paint - recv_to_paint == pytest.approx(1.0, abs=1e-3)
