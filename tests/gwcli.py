"""The ``grokwatch`` command line, for tests that run it as a subprocess."""

from __future__ import annotations

import sys

# The installed package's console entry, run by this interpreter (no PATH lookup).
GROKWATCH = [sys.executable, "-m", "grokwatch"]
