"""Hook test helpers shared by the hooks tests: hook scripts and their process groups."""

from __future__ import annotations

import stat
from pathlib import Path

# A hook that writes its pid to ``{pidfile}`` and hangs, with a background child in its group.
HANG = """#!/bin/sh
echo $$ > "{pidfile}"
sleep 1000 &
sleep 1000
"""


def make_script(path: Path, text: str) -> Path:
    path.write_text(text)
    path.chmod(path.stat().st_mode | stat.S_IXUSR)
    return path


def group_members(pgid: int) -> list[int]:
    """Live (non-zombie) processes whose process group is ``pgid``."""
    out = []
    for d in Path("/proc").iterdir():
        if not d.name.isdigit():
            continue
        try:
            st = (d / "stat").read_text()
        except OSError:
            continue
        fields = st[st.rindex(")") + 2:].split()
        if int(fields[2]) == pgid and fields[0] != "Z":
            out.append(int(d.name))
    return out
