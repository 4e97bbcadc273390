"""What ``observe`` costs on a GPU (and on the CPU), and what it does to a training step.

For the example transformer (Nanda-style, mod-p addition, width 128, MLP 512;
the probe finds ``embed`` and ``neurons`` itself) on each device available:

1. ``observe`` per call, median ms (``Probe.observe(step, model)`` with the
   Fourier metrics at modulus p, the null, the constellation and the norms),
   timed with the device synchronised before and after;
2. device-to-host copies per ``observe`` (counted on any device: the probe's
   ``host`` and tensor ``item``/``float``/``tolist`` calls) and, on CUDA, host
   syncs as ``torch.cuda.set_sync_debug_mode("warn")`` reports them (linear
   algebra such as ``svdvals`` syncs inside torch too); each sync drains the
   training stream's queue before the CPU may go on;
3. a training step (a fixed batch of 512 pairs, AdamW) bare and with the probe (``log`` every
   10 steps with the loss tensor, ``observe`` every ``--every`` steps): median
   ms per step and the slowdown, variants interleaved in rounds.

Without CUDA it says so, measures the CPU only and exits 0.

    python bench/observe_cuda.py [--quick] [--p 97] [--steps 300] [--every 100]
"""

from __future__ import annotations

import argparse
import logging
import os
import statistics
import sys
import tempfile
import time
import warnings
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))  # run from a checkout


def build(p: int, device: str, batch: int = 512):
    import torch

    from grokwatch.examples.models import build_model

    torch.manual_seed(0)
    model = build_model("transformer", p).to(device)
    a, b = torch.meshgrid(torch.arange(p), torch.arange(p), indexing="ij")
    pick = torch.randperm(p * p)[:batch]  # one fixed batch: the step's cost, not data loading
    a, b = a.flatten()[pick].to(device), b.flatten()[pick].to(device)
    y = (a + b) % p
    opt = torch.optim.AdamW(model.parameters(), lr=1e-3, weight_decay=1.0)
    return model, opt, a, b, y


def sync(device: str) -> None:
    import torch

    if device.startswith("cuda"):
        torch.cuda.synchronize()


def make_probe(p: int, every: int):
    from grokwatch.probe import Probe

    # No daemon at this (private) endpoint: records wait in the buffer, nothing blocks.
    ep = f"ipc://{tempfile.mkdtemp(prefix='gwb-')}/none"
    return Probe("bench-observe-cuda", endpoint=ep, modulus=p, every=every,
                 capacity=1_000_000, close_timeout=0.1)


def count_host_copies(fn) -> int:
    """Device-to-host copies made while ``fn()`` runs: the probe's ``host`` and tensor
    ``item``/``__float__``/``tolist`` calls (outermost only). Each one is a sync on CUDA."""
    import torch

    from grokwatch.probe import backend

    n, depth = 0, 0
    saved = {}

    def wrap(owner, name):
        orig = getattr(owner, name)
        saved[(owner, name)] = orig

        def counted(*a, **kw):
            nonlocal n, depth
            if depth == 0:
                n += 1
            depth += 1
            try:
                return orig(*a, **kw)
            finally:
                depth -= 1
        setattr(owner, name, counted)

    wrap(backend.TorchOps, "host")
    for name in ("item", "__float__", "tolist"):
        wrap(torch.Tensor, name)
    try:
        fn()
    finally:
        for (owner, name), orig in saved.items():
            setattr(owner, name, orig)
    return n


def observe_cost(device: str, p: int, calls: int) -> dict[str, float]:
    """Median ms per observe, and host syncs per observe (CUDA only)."""
    import torch

    model, opt, a, b, y = build(p, device)
    loss = torch.nn.functional.cross_entropy(model(a, b), y)
    loss.backward()  # grads exist: grad_norm is measured too
    probe = make_probe(p, every=1)
    probe.observe(0, model)  # warm-up: DFT rows cached on the device, kernels loaded
    sync(device)
    times = []
    for i in range(1, calls + 1):
        sync(device)
        t0 = time.perf_counter()
        probe.observe(i, model)
        sync(device)
        times.append((time.perf_counter() - t0) * 1000)
    out = {"observe_ms": statistics.median(times), "errors": probe.errors,
           "copies": count_host_copies(lambda: probe.observe(calls + 2, model))}
    if device.startswith("cuda"):
        torch.cuda.set_sync_debug_mode("warn")
        try:
            with warnings.catch_warnings(record=True) as caught:
                warnings.simplefilter("always")
                probe.observe(calls + 1, model)
            out["syncs"] = sum("synchroniz" in str(w.message) for w in caught)
        finally:
            torch.cuda.set_sync_debug_mode("default")
    probe.close(timeout=0.1)
    return out


def step_times(device: str, p: int, steps: int, every: int, rounds: int,
               batch: int) -> dict[str, float]:
    """Median ms per training step, bare and with the probe, interleaved over rounds."""
    import torch

    def run(with_probe: bool) -> float:
        model, opt, a, b, y = build(p, device, batch)
        probe = make_probe(p, every) if with_probe else None
        for _ in range(5):  # warm-up
            opt.zero_grad(set_to_none=True)
            torch.nn.functional.cross_entropy(model(a, b), y).backward()
            opt.step()
        sync(device)
        t0 = time.perf_counter()
        for step in range(steps):
            opt.zero_grad(set_to_none=True)
            loss = torch.nn.functional.cross_entropy(model(a, b), y)
            loss.backward()
            opt.step()
            if probe is not None:
                if step % 10 == 0:
                    probe.log(step, train_loss=loss)
                probe.observe(step, model)
        sync(device)
        ms = (time.perf_counter() - t0) * 1000 / steps
        if probe is not None:
            probe.close(timeout=0.1)
        return ms

    bare, probed = [], []
    for r in range(rounds):
        order = (False, True) if r % 2 == 0 else (True, False)
        for w in order:
            (probed if w else bare).append(run(w))
    b, q = statistics.median(bare), statistics.median(probed)
    return {"bare_ms": b, "probe_ms": q, "slowdown_pct": (q / b - 1) * 100}


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--quick", action="store_true", help="fewer calls, steps and rounds")
    ap.add_argument("--p", type=int, default=97)
    ap.add_argument("--steps", type=int, default=300)
    ap.add_argument("--every", type=int, default=100)
    ap.add_argument("--batch", type=int, default=512, help="pairs per training step")
    ap.add_argument("--calls", type=int, default=30)
    ap.add_argument("--rounds", type=int, default=3)
    args = ap.parse_args(argv)
    if args.quick:
        args.steps, args.calls, args.rounds = min(args.steps, 60), min(args.calls, 5), 1
        args.every = min(args.every, 20)
    logging.getLogger("grokwatch.probe").setLevel(logging.ERROR)  # no daemon: expected
    try:
        import torch
    except ImportError:
        print("torch is not installed: nothing to measure")
        return 0
    torch.set_num_threads(int(os.environ.get("BENCH_THREADS", "1")))
    devices = ["cpu"]
    if torch.cuda.is_available():
        devices.append("cuda")
        print(f"CUDA: {torch.cuda.get_device_name(0)}, torch {torch.__version__}")
    else:
        print("no CUDA device here: GPU figures not measured (CPU figures below)")
    print(f"model: 1-layer transformer, p={args.p}, width 128, MLP 512, batch {args.batch}; "
          f"observe every {args.every} steps, log every 10; {args.steps} steps x "
          f"{args.rounds} rounds")
    print(f"{'device':8} {'observe ms':>11} {'copies':>7} {'syncs':>6} {'step ms bare':>13} "
          f"{'step ms probe':>14} {'slowdown':>9}")
    for dev in devices:
        oc = observe_cost(dev, args.p, args.calls)
        st = step_times(dev, args.p, args.steps, args.every, args.rounds, args.batch)
        syncs = str(oc["syncs"]) if "syncs" in oc else "-"
        print(f"{dev:8} {oc['observe_ms']:11.2f} {oc['copies']:7d} {syncs:>6} "
              f"{st['bare_ms']:13.2f} "
              f"{st['probe_ms']:14.2f} {st['slowdown_pct']:8.1f}%")
        if oc["errors"]:
            print(f"  ({dev}: the probe counted {oc['errors']} errors while observing)")
    return 0


if __name__ == "__main__":
    sys.exit(main())
