"""The README's pictures of the TUI are made here, from the real app on pinned data,
so they never drift from the code: docs/tui-detail.svg (Textual's SVG export of a
run's detail) and the 80x24 text capture between the README's ``tui-capture``
markers. GROKWATCH_UPDATE_SNAPSHOTS=1 rewrites both; review the diff.
"""

from __future__ import annotations

import os
import re
from pathlib import Path

import pytest
from test_screens_issue13 import user_snapshot
from tuidata import screen_text

from grokwatch.tui.app import GrokwatchApp

ROOT = Path(__file__).parents[2]
README = ROOT / "README.md"
SVG = ROOT / "docs" / "tui-detail.svg"
UPDATE = os.environ.get("GROKWATCH_UPDATE_SNAPSHOTS") == "1"
RUNS = ("grokking", "memorization")
BLOCK = re.compile(r"(<!-- tui-capture: runs 80x24 -->\n```\n)(.*?)(```\n)", re.S)


async def capture(keys: list[str], size: tuple[int, int]) -> GrokwatchApp:
    app = GrokwatchApp(feed=False)
    async with app.run_test(size=size) as pilot:
        app.apply_messages([("snapshot", user_snapshot(RUNS))])
        await pilot.pause()
        for k in keys:
            await pilot.press(k)
        await pilot.pause()
        app.svg = app.export_screenshot(title="grokwatch")  # type: ignore[attr-defined]
        app.text = "\n".join(ln.rstrip() for ln in screen_text(app)) + "\n"  # type: ignore
    return app


async def test_readme_svg_of_the_detail_is_current(utc):
    app = await capture(["enter"], (100, 32))
    svg: str = app.svg  # type: ignore[attr-defined]
    assert "<svg" in svg and "grokking" in svg
    if UPDATE or not SVG.exists():
        SVG.parent.mkdir(exist_ok=True)
        SVG.write_text(svg)
        if not UPDATE:
            pytest.fail(f"new {SVG} written: review it and run again")
    assert SVG.read_text() == svg, f"{SVG} is stale: GROKWATCH_UPDATE_SNAPSHOTS=1 rewrites it"
    assert "docs/tui-detail.svg" in README.read_text()


async def test_readme_text_capture_is_current(utc):
    app = await capture([], (80, 24))
    text: str = app.text  # type: ignore[attr-defined]
    readme = README.read_text()
    m = BLOCK.search(readme)
    assert m, "README lacks the <!-- tui-capture: runs 80x24 --> block"
    if UPDATE:
        README.write_text(readme[:m.start(2)] + text + readme[m.end(2):])
        return
    assert m.group(2) == text, "README's TUI capture is stale: GROKWATCH_UPDATE_SNAPSHOTS=1"
