"""The app driven by Pilot with plain-data messages (no daemon): keys, views, layout."""

from __future__ import annotations

import pytest
import tuidata as D
from rich.color import Color
from tuidata import screen_text

from grokwatch.tui.app import GrokwatchApp
from grokwatch.tui.model import Model


async def started(pilot, app: GrokwatchApp, snap: dict | None = None) -> None:
    app.apply_messages([("snapshot", snap or D.snapshot())])
    await pilot.pause()


async def test_table_navigation_sort_and_open_detail():
    app = GrokwatchApp(feed=False)
    async with app.run_test(size=(80, 24)) as pilot:
        await started(pilot, app)
        assert app.table.current == "grok-wd1"
        await pilot.press("down", "down")
        assert app.table.current == "nan-lr1"
        await pilot.press("up")
        assert app.table.current == "memo-wd0"
        await pilot.press("enter")
        assert app.view == "detail" and app.detail.rv.run == "memo-wd0"
        text = "\n".join(screen_text(app))
        assert "memo-wd0" in text and "phase memorization" in text and "val_acc" in text
        await pilot.press("right_square_bracket")  # next run, still in detail
        assert app.detail.rv.run == "nan-lr1"
        await pilot.press("escape")
        assert app.view == "runs"
        await pilot.press("s")  # name -> step
        assert app.table.sort == "step"
        assert app.table.rows == ["nan-lr1", "memo-wd0", "grok-wd1"]  # ascending step
        await pilot.press("r")
        assert app.table.rows == ["grok-wd1", "memo-wd0", "nan-lr1"]
        assert app.table.current == "nan-lr1"  # the cursor follows its run


async def test_filter_live_and_escape_clears():
    app = GrokwatchApp(feed=False)
    async with app.run_test(size=(80, 24)) as pilot:
        await started(pilot, app)
        await pilot.press("slash", "m", "e", "m", "o")
        assert app.table.rows == ["memo-wd0"]
        await pilot.press("enter")
        assert app.table.has_focus and app.table.filter == "memo"
        assert "filter 'memo'" in screen_text(app)[0]
        lines = screen_text(app)
        assert any("memo-wd0" in ln for ln in lines) and not any("grok-wd1" in ln for ln in lines)
        await pilot.press("escape")
        assert app.table.filter == "" and len(app.table.rows) == 3
        await pilot.press("slash", "z", "z", "z")
        assert "no runs match the filter" in "\n".join(screen_text(app))
        await pilot.press("escape")  # esc in the filter box clears it
        assert app.table.filter == "" and len(app.table.rows) == 3


async def test_mark_and_compare_overlay():
    app = GrokwatchApp(feed=False)
    async with app.run_test(size=(80, 24)) as pilot:
        await started(pilot, app)
        await pilot.press("space", "down", "space")
        assert app.table.marked == ["grok-wd1", "memo-wd0"]
        await pilot.press("c")
        assert app.view == "compare" and app.compare.runs == ["grok-wd1", "memo-wd0"]
        text = "\n".join(screen_text(app))
        assert "compare: val_acc" in text and "grok-wd1" in text and "memo-wd0" in text
        await pilot.press("m")
        assert app.compare.metric != "val_acc"
        assert f"compare: {app.compare.metric}" in "\n".join(screen_text(app))


async def test_alerts_view_newest_first_with_hooks_and_live_alert():
    app = GrokwatchApp(feed=False)
    async with app.run_test(size=(80, 24)) as pilot:
        await started(pilot, app)
        await pilot.press("a")
        lines = screen_text(app)
        body = [ln for ln in lines if ln[:2].isdigit()]
        assert [ln.split()[1] for ln in body[:5]] == ["diverged", "hook", "onset", "memorized",
                                                     "memorized"]
        app.apply_messages([("alert", {"seq": 6, "alert": D.alert("memo-wd0", "stalled", 5,
                                                                  D.T0 + 500)})])
        await pilot.pause()
        first = [ln for ln in screen_text(app) if ln[:2].isdigit()][0]
        assert "stalled" in first and "memo-wd0" in first


async def test_disconnected_keeps_state_and_reconnect_replaces_it():
    app = GrokwatchApp(feed=False)
    async with app.run_test(size=(80, 24)) as pilot:
        await started(pilot, app)
        app.apply_messages([("disconnected", {})])
        await pilot.pause()
        lines = screen_text(app)
        assert "DISCONNECTED" in lines[0]
        assert any("grok-wd1" in ln for ln in lines)  # last state still shown
        app.apply_messages([("snapshot", D.snapshot(n_runs=1))])
        await pilot.pause()
        lines = screen_text(app)
        assert "connected" in lines[0] and "DISCONNECTED" not in lines[0]
        assert not any("memo-wd0" in ln for ln in lines)


async def test_help_and_quit():
    app = GrokwatchApp(feed=False)
    async with app.run_test(size=(80, 24)) as pilot:
        await started(pilot, app)
        await pilot.press("question_mark")
        await pilot.pause()
        text = "\n".join(screen_text(app))
        assert "filter runs" in text and "compare marked runs" in text
        await pilot.press("escape")
        await pilot.pause()
        assert "filter runs" not in "\n".join(screen_text(app))
        await pilot.press("q")
    assert app.return_code == 0


@pytest.mark.parametrize("before", [(), ("slash", "x"), ("question_mark",), ("enter",)],
                         ids=["runs", "filter-box", "help", "detail"])
async def test_ctrl_c_quits_from_anywhere(before):
    app = GrokwatchApp(feed=False)
    async with app.run_test(size=(80, 24)) as pilot:
        await started(pilot, app)
        app.apply_messages([("snapshot", D.snapshot(n_runs=2))])
        await pilot.pause()
        await pilot.press(*before)
        await pilot.pause()
        assert not app._exit
        await pilot.press("ctrl+c")
        await pilot.pause()
        assert app._exit  # quitting, not a "press ctrl+q to quit" notice
    assert app.return_code == 0


async def test_detail_scrollbar_has_no_sparkline_lookalike_glyphs():
    # Textual's default thumb ends are eighth blocks, the sparklines' own glyphs: beside
    # a row's value they read as stray marks (`val_loss ... 0.7189▂▂` in tmux).
    app = GrokwatchApp(feed=False)
    async with app.run_test(size=(80, 24)) as pilot:
        await started(pilot, app)
        await pilot.press("enter")
        await pilot.pause()
        assert app.detail.max_scroll_y > 0  # taller than the pane: the bar is shown
        seen = []
        for _ in range(app.detail.max_scroll_y + 1):
            lines = screen_text(app)
            gutter = "".join(ln[app.detail.region.right - 2:app.detail.region.right]
                             for ln in lines[app.detail.region.y:app.detail.region.bottom])
            seen.append(gutter)
            await pilot.press("down")
            await pilot.pause()
        assert not any(set(g) & set("▁▂▃▄▅▆▇█") for g in seen), seen


async def test_wide_runs_view_shows_detail_beside_table():
    app = GrokwatchApp(feed=False)
    async with app.run_test(size=(160, 48)) as pilot:
        await started(pilot, app)
        lines = screen_text(app)
        row = next(ln for ln in lines if "memo-wd0" in ln and "memorization" in ln)
        assert row.index("memo-wd0") < 10  # table on the left
        assert any("key k: 14 35 41" in ln for ln in lines)  # spectrum on the right
        await pilot.press("down")
        assert app.detail.rv.run == "memo-wd0"  # the detail follows the cursor


async def test_ascii_mode_draws_only_ascii():
    app = GrokwatchApp(feed=False, ascii=True)
    async with app.run_test(size=(100, 40)) as pilot:
        await started(pilot, app)
        await pilot.press("enter")
        for _ in range(3):
            lines = screen_text(app)
            body = lines[1:-1]
            # the scroll bar is Textual's; everything we draw is ASCII
            assert all(ln.isascii() for ln in body), [ln for ln in body if not ln.isascii()]
            await pilot.press("pagedown")


async def test_updates_redraw_only_what_changed():
    app = GrokwatchApp(feed=False)
    async with app.run_test(size=(80, 24)) as pilot:
        await started(pilot, app)
        await pilot.press("enter")  # detail of grok-wd1
        await pilot.pause()
        builds = app.detail.series.builds
        ser = {"val_acc": {"steps": [3000], "values": [0.1]}}
        upd = D.update(D.summary("memo-wd0", step=3000), seq=6, series=ser)
        app.apply_messages([("run", upd)] * 5)
        await pilot.pause()
        assert app.detail.series.builds == builds  # another run's update: nothing redrawn
        upd = D.update(D.summary("grok-wd1", step=3000), seq=6, series=ser)
        app.apply_messages([("run", upd)])
        await pilot.pause()
        assert app.detail.series.builds == builds + 1
        assert "step 3000" in "\n".join(screen_text(app))


def test_model_is_plain():
    assert Model().runs == {}


async def test_ascii_mode_every_view_and_help_is_plain_ascii():
    app = GrokwatchApp(feed=False, ascii=True)
    async with app.run_test(size=(160, 48)) as pilot:
        await started(pilot, app)
        seen = []
        for keys in ([], ["enter"], ["pagedown"], ["escape", "space", "c"], ["a"],
                     ["question_mark"]):
            for k in keys:
                await pilot.press(k)
            await pilot.pause()
            lines = screen_text(app)
            seen.append(lines)
            bad = [ln for ln in lines if not ln.isascii()]
            assert not bad, f"after {keys}: {bad[:3]}"
        assert any("grok-wd1" in ln for ln in seen[0])


async def test_control_characters_from_the_wire_never_reach_the_terminal():
    snap = D.snapshot(n_runs=1)
    snap["runs"][0]["summary"]["host"] = "evil\x1b[2J\x07host"
    snap["runs"][0]["summary"]["config"] = {"note": "line1\nline2\x1b]0;pwned\x07"}
    snap["alerts"] = [dict(D.alert("grok-wd1", "onset", 5, D.T0), summary="a\x1b[31mred")]
    app = GrokwatchApp(feed=False)
    async with app.run_test(size=(160, 48)) as pilot:
        await started(pilot, app, snap)
        for keys in ([], ["enter"], ["a"]):
            for k in keys:
                await pilot.press(k)
            await pilot.pause()
            lines = screen_text(app)
            assert not any(c in ln for ln in lines for c in "\x1b\x07\n"), keys
        await pilot.press("1")
        await pilot.pause()
        assert any("evil?[2J?host" in ln for ln in screen_text(app))


async def test_cursor_row_is_highlighted_across_the_width():
    app = GrokwatchApp(feed=False)
    async with app.run_test(size=(80, 24)) as pilot:
        await started(pilot, app)
        await pilot.press("down")
        strips = app.screen._compositor.render_strips()
        row = next(s for s in strips if "memo-wd0" in s.text)
        other = next(s for s in strips if "grok-wd1" in s.text and "grokking" in s.text)
        cursor_bg = Color.parse("grey23").get_truecolor()

        def bgs(strip):
            return {seg.style.bgcolor.get_truecolor() if seg.style and seg.style.bgcolor
                    else None for seg in strip}

        assert bgs(row) == {cursor_bg}  # every cell of the cursor row, padding included
        assert cursor_bg not in bgs(other)
