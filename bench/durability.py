"""What ``--durability full`` (SQLite synchronous=FULL) costs against the default (NORMAL).

Commits the way the daemon does (one transaction per batch: raw probe frames and
the session rows), on the same disk, for both settings, interleaved; prints commit
time percentiles and the commits per second one core can do.

    nice -n 10 python bench/durability.py [--commits 400] [--dir PATH]
"""

from __future__ import annotations

import argparse
import shutil
import statistics
import tempfile
import time

from grokwatch import wire
from grokwatch.daemon.store import open_store

RECORDS = 50  # records per commit: a few probes' worth of one 50 ms batch


def run(db: str, durability: str, commits: int) -> list[float]:
    st = open_store(db, durability=durability)
    rid = st.run_id("bench")
    ms = []
    seq = 0
    for _ in range(commits):
        recs = []
        for _ in range(RECORDS):
            seq += 1
            recs.append(wire.scalars(seq, seq, {wire.names.TRAIN_LOSS: 0.5, wire.names.VAL_ACC: 0.9}))
        frame = (rid, 1, seq - RECORDS + 1, seq, RECORDS, time.time(),
                 wire.encode_frame("bench", 1, recs))
        t0 = time.perf_counter()
        st.write_batch({}, {}, [(rid, 1, seq, 0, 0, 0, [], b"o")], [], [], [frame])
        ms.append((time.perf_counter() - t0) * 1000)
    st.close()
    return ms


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--commits", type=int, default=400)
    ap.add_argument("--dir", default=None, help="where the stores go (default: a temp dir)")
    args = ap.parse_args()
    d = tempfile.mkdtemp(prefix="gwdur-", dir=args.dir)
    try:
        out: dict[str, list[float]] = {"normal": [], "full": []}
        for rep in range(4):  # interleaved, so load changes hit both alike
            for mode in ("normal", "full"):
                out[mode] += run(f"{d}/{mode}{rep}.db", mode, args.commits // 4)
        for mode, ms in out.items():
            ms.sort()
            p50, p99 = ms[len(ms) // 2], ms[int(len(ms) * 0.99)]
            print(f"{mode:6s}: commit p50 {p50:6.2f} ms  p99 {p99:7.2f} ms  mean "
                  f"{statistics.fmean(ms):6.2f} ms  -> {1000 / statistics.fmean(ms):7.0f} "
                  f"commits/s ({RECORDS} records each)")
        ratio = statistics.median(out["full"]) / statistics.median(out["normal"])
        print(f"full / normal median commit time: {ratio:.1f}x")
    finally:
        shutil.rmtree(d, ignore_errors=True)


if __name__ == "__main__":
    main()
