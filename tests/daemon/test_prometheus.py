"""The daemon's Prometheus endpoint (``--metrics-port``): a real daemon, real probes, real HTTP.

The exposition is read back with prometheus-client's own parser; where Debian's
``prometheus`` server is installed, a real server scrapes the daemon and a
PromQL query returns the run's phase.
"""

from __future__ import annotations

import json
import shutil
import socket
import subprocess
import sys
import textwrap
import urllib.parse
import urllib.request

import pytest
import zmq
from waiting import wait_for

from grokwatch.probe import Probe

parser = pytest.importorskip(
    "prometheus_client.parser",
    reason="prometheus-client is not installed (pip install grokwatch[prometheus])")


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def scrape(port: int) -> dict[str, list]:
    """``{family name: [samples]}`` as prometheus-client parses the daemon's exposition."""
    with urllib.request.urlopen(f"http://127.0.0.1:{port}/metrics", timeout=5) as r:
        text = r.read().decode()
    return {f.name: f.samples for f in parser.text_string_to_metric_families(text)}


def sample(fams: dict, family: str, name: str | None = None, **labels) -> float | None:
    for s in fams.get(family, []):
        if (name is None or s.name == name) and all(s.labels.get(k) == v
                                                    for k, v in labels.items()):
            return s.value
    return None


def status(daemon) -> dict:
    r = daemon.request("status")
    return r.get("status", r)  # the body, under "status" in the messages layout


def feed(daemon, run: str, n: int = 50) -> None:
    with Probe(run, endpoint=daemon.ingest) as p:
        for i in range(n):
            p.log(i, train_loss=2.0 - i / 100, val_acc=i / 100, lr=0.1)


def test_exposition_parses_with_runs_phases_and_health(start_daemon):
    port = free_port()
    d = start_daemon(args=["--metrics-port", str(port), "--metrics-scalars",
                           "train_loss,val_acc"])
    feed(d, "prom-a")
    feed(d, "prom-b", 10)
    # a frame the daemon refuses, so a reject reason shows up
    ctx = zmq.Context()
    s = ctx.socket(zmq.DEALER)
    s.connect(d.ingest)
    s.send(b"\xc1 not msgpack")
    wait_for(lambda: status(d).get("rejected_total", 0) >= 1)
    s.close(0)
    ctx.term()

    def ready():
        f = scrape(port)
        ok = (sample(f, "grokwatch_run_scalar", run="prom-a", metric="val_acc") == 0.49
              and sample(f, "grokwatch_daemon_rejected", "grokwatch_daemon_rejected_total")
              and sample(f, "grokwatch_run_state", run="prom-a", state="finished") == 1.0)
        return f if ok else None

    fams = wait_for(ready, timeout=20)
    assert sample(fams, "grokwatch_run_scalar", run="prom-a", metric="train_loss") == \
        pytest.approx(1.51)
    assert sample(fams, "grokwatch_run_scalar", run="prom-a", metric="lr") is None, \
        "only the chosen scalars are exported"
    phases = {s.labels["phase"]: s.value for s in fams["grokwatch_run_phase"]
              if s.labels["run"] == "prom-a"}
    runs = {r["run"]: r for r in d.request("runs")["runs"]}
    assert sum(phases.values()) == 1.0 and phases[runs["prom-a"]["phase"]] == 1.0
    assert sample(fams, "grokwatch_run_records", "grokwatch_run_records_total",
                  run="prom-a") >= 50
    assert sample(fams, "grokwatch_daemon_records", "grokwatch_daemon_records_total") >= 60
    reasons = [s.labels["reason"] for s in fams["grokwatch_daemon_rejected"]
               if s.name == "grokwatch_daemon_rejected_total"]
    assert reasons, "rejects are labelled by reason"
    assert sample(fams, "grokwatch_daemon_store_error") == 0.0
    assert sample(fams, "grokwatch_daemon_runs") == 2.0
    assert sample(fams, "grokwatch_daemon_pending_rows") is not None
    assert {s.labels["state"] for s in fams["grokwatch_daemon_hook_jobs"]} == {"queued",
                                                                              "running"}


def test_run_cap_bounds_the_labels(start_daemon):
    port = free_port()
    d = start_daemon(args=["--metrics-port", str(port), "--metrics-max-runs", "2"])
    for i in range(4):
        feed(d, f"cap-{i}", 3)
    fams = wait_for(lambda: (f := scrape(port)) and
                    sample(f, "grokwatch_daemon_runs") == 4.0 and f, timeout=20)
    exported = {s.labels["run"] for s in fams["grokwatch_run_step"]}
    assert len(exported) == 2 and sample(fams, "grokwatch_daemon_runs_exported") == 2.0


def test_flag_is_loopback_only_and_needs_the_extra(start_daemon, tmp_path):
    # a non-loopback address is refused without --allow-remote
    d = start_daemon(args=["--metrics-port", str(free_port()), "--metrics-addr", "0.0.0.0"],
                     wait=False)
    assert d.proc.wait(20) == 1
    assert "refusing to serve metrics on 0.0.0.0" in d.stderr_text()
    # without prometheus-client: one clear line, exit 1 (a module that fails to import
    # shadows the installed one)
    shadow = tmp_path / "shadow" / "prometheus_client"
    shadow.mkdir(parents=True)
    (shadow / "__init__.py").write_text("raise ImportError('not installed here')\n")
    d = start_daemon(args=["--metrics-port", str(free_port())], wait=False,
                     env={"PYTHONPATH": str(shadow.parent)})
    assert d.proc.wait(20) == 1
    assert "needs prometheus-client (pip install 'grokwatch[prometheus]')" in d.stderr_text()
    # the daemon never imports it unless asked
    code = ("import sys, grokwatch.daemon.server, grokwatch.cli.daemon; "
            "assert 'prometheus_client' not in sys.modules")
    subprocess.run([sys.executable, "-c", code], check=True, timeout=30)


PROMETHEUS = shutil.which("prometheus")


@pytest.mark.slow
@pytest.mark.skipif(PROMETHEUS is None, reason="Debian's prometheus server is not installed "
                    "(apt-get install prometheus) so no real scrape is tested")
def test_real_prometheus_scrapes_the_phase(start_daemon, tmp_path):
    port = free_port()
    d = start_daemon(args=["--metrics-port", str(port)])
    feed(d, "prom-real", 20)
    web = free_port()
    cfg = tmp_path / "prometheus.yml"
    cfg.write_text(textwrap.dedent(f"""
        global:
          scrape_interval: 1s
        scrape_configs:
          - job_name: grokwatch
            static_configs:
              - targets: ["127.0.0.1:{port}"]
    """))
    with open(tmp_path / "prometheus.log", "wb") as log:
        prom = subprocess.Popen([PROMETHEUS, f"--config.file={cfg}",
                                 f"--storage.tsdb.path={tmp_path / 'tsdb'}",
                                 f"--web.listen-address=127.0.0.1:{web}"],
                                stdout=log, stderr=subprocess.STDOUT)
    try:
        q = urllib.parse.quote('grokwatch_run_phase{run="prom-real"} == 1')

        def phase():
            try:
                with urllib.request.urlopen(
                        f"http://127.0.0.1:{web}/api/v1/query?query={q}", timeout=2) as r:
                    res = json.load(r)["data"]["result"]
            except OSError:
                return None
            return res[0]["metric"]["phase"] if res else None

        got = wait_for(phase, timeout=30, every=0.5)
        assert got == d.request("runs", run="prom-real")["runs"][0]["phase"]
    finally:
        prom.terminate()
        try:
            prom.wait(10)
        except subprocess.TimeoutExpired:
            prom.kill()
            prom.wait(5)
    assert (tmp_path / "tsdb").exists()
