"""Daemon ingest bench: raw limit vs the daemon's sustained ingest, RSS at 1,000 runs, latency.

Prints, in one run:

1. the raw limit: DEALER -> ROUTER + ``msgpack.unpackb`` of probe-sized frames in
   one process (and the same with ``wire.decode_frame`` validation), records/s;
2. the real daemon (subprocess: persistence, detection, publishing all on) fed
   by probe-like senders in other processes, records/s and the ratio to raw;
3. the daemon's RSS with 1,000 concurrent runs whose rings are full;
4. probe-to-client latency p50/p99: a real ``Probe`` logs its send time, a
   ``CloneClient`` sees the point arrive, while other runs keep the daemon busy.

A *record* here is what the targets count: one (run, step, name, value), i.e.
one scalar; the wire carries 4 of them per scalars record.

    python bench/daemon_ingest.py [--quick]
"""

from __future__ import annotations

import argparse
import multiprocessing as mp
import os
import shutil
import statistics
import tempfile
import threading
import time

import msgpack
import zmq
from daemonkit import PER_FRAME, SCALARS, Daemon, make_frames, sender

from grokwatch import client, wire
from grokwatch.wire.names import TRAIN_ACC, TRAIN_LOSS, VAL_ACC, VAL_LOSS


def values(step: int) -> dict[str, float]:
    """The scalars of a step: losses falling, training accuracy rising."""
    x = 1.0 / (step + 1)
    return {TRAIN_LOSS: x, TRAIN_ACC: 1 - x, VAL_LOSS: 2 * x, VAL_ACC: 0.1}


# ---------------------------------------------------------------- 1. raw limit


def raw_limit(frames: list[bytes], validate: bool) -> float:
    d = tempfile.mkdtemp(prefix="gwb-")
    ep = f"ipc://{d}/raw"
    ctx = zmq.Context()
    r = ctx.socket(zmq.ROUTER)
    r.setsockopt(zmq.RCVHWM, 0)
    r.bind(ep)
    go, done = mp.Event(), mp.Event()
    p = mp.Process(target=sender, args=(ep, frames, go, done))
    p.start()
    time.sleep(0.3)
    n_frames = len(frames)
    n_recs = 0
    got = 0
    go.set()
    t0 = None
    while got < n_frames:
        parts = r.recv_multipart()
        if t0 is None:
            t0 = time.perf_counter()
        got += 1
        if validate:
            n_recs += len(wire.decode_frame(parts[1]).recs)
        else:
            obj = msgpack.unpackb(parts[1], raw=False)
            n_recs += len(obj["recs"])
    dt = time.perf_counter() - t0
    p.terminate()
    p.join()
    r.close(0)
    ctx.term()
    shutil.rmtree(d, ignore_errors=True)
    scal = n_recs - len([f for f in frames if b"hello" in f[:200]])
    return scal * len(SCALARS) / dt


# ---------------------------------------------------------------- 2. the daemon


def daemon_ingest(d: Daemon, frame_sets: list[list[bytes]], expect_records: int) -> float:
    """Feed the daemon from one process per frame set; scalar values/s until all stored."""
    base = d.status()["records"]
    go = mp.Event()
    dones = [mp.Event() for _ in frame_sets]  # kept referenced until the children are done
    procs = [mp.Process(target=sender, args=(d.ingest, fs, go, done))
             for fs, done in zip(frame_sets, dones)]
    for p in procs:
        p.start()
    time.sleep(0.5)
    t0 = time.perf_counter()
    go.set()
    while True:
        st = d.status()
        if st["records"] - base >= expect_records:
            break
        time.sleep(0.05)  # each status request costs the daemon a little too
    dt = time.perf_counter() - t0
    for p in procs:
        p.join(60)
    scal = expect_records - sum(1 for fs in frame_sets for f in fs if b"hello" in f[:200])
    return scal * len(SCALARS) / dt


# ---------------------------------------------------------------- 4. latency


def latency(d: Daemon, n: int, background_runs: int) -> tuple[float, float, int]:
    """Probe log() -> client sees the point: p50, p99 in ms."""
    from grokwatch.probe import Probe

    stop = threading.Event()
    stop_path = f"{d.dir}/stop"
    bg = mp.Process(target=_background, args=(d.ingest, background_runs, stop_path))
    bg.start()
    cc = client.CloneClient(d.api, d.pub)
    lat: list[float] = []
    seen = threading.Event()

    def reader() -> None:
        while not stop.is_set():
            for kind, msg in cc.poll(timeout=0.05):
                if kind == "run" and msg["run"] == "latency":
                    s = msg["series"].get("sent_at")
                    if s:
                        now = time.time()
                        lat.extend(now - v for v in s["values"])
                        seen.set()

    th = threading.Thread(target=reader, daemon=True)
    th.start()
    time.sleep(1.0)
    p = Probe("latency", endpoint=d.ingest)
    for i in range(n):
        p.log(i, sent_at=time.time())
        time.sleep(0.01)
    time.sleep(1.0)
    p.close()
    stop.set()
    th.join(2)
    cc.close()
    open(stop_path, "w").close()
    bg.join(10)
    if not lat:
        return float("nan"), float("nan"), 0
    lat.sort()
    return (statistics.median(lat) * 1000, lat[min(len(lat) - 1, int(0.99 * len(lat)))] * 1000,
            len(lat))


def _background(endpoint: str, runs: int, stop_path: str) -> None:
    """Many runs logging at ~20 steps/s each (several probes' worth of traffic)."""
    ctx = zmq.Context()
    s = ctx.socket(zmq.DEALER)
    s.setsockopt(zmq.LINGER, 0)
    s.connect(endpoint)
    seqs = [0] * runs
    step = 0
    while not os.path.exists(stop_path):
        for r in range(runs):
            seqs[r] += 1
            s.send(wire.encode_frame(f"bg-{r}", r, [wire.scalars(seqs[r], step, dict.fromkeys(
                SCALARS, 0.5))]))
        while s.poll(0):
            s.recv()
        step += 1
        time.sleep(0.05)
    s.close()
    ctx.term()


# ---------------------------------------------------------------- main


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--quick", action="store_true", help="smaller workloads (seconds)")
    args = ap.parse_args()
    q = args.quick
    steps = 10_000 if q else 40_000
    runs_per_sender, senders = 10, 2
    reps = 1 if q else 3

    print(f"daemon ingest bench ({'quick' if q else 'full'}); {os.cpu_count()} CPUs; "
          f"{len(SCALARS)} scalars per record, {PER_FRAME} records per frame")
    sets = [make_frames([f"b{k}-{i}" for i in range(runs_per_sender)], steps // senders,
                        sid0=1000 * k, values=values) for k in range(senders)]
    all_frames = [f for fs in sets for f in fs]
    raw = statistics.median(raw_limit(all_frames, False) for _ in range(reps))
    raw_v = statistics.median(raw_limit(all_frames, True) for _ in range(reps))
    print(f"1. raw DEALER->ROUTER + msgpack decode : {raw:12,.0f} scalar records/s (median of {reps})")
    print(f"   ... + wire.decode_frame validation  : {raw_v:12,.0f} scalar records/s")

    rates = []
    d = Daemon("gwb-")
    try:
        for rep in range(reps):
            rsets = [make_frames([f"r{rep}-{k}-{i}" for i in range(runs_per_sender)],
                                 steps // senders, sid0=1000 * k, values=values)
                     for k in range(senders)]
            expect = sum(len(msgpack.unpackb(f)["recs"]) for fs in rsets for f in fs)
            rates.append(daemon_ingest(d, rsets, expect))
        st = d.status()
    finally:
        d.stop()
    rate = statistics.median(rates)
    print(f"2. daemon sustained (store+detect+pub) : {rate:12,.0f} scalar records/s (median of "
          f"{reps}: {', '.join(f'{r:,.0f}' for r in rates)}); {senders} sender processes, "
          f"{runs_per_sender * senders} runs")
    print(f"   ratio daemon / raw                  : {rate / raw:12.2f}  (target >= 0.30; "
          f">= 250,000/s)  commits {st['store']['commits']}, commit p50 "
          f"{st['store']['commit_ms_p50']:.1f} ms")

    n_runs = 1000
    per_run = 300 if q else 700  # 700 > the 512-point ring: rings full, history in use
    d = Daemon("gwb-")
    try:
        rsets = [make_frames([f"m{k}-{i}" for i in range(n_runs // 4)], per_run, sid0=10_000 * k,
                             values=values)
                 for k in range(4)]
        expect = sum(len(msgpack.unpackb(f)["recs"]) for fs in rsets for f in fs)
        rate_many = daemon_ingest(d, rsets, expect)
        st = d.status()
        rss = st["rss_bytes"] / 2**20
        print(f"3. RSS with {st['runs']:,} runs, {per_run} steps x {len(SCALARS)} metrics each: "
              f"{rss:8.0f} MiB (target < 500); ingest there {rate_many:,.0f} scalar records/s")
        p50, p99, n = latency(d, 200 if q else 600, background_runs=100)
        print(f"4. probe -> client latency             : p50 {p50:6.1f} ms, p99 {p99:6.1f} ms "
              f"({n} points; 100 background runs at 20 steps/s, 1,000 runs held; target p99 <= 200)")
    finally:
        d.stop()


if __name__ == "__main__":
    mp.set_start_method("spawn")
    main()
