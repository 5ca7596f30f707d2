#!/usr/bin/env python3
"""IndexIVFTurboQuant by inner product on text embeddings, against the flat
centered index and exact search, in the style of FAISS's benchs/:

    PYTHONPATH=build/python /usr/bin/python3 bench/bench_ivf_ip.py \\
        [--data wordnet-e5] [--nb 30000] [--nq 300] [--bits 2,4] \\
        [--nlist 64] [--nprobe 8,64] [--smoke]

Residual codes of inner-product IVF indexes store <c, x - c> exactly
(ip_offset), so the codes' error meets only q - c: R@1 and 10-recall@10
here are what that buys on embeddings that share a large common direction
(wordnet-e5: bench/README.md makes it once; --smoke uses 2000 random unit
vectors, where there is nothing to gain, only to check that it runs).
Exact re-scoring of the scan (TQ_SCAN_EXACT) isolates the codes' accuracy.
"""

import argparse
import os
import sys

import numpy as np

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
import datasets  # noqa: E402

import faiss  # noqa: E402
import faiss_turbo as ft  # noqa: E402


def recalls(I, gt):
    r1 = np.mean(I[:, 0] == gt[:, 0])
    r10 = np.mean([len(np.intersect1d(I[i, :10], gt[i, :10])) / 10
                   for i in range(len(I))])
    return r1, r10


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--data", default="wordnet-e5")
    ap.add_argument("--nb", type=int, default=30000)
    ap.add_argument("--nq", type=int, default=300)
    ap.add_argument("--bits", default="2,4")
    ap.add_argument("--nlist", type=int, default=64)
    ap.add_argument("--nprobe", default="8,64")
    ap.add_argument("--smoke", action="store_true")
    a = ap.parse_args()
    if a.smoke:
        a.data, a.nb, a.nq, a.nlist, a.nprobe = "unit-64", 2000, 50, 16, "4,16"
    ds = datasets.load(a.data, nb=a.nb, nq=a.nq)
    xb, xq = ds.xb, ds.xq
    d = xb.shape[1]
    gt_index = faiss.IndexFlatIP(d)
    gt_index.add(xb)
    _, gt = gt_index.search(xq, 10)
    exact = ft.SearchParametersTurboQuant()
    exact.scan_mode = ft.TQ_SCAN_EXACT
    print(f"{a.data}: {len(xb)} x {d}, {len(xq)} queries, inner product")
    print(f"{'index':24s} {'B/vec':>6s} {'nprobe':>6s} {'R@1':>6s} {'10-R@10':>8s}")
    for bits in a.bits.split(","):
        flat = ft.index_factory(d, f"TQmse{bits}c", faiss.METRIC_INNER_PRODUCT)
        flat.train(xb)
        flat.add(xb)
        _, I = flat.search(xq, 10, params=exact)
        r1, r10 = recalls(I, gt)
        print(f"{'TQmse' + bits + 'c':24s} {flat.sa_code_size():6d} "
              f"{'-':>6s} {r1:6.3f} {r10:8.3f}")
        key = f"IVF{a.nlist},TQmse{bits}"
        ivf = ft.index_factory(d, key, faiss.METRIC_INNER_PRODUCT)
        assert ivf.tq.ip_offset
        ivf.train(xb)
        ivf.add(xb)
        for nprobe in map(int, a.nprobe.split(",")):
            p = ft.SearchParametersIVFTurboQuant()
            p.nprobe = nprobe
            p.scan_mode = ft.TQ_SCAN_EXACT
            _, I = ivf.search(xq, 10, params=p)
            r1, r10 = recalls(I, gt)
            print(f"{key:24s} {ivf.code_size:6d} {nprobe:6d} "
                  f"{r1:6.3f} {r10:8.3f}")
            if a.smoke:
                assert r10 > 0.3, (key, nprobe, r10)


if __name__ == "__main__":
    main()
