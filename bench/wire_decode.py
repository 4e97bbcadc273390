"""Frame decoding cost: the one parser with its scalars shortcut, and without it.

    python bench/wire_decode.py [--reps 31]

Prints the median time per frame (repetitions interleaved, so load on the
machine hits both alike) for probe-like frames: a fast loop's batch of 200
scalars records, one observe's 40 scalars, and scalars with a spectrum and
a constellation. The shortcut must never be slower; the daemon always uses it.
"""

from __future__ import annotations

import argparse
import statistics
import time

import numpy as np

from grokwatch import wire
from grokwatch.wire import names


def frames() -> dict[str, bytes]:
    t = time.time()
    train = {names.TRAIN_LOSS: 0.1, names.TRAIN_ACC: 0.5, names.VAL_LOSS: 1.0, names.VAL_ACC: 0.2}
    obs = {names.metric("embed", f"m{j}"): float(j) for j in range(40)}
    return {
        "200 records x 4 scalars": wire.encode_frame("run-a", 1, [
            wire.scalars(i + 2, i, train, t=t) for i in range(200)]),
        "1 record x 40 scalars": wire.encode_frame("run-a", 1, [wire.scalars(2, 1, obs, t=t)]),
        "scalars + spectrum + points": wire.encode_frame("run-a", 1, [
            wire.scalars(2, 1, obs, t=t),
            wire.spectrum(3, 1, "embed.fourier", np.ones(48, np.float32), t=t),
            wire.points(4, 1, "embed.constellation", np.ones((97, 2), np.float32), t=t)]),
    }


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--reps", type=int, default=31)
    args = ap.parse_args()
    fns = {"shortcut": wire.decode_frame,
           "general": lambda d: wire.decode_frame(d, shortcut=False)}
    for name, data in frames().items():
        assert wire.decode_frame(data) == wire.decode_frame(data, shortcut=False)
        n = max(1, 200_000 // len(data))
        times: dict[str, list[float]] = {k: [] for k in fns}
        for _ in range(args.reps):
            for k, fn in fns.items():
                t0 = time.perf_counter()
                for _ in range(n):
                    fn(data)
                times[k].append((time.perf_counter() - t0) / n)
        med = {k: statistics.median(v) * 1e6 for k, v in times.items()}
        print(f"{name:28s} shortcut {med['shortcut']:8.1f} us   general {med['general']:8.1f} us"
              f"   x{med['general'] / med['shortcut']:.2f}")


if __name__ == "__main__":
    main()
