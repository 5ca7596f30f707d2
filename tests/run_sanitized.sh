#!/bin/bash
# Builds the C++ tests with AddressSanitizer, LeakSanitizer and
# UndefinedBehaviorSanitizer (gcc, in their own build folder: no Python,
# no GPU device code) and runs them, then the quicker GPU tests on the
# kernels' CPU emulation where CUDA's toolkit is. Out-of-bounds accesses,
# use after free, leaks (the out-of-memory paths of test_alloc_failures
# included) and undefined behaviour in our code end the test that meets
# them. FAISS's static library is not instrumented: its own accesses go
# unchecked.
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
  -DFAISS_TURBO_GPU_EMULATION=OFF \
  -DFAISS_TURBO_SANITIZED_BUILD=ON >"$BUILD/configure.log" 2>&1 ||
  { cat "$BUILD/configure.log"; exit 1; }
cmake --build "$BUILD" -j "$JOBS"

export ASAN_OPTIONS=${ASAN_OPTIONS:-detect_leaks=1}
export UBSAN_OPTIONS=${UBSAN_OPTIONS:-print_stacktrace=1}
export OMP_NUM_THREADS=2 OMP_WAIT_POLICY=PASSIVE
# the fuzzer has its own sanitized build (fuzz/run_fuzz.sh)
(cd "$BUILD" && ctest --output-on-failure -j "$JOBS" -LE fuzz)

# The GPU kernels on their CPU emulation (gpu/README.md), where the CUDA
# toolkit is: a kernel reading or writing past a device buffer (allocated
# to the byte there) or its shared memory ends the test. The same build
# folder, so the CPU library is not built again; the quicker tests only
# (the whole suite takes about 45 minutes here), which still run every
# kernel: encode (both rotations), the three approximate passes alone
# (their lists against the error bound) and on the sampled path,
# rescoring, both selections, IVF lists, the out-of-memory paths.
GPU_TESTS=(
  'GpuScanPass.*'
  GpuTurboQuant.EncodeBitExactWithDenseProducts
  GpuTurboQuant.SearchHighDimensionLikeCpu
  GpuTurboQuant.SearchFewerVectorsThanK
  GpuTurboQuant.ReconstructEqualsCpu
  GpuTurboQuant.BadInputThrows
  GpuTurboQuant.MemoryAccountingAndReset
  GpuTurboQuant.DevicePointerChecks
  GpuTurboQuant.IVFLargeKClonerAndErrors
  GpuTurboQuant.IVFCopyFromFailureLeavesIndexUnchanged
  GpuTurboQuant.IVFInnerProductOldLayoutRoundTrips
  GpuTurboQuant.IVFFastScanClonesAsRowCodes
  GpuTurboQuant.IVFTrainedOnGpuSideEqualsCpu
  GpuSelectK.BlockPathWithThousandsOfEqualEntries
  GpuSelectK.RefusesKOutOfRange
)
# FAISS_TURBO_ENABLE_GPU back to its default: on where nvcc is found
cmake -S "$REPO" -B "$BUILD" -UFAISS_TURBO_ENABLE_GPU \
  -DFAISS_TURBO_GPU_EMULATION=ON >"$BUILD/configure-gpu.log" 2>&1 ||
  { cat "$BUILD/configure-gpu.log"; exit 1; }
if ! grep -x 'FAISS_TURBO_ENABLE_GPU:BOOL=ON' "$BUILD/CMakeCache.txt" \
  >/dev/null; then
  echo "sanitize: no CUDA toolkit: the emulated GPU kernels are not checked"
  exit 0
fi
cmake --build "$BUILD" -j "$JOBS" --target test_gpu_turboquant_emulated
# the fibers in a new order at each round (`make test-gpu-emulated` runs the
# Python binding tests and the adapter's in the default order)
TQ_EMU_SCHEDULE=shuffle TQ_GPU_TEST_SCALE=4 \
  "$BUILD/gpu/test_gpu_turboquant_emulated" \
  --gtest_filter="$(IFS=:; echo "${GPU_TESTS[*]}")"
# the FAISS-GPU resources adapter (built where FAISS has no GPU module)
if grep -x 'TQ_FAISS_GPU_INCLUDE:PATH=.*-NOTFOUND' "$BUILD/CMakeCache.txt" \
  >/dev/null; then
  cmake --build "$BUILD" -j "$JOBS" --target test_faiss_gpu_resources_emulated
  "$BUILD/gpu/test_faiss_gpu_resources_emulated"
fi
