"""What the commands print as JSON: strict JSON (NaN and Inf as null, packed arrays as lists)."""

from __future__ import annotations

import json
import math
from typing import Any

from grokwatch import wire


def jsonable(obj: Any) -> Any:
    """``obj`` with NaN/Inf as None, packed arrays as lists and bytes as hex: strict JSON."""
    if isinstance(obj, float):
        return obj if math.isfinite(obj) else None
    if isinstance(obj, dict):
        if set(obj) == {"dt", "sh", "b"}:
            return jsonable(wire.array_to_list(obj))
        return {str(k): jsonable(v) for k, v in obj.items()}
    if isinstance(obj, (list, tuple)):
        return [jsonable(v) for v in obj]
    if isinstance(obj, bytes):
        return obj.hex()
    return obj


def dumps(obj: Any, **kw: Any) -> str:
    """One compact line of strict JSON."""
    return json.dumps(jsonable(obj), separators=(",", ":"), **kw)
