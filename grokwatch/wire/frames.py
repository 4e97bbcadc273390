"""Frames: the probe -> daemon half of the wire, and the daemon's acks.

Everything that crosses a socket is a msgpack map built and checked in
:mod:`grokwatch.wire`. This module holds two of its three conversations (the
third, daemon <-> clients, is :mod:`grokwatch.wire.messages`):

* **probe -> daemon (ingest).** A *frame* carries one run's records::

      {"v": 1, "run": str, "sid": int, "recs": [record, ...],
       "dropped": int, "errors": int}

  ``sid`` names one probe session (one ``Probe`` object in one process); a
  run restarted under the same name gets a new ``sid``, and ``seq`` counts
  from 1 again within it. ``dropped`` and ``errors`` are the probe's
  cumulative counts of records it had to drop (buffer overflow) and of its
  own internal errors. A *record* is a map with ``k`` (kind), ``seq`` (per
  session, strictly increasing) and ``t`` (unix time), plus by kind:

  ``hello``    host, pid, config (map), start (unix time), modulus (int|None)
  ``scalars``  step, vals {name: float}
  ``spectrum`` step, name, arr (1-D array)
  ``points``   step, name, arr (N x 2 array)
  ``bye``      (nothing more)

  Arrays travel as ``{"dt": "<f4", "sh": [..], "b": raw little-endian bytes}``.

  The probe keeps every record until it is acked and sends its buffer in
  order, so two promises hold: the records of one frame are a contiguous
  slice of that buffer (a seq missing *between* two records of a frame was
  dropped by the probe on overflow and will never come), and a resend after a
  reconnect starts at the oldest record the probe still holds (a missing seq
  below a resent frame's first seq was dropped too). The first record of a
  session is its ``hello`` (seq 1), which the probe never drops while unacked.

  Limits (each refusal names its reason): ints (seq, step, sid, pid,
  counters) fit a signed 64-bit column; times are finite; run ids and names
  are short printable strings; configs are JSON-like (string keys, at most
  :data:`MAX_DEPTH` deep, :data:`MAX_CONFIG_BYTES` packed); arrays are 1-D or
  2-D of an allowed dtype with at most :data:`MAX_ARRAY_ELEMS` elements.
  Scalars may be NaN or +-Inf: they are carried and listed in
  :attr:`Record.nonfinite` (a NaN loss is news).

* **daemon -> probe (acks).** ``{"v": 1, "op": "ack", "run", "sid", "seq"}``:
  the session's watermark, the highest ``seq`` such that every record up to
  it is committed to the store (or known to be dropped by the probe). The
  probe then forgets every record up to it, and resends what it still holds
  after a reconnect or when acks stop coming; the daemon drops duplicates.

* **daemon <-> clients.** See :mod:`grokwatch.wire.messages`; the msgpack
  envelope (:func:`encode_msg`, :func:`decode_msg`) is here.

``decode_frame`` treats every input as hostile and raises only
:class:`WireError`, whose ``reason`` is one of :data:`REASONS`.
"""

from __future__ import annotations

import math
import time
from dataclasses import dataclass, field
from typing import Any

import msgpack
import numpy as np

VERSION = 1
DEFAULT_MAX_FRAME = 1 << 20  # 1 MiB: frames from probes
CLIENT_MAX_MSG = 256 << 20  # replies to clients (snapshots) may be large

HELLO, SCALARS, SPECTRUM, POINTS, BYE = "hello", "scalars", "spectrum", "points", "bye"
KINDS = (HELLO, SCALARS, SPECTRUM, POINTS, BYE)
# A compact code per kind (the store's record rows carry it instead of the name).
KIND_CODES = {k: i for i, k in enumerate(KINDS)}  # hello 0, scalars 1, spectrum 2, points 3, bye 4
CODE_KINDS = dict(enumerate(KINDS))

# Array dtypes a probe may send; anything else (objects, big-endian) is refused.
DTYPES = {"<f4": np.float32, "<f8": np.float64, "<i4": np.int32, "<i8": np.int64}

MAX_RUN_LEN = 128
MAX_NAME_LEN = 128
MAX_RECORDS = 10_000  # per frame
MAX_SCALARS = 4_096  # per scalars record
MAX_ARRAY_ELEMS = 1 << 18  # 262,144 elements (1 MiB of float32)
MAX_NDIM = 2
MAX_CONFIG_BYTES = 64 << 10
MAX_DEPTH = 8  # nesting in config maps
MAX_INT = (1 << 63) - 1  # seq, step, sid, counters: they must fit a signed 64-bit column

REASONS = (
    "oversized",  # frame larger than the cap
    "malformed",  # not msgpack, truncated, or msgpack's own limits hit
    "version",  # missing or unknown schema version
    "schema",  # wrong type or missing field
    "run_id",  # run id not a short printable string
    "kind",  # unknown record kind
    "seq",  # seq not a positive int, or not increasing within the frame
    "array",  # bad dtype, shape or byte length
    "too_large",  # too many records, scalars, elements, or too deep
)


class WireError(ValueError):
    """A frame or message was refused. ``reason`` is one of :data:`REASONS`."""

    def __init__(self, reason: str, detail: str = "") -> None:
        assert reason in REASONS, reason
        self.reason = reason
        self.detail = detail
        super().__init__(f"{reason}: {detail}" if detail else reason)


# ---------------------------------------------------------------- records


@dataclass
class Record:
    """One decoded record. Fields not used by a kind keep their defaults."""

    kind: str
    seq: int
    t: float
    step: int | None = None
    vals: dict[str, float] = field(default_factory=dict)
    nonfinite: tuple[str, ...] = ()  # names in ``vals`` that are NaN or +-Inf
    name: str | None = None
    # spectrum/points: the array exactly as it travelled ({"dt", "sh", "b"}, checked), so
    # the daemon stores and forwards it without unpacking and repacking it.
    packed: dict[str, Any] | None = None
    hello: dict[str, Any] = field(default_factory=dict)  # host, pid, config, start, modulus

    @property
    def arr(self) -> np.ndarray | None:
        """The array of a spectrum or points record (a read-only view of its bytes)."""
        return None if self.packed is None else _view(self.packed)

    @property
    def nbytes(self) -> int:
        """Bytes of the array's data (0 for other kinds)."""
        return 0 if self.packed is None else len(self.packed["b"])


@dataclass
class Frame:
    """One decoded probe frame."""

    run: str
    sid: int
    recs: list[Record]
    dropped: int = 0
    errors: int = 0


def hello(seq: int, *, host: str, pid: int, config: dict | None = None,
          start: float | None = None, modulus: int | None = None,
          t: float | None = None) -> dict:
    """Build a ``hello`` record (a plain dict ready for :func:`encode_frame`)."""
    now = time.time() if t is None else t
    return {"k": "hello", "seq": seq, "t": now, "host": host, "pid": pid,
            "config": dict(config or {}), "start": now if start is None else start,
            "modulus": modulus}


def scalars(seq: int, step: int, vals: dict[str, float], t: float | None = None) -> dict:
    """Build a ``scalars`` record; values must already be Python floats."""
    return {"k": "scalars", "seq": seq, "t": time.time() if t is None else t,
            "step": step, "vals": vals}


def spectrum(seq: int, step: int, name: str, arr: np.ndarray, t: float | None = None) -> dict:
    """Build a ``spectrum`` record for a 1-D array."""
    return {"k": "spectrum", "seq": seq, "t": time.time() if t is None else t,
            "step": step, "name": name, "arr": pack_array(arr)}


def points(seq: int, step: int, name: str, arr: np.ndarray, t: float | None = None) -> dict:
    """Build a ``points`` record for an N x 2 array."""
    return {"k": "points", "seq": seq, "t": time.time() if t is None else t,
            "step": step, "name": name, "arr": pack_array(arr)}


def bye(seq: int, t: float | None = None) -> dict:
    """Build a ``bye`` record: the run ended cleanly."""
    return {"k": "bye", "seq": seq, "t": time.time() if t is None else t}


def pack_array(arr: np.ndarray) -> dict:
    """An array as little-endian raw bytes plus dtype and shape."""
    a = np.asarray(arr)
    if a.dtype.kind == "f":
        a = a.astype("<f8" if a.dtype.itemsize == 8 else "<f4", copy=False)
    elif a.dtype.kind in "iub":
        a = a.astype("<i8" if a.dtype.itemsize == 8 else "<i4", copy=False)
    else:
        raise TypeError(f"cannot send arrays of dtype {a.dtype}")
    a = np.ascontiguousarray(a)
    return {"dt": a.dtype.str, "sh": list(a.shape), "b": a.tobytes()}


def check_array(obj: Any, *, ndim: int | None = None) -> dict[str, Any]:
    """A packed array map checked (dtype, shape, byte length), as ``{"dt", "sh", "b"}``."""
    if not isinstance(obj, dict):
        raise WireError("array", "array is not a map")
    dt, sh, b = obj.get("dt"), obj.get("sh"), obj.get("b")
    if not isinstance(dt, str) or dt not in DTYPES:
        raise WireError("array", f"dtype {dt!r} not allowed")
    if not isinstance(sh, list) or len(sh) > MAX_NDIM or (ndim is not None and len(sh) != ndim):
        raise WireError("array", f"expected {ndim or MAX_NDIM} dimensions, got "
                        f"{len(sh) if isinstance(sh, list) else 'no shape'}")
    if not all(type(d) is int and d >= 0 for d in sh):
        raise WireError("array", "shape must be a list of non-negative ints")
    if any(d > MAX_ARRAY_ELEMS for d in sh):
        raise WireError("too_large", f"array dimension above {MAX_ARRAY_ELEMS}")
    if not isinstance(b, bytes):
        raise WireError("array", "data is not bytes")
    n = math.prod(sh)
    if n > MAX_ARRAY_ELEMS:
        raise WireError("too_large", f"array of {n} elements")
    if len(b) != n * np.dtype(DTYPES[dt]).itemsize:
        raise WireError("array", f"{len(b)} bytes for shape {sh} of {dt}")
    return {"dt": dt, "sh": sh, "b": b}


def _view(packed: dict[str, Any]) -> np.ndarray:
    dtype = np.dtype(DTYPES[packed["dt"]]).newbyteorder("<")
    return np.frombuffer(packed["b"], dtype=dtype).reshape(packed["sh"])


def unpack_array(obj: Any, *, ndim: int | None = None) -> np.ndarray:
    """Inverse of :func:`pack_array`, checking dtype, shape and byte length."""
    return _view(check_array(obj, ndim=ndim))


# ---------------------------------------------------------------- frames


def encode_frame(run: str, sid: int, recs: list[dict], *, dropped: int = 0,
                 errors: int = 0) -> bytes:
    """Pack one probe frame. ``recs`` are dicts built by the record helpers."""
    return msgpack.packb({"v": VERSION, "run": run, "sid": sid, "recs": recs,
                          "dropped": dropped, "errors": errors}, use_bin_type=True)


def _unpack(data: bytes, max_size: int) -> Any:
    if not isinstance(data, (bytes, bytearray, memoryview)):
        raise WireError("malformed", "not bytes")
    if len(data) > max_size:
        raise WireError("oversized", f"{len(data)} bytes > cap {max_size}")
    try:
        return msgpack.unpackb(
            data, raw=False, strict_map_key=True, use_list=True,
            max_str_len=max_size, max_bin_len=max_size,
            max_array_len=max(MAX_RECORDS, MAX_ARRAY_ELEMS), max_map_len=MAX_SCALARS,
            max_ext_len=0, ext_hook=_no_ext)
    except WireError:
        raise
    except ValueError as e:
        if "exceeds max_" in str(e) and "max_ext_len" not in str(e):  # msgpack's size limits
            raise WireError("too_large", str(e)[:80]) from None
        raise WireError("malformed", type(e).__name__) from None
    except (TypeError, msgpack.ExtraData, msgpack.FormatError,
            msgpack.StackError, RecursionError, UnicodeDecodeError) as e:
        raise WireError("malformed", type(e).__name__) from None
    except Exception as e:  # msgpack may raise others on hostile input
        raise WireError("malformed", type(e).__name__) from None


def _no_ext(code: int, data: bytes) -> Any:
    raise WireError("malformed", f"ext type {code}")


def valid_run_id(run: Any) -> bool:
    """A run id is a short, printable, non-empty string with no path or control chars.

    It never starts with ``-`` (a hook would get it as an option) and never holds
    ``/`` (nor so ``..`` as a path component): a run name is not a path.
    """
    return (isinstance(run, str) and 0 < len(run) <= MAX_RUN_LEN and run.isprintable()
            and run == run.strip() and run[0] != "-" and "/" not in run)


def _int(obj: dict, key: str, *, lo: int = 0) -> int:
    v = obj.get(key)
    if type(v) is not int or not lo <= v <= MAX_INT:
        raise WireError("schema", f"{key} must be an int in [{lo}, 2**63)")
    return v


def _num(obj: dict, key: str) -> float:
    """A finite number (times: a NaN timestamp would poison every ordering)."""
    v = obj.get(key)
    if type(v) not in (int, float) or not math.isfinite(v):
        raise WireError("schema", f"{key} must be a finite number")
    return float(v)


def _name(obj: dict, key: str = "name") -> str:
    v = obj.get(key)
    if not isinstance(v, str) or not 0 < len(v) <= MAX_NAME_LEN or not v.isprintable():
        raise WireError("schema", f"{key} must be a short printable string")
    return v


def _depth(obj: Any, limit: int) -> int:
    """Nesting depth of a config, refusing deep nesting and non-JSON values (bytes)."""
    if limit < 0:
        raise WireError("too_large", "config nested too deeply")
    if isinstance(obj, dict):
        if not all(isinstance(k, str) for k in obj):
            raise WireError("schema", "config keys must be strings")
        return 1 + max((_depth(v, limit - 1) for v in obj.values()), default=0)
    if isinstance(obj, list):
        return 1 + max((_depth(v, limit - 1) for v in obj), default=0)
    if obj is not None and type(obj) not in (bool, int, float, str):
        raise WireError("schema", f"config values must be JSON-like, not {type(obj).__name__}")
    return 0


def _record(r: Any) -> Record:
    if not isinstance(r, dict):
        raise WireError("schema", "record is not a map")
    kind = r.get("k")
    if kind not in KINDS:
        raise WireError("kind", f"unknown record kind {kind!r}")
    seq = r.get("seq")
    if type(seq) is not int or not 1 <= seq <= MAX_INT:
        raise WireError("seq", "seq must be an int in [1, 2**63)")
    rec = Record(kind=kind, seq=seq, t=_num(r, "t"))
    if kind == "hello":
        host = r.get("host")
        if not isinstance(host, str) or len(host) > 255:
            raise WireError("schema", "host must be a string")
        config = r.get("config", {})
        if not isinstance(config, dict):
            raise WireError("schema", "config must be a map")
        _depth(config, MAX_DEPTH)
        if len(msgpack.packb(config)) > MAX_CONFIG_BYTES:
            raise WireError("too_large", "config too large")
        modulus = r.get("modulus")
        if modulus is not None and (type(modulus) is not int or not 2 <= modulus <= MAX_INT):
            raise WireError("schema", "modulus must be an int >= 2 or nil")
        rec.hello = {"host": host, "pid": _int(r, "pid"), "config": config,
                     "start": _num(r, "start"), "modulus": modulus}
    elif kind == "scalars":
        rec.step = _int(r, "step")
        vals = r.get("vals")
        if not isinstance(vals, dict):
            raise WireError("schema", "vals must be a map")
        if len(vals) > MAX_SCALARS:
            raise WireError("too_large", f"{len(vals)} scalars in one record")
        out: dict[str, float] = {}
        bad: list[str] = []
        for k, v in vals.items():
            if not isinstance(k, str) or not 0 < len(k) <= MAX_NAME_LEN or not k.isprintable():
                raise WireError("schema", "scalar names must be short printable strings")
            if type(v) not in (int, float):
                raise WireError("schema", f"scalar {k!r} is not a number")
            f = float(v)
            out[k] = f
            if not math.isfinite(f):
                bad.append(k)
        rec.vals, rec.nonfinite = out, tuple(bad)
    elif kind in (SPECTRUM, POINTS):
        rec.step = _int(r, "step")
        rec.name = _name(r)
        rec.packed = check_array(r.get("arr"), ndim=1 if kind == SPECTRUM else 2)
        if kind == POINTS and rec.packed["sh"][1] != 2:
            raise WireError("array", f"points must be N x 2, got {tuple(rec.packed['sh'])}")
    return rec


# Scalar names and run ids already found valid: a probe sends the same few on every
# record, so the shortcut below checks each once, not on every record. Cleared when full
# (a hostile flood of names), so memory stays bounded.
_MAX_CACHE = 100_000
_NAMES: set[str] = set()
_RUN_IDS: set[str] = set()


def _remember(cache: set[str], s: str) -> None:
    if len(cache) >= _MAX_CACHE:
        cache.clear()
    cache.add(s)


def _scalars_shortcut(r: dict) -> Record | None:
    """A ``scalars`` record that passes every check of :func:`_record`, or None when unsure.

    The daemon's hottest input. It returns exactly what :func:`_record` would (values as
    floats, non-finite names listed) and never refuses anything itself: a record it is
    not sure about goes to :func:`_record`, so refusal reasons come from one place.
    """
    seq, t, step, vals = r.get("seq"), r.get("t"), r.get("step"), r.get("vals")
    tt = type(t)
    if (type(seq) is not int or not 1 <= seq <= MAX_INT
            or (tt is not float and tt is not int) or not math.isfinite(t)
            or type(step) is not int or not 0 <= step <= MAX_INT
            or type(vals) is not dict or len(vals) > MAX_SCALARS):
        return None
    names = _NAMES
    bad: list[str] | None = None
    ints = False
    for k, v in vals.items():
        if k not in names:
            if type(k) is not str or not 0 < len(k) <= MAX_NAME_LEN or not k.isprintable():
                return None
            _remember(names, k)
        tv = type(v)
        if tv is float:
            if v - v != 0.0:  # NaN or +-Inf: carried and listed
                if bad is None:
                    bad = []
                bad.append(k)
        elif tv is int:
            ints = True
        else:
            return None
    if ints:  # msgpack made a fresh dict: keep it unless ints must become floats
        vals = {k: float(v) for k, v in vals.items()}
        bad = [k for k, v in vals.items() if not math.isfinite(v)] or None
    rec = Record(SCALARS, seq, float(t), step, vals)
    if bad:
        rec.nonfinite = tuple(bad)
    return rec


def decode_frame(data: bytes, *, max_size: int = DEFAULT_MAX_FRAME,
                 shortcut: bool = True) -> Frame:
    """Decode and validate one probe frame; raise :class:`WireError` on anything wrong.

    Unknown fields are ignored. Seqs must increase within a frame. A frame is
    accepted or refused whole, so a probe's resend is all-or-nothing too.
    ``shortcut=False`` turns off the scalars shortcut (tests compare the two: same
    results, same refusals).
    """
    obj = _unpack(data, max_size)
    if not isinstance(obj, dict):
        raise WireError("schema", "frame is not a map")
    v = obj.get("v")
    if type(v) is not int:
        raise WireError("version", "missing version")
    if v != VERSION:
        raise WireError("version", f"unknown version {v}")
    run = obj.get("run")
    if not (shortcut and type(run) is str and run in _RUN_IDS):
        if not valid_run_id(run):
            raise WireError("run_id", f"bad run id {str(run)[:40]!r}")
        if shortcut:
            _remember(_RUN_IDS, run)
    sid = _int(obj, "sid")
    recs = obj.get("recs")
    if not isinstance(recs, list):
        raise WireError("schema", "recs must be a list")
    if len(recs) > MAX_RECORDS:
        raise WireError("too_large", f"{len(recs)} records in one frame")
    out = []
    for r in recs:
        rec = (_scalars_shortcut(r) if shortcut and type(r) is dict and r.get("k") == SCALARS
               else None)
        out.append(rec if rec is not None else _record(r))
    for a, b in zip(out, out[1:]):
        if b.seq <= a.seq:
            raise WireError("seq", "seqs must increase within a frame")
    dropped = obj.get("dropped", 0)
    errors = obj.get("errors", 0)
    if type(dropped) is not int or type(errors) is not int or not (
            0 <= dropped <= MAX_INT and 0 <= errors <= MAX_INT):
        raise WireError("schema", "dropped and errors must be non-negative ints")
    return Frame(run=run, sid=sid, recs=out, dropped=dropped, errors=errors)


# ---------------------------------------------------------------- acks


def encode_ack(run: str, sid: int, seq: int, *,
               rejected: list[tuple[int, int]] | None = None) -> bytes:
    """The daemon's acknowledgement: every seq <= ``seq`` of this session is stored.

    ``rejected``: ``[(lo, hi), ...]``, seqs in records the daemon refused for good
    (out of range, over a bound, or its own error on them); the probe drops them and
    never resends them.
    """
    obj: dict[str, Any] = {"v": VERSION, "op": "ack", "run": run, "sid": sid, "seq": seq}
    if rejected:
        obj["rej"] = [[int(lo), int(hi)] for lo, hi in rejected[:MAX_REJ_RANGES]]
    return msgpack.packb(obj)


MAX_REJ_RANGES = 256  # rejected seq ranges one ack carries


def ack_rejected(data: bytes) -> list[tuple[int, int]]:
    """The ``(lo, hi)`` seq ranges an ack marks rejected (empty for none or a non-ack)."""
    try:
        obj = _unpack(data, 1 << 16)
    except WireError:
        return []
    rej = obj.get("rej") if isinstance(obj, dict) else None
    if not isinstance(rej, list):
        return []
    return [(r[0], r[1]) for r in rej[:MAX_REJ_RANGES]
            if isinstance(r, list) and len(r) == 2 and all(type(x) is int for x in r)
            and 1 <= r[0] <= r[1] <= MAX_INT]


def decode_ack(data: bytes) -> tuple[str, int, int]:
    """Return ``(run, sid, seq)`` from an ack, or raise :class:`WireError`."""
    obj = _unpack(data, 1 << 16)
    if not isinstance(obj, dict) or obj.get("v") != VERSION or obj.get("op") != "ack":
        raise WireError("schema", "not an ack")
    run = obj.get("run")
    if not valid_run_id(run):
        raise WireError("run_id", "bad run id in ack")
    return run, _int(obj, "sid"), _int(obj, "seq")


# ---------------------------------------------------------------- clients


def encode_msg(obj: dict) -> bytes:
    """Pack a client request, reply or update map (adds the version)."""
    return msgpack.packb({"v": VERSION, **obj}, use_bin_type=True)


def decode_msg(data: bytes, *, max_size: int = CLIENT_MAX_MSG) -> dict:
    """Unpack a client request, reply or update; refuse other versions."""
    try:
        if len(data) > max_size:
            raise WireError("oversized", f"{len(data)} bytes > cap {max_size}")
        obj = msgpack.unpackb(data, raw=False, strict_map_key=False, ext_hook=_no_ext)
    except WireError:
        raise
    except Exception as e:
        raise WireError("malformed", type(e).__name__) from None
    if not isinstance(obj, dict):
        raise WireError("schema", "message is not a map")
    if type(obj.get("v")) is not int or obj["v"] != VERSION:
        raise WireError("version", f"unknown version {obj.get('v')!r}")
    return obj


def array_to_list(obj: Any) -> Any:
    """Plain-JSON view of a packed array map (for ``--json`` output)."""
    if isinstance(obj, dict) and set(obj) == {"dt", "sh", "b"}:
        return unpack_array(obj).tolist()
    return obj
