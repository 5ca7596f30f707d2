"""Checks of --smoke (bench/smoke.sh): what holds in any correct run.

No measured figure is assumed: each check is a property of exact search, of
recall's definition, of the code format or of the harness's own rules.
"""

import catalog
import methods
import metrics


def check_results(doc):
    """Per-method checks of a finished run."""
    checks = []
    for res in doc["results"]:
        key = res["spec"]["key"]
        checks.append((f"{key} ran", "error" not in res))
        if "error" in res:
            continue
        nq1 = res.get("timing", {}).get("1", {}).get("nq1")
        if nq1:
            checks.append((f"{key} nq=1 bandwidth and its read reference",
                           nq1.get("gbps", 0) > 0 and res.get("read_gbps", 0) > 0))
        rk = res["recall_1_at_k"]
        checks.append((f"{key} recall@1@k non-decreasing",
                       all(a <= b for a, b in zip(rk, rk[1:]))))
        if res["spec"]["build"] == "Flat":
            checks.append((f"{key} exact search finds every neighbour",
                           res["R@1"] == 1.0 and res["10-R@10"] == 1.0))
        if res["spec"]["family"] == "ours":
            nominal = doc["dataset"]["d"] * res["spec"]["bits"] / 8
            checks.append((f"{key} code size >= d*bits/8",
                           res["bytes_per_vec"] >= nominal))
    return checks


def check_harness(ds):
    """The harness's own rules, checked on the data: each preparation must
    rank exactly as the original metric (exact search of prepared vectors
    finds the true nearest neighbours), and PQ shapes meet the 2% rule."""
    gt_d, _ = metrics.ground_truth(ds.xb, ds.xq, ds.metric, 10)
    checks = []
    for prep in ("unit_scale", "pad8", "mips"):
        xb, xq = methods.prepare(prep, ds.xb, ds.xq)
        metric = "IP" if prep == "mips" else ds.metric
        _, labels = metrics.ground_truth(xb, xq, metric, 10)
        r = metrics.recalls(ds.xb, ds.xq, labels, gt_d, ds.metric)
        checks.append((f"preparation {prep} keeps the exact ranking", r["10-R@10"] == 1.0))
    for d, target in ((784, 200), (784, 400), (128, 40), (128, 72)):
        m, nb = catalog.pq_shape(d, target)
        size = -(-m * nb // 8)
        checks.append((f"pq_shape({d}, {target}) within 2%",
                       d % m == 0 and abs(size - target) <= 0.02 * target))
    return checks
