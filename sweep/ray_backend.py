"""Trials as Ray tasks (``grokwatch sweep SPEC --ray [ADDRESS]``; extra ``grokwatch[ray]``).

The same argv and environment as a local trial, run by a Ray task on whichever node
has a free CPU: the task starts the trial as a child process and waits for it; a
cancelled task (early stop, Ctrl-C) terminates its child. The probes on other nodes
send to the ingest endpoint given to the sweep (``--ingest``), so it must be reachable
from them; the daemon's CURVE keys (``grokwatch keys``) protect it off loopback.
The runner on this machine still decides everything (queue, early stop, resume).
"""

from __future__ import annotations

import os
import sys
from pathlib import Path
from typing import Any

import ray

from grokwatch.sweep.runner import PYTHON
from grokwatch.sweep.spec import Trial

TAIL = 4000  # characters of a trial's output brought back to the driver's log


def _run_trial(argv: list[str], env: dict[str, str]) -> tuple[int, str]:
    """In the Ray worker: run one trial to its end, or stop it when the task is cancelled."""
    import contextlib
    import subprocess
    import tempfile

    argv = [sys.executable if i == 0 and a == PYTHON else a for i, a in enumerate(argv)]
    with tempfile.TemporaryFile() as log:
        proc = subprocess.Popen(argv, stdin=subprocess.DEVNULL, stdout=log,
                                stderr=subprocess.STDOUT, env={**os.environ, **env},
                                start_new_session=True)
        try:
            while True:  # short waits: a cancel (KeyboardInterrupt) lands between them
                try:
                    proc.wait(0.2)
                    break
                except subprocess.TimeoutExpired:
                    continue
        except BaseException:  # cancelled, or the worker is going away
            with contextlib.suppress(ProcessLookupError):
                proc.terminate()
            try:
                proc.wait(5)
            except subprocess.TimeoutExpired:
                proc.kill()
                proc.wait(5)
            raise
        log.seek(max(0, log.seek(0, 2) - TAIL))
        return proc.returncode, log.read().decode(errors="replace")


class RayHandle:
    def __init__(self, ref: Any, log: Path) -> None:
        self.ref, self.log = ref, log
        self.rc: int | None = None
        self.cancelled = False


class RayBackend:
    """Start trials as Ray tasks of ``threads`` CPUs each on the cluster at ``address``
    (None: a local Ray started here, shut down by :meth:`close`)."""

    def __init__(self, address: str | None = None, *, threads: int = 1,
                 init_kw: dict[str, Any] | None = None) -> None:
        self.threads = threads
        self._own = not ray.is_initialized()
        if self._own:
            ray.init(address=address, include_dashboard=False, log_to_driver=False,
                     **(init_kw or {}))
        self._remote = ray.remote(num_cpus=threads, max_retries=0)(_run_trial)

    def cpus(self) -> int:
        return max(1, int(ray.cluster_resources().get("CPU", 1)))

    def start(self, trial: Trial, env: dict[str, str], log: Path) -> RayHandle:
        # The driver's grokwatch settings (CURVE key paths, keys dir) go along: a remote
        # node needs the same files at the same paths (a shared filesystem, or Ray's
        # runtime_env), else its probes cannot authenticate.
        fwd = {k: v for k, v in os.environ.items() if k.startswith("GROKWATCH_")}
        return RayHandle(self._remote.remote(list(trial.argv), {**fwd, **env}), log)

    def poll(self, h: RayHandle) -> int | None:
        if h.rc is not None:
            return h.rc
        done, _ = ray.wait([h.ref], timeout=0)
        if not done:
            return None
        try:
            rc, out = ray.get(h.ref)
        except (ray.exceptions.TaskCancelledError, ray.exceptions.RayTaskError) as e:
            rc, out = (-15 if h.cancelled else 1), f"{type(e).__name__}: {e}"[-TAIL:]
        except ray.exceptions.RayError as e:  # the worker or its node died
            rc, out = 1, f"{type(e).__name__}: {e}"[-TAIL:]
        try:
            h.log.write_text(out)
        except OSError:
            pass
        h.rc = rc
        return rc

    def terminate(self, h: RayHandle) -> None:
        if h.rc is None and not h.cancelled:
            h.cancelled = True
            ray.cancel(h.ref)  # KeyboardInterrupt in the task: it stops its trial

    def stop(self, h: RayHandle, timeout: float) -> int | None:
        import time

        self.terminate(h)
        deadline = time.monotonic() + timeout
        while self.poll(h) is None:
            if time.monotonic() >= deadline:
                ray.cancel(h.ref, force=True)
                ray.wait([h.ref], timeout=5)
                self.poll(h)
                break
            time.sleep(0.05)
        return h.rc

    def close(self) -> None:
        if self._own and ray.is_initialized():
            ray.shutdown()
