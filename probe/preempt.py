"""Preemption: flush every live probe when the process gets SIGTERM.

Slurm, torchrun and most schedulers end a job with SIGTERM. Python's default
action for it kills the process at once, without running :mod:`atexit`, so the
probe's at-exit close never ran and its unacknowledged tail was lost.

The first :class:`~grokwatch.probe.Probe` built in the main thread installs
:func:`_on_sigterm`, remembering the handler it replaces. On SIGTERM it waits
(up to the probes' ``close_timeout``, default 2 s, for all of them together) for
everything already logged to be acknowledged, then hands the signal on, so the program behaves as
it would without grokwatch:

- the previous handler was a Python callable (the program's own, Lightning's,
  torchrun's): it is called, and decides (exit, checkpoint, carry on); the
  probes stay open, so a program that carries on keeps logging;
- it was the default action: the default is restored and the signal re-raised,
  so the process still dies *by SIGTERM* (exit status -15 / 143);
- it was ``SIG_IGN`` or set from C (``None``): nothing is installed at all.

A program that installs its own handler *after* the probe replaces this one;
that is its choice, and a handler that exits through ``sys.exit`` still gets
the at-exit close. No ``bye`` is sent on SIGTERM: a preempted run did not end,
and the daemon marks it lost if it does not come back.
``GROKWATCH_SIGTERM=0`` in the environment turns the handler off.
"""

from __future__ import annotations

import os
import signal
import threading
import time
from collections.abc import Callable, Iterable
from typing import Any

from grokwatch.wire.names import SIGTERM_ENV as ENV

_installed = False
_previous: Any = None
_probes: Callable[[], Iterable[Any]] = tuple


def install(probes: Callable[[], Iterable[Any]]) -> bool:
    """Install the SIGTERM flush once (main thread only); ``probes()`` lists live probes.

    Returns True when the handler is (now or already) installed.
    """
    global _installed, _previous, _probes
    if _installed:
        return True
    if os.environ.get(ENV, "1").strip().lower() in ("0", "false", "no", "off"):
        return False
    if threading.current_thread() is not threading.main_thread():
        return False
    try:
        prev = signal.getsignal(signal.SIGTERM)
        if prev is signal.SIG_IGN or prev is None:
            return False  # the program ignores SIGTERM, or C code owns it: leave it be
        _probes, _previous = probes, prev
        signal.signal(signal.SIGTERM, _on_sigterm)
    except (ValueError, OSError):  # not the main interpreter, or no signals here
        return False
    _installed = True
    return True


def uninstall() -> None:
    """Put the handler that was there before back (only if ours is still installed)."""
    global _installed
    if not _installed:
        return
    if signal.getsignal(signal.SIGTERM) is _on_sigterm:
        signal.signal(signal.SIGTERM, _previous)
    _installed = False


def flush_all() -> None:
    """Wait for every live probe of this process to have its records acknowledged,
    all within the longest ``close_timeout`` among them (not one after another)."""
    pid = os.getpid()
    probes = [p for p in list(_probes()) if getattr(p, "pid", None) == pid]
    if not probes:
        return
    deadline = time.monotonic() + max(float(getattr(p, "close_timeout", 2.0)) for p in probes)
    for p in probes:
        try:
            p.flush(timeout=max(0.0, deadline - time.monotonic()))
        except Exception:
            pass  # never keep a dying process from dying


def _on_sigterm(signum: int, frame: Any) -> None:
    flush_all()
    prev = _previous
    if callable(prev):
        prev(signum, frame)
        return
    # The default action: die by the signal, exactly as without grokwatch.
    signal.signal(signum, signal.SIG_DFL)
    os.kill(os.getpid(), signum)
