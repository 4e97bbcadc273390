"""The package installs under one namespace, with one console script."""

from __future__ import annotations

import shutil
import subprocess
import sys
import zipfile
from pathlib import Path

ROOT = Path(__file__).resolve().parents[2]


def test_wheel_has_one_namespace(tmp_path: Path) -> None:
    # Build from a copy of the tracked files, so no build/ folder lands in the checkout.
    src = tmp_path / "src"
    files = subprocess.run(["git", "ls-files"], cwd=ROOT, capture_output=True, text=True,
                           check=True).stdout.split()
    for f in files:
        if (ROOT / f).is_file():
            (src / f).parent.mkdir(parents=True, exist_ok=True)
            shutil.copy2(ROOT / f, src / f)
    subprocess.run([sys.executable, "-m", "pip", "wheel", "--no-deps", "--no-build-isolation",
                    "-q", "-w", str(tmp_path), str(src)], check=True, capture_output=True,
                   cwd=tmp_path)
    (wheel,) = tmp_path.glob("grokwatch-*.whl")
    names = zipfile.ZipFile(wheel).namelist()
    tops = {n.split("/")[0] for n in names if not n.split("/")[0].endswith(".dist-info")}
    assert tops == {"grokwatch"}, tops
    for part in ("probe", "daemon", "tui", "examples", "integrations", "cli"):
        assert f"grokwatch/{part}/__init__.py" in names
    assert "grokwatch/wire/__init__.py" in names
    entry = next(n for n in names if n.endswith("entry_points.txt"))
    assert "grokwatch = grokwatch.cli.main:main" in zipfile.ZipFile(wheel).read(entry).decode()


def test_console_script_lists_subcommands() -> None:
    out = subprocess.run(["grokwatch", "--help"], capture_output=True, text=True, check=True)
    for cmd in ("daemon", "runs", "status", "export", "alerts", "replay", "hooks", "tui",
                "train", "demo"):
        assert cmd in out.stdout, cmd
