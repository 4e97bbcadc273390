"""Hooks through a real daemon: real probe, real alerts, real hook processes."""

from __future__ import annotations

import json
import os
import subprocess
import sys
import time
from pathlib import Path

import pytest
from gwcli import GROKWATCH
from hooktools import HANG, group_members, make_script
from waiting import wait_for

from grokwatch.probe import Probe


def alerts_json(d) -> dict:
    p = subprocess.run([*GROKWATCH, "alerts", "--json", "--api", d.api],
                       text=True, capture_output=True, timeout=30)
    assert p.returncode == 0, p.stderr
    return json.loads(p.stdout)


def diverge(endpoint: str, run: str, *, config: dict | None = None, steps: int = 20) -> None:
    """A short run whose loss turns NaN: the detectors' ``diverged`` alert."""
    with Probe(run, endpoint=endpoint, config=config or {}) as p:
        for s in range(steps):
            p.log(s, train_loss=2.0 - 0.01 * s, train_acc=0.1)
        p.log(steps, train_loss=float("nan"), train_acc=0.1)
        assert p.close(10)


RECORD = """#!{python}
import json, os, sys
doc = json.load(sys.stdin)
env = {{k: v for k, v in os.environ.items() if k.startswith("GROKWATCH_")}}
path = os.path.join(os.environ["OUT_DIR"], doc["kind"] + "-" + doc["status"] + ".json")
with open(path + ".tmp", "w") as f:
    json.dump({{"doc": doc, "env": env, "argv": sys.argv[1:]}}, f)
os.rename(path + ".tmp", path)
"""


def test_alert_from_a_real_run_reaches_the_hook(tmp_path: Path, start_daemon) -> None:
    out = tmp_path / "out"
    out.mkdir()
    make_script(tmp_path / "record.py", RECORD.format(python=sys.executable))
    hooks = tmp_path / "hooks.toml"
    hooks.write_text(f"""
[[hook]]
name = "record"
on = ["diverged"]
runs = "div*"
exec = ["./record.py", "{{run}}", "{{kind}}@{{step}}"]
env = {{ OUT_DIR = "{out}" }}
""")
    d = start_daemon(hooks=hooks)
    run = "div; touch pwned $(touch pwned)"
    diverge(d.ingest, run, config={"lr": 0.5, "wd": 1.0, "task": "add"})
    seen_path = wait_for(lambda: next(out.glob("diverged-firing.json"), None))
    assert seen_path, d.stderr_text()
    seen = json.loads(seen_path.read_text())
    doc = seen["doc"]
    assert doc["kind"] == "diverged" and doc["status"] == "firing" and doc["run"] == run
    assert doc["step"] == 20 and doc["rule"] == "record"
    assert doc["labels"] == {"lr": 0.5, "wd": 1.0, "task": "add"}  # the run's config
    assert doc["time"].endswith("Z") and doc["summary"]
    assert seen["argv"] == [run, "diverged@20"]
    env = seen["env"]
    assert env["GROKWATCH_RUN"] == run and env["GROKWATCH_KIND"] == "diverged"
    assert env["GROKWATCH_STEP"] == "20" and env["GROKWATCH_FINGERPRINT"] == doc["fingerprint"]
    assert list(tmp_path.rglob("pwned")) == []
    # The result is stored and served: `grokwatch alerts --json` includes it.
    got = wait_for(lambda: [h for h in alerts_json(d)["hooks"] if h["rule"] == "record"])
    assert got and got[0]["result"] == "ok" and got[0]["run"] == run
    assert got[0]["fingerprint"] == doc["fingerprint"]
    # The hook's document is the alert exactly as `alerts --json` shows it, plus the
    # payload version and the rule's name.
    (shown,) = [a for a in alerts_json(d)["alerts"] if a["kind"] == "diverged"]
    assert {k: v for k, v in doc.items() if k not in ("version", "rule")} == shown


def test_alerts_json_shows_ok_failed_and_timeout_results(tmp_path: Path, start_daemon) -> None:
    make_script(tmp_path / "fail.sh", "#!/bin/sh\necho 'no route to chat' >&2\nexit 5\n")
    make_script(tmp_path / "hang.sh", "#!/bin/sh\nsleep 1000\n")
    hooks = tmp_path / "hooks.toml"
    hooks.write_text("""
[[hook]]
name = "fine"
on = "diverged"
exec = ["true"]

[[hook]]
name = "broken"
on = "diverged"
exec = ["./fail.sh"]
retries = 1
backoff = 0.1

[[hook]]
name = "stuck"
on = "diverged"
exec = ["./hang.sh"]
timeout = 0.5
""")
    d = start_daemon(hooks=hooks)
    diverge(d.ingest, "r1")

    def three() -> dict | None:
        got = {h["rule"]: h for h in alerts_json(d)["hooks"]}
        return got if len(got) == 3 else None

    got = wait_for(three, 20, 0.3)
    assert got, d.stderr_text()
    assert got["fine"]["result"] == "ok" and got["fine"]["rc"] == 0
    assert got["broken"]["result"] == "failed" and got["broken"]["rc"] == 5
    assert got["broken"]["attempts"] == 2 and "no route to chat" in got["broken"]["detail"]
    assert got["stuck"]["result"] == "timeout"
    for h in got.values():
        assert h["alert_kind"] == "diverged" and h["run"] == "r1" and h["status"] == "firing"
    (a,) = [a for a in alerts_json(d)["alerts"] if a["kind"] == "diverged"]
    assert {h["fingerprint"] for h in got.values()} == {a["fingerprint"]}
    # The failure is logged by the daemon too (one line each, no traceback).
    assert "broken" in d.stderr_text() and "Traceback" not in d.stderr_text()


def test_alerts_follow_json_streams_hook_events(tmp_path: Path, start_daemon) -> None:
    hooks = tmp_path / "hooks.toml"
    hooks.write_text('[[hook]]\nname = "fine"\non = "*"\nexec = ["true"]\n')
    d = start_daemon(hooks=hooks)
    follow = subprocess.Popen([*GROKWATCH, "alerts", "--follow", "--json",
                               "--api", d.api, "--pub", d.pub], stdout=subprocess.PIPE, text=True)
    try:
        time.sleep(1.0)  # let it subscribe before the alert exists
        diverge(d.ingest, "streamed")
        lines: list[dict] = []
        deadline = time.monotonic() + 20
        while time.monotonic() < deadline and not any("hook" in x for x in lines):
            line = follow.stdout.readline()
            if line:
                lines.append(json.loads(line))
    finally:
        follow.terminate()
        follow.wait(10)
    hook_lines = [x["hook"] for x in lines if "hook" in x]
    assert hook_lines and hook_lines[0]["rule"] == "fine" and hook_lines[0]["result"] == "ok"
    assert hook_lines[0]["run"] == "streamed"


def test_hanging_hook_does_not_slow_ingest(tmp_path: Path, start_daemon) -> None:
    pidfile = tmp_path / "pid"
    make_script(tmp_path / "hang.sh", HANG.format(pidfile=pidfile))
    hooks = tmp_path / "hooks.toml"
    hooks.write_text('[[hook]]\non = "*"\nexec = ["./hang.sh"]\ntimeout = 120\ncooldown = 0\n')
    d = start_daemon(hooks=hooks)
    diverge(d.ingest, "first")
    assert wait_for(lambda: pidfile.exists() and pidfile.read_text().strip()), d.stderr_text()
    pgid = int(pidfile.read_text())
    # While that hook hangs, a probe streams 20,000 scalar records; the daemon acks and
    # stores every one of them, and the hook is still hanging when the last is acked.
    n = 20_000
    with Probe("busy", endpoint=d.ingest, capacity=n + 100) as p:
        for s in range(n):
            p.log(s, train_loss=1.0 / (s + 1))
        assert p.close(60), p.stats()
        st = p.stats()
    assert st["acked"] == st["seq"] and st["dropped"] == 0
    assert group_members(pgid), "the hook should still be hanging"
    status = d.request("status")["status"]
    assert status["queues"]["hooks"]["running"] == 1
    rows = d.request("export", run="busy", metric="train_loss")["rows"]
    assert len(rows) == n
    # At shutdown the daemon kills the hanging hook's whole process group.
    assert d.stop() == 0
    assert wait_for(lambda: group_members(pgid) == [], 10), group_members(pgid)


def test_invalid_hooks_file_stops_the_daemon_at_start(tmp_path: Path, start_daemon) -> None:
    hooks = tmp_path / "hooks.toml"
    hooks.write_text('[[hook]]\nname = "ok"\non = "*"\nexec = ["true"]\n\n'
                     '[[hook]]\nname = "pager"\non = ["lost", "stalled"]\n'
                     'exec = "curl https://example.invalid/{run}"\n')
    d = start_daemon(hooks=hooks, wait=False)
    assert d.proc.wait(30) == 2
    lines = [x for x in d.stderr_text().splitlines() if x.strip()]
    assert len(lines) == 1, lines
    assert "hook #2 ('pager') field 'exec'" in lines[0] and "not a shell string" in lines[0]
    assert str(hooks) in lines[0]


def test_default_hooks_file_from_xdg_config_home(tmp_path: Path, start_daemon) -> None:
    out = tmp_path / "out"
    out.mkdir()
    make_script(tmp_path / "record.py", RECORD.format(python=sys.executable))
    cfg = tmp_path / "xdg"
    (cfg / "grokwatch").mkdir(parents=True)
    (cfg / "grokwatch" / "hooks.toml").write_text(f"""
[[hook]]
on = "diverged"
exec = ["{tmp_path / 'record.py'}"]
env = {{ OUT_DIR = "{out}" }}
""")
    d = start_daemon(env={"XDG_CONFIG_HOME": str(cfg)})
    diverge(d.ingest, "xdg-run")
    seen = wait_for(lambda: next(out.glob("diverged-firing.json"), None))
    assert seen, d.stderr_text()
    assert json.loads(seen.read_text())["doc"]["run"] == "xdg-run"


@pytest.mark.slow
def test_silent_run_lost_then_resolved_reach_hooks(tmp_path: Path, start_daemon) -> None:
    out = tmp_path / "out"
    out.mkdir()
    make_script(tmp_path / "record.py", RECORD.format(python=sys.executable))
    hooks = tmp_path / "hooks.toml"
    hooks.write_text(f"""
[[hook]]
on = ["lost"]
status = "any"
exec = ["./record.py"]
env = {{ OUT_DIR = "{out}" }}
""")
    d = start_daemon(hooks=hooks, lost_after=1.5)
    p = Probe("quiet", endpoint=d.ingest)
    try:
        for s in range(5):
            p.log(s, train_loss=1.0)
        fired = wait_for(lambda: next(out.glob("lost-firing.json"), None), 20, 0.2)
        assert fired, d.stderr_text()
        assert json.loads(fired.read_text())["doc"]["run"] == "quiet"
        p.log(6, train_loss=1.0)  # it speaks again: the lost alert resolves
        resolved = wait_for(lambda: next(out.glob("lost-resolved.json"), None), 20, 0.2)
        assert resolved, d.stderr_text()
        assert json.loads(resolved.read_text())["doc"]["status"] == "resolved"
    finally:
        p.close(5)
    assert os.path.exists(d.db)
