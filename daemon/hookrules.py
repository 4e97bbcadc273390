"""Hook rules: parse and validate the TOML hooks file, match alerts, build what a hook gets.

A hooks file is a list of ``[[hook]]`` tables::

    [[hook]]
    name = "notify"                     # optional; default "hook[N]"
    on = ["onset", "generalized"]       # alert kinds, or "*"
    runs = "modadd-*"                   # glob on the run name (default "*")
    status = "firing"                   # "firing" (default), "resolved" or "any"
    exec = ["./notify.sh", "{run}"]     # argv, never a shell string
    timeout = 30                        # seconds, then the process group is killed
    cooldown = 300                      # seconds per alert fingerprint (and status)
    retries = 2                         # extra attempts after a non-zero exit
    backoff = 1.0                       # first retry delay; doubles each time
    env = { SLACK_CHANNEL = "#ml" }     # extra environment (optional)

Everything here is pure: no processes, no threads (see :mod:`.hooks`).
"""

from __future__ import annotations

import fnmatch
import json
import math
import os
import re
import shutil
import sys
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from grokwatch.daemon.alert import ALERT_KINDS

if sys.version_info >= (3, 11):
    import tomllib
else:  # pragma: no cover - Python 3.10
    import tomli as tomllib

PAYLOAD_VERSION = 1
RULE_FIELDS = ("name", "on", "runs", "status", "exec", "timeout", "cooldown", "retries",
               "backoff", "env")
RULE_STATUSES = ("firing", "resolved", "any")
MAX_RETRIES = 10
MAX_TIMEOUT = 86_400
MAX_BACKOFF = 3_600  # doubled per retry: up to ~2**10 h with 10 retries is already absurd
ENV_VALUE_MAX = 4096  # a summary is a sentence; exec() refuses huge env strings anyway
PLACEHOLDER = re.compile(r"\{(run|kind|step)\}")


class HookConfigError(ValueError):
    """An invalid hooks file; ``str(e)`` is one line naming the rule and field."""


@dataclass(frozen=True)
class Rule:
    """One validated hook rule."""

    name: str
    index: int  # 1-based position in the file, for messages
    on: tuple[str, ...]  # alert kinds; ("*",) = all
    runs: tuple[str, ...]  # globs, any may match
    status: str  # firing | resolved | any
    exec: tuple[str, ...]
    timeout: float = 30.0
    cooldown: float = 300.0
    retries: int = 2
    backoff: float = 1.0
    env: dict[str, str] = field(default_factory=dict)
    _runs_re: re.Pattern[str] = field(init=False, compare=False, repr=False)

    def __post_init__(self) -> None:
        # One compiled regex for all globs: matching runs on the daemon's thread.
        object.__setattr__(self, "_runs_re", re.compile(
            "|".join(f"(?:{fnmatch.translate(g)})" for g in self.runs)))

    def matches(self, alert: dict[str, Any]) -> bool:
        """Whether this rule wants to run for ``alert`` (a wire map)."""
        if self.on != ("*",) and alert.get("kind") not in self.on:
            return False
        if self.status != "any" and alert.get("status", "firing") != self.status:
            return False
        return self._runs_re.match(str(alert.get("run", ""))) is not None


def default_hooks_path() -> Path | None:
    """``$XDG_CONFIG_HOME/grokwatch/hooks.toml`` (or ``~/.config/...``) if it exists."""
    base = os.environ.get("XDG_CONFIG_HOME") or os.path.join(os.path.expanduser("~"), ".config")
    path = Path(base) / "grokwatch" / "hooks.toml"
    return path if path.is_file() else None


def load_rules(path: Path | str) -> list[Rule]:
    """Read, parse and validate a hooks file; raise :class:`HookConfigError` (one line)."""
    path = Path(path)
    _check_owner(path)
    try:
        text = path.read_text(encoding="utf-8")
    except (OSError, UnicodeDecodeError) as e:
        raise HookConfigError(f"{path}: cannot read hooks file: {_one_line(str(e))}") from None
    try:
        doc = tomllib.loads(text)
    except tomllib.TOMLDecodeError as e:
        raise HookConfigError(f"{path}: not valid TOML: {_one_line(str(e))}") from None
    return parse_rules(doc, source=str(path), base_dir=path.parent)


def _check_owner(path: Path) -> None:
    """Refuse a hooks file another user could have written: it says what the daemon runs."""
    try:
        st = path.stat()
    except OSError as e:
        raise HookConfigError(f"{path}: cannot read hooks file: {_one_line(str(e))}") from None
    if st.st_uid != os.geteuid():
        raise HookConfigError(f"{path}: owned by uid {st.st_uid}, not by this user "
                              f"({os.geteuid()}): refusing to run its hooks")
    if st.st_mode & 0o022:
        raise HookConfigError(f"{path}: writable by group or others (mode "
                              f"{st.st_mode & 0o777:o}): refusing to run its hooks; "
                              f"chmod go-w {path}")


def parse_rules(doc: dict[str, Any], *, source: str = "hooks", base_dir: Path | None = None
                ) -> list[Rule]:
    """Validate a parsed hooks document; relative ``exec[0]`` paths resolve from ``base_dir``."""
    unknown = sorted(set(doc) - {"hook"})
    if unknown:
        raise HookConfigError(f"{source}: unknown top-level key {unknown[0]!r} "
                              f"(rules are [[hook]] tables)")
    hooks = doc.get("hook", [])
    if not isinstance(hooks, list) or not all(isinstance(h, dict) for h in hooks):
        raise HookConfigError(f"{source}: 'hook' must be an array of tables ([[hook]])")
    rules: list[Rule] = []
    names: set[str] = set()
    for i, table in enumerate(hooks, start=1):
        rule = _parse_rule(table, i, source, base_dir)
        if rule.name in names:
            raise HookConfigError(f"{source}: hook #{i} ({rule.name!r}) field 'name': "
                                  f"duplicate name")
        names.add(rule.name)
        rules.append(rule)
    return rules


def _parse_rule(t: dict[str, Any], i: int, source: str, base_dir: Path | None) -> Rule:
    raw_name = t.get("name")
    label = f"hook #{i}" + (f" ({raw_name!r})" if isinstance(raw_name, str) else "")

    def bad(fld: str, msg: str) -> HookConfigError:
        return HookConfigError(f"{source}: {label} field {fld!r}: {msg}")

    for key in t:
        if key not in RULE_FIELDS:
            raise bad(key, f"unknown field (known: {', '.join(RULE_FIELDS)})")
    name = raw_name if raw_name is not None else f"hook[{i}]"
    if not isinstance(name, str) or not name.strip():
        raise bad("name", "must be a non-empty string")

    on_t = _parse_on(t, bad)
    globs = _parse_runs(t, bad)
    status = t.get("status", "firing")
    if status not in RULE_STATUSES:
        raise bad("status", f"must be one of {', '.join(RULE_STATUSES)}, got {status!r}")
    argv = _parse_exec(t, base_dir, bad)

    timeout = _number(t, "timeout", 30.0, bad, positive=True)
    if timeout > MAX_TIMEOUT:
        raise bad("timeout", f"at most {MAX_TIMEOUT} seconds (a day), got {timeout:g}")
    cooldown = _number(t, "cooldown", 300.0, bad, positive=False)
    backoff = _number(t, "backoff", 1.0, bad, positive=False)
    if backoff > MAX_BACKOFF:
        raise bad("backoff", f"at most {MAX_BACKOFF} seconds, got {backoff:g}")
    retries = t.get("retries", 2)
    if isinstance(retries, bool) or not isinstance(retries, int) or not (
            0 <= retries <= MAX_RETRIES):
        raise bad("retries", f"must be an integer from 0 to {MAX_RETRIES}, got {retries!r}")

    env = t.get("env", {})
    if not isinstance(env, dict) or not all(
            isinstance(k, str) and k and "=" not in k and "\x00" not in k
            and isinstance(v, str) and "\x00" not in v for k, v in env.items()):
        raise bad("env", "must be a table of NAME = \"string\" pairs")

    return Rule(name=name, index=i, on=on_t, runs=tuple(globs), status=status,
                exec=tuple(argv), timeout=timeout, cooldown=cooldown, retries=retries,
                backoff=backoff, env=dict(env))

# Builds a one-line error naming the rule and the field.
Bad = Callable[[str, str], Exception]


def _parse_on(t: dict[str, Any], bad: Bad) -> tuple[str, ...]:
    """The rule's alert kinds ("*" for all)."""
    if "on" not in t:
        raise bad("on", 'missing (alert kinds, or "*" for all)')
    on = t["on"]
    kinds = [on] if isinstance(on, str) else on
    if not isinstance(kinds, list) or not kinds or not all(isinstance(k, str) for k in kinds):
        raise bad("on", 'must be a kind, a list of kinds, or "*"')
    for k in kinds:
        if k != "*" and k not in ALERT_KINDS:
            raise bad("on", f"unknown alert kind {k!r} (kinds: {', '.join(ALERT_KINDS)}, *)")
    on_t = ("*",) if "*" in kinds else tuple(dict.fromkeys(kinds))
    return on_t


def _parse_runs(t: dict[str, Any], bad: Bad) -> list[str]:
    """The rule's run globs."""
    runs = t.get("runs", "*")
    globs = [runs] if isinstance(runs, str) else runs
    if not isinstance(globs, list) or not globs or not all(
            isinstance(g, str) and g for g in globs):
        raise bad("runs", "must be a glob string (or a list of them)")
    return globs


def _parse_exec(t: dict[str, Any], base_dir: Path | None, bad: Bad) -> list[str]:
    """The rule's argv: a list, a fixed program, no placeholder a shell could run as code."""
    if "exec" not in t:
        raise bad("exec", "missing (an argv list, e.g. [\"/path/to/script\", \"{run}\"])")
    argv = t["exec"]
    if isinstance(argv, str):
        raise bad("exec", "must be an argv list, not a shell string")
    if not isinstance(argv, list) or not argv or not all(isinstance(a, str) for a in argv):
        raise bad("exec", "must be a non-empty list of strings")
    if any("\x00" in a for a in argv):
        raise bad("exec", "contains a NUL byte")
    prog = argv[0]
    if not prog or PLACEHOLDER.search(prog):
        raise bad("exec", "the program (first item) must be fixed, not empty or a placeholder")
    if _shell_script_placeholder(argv):
        raise bad("exec", "a {run}/{kind}/{step} placeholder with a shell or interpreter in "
                          "the argv could run data as code; call your script directly "
                          "(it gets the placeholder as \"$1\") or read $GROKWATCH_RUN")
    argv = [_resolve_program(prog, base_dir, bad), *argv[1:]]
    return argv



SHELLS = frozenset({"sh", "bash", "dash", "zsh", "ksh", "mksh", "ash", "busybox", "fish",
                    "csh", "tcsh", "yash", "rc", "es", "xonsh", "elvish", "nu", "pwsh",
                    "powershell", "cmd", "osh", "oil"})
# Programs that run text as code (a -c/-e script, a one-liner, a program on argv).
INTERPRETERS = re.compile(
    r"(?:python|pypy|perl|ruby|irb|node|nodejs|deno|bun|php|lua|luajit|tclsh|wish|expect|"
    r"r|rscript|julia|awk|gawk|mawk|nawk|busybox|sed|gsed|jq|osascript|guile|racket|sbcl|"
    r"clisp|ocaml|ghci|runghc|scala|groovy|jshell|kotlin|swift|dotnet|gdb|vim|nvim|emacs|"
    r"ed|ex|m4|make|gmake|xargs|find|parallel|ssh|su|sudo|doas|script|watch|eval|source)"
    r"[0-9.]*(?:\.exe)?")


def _is_code_runner(token: str) -> bool:
    base = os.path.basename(token).lower()
    return base in SHELLS or INTERPRETERS.fullmatch(base) is not None


def _shell_script_placeholder(argv: list[str]) -> bool:
    """True if a placeholder could reach a shell or interpreter as code.

    The rule (it cannot be bypassed by ``--``, ``env``, ``nice``, ``timeout``, ``env
    -S`` or another interpreter): when *any* word of *any* argv item (items split on
    whitespace and ``=``) names a shell or a program that runs text as code, no argv
    item may hold a placeholder at all. Such hooks get the alert from ``$GROKWATCH_*``
    and the JSON on stdin instead; a placeholder may only reach a program that takes
    it as plain data (``["./notify.sh", "{run}"]`` is fine: the script sees ``$1``).
    """
    if not any(PLACEHOLDER.search(a) for a in argv):
        return False
    return any(_is_code_runner(tok) for a in argv for tok in re.split(r"[\s=]+", a) if tok)


def _number(t: dict[str, Any], fld: str, default: float, bad: Any, *, positive: bool) -> float:
    v = t.get(fld, default)
    if isinstance(v, bool) or not isinstance(v, (int, float)) or not math.isfinite(v) or (
            v <= 0 if positive else v < 0):
        want = "a positive" if positive else "a non-negative"
        raise bad(fld, f"must be {want} number of seconds, got {v!r}")
    return float(v)


def _resolve_program(prog: str, base_dir: Path | None, bad: Bad) -> str:
    # Checked at load time so that a typo stops the daemon at start, not at 3 a.m.
    if "/" in prog:
        p = Path(os.path.expanduser(prog))
        if not p.is_absolute() and base_dir is not None:
            p = base_dir / p
        if not p.is_file() or not os.access(p, os.X_OK):
            raise bad("exec", f"program {str(p)!r} is not an executable file")
        return str(p.resolve())
    found = shutil.which(prog)
    if found is None:
        raise bad("exec", f"program {prog!r} not found on PATH")
    return prog  # looked up again at exec time, like a shell would


def render_argv(argv: tuple[str, ...], alert: dict[str, Any]) -> list[str]:
    """Replace ``{run}``, ``{kind}``, ``{step}`` inside each argv item, as data only.

    One regex pass per item (not ``str.format``, not chained ``str.replace``), so
    a run named ``{kind}`` or ``{0.__class__}`` stays exactly that string.
    """
    vals = {"run": _clean(alert.get("run", "")), "kind": _clean(alert.get("kind", "")),
            "step": _clean(alert.get("step", ""))}
    return [PLACEHOLDER.sub(lambda m: vals[m.group(1)], a) for a in argv]


ENV_ALLOWED = ("PATH", "HOME", "LANG", "TZ", "USER", "LOGNAME")  # and LC_*, GROKWATCH_*


def base_env(environ: dict[str, str] | None = None) -> dict[str, str]:
    """The part of the daemon's environment a hook inherits: an allow-list.

    PATH, HOME, LANG, LC_*, TZ, USER, LOGNAME and GROKWATCH_*; nothing else (tokens,
    cloud credentials and the like stay in the daemon). A rule's ``env`` adds more.
    """
    env = os.environ if environ is None else environ
    return {k: v for k, v in env.items()
            if k in ENV_ALLOWED or k.startswith(("LC_", "GROKWATCH_"))}


def hook_env(alert: dict[str, Any], rule: Rule, base: dict[str, str] | None = None
             ) -> dict[str, str]:
    """The hook's environment: the allow-listed daemon's, the rule's ``env``, ``GROKWATCH_*``."""
    env = base_env() if base is None else dict(base)
    env.update(rule.env)
    fields = {"KIND": "kind", "RUN": "run", "STEP": "step", "STATUS": "status",
              "SUMMARY": "summary", "FINGERPRINT": "fingerprint", "TIME": "time"}
    for var, key in fields.items():
        env[f"GROKWATCH_{var}"] = _clean(alert.get(key, ""))[:ENV_VALUE_MAX]
    env["GROKWATCH_RULE"] = _clean(rule.name)
    env["GROKWATCH_VERSION"] = str(PAYLOAD_VERSION)
    return env


def hook_payload(alert: dict[str, Any], rule: Rule) -> bytes:
    """The alert as one strict JSON document (Alertmanager-shaped) for the hook's stdin.

    Non-finite floats (a diverged loss) become ``null``, as in ``grokwatch alerts
    --json``, so that strict parsers such as ``jq`` accept the document.
    """
    doc = {"version": PAYLOAD_VERSION, "rule": rule.name,
           "status": alert.get("status", "firing"), "kind": alert.get("kind"),
           "run": alert.get("run"), "step": alert.get("step"), "time": alert.get("time"),
           "t": alert.get("t"), "fingerprint": alert.get("fingerprint"),
           "summary": alert.get("summary", ""), "evidence": alert.get("evidence") or {},
           "labels": alert.get("labels") or {}}
    return (json.dumps(_strict(doc), allow_nan=False, default=str, ensure_ascii=False)
            + "\n").encode("utf-8", "surrogatepass")


def _strict(v: Any) -> Any:
    if isinstance(v, float) and not math.isfinite(v):
        return None
    if isinstance(v, dict):
        return {str(k): _strict(x) for k, x in v.items()}
    if isinstance(v, (list, tuple)):
        return [_strict(x) for x in v]
    if isinstance(v, (bytes, bytearray)):
        return v.hex()
    return v


def _clean(v: Any) -> str:
    # exec() refuses NUL bytes in argv and env: never let data make a hook unrunnable.
    return str(v).replace("\x00", "\\0")


def _one_line(s: str) -> str:
    return " ".join(s.split())
