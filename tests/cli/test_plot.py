"""``grokwatch plot RUN -o FILE`` against a real daemon and a store (issue 13, also wanted)."""

from __future__ import annotations

import os
import subprocess
import sys
import time
from pathlib import Path

import numpy as np
import pytest
from gwcli import GROKWATCH

from grokwatch.probe import Probe


def grok_run(daemon, run: str = "pic") -> None:
    p = 13
    pr = Probe(run, endpoint=daemon.ingest, modulus=p, every=100)
    a = np.arange(p)
    for s in range(0, 1000, 5):
        val = 0.01 + 0.98 / (1 + np.exp(-(s - 600) / 40))
        pr.log(s, train_acc=min(1.0, s / 100), val_acc=float(val), train_loss=1 / (s + 1),
               val_loss=3 - 2 * float(val))
        if s % 100 == 0:
            emb = np.stack([np.cos(2 * np.pi * 3 * a / p), np.sin(2 * np.pi * 3 * a / p)], 1)
            pr.observe(s, embed=np.concatenate([emb, 0.01 * np.ones((p, 4))], 1))
    pr.close()
    deadline = time.monotonic() + 15
    while not (daemon.request("runs")["runs"] and daemon.request("alerts")["alerts"]):
        assert time.monotonic() < deadline
        time.sleep(0.1)


def gw(*args: str, env: dict | None = None) -> subprocess.CompletedProcess:
    return subprocess.run([*GROKWATCH, *args], capture_output=True, text=True, timeout=60,
                          env=env or os.environ)


def test_plot_writes_svg_and_png_with_alerts_and_spectrum(daemon, tmp_path: Path):
    pytest.importorskip("matplotlib", reason="grokwatch[plot] extra not installed")
    grok_run(daemon)
    svg = tmp_path / "pic.svg"
    r = gw("plot", "pic", "-o", str(svg), "--api", daemon.api)
    assert r.returncode == 0, r.stderr
    text = svg.read_text()
    assert text.lstrip().startswith(("<?xml", "<svg"))
    assert "memorized" in text  # the alert marked at its step
    assert "embed.fourier" in text and "key k: 3" in text  # the spectrum, k=3 marked
    assert "embed.constellation" in text
    png = tmp_path / "pic.png"
    assert gw("plot", "pic", "-o", str(png), "--api", daemon.api).returncode == 0
    assert png.read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"
    # From the store, no daemon: scalars and alerts.
    db = daemon.db
    daemon.stop()
    out = tmp_path / "db.svg"
    r = gw("plot", "pic", "-o", str(out), "--db", str(db))
    assert r.returncode == 0, r.stderr
    assert "memorized" in out.read_text()
    r = gw("plot", "nope", "-o", str(out), "--db", str(db))
    assert r.returncode != 0 and "nope" in r.stderr


def test_plot_without_matplotlib_says_how_to_get_it(tmp_path: Path):
    fake = tmp_path / "nomatplotlib" / "matplotlib"
    fake.mkdir(parents=True)
    (fake / "__init__.py").write_text("raise ImportError('no matplotlib here')\n")
    env = {**os.environ, "PYTHONPATH": str(fake.parent)}
    r = gw("plot", "x", "-o", str(tmp_path / "x.png"), env=env)
    assert r.returncode == 2 and "pip install 'grokwatch[plot]'" in r.stderr
    assert "Traceback" not in r.stderr
    # The monitor itself does not need it.
    r = subprocess.run([sys.executable, "-c", "import grokwatch.tui.app, grokwatch.daemon.server"],
                       capture_output=True, text=True, env=env, timeout=60)
    assert r.returncode == 0, r.stderr
