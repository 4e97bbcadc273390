"""Hooks file parsing and validation, rule matching, what a hook is given (no processes)."""

from __future__ import annotations

import json
import os
import stat
from datetime import datetime
from pathlib import Path

import pytest

from grokwatch.daemon.alert import Alert
from grokwatch.daemon.hookrules import (
    HookConfigError,
    default_hooks_path,
    hook_env,
    hook_payload,
    load_rules,
    parse_rules,
    render_argv,
)


def write(tmp_path: Path, text: str, name: str = "hooks.toml") -> Path:
    p = tmp_path / name
    p.write_text(text)
    return p


def script(tmp_path: Path, name: str = "hook.sh") -> Path:
    p = tmp_path / name
    p.write_text("#!/bin/sh\nexit 0\n")
    p.chmod(p.stat().st_mode | stat.S_IXUSR)
    return p


def alert(run: str = "modadd-1", kind: str = "onset", status: str = "firing", **kw) -> dict:
    return Alert(run=run, step=kw.pop("step", 420), t=1_795_600_000.25, kind=kind,
                 status=status, summary=kw.pop("summary", "structure above null"),
                 **kw).to_wire()


def test_full_rule_and_defaults(tmp_path: Path) -> None:
    script(tmp_path)
    path = write(tmp_path, """
[[hook]]
name = "notify"
on = ["onset", "generalized"]
runs = "modadd-*"
status = "any"
exec = ["./hook.sh", "{run}", "--step={step}"]
timeout = 2.5
cooldown = 0
retries = 0
backoff = 0.1
env = { CHANNEL = "#ml" }

[[hook]]
on = "*"
exec = ["true"]
""")
    first, second = load_rules(path)
    assert first.name == "notify" and first.on == ("onset", "generalized")
    assert first.runs == ("modadd-*",) and first.status == "any"
    # A relative program resolves against the hooks file's folder, not the cwd.
    assert first.exec == (str((tmp_path / "hook.sh").resolve()), "{run}", "--step={step}")
    assert (first.timeout, first.cooldown, first.retries, first.backoff) == (2.5, 0.0, 0, 0.1)
    assert first.env == {"CHANNEL": "#ml"}
    assert second.name == "hook[2]" and second.on == ("*",) and second.runs == ("*",)
    assert second.status == "firing"
    assert (second.timeout, second.cooldown, second.retries) == (30.0, 300.0, 2)


def test_empty_file_means_no_rules(tmp_path: Path) -> None:
    assert load_rules(write(tmp_path, "# nothing yet\n")) == []


BAD = [
    # (rule body or whole file, expected pieces of the one-line message)
    ('exec = ["true"]', ["hook #1", "'on'", "missing"]),
    ('on = ["onset", "grokked"]\nexec = ["true"]', ["hook #1", "'on'", "'grokked'"]),
    ('on = []\nexec = ["true"]', ["'on'"]),
    ('on = "onset"\nstatus = "pending"\nexec = ["true"]', ["'status'", "'pending'"]),
    ('on = "onset"', ["'exec'", "missing"]),
    ('on = "onset"\nexec = "notify-send {run}"', ["'exec'", "not a shell string"]),
    ('on = "onset"\nexec = []', ["'exec'", "non-empty list"]),
    ('on = "onset"\nexec = ["true", 3]', ["'exec'", "non-empty list"]),
    ('on = "onset"\nexec = ["no-such-program-grokwatch"]', ["'exec'", "not found on PATH"]),
    ('on = "onset"\nexec = ["./missing.sh"]', ["'exec'", "not an executable file"]),
    ('on = "onset"\nexec = ["{run}"]', ["'exec'", "must be fixed"]),
    ('on = "onset"\nexec = ["sh", "-c", "echo {run}"]', ["'exec'", "shell", "$1"]),
    ('on = "onset"\nexec = ["bash", "-ec", "echo {step}", "x"]', ["'exec'", "shell"]),
    ('on = "onset"\nexec = ["true"]\ntimeout = 0', ["'timeout'", "positive"]),
    ('on = "onset"\nexec = ["true"]\ntimeout = -1', ["'timeout'", "-1"]),
    ('on = "onset"\nexec = ["true"]\ntimeout = true', ["'timeout'"]),
    ('on = "onset"\nexec = ["true"]\ntimeout = 1e12', ["'timeout'", "at most"]),
    ('on = "onset"\nexec = ["true"]\ntimeout = "30s"', ["'timeout'", "'30s'"]),
    ('on = "onset"\nexec = ["true"]\ncooldown = -5', ["'cooldown'", "non-negative"]),
    ('on = "onset"\nexec = ["true"]\nbackoff = 7200', ["'backoff'", "at most"]),
    ('on = "onset"\nexec = ["true"]\nretries = -1', ["'retries'", "integer"]),
    ('on = "onset"\nexec = ["true"]\nretries = 1.5', ["'retries'"]),
    ('on = "onset"\nexec = ["true"]\nretries = 99', ["'retries'", "0 to 10"]),
    ('on = "onset"\nexec = ["true"]\ncooldwn = 5', ["'cooldwn'", "unknown field"]),
    ('on = "onset"\nexec = ["true"]\nenv = { A = 1 }', ["'env'"]),
    ('on = "onset"\nexec = ["true"]\nruns = 7', ["'runs'", "glob"]),
    ('on = "onset"\nexec = ["true"]\nname = ""', ["'name'"]),
]


@pytest.mark.parametrize("body,pieces", BAD, ids=[b[1][-1] + str(i) for i, b in enumerate(BAD)])
def test_invalid_rule_one_line_error_names_rule_and_field(tmp_path: Path, body: str,
                                                          pieces: list[str]) -> None:
    path = write(tmp_path, f'[[hook]]\nname = "ok"\non = "*"\nexec = ["true"]\n\n'
                           f'[[hook]]\n{body}\n')
    with pytest.raises(HookConfigError) as ei:
        load_rules(path)
    msg = str(ei.value)
    assert "\n" not in msg
    assert msg.startswith(str(path))
    # The second rule is the bad one; the first parses fine.
    assert "hook #2" in msg
    for piece in pieces:
        assert piece.replace("hook #1", "hook #2") in msg, msg


def test_named_rule_is_named_in_the_error(tmp_path: Path) -> None:
    path = write(tmp_path, '[[hook]]\nname = "pager"\non = "lost"\nexec = ["true"]\n'
                           'timeout = -3\n')
    with pytest.raises(HookConfigError, match=r"hook #1 \('pager'\) field 'timeout'"):
        load_rules(path)


@pytest.mark.parametrize("text,piece", [
    ('[[hook]\non = "onset"', "not valid TOML"),
    ('hook = "x"', "array of tables"),
    ('[[hooks]]\non = "onset"\nexec = ["true"]', "unknown top-level key 'hooks'"),
    ('[[hook]]\nname = "a"\non = "*"\nexec = ["true"]\n[[hook]]\nname = "a"\non = "*"\n'
     'exec = ["true"]', "duplicate name"),
])
def test_invalid_file_one_line(tmp_path: Path, text: str, piece: str) -> None:
    path = write(tmp_path, text)
    with pytest.raises(HookConfigError) as ei:
        load_rules(path)
    assert piece in str(ei.value) and "\n" not in str(ei.value)


def test_missing_or_binary_file(tmp_path: Path) -> None:
    with pytest.raises(HookConfigError, match="cannot read hooks file"):
        load_rules(tmp_path / "nope.toml")
    (tmp_path / "bin.toml").write_bytes(b"\xff\xfe\x00garbage")
    with pytest.raises(HookConfigError, match="cannot read hooks file"):
        load_rules(tmp_path / "bin.toml")


def test_hook_config_error_is_a_value_error() -> None:
    assert issubclass(HookConfigError, ValueError)


def test_default_hooks_path(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("XDG_CONFIG_HOME", str(tmp_path))
    assert default_hooks_path() is None
    (tmp_path / "grokwatch").mkdir()
    (tmp_path / "grokwatch" / "hooks.toml").write_text("")
    assert default_hooks_path() == tmp_path / "grokwatch" / "hooks.toml"


def test_matching_by_kind_run_glob_and_status() -> None:
    rules = parse_rules({"hook": [
        {"name": "a", "on": ["onset", "generalized"], "runs": "modadd-*", "exec": ["true"]},
        {"name": "b", "on": "*", "runs": ["sweep-?", "x*"], "status": "resolved",
         "exec": ["true"]},
        {"name": "c", "on": "lost", "status": "any", "exec": ["true"]},
    ]})
    a, b, c = rules
    assert a.matches(alert("modadd-7", "onset"))
    assert a.matches(alert("modadd-7", "generalized"))
    assert not a.matches(alert("modadd-7", "diverged"))
    assert not a.matches(alert("modmul-7", "onset"))
    assert not a.matches(alert("modadd-7", "onset", "resolved"))  # default: firing only
    assert not a.matches(alert("MODADD-7", "onset"))  # globs are case-sensitive
    assert b.matches(alert("sweep-3", "lost", "resolved"))
    assert b.matches(alert("xyz", "dropped", "resolved"))
    assert not b.matches(alert("sweep-33", "lost", "resolved"))
    assert not b.matches(alert("sweep-3", "lost", "firing"))
    assert c.matches(alert("r", "lost", "firing")) and c.matches(alert("r", "lost", "resolved"))
    assert not c.matches(alert("r", "stalled"))


@pytest.mark.parametrize("run", ["x; touch pwned", "$(touch pwned)", "`touch pwned`",
                                 "{kind}", "{0.__class__}", "{step}{run}", "a b\tc\n",
                                 "' \" \\"])
def test_placeholders_are_data_in_one_argv_item(run: str) -> None:
    rule = parse_rules({"hook": [{"on": "*", "exec": ["echo", "{run}", "k={kind}/{step}",
                                                       "{nope}", "{{run}}"]}]})[0]
    argv = render_argv(rule.exec, alert(run, "onset", step=42))
    # Each placeholder is replaced once, inside its own item, never re-expanded.
    assert argv == ["echo", run, "k=onset/42", "{nope}", "{" + run + "}"]


def test_nul_in_run_name_cannot_make_a_hook_unrunnable() -> None:
    rule = parse_rules({"hook": [{"on": "*", "exec": ["echo", "{run}"]}]})[0]
    a = alert("a\x00b")
    assert render_argv(rule.exec, a) == ["echo", "a\\0b"]
    assert hook_env(a, rule, base={})["GROKWATCH_RUN"] == "a\\0b"


def test_env_and_payload() -> None:
    rule = parse_rules({"hook": [{"name": "j", "on": "*", "exec": ["true"],
                                  "env": {"CHANNEL": "#ml"}}]})[0]
    a = alert("r1", "diverged", step=7, summary="loss is NaN",
              evidence={"train_loss": float("nan"), "g": float("-inf"), "ok": 1.5},
              labels={"lr": 0.001, "wd": 1.0, "model": "mlp"})
    env = hook_env(a, rule, base={"PATH": "/bin"})
    assert env["PATH"] == "/bin" and env["CHANNEL"] == "#ml"
    assert env["GROKWATCH_KIND"] == "diverged" and env["GROKWATCH_RUN"] == "r1"
    assert env["GROKWATCH_STEP"] == "7" and env["GROKWATCH_STATUS"] == "firing"
    assert env["GROKWATCH_SUMMARY"] == "loss is NaN"
    assert env["GROKWATCH_FINGERPRINT"] == a["fingerprint"]
    assert env["GROKWATCH_RULE"] == "j"

    def refuse(c: str) -> None:
        raise AssertionError(f"non-standard JSON constant {c}")

    doc = json.loads(hook_payload(a, rule), parse_constant=refuse)
    assert doc["evidence"] == {"train_loss": None, "g": None, "ok": 1.5}  # as alerts --json
    assert doc["labels"] == {"lr": 0.001, "wd": 1.0, "model": "mlp"}
    assert {k: doc[k] for k in ("status", "kind", "run", "step", "fingerprint", "summary")} == {
        "status": "firing", "kind": "diverged", "run": "r1", "step": 7,
        "fingerprint": a["fingerprint"], "summary": "loss is NaN"}
    # RFC 3339, UTC, milliseconds: parses back to the alert's own time.
    assert doc["time"].endswith("Z")
    assert datetime.fromisoformat(doc["time"][:-1] + "+00:00").timestamp() == 1_795_600_000.25


def test_sample_hooks_file_is_valid() -> None:
    sample = Path(__file__).resolve().parents[2] / "examples" / "hooks" / "hooks.toml"
    rules = load_rules(sample)
    assert [r.name for r in rules] == ["journal", "notify", "sweep-trouble"]
    for r in rules:
        assert os.access(r.exec[0], os.X_OK)
