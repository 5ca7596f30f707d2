#!/bin/bash
# The measurements of bench/README.md: every data set at 2 and 4 bits, all
# methods, IVF peers included. Results go to OUT (default
# ~/.cache/faiss_turbo_bench/results/all-<date>/<dataset>/).
#
#   bench/run_all.sh [BUILD_DIR]      (default: build; ~30 min on 2 cores)
set -euo pipefail
cd "$(dirname "$0")/.."
BUILD="${1:-build}"
OUT="${OUT:-$HOME/.cache/faiss_turbo_bench/results/all-$(date +%Y%m%d-%H%M)}"
PY=/usr/bin/python3
export PYTHONPATH="$BUILD/python${PYTHONPATH:+:$PYTHONPATH}"

bash scripts/make_peers_venv.sh
VENV_PY="${FAISS_TURBO_PEERS_VENV:-$HOME/.cache/faiss_turbo_bench/venv}/bin/python"
if [ ! -e /usr/share/wordnet/data.noun ]; then  # the text of wordnet-wl
  DEBIAN_FRONTEND=noninteractive apt-get install -y -qq wordnet-base >/dev/null || true
fi
if [ -x "$VENV_PY" ]; then
  "$VENV_PY" bench/embed_text.py --model wl --nb 100000 --nq 1000 || true
fi

run() {
  local name="$1"; shift
  $PY bench/bench_turboquant.py --bits 2,4 --out "$OUT/$name" "$@" \
    2>&1 | tee "$OUT/$name.log" || echo "run_all: $name failed"
}
mkdir -p "$OUT"
run bigann10k --dataset bigann10k --nq 1000 --ivf
run wordnet-wl --dataset wordnet-wl --nq 1000 --ivf 256
# 384-d text: made once (45 min, see bench/README.md), run when cached
if [ -e "$HOME/.cache/faiss_turbo_bench/data/wordnet-e5-100000-1000.npz" ]; then
  run wordnet-e5 --dataset wordnet-e5 --nq 1000 --ivf 256
fi
# no IVF here: k-means of ~1000 lists over 60k x 784 takes minutes on 2 cores
run fashion-mnist --dataset fashion-mnist --nq 300
run bigann10k-cos --dataset bigann10k --nq 1000 --metric cos --ivf
echo "results in $OUT"
