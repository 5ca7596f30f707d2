#!/usr/bin/env python3
"""Dense (Haar) rotation against the structured Hadamard rounds, same data,
same codec otherwise, in the style of FAISS's benchs/:

    PYTHONPATH=build/python /usr/bin/python3 bench/bench_rotation.py \\
        [--data bigann10k,wordnet-wl] [--bits 2,4] [--seeds 1,2,3] \\
        [--nq 500] [--smoke]

Per data set and width: R@1 and 10-recall@10 of the centered index
(TQmse<b>c, exact ground truth by brute force), the mean over the seeds
(each seed draws its own rotation), and sa_encode time per vector, 1
thread, median of 5 runs. AUTO takes the dense rotation below d = 128 and
the Hadamard rounds from there on: this is the measurement behind that.
--smoke: 2000 random vectors of d = 128, one seed (seconds).
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

ROTATIONS = [("dense", ft.RotationType.DENSE),
             ("hadamard", ft.RotationType.HADAMARD)]


def recalls(I, gt):
    r1 = np.mean(I[:, 0] == gt[:, 0])
    r10 = np.mean([len(np.intersect1d(I[i, :10], gt[i, :10])) / 10
                   for i in range(len(I))])
    return r1, r10


def encode_us(index, x, runs=5):
    faiss.omp_set_num_threads(1)
    index.sa_encode(x[:100])  # warm-up
    times = []
    for _ in range(runs):
        t0 = time.perf_counter()
        index.sa_encode(x)
        times.append(time.perf_counter() - t0)
    faiss.omp_set_num_threads(os.cpu_count())
    return float(np.median(times)) / len(x) * 1e6


def run(name, xb, xq, metric, bits, seeds):
    d = xb.shape[1]
    gt_index = faiss.IndexFlat(d, metric)
    gt_index.add(xb)
    _, gt = gt_index.search(xq, 10)
    for b in bits:
        cells = []
        for rname, rtype in ROTATIONS:
            rec, us = [], []
            for seed in seeds:
                index = ft.IndexTurboQuant(
                    d, float(b), metric=metric, centered=True,
                    rotation_type=rtype, seed=seed)
                index.train(xb)
                index.add(xb)
                _, I = index.search(xq, 10)
                rec.append(recalls(I, gt))
                us.append(encode_us(index, xb))
            r = np.mean(rec, axis=0)
            cells.append(f"{r[0]:.3f} / {r[1]:.3f} / {np.median(us):.2f}")
        print(f"| {name} | {d} | {b} | " + " | ".join(cells) + " |",
              flush=True)


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--data", default="bigann10k,wordnet-wl")
    ap.add_argument("--bits", default="2,4")
    ap.add_argument("--seeds", default="1,2,3")
    ap.add_argument("--nq", type=int, default=500)
    ap.add_argument("--smoke", action="store_true")
    args = ap.parse_args()
    bits = [int(b) for b in args.bits.split(",")]
    seeds = [int(s) for s in args.seeds.split(",")]
    print("| data | d | bits | dense: R@1 / 10-R@10 / encode us "
          "| Hadamard: R@1 / 10-R@10 / encode us |")
    print("|---|---:|---:|---|---|")
    if args.smoke:
        rng = np.random.default_rng(0)
        x = rng.standard_normal((2100, 128)).astype("float32")
        run("gaussian", x[:2000], x[2000:], faiss.METRIC_L2, [4], [1])
        return
    for name in args.data.split(","):
        ds = datasets.load(name, nq=args.nq)
        metric = (faiss.METRIC_L2 if ds.metric == "L2"
                  else faiss.METRIC_INNER_PRODUCT)
        run(name, ds.xb, ds.xq, metric, bits, seeds)


if __name__ == "__main__":
    main()
