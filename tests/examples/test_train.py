"""run_workload and the presets, in-process and without a daemon (fast)."""

import threading

import pytest

from grokwatch.examples.presets import FAST, PRESETS, preset_config
from grokwatch.examples.train import WorkloadConfig, run_workload


def tiny(**kw) -> WorkloadConfig:
    base = {"op": "add", "modulus": 11, "frac": 0.5, "model": "mlp", "width": 16, "lr": 1e-2,
            "steps": 40, "log_every": 10, "observe_every": 10}
    return WorkloadConfig(**{**base, **kw})


def test_summary_reports_the_logged_history_and_milestones():
    s = run_workload(tiny(), use_probe=False)
    assert [r["step"] for r in s["history"]] == [0, 10, 20, 30, 40]
    assert s["steps"] == 40 and not s["stopped"]
    for r in s["history"]:
        assert set(r) == {"step", "train_loss", "train_acc", "val_loss", "val_acc"}
        assert 0.0 <= r["train_acc"] <= 1.0 and 0.0 <= r["val_acc"] <= 1.0
    fits = [r["step"] for r in s["history"] if r["train_acc"] >= 0.99]
    assert s["t_mem"] == (fits[0] if fits else None)
    assert s["train_acc"] == s["history"][-1]["train_acc"]


def test_same_seed_same_run_other_seed_other_run():
    a = run_workload(tiny(seed=1), use_probe=False)["history"]
    b = run_workload(tiny(seed=1), use_probe=False)["history"]
    c = run_workload(tiny(seed=2), use_probe=False)["history"]
    assert a == b
    assert a != c


def test_stop_event_ends_the_run_at_once():
    stop = threading.Event()
    stop.set()
    s = run_workload(tiny(steps=10_000), use_probe=False, stop=stop)
    assert s["stopped"] and s["steps"] == -1 and s["history"] == []


def test_until_val_stops_extra_steps_after_the_threshold():
    seen = []
    s = run_workload(tiny(until_val=0.0001, extra_steps=10, steps=1000), use_probe=False,
                     on_log=seen.append)
    first = next(r["step"] for r in s["history"] if r["val_acc"] >= 0.0001)
    assert s["steps"] == first + 10
    assert seen == s["history"]


@pytest.mark.parametrize("kw, field", [
    ({"op": "div"}, "op"), ({"model": "cnn"}, "model"), ({"frac": 1.0}, "frac"),
    ({"lr": 0.0}, "lr"), ({"weight_decay": -1.0}, "weight_decay"), ({"threads": 0}, "threads"),
    ({"log_every": 0}, "log_every"), ({"modulus": 2}, "modulus"),
])
def test_bad_config_names_the_field(kw, field):
    with pytest.raises(ValueError, match=f"^{field}:"):
        tiny(**kw)


def test_unknown_config_keys_are_refused():
    with pytest.raises(ValueError, match="weightdecay"):
        WorkloadConfig.from_dict({"weightdecay": 1.0})


@pytest.mark.parametrize("name", sorted(PRESETS))
def test_every_preset_and_its_fast_version_is_a_valid_config(name):
    full = WorkloadConfig.from_dict(preset_config(name))
    fast = WorkloadConfig.from_dict(preset_config(name, fast=True))
    assert name in FAST
    assert fast.steps <= full.steps


def test_preset_scale_steps_and_overrides():
    base = preset_config("grokking")
    half = preset_config("grokking", scale=0.5)
    assert half["steps"] == round(base["steps"] * 0.5)
    assert half["extra_steps"] == round(base["extra_steps"] * 0.5)
    assert preset_config("grokking", steps=7)["steps"] == 7
    assert preset_config("grokking", seed=3, lr=None)["seed"] == 3
    assert preset_config("grokking", lr=None)["lr"] == base["lr"]
    with pytest.raises(ValueError, match="unknown preset"):
        preset_config("nope")
    with pytest.raises(ValueError, match="scale"):
        preset_config("grokking", scale=0)
