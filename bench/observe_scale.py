"""What ``observe(embed=E)`` costs against the size of E, and how far its statistics are from exact.

For each size (rows x columns, float32 on one CPU thread, no modulus: a language
model's vocabulary has no Z_p structure) it times ``matrix_metrics`` (what
``observe`` runs per matrix: erank, participation ratio, stable rank and the
top singular values) and compares each statistic with the exact value from a
float64 SVD, on three kinds of matrix:

* ``iid``: Gaussian noise (an embedding at initialization: the worst case for
  a row-sampled Gram, its spectrum is flat);
* ``lowrank``: rank 32 plus 10 % noise (a trained model's dominant directions);
* ``powerlaw``: singular values falling as i^-0.7 with random directions
  (close to trained token embeddings);
* ``spiked``: Gaussian noise plus four strong directions (a few features
  emerging from the initialization);
* ``rownorm``: Gaussian directions, row norms log-normal (sigma 1: frequent
  and rare tokens; a uniform row sample is dominated by a few heavy rows).

Errors are for one matrix of each kind and size; costs are medians of --reps runs.

Target (issue 12): <= 250 ms at 50,257 x 768, each statistic within 2 %.

    python bench/observe_scale.py            # 97x128 ... 50,257x768
    python bench/observe_scale.py --quick    # up to 10,000 x 512
"""

from __future__ import annotations

import argparse
import os
import statistics
import sys
import time

for _v in ("OPENBLAS_NUM_THREADS", "OMP_NUM_THREADS", "MKL_NUM_THREADS"):
    os.environ.setdefault(_v, "1")  # one CPU thread for numpy too, before it loads its BLAS

import numpy as np  # noqa: E402

KINDS = ("iid", "lowrank", "powerlaw", "spiked", "rownorm")
SIZES = [(97, 128), (1_000, 256), (10_000, 512), (20_000, 768), (50_257, 768)]


def make(kind: str, n: int, d: int, rng: np.random.Generator) -> np.ndarray:
    if kind == "iid":
        return rng.standard_normal((n, d), dtype=np.float32)
    if kind == "lowrank":
        r = min(32, d)
        x = rng.standard_normal((n, r), dtype=np.float32) @ rng.standard_normal(
            (r, d), dtype=np.float32)
        return (x + 0.1 * np.sqrt(r) * rng.standard_normal((n, d), dtype=np.float32)
                ).astype(np.float32)
    if kind == "spiked":
        b = np.linalg.qr(rng.standard_normal((d, 4)))[0].astype(np.float32)
        spikes = rng.standard_normal((n, 4), dtype=np.float32) * np.array([6, 4, 3, 2], np.float32)
        return rng.standard_normal((n, d), dtype=np.float32) + spikes @ b.T
    if kind == "rownorm":
        return rng.standard_normal((n, d), dtype=np.float32) * np.exp(
            rng.standard_normal((n, 1))).astype(np.float32)
    k = min(n, d)
    u = np.linalg.qr(rng.standard_normal((n, k), dtype=np.float32))[0]
    v = np.linalg.qr(rng.standard_normal((d, k), dtype=np.float32))[0]
    s = (np.arange(1, k + 1) ** -0.7).astype(np.float32)
    return ((u * s) @ v.T * np.sqrt(n)).astype(np.float32)


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--quick", action="store_true", help="sizes up to 10,000 x 512")
    ap.add_argument("--reps", type=int, default=5)
    args = ap.parse_args()
    import torch

    from grokwatch.probe.metrics import matrix_metrics
    from grokwatch.probe.spectral import spectral_scalars

    torch.set_num_threads(1)
    sizes = [s for s in SIZES if not args.quick or s[0] <= 10_000]
    rng = np.random.default_rng(0)
    print(f"{'rows x cols':>13s} {'kind':>9s} {'numpy ms':>9s} {'torch ms':>9s}   "
          f"{'erank err':>9s} {'pr err':>8s} {'srank err':>9s}")
    worst: dict[str, float] = {}
    for n, d in sizes:
        for kind in KINDS:
            x = make(kind, n, d, rng)
            t = torch.from_numpy(x)
            times = {}
            for name, arr in (("numpy", x), ("torch", t)):
                matrix_metrics("embed", arr)  # warm caches
                ts = []
                for _ in range(args.reps):
                    t0 = time.perf_counter()
                    obs = matrix_metrics("embed", arr)
                    ts.append(time.perf_counter() - t0)
                times[name] = statistics.median(ts) * 1e3
            xc = x.astype(np.float64)
            xc -= xc.mean(0)
            exact = spectral_scalars(np.sqrt(np.clip(np.linalg.eigvalsh(xc.T @ xc), 0, None))
                                     if n >= d else np.linalg.svd(xc, compute_uv=False))
            errs = {k: obs.scalars[f"embed.{k}"] / exact[k] - 1 for k in exact}
            for k, e in errs.items():
                worst[k] = max(worst.get(k, 0.0), abs(e))
            print(f"{n:>6d} x {d:<4d} {kind:>9s} {times['numpy']:9.1f} {times['torch']:9.1f}   "
                  f"{100 * errs['erank']:8.2f}% {100 * errs['pr']:7.2f}% "
                  f"{100 * errs['stable_rank']:8.2f}%")
    print("worst error over all kinds and sizes: " + ", ".join(
        f"{k} {100 * v:.2f}%" for k, v in worst.items()))
    return 0


if __name__ == "__main__":
    sys.exit(main())
