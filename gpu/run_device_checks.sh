#!/bin/bash
# Device checks, run on the GPU machine from the repository root with the
# build staged by gpu/make_devbuild.sh carried in .devbuild/:
#   1. the GPU tests (bit-exact codes, search equal to the CPU, large k,
#      out-of-memory, errors), then the FAISS resources adapter's tests
#   2. the GPU benchmark (encode, scan bandwidth, recall, fp16 brute force,
#      then IVF1024 over 1M of the vectors) at 5M x 128, then 1M x 1536
#      without IVF (its host-side k-means and assignment would take the
#      step's time)
#   3. a short compute-sanitizer memcheck of a few tests, if time allows
#   4. an Nsight Compute profile of the 4-bit scan kernel, if ncu is there
# Everything goes to stdout; the caller tees it to $OUT/log.
set -u
DEV=$(cd "${DEVBUILD:-.devbuild}" && pwd) || exit 1
T_TESTS=${T_TESTS:-185}
T_ADAPTER=${T_ADAPTER:-15}
T_BENCH=${T_BENCH:-120}
T_BENCH_1536=${T_BENCH_1536:-60}
T_SANITIZE=${T_SANITIZE:-35}
T_NCU=${T_NCU:-30}

echo "== machine"
nvidia-smi --query-gpu=name,memory.total,driver_version,clocks.sm,clocks.mem \
  --format=csv 2>&1 | head -3
nproc
# the carried runtimes first (libgfortran finds libquadmath only through
# the search path: RUNPATH $ORIGIN covers the bundle's own dependencies)
export LD_LIBRARY_PATH="$DEV${LD_LIBRARY_PATH:+:$LD_LIBRARY_PATH}"
# cuBLAS 13: the toolkit's, else the Python wheels' (CUDA 13 wheels keep
# their libraries in nvidia/cu13/lib, older ones in nvidia/cublas/lib)
wheel_dirs=$(python3 -c 'import nvidia, os
for p in nvidia.__path__:
    print(os.path.join(p, "cu13", "lib")); print(os.path.join(p, "cublas", "lib"))' \
  2>/dev/null)
for dir in /usr/local/cuda/lib64 /usr/local/cuda/lib $wheel_dirs; do
  if [ -e "$dir/libcublas.so.13" ]; then
    export LD_LIBRARY_PATH="$dir:$LD_LIBRARY_PATH"
    break
  fi
done
echo "LD_LIBRARY_PATH=$LD_LIBRARY_PATH"
if ldd "$DEV/test_gpu_turboquant" | grep -q "not found"; then
  echo "missing libraries:"
  ldd "$DEV/test_gpu_turboquant" | grep "not found"
  # last resort, bounded: the usual roots, /proc and /sys pruned
  for lib in libcudart.so.13 libcublas.so.13 libcublasLt.so.13; do
    p=$(timeout 10 find /usr /opt /lib /lib64 /root /home \
      \( -path /proc -o -path /sys \) -prune -o -name "$lib" -print \
      2>/dev/null | head -1)
    [ -n "$p" ] && export LD_LIBRARY_PATH="$(dirname "$p"):$LD_LIBRARY_PATH"
  done
  ldd "$DEV/test_gpu_turboquant" | grep -E "not found|cuda|cublas"
fi
if ldd "$DEV/test_gpu_turboquant" 2>&1 | grep -q "version .* not found"; then
  echo "the machine's C++ runtime is older: using the carried one"
  export LD_LIBRARY_PATH="$DEV/fallback:$LD_LIBRARY_PATH"
fi
export OMP_NUM_THREADS=$(nproc)

echo
echo "== tests"
start=$(date +%s)
timeout -k 10 "$T_TESTS" "$DEV/test_gpu_turboquant" --gtest_color=no
echo "tests exit code $? after $(( $(date +%s) - start )) s"
timeout -k 5 "$T_ADAPTER" "$DEV/test_faiss_gpu_resources" --gtest_color=no
echo "FAISS resources adapter tests exit code $?"

echo
echo "== benchmark"
start=$(date +%s)
timeout -k 10 "$T_BENCH" "$DEV/bench_gpu_turboquant"
echo "benchmark exit code $? after $(( $(date +%s) - start )) s"

# d = 1536 (776-byte codes), where the exact rescoring dominated the search
if [ "$T_BENCH_1536" -gt 0 ]; then
  echo
  echo "== benchmark, 1M x 1536"
  start=$(date +%s)
  timeout -k 10 "$T_BENCH_1536" "$DEV/bench_gpu_turboquant" --nb 1000000 --d 1536 \
    --nq-recall 256 --ivf-nb 0
  echo "benchmark exit code $? after $(( $(date +%s) - start )) s"
fi

if command -v compute-sanitizer >/dev/null && [ "$T_SANITIZE" -gt 0 ]; then
  echo
  echo "== compute-sanitizer memcheck (a few tests)"
  timeout -k 10 "$T_SANITIZE" compute-sanitizer --tool memcheck --error-exitcode 3 \
    "$DEV/test_gpu_turboquant" --gtest_color=no \
    --gtest_filter='*FewerVectorsThanK*:*RemoveIds*:*ReconstructEquals*:*LargeK*' \
    2>&1 | tail -25
  echo "memcheck exit code ${PIPESTATUS[0]}"
fi

if command -v ncu >/dev/null && [ "$T_NCU" -gt 0 ]; then
  echo
  # launch 97 of the 4-bit pass: the benchmark's "scan kernels alone" at 64
  # queries (60 launches in its search rows, then 8 per batch size)
  echo "== ncu: the 4-bit tensor-core pass alone, 64 queries, 5M codes"
  # --kill yes: the report comes when the application ends, so it ends
  # after the profiled launch (the rest of the benchmark would outlast the
  # step); clocks left alone (METHOD.md); ncu's own errors kept
  timeout -k 10 "$T_NCU" ncu --kernel-name regex:scan_tc4_kernel \
    --launch-skip 96 --launch-count 1 --kill yes --clock-control none \
    --section SpeedOfLight --section Occupancy \
    --section WarpStateStats --section InstructionStats \
    --section ComputeWorkloadAnalysis "$DEV/bench_gpu_turboquant" \
    --ivf-nb 0 2>&1 |
    grep -E "^==(ERROR|WARNING)==|scan_tc4_kernel<|^ +[A-Z]" |
    grep -vE "^ +(OPT|INF|WRN)" | head -70
  echo "ncu exit code ${PIPESTATUS[0]}"
else
  echo "ncu: not on this machine"
fi
