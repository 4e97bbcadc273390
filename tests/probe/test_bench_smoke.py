"""bench/probe_cost.py still runs and prints its table (figures are not checked here)."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

import pytest

BENCH = Path(__file__).resolve().parents[2] / "bench" / "probe_cost.py"


@pytest.mark.slow
def test_probe_cost_bench_runs():
    pytest.importorskip("torch")
    pytest.importorskip("tensorboard")
    proc = subprocess.run([sys.executable, str(BENCH), "--quick", "--steps", "20", "--rounds", "1"],
                          capture_output=True, text=True, timeout=300)
    assert proc.returncode == 0, proc.stderr[-2000:]
    out = proc.stdout
    for line in ("probe.log (daemon listening)", "TensorBoard 3x add_scalar",
                 "msgpack.packb + zmq NOBLOCK send", "probe, no daemon", "ratio to bare"):
        assert line in out, out
