"""Runs ONE method in its own process and measures it.

    <python> bench/worker.py JOB.json

One process per method, so that the peak memory (VmHWM) is that method's
and so that FAISS 1.7.3 (ours) and FAISS 1.15 (peers) never meet. The parent
(bench/runner.py) writes the prepared xb / xq (.npy) and the job; this writes
result.json and, for the first thread count, the labels of the batched
search of all queries (labels.npy) from which the parent computes recall.

Timings, per thread count in job["threads"]:
  batched  all queries in one search() call (the first thread count), or a
           subset sized to job["budget_s"] (the others)
  nq=1     one query per call, as many as fit in budget_s (at least 3);
           none if job["nq1_max"] is 0
and, at 1 thread, the bandwidth of the nq=1 scan: the index's codes (B/vec
x ntotal) per query over its latency, beside this process's own read of as
many bytes (read_gbps). Methods that do not read every code per query
(IVF, HNSW, turbovec's staged search) get it too: for them it is an
effective rate, not a read rate.
"""

import json
import os
import resource
import sys
import time
import traceback

import numpy as np

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
import methods  # noqa: E402


def maxrss_mb():
    """ru_maxrss: on Linux it carries the parent's peak over fork and exec
    (a worker of a parent holding 200 MB reports >= 200 MB), hence hwm_mb."""
    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024.0


def hwm_mb():
    """Peak resident memory of this process's own address space (VmHWM)."""
    with open("/proc/self/status") as f:
        for line in f:
            if line.startswith("VmHWM:"):
                return int(line.split()[1]) / 1024.0
    return maxrss_mb()


def rss_mb():
    """Current resident memory, the baseline the index adds to."""
    with open("/proc/self/statm") as f:
        return int(f.read().split()[1]) * os.sysconf("SC_PAGE_SIZE") / 2**20


def timed(fn, *args):
    t0 = time.perf_counter()
    out = fn(*args)
    return out, time.perf_counter() - t0


def time_single_queries(m, xq, k, budget_s, max_n):
    """Latency of nq=1 searches, until the budget or max_n is spent."""
    n, t_all = 0, 0.0
    while n < min(max_n, len(xq)) and (t_all < budget_s or n < 3):
        _, t = timed(m.search, xq[n:n + 1], k)
        t_all += t
        n += 1
    return {"n": n, "s": t_all, "qps": n / t_all}


def read_gbps(nbytes, runs=5):
    """One core's read bandwidth over a buffer of nbytes (at least 1 MB),
    the median of runs: numpy's OR-reduction of its 64-bit words, which on
    the Zen 4 machine reads as fast as bench_kernels' AVX2 read loop (33-35
    vs 32-34 GB/s over 80 MB)"""
    buf = np.ones(max(nbytes, 2**20) // 8, dtype=np.uint64)
    np.bitwise_or.reduce(buf)  # first touch
    ts = sorted(timed(np.bitwise_or.reduce, buf)[1] for _ in range(runs))
    return buf.nbytes / ts[len(ts) // 2] / 1e9


def median_of(measure_once, repeat):
    """the run of median QPS among repeat runs; all QPS kept"""
    runs = sorted((measure_once() for _ in range(max(1, repeat))),
                  key=lambda r: r["qps"])
    med = dict(runs[len(runs) // 2])
    med["qps_runs"] = [r["qps"] for r in runs]
    return med


def time_full_batch(m, xq, k):
    _, t = timed(m.search, xq, k)
    return {"n": len(xq), "s": t, "qps": len(xq) / t}


def time_batched(m, xq, k, per_query_s, budget_s):
    """A batch that fits the budget at the estimated per-query cost."""
    n = int(min(len(xq), max(20, budget_s / max(per_query_s, 1e-9))))
    _, t = timed(m.search, xq[:n], k)
    return {"n": n, "s": t, "qps": n / t}


def measure(job, res):
    # already prepared (methods.prepare) by the parent: no copies here
    # that would count in this method's peak memory
    xb = np.load(job["xb"])
    xq = np.load(job["xq"])
    spec, k, threads = job["spec"], job["k"], job["threads"]
    m = methods.make_method(spec, xb.shape[1], job["metric"])
    # baseline: interpreter, library and data loaded, index still empty
    res["rss_base_mb"] = rss_mb()
    res["d_indexed"] = int(xb.shape[1])
    if m.can_set_threads:
        m.set_threads(threads[0])
    rng = np.random.default_rng(0)
    ntrain = min(len(xb), spec.get("train_n", len(xb)))
    xt = xb if ntrain == len(xb) else xb[np.sort(rng.choice(len(xb), ntrain, replace=False))]
    _, res["train_s"] = timed(m.train, xt)
    _, res["add_s"] = timed(m.add, xb)
    res["encode_us_per_vec"] = res["add_s"] / len(xb) * 1e6
    res["bytes_per_vec"] = m.code_size(len(xb))
    m.search(xq[:min(len(xq), 2)], k)  # warm-up: lazy tables, page faults
    labels, t = timed(m.search, xq, k)
    np.save(job["labels"], np.ascontiguousarray(labels, dtype=np.int64))
    per_query = t / len(xq)
    res["timing"] = {}
    for i, nt in enumerate(threads):
        if i and m.can_set_threads:
            m.set_threads(nt)
        # medians of repeat runs (the labels' run above was the warm-up)
        repeat = job.get("repeat", 1)
        if i == 0:
            batched = median_of(lambda: time_full_batch(m, xq, k), repeat)
        else:
            est = per_query * threads[0] / nt
            batched = median_of(
                    lambda: time_batched(m, xq, k, est, job["budget_s"]), repeat)
        res["timing"][str(nt)] = {"batched": batched}
        if job["nq1_max"]:
            nq1 = median_of(
                    lambda: time_single_queries(
                            m, xq, k, job["budget_s"], job["nq1_max"]), repeat)
            res["timing"][str(nt)]["nq1"] = nq1
            if nt == 1:
                nbytes = int(res["bytes_per_vec"] * len(xb))
                nq1["gbps"] = nbytes * nq1["qps"] / 1e9
                res["read_gbps"] = read_gbps(nbytes)
    res["ru_maxrss_mb"] = maxrss_mb()
    res["peak_rss_mb"] = hwm_mb()
    res["peak_delta_mb"] = res["peak_rss_mb"] - res["rss_base_mb"]


def main():
    with open(sys.argv[1]) as f:
        job = json.load(f)
    res = {"key": job["spec"]["key"]}
    code = 0
    try:
        measure(job, res)
    except Exception as e:  # noqa: BLE001 - reported to the parent
        res["error"] = f"{type(e).__name__}: {e}"
        res["traceback"] = traceback.format_exc()
        code = 1
    with open(job["result"], "w") as f:
        json.dump(res, f, indent=1)
    sys.exit(code)


if __name__ == "__main__":
    main()
