"""``grokwatch train`` refuses bad flags with one clear line and exit status 2."""

import subprocess
import sys

import pytest


@pytest.mark.parametrize("args, word", [
    (["--frac", "1.5"], "frac"),
    (["--scale", "-1"], "scale"),
    (["--op", "div"], "op"),
    (["--threads", "0"], "threads"),
])
def test_bad_flags_exit_2_naming_the_field(args, word):
    res = subprocess.run([sys.executable, "-m", "grokwatch", "train", "grokking", "--no-probe",
                          *args], capture_output=True, text=True, timeout=60)
    assert res.returncode == 2
    assert word in res.stderr and "Traceback" not in res.stderr


def test_unknown_preset_is_refused_by_the_parser():
    res = subprocess.run([sys.executable, "-m", "grokwatch", "train", "nope"],
                         capture_output=True, text=True, timeout=60)
    assert res.returncode == 2
    assert "PRESET" in res.stderr or "invalid choice" in res.stderr


def test_short_run_without_a_daemon_prints_progress_and_a_summary():
    res = subprocess.run([sys.executable, "-m", "grokwatch", "train", "grokking", "--fast",
                          "--steps", "20", "--no-probe"], capture_output=True, text=True,
                         timeout=120)
    assert res.returncode == 0, res.stderr
    assert "grokking: step      0" in res.stdout
    assert "done at step 20" in res.stdout
