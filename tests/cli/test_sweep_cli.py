"""``grokwatch sweep`` spec errors and ``grokwatch phases`` output, against a real daemon."""

from __future__ import annotations

import csv
import importlib.util
import io
import json
import subprocess
import sys
from pathlib import Path

from gwcli import GROKWATCH

from grokwatch.sweep.runner import Runner
from grokwatch.sweep.spec import parse_spec

FAKE = str(Path(__file__).parents[1] / "sweep" / "fake_train.py")


def gw(*args: str) -> subprocess.CompletedProcess:
    return subprocess.run([*GROKWATCH, *args], capture_output=True, text=True, timeout=60)


def test_bad_spec_is_one_line_naming_the_field(tmp_path: Path):
    p = tmp_path / "s.toml"
    p.write_text('name = "x"\npreset = "grokking"\n[axes]\nweight_decai = [1.0]\n')
    r = gw("sweep", str(p))
    assert r.returncode == 2
    assert r.stderr.count("\n") == 1
    assert "axes.weight_decai: unknown axis" in r.stderr


def test_check_prints_each_trial(tmp_path: Path):
    p = tmp_path / "s.toml"
    p.write_text('name = "x"\npreset = "grokking"\nfast = true\n[axes]\n'
                 'weight_decay = [0.0, 1.0]\nfrac = [0.3]\n')
    r = gw("sweep", str(p), "--check")
    assert r.returncode == 0, r.stderr
    lines = r.stdout.splitlines()
    assert len(lines) == 2 and lines[0].startswith("x-weight_decay=0-frac=0.3: ")
    assert "--weight-decay 0 --frac 0.3" in lines[0]


def test_phases_text_json_csv(daemon, tmp_path: Path):
    spec = parse_spec({"name": "ph", "command": [sys.executable, FAKE, "{kind}", "{steps}"],
                       "axes": {"kind": ["gen", "mem"], "steps": [200, 300]}, "jobs": 2})
    res = Runner(spec, api=daemon.api, ingest=daemon.ingest, out=io.StringIO(),
                 logdir=tmp_path).run()
    assert res.rc == 0
    r = gw("phases", "ph", "--api", daemon.api)
    assert r.returncode == 0, r.stderr
    assert "phase by kind (across) and steps (up)" in r.stdout
    grid = [ln for ln in r.stdout.splitlines() if " |" in ln]
    assert [ln.split("|")[0].strip() for ln in grid] == ["300", "200"]
    assert all(ln.split("|")[1].split() == ["C", "M"] for ln in grid), r.stdout
    j = json.loads(gw("phases", "ph", "--api", daemon.api, "--json").stdout)
    assert (j["x"], j["y"], j["xs"], j["ys"]) == ("kind", "steps", ["gen", "mem"], [200, 300])
    assert {(c["kind"], c["steps"]): c["letter"] for c in j["cells"]} == {
        ("gen", 200): "C", ("mem", 200): "M", ("gen", 300): "C", ("mem", 300): "M"}
    rows = list(csv.DictReader(io.StringIO(gw("phases", "ph", "--api", daemon.api,
                                              "--csv", "-x", "steps", "-y", "kind").stdout)))
    assert len(rows) == 4 and rows[0]["steps"] == "200" and rows[0]["kind"] == "gen"
    bad_img = gw("phases", "ph", "--api", daemon.api, "-o", str(tmp_path / "d.jpg"))
    assert bad_img.returncode == 2 and "must end in .png or .svg" in bad_img.stderr
    if importlib.util.find_spec("matplotlib") is not None:  # the plot extra
        for ext in ("svg", "png"):
            img = tmp_path / f"d.{ext}"
            r = gw("phases", "ph", "--api", daemon.api, "-o", str(img))
            assert r.returncode == 0, r.stderr
            head = img.read_bytes()[:200]
            assert (b"<svg" in img.read_bytes()) if ext == "svg" else head.startswith(
                b"\x89PNG")
    bad = gw("phases", "ph", "--api", daemon.api, "-x", "lr")
    assert bad.returncode == 2 and "-x lr: not a config key" in bad.stderr
    assert gw("phases", "nope", "--api", daemon.api).returncode == 1
