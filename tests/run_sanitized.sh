#!/bin/bash
# Builds the C++ tests with AddressSanitizer, LeakSanitizer and
# UndefinedBehaviorSanitizer (gcc, in their own build folder: no Python,
# no GPU) and runs them. Out-of-bounds accesses, use after free, leaks
# (the out-of-memory paths of test_alloc_failures included) and undefined
# behaviour in our code end the test that meets them. FAISS's static
# library is not instrumented: its own accesses go unchecked.
#
#   tests/run_sanitized.sh [build_dir]      (default: build-sanitize)
#
# Exit: 0 clean, 1 a failure (the test's output names it), 77 skipped (no
# compiler that builds and runs a sanitized program here: no libasan, or
# a kernel where ASan or LSan cannot run).
set -euo pipefail

REPO=$(cd "$(dirname "$0")/.." && pwd)
BUILD=${1:-$REPO/build-sanitize}
JOBS=${JOBS:-2}
SAN="-fsanitize=address,undefined -fno-sanitize-recover=undefined"

probe=$(mktemp -d)
trap 'rm -rf "$probe"' EXIT
printf '%s\n' '#include <vector>' \
  'int main() { std::vector<int> v(3); return v[1]; }' >"$probe/t.cpp"
if ! { c++ $SAN "$probe/t.cpp" -o "$probe/t" && "$probe/t"; } \
  >"$probe/log" 2>&1; then
  cat "$probe/log"
  echo "sanitize: SKIPPED: a sanitized program does not build or run here"
  exit 77
fi

echo "sanitize: building in $BUILD"
mkdir -p "$BUILD"
# -g1: line tables for the reports, at a fraction of -g's compile time
cmake -S "$REPO" -B "$BUILD" -DCMAKE_BUILD_TYPE=None \
  -DCMAKE_CXX_FLAGS="-O2 -g1 -fno-omit-frame-pointer $SAN" \
  -DCMAKE_EXE_LINKER_FLAGS="$SAN" -DCMAKE_SHARED_LINKER_FLAGS="$SAN" \
  -DFAISS_TURBO_ENABLE_PYTHON=OFF -DFAISS_TURBO_ENABLE_GPU=OFF \
  -DFAISS_TURBO_SANITIZED_BUILD=ON >"$BUILD/configure.log" 2>&1 ||
  { cat "$BUILD/configure.log"; exit 1; }
cmake --build "$BUILD" -j "$JOBS"

export ASAN_OPTIONS=${ASAN_OPTIONS:-detect_leaks=1}
export UBSAN_OPTIONS=${UBSAN_OPTIONS:-print_stacktrace=1}
export OMP_NUM_THREADS=2 OMP_WAIT_POLICY=PASSIVE
# the fuzzer has its own sanitized build (fuzz/run_fuzz.sh)
cd "$BUILD" && ctest --output-on-failure -j "$JOBS" -LE fuzz
