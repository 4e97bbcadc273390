"""CLI test helpers: the hooks tests share hooktools.py with the daemon's hook tests."""

from __future__ import annotations

import sys
from pathlib import Path

sys.path.insert(0, str(Path(__file__).parents[1] / "daemon"))  # for `import hooktools`
