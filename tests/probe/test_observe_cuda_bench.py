"""bench/observe_cuda.py runs everywhere: GPU figures where CUDA is, a clear line and exit 0
where it is not (figures are not checked here)."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

import pytest

BENCH = Path(__file__).resolve().parents[2] / "bench" / "observe_cuda.py"


@pytest.mark.slow
def test_observe_cuda_bench_runs():
    torch = pytest.importorskip("torch", reason="the bench measures torch models")
    proc = subprocess.run([sys.executable, str(BENCH), "--quick", "--steps", "10",
                           "--calls", "1"], capture_output=True, text=True, timeout=300)
    assert proc.returncode == 0, proc.stderr[-2000:]
    rows = [ln.split()[0] for ln in proc.stdout.splitlines()
            if ln.startswith(("cpu ", "cuda "))]
    if torch.cuda.is_available():
        assert rows == ["cpu", "cuda"], proc.stdout
    else:
        assert "no CUDA device here: GPU figures not measured" in proc.stdout
        assert rows == ["cpu"], proc.stdout
    assert "errors while observing" not in proc.stdout
