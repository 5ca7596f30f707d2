"""`make demo`: TurboQuant against FAISS on Fashion-MNIST, in about 2 minutes.

    PYTHONPATH=build/python /usr/bin/python3 bench/demo.py [--nq N] [--no-peers]

60k Fashion-MNIST training images (784-d) are the base, a seeded 100 of the
test images the queries (--nq: our search is still an exact, non-SIMD
scan, and FAISS 1.7.3's SQ scan on Debian's SSE2 build is slower still);
ground truth by exact faiss.IndexFlatL2. Rows:
our TurboQuant indexes (MSE at 2/3/4 bits, centered, 2.5 bits, PROD at
3/4 bits), Debian's FAISS 1.7.3 IndexScalarQuantizer (SQ4, SQ8) and IndexPQ
at the code size of our 2- and 4-bit MSE indexes (4-bit sub-codes: at 8
bits, 1.7.3 takes minutes to encode 60k x 784 on 2 cores; the harness
uses 8), and, when the peers venv is there
(made here by scripts/make_peers_venv.sh unless FAISS_TURBO_NO_PEERS=1),
FAISS 1.15's PQ fast-scan, RaBitQ and SQtqmse and turbovec at 2 and 4 bits.
The full harness is bench/bench_turboquant.py.
"""

import os
import sys

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
import bench_turboquant  # noqa: E402
import peers  # noqa: E402
import report  # noqa: E402
import runner  # noqa: E402

OURS = "TQmse2,TQmse3,TQmse4,TQmse2c,TQmse4c,TQmse4cfs,TQ2.5,TQprod3,TQprod4"
# the demo keeps one peer of each kind at 2 and 4 bits; the harness has all
PEERS_SKIP = r"^RaBitQ\d|^RR,SQtq\d|^SQ\d \(1\.15\)|turbovec\d\+cal|^PQ\d+x\d+$"


def argv_for(extra):
    want_peers = "--no-peers" not in extra and not os.environ.get("FAISS_TURBO_NO_PEERS")
    if want_peers and not os.access(peers.venv_python(), os.X_OK):
        print("demo: the peers venv is missing; making it (scripts/make_peers_venv.sh)")
        peers.ensure_venv()
    argv = ["--dataset", "fashion-mnist", "--nq", "100", "--bits", "2,4",
            "--ours", OURS, "--k", "64", "--timings", "batched", "--pq-nbits", "4", "--debian",
            "--no-calibrated", "--skip", PEERS_SKIP]
    if not want_peers:
        argv.append("--no-peers")
    return argv + extra


def short_table(doc):
    nt = doc["env"]["threads"][0]
    lines = [f"{'key':<20} {'library':<15} {'B/vec':>7} {'1-R@1':>6} {'10-R@10':>7} "
             f"{'ms/query':>9} {'add s':>7}",
             f"{'':<20} {'':<15} {'':>7} {'':>6} {'':>7} {'(' + str(nt) + ' thr)':>9}"]
    for res in sorted(doc["results"], key=lambda r: (r["spec"]["bits"], r["spec"]["side"])):
        s = res["spec"]
        if "error" in res:
            lines.append(f"{s['key']:<20} {s['lib']:<15} FAILED: {res['error'][:60]}")
            continue
        lines.append(f"{s['key']:<20} {s['lib']:<15} {res['bytes_per_vec']:7.1f} "
                     f"{res['R@1']:6.3f} {res['10-R@10']:7.3f} "
                     f"{runner.batched_ms(res, nt):9.3f} {res['add_s']:7.2f}")
    return "\n".join(lines)


def main():
    args = bench_turboquant.parse_args(argv_for(sys.argv[1:]))
    doc = bench_turboquant.run(args)
    paths = report.write(doc, args.out or bench_turboquant.default_out("demo-fashion-mnist"))
    ds = doc["dataset"]
    print(f"\nFashion-MNIST: {ds['nb']} x {ds['d']} base, {ds['nq']} queries, exact "
          f"ground truth; ms/query is a batched search of all queries\n")
    print(short_table(doc))
    print(f"\nfull table, JSON and plots: {os.path.dirname(paths['json'])}")
    failed = [r["spec"]["key"] for r in doc["results"] if "error" in r]
    return 1 if any(k.startswith("TQ") for k in failed) else 0


if __name__ == "__main__":
    sys.exit(main())
