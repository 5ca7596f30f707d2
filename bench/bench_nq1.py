#!/usr/bin/env python3
"""One query at a time: the latency of index.search for a single query over
a flat index, in the style of FAISS's benchs/:

    PYTHONPATH=build/python /usr/bin/python3 bench/bench_nq1.py \\
        [--d 1536] [--nb 100000] [--keys TQmse4,TQmse2,TQmse4fs,TQmse2fs] \\
        [--nq 200] [--threads 1] [--smoke]

Random unit vectors (seed 1), inner product, k = 10. Per factory key: the
median over --nq single-query searches, in ms, and the codes read per
second (code bytes of the whole base over that median: every flat scan
reads every code). At 100k x 1536 the codes (78 MB at 4 bits) come from
DRAM; --nb 10000 keeps them in this machine's L3. To compare two builds
(a kernel change), run the script with each build's module on
PYTHONPATH, one after the other, a few times: this machine's speed moves
by 10-40% from one moment to the next.
"""

import argparse
import time

import numpy as np

import faiss
import faiss_turbo as ft


def unit(rng, n, d):
    x = rng.standard_normal((n, d)).astype("float32")
    x /= np.linalg.norm(x, axis=1, keepdims=True)
    return x


def main():
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--d", type=int, default=1536)
    ap.add_argument("--nb", type=int, default=100000)
    ap.add_argument("--keys", default="TQmse4,TQmse2,TQmse4fs,TQmse2fs")
    ap.add_argument("--nq", type=int, default=200)
    ap.add_argument("--threads", type=int, default=1)
    ap.add_argument("--smoke", action="store_true",
                    help="2000 x 128, 20 queries (seconds)")
    args = ap.parse_args()
    if args.smoke:
        args.d, args.nb, args.nq = 128, 2000, 20
    faiss.omp_set_num_threads(args.threads)
    rng = np.random.default_rng(1)
    print(f"d={args.d} nb={args.nb} {args.threads} thread(s), "
          f"median of {args.nq} single-query searches, k=10, IP")
    print("| key | code bytes | ms/query | GB/s of codes |")
    print("|---|---:|---:|---:|")
    for key in args.keys.split(","):
        index = ft.index_factory(args.d, key, faiss.METRIC_INNER_PRODUCT)
        for i0 in range(0, args.nb, 10000):  # bounded peak memory
            index.add(unit(rng, min(10000, args.nb - i0), args.d))
        xq = unit(rng, args.nq, args.d)
        index.search(xq[:1], 10)  # first touch of the scratch
        ts = []
        for i in range(args.nq):
            t0 = time.perf_counter()
            index.search(xq[i:i + 1], 10)
            ts.append(time.perf_counter() - t0)
        t = float(np.median(ts))
        nbytes = index.sa_code_size() * index.ntotal
        print(f"| {key} | {index.sa_code_size()} | {t * 1e3:.3f} "
              f"| {nbytes / t / 1e9:.1f} |")


if __name__ == "__main__":
    main()
