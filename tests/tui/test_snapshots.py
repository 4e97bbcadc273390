"""Screen snapshots at two terminal sizes, asserted line by line.

The screens are built from pinned plain data (tuidata: fixed times, rates,
steps) with the time zone pinned to UTC. To accept an intended change, run
with GROKWATCH_UPDATE_SNAPSHOTS=1 and review the diff of tests/tui/snapshots/.
"""

from __future__ import annotations

import os
from pathlib import Path

import pytest
import tuidata as D
from tuidata import screen_text

from grokwatch.tui.app import GrokwatchApp

SNAP_DIR = Path(__file__).parent / "snapshots"
UPDATE = os.environ.get("GROKWATCH_UPDATE_SNAPSHOTS") == "1"

SCREENS = {
    "runs": [],
    "detail": ["down", "enter"],
    "compare": ["space", "down", "space", "c"],
    "alerts": ["a"],
    "filter": ["slash", "g", "r", "o", "k", "enter"],
}


# ASCII variants only where the drawing differs (runs with its preview, detail, compare).
SIZES = ((80, 24), (160, 48), (200, 50))
CASES = [(s, size, False) for s in SCREENS for size in SIZES] + [
    (s, size, True) for s in ("runs", "detail", "compare") for size in SIZES]


@pytest.mark.parametrize(("screen", "size", "ascii"), CASES,
                         ids=[f"{s}-{w}x{h}{'-ascii' if a else ''}" for s, (w, h), a in CASES])
async def test_snapshot(utc, screen: str, size: tuple[int, int], ascii: bool):
    app = GrokwatchApp(feed=False, ascii=ascii)
    async with app.run_test(size=size) as pilot:
        app.apply_messages([("snapshot", D.snapshot())])
        await pilot.pause()
        for key in SCREENS[screen]:
            await pilot.press(key)
        await pilot.pause()
        got = "\n".join(ln.rstrip() for ln in screen_text(app)) + "\n"
    name = f"{screen}_{size[0]}x{size[1]}{'_ascii' if ascii else ''}.txt"
    path = SNAP_DIR / name
    if UPDATE or not path.exists():
        path.write_text(got)
        if not UPDATE:
            pytest.fail(f"new snapshot {name} written: review it and run again")
    want = path.read_text()
    assert got.splitlines() == want.splitlines(), f"screen differs from {path}"
