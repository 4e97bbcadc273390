"""``grokwatch demo --sweep``: the demo grid draws the expected phase diagram.

The --fast grid (3 weight decays x 2 train fractions of the quadratic model, early stop
on) through the real command: its own daemon, the sweep runner, the daemon's labels.
"""

from __future__ import annotations

import shutil
import subprocess
import tempfile
from pathlib import Path

import pytest
from gwcli import GROKWATCH

from grokwatch.cli.sweep import DEMO_SPEC, TRAIN_FLAGS
from grokwatch.sweep.spec import load_spec, parse_spec

pytest.importorskip("torch", reason="the demo trains with torch")

TOML = Path(__file__).parents[2] / "examples" / "sweeps" / "wd_frac.toml"


def test_demo_spec_is_the_example_toml():
    a = load_spec(TOML, flags=TRAIN_FLAGS)
    b = parse_spec(DEMO_SPEC, flags=TRAIN_FLAGS)
    assert (a.name, a.axes, a.train, a.stop, a.preset, a.fast) == (
        b.name, b.axes, b.train, b.stop, b.preset, b.fast)


@pytest.mark.slow
def test_demo_sweep_draws_the_phase_diagram(tmp_path: Path):
    sock = tempfile.mkdtemp(prefix="gwds-")  # short ipc paths, mode 0700
    eps = {k: f"ipc://{sock}/{k}" for k in ("ingest", "pub", "api")}
    try:
        r = subprocess.run(
            ["nice", "-n", "10", *GROKWATCH, "demo", "--sweep", "--fast", "--headless",
             "--jobs", "2", "--ingest", eps["ingest"], "--pub", eps["pub"], "--api", eps["api"]],
            capture_output=True, text=True, timeout=400)
    finally:
        shutil.rmtree(sock, ignore_errors=True)
    assert r.returncode == 0, r.stdout[-3000:] + r.stderr[-3000:]
    out = r.stdout
    assert "wd-frac: phase by weight_decay (across) and frac (up)" in out, out[-2000:]
    rows = {}
    for ln in out.splitlines():
        left, bar, rest = ln.partition(" |")
        if bar and left.strip() in ("0.4", "0.8"):
            rows[float(left)] = [tok[0] for tok in rest.split()]
    assert sorted(rows) == [0.4, 0.8], out[-2000:]
    # weight decay 0, 5, 50 across
    assert rows[0.8][:2] == ["C", "C"], rows  # plenty of data: generalizes with training
    assert rows[0.4][0] == "M", rows  # no weight decay: memorizes
    assert rows[0.4][1] == "G", rows  # some decay, less data: groks
    assert rows[0.4][2] == rows[0.8][2] == "X", rows  # too much decay: never fits
