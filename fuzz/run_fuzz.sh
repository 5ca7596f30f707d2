#!/bin/bash
# Builds the libFuzzer target of faiss_turbo's readers with clang (in its
# own build folder, not the main build) and runs it from a seed corpus of
# valid files (generated + tests/golden).
#
#   fuzz/run_fuzz.sh [build_dir] [seconds] [runs]
#
# Default: build-fuzz, 60 s, a random seed (exploration: run it long when
# the readers change). With runs, the run is reproducible: seed 1 and that
# many inputs (seconds is then only a cap), so that CI on any machine tries
# the same inputs and a red result is a real finding, not chance.
#
# Exit: 0 no finding, 1 a crash / sanitizer report / leak / timeout (the
# input is saved as <build_dir>/crash-* ; replay with
# <build_dir>/fuzz_read_index <file>), 77 skipped (no clang or no libFuzzer
# runtime: apt-get install clang libclang-rt-14-dev).
set -euo pipefail

REPO=$(cd "$(dirname "$0")/.." && pwd)
BUILD=${1:-$REPO/build-fuzz}
SECS=${2:-60}
RUNS=${3:-}
CXX_CLANG=${FUZZ_CXX:-clang++}
JOBS=${JOBS:-2}

skip() {
  echo "fuzz: SKIPPED: $*"
  exit 77
}

command -v "$CXX_CLANG" >/dev/null 2>&1 ||
  skip "$CXX_CLANG not found (apt-get install clang libclang-rt-14-dev)"
probe=$(mktemp -d)
trap 'rm -rf "$probe"' EXIT
printf '%s\n' 'extern "C" int LLVMFuzzerTestOneInput(const unsigned char*,' \
  'unsigned long) { return 0; }' >"$probe/t.cpp"
"$CXX_CLANG" -fsanitize=fuzzer,address "$probe/t.cpp" -o "$probe/t" \
  >/dev/null 2>&1 ||
  skip "$CXX_CLANG cannot link -fsanitize=fuzzer (libclang-rt-14-dev missing?)"

echo "fuzz: building in $BUILD"
mkdir -p "$BUILD"
cmake -S "$REPO/fuzz" -B "$BUILD" -DCMAKE_CXX_COMPILER="$CXX_CLANG" \
  -DCMAKE_BUILD_TYPE=RelWithDebInfo >"$BUILD/configure.log" 2>&1 ||
  { cat "$BUILD/configure.log"; exit 1; }
cmake --build "$BUILD" -j "$JOBS" --target fuzz_read_index

export OMP_NUM_THREADS=1
# leaks of FAISS's readers on error paths are known (index_read.cpp says
# so) and not ours to fix; everything else ASan finds is fatal
export ASAN_OPTIONS=${ASAN_OPTIONS:-detect_leaks=0}
CORPUS="$BUILD/corpus"
SEEDS="$BUILD/seeds"
mkdir -p "$CORPUS" "$SEEDS"
FTQ_FUZZ_WRITE_SEEDS="$SEEDS" "$BUILD/fuzz_read_index"
for f in "$REPO"/tests/golden/*.ftq; do
  [ -e "$f" ] && tail -c +5 "$f" >"$SEEDS/golden_$(basename "$f")"
done
# inputs that once found a bug (already in the fuzzer's format)
cp "$REPO"/fuzz/regressions/* "$SEEDS/" 2>/dev/null || true

if [ -n "$RUNS" ]; then
  # a corpus left by an earlier run would change which inputs are tried
  rm -rf "$CORPUS" && mkdir -p "$CORPUS"
  MODE=(-seed=1 -runs="$RUNS")
  echo "fuzz: running $RUNS inputs, seed 1, at most ${SECS}s"
else
  MODE=()
  echo "fuzz: running ${SECS}s (corpus $CORPUS, seeds $SEEDS)"
fi
set +e
"$BUILD/fuzz_read_index" "$CORPUS" "$SEEDS" "${MODE[@]}" \
  -max_total_time="$SECS" -rss_limit_mb=2048 -malloc_limit_mb=2048 \
  -timeout=10 -max_len=65536 -print_final_stats=1 \
  -artifact_prefix="$BUILD/" >"$BUILD/last_run.log" 2>&1
status=$?
set -e
grep -E "^(#[0-9]+ +(INITED|DONE)|stat::|==[0-9]+==|SUMMARY|artifact)" \
  "$BUILD/last_run.log" || true
if [ "$status" -ne 0 ]; then
  echo "fuzz: FAILED (exit $status), full log: $BUILD/last_run.log"
  exit 1
fi
echo "fuzz: OK, no crash (${RUNS:-${SECS}s})"
