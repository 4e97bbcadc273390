"""What the probe costs a training loop, side by side in one run.

1. Median cost of ``probe.log(step, train_loss=, train_acc=, val_acc=)`` (daemon
   listening, and absent), of three TensorBoard ``SummaryWriter.add_scalar``
   calls for the same values, and of a bare ``msgpack.packb`` + non-blocking
   ZeroMQ send: microseconds and ratios.
2. Wall time of a reference training run (mod-97 addition, one-hot(a)||one-hot(b)
   -> 128 -> ReLU -> 128 -> ReLU -> 97, 50% of pairs, AdamW lr 1e-3 wd 1, full
   batch, one torch thread) bare, with the probe (``log`` every step plus
   ``observe`` at the default cadence, every=100) and a listening daemon, and
   with the probe and no daemon. Variants are interleaved (rotating order) so
   all see the same machine load; the ratios are medians of per-round ratios.

The "daemon" is a ROUTER in a subprocess that decodes frames and acks them
(the real daemon's protocol, without its store), so the probe does its full
work: batching, acks, buffer release.

    python bench/probe_cost.py [--quick] [--steps N] [--rounds R]
"""

from __future__ import annotations

import argparse
import gc
import logging
import os
import shutil
import statistics
import subprocess
import sys
import tempfile
import time

from grokwatch.wire.names import TRAIN_ACC, TRAIN_LOSS, VAL_ACC

ROUTER = r"""
import sys, zmq
from grokwatch import wire
ctx = zmq.Context(); s = ctx.socket(zmq.ROUTER); s.setsockopt(zmq.LINGER, 0); s.bind(sys.argv[1])
print("ready", flush=True)
marks = {}
while True:
    ident, data = s.recv_multipart()
    try:
        f = wire.decode_frame(data)
    except wire.WireError:
        continue
    if f.recs:
        key = (f.run, f.sid)
        marks[key] = max(marks.get(key, 0), f.recs[-1].seq)
        s.send_multipart([ident, wire.encode_ack(f.run, f.sid, marks[key])])
"""


def start_router(endpoint: str) -> subprocess.Popen:
    proc = subprocess.Popen([sys.executable, "-c", ROUTER, endpoint], stdout=subprocess.PIPE,
                            text=True)
    assert proc.stdout.readline().strip() == "ready"
    return proc


def per_call_us(fn, blocks: int, per_block: int) -> float:
    """Median over blocks of the mean per-call time of ``per_block`` calls, in microseconds."""
    times = []
    step = 0
    for _ in range(blocks):
        t0 = time.perf_counter_ns()
        for _ in range(per_block):
            fn(step)
            step += 1
        times.append((time.perf_counter_ns() - t0) / per_block / 1000)
    return statistics.median(times)


def bench_calls(endpoint: str, absent: str, quick: bool) -> dict[str, float]:
    import msgpack
    import zmq

    from grokwatch.probe import Probe

    blocks, per = (60, 100) if quick else (300, 100)
    out = {}
    vals = (0.6931, 0.998, 0.0123)

    with Probe("bench-log", endpoint=endpoint) as p:
        time.sleep(0.2)  # connected
        out["probe.log (daemon listening)"] = per_call_us(
            lambda s: p.log(s, train_loss=vals[0], train_acc=vals[1], val_acc=vals[2]),
            blocks, per)
    # log() only appends; the sender thread packs and sends. Its share, amortized: CPU
    # seconds of this whole process (both threads) per record, until the daemon acked all.
    with Probe("bench-cpu", endpoint=endpoint) as p:
        time.sleep(0.2)
        cpu = []
        for blk in range(5 if quick else 20):
            c0 = time.process_time()
            for s in range(blk * 5000, (blk + 1) * 5000):
                p.log(s, train_loss=vals[0], train_acc=vals[1], val_acc=vals[2])
            deadline = time.monotonic() + 10
            while p.pending and time.monotonic() < deadline:
                time.sleep(0.002)
            cpu.append((time.process_time() - c0) / 5000 * 1e6)
        out["probe.log + sender thread, CPU/record"] = statistics.median(cpu)
    with Probe("bench-absent", endpoint=absent) as p:
        out["probe.log (no daemon)"] = per_call_us(
            lambda s: p.log(s, train_loss=vals[0], train_acc=vals[1], val_acc=vals[2]),
            blocks, per)

    ctx = zmq.Context()
    sock = ctx.socket(zmq.DEALER)
    sock.setsockopt(zmq.LINGER, 0)
    sock.setsockopt(zmq.SNDHWM, 100_000)
    sock.connect(endpoint)
    time.sleep(0.2)

    def raw(s: int) -> None:
        data = msgpack.packb({"k": "scalars", "seq": s + 1, "t": time.time(), "step": s,
                              "vals": {TRAIN_LOSS: vals[0], TRAIN_ACC: vals[1],
                                       VAL_ACC: vals[2]}})
        try:
            sock.send(data, zmq.NOBLOCK)
        except zmq.Again:
            pass

    out["msgpack.packb + zmq NOBLOCK send"] = per_call_us(raw, blocks, per)
    sock.close(0)
    ctx.destroy(0)

    from torch.utils.tensorboard import SummaryWriter

    with tempfile.TemporaryDirectory() as d:
        w = SummaryWriter(d)

        def tb(s: int) -> None:
            w.add_scalar(TRAIN_LOSS, vals[0], s)
            w.add_scalar(TRAIN_ACC, vals[1], s)
            w.add_scalar(VAL_ACC, vals[2], s)

        out["TensorBoard 3x add_scalar"] = per_call_us(tb, blocks // 3, 30)
        w.close()
    return out


# ---------------------------------------------------------------- training


def make_task(p: int = 97, frac: float = 0.5, seed: int = 0):
    import torch

    a, b = torch.meshgrid(torch.arange(p), torch.arange(p), indexing="ij")
    a, b = a.flatten(), b.flatten()
    g = torch.Generator().manual_seed(seed)
    idx = torch.randperm(p * p, generator=g)[: int(frac * p * p)]
    x = torch.cat([torch.nn.functional.one_hot(a[idx], p),
                   torch.nn.functional.one_hot(b[idx], p)], 1).float()
    return x, (a[idx] + b[idx]) % p


def train(steps: int, x, y, probe=None, p: int = 97, seed: int = 0) -> tuple[float, float]:
    """``(wall s, s spent inside probe calls)`` for ``steps`` full-batch steps.

    Every variant computes the train accuracy (a loop logs it anyway); with a
    probe, it logs loss and accuracy each step and calls ``observe`` each step
    (which runs at its cadence).
    """
    import torch

    torch.manual_seed(seed)
    model = torch.nn.Sequential(torch.nn.Linear(2 * p, 128), torch.nn.ReLU(),
                                torch.nn.Linear(128, 128), torch.nn.ReLU(),
                                torch.nn.Linear(128, p))
    opt = torch.optim.AdamW(model.parameters(), lr=1e-3, weight_decay=1.0)
    gc.collect()
    inside = 0.0
    clock = time.perf_counter
    t0 = clock()
    for step in range(steps):
        opt.zero_grad(set_to_none=True)
        out = model(x)
        loss = torch.nn.functional.cross_entropy(out, y)
        loss.backward()
        opt.step()
        acc = (out.argmax(1) == y).float().mean()
        if probe is not None:
            t1 = clock()
            w1 = model[0].weight
            probe.observe(step, model, embed_a=w1[:, :p].T, embed_b=w1[:, p:].T)
            probe.log(step, train_loss=loss, train_acc=acc)
            inside += clock() - t1
    return clock() - t0, inside


def bench_training(endpoint: str, absent: str, steps: int, rounds: int) -> dict[str, list[float]]:
    import torch

    from grokwatch.probe import Probe

    torch.set_num_threads(1)
    x, y = make_task()
    train(20, x, y)  # warm up allocators and kernels
    variants = ["bare", "probe, daemon listening", "probe, no daemon"]
    times: dict[str, list[float]] = {v: [] for v in variants}
    inside: dict[str, list[float]] = {v: [] for v in variants}
    for r in range(rounds):
        order = variants[r % 3:] + variants[:r % 3]
        for v in order:
            if v == "bare":
                wall, _ = train(steps, x, y)
            else:
                ep = endpoint if v == "probe, daemon listening" else absent
                with Probe(f"bench-train-{r}", endpoint=ep, modulus=97, close_timeout=0.5) as p:
                    wall, ins = train(steps, x, y, probe=p)
                inside[v].append(ins / wall)
            times[v].append(wall)
        print(f"  round {r + 1}/{rounds}: " + ", ".join(
            f"{v} {times[v][-1]:.2f} s" for v in variants), flush=True)
    return times, inside


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--quick", action="store_true", help="short run (a smoke test, noisy)")
    ap.add_argument("--steps", type=int, default=None, help="training steps per run")
    ap.add_argument("--rounds", type=int, default=None, help="interleaved rounds")
    args = ap.parse_args(argv)
    steps = args.steps or (200 if args.quick else 2000)
    rounds = args.rounds or (2 if args.quick else 3)

    logging.getLogger("grokwatch.probe").setLevel(logging.ERROR)  # "no daemon" is the point
    d = tempfile.mkdtemp(prefix="gwb-")
    endpoint, absent = f"ipc://{d}/ingest", f"ipc://{d}/nobody"
    router = start_router(endpoint)
    try:
        import torch

        print(f"grokwatch probe cost (python {sys.version.split()[0]}, torch "
              f"{torch.__version__}, {os.cpu_count()} CPUs, one torch thread)\n")
        calls = bench_calls(endpoint, absent, args.quick)
        base = calls["probe.log (daemon listening)"]
        raw = calls["msgpack.packb + zmq NOBLOCK send"]
        print(f"{'per call, median':38s} {'us':>9s} {'x probe.log':>12s} {'x raw send':>11s}")
        for k, v in calls.items():
            print(f"{k:38s} {v:9.2f} {v / base:12.2f} {v / raw:11.2f}")
        tb = calls["TensorBoard 3x add_scalar"]
        print(f"\nTensorBoard / probe.log = {tb / base:.1f}x (target >= 25x); "
              f"probe.log = {base:.2f} us (target <= 10 us)\n")

        print(f"reference training: {steps} full-batch steps x {rounds} interleaved rounds, "
              "probe = log every step + observe(every=100) of two 97x128 matrices + norms")
        times, inside = bench_training(endpoint, absent, steps, rounds)
        bare = times["bare"]
        print(f"\n{'variant':26s} {'median s':>9s} {'ms/step':>8s} {'ratio to bare':>14s} "
              f"{'in probe calls':>15s}")
        for v, ts in times.items():
            ratio = statistics.median(t / b for t, b in zip(ts, bare))
            ins = f"{statistics.median(inside[v]) * 100:14.3f}%" if inside[v] else f"{'-':>15s}"
            print(f"{v:26s} {statistics.median(ts):9.2f} {statistics.median(ts) / steps * 1e3:8.2f}"
                  f" {ratio:14.4f} {ins}")
        lis, nod = times["probe, daemon listening"], times["probe, no daemon"]
        print(f"\nno daemon / daemon listening = "
              f"{statistics.median(n / li for n, li in zip(nod, lis)):.4f} "
              "(target: unchanged, 1.00 within noise); probe overhead target <= 1%")
    finally:
        router.terminate()
        router.wait(5)
        shutil.rmtree(d, ignore_errors=True)
    return 0


if __name__ == "__main__":
    sys.exit(main())
