"""``grokwatch demo --headless``: real daemon, real trainings, no terminal, nothing left behind."""

from __future__ import annotations

import os
import shutil
import signal
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import pytest

from grokwatch import client
from grokwatch.daemon.phases import PHASES

pytestmark = pytest.mark.slow

PRESETS = ("grokking", "memorization", "comprehension", "confusion")


@pytest.fixture(autouse=True)
def _private_xdg(tmp_path, monkeypatch):
    """The demo's daemon must not read the user's hooks file or write to their state dir."""
    monkeypatch.setenv("XDG_CONFIG_HOME", str(tmp_path / "config"))
    monkeypatch.setenv("XDG_STATE_HOME", str(tmp_path / "state"))
    monkeypatch.delenv("GROKWATCH_ENDPOINT", raising=False)


@pytest.fixture
def endpoints():
    """Private ipc:// endpoints (short paths) and the directory that holds them."""
    d = Path(tempfile.mkdtemp(prefix="gwdemo-"))
    yield d, {"ingest": f"ipc://{d}/i", "pub": f"ipc://{d}/p", "api": f"ipc://{d}/a"}
    leftovers = processes_mentioning(str(d))
    for pid in leftovers:  # never leave a process behind, even when a test fails
        os.kill(pid, signal.SIGKILL)
    shutil.rmtree(d, ignore_errors=True)
    assert not leftovers, f"processes left behind: {leftovers}"


def processes_mentioning(text: str) -> list[int]:
    """PIDs of live processes whose command line contains ``text``."""
    pids = []
    for p in Path("/proc").iterdir():
        if not p.name.isdigit() or int(p.name) == os.getpid():
            continue
        try:
            cmd = (p / "cmdline").read_bytes().replace(b"\0", b" ").decode(errors="replace")
            state = (p / "stat").read_text().split(") ")[-1][:1]
        except OSError:
            continue
        if text in cmd and state != "Z":
            pids.append(int(p.name))
    return pids


def demo_cmd(eps: dict[str, str], *args: str) -> list[str]:
    return [sys.executable, "-m", "grokwatch", "demo", "--headless", "--ingest", eps["ingest"],
            "--pub", eps["pub"], "--api", eps["api"], *args]


def final_section(out: str) -> dict[str, str]:
    """run name -> the final line about it."""
    assert "== final ==" in out, out
    lines = out.split("== final ==", 1)[1].splitlines()
    return {ln.split()[0]: ln for ln in lines if ln.strip() and not ln.startswith(" ")}


def phase_of(line: str) -> str:
    words = line.split()
    return words[words.index("phase") + 1]


def test_headless_demo_runs_every_preset_prints_phases_and_cleans_up(endpoints, tmp_path):
    sockdir, eps = endpoints
    db = tmp_path / "demo.db"
    res = subprocess.run(demo_cmd(eps, "--fast", "--scale", "0.1", "--budget", "120", "--interval", "1",
                                  "--db", str(db)),
                         stdin=subprocess.DEVNULL, capture_output=True, text=True, timeout=180)
    assert res.returncode == 0, res.stdout + res.stderr
    assert "started a daemon" in res.stdout
    final = final_section(res.stdout)
    assert set(final) == set(PRESETS), res.stdout
    for line in final.values():
        assert " done " in line, line
        assert phase_of(line) in PHASES, line
    # Live view: one line per run, more than once.
    assert sum(ln.startswith("grokking ") for ln in res.stdout.splitlines()) >= 2
    # The daemon it started is gone, and its --db store kept what the runs sent.
    with pytest.raises(client.DaemonUnavailable):
        client.request(eps["api"], "ping", timeout=1.0)
    assert db.exists() and db.stat().st_size > 0
    out = subprocess.run([sys.executable, "-m", "grokwatch", "runs", "--db", str(db)],
                         capture_output=True, text=True, timeout=60)
    assert out.returncode == 0, out.stderr
    for name in PRESETS:
        assert name in out.stdout


def test_budget_stops_trainings_and_skips_the_queue(endpoints):
    sockdir, eps = endpoints
    t0 = time.monotonic()
    res = subprocess.run(demo_cmd(eps, "--presets", "grokking", "confusion", "--jobs", "1",
                                  "--budget", "8"),
                         stdin=subprocess.DEVNULL, capture_output=True, text=True, timeout=120)
    took = time.monotonic() - t0
    assert res.returncode == 0, res.stdout + res.stderr
    assert "budget of 8 s reached" in res.stdout
    final = final_section(res.stdout)
    assert " stopped " in final["grokking"], final
    assert " skipped " in final["confusion"], final
    # The stopped run said goodbye: the daemon saw it finish, not go silent.
    assert phase_of(final["grokking"]) in PHASES
    assert took < 8 + 40, took  # bounded shutdown (daemon start + stop waits)


@pytest.mark.parametrize("sig", [signal.SIGINT, signal.SIGTERM])
def test_ctrl_c_or_sigterm_stops_everything_promptly(endpoints, sig):
    sockdir, eps = endpoints
    proc = subprocess.Popen(demo_cmd(eps, "--presets", "grokking", "memorization",
                                     "--interval", "0.5"),
                            stdin=subprocess.DEVNULL, stdout=subprocess.PIPE,
                            stderr=subprocess.PIPE, text=True)
    try:
        # Wait until both trainings report steps through the daemon.
        deadline = time.monotonic() + 90
        seen: list[str] = []
        while time.monotonic() < deadline:
            line = proc.stdout.readline()
            if not line:
                break
            seen.append(line)
            if line.startswith("memorization") and " running " in line and " step " in line:
                break
        assert any(" running " in ln and "step" in ln for ln in seen), "".join(seen)
        assert len(processes_mentioning(str(sockdir))) >= 3  # demo's daemon + 2 trainings
        proc.send_signal(sig)
        out, err = proc.communicate(timeout=30)
    finally:
        if proc.poll() is None:
            proc.kill()
            proc.wait()
    assert proc.returncode == 130, err
    assert "interrupted" in err
    assert processes_mentioning(str(sockdir)) == []


def test_uses_a_running_daemon_and_leaves_it_running(daemon):
    eps = {"ingest": daemon.ingest, "pub": daemon.pub, "api": daemon.api}
    res = subprocess.run(demo_cmd(eps, "--presets", "comprehension", "--fast"),
                         stdin=subprocess.DEVNULL, capture_output=True, text=True, timeout=120)
    assert res.returncode == 0, res.stdout + res.stderr
    assert "using the daemon" in res.stdout
    final = final_section(res.stdout)
    [name] = final
    assert name.startswith("comprehension-"), final  # suffixed: the store may hold older runs
    assert daemon.proc.poll() is None
    runs = [r["run"] for r in daemon.request("runs")["runs"]]
    assert name in runs


def test_bad_arguments_exit_2_without_starting_anything(endpoints):
    sockdir, eps = endpoints
    res = subprocess.run(demo_cmd(eps, "--jobs", "0"), stdin=subprocess.DEVNULL,
                         capture_output=True, text=True, timeout=60)
    assert res.returncode == 2
    assert "--jobs" in res.stderr
    with pytest.raises(client.DaemonUnavailable):
        client.request(eps["api"], "ping", timeout=0.5)
