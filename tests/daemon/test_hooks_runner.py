"""HookRunner with real hook processes: stdin/env, injection, timeouts, retries, storms."""

from __future__ import annotations

import json
import os
import sys
import threading
import time
import tracemalloc
from collections.abc import Iterator
from pathlib import Path

import pytest
from hooktools import HANG, group_members, make_script
from waiting import wait_for

from grokwatch.daemon import hooks as hooks_mod
from grokwatch.daemon.alert import Alert
from grokwatch.daemon.hookrules import parse_rules
from grokwatch.daemon.hooks import HookRunner


def alert(run: str = "modadd-1", kind: str = "onset", status: str = "firing", step: int = 420,
          **kw) -> dict:
    return Alert(run=run, step=step, t=time.time(), kind=kind, status=status,
                 summary=kw.pop("summary", f"{kind} on {run}"), **kw).to_wire()


def rules(tmp_path: Path, *tables: dict) -> list:
    return parse_rules({"hook": list(tables)}, base_dir=tmp_path)


@pytest.fixture
def runner_factory() -> Iterator:
    made: list[HookRunner] = []

    def make(rule_list: list, **kw) -> HookRunner:
        r = HookRunner(rule_list, **kw)
        made.append(r)
        return r

    yield make
    for r in made:
        r.close(timeout=0)


SHELL_HOOK = """#!/bin/sh
cat > "$OUT_DIR/stdin.json"
printf '%s\\n' "$@" > "$OUT_DIR/argv.txt"
env | grep '^GROKWATCH_' | sort > "$OUT_DIR/env.txt"
echo "hook done for $GROKWATCH_RUN"
"""

PY_HOOK = """#!{python}
import json, os, sys
doc = json.load(sys.stdin)
out = os.environ["OUT_DIR"]
with open(os.path.join(out, "seen.json"), "w") as f:
    json.dump({{"doc": doc, "argv": sys.argv[1:],
               "env": {{k: v for k, v in os.environ.items() if k.startswith("GROKWATCH_")}}}}, f)
"""


def test_shell_hook_gets_stdin_json_argv_and_env(tmp_path: Path, runner_factory) -> None:
    make_script(tmp_path / "hook.sh", SHELL_HOOK)
    rl = rules(tmp_path, {"name": "sh", "on": ["onset"], "runs": "modadd-*",
                          "exec": ["./hook.sh", "{run}", "at step {step}", "{kind}!"],
                          "env": {"OUT_DIR": str(tmp_path)}})
    r = runner_factory(rl)
    a = alert("modadd-p97", "onset", step=4200, evidence={"z": 8.3},
              labels={"lr": 0.001, "modulus": 97})
    r.submit(a)
    assert r.wait_idle(10)
    doc = json.loads((tmp_path / "stdin.json").read_text())
    assert doc["status"] == "firing" and doc["kind"] == "onset" and doc["run"] == "modadd-p97"
    assert doc["step"] == 4200 and doc["fingerprint"] == a["fingerprint"]
    assert doc["time"] == a["time"] and doc["summary"] == "onset on modadd-p97"
    assert doc["evidence"] == {"z": 8.3} and doc["labels"] == {"lr": 0.001, "modulus": 97}
    assert doc["rule"] == "sh" and doc["version"] == 1
    assert (tmp_path / "argv.txt").read_text().splitlines() == [
        "modadd-p97", "at step 4200", "onset!"]
    env = dict(line.split("=", 1) for line in (tmp_path / "env.txt").read_text().splitlines())
    assert env["GROKWATCH_KIND"] == "onset" and env["GROKWATCH_RUN"] == "modadd-p97"
    assert env["GROKWATCH_STEP"] == "4200" and env["GROKWATCH_STATUS"] == "firing"
    assert env["GROKWATCH_SUMMARY"] == "onset on modadd-p97"
    assert env["GROKWATCH_FINGERPRINT"] == a["fingerprint"]
    (ev,) = r.drain_events()
    assert ev["result"] == "ok" and ev["rc"] == 0 and ev["attempts"] == 1
    assert ev["rule"] == "sh" and ev["alert_kind"] == "onset" and ev["run"] == "modadd-p97"
    assert ev["fingerprint"] == a["fingerprint"] and ev["status"] == "firing"
    assert ev["detail"] == "hook done for modadd-p97"  # the output's tail
    assert ev["time"].endswith("Z") and ev["duration"] >= 0
    assert r.drain_events() == []  # drained once
    assert r.stats()["ok"] == 1


def test_python_hook_gets_resolved_alert_with_nan_evidence(tmp_path: Path,
                                                           runner_factory) -> None:
    make_script(tmp_path / "hook.py", PY_HOOK.format(python=sys.executable))
    rl = rules(tmp_path, {"on": "*", "status": "resolved", "exec": ["./hook.py", "{step}"],
                          "env": {"OUT_DIR": str(tmp_path)}})
    r = runner_factory(rl)
    r.submit(alert("r", "diverged", "firing"))  # not for this rule: resolved only
    r.submit(alert("r", "diverged", "resolved", step=9,
                   evidence={"train_loss": float("nan")}))
    assert r.wait_idle(10)
    seen = json.loads((tmp_path / "seen.json").read_text())  # strict JSON: jq would read it
    assert seen["doc"]["status"] == "resolved" and seen["doc"]["step"] == 9
    assert seen["doc"]["evidence"] == {"train_loss": None}
    assert seen["argv"] == ["9"]
    assert seen["env"]["GROKWATCH_STATUS"] == "resolved"
    assert seen["env"]["GROKWATCH_RULE"] == "hook[1]"
    assert [e["result"] for e in r.drain_events()] == ["ok"]


@pytest.mark.parametrize("run", ["x; touch pwned", "$(touch pwned)", "`touch pwned`",
                                 "x && touch pwned #", "| touch pwned", "{kind}"])
def test_hostile_run_names_reach_hooks_as_data_only(tmp_path: Path, runner_factory,
                                                   monkeypatch: pytest.MonkeyPatch,
                                                   run: str) -> None:
    work = tmp_path / "cwd"
    work.mkdir()
    monkeypatch.chdir(work)  # hooks inherit the cwd: a pwned file would land here
    make_script(tmp_path / "hook.sh", SHELL_HOOK)
    make_script(tmp_path / "hook.py", PY_HOOK.format(python=sys.executable))
    out_sh, out_py = tmp_path / "sh", tmp_path / "py"
    out_sh.mkdir()
    out_py.mkdir()
    rl = rules(tmp_path,
               {"name": "sh", "on": "*", "exec": [str(tmp_path / "hook.sh"), "{run}", "-{run}-"],
                "env": {"OUT_DIR": str(out_sh)}},
               {"name": "py", "on": "*", "exec": [str(tmp_path / "hook.py"), "{run}"],
                "env": {"OUT_DIR": str(out_py)}},
               {"name": "echo", "on": "*", "exec": ["echo", "{run}"]})
    r = runner_factory(rl)
    r.submit(alert(run, "lost"))
    assert r.wait_idle(10)
    events = r.drain_events()
    assert sorted(e["result"] for e in events) == ["ok", "ok", "ok"]
    assert (out_sh / "argv.txt").read_text() == f"{run}\n-{run}-\n"
    assert json.loads((out_sh / "stdin.json").read_text())["run"] == run
    seen = json.loads((out_py / "seen.json").read_text())
    assert seen["argv"] == [run] and seen["doc"]["run"] == run
    assert seen["env"]["GROKWATCH_RUN"] == run
    assert [e["detail"] for e in events if e["rule"] == "echo"] == [" ".join(run.split())]
    assert list(tmp_path.rglob("pwned")) == []
    assert not Path("pwned").exists() and not (Path(__file__).parent / "pwned").exists()


HANG_IGNORING_TERM = """#!/bin/sh
trap '' TERM
echo $$ > "{pidfile}"
sleep 1000 &
sleep 1000
"""


@pytest.mark.parametrize("body,how", [(HANG, "SIGTERM"), (HANG_IGNORING_TERM, "SIGKILL")],
                         ids=["term", "ignores-term"])
def test_hook_that_hangs_is_killed_with_its_whole_group(tmp_path: Path, runner_factory,
                                                        body: str, how: str) -> None:
    pidfile = tmp_path / "pid"
    make_script(tmp_path / "hang.sh", body.format(pidfile=pidfile))
    rl = rules(tmp_path, {"on": "*", "exec": ["./hang.sh"], "timeout": 0.5, "retries": 2})
    r = runner_factory(rl, kill_grace=0.3)
    t0 = time.monotonic()
    r.submit(alert())
    assert wait_for(lambda: pidfile.exists() and pidfile.read_text().strip(), 10, 0.02)
    pgid = int(pidfile.read_text())
    assert os.getpgid(pgid) == pgid  # its own process group (new session) ...
    assert os.getsid(pgid) == pgid and pgid != os.getpgrp()
    assert len(group_members(pgid)) >= 2  # ... with the shell and its background sleep
    assert r.wait_idle(10)
    elapsed = time.monotonic() - t0
    (ev,) = r.drain_events()
    assert ev["result"] == "timeout" and how in ev["detail"]
    assert ev["attempts"] == 1  # a hang is not retried
    assert elapsed >= 0.5
    # The background child is gone too (SIGKILL lands asynchronously: allow a moment).
    assert wait_for(lambda: group_members(pgid) == [], 2, 0.02), group_members(pgid)
    assert r.stats()["timeout"] == 1


def test_cooldown_and_dedup_by_fingerprint(tmp_path: Path, runner_factory) -> None:
    log = tmp_path / "calls.txt"
    make_script(tmp_path / "count.sh", f'#!/bin/sh\necho "$1 $2" >> "{log}"\n')
    rl = rules(tmp_path, {"on": "*", "status": "any", "exec": ["./count.sh", "{run}", "{kind}"],
                          "cooldown": 0.6})
    r = runner_factory(rl)
    for _ in range(5):
        r.submit(alert("a", "onset"))  # same fingerprint: one run
    r.submit(alert("b", "onset"))  # another run: another fingerprint
    r.submit(alert("a", "lost"))  # another kind: another fingerprint
    r.submit(alert("a", "onset", "resolved"))  # its resolution is not swallowed
    r.submit(alert("a", "onset", "resolved"))
    assert r.wait_idle(10)
    assert sorted(log.read_text().splitlines()) == sorted(
        ["a onset", "b onset", "a lost", "a onset"])
    assert r.stats()["suppressed"] == 5
    time.sleep(0.7)  # past the cooldown: the same alert runs the hook again
    r.submit(alert("a", "onset"))
    assert r.wait_idle(10)
    assert log.read_text().splitlines().count("a onset") == 3


def test_cooldown_is_per_rule(tmp_path: Path, runner_factory) -> None:
    log = tmp_path / "calls.txt"
    make_script(tmp_path / "count.sh", f'#!/bin/sh\necho "$1" >> "{log}"\n')
    rl = rules(tmp_path, {"name": "one", "on": "*", "exec": ["./count.sh", "one"]},
               {"name": "two", "on": "*", "exec": ["./count.sh", "two"]})
    r = runner_factory(rl)
    r.submit(alert())
    r.submit(alert())
    assert r.wait_idle(10)
    assert sorted(log.read_text().splitlines()) == ["one", "two"]


def test_cooldown_table_is_bounded(tmp_path: Path, runner_factory,
                                   monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(hooks_mod, "COOLDOWN_MAX", 50)
    rl = rules(tmp_path, {"on": "*", "exec": ["true"]})
    r = runner_factory(rl, queue_max=10)
    for i in range(500):
        r.submit(alert(f"run-{i}"))
    assert len(r._last_fired) <= 50
    r.submit(alert("run-499"))  # most recent entries are kept: still cooling down
    assert r.stats()["suppressed"] == 1


FLAKY = """#!/bin/sh
n=$(cat "{counter}" 2>/dev/null || echo 0)
n=$((n + 1))
echo $n > "{counter}"
date +%s.%N >> "{times}"
[ "$n" -gt {fail_times} ] && exit 0
echo "attempt $n failed" >&2
exit 3
"""


@pytest.mark.parametrize("retries,result,attempts", [(2, "ok", 3), (1, "failed", 2),
                                                     (0, "failed", 1)])
def test_nonzero_exit_is_retried_with_backoff_then_logged(
        tmp_path: Path, runner_factory, caplog: pytest.LogCaptureFixture,
        retries: int, result: str, attempts: int) -> None:
    counter, times = tmp_path / "n", tmp_path / "times"
    make_script(tmp_path / "flaky.sh", FLAKY.format(counter=counter, times=times, fail_times=2))
    rl = rules(tmp_path, {"name": "flaky", "on": "*", "exec": ["./flaky.sh"],
                          "retries": retries, "backoff": 0.15})
    r = runner_factory(rl)
    with caplog.at_level("WARNING", logger="grokwatch.hooks"):
        r.submit(alert("r9", "diverged"))
        assert r.wait_idle(10)
    (ev,) = r.drain_events()
    assert ev["result"] == result and ev["attempts"] == attempts
    assert int(counter.read_text()) == attempts
    stamps = [float(x) for x in times.read_text().split()]
    gaps = [b - a for a, b in zip(stamps, stamps[1:])]
    for i, gap in enumerate(gaps):  # exponential backoff: 0.15 s, then 0.3 s
        assert gap >= 0.15 * 2 ** i * 0.95
    if result == "failed":
        assert ev["rc"] == 3 and "exit status 3" in ev["detail"]
        assert f"attempt {attempts} failed" in ev["detail"]  # the output tail
        assert any("flaky" in m and "failed" in m and "r9" in m for m in caplog.messages)
        assert r.stats()["failed"] == 1
    else:
        assert ev["rc"] == 0 and r.stats()["ok"] == 1 and r.stats()["retried"] == 2


def test_program_gone_at_run_time_fails_without_retry(tmp_path: Path, runner_factory) -> None:
    hook = make_script(tmp_path / "gone.sh", "#!/bin/sh\nexit 0\n")
    rl = rules(tmp_path, {"on": "*", "exec": ["./gone.sh"], "retries": 3, "backoff": 0.01})
    hook.unlink()  # valid at load time, deleted since
    r = runner_factory(rl)
    r.submit(alert())
    assert r.wait_idle(10)
    (ev,) = r.drain_events()
    assert ev["result"] == "failed" and ev["rc"] is None and ev["attempts"] == 1
    assert "cannot start" in ev["detail"]


def test_hook_killed_by_signal_is_a_failure(tmp_path: Path, runner_factory) -> None:
    make_script(tmp_path / "die.sh", "#!/bin/sh\nkill -9 $$\n")
    r = runner_factory(rules(tmp_path, {"on": "*", "exec": ["./die.sh"], "retries": 0}))
    r.submit(alert())
    assert r.wait_idle(10)
    (ev,) = r.drain_events()
    assert ev["result"] == "failed" and ev["rc"] == -9 and "signal 9" in ev["detail"]


def test_hook_that_never_reads_stdin_and_floods_output(tmp_path: Path, runner_factory) -> None:
    # A large alert and a hook that ignores stdin and writes megabytes: nothing blocks,
    # and only the output's tail is kept.
    make_script(tmp_path / "noisy.sh", "#!/bin/sh\nhead -c 3000000 /dev/zero | tr '\\0' x\n"
                                       "echo END\n")
    r = runner_factory(rules(tmp_path, {"on": "*", "exec": ["./noisy.sh"], "timeout": 20}))
    r.submit(alert(labels={"blob": "y" * 500_000}))
    assert r.wait_idle(20)
    (ev,) = r.drain_events()
    assert ev["result"] == "ok" and ev["detail"].endswith("END")
    assert len(ev["detail"]) <= hooks_mod.OUTPUT_TAIL + 1


def test_concurrency_bound(tmp_path: Path, runner_factory) -> None:
    d = tmp_path / "running"
    d.mkdir()
    peak = tmp_path / "peak"
    make_script(tmp_path / "slot.sh", f"""#!/bin/sh
touch "{d}/$$"
ls "{d}" | wc -l >> "{peak}"
sleep 0.2
rm "{d}/$$"
""")
    r = runner_factory(rules(tmp_path, {"on": "*", "exec": ["./slot.sh"], "cooldown": 0}),
                       concurrency=2)
    for i in range(6):
        r.submit(alert(f"r{i}"))
    assert r.wait_idle(20)
    counts = [int(x) for x in peak.read_text().split()]
    assert len(counts) == 6 and max(counts) == 2  # two at a time, never more
    assert r.stats()["ok"] == 6


def test_submit_returns_while_hooks_run(tmp_path: Path, runner_factory) -> None:
    gate = tmp_path / "gate"
    make_script(tmp_path / "wait.sh", f'#!/bin/sh\nwhile [ ! -e "{gate}" ]; do sleep 0.02; done\n')
    r = runner_factory(rules(tmp_path, {"on": "*", "exec": ["./wait.sh"], "cooldown": 0}),
                       concurrency=1)
    for i in range(20):
        r.submit(alert(f"r{i}"))  # would hang the test if submit waited on a hook
    assert wait_for(lambda: r.stats()["running"] == 1, 10, 0.02)
    assert r.stats()["queued"] == 19
    gate.touch()
    assert r.wait_idle(20)
    assert r.stats()["ok"] == 20


def test_alert_storm_drops_oldest_and_memory_stays_bounded(tmp_path: Path,
                                                           runner_factory) -> None:
    gate = tmp_path / "gate"
    # Bounded wait (60 s) so a killed test run leaves no looping hook behind.
    make_script(tmp_path / "slow.sh", f'#!/bin/sh\nn=0\nwhile [ ! -e "{gate}" ] && [ $n -lt 1200 ]; '
                                      f'do sleep 0.05; n=$((n+1)); done\necho "$GROKWATCH_RUN"\n')
    r = runner_factory(rules(tmp_path, {"on": "*", "exec": ["./slow.sh"], "cooldown": 0}),
                       concurrency=1, queue_max=100, events_max=1000)
    n_warm, n_storm = 2_000, 15_000
    tracemalloc.start()
    try:
        for i in range(n_warm):
            r.submit(alert(f"storm-{i}", evidence={"i": i}))
        base, _ = tracemalloc.get_traced_memory()
        for i in range(n_warm, n_warm + n_storm):
            r.submit(alert(f"storm-{i}", evidence={"i": i}))
        now, _ = tracemalloc.get_traced_memory()
    finally:
        tracemalloc.stop()
    st = r.stats()
    assert st["queued"] == 100 and st["running"] <= 1
    total = n_warm + n_storm
    assert st["dropped"] == total - st["queued"] - st["running"] - st["ok"]
    assert st["dropped"] >= total - 101
    # 15,000 more alerts: the queue and event buffer are full, so memory stays put.
    assert now - base < 300_000, f"grew {now - base} bytes over {n_storm} alerts"
    events = r.drain_events()
    assert len(events) == 1000 and st["events_lost"] == st["dropped"] - 1000
    assert {e["result"] for e in events} == {"dropped"}
    assert all("queue full" in e["detail"] for e in events)
    gate.touch()
    assert r.wait_idle(30)
    ran = [e["run"] for e in r.drain_events() if e["result"] == "ok"]
    # The newest alerts survived: the last 100 submitted ran (plus the first, already running).
    assert ran[-100:] == [f"storm-{i}" for i in range(total - 100, total)]


def test_close_drops_queued_and_kills_running(tmp_path: Path, runner_factory) -> None:
    pidfile = tmp_path / "pid"
    make_script(tmp_path / "hang.sh", HANG.format(pidfile=pidfile))
    r = runner_factory(rules(tmp_path, {"on": "*", "exec": ["./hang.sh"], "timeout": 60,
                                        "cooldown": 0}), concurrency=1)
    for i in range(3):
        r.submit(alert(f"r{i}"))
    assert wait_for(lambda: pidfile.exists() and pidfile.read_text().strip(), 10, 0.02)
    pgid = int(pidfile.read_text())
    t0 = time.monotonic()
    r.close(timeout=0.2)
    assert time.monotonic() - t0 < 5
    assert wait_for(lambda: group_members(pgid) == [], 5, 0.02)
    events = r.drain_events()
    assert sorted(e["result"] for e in events) == ["dropped", "dropped", "failed"]
    r.submit(alert("after"))  # closed: ignored, never raises
    assert r.stats()["queued"] == 0


def test_submit_never_raises_on_garbage(runner_factory, tmp_path: Path) -> None:
    r = runner_factory(rules(tmp_path, {"on": "*", "exec": ["true"], "cooldown": 0}))
    r.submit({})  # no kind: matches "*" and still runs with empty fields
    r.submit({"run": None, "kind": "onset", "step": None, "evidence": {1: b"\x00"}})
    r.submit(None)  # type: ignore[arg-type]
    assert r.wait_idle(10)
    assert r.stats()["errors"] == 1 and r.stats()["ok"] == 2


def test_no_rules_no_threads() -> None:
    before = threading.active_count()
    r = HookRunner([])
    r.submit(alert())
    assert threading.active_count() == before and r.stats()["queued"] == 0
    r.close()
