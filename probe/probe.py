"""``Probe``: the object a training loop holds. ``log`` is an append; ``observe`` runs at cadence.

Nothing here raises into the training loop once the probe is built: internal
errors are counted (the count travels in every frame as ``errors``) and the
first one is logged to stderr through :mod:`logging`. Only bad constructor
arguments raise, before training starts.
"""

from __future__ import annotations

import atexit
import dataclasses
import json
import logging
import math
import operator
import os
import random
import socket
import time
import weakref
from typing import Any

import msgpack

from grokwatch import wire

from . import distributed, preempt
from .outbox import Outbox
from .sender import CLOSE_GRACE_S, Sender

log = logging.getLogger("grokwatch.probe")

_live: weakref.WeakSet[Probe] = weakref.WeakSet()


class Probe:
    """Stream a run's scalars and geometry metrics to the grokwatch daemon.

    ``endpoint`` defaults to ``$GROKWATCH_ENDPOINT``, else ``tcp://127.0.0.1:7710``.
    ``config`` (a dict, dataclass or ``argparse.Namespace``) travels in the
    session's ``hello``; values that are not JSON-like are sent as strings.
    ``modulus=p`` turns on the Z_p Fourier metrics in :meth:`observe` (rows
    ``0..p-1`` of each matrix are the tokens). Records wait in a bounded
    buffer of ``capacity`` records until the daemon acknowledges them; when
    it overflows, the oldest are dropped and counted. Use as a context
    manager, or call :meth:`close` (an unclosed probe is closed at exit).
    Under ``torch.distributed`` (or ``torchrun``'s ``RANK``), only rank ``ranks``
    (default 0) sends; ``ranks="each"`` makes every rank its own run
    ``{run}.rank{r}`` (see :mod:`grokwatch.probe.distributed`).
    """

    def __init__(self, run: str, *, endpoint: str | None = None, config: Any = None,
                 modulus: int | None = None, every: int = 100, capacity: int = 10_000,
                 close_timeout: float = 2.0, ack_timeout: float = 3.0,
                 max_frame: int = wire.DEFAULT_MAX_FRAME, ranks: int | str = 0,
                 names: dict[str, str] | None = None) -> None:
        if not wire.valid_run_id(run):
            raise ValueError(f"run must be a non-empty printable string of at most "
                             f"{wire.MAX_RUN_LEN} characters without edge spaces, got {run!r}")
        if modulus is not None and (type(modulus) is not int or modulus < 2):
            raise ValueError(f"modulus must be an int >= 2 or None, got {modulus!r}")
        if type(every) is not int or every < 1:
            raise ValueError(f"every must be an int >= 1, got {every!r}")
        distributed.check_ranks(ranks)
        self._rename = _check_names(names)
        run, config = _sweep_trial(run, config)  # under `grokwatch sweep`: the trial's name
        name, rank_config = distributed.placement(run, ranks)  # torch.distributed / torchrun
        self.silent = name is None  # another rank speaks for this run
        self.run = run if name is None else name
        self.endpoint = endpoint or os.environ.get(wire.ENDPOINT_ENV) or wire.DEFAULT_INGEST
        self.modulus = modulus
        self.every = every
        self.capacity = capacity
        self.close_timeout = close_timeout
        self._sender_kw = {"ack_timeout": ack_timeout, "max_frame": max_frame}
        self.errors = 0
        self._warned = False
        self._config = _clean_config(config or {}, self)
        self._names: set[str] = set()  # scalar names already checked
        self._last_observe: int | None = None
        self._perms: dict[int, Any] = {}  # modulus -> the fixed null permutations
        self._closed = False
        self._fork_pending = False
        if rank_config and isinstance(self._config, dict):
            self._config = {**self._config, **rank_config}
        if self.silent:  # no socket, no thread: log/observe/close return at once
            self.sid, self.pid, self.start = 0, os.getpid(), time.time()
            self._outbox, self._sender, self._closed = Outbox(self.capacity), None, True
            return
        self._new_session()
        self._start()  # a bad endpoint raises ValueError here, before training
        _live.add(self)
        preempt.install(lambda: list(_live))  # flush on SIGTERM, then the program's own action

    # ------------------------------------------------------------ session

    def _new_session(self) -> None:
        self.sid = random.SystemRandom().getrandbits(63)
        self.pid = os.getpid()
        self.start = time.time()
        self._outbox = Outbox(self.capacity)
        self._sender: Sender | None = None
        self._outbox.put(wire.hello(0, host=socket.gethostname(), pid=self.pid,
                                    config=self._config, start=self.start,
                                    modulus=self.modulus, t=self.start))

    def _start(self) -> None:
        self._sender = Sender(self.endpoint, self.run, self.sid, self._outbox,
                              errors=lambda: self.errors, on_error=self._error,
                              **self._sender_kw)

    def _after_fork(self) -> None:
        # The parent's socket, context and thread are not ours: drop them untouched.
        # The child's own session (new sid, seq from 1, its own hello) starts on first
        # use, so a child that never logs (a worker exiting) sends nothing at all.
        self._sender = None
        self._outbox = Outbox(self.capacity)  # the parent's records are the parent's to send
        self._fork_pending = True
        self._names = set(self._names)
        self.errors, self._warned = 0, False  # counts are per session

    def _ensure(self) -> bool:
        if self._closed:
            return False
        if self._fork_pending:
            self._fork_pending = False
            self._new_session()
        if self._sender is None:
            try:
                self._start()
            except Exception as e:
                self._error(e)
                self._closed = True
                return False
        return True

    # ------------------------------------------------------------ errors

    def _error(self, e: BaseException | str) -> None:
        self.errors += 1
        if not self._warned:
            self._warned = True
            log.warning("grokwatch probe %r: %s (further probe errors are only counted)",
                        self.run, e)

    # ------------------------------------------------------------ public API

    @property
    def dropped(self) -> int:
        """Records dropped because the unacknowledged buffer overflowed (cumulative)."""
        return self._outbox.dropped

    @property
    def pending(self) -> int:
        """Records not yet acknowledged by the daemon."""
        return len(self._outbox)

    @property
    def connected(self) -> bool:
        """Whether a connection to the daemon is up right now."""
        return self._sender is not None and self._sender.connected

    def log(self, step: Any = None, values: Any = None, /, **scalars: Any) -> None:
        """Record scalars at ``step``: floats, ints, numpy scalars or 0-d tensors,
        as keywords or as a mapping (``probe.log(step, {"training/accuracy": acc})``);
        names given to ``Probe(names=...)`` are renamed on the way.

        A value that is not a number, or a bad name, is counted as an error and
        left out; this never raises.
        """
        if step is None and "step" in scalars:  # log(step=5, ...) as before
            step = scalars.pop("step")
        if values is not None:
            try:
                scalars = {**values, **scalars}
            except Exception:
                self._error(f"log() takes a mapping of names to values, got {type(values)}")
                return
        try:
            if type(step) is not int:
                given, step = step, _as_step(step)
                if step is None:
                    self._error(f"step must be a non-negative int, got {given!r:.40}")
                    return
            elif not 0 <= step <= wire.MAX_INT:
                self._error("step must be a non-negative 63-bit int")
                return
            vals: dict[str, float] = {}
            names = self._names
            rename = self._rename
            for k, v in scalars.items():
                if rename:
                    k = rename.get(k, k)
                if type(v) is not float:
                    v = _as_float(v)
                    if v is None:
                        self._error(f"scalar {k!r} is not a number")
                        continue
                if k not in names and not self._check_name(k):
                    continue
                vals[k] = v
            if not vals or not self._ensure():
                return
            if len(vals) > wire.MAX_SCALARS:
                self._error(f"{len(vals)} scalars in one call (max {wire.MAX_SCALARS})")
                return
            self._outbox.put({"k": "scalars", "seq": 0, "t": time.time(), "step": step,
                              "vals": vals})
        except Exception as e:
            self._error(e)

    def _check_name(self, k: str) -> bool:
        if 0 < len(k) <= wire.MAX_NAME_LEN and k.isprintable():
            self._names.add(k)
            return True
        self._error(f"bad scalar name {k[:40]!r}")
        return False

    def null_permutation(self) -> Any:
        """The row permutations of the Fourier null (``draws x p``; ``None`` without modulus).

        Drawn from a generator seeded by the modulus alone and averaged over
        (:func:`grokwatch.probe.fourier.null_permutations`): the same training gives
        the same scores, and so the same onset step, whatever the run is called.
        """
        p = self.modulus
        if p is None:
            return None
        perm = self._perms.get(p)
        if perm is None:
            from grokwatch.probe.fourier import null_permutations
            perm = self._perms[p] = null_permutations(p)
        return perm

    def due(self, step: int) -> bool:
        """Whether :meth:`observe` at ``step`` would measure (cheap; never raises).

        Lets a loop skip building expensive arguments between observations::

            if probe.due(step):
                probe.observe(step, model=model, features=model.features(x_probe), labels=y)

        (Passing a callable, ``features=lambda: ...``, has the same effect.)
        """
        try:
            s = _as_step(step)
            if s is None or self._closed:
                return False
            last = self._last_observe
            return last is None or not 0 <= s - last < self.every
        except Exception:
            return False

    def observe(self, step: int, model: Any = None, **matrices: Any) -> None:
        """Compute geometry metrics, at most once per ``every`` steps (the first call runs).

        ``matrices`` are named 2-D tensors or arrays (rows = tokens when
        ``modulus`` is set: ``embed=``, ``neurons=``; ``layer1=`` for a model without
        tokens), or callables returning one, called only when an observation is due.
        ``features=H, labels=y`` (a fixed batch's representations, ``N x d``, and
        its integer labels; typically held-out inputs) add class geometry
        (:mod:`grokwatch.probe.geometry`). ``model`` (a ``torch.nn.Module``) adds
        ``weight_norm`` and ``grad_norm``, the readout view of ``features``, and,
        when no ``embed`` is named, the token embedding it finds
        (:func:`grokwatch.probe.metrics.discover`). Never raises.
        """
        try:
            step = _as_step(step)
            if step is None:
                self._error("observe: step must be a non-negative int")
                return
            if self._last_observe is not None and 0 <= step - self._last_observe < self.every:
                return
            self._last_observe = step
            if not self._ensure():
                return
            from grokwatch.probe.metrics import observe_all

            if self.modulus is not None:
                self.null_permutation()
            model = distributed.unwrap(model)  # DDP / DataParallel / torch.compile
            obs = observe_all(model, matrices, modulus=self.modulus, perms=self._perms,
                              on_error=self._error)
            t = time.time()
            if obs.scalars:
                vals = {k: v for k, v in obs.scalars.items() if self._name_ok(k)}
                if vals:
                    self._outbox.put({"k": "scalars", "seq": 0, "t": t, "step": step,
                                      "vals": vals})
            for kind, arrays in ((wire.spectrum, obs.spectra), (wire.points, obs.points)):
                for name, arr in arrays.items():
                    if arr.size > wire.MAX_ARRAY_ELEMS:  # the daemon would refuse the frame
                        self._error(f"{name}: {arr.size} elements, more than the wire carries")
                    elif self._name_ok(name):
                        self._outbox.put(kind(0, step, name, arr, t=t))
        except Exception as e:
            self._error(e)

    def _name_ok(self, k: str) -> bool:
        return k in self._names or self._check_name(k)

    def close(self, timeout: float | None = None) -> bool:
        """Send ``bye`` and wait up to ``timeout`` s (default 2) for acknowledgements.

        Returns True when the daemon acknowledged everything. With no daemon
        connected it returns within a fraction of a second. Idempotent.
        """
        try:
            if self._closed:
                return len(self._outbox) == 0
            if self._fork_pending:  # a forked child that never used the probe
                self._closed = True
                _live.discard(self)
                return True
            if not self._ensure():
                return False
            self._closed = True
            _live.discard(self)
            self._outbox.put(wire.bye(0), over_capacity=True)
            sender = self._sender
            ok = sender.close(self.close_timeout if timeout is None else timeout)
            if not ok:
                log.warning("grokwatch probe %r: %d records not acknowledged at close "
                            "(daemon at %s %s)", self.run, len(self._outbox), self.endpoint,
                            "connected" if sender.connected else "not reachable")
            return ok
        except Exception as e:
            self._error(e)
            return False

    def flush(self, timeout: float | None = None) -> bool:
        """Wait up to ``timeout`` s (default ``close_timeout``) for every record logged so far
        to be acknowledged; the probe stays open. Returns True when nothing is pending.

        Without a connection it gives up after a short grace. Called on SIGTERM
        (see :mod:`grokwatch.probe.preempt`); never raises.
        """
        try:
            sender = self._sender
            if self._closed or self._fork_pending or sender is None:
                return len(self._outbox) == 0
            t0 = time.monotonic()
            deadline = t0 + (self.close_timeout if timeout is None else timeout)
            while len(self._outbox) and time.monotonic() < deadline:
                if not sender.connected and time.monotonic() - t0 >= CLOSE_GRACE_S:
                    break
                time.sleep(0.005)
            return len(self._outbox) == 0
        except Exception as e:
            self._error(e)
            return False

    def __enter__(self) -> Probe:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()

    def stats(self) -> dict[str, Any]:
        """Counters for diagnostics and tests."""
        s = self._sender
        unsent, inflight = self._outbox.pending()
        return {"sid": self.sid, "seq": self._outbox.seq, "acked": self._outbox.acked,
                "unsent": unsent, "inflight": inflight, "dropped": self._outbox.dropped,
                "errors": self.errors, "connected": bool(s and s.connected),
                "connects": s.connects if s else 0, "frames": s.frames_sent if s else 0,
                "resent": s.resent if s else 0}


# ---------------------------------------------------------------- helpers


def _as_float(v: Any) -> float | None:
    if isinstance(v, (str, bytes, bytearray)):
        return None
    try:
        item = getattr(v, "item", None)  # numpy scalars, 0-d tensors (no autograd warning)
        return float(item() if item is not None else v)
    except (TypeError, ValueError, RuntimeError, OverflowError):
        return None


def _as_step(step: Any) -> int | None:
    """A step as a wire int (numpy ints, integer tensors, integral floats), else None."""
    if isinstance(step, (bool, str, bytes)):
        return None
    try:
        n = operator.index(step)  # exact for numpy and torch integers
    except TypeError:
        try:
            f = float(step)
        except (TypeError, ValueError, RuntimeError, OverflowError):
            return None
        if not math.isfinite(f) or f != int(f):
            return None
        n = int(f)
    return n if 0 <= n <= wire.MAX_INT else None


def _check_names(names: Any) -> dict[str, str]:
    """``Probe(names=...)``: a mapping from the names a training loop logs to the
    names grokwatch reads (``{"training/accuracy": names.TRAIN_ACC}``), checked once."""
    if names is None:
        return {}
    if not hasattr(names, "items"):
        raise ValueError(f"names must map your scalar names to grokwatch's, got {names!r:.60}")
    out: dict[str, str] = {}
    for k, v in names.items():
        if not (isinstance(k, str) and isinstance(v, str) and k and v
                and len(v) <= wire.MAX_NAME_LEN and v.isprintable()):
            raise ValueError(f"names: {k!r} -> {v!r} is not a pair of scalar names")
        out[k] = v
    return out


def _sweep_trial(run: str, config: Any) -> tuple[str, Any]:
    """Under ``grokwatch sweep``: the trial's run name and its labels merged into config."""
    run = os.environ.get(wire.names.SWEEP_RUN_ENV) or run
    raw = os.environ.get(wire.names.SWEEP_LABELS_ENV)
    if not raw:
        return run, config
    try:
        labels = json.loads(raw)
    except ValueError:
        return run, config
    if not isinstance(labels, dict):
        return run, config
    if dataclasses.is_dataclass(config) and not isinstance(config, type):
        config = dataclasses.asdict(config)
    elif config is not None and not isinstance(config, dict) and hasattr(config, "__dict__"):
        config = vars(config)
    return run, {**(config or {}), **labels} if isinstance(config, (dict, type(None))) else config


def _clean_config(config: Any, probe: Probe, depth: int = 0) -> Any:
    """Config as plain msgpack-able data within the wire's limits (odd values become strings)."""
    if depth == 0:
        if dataclasses.is_dataclass(config) and not isinstance(config, type):
            config = dataclasses.asdict(config)
        elif not isinstance(config, dict) and hasattr(config, "__dict__"):
            config = vars(config)  # an argparse.Namespace, a plain object
        out = _clean_config_rec(config, 0)
        if not isinstance(out, dict):
            probe._error("config must be a mapping")
            return {}
        if len(msgpack.packb(out)) > wire.MAX_CONFIG_BYTES:
            probe._error("config larger than the wire allows; sent empty")
            return {"_error": "config too large"}
        return out
    return _clean_config_rec(config, depth)


def _clean_config_rec(v: Any, depth: int) -> Any:
    if v is None or type(v) in (bool, int, float, str):
        if type(v) is int and not -(1 << 63) <= v < (1 << 64):
            return str(v)
        return v
    if depth >= wire.MAX_DEPTH - 1:
        return str(v)[:200]
    if isinstance(v, dict):
        return {str(k): _clean_config_rec(x, depth + 1) for k, x in v.items()}
    if isinstance(v, (list, tuple)):
        return [_clean_config_rec(x, depth + 1) for x in v]
    f = _as_float(v) if hasattr(v, "__float__") and not hasattr(v, "__len__") else None
    if f is not None:
        return f
    return str(v)[:200]


def _close_all_at_exit() -> None:
    for p in list(_live):
        if p.pid == os.getpid():
            p.close()


def _reset_in_child() -> None:
    for p in list(_live):
        try:
            p._after_fork()
        except Exception:
            pass


atexit.register(_close_all_at_exit)
if hasattr(os, "register_at_fork"):
    os.register_at_fork(after_in_child=_reset_in_child)
