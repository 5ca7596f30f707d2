#!/usr/bin/env python3
"""IndexIVFTurboQuant's list scan, exact float vs int8 + exact re-scoring,
on bigann10k (real SIFT), one thread, in the style of FAISS's benchs/:

    PYTHONPATH=build/python /usr/bin/python3 bench/bench_ivf_scan.py \\
        [--key IVF64,TQmse4] [--nq 500] [--runs 5] [--nprobe 4,16,64]

Prints, per nprobe and mode, microseconds per query (median of --runs,
modes interleaved so that a busy machine slows them alike), 10-recall@10
against exact float search, and the overlap of the top 10 with the exact
scan's (1.000: the int8 scan returned the same neighbours).
"""

import argparse
import os
import sys
import time

import numpy as np

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
import datasets  # noqa: E402

import faiss  # noqa: E402
import faiss_turbo as ft  # noqa: E402

DEFAULT_RF = ft.SearchParametersIVFTurboQuant().rerank_factor
MODES = [("exact", ft.TQ_SCAN_EXACT, DEFAULT_RF),
         ("int8", ft.TQ_SCAN_INT8, DEFAULT_RF),
         ("int8", ft.TQ_SCAN_INT8, 1), ("int8", ft.TQ_SCAN_INT8, 0)]


def overlap(a, b, k):
    return np.mean([len(np.intersect1d(a[i], b[i])) / k for i in range(len(a))])


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--key", default="IVF64,TQmse4")
    ap.add_argument("--nq", type=int, default=500)
    ap.add_argument("--runs", type=int, default=5)
    ap.add_argument("--nprobe", default="4,16,64")
    ap.add_argument("--k", type=int, default=10)
    args = ap.parse_args()
    ds = datasets.bigann10k(nq=args.nq)
    k = args.k
    gt = faiss.IndexFlatL2(ds.d)
    gt.add(ds.xb)
    _, Igt = gt.search(ds.xq, k)
    faiss.omp_set_num_threads(1)
    index = ft.index_factory(ds.d, args.key)
    index.train(ds.xb)
    index.add(ds.xb)
    print(f"{args.key} on bigann10k: {len(ds.xb)} base, {len(ds.xq)} queries, "
          f"k={k}, 1 thread, median of {args.runs} runs\n")
    print("| nprobe | scan | rerank_factor | us/query | 10-recall@10 | top-10 overlap with exact |")
    print("|---:|---|---:|---:|---:|---:|")
    for nprobe in (int(v) for v in args.nprobe.split(",")):
        ps = [ft.SearchParametersIVFTurboQuant(nprobe=nprobe, scan_mode=m,
                                               rerank_factor=rf)
              for _, m, rf in MODES]
        out = [index.search(ds.xq, k, params=p) for p in ps]  # warm-up
        times = [[] for _ in MODES]
        for _ in range(args.runs):
            for c, p in enumerate(ps):
                t0 = time.perf_counter()
                index.search(ds.xq, k, params=p)
                times[c].append(time.perf_counter() - t0)
        for c, (name, _, rf) in enumerate(MODES):
            I = out[c][1]
            us = np.median(times[c]) / len(ds.xq) * 1e6
            print(f"| {nprobe} | {name} | {rf:g} | {us:.1f} | "
                  f"{overlap(I, Igt, k):.4f} | {overlap(I, out[0][1], k):.4f} |")


if __name__ == "__main__":
    main()
