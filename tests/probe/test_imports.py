"""The daemon, the TUI and the probe's own package import without torch."""

from __future__ import annotations

import subprocess
import sys

SCRIPT = """
import importlib, pkgutil, sys
import grokwatch.probe, grokwatch.daemon, grokwatch.tui, grokwatch.wire, grokwatch.client
from grokwatch.probe import Probe
# Every module of the three packages (not __main__, which runs a command).
for pkg in (grokwatch.probe, grokwatch.daemon, grokwatch.tui):
    for m in pkgutil.iter_modules(pkg.__path__, pkg.__name__ + "."):
        if not m.name.endswith(".__main__"):
            importlib.import_module(m.name)
import numpy as np
from grokwatch.probe.metrics import observe_all
observe_all(None, {"w": np.eye(5)}, modulus=5)
print("torch" in sys.modules, sorted(k for k in sys.modules if k.startswith("torch"))[:5])
"""


def test_torch_stays_out_of_daemon_tui_and_probe():
    proc = subprocess.run([sys.executable, "-c", SCRIPT], capture_output=True, text=True,
                          timeout=120)
    assert proc.returncode == 0, proc.stderr[-2000:]
    assert proc.stdout.startswith("False"), proc.stdout
