#!/bin/bash
# CI smoke test of the benchmark harness: a tiny run (2000 SIFT vectors, 50
# queries, 4 bits, one method of each kind) with checks that hold in any
# correct run; prints "smoke: N passed, N failed" and fails on a failure.
#
#   bench/smoke.sh [BUILD_DIR]        (default: build)
#
# The PyPI peers run only if their venv exists (scripts/make_peers_venv.sh);
# CI need not make it.
set -euo pipefail
cd "$(dirname "$0")/.."
BUILD="${1:-build}"
OUT="$(mktemp -d)"
trap 'rm -rf "$OUT"' EXIT
PYTHONPATH="$BUILD/python${PYTHONPATH:+:$PYTHONPATH}" \
  /usr/bin/python3 bench/bench_turboquant.py --smoke --out "$OUT"
# the encode comparison (FAISS's side only when the peers' venv exists)
PYTHONPATH="$BUILD/python${PYTHONPATH:+:$PYTHONPATH}" \
  /usr/bin/python3 bench/bench_encode.py --smoke
# IVF by inner product (random vectors: that it runs, not what it gains)
PYTHONPATH="$BUILD/python${PYTHONPATH:+:$PYTHONPATH}" \
  /usr/bin/python3 bench/bench_ivf_ip.py --smoke
# dense vs Hadamard rotation (random vectors: that it runs)
PYTHONPATH="$BUILD/python${PYTHONPATH:+:$PYTHONPATH}" \
  /usr/bin/python3 bench/bench_rotation.py --smoke
# one query at a time (random vectors: that it runs)
PYTHONPATH="$BUILD/python${PYTHONPATH:+:$PYTHONPATH}" \
  /usr/bin/python3 bench/bench_nq1.py --smoke
# IVF lists in blocks on far-off data (asserts recall against exact)
PYTHONPATH="$BUILD/python${PYTHONPATH:+:$PYTHONPATH}" \
  /usr/bin/python3 bench/bench_ivf_offset.py --smoke
