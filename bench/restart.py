"""Restart time of a daemon holding many runs (issue 11 finding 2: restore was quadratic).

Builds a store the way a daemon writes it (one hello and a few scalars per run, one
session each), then starts ``grokwatch daemon`` on it and times how long until it
answers ``ping``. Target: 100,000 runs in under 10 s.

    nice -n 10 python bench/restart.py            # 100,000 runs
    python bench/restart.py --runs 10000          # quicker
"""

from __future__ import annotations

import argparse
import os
import shutil
import signal
import subprocess
import sys
import tempfile
import time

from grokwatch import client, wire
from grokwatch.daemon.store import open_store
from grokwatch.wire.names import TRAIN_LOSS, VAL_ACC


def build(db: str, runs: int, records: int) -> float:
    """Write ``runs`` runs of ``records`` records (hello first) in batches; return seconds."""
    t0 = time.perf_counter()
    st = open_store(db)
    now = time.time()
    batch = 2_000
    for lo in range(0, runs, batch):
        frames, infos, sessions = [], {}, []
        for i in range(lo, min(runs, lo + batch)):
            name = f"run-{i:06d}"
            rid = st.run_id(name)
            recs = [wire.hello(1, host="bench", pid=i, modulus=97, t=now)]
            recs += [wire.scalars(q, q, {TRAIN_LOSS: 1.0 / q, VAL_ACC: 0.01 * q}, t=now)
                     for q in range(2, records + 1)]
            data = wire.encode_frame(name, i + 1, recs)
            frames.append((rid, i + 1, 1, records, records, now, data))
            infos[name] = {"host": "bench", "pid": i, "config": {}, "modulus": 97,
                           "start": now, "state": "finished", "step": records, "last_t": now,
                           "sid": i + 1, "counters": {"records": records}}
            sessions.append((rid, i + 1, records, 0, 0, 0, [], b"gw-bench"))
        st.write_batch({}, infos, sessions, [], [], frames)
    st.close()
    return time.perf_counter() - t0


def restart(db: str, sockdir: str) -> tuple[float, float, float]:
    """Start a daemon on ``db``: (seconds to the first ping answer, its CPU seconds by
    then, its RSS in MiB)."""
    api = f"ipc://{sockdir}/api"
    cmd = [sys.executable, "-m", "grokwatch", "daemon", "--db", db,
           "--ingest", f"ipc://{sockdir}/ingest", "--pub", f"ipc://{sockdir}/pub", "--api", api]
    t0 = time.perf_counter()
    proc = subprocess.Popen(cmd, stderr=subprocess.DEVNULL,
                            env={**os.environ, "XDG_CONFIG_HOME": sockdir})
    try:
        while True:
            try:
                client.request(api, "ping", timeout=0.5)
                break
            except client.DaemonUnavailable:
                if proc.poll() is not None:
                    raise RuntimeError("daemon exited") from None
                if time.perf_counter() - t0 > 600:
                    raise RuntimeError("no answer in 600 s") from None
        dt = time.perf_counter() - t0
        with open(f"/proc/{proc.pid}/stat") as f:  # CPU seconds: less noisy than wall time
            fields = f.read().rsplit(")", 1)[1].split()
        cpu = (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK")
        rss = client.request(api, "status", timeout=30)["status"]["rss_bytes"] / 2**20
        return dt, cpu, rss
    finally:
        proc.send_signal(signal.SIGTERM)
        proc.wait(120)


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--runs", type=int, default=100_000)
    ap.add_argument("--records", type=int, default=4, help="records per run (hello included)")
    args = ap.parse_args()
    d = tempfile.mkdtemp(prefix="gwrs-")
    try:
        db = f"{d}/restart.db"
        built = build(db, args.runs, args.records)
        size = os.path.getsize(db) / 2**20
        print(f"store: {args.runs:,} runs x {args.records} records, {size:.0f} MiB, "
              f"built in {built:.1f} s")
        dt, cpu, rss = restart(db, d)
        print(f"restart: first ping answered after {dt:.2f} s wall, {cpu:.2f} s of daemon CPU "
              f"({dt / args.runs * 1e6:.0f} us per run), RSS {rss:.0f} MiB  [target < 10 s]; "
              f"load average {os.getloadavg()[0]:.1f} on {os.cpu_count()} CPUs")
    finally:
        shutil.rmtree(d, ignore_errors=True)


if __name__ == "__main__":
    main()
