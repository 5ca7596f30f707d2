"""TurboQuant (faiss-turbo) against FAISS and turbovec, side by side.

    PYTHONPATH=build/python /usr/bin/python3 bench/bench_turboquant.py \\
        --dataset fashion-mnist --bits 2,4 [--ivf] [--out DIR]
    ... --dataset bigann10k | wordnet-wl | wordnet-e5 | FILE.fvecs --query Q.fvecs
    ... --smoke          (a tiny run with checks, < 30 s: bench/smoke.sh)

Every method runs in its own process with the same thread count: ours with
/usr/bin/python3 (faiss_turbo, Debian's FAISS 1.7.3 for SQ / PQ), the PyPI
peers with the venv of scripts/make_peers_venv.sh (FAISS 1.15: PQ fast-scan,
RaBitQ, RR+SQtqmse / SQtq, IVF; turbovec). Without the venv only ours and
FAISS 1.7.3 run. Output: results.json, results.md, recall_at_k.png,
qps_recall.png in --out (default ~/.cache/faiss_turbo_bench/results/...).
"""

import argparse
import os
import re
import sys
import time

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
import catalog  # noqa: E402
import datasets  # noqa: E402
import harness_checks  # noqa: E402
import peers  # noqa: E402
import report  # noqa: E402
import runner  # noqa: E402


def parse_args(argv=None):
    ap = argparse.ArgumentParser(description=__doc__,
                                 formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--dataset", default="fashion-mnist",
                    help=f"one of {', '.join(datasets.NAMED)}, unit-D (synthetic), an .hdf5 or a vector file")
    ap.add_argument("--query", help="query file for a --dataset file")
    ap.add_argument("--metric", choices=("L2", "IP", "cos"),
                    help="override; cos = normalize and search by inner product")
    ap.add_argument("--nb", type=int, help="seeded subset of the base")
    ap.add_argument("--nq", type=int, default=1000, help="seeded subset of the queries")
    ap.add_argument("--bits", default="2,4", help="bits per coordinate, e.g. 2,2.5,3,4")
    ap.add_argument("--variants", default="mse,prod,mse_c",
                    help="ours: mse, prod, mse_c, prod_c (c = centered), "
                    "mse_fs, mse_cfs (fast-scan layout)")
    ap.add_argument("--ours", help="explicit list of our keys, e.g. TQmse4,TQ2.5")
    ap.add_argument("--prescan", default="",
                    help="ours: each flat key also with the sign pre-scan keeping "
                         "this many codes a query, e.g. 250,500 (key TQmse4,pre250)")
    ap.add_argument("--k", type=int, default=64)
    ap.add_argument("--threads", type=int, default=os.cpu_count() or 1)
    ap.add_argument("--no-peers", action="store_true", help="ours and FAISS 1.7.3 only")
    ap.add_argument("--debian", action=argparse.BooleanOptionalAction, default=None,
                    help="FAISS 1.7.3 SQ4/SQ8/IndexPQ rows (default: only without the "
                         "peers venv; Debian's SSE2 build scans 50-100x slower than 1.15)")
    ap.add_argument("--ivf", type=int, nargs="?", const=-1, default=0,
                    help="add IVF peers (nlist, default 4*sqrt(nb))")
    ap.add_argument("--no-calibrated", action="store_true", help="skip turbovec+cal")
    ap.add_argument("--only", help="regex on method keys to keep")
    ap.add_argument("--skip", help="regex on method keys to drop")
    ap.add_argument("--repeat", type=int, default=3,
                    help="timed runs per figure; QPS are their median")
    ap.add_argument("--budget-s", type=float, default=2.0,
                    help="seconds per timing measurement (nq=1 loops, 1-thread batch)")
    ap.add_argument("--pq-train-n", type=int, default=20000)
    ap.add_argument("--pq-nbits", type=int, default=8,
                    help="preferred nbits of FAISS 1.7.3's IndexPQ (4: 16x cheaper encoding)")
    ap.add_argument("--timings", choices=("full", "batched"), default="full",
                    help="batched: only the batched search at --threads (no 1-thread "
                         "runs, no nq=1 loops)")
    ap.add_argument("--out", help="output folder")
    ap.add_argument("--make-venv", action="store_true",
                    help="run scripts/make_peers_venv.sh first if the venv is missing")
    ap.add_argument("--smoke", action="store_true", help="tiny run with checks (< 30 s)")
    args = ap.parse_args(argv)
    if args.smoke:
        smoke_config(args)
    args.bits = [float(b) for b in args.bits.split(",")]
    return args


def smoke_config(args):
    """Small enough for CI: 2000 SIFT vectors, 50 queries, 4 bits, one
    method of each kind, all threads and one (the nq=1 bandwidth)."""
    args.dataset, args.nb, args.nq, args.bits = "bigann10k", 2000, 50, "4"
    args.variants = "mse,prod,mse_c,mse_cfs"
    args.budget_s, args.pq_train_n, args.no_calibrated = 0.05, 2000, True
    args.skip = args.skip or r"^SQ8|^SQ\d \(1\.15\)|^RaBitQ\d|^RR,SQtq\d|^PQ.*\(1\.7\)"


def build_specs(args, ds, peer_versions):
    d, metric = ds.d, ds.metric
    keys = args.ours.split(",") if args.ours else catalog.our_keys(
            args.bits, args.variants.split(","))
    specs = catalog.ours(keys)
    if args.prescan:
        specs += catalog.ours_prescan(keys, [int(n) for n in args.prescan.split(",")])
    nlist = args.ivf if args.ivf > 0 else ivf_nlist(len(ds.xb)) if args.ivf else 0
    if nlist:
        specs += catalog.ours_ivf(args.bits, nlist)
    # equal size targets: our plain MSE code at each bit width
    targets = {b: catalog.our_code_size(d, f"TQmse{catalog.bits_str(b)}", metric)
               for b in args.bits}
    debian = args.debian if args.debian is not None else not peer_versions.get("faiss")
    if debian:
        specs += catalog.debian_faiss(d, targets, pq_train_n=args.pq_train_n,
                                      pq_nbits=args.pq_nbits)
    if peer_versions.get("faiss"):
        specs += catalog.peers_faiss(d, targets, metric, ivf_nlist=nlist,
                                     pq_train_n=args.pq_train_n)
        specs.append(catalog.flat("peers"))
    else:
        specs.append(catalog.flat("ours"))
    if peer_versions.get("turbovec"):
        specs += catalog.turbovec(args.bits, metric, calibrated=not args.no_calibrated)
    for s in specs:
        s["lib"] = version_label(s["lib"], peer_versions)
    return [s for s in specs if keep(s["key"], args)]


def ivf_nlist(n):
    """FAISS's rule of thumb 4*sqrt(n), with >= 39 training points a list."""
    return max(1, min(int(4 * n ** 0.5), n // 39))


def version_label(lib, peer_versions):
    if lib == "faiss 1.15":
        return f"faiss {peer_versions.get('faiss')}"
    if lib == "turbovec":
        return f"turbovec {peer_versions.get('turbovec')}"
    return lib


def keep(key, args):
    if args.only and not re.search(args.only, key):
        return False
    return not (args.skip and re.search(args.skip, key))


def peers_status(args, log):
    if args.no_peers:
        return {}
    if args.make_venv and not os.access(peers.venv_python(), os.X_OK):
        peers.ensure_venv()
    versions = peers.probe()
    if not versions.get("faiss"):
        log(f"peers: no venv at {peers.venv_dir()} (scripts/make_peers_venv.sh makes it): "
            "running ours against Debian's FAISS 1.7.3 only")
    elif not versions.get("turbovec"):
        log("peers: turbovec is not importable in the venv: skipped")
    return versions


def describe(ds):
    return {"name": ds.name, "nb": len(ds.xb), "nq": len(ds.xq), "d": ds.d,
            "metric": ds.metric, "note": ds.note}


def default_out(name):
    stamp = time.strftime("%Y%m%d-%H%M%S")
    return os.path.join(datasets.CACHE_DIR, "results", f"{name}-{stamp}")


def run(args, log=print):
    ds = datasets.load(args.dataset, nb=args.nb, nq=args.nq, metric=args.metric,
                       query=args.query)
    log(f"data: {ds.name} {len(ds.xb)} x {ds.d} base, {len(ds.xq)} queries, {ds.metric}")
    peer_versions = peers_status(args, log)
    specs = build_specs(args, ds, peer_versions)
    full = args.timings == "full"
    threads = [args.threads, 1] if args.threads > 1 and full else [args.threads]
    nq1_max = 0 if not full else 20 if args.smoke else 200
    r = runner.Runner(ds, k=args.k, threads=threads, budget_s=args.budget_s,
                      nq1_max=nq1_max, log=log,
                      repeat=1 if args.smoke else args.repeat)
    log(f"ground truth: exact faiss.IndexFlat in {r.gt_s:.1f} s; "
        f"{len(specs)} methods, {threads[0]} threads")
    try:
        results = r.run_all(specs)
    finally:
        r.close()
    doc = {"dataset": describe(ds), "env": report.environment(threads, peer_versions),
           "config": dict(vars(args)), "results": results}
    return doc


def main(argv=None):
    args = parse_args(argv)
    doc = run(args)
    out = args.out or default_out(doc["dataset"]["name"])
    paths = report.write(doc, out)
    print()
    print(report.markdown(doc))
    print("wrote", ", ".join([paths["json"], paths["md"]] + paths["png"]))
    if "png_note" in paths:
        print("plots:", paths["png_note"])
    if args.smoke:
        ds = datasets.load(args.dataset, nb=args.nb, nq=args.nq, metric=args.metric)
        checks = harness_checks.check_harness(ds) + harness_checks.check_results(doc)
        bad = [name for name, ok in checks if not ok]
        for name in bad:
            print("FAILED:", name)
        print(f"smoke: {len(checks) - len(bad)} passed, {len(bad)} failed")
        return 1 if bad else 0
    return 0


if __name__ == "__main__":
    sys.exit(main())
