"""SIGTERM (a scheduler's preemption) flushes the probe's tail, then the program's own action runs.

A real training process (a subprocess with a Probe) against a real daemon: it
logs a burst and is sent SIGTERM right after it, by itself (no time for the
sender's timer to carry the burst out first).
"""

from __future__ import annotations

import signal
import subprocess
import sys
import textwrap

N = 3000

CHILD = textwrap.dedent("""
    import os, signal, sys, time
    from pathlib import Path
    mode, endpoint, flag = sys.argv[1], sys.argv[2], Path(sys.argv[3])
    if mode == "own":  # the program's own handler, installed before the probe
        def own(signum, frame):
            flag.write_text("own handler ran")
            sys.exit(7)
        signal.signal(signal.SIGTERM, own)
    if mode == "carry":  # a handler that checkpoints and carries on (no exit)
        signal.signal(signal.SIGTERM, lambda signum, frame: flag.write_text("checkpointed"))
    from grokwatch.probe import Probe
    if mode == "off":
        os.environ["GROKWATCH_SIGTERM"] = "0"
    p = Probe("preempted-" + mode, endpoint=endpoint)
    deadline = time.monotonic() + 10
    while not p.connected and time.monotonic() < deadline:
        time.sleep(0.01)
    for i in range({n}):
        p.log(i, x=float(i))
    os.kill(os.getpid(), signal.SIGTERM)
    if mode == "carry":  # the probe is still open: training and logging go on
        for i in range({n}, {n} + 100):
            p.log(i, x=float(i))
        sys.exit(0 if p.close(timeout=10) else 3)
    time.sleep(30)  # training goes on until the signal acts
    flag.write_text("survived")
""").format(n=N)


def run_child(tmp_path, daemon, mode: str) -> tuple[int, str]:
    flag = tmp_path / f"flag-{mode}"
    proc = subprocess.run([sys.executable, "-c", CHILD, mode, daemon.ingest, str(flag)],
                          capture_output=True, text=True, timeout=60)
    return proc.returncode, flag.read_text() if flag.exists() else ""


def stored_steps(daemon, run: str) -> list[int]:
    rows = daemon.request("export", run=run, metric="x", timeout=10)["rows"]
    return sorted(r["step"] for r in rows)


def test_sigterm_default_action_flushes_then_dies_by_the_signal(tmp_path, daemon):
    rc, flag = run_child(tmp_path, daemon, "default")
    assert rc == -signal.SIGTERM, "the process must still die by SIGTERM"
    assert flag == ""
    assert stored_steps(daemon, "preempted-default") == list(range(N))


def test_sigterm_chains_to_the_programs_own_handler(tmp_path, daemon):
    rc, flag = run_child(tmp_path, daemon, "own")
    assert rc == 7 and flag == "own handler ran"
    assert stored_steps(daemon, "preempted-own") == list(range(N))


def test_a_handler_that_carries_on_keeps_the_probe_open(tmp_path, daemon):
    rc, flag = run_child(tmp_path, daemon, "carry")
    assert rc == 0 and flag == "checkpointed"
    assert stored_steps(daemon, "preempted-carry") == list(range(N + 100))


def test_without_the_flush_the_tail_is_lost(tmp_path, daemon):
    # The failure this fixes, kept visible: the same burst, handler off, loses records.
    rc, _ = run_child(tmp_path, daemon, "off")
    assert rc == -signal.SIGTERM
    try:
        steps = stored_steps(daemon, "preempted-off")
    except Exception:
        steps = []
    assert len(steps) < N
