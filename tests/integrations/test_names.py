"""How the callbacks read a framework's logged metrics (no framework needed)."""

from __future__ import annotations

import pytest

from grokwatch.integrations._common import canonical, clean_run_name, pick


def test_usual_names_map_to_grokwatch_names():
    for given, want in (("loss", "train_loss"), ("train/loss", "train_loss"),
                        ("Train-Acc", "train_acc"), ("train_accuracy", "train_acc"),
                        ("val/loss", "val_loss"), ("valid_acc", "val_acc"),
                        ("validation_accuracy", "val_acc"), ("eval_loss", "val_loss"),
                        ("eval_accuracy", "val_acc"), ("lr", "lr"), ("grad_norm", "grad_norm")):
        assert canonical(given) == want, given
    assert canonical("acc_holdout", {"acc_holdout": "val_acc"}) == "val_acc"


def test_pick_splits_train_and_validation_sides():
    logged = {"train_loss_step": 1.5, "train_loss_epoch": 1.9, "train/acc": 0.25, "lr": 0.01,
              "val_loss": 2.0, "val_accuracy_epoch": 0.5, "acc_holdout": 0.75,
              "note": "text", "vec": [1.0, 2.0]}
    extra = {"acc_holdout": "val_acc"}
    assert pick(logged, validation=False, extra=extra) == {
        "train_loss": 1.5, "train_acc": 0.25, "lr": 0.01}  # epoch aggregates are stale here
    assert pick(logged, validation=True) == {"val_loss": 2.0, "val_acc": 0.5}
    # a user's own name, mapped to a validation metric, is read on the validation side
    assert pick({"acc_holdout": 0.75, "loss": 1.0}, validation=True, extra=extra) == {
        "val_acc": 0.75}
    # the plain name wins over its _step twin
    assert pick({"train_loss": 1.0, "train_loss_step": 3.0}, validation=False) == {
        "train_loss": 1.0}


def test_run_names_hold_no_slash():
    assert clean_run_name("modadd/version_3", "x") == "modadd.version_3"
    assert clean_run_name("-lead", "x") == "lead"
    assert clean_run_name(None, "fallback") == "fallback"
    assert clean_run_name("", "fallback") == "fallback"


def test_tensor_values_read_in_one_copy_per_device():
    torch = pytest.importorskip("torch", reason="tensor values need torch")
    logged = {"train_loss": torch.tensor(1.25), "train_acc": torch.tensor([0.5]),
              "steps": torch.tensor(7), "big": torch.ones(3), "lr": 0.01}
    got = pick(logged, validation=False)
    assert got == {"train_loss": 1.25, "train_acc": 0.5, "steps": 7.0, "lr": 0.01}
    assert all(type(v) is float for v in got.values())
