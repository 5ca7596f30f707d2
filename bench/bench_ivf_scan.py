#!/usr/bin/env python3
"""IndexIVFTurboQuant's list scan: exact float vs int8 + exact re-scoring on
row lists (IVF..,TQmse4) vs 8-bit tables on lists in blocks
(IVF..,TQmse4fs), one thread, in the style of FAISS's benchs/:

    PYTHONPATH=build/python /usr/bin/python3 bench/bench_ivf_scan.py \\
        [--dataset bigann10k] [--key IVF64,TQmse4 IVF64,TQmse4fs] \\
        [--nq 500] [--runs 5] [--nprobe 4,16,64]

All keys share one trained coarse quantizer (the first key's). Prints, per
nprobe, key and mode, microseconds per query (median of --runs, every key
and mode interleaved in each run so that a busy machine slows them alike),
10-recall@10 against exact float search, and the overlap of the top 10 with
the first key's exact scan (1.000: the same neighbours).
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
         ("int8", ft.TQ_SCAN_INT8, 0)]


def overlap(a, b, k):
    return np.mean([len(np.intersect1d(a[i], b[i])) / k for i in range(len(a))])


def build(keys, ds):
    """the indexes of keys, on the first one's coarse centroids"""
    metric = faiss.METRIC_L2 if ds.metric == "L2" else faiss.METRIC_INNER_PRODUCT
    indexes = []
    for key in keys:
        index = ft.index_factory(ds.d, key, metric)
        if indexes:  # the first index's trained quantizer, copied
            q = faiss.clone_index(indexes[0].quantizer)
            index.quantizer = q
            index.referenced_objects = [q]
            index.is_trained = True
        index.train(ds.xb)
        index.add(ds.xb)
        indexes.append(index)
    return indexes


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--dataset", default="bigann10k",
                    help="a name bench/datasets.py knows (bigann10k, "
                         "fashion-mnist, wordnet-e5, ...)")
    ap.add_argument("--nb", type=int, default=None)
    ap.add_argument("--key", nargs="+", default=["IVF64,TQmse4"])
    ap.add_argument("--nq", type=int, default=500)
    ap.add_argument("--runs", type=int, default=5)
    ap.add_argument("--nprobe", default="4,16,64")
    ap.add_argument("--k", type=int, default=10)
    args = ap.parse_args()
    ds = datasets.load(args.dataset, nb=args.nb, nq=args.nq)
    k = args.k
    gt = (faiss.IndexFlatL2 if ds.metric == "L2" else faiss.IndexFlatIP)(ds.d)
    gt.add(ds.xb)
    _, Igt = gt.search(ds.xq, k)
    faiss.omp_set_num_threads(1)
    indexes = build(args.key, ds)
    print(f"{', '.join(args.key)} on {ds.name}: {len(ds.xb)} base, "
          f"{len(ds.xq)} queries, {ds.metric}, k={k}, 1 thread, median of "
          f"{args.runs} runs\n")
    print("| nprobe | index | scan | rerank_factor | us/query | 10-recall@10 "
          "| top-10 overlap with exact |")
    print("|---:|---|---|---:|---:|---:|---:|")
    for nprobe in (int(v) for v in args.nprobe.split(",")):
        runs = [(key, index, name, rf,
                 ft.SearchParametersIVFTurboQuant(
                     nprobe=nprobe, scan_mode=m, rerank_factor=rf))
                for key, index in zip(args.key, indexes)
                for name, m, rf in MODES]
        out = [r[1].search(ds.xq, k, params=r[4]) for r in runs]  # warm-up
        times = [[] for _ in runs]
        for _ in range(args.runs):
            for c, r in enumerate(runs):
                t0 = time.perf_counter()
                r[1].search(ds.xq, k, params=r[4])
                times[c].append(time.perf_counter() - t0)
        for c, (key, _, name, rf, _) in enumerate(runs):
            if name == "int8" and key.endswith("fs"):
                name = "8-bit tables"
            I = out[c][1]
            us = np.median(times[c]) / len(ds.xq) * 1e6
            print(f"| {nprobe} | {key} | {name} | {rf:g} | {us:.1f} | "
                  f"{overlap(I, Igt, k):.4f} | {overlap(I, out[0][1], k):.4f} |")


if __name__ == "__main__":
    main()
