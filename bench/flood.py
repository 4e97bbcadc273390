"""A hostile flood against a real daemon while two honest probes stream (issue 11).

Flood patterns (each from its own process, bounded to a few hundred MB in all):

* ``arrays``  1 MB spectra under ever new names and runs (finding 4: 280 of them);
* ``runs``    new runs from many connections (finding 4: 100,000 runs);
* ``names``   scalars records of 4,096 new metric names each (finding 4: 1.15 M names);
* ``big``     15 MiB messages, far over the frame cap (finding 7);

Honest side: two probe-like senders (own routing ids, 5 records every 20 ms each),
timing every frame from send to ack. Measured: honest records lost (the store is
read at the end), honest ack latency p50/p99, daemon peak RSS (VmHWM), snapshot
time (requests during the flood), refusals by reason.

    nice -n 10 python bench/flood.py [--seconds 20] [--quick]
"""

from __future__ import annotations

import argparse
import multiprocessing as mp
import os
import sys
import threading
import time

import numpy as np
import zmq

sys.path.insert(0, os.path.dirname(__file__))
from daemonkit import Daemon  # noqa: E402

from grokwatch import client, wire  # noqa: E402
from grokwatch.daemon.store import open_store  # noqa: E402


def honest_proc(endpoint: str, run: str, stop, out) -> None:
    """One honest sender in its own process (the bench's snapshot decoding holds a GIL)."""
    ev = threading.Event()
    lat: list[float] = []
    sent: list[int] = []
    t = threading.Thread(target=honest, args=(endpoint, run, ev, lat, sent))
    t.start()
    stop.wait()
    ev.set()
    t.join()
    out.put((run, lat, sent[0] if sent else 0))


def honest(endpoint: str, run: str, stop: threading.Event, lat: list[float],
           sent: list[int]) -> None:
    """A probe-like sender: 250 records/s; every 50 ms what is unsent goes as one frame
    (as the probe's sender batches); unacked records resent after 3 s without progress.
    ``lat``: per record, seconds from its creation to the ack that covers it."""
    ctx = zmq.Context()
    s = ctx.socket(zmq.DEALER)
    s.setsockopt(zmq.ROUTING_ID, b"gw-honest-" + run.encode())
    s.setsockopt(zmq.SNDHWM, 64)
    s.setsockopt(zmq.LINGER, 0)
    s.connect(endpoint)
    seq, step = 1, 0
    born: dict[int, float] = {1: time.perf_counter()}
    unsent: list[dict] = [wire.hello(1, host="bench", pid=os.getpid())]
    inflight: list[dict] = []
    last_ack = 0
    t_gen = t_send = time.perf_counter()
    progress = time.perf_counter()
    end = None
    while True:
        now = time.perf_counter()
        if stop.is_set() and end is None:
            end = now + 30.0
        if end is not None and (not (unsent or inflight) or now > end):
            break
        while end is None and now >= t_gen:
            for _ in range(5):
                seq += 1
                step += 1
                born[seq] = now
                unsent.append(wire.scalars(seq, step, {wire.names.TRAIN_LOSS: 1.0 / step,
                                                       wire.names.VAL_ACC: 0.5,
                                                       "sent_at": time.time()}))
            t_gen += 0.02
        if inflight and now - progress > 3.0:  # no ack for 3 s: resend
            unsent, inflight = inflight + unsent, []
            progress = now
        if now >= t_send and unsent:
            batch = unsent[:1000]
            try:
                s.send(wire.encode_frame(run, 1, batch), zmq.NOBLOCK)
                inflight += batch
                unsent = unsent[1000:]
            except zmq.Again:
                pass
            t_send = now + 0.05
        if s.poll(5):
            while True:
                try:
                    data = s.recv(zmq.NOBLOCK)
                except zmq.Again:
                    break
                _, _, mark = wire.decode_ack(data)
                t = time.perf_counter()
                if mark > last_ack:
                    for q in range(last_ack + 1, mark + 1):
                        b0 = born.pop(q, None)
                        if b0 is not None:
                            lat.append(t - b0)
                    last_ack = mark
                    inflight = [r for r in inflight if r["seq"] > mark]
                    unsent = [r for r in unsent if r["seq"] > mark]
                    progress = t
    sent.append(seq)
    s.close()
    ctx.term()


def watcher(api: str, pub: str, stop, out) -> None:
    """A client (the TUI's CloneClient): probe -> client latency of the honest runs."""
    cc = client.CloneClient(api, pub, snapshot_timeout=30.0)
    lat: list[float] = []
    resnaps = 0
    while not stop.is_set():
        for kind, msg in cc.poll(timeout=0.05):
            if kind == "snapshot":
                resnaps += 1
            if kind == "run" and msg["run"] in ("h1", "h2"):
                s = msg["series"].get("sent_at")
                if s:
                    now = time.time()
                    lat.extend(now - v for v in s["values"])
    cc.close()
    out.put(("watch", lat, resnaps))


def flood(kind: str, endpoint: str, scale: float) -> None:
    ctx = zmq.Context()
    now = time.time()
    socks = []

    def sock(i: int) -> zmq.Socket:
        s = ctx.socket(zmq.DEALER)
        s.setsockopt(zmq.ROUTING_ID, f"gw-flood-{kind}-{i}".encode())
        s.setsockopt(zmq.SNDHWM, 0 if kind != "big" else 4)
        s.setsockopt(zmq.LINGER, 2000)
        s.connect(endpoint)
        socks.append(s)
        return s

    if kind == "arrays":  # 280 x 1 MB spectra under new names, 8 runs
        s = sock(0)
        arr = np.zeros(250_000, np.float32)
        for i in range(int(280 * scale)):
            s.send(wire.encode_frame(f"arr-{i % 8}", 1, [
                wire.spectrum(i // 8 + 1, 1, f"spec-{i}", arr, t=now)]))
    elif kind == "runs":  # new runs, 1,000 per connection
        n = int(30_000 * scale)
        for c in range(0, n, 1_000):
            s = sock(c)
            for i in range(c, min(n, c + 1_000)):
                s.send(wire.encode_frame(f"junk-{i}", 1, [
                    wire.scalars(1, 1, {"a": float("nan")}, t=now)]))
    elif kind == "names":  # ~20 MiB of new metric names
        s = sock(0)
        for i in range(int(300 * scale)):
            vals = {f"m{i}-{j}": 1.0 for j in range(4_096)}
            s.send(wire.encode_frame(f"names-{i % 4}", 1, [wire.scalars(i + 1, i, vals, t=now)]))
    elif kind == "big":  # 15 MiB messages: libzmq cuts the peer before queueing
        for i in range(int(12 * scale)):
            s = sock(i)
            try:
                s.send(b"\x00" * (15 << 20), zmq.NOBLOCK)
            except zmq.Again:
                pass
            time.sleep(0.05)
    for s in socks:
        s.close(20_000 if kind != "big" else 0)  # deliver what is queued (not the big ones)
    ctx.term()


def hwm_mb(pid: int) -> float:
    with open(f"/proc/{pid}/status") as f:
        for line in f:
            if line.startswith("VmHWM:"):
                return int(line.split()[1]) / 1024
    return 0.0


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--seconds", type=float, default=20.0)
    ap.add_argument("--quick", action="store_true", help="a third of the flood, 8 s")
    ap.add_argument("--only", default=None, choices=("arrays", "runs", "names", "big"),
                    help="one flood pattern alone")
    ap.add_argument("--snapshot-every", type=float, default=0.5, metavar="S",
                    help="seconds between snapshot requests during the flood (0: none)")
    args = ap.parse_args()
    scale = 1 / 3 if args.quick else 1.0
    seconds = 8.0 if args.quick else args.seconds
    d = Daemon("gwflood-")
    try:
        stop = mp.Event()
        out: mp.Queue = mp.Queue()
        hs = [mp.Process(target=honest_proc, args=(d.ingest, r, stop, out)) for r in ("h1", "h2")]
        for t in hs:
            t.start()
        w = mp.Process(target=watcher, args=(d.api, d.pub, stop, out))
        w.start()
        time.sleep(1.0)
        procs = [mp.Process(target=flood, args=(k, d.ingest, scale))
                 for k in ((args.only,) if args.only else ("arrays", "runs", "names", "big"))]
        t0 = time.perf_counter()
        for p in procs:
            p.start()
        snaps = []
        while time.perf_counter() - t0 < seconds:
            if args.snapshot_every <= 0:
                time.sleep(0.2)
                continue
            ts = time.perf_counter()
            try:
                r = client.request(d.api, "snapshot", timeout=30)
                snaps.append((time.perf_counter() - ts, len(wire.encode_msg(r)),
                              len(r["runs"])))
            except client.DaemonUnavailable:
                snaps.append((float("inf"), 0, 0))
            time.sleep(args.snapshot_every)
        for p in procs:
            p.join(60)
        stop.set()
        lat: dict[str, list[float]] = {}
        sent: dict[str, list[int]] = {}
        watch: list[float] = []
        resnaps = 0
        for _ in range(len(hs) + 1):
            run, got, n = out.get(timeout=120)
            if run == "watch":
                watch, resnaps = sorted(got), n
            else:
                lat[run], sent[run] = got, [n]
        for t in [*hs, w]:
            t.join(60)
        st = d.status()
        peak = hwm_mb(d.proc.pid)
    finally:
        d.stop()
    db = f"{d.dir}/bench.db"
    lost = 0
    if os.path.exists(db):
        s = open_store(db, readonly=True)
        for r in ("h1", "h2"):
            got = {seq for _, seq, *_ in s.iter_records(r)}
            lost += sum(1 for q in range(1, sent[r][0] + 1) if q not in got)
        s.close()
    all_lat = sorted(lat["h1"] + lat["h2"])
    p = (lambda q: all_lat[min(len(all_lat) - 1, int(q * len(all_lat)))] * 1000) if all_lat \
        else (lambda q: float("nan"))
    snap_t = sorted(x[0] for x in snaps) or [float("nan")]
    snaps = snaps or [(0.0, 0, 0)]
    if not watch:
        print(f"probe -> client: the watching client saw no honest update ({resnaps} snapshots)")
    else:
        q = lambda f: watch[min(len(watch) - 1, int(f * len(watch)))] * 1000  # noqa: E731
        print(f"probe -> client (a CloneClient) latency of the honest runs: p50 {q(0.5):.0f} "
              f"ms, p99 {q(0.99):.0f} ms over {len(watch):,} points, {resnaps} snapshot(s) "
              f"[target p99 <= 200 ms]")
    print(f"flood {'--quick ' if args.quick else ''}for {seconds:g} s: "
          f"honest records sent {sum(s[0] for s in sent.values()):,}, lost {lost}")
    print(f"honest ack latency: p50 {p(0.5):.0f} ms, p99 {p(0.99):.0f} ms, max {p(1.0):.0f} ms "
          f"[target p99 < 1000 ms]")
    print(f"daemon peak RSS {peak:.0f} MiB [target < 1024]; runs held {st['runs']:,}, "
          f"metric names {st['held']['metric_names']:,}, "
          f"array bytes {st['held']['array_bytes'] / 2**20:.0f} MiB")
    print(f"snapshot: {len(snaps)} requests, max {snap_t[-1]:.2f} s, median "
          f"{snap_t[len(snap_t) // 2]:.2f} s, largest {max(x[1] for x in snaps) / 2**20:.1f} MiB "
          f"[target < 2 s]")
    print(f"refused by reason: {dict(sorted(st['rejected'].items()))}")
    lp = st.get("loop") or {}
    print(f"daemon loop work per pass over the last 2,000 passes: p50 "
          f"{lp.get('work_ms_p50', 0):.1f} ms, p99 {lp.get('work_ms_p99', 0):.1f} ms, max "
          f"{lp.get('work_ms_max', 0):.0f} ms; load average {os.getloadavg()[0]:.1f} on "
          f"{os.cpu_count()} CPUs")


if __name__ == "__main__":
    main()
