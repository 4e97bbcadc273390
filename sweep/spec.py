"""A sweep spec: TOML naming the axes, what each trial runs, and when to stop it early.

A preset sweep (flags of ``grokwatch train``)::

    name = "wd-frac"
    preset = "grokking"          # a `grokwatch train` preset
    fast = true                  # its short version
    jobs = 2                     # trials at once (default: usable cores)
    threads = 1                  # torch threads per trial

    [train]                      # fixed flags for every trial
    steps = 1200

    [axes]                       # grid: every combination
    weight_decay = [0.0, 0.3, 1.0, 3.0]
    frac = [0.2, 0.4, 0.6]

    [stop]                       # optional early stop rules (see EarlyStop)
    generalized_for = 100
    settled_for = 600

or the user's own program, argv only (never a shell), with ``{axis}`` placeholders
and ``{run}`` (the trial's run name), ``{endpoint}`` (the daemon's ingest),
``{threads}``::

    command = ["python", "train.py", "--wd", "{wd}", "--run", "{run}"]

Random search: ``search = "random"``, ``trials = N``, ``seed = S`` and axes given as
lists (a choice) or ``{uniform = [lo, hi]}``, ``{log_uniform = [lo, hi]}``,
``{int = [lo, hi]}``.

Every mistake is one :class:`SpecError` line naming the field (``axes.wd[2]: ...``).
"""

from __future__ import annotations

import math
import random
import re
import shutil
import string
import sys
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

if sys.version_info >= (3, 11):
    import tomllib
else:  # pragma: no cover
    import tomli as tomllib

# Placeholders a user command may use besides its axes.
BUILTIN_PLACEHOLDERS = ("run", "endpoint", "threads")
RANDOM_KINDS = ("uniform", "log_uniform", "int")
TOP_KEYS = ("name", "preset", "fast", "command", "jobs", "threads", "search", "trials", "seed",
            "train", "axes", "stop")
STOP_KEYS = ("generalized_for", "generalized_at", "settled_for", "confusion_for", "poll")
_NAME_RE = re.compile(r"^[A-Za-z0-9][A-Za-z0-9_.+=-]{0,47}$")
_AXIS_RE = re.compile(r"^[A-Za-z_][A-Za-z0-9_]{0,31}$")


class SpecError(ValueError):
    """A bad sweep spec; the message is one line that starts with the field."""


@dataclass(frozen=True)
class EarlyStop:
    """When a trial's phase is settled, so that the sweep may end it early.

    ``generalized_for``: the phase is comprehension or grokking and val acc has held
    ``>= generalized_at`` for this many steps. ``settled_for``: the phase has been
    memorization (or confusion) for this many steps (past the plateau's start); a
    memorized plateau can still grok, so this is the long one. ``confusion_for``:
    the same for confusion alone (default: ``settled_for``). None turns a rule off.
    ``poll`` is seconds between looks at the daemon.
    """

    generalized_for: int | None = None
    generalized_at: float = 0.95
    settled_for: int | None = None
    confusion_for: int | None = None
    poll: float = 1.0

    @property
    def active(self) -> bool:
        return (self.generalized_for is not None or self.settled_for is not None
                or self.confusion_for is not None)

    def settled_after(self, phase: str) -> int | None:
        """Steps a phase must hold before the trial may end (None: never)."""
        if phase == "confusion" and self.confusion_for is not None:
            return self.confusion_for
        return self.settled_for


@dataclass(frozen=True)
class Axis:
    """One named axis: grid ``values``, or a random ``kind`` over ``lo..hi``."""

    name: str
    values: tuple[Any, ...] = ()
    kind: str = "grid"  # grid (a list of values) | uniform | log_uniform | int
    lo: float = 0.0
    hi: float = 0.0

    def sample(self, rng: random.Random) -> Any:
        if self.kind == "grid":
            return rng.choice(self.values)
        if self.kind == "uniform":
            return rng.uniform(self.lo, self.hi)
        if self.kind == "log_uniform":
            return math.exp(rng.uniform(math.log(self.lo), math.log(self.hi)))
        return rng.randint(int(self.lo), int(self.hi))


@dataclass
class Trial:
    """One point of the sweep: its run name, axis values and argv."""

    index: int
    run: str
    values: dict[str, Any]
    argv: list[str]
    labels: dict[str, Any]


@dataclass
class SweepSpec:
    name: str
    axes: list[Axis]
    preset: str | None = None
    fast: bool = False
    command: list[str] | None = None
    train: dict[str, Any] = field(default_factory=dict)
    jobs: int | None = None
    threads: int = 1
    search: str = "grid"
    trials: int | None = None
    seed: int = 0
    stop: EarlyStop = field(default_factory=EarlyStop)
    path: Path | None = None

    @property
    def axis_names(self) -> list[str]:
        return [a.name for a in self.axes]

    def points(self) -> list[dict[str, Any]]:
        """The axis values of every trial, in order (grid: the last axis varies fastest)."""
        if self.search == "random":
            rng = random.Random(self.seed)
            return [{a.name: a.sample(rng) for a in self.axes} for _ in range(self.trials or 0)]
        pts: list[dict[str, Any]] = [{}]
        for a in self.axes:
            pts = [{**p, a.name: v} for p in pts for v in a.values]
        return pts

    def trial_list(self, endpoint: str, python: str = sys.executable) -> list[Trial]:
        """Every trial with its argv (``endpoint``: the daemon's ingest for the probes)."""
        out = []
        seen: set[str] = set()
        for i, values in enumerate(self.points()):
            run = trial_run_name(self.name, values)
            if run in seen:  # a random search drew a point twice, or a name was cut
                run = f"{run[:120]}-t{i}"
            seen.add(run)
            labels = {"sweep": self.name, "sweep_axes": self.axis_names, "trial": i, **values}
            if self.command is not None:
                subst = {**{k: fmt_value(v) for k, v in values.items()}, "run": run,
                         "endpoint": endpoint, "threads": str(self.threads)}
                argv = [arg.format_map(subst) for arg in self.command]
            else:
                assert self.preset is not None
                argv = [python, "-m", "grokwatch", "train", self.preset, "--run", run,
                        "--endpoint", endpoint, "--quiet", "--threads", str(self.threads)]
                if self.fast:
                    argv.append("--fast")
                for k, v in {**self.train, **values}.items():
                    argv += ["--" + k.replace("_", "-"), fmt_value(v)]
            out.append(Trial(i, run, values, argv, labels))
        return out


def fmt_value(v: Any) -> str:
    """An axis value as text: shortest float form, plain ints and strings."""
    if isinstance(v, bool):
        return str(v).lower()
    if isinstance(v, float):
        return f"{v:.4g}" if not v.is_integer() or abs(v) >= 1e4 else f"{v:g}"
    return str(v)


def trial_run_name(sweep: str, values: dict[str, Any]) -> str:
    """``{sweep}-{axis}={value}-...``: readable, unique within a grid, a valid run id."""
    parts = [sweep] + [f"{k}={fmt_value(v)}" for k, v in values.items()]
    name = "-".join(parts).replace("/", "_").replace(" ", "_")
    return name[:128]


# ------------------------------------------------------------------ parsing


def load_spec(path: str | Path, *, presets: dict[str, Any] | None = None,
              flags: dict[str, type] | None = None) -> SweepSpec:
    """Read and check a spec file. ``presets``/``flags``: the presets and the typed
    ``grokwatch train`` flags a preset sweep may use (given by the CLI)."""
    path = Path(path)
    try:
        text = path.read_text()
    except OSError as e:
        raise SpecError(f"{path}: cannot read: {e.strerror or e}") from None
    try:
        data = tomllib.loads(text)
    except tomllib.TOMLDecodeError as e:
        raise SpecError(f"{path}: not valid TOML: {e}") from None
    spec = parse_spec(data, presets=presets, flags=flags)
    spec.path = path
    return spec


def parse_spec(data: dict[str, Any], *, presets: dict[str, Any] | None = None,
               flags: dict[str, type] | None = None) -> SweepSpec:
    """Check a spec map (see the module doc); raise :class:`SpecError` on the first fault."""
    for k in data:
        if k not in TOP_KEYS:
            raise SpecError(f"{k}: unknown field; expected one of {', '.join(TOP_KEYS)}")
    name = data.get("name")
    if not isinstance(name, str) or not _NAME_RE.match(name):
        raise SpecError(f"name: {name!r} must be 1-48 letters, digits or _.+=- "
                        "(it starts every trial's run name)")
    preset, command = data.get("preset"), data.get("command")
    if (preset is None) == (command is None):
        raise SpecError("preset: give exactly one of preset (a `grokwatch train` preset) "
                        "or command (an argv list)")
    search = data.get("search", "grid")
    if search not in ("grid", "random"):
        raise SpecError(f"search: {search!r} must be \"grid\" or \"random\"")
    flags = flags or {}
    axes_raw = data.get("axes")
    if not isinstance(axes_raw, dict) or not axes_raw:
        raise SpecError("axes: a table of at least one axis is needed ([axes] wd = [0.1, 1])")
    if preset is not None and (not isinstance(preset, str)
                               or (presets is not None and preset not in presets)):
        raise SpecError(f"preset: unknown {preset!r}; choose one of {', '.join(presets or [])}")
    axes = [_axis(k, v, search, flags if preset is not None else None)
            for k, v in axes_raw.items()]
    train = data.get("train", {})
    if not isinstance(train, dict):
        raise SpecError("train: must be a table of `grokwatch train` flags")
    if train and preset is None:
        raise SpecError("train: only for a preset sweep (put fixed arguments in command)")
    for k, v in train.items():
        if k not in flags:
            raise SpecError(f"train.{k}: unknown flag; choose one of {', '.join(flags)}")
        if k in axes_raw:
            raise SpecError(f"train.{k}: is also an axis")
        _typed(f"train.{k}", v, flags[k])
    if command is not None:
        _check_command(command, [a.name for a in axes])
    jobs = data.get("jobs")
    if jobs is not None and (type(jobs) is not int or jobs < 1):
        raise SpecError(f"jobs: {jobs!r} must be an integer >= 1")
    threads = data.get("threads", 1)
    if type(threads) is not int or threads < 1:
        raise SpecError(f"threads: {threads!r} must be an integer >= 1")
    trials = data.get("trials")
    if search == "random":
        if type(trials) is not int or trials < 1:
            raise SpecError(f"trials: {trials!r} must be an integer >= 1 for a random search")
    elif trials is not None:
        raise SpecError("trials: only for search = \"random\" (a grid runs every combination)")
    seed = data.get("seed", 0)
    if type(seed) is not int:
        raise SpecError(f"seed: {seed!r} must be an integer")
    fast = data.get("fast", False)
    if not isinstance(fast, bool) or (fast and preset is None):
        raise SpecError(f"fast: {fast!r} must be true or false, and only with a preset")
    return SweepSpec(name=name, axes=axes, preset=preset, fast=fast, command=command,
                     train=dict(train), jobs=jobs, threads=threads, search=search,
                     trials=trials, seed=seed, stop=_stop(data.get("stop", {})))


def _typed(where: str, v: Any, typ: type) -> Any:
    if typ is float:
        ok = isinstance(v, (int, float)) and not isinstance(v, bool) and math.isfinite(v)
    elif typ is int:
        ok = type(v) is int
    elif typ is str:
        ok = isinstance(v, str) and v != ""
    else:
        ok = isinstance(v, (int, float, str, bool))
    if not ok:
        raise SpecError(f"{where}: {v!r} is not a valid {typ.__name__}")
    return v


def _axis(name: str, raw: Any, search: str, flags: dict[str, type] | None) -> Axis:
    where = f"axes.{name}"
    if flags is not None:
        if name not in flags:
            raise SpecError(f"{where}: unknown axis for a preset sweep; choose from "
                            f"{', '.join(flags)}")
        typ: type = flags[name]
    else:
        if not _AXIS_RE.match(name):
            raise SpecError(f"{where}: an axis name is a letter or _ then letters, digits, _")
        typ = object
    if isinstance(raw, list):
        if not raw:
            raise SpecError(f"{where}: no values")
        for i, v in enumerate(raw):
            _typed(f"{where}[{i}]", v, typ)
            if typ is object and isinstance(v, str) and any(c in v for c in "{}"):
                raise SpecError(f"{where}[{i}]: {v!r} may not hold braces")
        if len(set(map(fmt_value, raw))) != len(raw):
            raise SpecError(f"{where}: repeated values")
        return Axis(name, tuple(raw))
    if isinstance(raw, dict):
        if search != "random":
            raise SpecError(f"{where}: a range ({', '.join(RANDOM_KINDS)}) needs "
                            "search = \"random\"; a grid takes a list")
        if len(raw) != 1 or next(iter(raw)) not in RANDOM_KINDS:
            raise SpecError(f"{where}: expected one of {', '.join(RANDOM_KINDS)} = [lo, hi]")
        kind, bounds = next(iter(raw.items()))
        if (not isinstance(bounds, list) or len(bounds) != 2
                or not all(isinstance(b, (int, float)) and not isinstance(b, bool)
                           and math.isfinite(b) for b in bounds)
                or not bounds[0] < bounds[1]):
            raise SpecError(f"{where}.{kind}: {bounds!r} must be [lo, hi] numbers with lo < hi")
        if kind == "log_uniform" and bounds[0] <= 0:
            raise SpecError(f"{where}.{kind}: bounds must be > 0")
        if typ is int and kind != "int" or typ is str:
            raise SpecError(f"{where}.{kind}: this flag takes a {typ.__name__}")
        return Axis(name, (), kind, float(bounds[0]), float(bounds[1]))
    raise SpecError(f"{where}: {raw!r} must be a list of values"
                    + (" or a range table" if search == "random" else ""))


def _check_command(command: Any, axes: list[str]) -> None:
    if (not isinstance(command, list) or not command
            or not all(isinstance(a, str) for a in command)):
        raise SpecError("command: must be a non-empty list of strings (argv, no shell)")
    prog = command[0]
    if not prog or (shutil.which(prog) is None and not Path(prog).is_file()):
        raise SpecError(f"command[0]: program {prog!r} not found")
    known = set(axes) | set(BUILTIN_PLACEHOLDERS)
    for i, arg in enumerate(command):
        try:
            names = [f for _, f, spec, conv in string.Formatter().parse(arg) if f is not None]
        except ValueError as e:
            raise SpecError(f"command[{i}]: {arg!r}: {e} (write {{{{ for a literal brace)") \
                from None
        for n in names:
            if n not in known:
                raise SpecError(f"command[{i}]: placeholder {{{n}}} is not an axis; axes: "
                                f"{', '.join(axes)} (also {', '.join(BUILTIN_PLACEHOLDERS)})")


def _stop(raw: Any) -> EarlyStop:
    if not isinstance(raw, dict):
        raise SpecError("stop: must be a table")
    for k in raw:
        if k not in STOP_KEYS:
            raise SpecError(f"stop.{k}: unknown rule; expected one of {', '.join(STOP_KEYS)}")
    for k in ("generalized_for", "settled_for", "confusion_for"):
        v = raw.get(k)
        if v is not None and (type(v) is not int or v < 0):
            raise SpecError(f"stop.{k}: {v!r} must be a number of steps >= 0")
    at = raw.get("generalized_at", 0.95)
    if not isinstance(at, (int, float)) or isinstance(at, bool) or not 0 < at <= 1:
        raise SpecError(f"stop.generalized_at: {at!r} must be in (0, 1]")
    poll = raw.get("poll", 1.0)
    if not isinstance(poll, (int, float)) or isinstance(poll, bool) or not 0.05 <= poll <= 60:
        raise SpecError(f"stop.poll: {poll!r} must be seconds in [0.05, 60]")
    return EarlyStop(raw.get("generalized_for"), float(at), raw.get("settled_for"),
                     raw.get("confusion_for"), float(poll))
