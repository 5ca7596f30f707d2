#!/usr/bin/env python3
"""Encode (and decode) time per vector, one thread, ours against FAISS's
own encoders, written the way FAISS's benchs/ scripts are: one data set,
one factory key per codec, sa_encode and sa_decode timed (median of
--runs) on the same vectors.

    PYTHONPATH=build/python /usr/bin/python3 bench/bench_encode.py \\
        [--d 128,1536] [--n 100000,20000] [--runs 5] [--rounds 3] [--smoke]

Each library runs in its own process: ours is built against Debian's FAISS
1.7.3 (/usr/bin/python3), the peers come from the venv of
scripts/make_peers_venv.sh (faiss-cpu 1.15: SQ8, RaBitQ at 1 and 4 bits
(RaBitQ4 is the one at TQmse4's bits), and SQtqmse4
behind a random rotation where that FAISS has it). Missing venv: the peers
are skipped. The vectors (random unit, seed 1) go to a temporary .npy
file that every process reads. OMP_NUM_THREADS=1 and
OMP_WAIT_POLICY=PASSIVE for the timed processes.
"""

import argparse
import json
import os
import subprocess
import sys
import tempfile
import time

import numpy as np

OURS = ["TQmse4", "TQmse2"]
PEERS = ["SQ8", "RaBitQ", "RaBitQ4", "RR{d},SQtqmse4"]
PEERS_PY = os.path.expanduser("~/.cache/faiss_turbo_bench/venv/bin/python")


def worker(args):
    """time sa_encode of each key on the vectors of args.data; JSON out"""
    import faiss

    if args.worker == "ours":
        import faiss_turbo

        make = faiss_turbo.index_factory
    else:
        make = faiss.index_factory
    faiss.omp_set_num_threads(1)
    x = np.load(args.data)
    n, d = x.shape
    res = {}
    for key in args.keys.split(";"):
        key = key.replace("{d}", str(d))
        try:
            index = make(d, key)
            if not index.is_trained:
                index.train(x[: min(n, 10000)])
        except Exception as e:  # e.g. a codec that FAISS version lacks
            res[key] = {"error": str(e).splitlines()[0][:80]}
            continue
        # outputs allocated and touched once, outside the timings: what
        # is timed is the codec, not the kernel's first-touch page faults
        # (which varied with how the previous call's array was freed)
        codes = index.sa_encode(x)
        xr = index.sa_decode(codes)
        times, dtimes = [], []
        for _ in range(args.runs):
            t0 = time.perf_counter()
            index.sa_encode(x, codes)
            t1 = time.perf_counter()
            index.sa_decode(codes, xr)
            dtimes.append(time.perf_counter() - t1)
            times.append(t1 - t0)
        res[key] = {
            "us": float(np.median(times)) / n * 1e6,
            "best_us": float(np.min(times)) / n * 1e6,
            "dec_us": float(np.median(dtimes)) / n * 1e6,
            "code_size": int(index.sa_code_size()),
        }
    print(json.dumps(res))


def run_worker(python, which, keys, data, runs):
    env = dict(os.environ, OMP_NUM_THREADS="1", OMP_WAIT_POLICY="PASSIVE")
    if which == "faiss":
        env.pop("PYTHONPATH", None)  # not our build's faiss_turbo
    cmd = [python, os.path.abspath(__file__), "--worker", which,
           "--keys", ";".join(keys), "--data", data, "--runs", str(runs)]
    out = subprocess.run(cmd, env=env, capture_output=True, text=True)
    if out.returncode != 0:
        sys.exit(f"{which} worker failed:\n{out.stderr}")
    return json.loads(out.stdout.strip().splitlines()[-1])


def table(d, n, rows):
    ref = {k: v["us"] for lib, k, v in rows if "us" in v}
    best = {k: v["best_us"] for lib, k, v in rows if "us" in v}
    sq8, rbq, rbq4 = ref.get("SQ8"), ref.get("RaBitQ"), ref.get("RaBitQ4")
    print(f"\n### d={d}, n={n}, 1 thread, median over rounds of the "
          "median of runs; best: the fastest run of all rounds (this "
          "machine's speed for our kernels swings by up to 1.5x from one "
          "moment to the next, FAISS's scalar SQ8 loop much less)\n")
    print("| codec | library | bytes | us/vector | M vec/s "
          "| time / SQ8's | best us/vector | best time / SQ8's best "
          "| RaBitQ's time / this | RaBitQ4's time / this "
          "| decode us/vector |")
    print("|---|---|---:|---:|---:|---:|---:|---:|---:|---:|---:|")
    for lib, key, v in rows:
        if "us" not in v:
            print(f"| {key} | {lib} | | n/a: {v['error']} | | | | | | | |")
            continue
        us, b = v["us"], v["best_us"]
        r1 = f"{us / sq8:.2f}" if sq8 else ""
        rb = f"{b / best['SQ8']:.2f}" if sq8 else ""
        r2 = f"{rbq / us:.1f}" if rbq else ""
        r3 = f"{rbq4 / us:.1f}" if rbq4 else ""
        print(f"| {key} | {lib} | {v['code_size']} | {us:.3f} "
              f"| {1 / us:.3f} | {r1} | {b:.3f} | {rb} | {r2} | {r3} "
              f"| {v['dec_us']:.3f} |")


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--d", default="128,1536")
    ap.add_argument("--n", default="100000,20000")
    ap.add_argument("--runs", type=int, default=5)
    ap.add_argument("--rounds", type=int, default=3,
                    help="our worker and the peers' in turn, this many times")
    ap.add_argument("--smoke", action="store_true",
                    help="seconds: d=128, 2000 vectors, 2 runs")
    ap.add_argument("--worker", choices=["ours", "faiss"])
    ap.add_argument("--keys")
    ap.add_argument("--data")
    args = ap.parse_args()
    if args.worker:
        return worker(args)
    if args.smoke:
        args.d, args.n, args.runs, args.rounds = "128", "2000", 2, 1
    ds = [int(v) for v in args.d.split(",")]
    ns = [int(v) for v in args.n.split(",")]
    ns += [ns[-1]] * (len(ds) - len(ns))
    peers = os.path.exists(PEERS_PY)
    if not peers:
        print(f"no peers' venv at {PEERS_PY} "
              "(scripts/make_peers_venv.sh): FAISS's encoders skipped")
    with tempfile.TemporaryDirectory() as tmp:
        for d, n in zip(ds, ns):
            x = np.random.default_rng(1).standard_normal((n, d))
            x = (x / np.linalg.norm(x, axis=1, keepdims=True))
            data = os.path.join(tmp, f"x{d}.npy")
            np.save(data, x.astype("float32"))
            # the two sides in turn, --rounds times: the machine's speed
            # drifts between processes, so each figure is the median of its
            # rounds and the two sides share the drift
            sides = [("faiss_turbo", sys.executable, "ours", OURS)]
            if peers:
                sides.append(("faiss 1.15", PEERS_PY, "faiss", PEERS))
            rounds = [[run_worker(py, which, keys, data, args.runs)
                       for _, py, which, keys in sides]
                      for _ in range(args.rounds)]
            rows = []
            for s, (lib, _, _, keys) in enumerate(sides):
                for key, v in rounds[0][s].items():
                    if "us" in v:
                        v = dict(v, **{f: float(np.median(
                            [r[s][key][f] for r in rounds]))
                            for f in ("us", "dec_us")})
                        v["best_us"] = min(r[s][key]["best_us"]
                                           for r in rounds)
                    rows.append((lib, key, v))
            table(d, n, rows)


if __name__ == "__main__":
    main()
