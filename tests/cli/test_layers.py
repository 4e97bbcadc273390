"""The layers in pyproject's [tool.importlinter] hold, and a wrong import breaks them.

Each case copies the package tree (with grokwatch/'s symlinks to the parts) to a
temporary folder, adds one import that crosses a layer, and runs ``lint-imports``
there: it must fail and name the import. The clean copy must pass.
"""

from __future__ import annotations

import shutil
import subprocess
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[2]
PARTS = ("grokwatch", "probe", "daemon", "tui", "examples", "cli", "integrations", "sweep")
LINT = shutil.which("lint-imports")


def _copy_tree(dst: Path) -> Path:
    for part in PARTS:
        if (ROOT / part).is_dir():
            shutil.copytree(ROOT / part, dst / part, symlinks=True,
                            ignore=shutil.ignore_patterns("__pycache__", "*.pyc"))
    shutil.copy2(ROOT / "pyproject.toml", dst / "pyproject.toml")
    return dst


def _lint(cwd: Path) -> subprocess.CompletedProcess:
    assert LINT, "lint-imports is not installed (pip install -r requirements-dev.txt)"
    # lint-imports puts its working folder first on sys.path, so it reads the copy.
    return subprocess.run([LINT, "--no-cache"], cwd=cwd, capture_output=True, text=True,
                          timeout=60)


def test_the_tree_keeps_every_contract(tmp_path: Path) -> None:
    res = _lint(_copy_tree(tmp_path))
    assert res.returncode == 0, res.stdout[-3000:] + res.stderr[-2000:]
    assert "0 broken" in res.stdout


@pytest.mark.parametrize(("module", "line", "importer", "imported"), [
    ("tui/style.py", "from grokwatch.daemon import store", "grokwatch.tui.style",
     "grokwatch.daemon.store"),
    ("probe/outbox.py", "from grokwatch.daemon import store", "grokwatch.probe.outbox",
     "grokwatch.daemon.store"),
    ("daemon/alert.py", "import torch", "grokwatch.daemon.alert", "torch"),
    ("grokwatch/wire/__init__.py", "from grokwatch.client import request", "grokwatch.wire",
     "grokwatch.client"),
])
def test_a_wrong_import_breaks_a_contract(tmp_path: Path, module: str, line: str,
                                          importer: str, imported: str) -> None:
    tree = _copy_tree(tmp_path)
    path = tree / module
    path.write_text(path.read_text() + f"\n\ndef _crosses_a_layer():\n    {line}\n")
    res = _lint(tree)
    assert res.returncode != 0, res.stdout[-3000:]
    assert "BROKEN" in res.stdout
    assert f"{importer} -> {imported}" in res.stdout, res.stdout[-3000:]
