#!/usr/bin/env python3
"""IVF lists in blocks on data far from the origin next to its spread:
recall of the table scan against the exact scan, and its time, in the
style of FAISS's benchs/:

    PYTHONPATH=build/python /usr/bin/python3 bench/bench_ivf_offset.py \\
        [--offset 30] [--nb 20000] [--nq 500] [--nprobe 16] [--runs 5] \\
        [--smoke]

Two sets, L2, k = 10, 1 thread: bigann10k (SIFT, ../shared/data) and
Gaussian vectors N(offset, 1) in d = 128 (seed 4). Per key
(IVF64,TQmse<b>fs): us per query (median of --runs batched searches),
10-recall@10 against the same index's exact scan (scan_mode 0) with the
default re-scoring (rerank_factor 2) and without it (0), and the share of
(query, probed list) pairs whose residual query is half the query's length
or less (those lists get tables of their own). To compare two builds, run
the script with each build's module on PYTHONPATH, one after the other.
"""

import argparse
import os
import sys
import time

import numpy as np

import faiss
import faiss_turbo as ft

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
import datasets  # noqa: E402


def params(nprobe, mode=1, rf=2.0):
    p = ft.SearchParametersIVFTurboQuant()
    p.nprobe = nprobe
    p.scan_mode = mode
    p.rerank_factor = rf
    return p


def recall(res, gt):
    return np.mean([len(set(a) & set(b)) / len(b) for a, b in zip(res, gt)])


def own_table_share(index, xq, nprobe):
    """share of (query, probed list) pairs with ||q - c||^2 * 4 < ||q||^2"""
    dis, _ = index.quantizer.search(xq, nprobe)
    q2 = (xq.astype(np.float64) ** 2).sum(1)
    return float(np.mean(dis * 4 < q2[:, None]))


def run_set(name, xb, xq, args):
    for key in ("IVF64,TQmse4fs", "IVF64,TQmse2fs"):
        index = ft.index_factory(xb.shape[1], key)
        index.train(xb)
        index.add(xb)
        _, gt = index.search(xq, 10, params=params(args.nprobe, mode=0))
        p = params(args.nprobe)
        index.search(xq, 10, params=p)  # lists' terms computed once
        times = []
        for _ in range(args.runs):
            t0 = time.perf_counter()
            _, res = index.search(xq, 10, params=p)
            times.append(time.perf_counter() - t0)
        _, res0 = index.search(xq, 10, params=params(args.nprobe, rf=0))
        share = own_table_share(index, xq, args.nprobe)
        print(
            f"{name:10s} {key:15s} {np.median(times) / len(xq) * 1e6:8.1f}"
            f" {recall(res, gt):8.3f} {recall(res0, gt):8.3f} {share:8.3f}",
            flush=True,
        )
        if args.smoke:
            assert recall(res, gt) >= 0.9, (name, key)


def main():
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--offset", type=float, default=30)
    ap.add_argument("--nb", type=int, default=20000)
    ap.add_argument("--nq", type=int, default=500)
    ap.add_argument("--nprobe", type=int, default=16)
    ap.add_argument("--runs", type=int, default=5)
    ap.add_argument("--smoke", action="store_true", help="tiny, for CI")
    args = ap.parse_args()
    if args.smoke:
        args.nb, args.nq, args.runs = 3000, 50, 1
    faiss.omp_set_num_threads(1)
    print(f"{'set':10s} {'key':15s} {'us/query':>8s} {'R rf2':>8s}"
          f" {'R rf0':>8s} {'own tbl':>8s}")
    rng = np.random.default_rng(4)
    d = 128
    xb = (args.offset + rng.standard_normal((args.nb, d))).astype("float32")
    xq = (args.offset + rng.standard_normal((args.nq, d))).astype("float32")
    run_set(f"offset{args.offset:g}", xb, xq, args)
    if not args.smoke:
        ds = datasets.load("bigann10k")
        run_set("bigann10k", ds.xb, ds.xq[: args.nq], args)


if __name__ == "__main__":
    main()
