"""A Prometheus/OpenMetrics endpoint on the daemon (``grokwatch daemon --metrics-port N``).

Opt-in, loopback by default, served by the official ``prometheus-client``
(``pip install grokwatch[prometheus]``; imported only when the flag is given,
so the daemon runs without it). The HTTP server runs on its own thread and
never touches the daemon's state: the daemon's loop hands it a snapshot (the
``status`` reply and the exported runs' summaries) once a second, and a scrape
renders the latest one.

Per run (label ``run``):

- ``grokwatch_run_scalar{run,metric}``: last value of each chosen scalar
  (``--metrics-scalars``, default ``train_loss,val_loss,train_acc,val_acc``);
- ``grokwatch_run_phase{run,phase}``: 1 for the run's phase, 0 for the others
  (a state set: ``grokwatch_run_phase == 1`` gives each run's phase);
- ``grokwatch_run_state{run,state}``: live / finished / lost, the same way;
- ``grokwatch_run_onset_step{run}`` (only once an onset is detected),
  ``grokwatch_run_step``, ``grokwatch_run_rate`` (records/s),
  ``grokwatch_run_records_total``, ``grokwatch_run_dropped_total``,
  ``grokwatch_run_gaps_total``.

Daemon health: ``grokwatch_daemon_records_total``, ``_frames_total``,
``_bytes_total``, ``_ingest_records_per_second``, ``_rejected_total{reason}``,
queue depths (``_pending_rows``, ``_hook_jobs{state}``),
``_hook_results_total{result}``, store health (``_store_error`` 0/1,
``_store_retries_total``, ``_store_commits_total``, ``_commit_ms{quantile}``),
``_internal_errors_total``, ``_publish_dropped_total``, ``_alerts_total``,
``_runs`` and ``_runs_exported``, ``_uptime_seconds``, ``_rss_bytes``.

Label cardinality is bounded: at most ``max_runs`` runs are exported (default
100; live runs first, then the most recently heard), with at most
``MAX_SCALARS`` chosen scalars each, so a scrape holds at most about
``max_runs * (scalars + phases + states + 6)`` run series (about 1,900 at the
defaults). ``grokwatch_daemon_runs`` vs ``grokwatch_daemon_runs_exported``
shows when the cap bites.
"""

from __future__ import annotations

import logging
from collections.abc import Iterable, Iterator
from dataclasses import dataclass
from typing import Any

from grokwatch.daemon import paths
from grokwatch.wire import messages, names

log = logging.getLogger("grokwatch.daemon")

DEFAULT_SCALARS = names.TRAINING_METRICS
DEFAULT_MAX_RUNS = 100
MAX_SCALARS = 20
MAX_REASONS = 50  # reject reasons are a fixed vocabulary; a cap all the same


class MetricsError(RuntimeError):
    """The endpoint cannot start (no prometheus-client, a port in use, a remote address)."""


@dataclass
class MetricsConfig:
    """``--metrics-port``, ``--metrics-addr``, ``--metrics-scalars``, ``--metrics-max-runs``."""

    port: int
    addr: str = "127.0.0.1"
    scalars: tuple[str, ...] = DEFAULT_SCALARS
    max_runs: int = DEFAULT_MAX_RUNS


def start(cfg: MetricsConfig, *, allow_remote: bool = False) -> Exporter:
    """Serve ``/metrics`` per ``cfg``; a non-loopback address needs ``allow_remote``."""
    host = f"[{cfg.addr}]" if ":" in cfg.addr else cfg.addr
    if not paths.is_local(f"tcp://{host}:{cfg.port}"):
        if not allow_remote:
            raise MetricsError(f"refusing to serve metrics on {cfg.addr}: not loopback "
                               "(pass --allow-remote to expose it)")
        log.warning("metrics on %s:%d are readable by anyone who can reach it", cfg.addr,
                    cfg.port)
    ex = Exporter(cfg.port, cfg.addr, scalars=cfg.scalars, max_runs=cfg.max_runs)
    log.info("metrics: http://%s:%d/metrics", cfg.addr, ex.port)
    return ex


class Exporter:
    """Serves ``/metrics`` on ``addr:port`` from the latest snapshot given to :meth:`update`."""

    def __init__(self, port: int, addr: str = "127.0.0.1", *,
                 scalars: Iterable[str] = DEFAULT_SCALARS,
                 max_runs: int = DEFAULT_MAX_RUNS) -> None:
        try:
            import prometheus_client
            from prometheus_client.registry import CollectorRegistry
        except ImportError:
            raise MetricsError("--metrics-port needs prometheus-client "
                               "(pip install 'grokwatch[prometheus]')") from None
        self.scalars = tuple(dict.fromkeys(scalars))[:MAX_SCALARS]
        self.max_runs = max(1, int(max_runs))
        self._snap: tuple[dict[str, Any], list[dict[str, Any]], int] = ({}, [], 0)
        self.registry = CollectorRegistry(auto_describe=False)
        self.registry.register(self)
        try:
            self.server, self.thread = prometheus_client.start_http_server(
                port, addr=addr, registry=self.registry)
        except OSError as e:
            raise MetricsError(f"cannot serve metrics on {addr}:{port}: "
                               f"{e.strerror or e}") from None
        self.port = self.server.server_port
        self.addr = addr

    # ------------------------------------------------------------ daemon side

    def update(self, daemon: Any) -> None:
        """Take a snapshot of ``daemon`` (its loop's thread; about once a second)."""
        runs = list(daemon.ingest.runs.values())
        live = messages.LIVE
        runs.sort(key=lambda rs: (rs.info.get("state") == live, rs.last_heard), reverse=True)
        self._snap = (daemon.status(), [rs.summary() for rs in runs[:self.max_runs]],
                      len(runs))

    def close(self) -> None:
        """Stop serving."""
        self.server.shutdown()
        self.server.server_close()

    # ------------------------------------------------------------ scrape side

    def collect(self) -> Iterator[Any]:
        """The prometheus-client collector protocol (called on the HTTP thread)."""
        from prometheus_client.core import CounterMetricFamily as Counter
        from prometheus_client.core import GaugeMetricFamily as Gauge

        status, summaries, n_runs = self._snap  # one reference: a consistent snapshot
        scalar = Gauge("grokwatch_run_scalar", "Last value of a chosen scalar",
                       labels=["run", "metric"])
        phase = Gauge("grokwatch_run_phase", "1 for the run's current phase, else 0",
                      labels=["run", "phase"])
        state = Gauge("grokwatch_run_state", "1 for the run's state (live/finished/lost)",
                      labels=["run", "state"])
        onset = Gauge("grokwatch_run_onset_step", "Step of the detected grokking onset",
                      labels=["run"])
        step = Gauge("grokwatch_run_step", "Highest step received", labels=["run"])
        rate = Gauge("grokwatch_run_rate", "Records per second (2 s window)", labels=["run"])
        recs = Counter("grokwatch_run_records", "Records stored", labels=["run"])
        dropped = Counter("grokwatch_run_dropped", "Records the probe dropped (buffer overflow)",
                          labels=["run"])
        gaps = Counter("grokwatch_run_gaps", "Records never received", labels=["run"])
        for s in summaries:
            run = s["run"]
            last = s.get("last") or {}
            for m in self.scalars:
                v = last.get(m)
                if v is not None:
                    scalar.add_metric([run, m], float(v))
            for ph in names.PHASES:
                phase.add_metric([run, ph], 1.0 if s.get("phase") == ph else 0.0)
            for st in messages.RUN_STATES:
                state.add_metric([run, st], 1.0 if s.get("state") == st else 0.0)
            if s.get("onset_step") is not None:
                onset.add_metric([run], float(s["onset_step"]))
            step.add_metric([run], float(s.get("step") or 0))
            rate.add_metric([run], float(s.get("rate") or 0.0))
            c = s.get("counters") or {}
            recs.add_metric([run], float(c.get("records", 0)))
            dropped.add_metric([run], float(c.get("dropped", 0)))
            gaps.add_metric([run], float(c.get("gaps", 0)))
        yield from (scalar, phase, state, onset, step, rate, recs, dropped, gaps)
        yield from self._health(status, len(summaries), n_runs)

    def _health(self, st: dict[str, Any], exported: int, n_runs: int) -> Iterator[Any]:
        from prometheus_client.core import CounterMetricFamily as Counter
        from prometheus_client.core import GaugeMetricFamily as Gauge

        def g(name: str, doc: str, v: Any) -> Gauge:
            return Gauge(f"grokwatch_daemon_{name}", doc, value=float(v or 0))

        def c(name: str, doc: str, v: Any) -> Counter:
            return Counter(f"grokwatch_daemon_{name}", doc, value=float(v or 0))

        if not st:
            return
        yield c("records", "Records stored", st.get("records"))
        yield c("frames", "Frames received", st.get("frames"))
        yield c("bytes", "Frame bytes received", st.get("bytes"))
        yield c("duplicates", "Records received twice (resends)", st.get("duplicates"))
        yield g("ingest_records_per_second", "Records per second, all runs",
                (st.get("rates") or {}).get("records_per_s"))
        rej = Counter("grokwatch_daemon_rejected", "Frames rejected, by reason",
                      labels=["reason"])
        for reason, n in sorted((st.get("rejected") or {}).items())[:MAX_REASONS]:
            rej.add_metric([str(reason)], float(n))
        yield rej
        queues = st.get("queues") or {}
        yield g("pending_rows", "Rows waiting for the next store commit",
                queues.get("pending_rows", st.get("pending_rows")))
        hooks = queues.get("hooks") or {}
        jobs = Gauge("grokwatch_daemon_hook_jobs", "Hook jobs queued or running",
                     labels=["state"])
        for k in ("queued", "running"):
            jobs.add_metric([k], float(hooks.get(k, 0)))
        yield jobs
        results = Counter("grokwatch_daemon_hook_results", "Hook runs by result",
                          labels=["result"])
        for k in messages.HOOK_RESULTS:
            results.add_metric([k], float(hooks.get(k, 0)))
        yield results
        store = st.get("store") or {}
        err = st.get("store_error")
        yield g("store_error", "1 while the store is failing (commits retried)", bool(err))
        yield c("store_retries", "Store commit retries",
                (err or {}).get("retries", store.get("retries", 0)))
        yield c("store_commits", "Store commits", store.get("commits"))
        cms = Gauge("grokwatch_daemon_commit_ms", "Store commit time (last 200 commits)",
                    labels=["quantile"])
        cms.add_metric(["0.5"], float(store.get("commit_ms_p50") or 0))
        cms.add_metric(["1"], float(store.get("commit_ms_max") or 0))
        yield cms
        yield c("internal_errors", "Internal errors caught (the daemon kept running)",
                st.get("internal_errors"))
        yield c("detector_errors", "Detector exceptions caught", st.get("detector_errors"))
        yield c("publish_dropped", "Updates dropped at the PUB socket",
                (st.get("publish") or {}).get("dropped"))
        yield c("alerts", "Alerts raised", st.get("alerts"))
        yield g("runs", "Runs the daemon holds", n_runs)
        yield g("runs_exported", "Runs exported here (capped by --metrics-max-runs)", exported)
        yield g("uptime_seconds", "Seconds since the daemon started", st.get("uptime"))
        yield g("rss_bytes", "Resident memory", st.get("rss_bytes"))
