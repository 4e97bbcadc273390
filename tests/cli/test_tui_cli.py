"""``grokwatch tui`` arguments, endpoint parsing, and import hygiene."""

from __future__ import annotations

import argparse
import subprocess
import sys

import pytest

from grokwatch import wire
from grokwatch.cli import tui as cli
from grokwatch.tui.feed import parse_connect


def test_parse_connect_forms():
    assert parse_connect(None) == (wire.DEFAULT_PUB, wire.DEFAULT_API)
    assert parse_connect("gpu-box") == ("tcp://gpu-box:7711", "tcp://gpu-box:7712")
    assert parse_connect("10.0.0.5") == ("tcp://10.0.0.5:7711", "tcp://10.0.0.5:7712")
    assert parse_connect("::1") == ("tcp://[::1]:7711", "tcp://[::1]:7712")
    assert parse_connect("ipc:///tmp/g/pub, ipc:///tmp/g/api") == ("ipc:///tmp/g/pub",
                                                                    "ipc:///tmp/g/api")


@pytest.mark.parametrize("bad", ["tcp://h:7711", "a b", "ipc:///x,nope"])
def test_parse_connect_refuses_with_a_reason(bad):
    with pytest.raises(ValueError, match=r"\S"):
        parse_connect(bad)


def test_cli_bad_connect_is_a_clear_error(capsys):
    p = argparse.ArgumentParser()
    cli.register(p.add_subparsers())
    args = p.parse_args(["tui", "--connect", "tcp://h:1"])
    assert args.func(args) == 2
    err = capsys.readouterr().err
    assert err.startswith("grokwatch tui: --connect:") and err.count("\n") == 1


def test_cli_flags_parse():
    p = argparse.ArgumentParser()
    cli.register(p.add_subparsers())
    args = p.parse_args(["tui", "--connect", "box", "--ascii"])
    assert args.connect == "box" and args.ascii is True


def _modules_after(code: str) -> set[str]:
    out = subprocess.run([sys.executable, "-c", code + "\nimport sys\nprint('\\n'.join(sys.modules))"],
                         capture_output=True, text=True, check=True)
    return set(out.stdout.split())


def test_tui_needs_no_torch_and_no_daemon_internals():
    mods = _modules_after("import grokwatch.tui.app")
    assert "torch" not in mods
    assert not any(m.startswith("grokwatch.daemon") for m in mods)


def test_cli_module_defers_textual():
    mods = _modules_after("import grokwatch.cli.tui")
    assert "textual" not in mods and "torch" not in mods
