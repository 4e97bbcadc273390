"""The phase diagram view: a sweep's grid of live phases, its keys, and screen snapshots."""

from __future__ import annotations

import os
from pathlib import Path

import pytest
import tuidata as D
from tuidata import screen_text

from grokwatch.tui.app import GrokwatchApp
from grokwatch.wire import messages

SNAP_DIR = Path(__file__).parent / "snapshots"
UPDATE = os.environ.get("GROKWATCH_UPDATE_SNAPSHOTS") == "1"

WDS = [0.0, 0.1, 1.0, 5.0, 20.0]
FRACS = [0.1, 0.2, 0.35, 0.6]


def expected(wd: float, frac: float) -> tuple[str, int | None]:
    """The textbook arrangement: memorization at wd 0, confusion with little data or
    heavy decay, grokking between, comprehension with plenty of data."""
    if wd >= 20.0 or frac <= 0.1:
        return "confusion", None
    if wd == 0.0:
        return "memorization", None
    if frac >= 0.6:
        return "comprehension", None
    return "grokking", int(300 + 1000 * wd * (0.4 - frac))


def sweep_run(wd: float, frac: float, i: int, *, phase: str | None = None,
              status: str | None = None) -> dict:
    ph, onset = expected(wd, frac)
    s = D.summary(f"demo-weight_decay={wd:g}-frac={frac:g}", step=1500, phase=phase or ph,
                  onset=onset, state="finished", val_acc=0.99 if ph in ("grokking",
                                                                        "comprehension") else 0.03)
    s["config"] = {"sweep": "demo", "sweep_axes": ["weight_decay", "frac"], "trial": i,
                   "weight_decay": wd, "frac": frac, "lr": 0.01 if wd < 5 else 0.003,
                   "model": "quadratic"}
    if status:
        s["config"]["sweep_status"] = status
    s["start"] = D.T0 + i
    return s


def sweep_snapshot(extra: list[dict] | None = None) -> dict:
    runs = []
    i = 0
    for wd in WDS:
        for frac in FRACS:
            status = "failed" if (wd, frac) == (5.0, 0.2) else None
            runs.append(messages.run_data(sweep_run(wd, frac, i, status=status),
                                          series=D.series(grok_at=120)))
            i += 1
    # a run from another sweep and a plain run: not in the default group
    other = D.summary("other-lr=0.1-wd=1")
    other["config"] = {"sweep": "other", "lr": 0.1, "wd": 1.0}
    runs.append(messages.run_data(other))
    runs.append(messages.run_data(D.summary("plain")))
    runs += extra or []
    return messages.snapshot_reply(seq=5, epoch=None, runs=runs, alerts=[], hooks=[])


async def open_phases(app: GrokwatchApp, pilot, snap: dict | None = None) -> None:
    app.apply_messages([("snapshot", snap or sweep_snapshot())])
    await pilot.pause()
    await pilot.press("p")
    await pilot.pause()


def grid_rows(app: GrokwatchApp) -> dict[str, list[str]]:
    """y label -> the letters of its row, read off the screen."""
    out = {}
    for ln in screen_text(app):
        left, bar, rest = ln.partition("│" if "│" in ln else "|")
        if bar and left.strip().replace(".", "").isdigit():
            out[left.strip()] = [tok for tok in rest.replace("[", " ").replace("]", " ").split()
                                 if not tok.isdigit()]
    return out


async def test_grid_letters_follow_live_phases():
    app = GrokwatchApp(feed=False)
    async with app.run_test(size=(80, 24)) as pilot:
        await open_phases(app, pilot)
        rows = grid_rows(app)
        assert list(rows) == ["0.6", "0.35", "0.2", "0.1"]  # largest frac on top
        assert rows["0.6"] == ["M", "C", "C", "C", "X"]
        assert rows["0.35"] == ["M", "G", "G", "G", "X"]
        assert rows["0.2"] == ["M", "G", "G", "F", "X"]  # the failed trial
        assert rows["0.1"] == ["X", "X", "X", "X", "X"]
        assert "other" not in "\n".join(screen_text(app))
        # live: a run's phase changes, its cell follows
        s = sweep_run(0.0, 0.35, 2, phase="grokking")
        s["onset_step"] = 777
        app.apply_messages([("run", D.update(s, seq=6))])
        await pilot.pause()
        assert grid_rows(app)["0.35"][0] == "G"
        assert "777" in "\n".join(screen_text(app))


async def test_cursor_preview_enter_axes_and_group():
    app = GrokwatchApp(feed=False)
    async with app.run_test(size=(80, 24)) as pilot:
        await open_phases(app, pilot)
        pm = app.phase_map
        assert pm.current == "demo-weight_decay=0-frac=0.1"
        for key in ("right", "right", "up", "up"):
            await pilot.press(key)
        await pilot.pause()
        assert pm.current == "demo-weight_decay=1-frac=0.35"
        text = "\n".join(screen_text(app))
        assert "demo-weight_decay=1-frac=0.35  grokking" in text  # the preview
        await pilot.press("t")  # swap: frac across, weight_decay up
        await pilot.pause()
        assert (pm.grid().x, pm.grid().y) == ("frac", "weight_decay")
        assert pm.current == "demo-weight_decay=1-frac=0.35"
        await pilot.press("x")  # next key across: lr (model does not vary, trial is the sweep's)
        await pilot.pause()
        assert (pm.grid().x, pm.grid().y) == ("lr", "weight_decay")
        await pilot.press("x")
        await pilot.pause()
        assert pm.grid().x == "frac"
        await pilot.press("g")  # the other sweep
        await pilot.pause()
        assert pm.current_group() == "other"
        assert "no config key with two or more values" in "\n".join(screen_text(app))
        await pilot.press("g")
        await pilot.press("g")
        await pilot.pause()
        assert pm.current_group() == "demo"
        await pilot.press("enter")
        await pilot.pause()
        assert app.view == "detail" and app.selected == pm.current


# Snapshots: the narrow terminal (80x24), the wide one, and plain ASCII.
CASES = [((80, 24), False), ((160, 48), False), ((80, 24), True)]


@pytest.mark.parametrize(("size", "ascii"), CASES,
                         ids=[f"{w}x{h}{'-ascii' if a else ''}" for (w, h), a in CASES])
async def test_snapshot(utc, size: tuple[int, int], ascii: bool):
    # Endpoints pinned: the default ones depend on $XDG_RUNTIME_DIR and the uid.
    app = GrokwatchApp(api="ipc:///run/gw/api", pub="ipc:///run/gw/pub", feed=False,
                       ascii=ascii)
    async with app.run_test(size=size) as pilot:
        await open_phases(app, pilot)
        await pilot.press("right", "up", "up")
        await pilot.pause()
        got = "\n".join(ln.rstrip() for ln in screen_text(app)) + "\n"
    name = f"phases_{size[0]}x{size[1]}{'_ascii' if ascii else ''}.txt"
    path = SNAP_DIR / name
    if UPDATE or not path.exists():
        path.write_text(got)
        if not UPDATE:
            pytest.fail(f"new snapshot {name} written: review it and run again")
    assert got.splitlines() == path.read_text().splitlines(), f"screen differs from {path}"


async def test_eight_by_eight_fits_80x24():
    runs = []
    for i in range(8):
        for j in range(8):
            s = D.summary(f"big-a={i}-b={j}", phase="grokking", onset=10000 + i * 100 + j)
            s["config"] = {"sweep": "big", "sweep_axes": ["a", "b"], "a": i, "b": j}
            runs.append(messages.run_data(s))
    snap = messages.snapshot_reply(seq=1, epoch=None, runs=runs, alerts=[], hooks=[])
    app = GrokwatchApp(feed=False, ascii=True)
    async with app.run_test(size=(80, 24)) as pilot:
        await open_phases(app, pilot, snap)
        rows = grid_rows(app)
        assert list(rows) == [str(j) for j in range(7, -1, -1)]
        assert all(r == ["G"] * 8 for r in rows.values()), rows
        text = "\n".join(screen_text(app))
        assert "10707" in text and "more off screen" not in text


async def test_demo_sweep_app_opens_on_the_phase_view():
    from grokwatch.cli.sweep import phases_app

    app = phases_app("ipc:///nonexistent/api", "ipc:///nonexistent/pub", feed=False)
    async with app.run_test(size=(80, 24)) as pilot:
        await pilot.pause()
        app.apply_messages([("snapshot", sweep_snapshot())])
        await pilot.pause()
        assert app.view == "phases" and app.focused is app.phase_map
        await pilot.press("right")
        await pilot.pause()
        assert app.phase_map.current == "demo-weight_decay=0.1-frac=0.1"
