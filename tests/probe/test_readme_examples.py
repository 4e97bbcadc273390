"""The README's probe examples run as written (issue 13 item 10): each block under an
``<!-- example: NAME -->`` marker is executed against a real daemon, and the run it
makes must reach the daemon with per-token Fourier metrics for the matrices it names.
"""

from __future__ import annotations

import re
import time
from pathlib import Path

import pytest

README = Path(__file__).parents[2] / "README.md"
EXAMPLES = re.findall(r"<!-- example: ([\w-]+) -->\n```python\n(.*?)```", README.read_text(),
                      re.S)
# What each example names: the matrices whose Fourier metrics must arrive.
EXPECT = {"onehot-mlp": ("neurons",), "embedding-mlp": ("embed", "neurons"),
          "transformer": ("embed", "neurons")}


def test_the_readme_has_the_three_examples():
    assert [n for n, _ in EXAMPLES] == list(EXPECT)


@pytest.mark.parametrize(("name", "code"), EXAMPLES, ids=[n for n, _ in EXAMPLES])
def test_readme_example_runs_against_a_daemon(name, code, daemon, monkeypatch):
    torch = pytest.importorskip("torch", reason="the examples train torch models")
    torch.manual_seed(0)
    torch.set_num_threads(1)
    monkeypatch.setenv("GROKWATCH_ENDPOINT", daemon.ingest)
    exec(compile(code, f"README example {name}", "exec"), {"__name__": f"readme_{name}"})
    deadline = time.monotonic() + 15
    while True:
        runs = {r["run"]: r for r in daemon.request("runs")["runs"]}
        run = runs.get(name)
        if run is not None and run["step"] == 39 and run["state"] == "finished":
            break
        assert time.monotonic() < deadline, runs
        time.sleep(0.1)
    last = run["last"]
    assert {"train_loss", "train_acc", "val_acc"} <= set(last), last
    assert run["counters"].get("errors", 0) == 0, run["counters"]
    for matrix in EXPECT[name]:
        for metric in ("fourier_conc", "fourier_conc_null", "erank"):
            assert f"{matrix}.{metric}" in last, (matrix, metric, sorted(last))
    assert "weight_norm" in last  # model= adds it
