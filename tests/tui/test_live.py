"""The TUI against a real daemon subprocess fed by real probes."""

from __future__ import annotations

import asyncio
import time

import pytest
from tuidata import screen_text
from tuiprobe import send_run

from grokwatch.tui.app import GrokwatchApp


async def wait_for(pilot, cond, timeout: float = 10.0, what: str = "") -> None:
    deadline = time.monotonic() + timeout
    while not cond():
        if time.monotonic() > deadline:
            raise AssertionError(f"timed out waiting for {what or cond}")
        await pilot.pause(0.05)


def text(app) -> str:
    return "\n".join(screen_text(app))


@pytest.mark.parametrize("size", [(80, 24), (160, 48)], ids=["80x24", "160x48"])
async def test_live_runs_filter_detail_compare(daemon, size):
    send_run(daemon.ingest, "alpha-k3", k=3)
    send_run(daemon.ingest, "beta-k5", k=5, val=0.4)
    # A long heartbeat timeout: on a loaded CI box a late hugz must not cause a
    # re-snapshot, since this test checks that live runs come on the stream.
    app = GrokwatchApp(api=daemon.api, pub=daemon.pub, heartbeat_timeout=10.0)
    async with app.run_test(size=size) as pilot:
        await wait_for(pilot, lambda: len(app.table.rows) == 2, what="the snapshot's runs")
        assert "connected" in screen_text(app)[0]
        # A run that starts while the TUI watches arrives through the update stream.
        snaps = app.model.snapshots
        await asyncio.to_thread(send_run, daemon.ingest, "gamma-k2", k=2)
        await wait_for(pilot, lambda: "gamma-k2" in text(app), what="a live run")
        assert app.model.snapshots == snaps
        assert app.table.rows == ["alpha-k3", "beta-k5", "gamma-k2"]
        # filter
        await pilot.press("slash", "b", "e", "t", "enter")
        assert app.table.rows == ["beta-k5"]
        await pilot.press("escape")
        assert len(app.table.rows) == 3 and app.table.current == "beta-k5"  # cursor kept
        # detail: sparklines, the spectrum with the key frequency marked, the constellation
        await pilot.press("home", "enter")
        assert app.view == "detail" and app.detail.rv.run == "alpha-k3"
        await wait_for(pilot, lambda: "key k: 3" in text(app) or app.detail.max_scroll_y > 0,
                       what="detail drawn")
        seen = ""
        for _ in range(6):
            seen += text(app)
            await pilot.press("pagedown")
        assert "train_loss" in seen and "embed.fourier_conc" in seen
        assert any(c in seen for c in "▁▂▃▄▅▆▇█")  # sparklines
        assert "embed.fourier @" in seen and "key k: 3" in seen  # the spectrum, k=3 marked
        assert "embed.constellation @" in seen and any(0x2800 < ord(c) <= 0x28FF for c in seen)
        assert "embed.sv @" in seen
        # compare two runs on one metric
        await pilot.press("escape", "home", "space", "down", "space", "c")
        assert app.compare.runs == ["alpha-k3", "beta-k5"]
        shown = text(app)
        assert "compare: val_acc" in shown and "alpha-k3" in shown and "beta-k5" in shown
        await pilot.press("q")


async def test_live_alert_appears_in_alerts_view(daemon):
    app = GrokwatchApp(api=daemon.api, pub=daemon.pub, heartbeat_timeout=10.0)
    async with app.run_test(size=(80, 24)) as pilot:
        await wait_for(pilot, lambda: app.model.connected, what="connection")
        await pilot.pause(0.3)  # let the SUB socket's connection settle
        snaps = app.model.snapshots
        await pilot.press("a")
        assert "none yet" in text(app)
        # train_acc reaches 1 at step 10 with val_acc at 0.1: the daemon flags memorization.
        await asyncio.to_thread(send_run, daemon.ingest, "memo-run", steps=30)
        await wait_for(pilot, lambda: "memorized" in text(app), what="the memorized alert")
        row = next(ln for ln in screen_text(app) if "memorized" in ln)
        assert "memo-run" in row and "firing" in row
        assert app.model.snapshots == snaps  # it came on the update stream, not a re-snapshot


async def test_live_hook_results_show_in_alerts_view(start_daemon, tmp_path):
    hooks = tmp_path / "hooks.toml"
    hooks.write_text('[[hook]]\nname = "tell-me"\non = ["memorized"]\n'
                     'exec = ["/bin/sh", "-c", "cat > /dev/null; exit 3"]\n')
    d = start_daemon(hooks=hooks)
    app = GrokwatchApp(api=d.api, pub=d.pub)
    async with app.run_test(size=(100, 30)) as pilot:
        await wait_for(pilot, lambda: app.model.connected, what="connection")
        await pilot.press("a")
        await asyncio.to_thread(send_run, d.ingest, "hooked-run", steps=30)
        await wait_for(pilot, lambda: "tell-me" in text(app), what="the hook result")
        row = next(ln for ln in screen_text(app) if "tell-me" in ln)
        assert "hook" in row and "failed" in row and "rc=3" in row and "hooked-run" in row


async def test_no_daemon_shows_disconnected_and_quits_promptly(tmp_path):
    app = GrokwatchApp(api=f"ipc://{tmp_path}/none-api", pub=f"ipc://{tmp_path}/none-pub")
    async with app.run_test(size=(80, 24)) as pilot:
        await wait_for(pilot, lambda: "disconnected" in screen_text(app)[0], timeout=5,
                       what="the disconnected banner")
        assert "no runs yet" in text(app)
        await pilot.press("a")  # the UI answers keys with no daemon
        assert app.view == "alerts"
        t0 = time.monotonic()
        await pilot.press("q")
    assert time.monotonic() - t0 < 3.0


async def test_live_disconnect_keeps_state_then_reconnects(daemon):
    send_run(daemon.ingest, "before-restart")
    app = GrokwatchApp(api=daemon.api, pub=daemon.pub, heartbeat_timeout=1.0)
    async with app.run_test(size=(80, 24)) as pilot:
        await wait_for(pilot, lambda: "before-restart" in text(app), what="first snapshot")
        daemon.stop()
        await wait_for(pilot, lambda: "DISCONNECTED" in screen_text(app)[0], timeout=8,
                       what="the disconnected banner")
        assert "before-restart" in text(app)  # the last state stays on screen
        await pilot.press("down", "up")  # the UI still answers keys while disconnected
        daemon.start()
        await wait_for(pilot, lambda: app.model.connected, timeout=15, what="reconnection")
        assert app.model.snapshots >= 2
        assert "before-restart" in text(app)  # reloaded by the daemon from its store
        await asyncio.to_thread(send_run, daemon.ingest, "after-restart")
        await wait_for(pilot, lambda: "after-restart" in text(app), what="updates after it")


async def test_live_restart_gives_fresh_snapshot(daemon):
    send_run(daemon.ingest, "r1")
    app = GrokwatchApp(api=daemon.api, pub=daemon.pub, heartbeat_timeout=1.0)
    async with app.run_test(size=(80, 24)) as pilot:
        await wait_for(pilot, lambda: "r1" in app.model.runs, what="first snapshot")
        await pilot.pause(0.3)
        snaps = app.model.snapshots
        await asyncio.to_thread(daemon.restart)
        await asyncio.to_thread(send_run, daemon.ingest, "r2")
        await wait_for(pilot, lambda: "r2" in app.model.runs and app.model.connected,
                       timeout=15, what="state after restart")
        assert app.model.snapshots > snaps  # a restarted daemon means a fresh snapshot
        assert "r1" in app.model.runs
