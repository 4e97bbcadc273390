"""The command line stays light: a query command never imports torch or Textual."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

SCRIPT = """
import sys
from grokwatch.cli.main import main
rc = main(["runs", "--db", sys.argv[1]])
heavy = sorted(m for m in sys.modules if m.split(".")[0] in ("torch", "textual"))
print(rc, heavy)
"""


def test_runs_imports_neither_torch_nor_textual(tmp_path: Path) -> None:
    # A store path that does not exist: `runs` reports it and exits 1, after doing its imports.
    proc = subprocess.run([sys.executable, "-c", SCRIPT, str(tmp_path / "none.db")],
                          capture_output=True, text=True, timeout=60)
    assert proc.returncode == 0, proc.stderr[-2000:]
    rc, heavy = proc.stdout.split(" ", 1)
    assert heavy.strip() == "[]", heavy
    assert rc == "1" and "none.db" in proc.stderr


def test_help_lists_every_command_without_heavy_imports() -> None:
    code = ("import sys\nfrom grokwatch.cli.main import build_parser\n"
            "print(build_parser().format_help())\n"
            "print(sorted(m for m in sys.modules if m.split('.')[0] in ('torch', 'textual')))")
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True,
                         check=True, timeout=60).stdout
    assert out.rstrip().endswith("[]"), out[-300:]
    for cmd in ("daemon", "runs", "status", "export", "alerts", "replay", "hooks", "tui",
                "train", "demo"):
        assert f"    {cmd}" in out, cmd
