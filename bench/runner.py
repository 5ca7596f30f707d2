"""Runs a list of method specs on a data set, one worker process each.

The exchange with the workers (prepared vectors and labels as .npy files,
the job and the result as JSON, all in a temporary folder) stays in here:
callers pass a Dataset and specs and get result dicts back.
"""

import json
import os
import shutil
import subprocess
import sys
import tempfile
import time

import numpy as np

import methods
import metrics
import peers

WORKER = os.path.join(os.path.dirname(os.path.abspath(__file__)), "worker.py")


class Runner:
    def __init__(self, ds, k=64, threads=None, budget_s=2.0, nq1_max=200,
                 timeout_s=1800, log=print, repeat=1):
        self.ds, self.k, self.log, self.repeat = ds, k, log, repeat
        self.threads = threads or [os.cpu_count() or 1, 1]
        self.budget_s, self.nq1_max, self.timeout_s = budget_s, nq1_max, timeout_s
        self.work = tempfile.mkdtemp(prefix="faiss_turbo_bench-")
        self.prepared = {}
        t0 = time.time()
        self.gt_d, self.gt_i = metrics.ground_truth(ds.xb, ds.xq, ds.metric, max(k, 10))
        self.gt_s = time.time() - t0

    def close(self):
        shutil.rmtree(self.work, ignore_errors=True)

    def data_for(self, prep):
        """Paths of the prepared vectors, made once per preparation."""
        prep = prep or "none"
        if prep not in self.prepared:
            xb, xq = methods.prepare(prep, self.ds.xb, self.ds.xq)
            paths = [os.path.join(self.work, f"{n}-{prep}.npy") for n in ("xb", "xq")]
            np.save(paths[0], xb)
            np.save(paths[1], xq)
            metric = "IP" if prep == "mips" else self.ds.metric
            self.prepared[prep] = (paths, metric)
        return self.prepared[prep]

    def run_all(self, specs):
        return [self.run(s) for s in specs]

    def run(self, spec):
        t0 = time.time()
        if spec["family"] == "turbovec":
            # its thread pool is fixed per process: one process per count
            res = self.worker(spec, self.threads[:1], tag="t0")
            for i, nt in enumerate(self.threads[1:], 1):
                extra = self.worker(spec, [nt], tag=f"t{i}")
                if "timing" in res and "timing" in extra:
                    res["timing"].update(extra["timing"])
                    if "read_gbps" in extra:  # the 1-thread worker's
                        res["read_gbps"] = extra["read_gbps"]
        else:
            res = self.worker(spec, self.threads, tag="t0")
        res["wall_s"] = time.time() - t0
        self.log(summary_line(res))
        return res

    def worker(self, spec, threads, tag):
        (xb, xq), metric = self.data_for(spec.get("prep"))
        base = os.path.join(self.work, f"{safe(spec['key'])}-{tag}")
        job = {"spec": spec, "xb": xb, "xq": xq, "metric": metric, "k": self.k,
               "threads": threads, "budget_s": self.budget_s, "nq1_max": self.nq1_max,
               "repeat": self.repeat,
               "labels": base + "-labels.npy", "result": base + "-result.json"}
        with open(base + "-job.json", "w") as f:
            json.dump(job, f)
        res = dict(spec=spec)
        res.update(self.spawn(spec["side"], threads[0], base + "-job.json", job["result"]))
        if "error" not in res and os.path.exists(job["labels"]):
            res.update(metrics.recalls(self.ds.xb, self.ds.xq, np.load(job["labels"]),
                                       self.gt_d, self.ds.metric))
        return res

    def spawn(self, side, threads, job_path, result_path):
        py = peers.python_for(side)
        try:
            p = subprocess.run([py, WORKER, job_path], env=peers.env_for(side, threads),
                               capture_output=True, text=True, timeout=self.timeout_s)
        except subprocess.TimeoutExpired:
            return {"error": f"timed out after {self.timeout_s} s"}
        except OSError as e:
            return {"error": f"cannot start {py}: {e}"}
        if os.path.exists(result_path):
            with open(result_path) as f:
                res = json.load(f)
            if p.returncode and "error" not in res:
                res["error"] = f"worker exit {p.returncode}"
            return res
        tail = (p.stderr or p.stdout or "").strip().splitlines()[-3:]
        return {"error": f"worker exit {p.returncode}: {' | '.join(tail)}"}


def safe(key):
    return "".join(c if c.isalnum() else "_" for c in key)


def batched_ms(res, threads):
    t = res.get("timing", {}).get(str(threads), {}).get("batched")
    return 1e3 / t["qps"] if t else float("nan")


def summary_line(res):
    key = res["spec"]["key"]
    if "error" in res:
        return f"  {key:<24} FAILED: {res['error']}"
    nt = max(int(t) for t in res["timing"])
    return (f"  {key:<24} {res['bytes_per_vec']:8.1f} B  R@1 {res['R@1']:.3f}  "
            f"10-R@10 {res['10-R@10']:.3f}  {batched_ms(res, nt):8.3f} ms/q ({nt}T)  "
            f"add {res['add_s']:.2f} s  [{res['wall_s']:.0f} s]")


if __name__ == "__main__":
    sys.exit("bench/runner.py is a module: run bench/bench_turboquant.py")
