"""A fast path for the daemon's hottest input: frames of ``scalars`` records.

:func:`decode_frame` returns exactly what :func:`grokwatch.wire.decode_frame`
returns, or raises exactly what it raises: every frame it is not *sure*
about (any other record kind, any field out of line) is handed to the wire
module itself, so refusal reasons always come from the one contract. What
it saves is re-validating the same scalar names and run ids on every
record: they are checked once by the wire's rules and remembered.
"""

from __future__ import annotations

import math

from grokwatch import wire

_MAX_CACHE = 100_000  # names remembered; cleared when full (hostile name floods)


class FastDecoder:
    """Decode probe frames, remembering names and run ids already found valid."""

    def __init__(self, max_size: int = wire.DEFAULT_MAX_FRAME) -> None:
        self.max_size = max_size
        self.names: set[str] = set()
        self.run_ids: set[str] = set()
        self.fast = 0  # frames decoded on the fast path
        self.slow = 0  # frames handed to wire.decode_frame

    def _slow(self, data: bytes) -> wire.Frame:
        self.slow += 1
        return wire.decode_frame(data, max_size=self.max_size)

    def decode_frame(self, data: bytes) -> wire.Frame:
        """Same contract as :func:`grokwatch.wire.decode_frame`."""
        obj = wire._unpack(data, self.max_size)  # the wire's own limits and errors
        if type(obj) is not dict or obj.get("v") != wire.VERSION or type(obj.get("v")) is not int:
            return self._slow(data)
        run = obj.get("run")
        if type(run) is not str:
            return self._slow(data)
        if run not in self.run_ids:
            if not wire.valid_run_id(run):
                return self._slow(data)
            if len(self.run_ids) >= _MAX_CACHE:
                self.run_ids.clear()
            self.run_ids.add(run)
        sid = obj.get("sid")
        recs = obj.get("recs")
        dropped = obj.get("dropped", 0)
        errors = obj.get("errors", 0)
        max_int = wire.MAX_INT
        if (type(sid) is not int or not 0 <= sid <= max_int or type(recs) is not list
                or len(recs) > wire.MAX_RECORDS or type(dropped) is not int
                or type(errors) is not int or not 0 <= dropped <= max_int
                or not 0 <= errors <= max_int):
            return self._slow(data)
        names = self.names
        out = []
        prev = 0
        record = wire.Record
        isfinite = math.isfinite
        for r in recs:
            if type(r) is not dict or r.get("k") != "scalars":
                return self._slow(data)
            seq, t, step, vals = r.get("seq"), r.get("t"), r.get("step"), r.get("vals")
            tt = type(t)
            if (type(seq) is not int or not prev < seq <= max_int
                    or (tt is not float and tt is not int) or not isfinite(t)
                    or type(step) is not int or not 0 <= step <= max_int
                    or type(vals) is not dict or len(vals) > wire.MAX_SCALARS):
                return self._slow(data)
            prev = seq
            bad: list[str] | None = None
            ints = False
            for k, v in vals.items():
                if type(k) is not str:
                    return self._slow(data)
                if k not in names:
                    if (not 0 < len(k) <= wire.MAX_NAME_LEN
                            or not k.isprintable()):
                        return self._slow(data)
                    if len(names) >= _MAX_CACHE:
                        names.clear()
                    names.add(k)
                tv = type(v)
                if tv is float:
                    if v - v != 0.0:  # NaN or +-Inf: carried and flagged, as the wire does
                        if bad is None:
                            bad = []
                        bad.append(k)
                elif tv is int:
                    ints = True
                else:
                    return self._slow(data)
            # msgpack made a fresh dict: keep it unless ints must become floats.
            clean = {k: float(v) for k, v in vals.items()} if ints else vals
            if ints:
                bad = [k for k, v in clean.items() if not isfinite(v)] or None
            rec = record("scalars", seq, float(t), step, clean)
            if bad:
                rec.nonfinite = tuple(bad)
            out.append(rec)
        self.fast += 1
        return wire.Frame(run=run, sid=sid, recs=out, dropped=dropped, errors=errors)
