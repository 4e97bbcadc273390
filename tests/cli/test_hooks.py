"""``grokwatch hooks test`` / ``hooks check`` end to end, and the sample hook scripts."""

from __future__ import annotations

import json
import os
import shutil
import subprocess
import sys
from pathlib import Path

import pytest
from gwcli import GROKWATCH
from hooktools import make_script

EXAMPLES = Path(__file__).resolve().parents[2] / "examples" / "hooks"


def grokwatch(*args: str, cwd: Path, env: dict | None = None) -> subprocess.CompletedProcess:
    return subprocess.run([*GROKWATCH, *args], cwd=cwd, capture_output=True,
                          text=True, timeout=60, env={**os.environ, **(env or {})})


RECORD = """#!{python}
import json, os, sys
with open(os.path.join(os.environ["OUT_DIR"], "seen.json"), "w") as f:
    json.dump({{"doc": json.load(sys.stdin), "argv": sys.argv[1:],
               "kind": os.environ["GROKWATCH_KIND"], "run": os.environ["GROKWATCH_RUN"]}}, f)
print("recorded", os.environ["GROKWATCH_RUN"])
"""


@pytest.fixture
def hooks_file(tmp_path: Path) -> Path:
    make_script(tmp_path / "record.py", RECORD.format(python=sys.executable))
    make_script(tmp_path / "fail.sh", "#!/bin/sh\necho 'webhook said 500' >&2\nexit 4\n")
    path = tmp_path / "hooks.toml"
    path.write_text(f"""
[[hook]]
name = "record"
on = ["onset", "generalized"]
runs = "mod*"
exec = ["./record.py", "{{run}}", "{{step}}"]
env = {{ OUT_DIR = "{tmp_path}" }}

[[hook]]
name = "pager"
on = "lost"
exec = ["./fail.sh"]
retries = 1
backoff = 0.05
""")
    return path


def test_hooks_test_runs_the_matching_hook_for_real(tmp_path: Path, hooks_file: Path) -> None:
    work = tmp_path / "cwd"
    work.mkdir()
    run = "mod; touch pwned $(touch pwned)"
    p = grokwatch("hooks", "test", str(hooks_file), "--kind", "onset", "--run", run,
                  "--step", "1234", "--label", "lr=0.001", cwd=work)
    assert p.returncode == 0, p.stderr
    (line,) = p.stdout.splitlines()
    assert line.startswith("ok") and "record" in line and f"recorded {run}" in line
    seen = json.loads((tmp_path / "seen.json").read_text())
    assert seen["argv"] == [run, "1234"] and seen["run"] == run and seen["kind"] == "onset"
    doc = seen["doc"]
    assert doc["status"] == "firing" and doc["kind"] == "onset" and doc["step"] == 1234
    assert doc["labels"] == {"lr": "0.001"} and doc["evidence"] == {"synthetic": True}
    assert list(tmp_path.rglob("pwned")) == []


def test_hooks_test_json_and_failure_exit_status(tmp_path: Path, hooks_file: Path) -> None:
    p = grokwatch("hooks", "test", str(hooks_file), "--kind", "lost", "--run", "anything",
                  "--json", cwd=tmp_path)
    assert p.returncode == 1
    (ev,) = [json.loads(x) for x in p.stdout.splitlines()]
    assert ev["result"] == "failed" and ev["rc"] == 4 and ev["attempts"] == 2
    assert ev["rule"] == "pager" and ev["alert_kind"] == "lost" and ev["run"] == "anything"
    assert "webhook said 500" in ev["detail"]


def test_hooks_test_no_match_and_invalid_file(tmp_path: Path, hooks_file: Path) -> None:
    p = grokwatch("hooks", "test", str(hooks_file), "--kind", "onset", "--run", "other",
                  cwd=tmp_path)
    assert p.returncode == 3 and "no rule matches" in p.stderr and p.stdout == ""
    p = grokwatch("hooks", "test", str(hooks_file), "--kind", "onset", "--run", "mod",
                  "--status", "resolved", cwd=tmp_path)
    assert p.returncode == 3
    bad = tmp_path / "bad.toml"
    bad.write_text('[[hook]]\nname = "x"\non = "onset"\nexec = ["true"]\ncooldown = "5m"\n')
    for action in (["test", str(bad), "--kind", "onset", "--run", "r"], ["check", str(bad)]):
        p = grokwatch("hooks", *action, cwd=tmp_path)
        assert p.returncode == 2 and p.stdout == ""
        (line,) = p.stderr.splitlines()
        assert "hook #1 ('x') field 'cooldown'" in line


def test_hooks_test_rule_filter(tmp_path: Path) -> None:
    hooks = tmp_path / "hooks.toml"
    hooks.write_text('[[hook]]\nname = "a"\non = "*"\nexec = ["true"]\n'
                     '[[hook]]\nname = "b"\non = "*"\nexec = ["false"]\nretries = 0\n')
    p = grokwatch("hooks", "test", str(hooks), "--kind", "onset", "--run", "r", "--json",
                  cwd=tmp_path)
    assert p.returncode == 1  # b fails
    assert sorted(json.loads(x)["rule"] for x in p.stdout.splitlines()) == ["a", "b"]
    p = grokwatch("hooks", "test", str(hooks), "--kind", "onset", "--run", "r", "--json",
                  "--rule", "a", cwd=tmp_path)
    assert p.returncode == 0, p.stderr
    assert [json.loads(x)["rule"] for x in p.stdout.splitlines()] == ["a"]
    p = grokwatch("hooks", "test", str(hooks), "--kind", "onset", "--run", "r", "--rule", "c",
                  cwd=tmp_path)
    assert p.returncode == 2 and "no rule named 'c'" in p.stderr


def test_hooks_check_lists_rules(hooks_file: Path, tmp_path: Path) -> None:
    p = grokwatch("hooks", "check", str(hooks_file), cwd=tmp_path)
    assert p.returncode == 0, p.stderr
    lines = p.stdout.splitlines()
    assert lines[0].startswith("record: on onset,generalized runs mod*")
    assert lines[1].startswith("pager: on lost") and "retries 1" in lines[1]
    assert lines[-1].endswith("2 rule(s) OK")


def test_sample_hook_scripts_end_to_end(tmp_path: Path) -> None:
    # The shipped scripts, run through the shipped rule shapes, journal into tmp.
    for name in ("notify.sh", "log_alert.py"):
        shutil.copy2(EXAMPLES / name, tmp_path / name)
    journal = tmp_path / "alerts.jsonl"
    toml = (EXAMPLES / "hooks.toml").read_text().replace("/tmp/grokwatch-alerts.jsonl",
                                                         str(journal))
    (tmp_path / "hooks.toml").write_text(toml)
    env = {"DISPLAY": "", "WAYLAND_DISPLAY": "", "WEBHOOK_URL": ""}
    p = grokwatch("hooks", "test", str(tmp_path / "hooks.toml"), "--kind", "onset", "--run",
                  "modadd-p97", "--step", "4200", cwd=tmp_path, env=env)
    assert p.returncode == 0, p.stdout + p.stderr
    lines = p.stdout.splitlines()
    assert len(lines) == 2 and all(x.startswith("ok") for x in lines)
    notify = next(x for x in lines if "notify" in x)
    assert "grokwatch: onset on run 'modadd-p97' at step 4200" in notify
    (rec,) = [json.loads(x) for x in journal.read_text().splitlines()]
    assert rec["kind"] == "onset" and rec["run"] == "modadd-p97" and rec["step"] == 4200
    assert rec["received_by"] == "journal"
    # sweep-trouble matches only sweep-*/modmul-* runs, for diverged or lost.
    p = grokwatch("hooks", "test", str(tmp_path / "hooks.toml"), "--kind", "lost", "--run",
                  "sweep-3", "--json", cwd=tmp_path, env=env)
    assert p.returncode == 0, p.stdout + p.stderr
    assert sorted(json.loads(x)["rule"] for x in p.stdout.splitlines()) == [
        "journal", "sweep-trouble"]
    assert len(journal.read_text().splitlines()) == 2


def test_sample_python_hook_rejects_garbage_stdin(tmp_path: Path) -> None:
    p = subprocess.run([sys.executable, str(EXAMPLES / "log_alert.py"), "--out",
                        str(tmp_path / "j")], input="not json", capture_output=True, text=True,
                       timeout=30)
    assert p.returncode == 1 and "not a JSON alert" in p.stderr
    assert not (tmp_path / "j").exists()
