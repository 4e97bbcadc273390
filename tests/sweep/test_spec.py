"""Sweep specs: the trials a spec makes, and one-line errors naming the field."""

from __future__ import annotations

import sys
from pathlib import Path

import pytest

from grokwatch.cli.sweep import TRAIN_FLAGS
from grokwatch.examples.presets import PRESETS
from grokwatch.sweep.spec import SpecError, load_spec, parse_spec, trial_run_name

PRESET = {"name": "g", "preset": "grokking", "fast": True, "train": {"steps": 300},
          "axes": {"weight_decay": [0.0, 1.0, 3.0], "frac": [0.3, 0.6]}}


def parse(d: dict):
    return parse_spec(d, presets=PRESETS, flags=TRAIN_FLAGS)


def test_grid_preset_trials():
    spec = parse(PRESET)
    trials = spec.trial_list("ipc:///x", python="py")
    assert len(trials) == 6
    t = trials[1]
    assert t.values == {"weight_decay": 0.0, "frac": 0.6}
    assert t.run == "g-weight_decay=0-frac=0.6"
    assert t.argv[:4] == ["py", "-m", "grokwatch", "train"]
    assert t.argv[t.argv.index("--weight-decay") + 1] == "0"
    assert t.argv[t.argv.index("--steps") + 1] == "300"
    assert "--fast" in t.argv and t.argv[t.argv.index("--threads") + 1] == "1"
    assert t.labels == {"sweep": "g", "sweep_axes": ["weight_decay", "frac"], "trial": 1,
                        "weight_decay": 0.0, "frac": 0.6}
    assert len({x.run for x in trials}) == 6


def test_user_command_placeholders_and_random_search():
    spec = parse({"name": "r", "command": [sys.executable, "t.py", "--lr={lr}", "{run}"],
                  "search": "random", "trials": 5, "seed": 1,
                  "axes": {"lr": {"log_uniform": [1e-4, 1e-2]}, "opt": ["adam", "sgd"]}})
    trials = spec.trial_list("ipc:///x")
    assert len(trials) == 5
    for t in trials:
        lr = t.values["lr"]
        assert 1e-4 <= lr <= 1e-2 and t.values["opt"] in ("adam", "sgd")
        assert t.argv[2].startswith("--lr=") and t.argv[3] == t.run
    # the same seed, the same trials
    assert [t.values for t in spec.trial_list("x")] == [t.values for t in trials]


ERRORS = [
    ({**PRESET, "axes": {"weight_decai": [1.0]}}, "axes.weight_decai: unknown axis"),
    ({**PRESET, "axes": {"weight_decay": [1.0, "big"]}}, "axes.weight_decay[1]: 'big' is not"),
    ({**PRESET, "axes": {"modulus": [53, 2.5]}}, "axes.modulus[1]: 2.5 is not a valid int"),
    ({**PRESET, "axes": {"frac": []}}, "axes.frac: no values"),
    ({**PRESET, "axes": {"frac": {"uniform": [0.1, 0.9]}}}, "axes.frac: a range"),
    ({**PRESET, "train": {"stepz": 3}}, "train.stepz: unknown flag"),
    ({**PRESET, "preset": "grok"}, "preset: unknown 'grok'"),
    ({**PRESET, "colour": 1}, "colour: unknown field"),
    ({**PRESET, "name": "a b"}, "name: 'a b'"),
    ({**PRESET, "jobs": 0}, "jobs: 0 must be"),
    ({**PRESET, "stop": {"settled": 3}}, "stop.settled: unknown rule"),
    ({"name": "u", "command": "python t.py {wd}", "axes": {"wd": [1]}}, "command: must be a"),
    ({"name": "u", "command": ["no-such-program-h7", "{wd}"], "axes": {"wd": [1]}},
     "command[0]: program 'no-such-program-h7' not found"),
    ({"name": "u", "command": [sys.executable, "--wd", "{lr}"], "axes": {"wd": [1]}},
     "command[2]: placeholder {lr} is not an axis"),
    ({"name": "u", "command": [sys.executable, "{wd"], "axes": {"wd": [1]}}, "command[1]:"),
    ({"name": "u", "preset": "grokking", "command": ["x"], "axes": {"wd": [1]}},
     "preset: give exactly one"),
]


@pytest.mark.parametrize(("data", "start"), ERRORS, ids=[e[1].split(":")[0] for e in ERRORS])
def test_errors_are_one_line_naming_the_field(data, start):
    with pytest.raises(SpecError) as ei:
        parse(data)
    msg = str(ei.value)
    assert msg.startswith(start), msg
    assert "\n" not in msg


def test_load_spec_reports_toml_errors(tmp_path: Path):
    p = tmp_path / "s.toml"
    p.write_text("name = \n")
    with pytest.raises(SpecError, match="not valid TOML"):
        load_spec(p)
    p.write_text('name = "ok"\npreset = "grokking"\n[axes]\nfrac = [0.3, 0.5]\n')
    assert load_spec(p, presets=PRESETS, flags=TRAIN_FLAGS).axis_names == ["frac"]


def test_run_names_are_valid_run_ids():
    from grokwatch import wire

    assert wire.valid_run_id(trial_run_name("s", {"lr": 0.001, "opt": "a b/c"}))


def test_trial_names_stay_unique():
    spec = parse({"name": "dup", "command": [sys.executable, "{x}"], "search": "random",
                  "trials": 6, "axes": {"x": ["a", "b"]}})
    names = [t.run for t in spec.trial_list("x")]
    assert len(set(names)) == 6 and names[0] == "dup-x=" + spec.points()[0]["x"]
