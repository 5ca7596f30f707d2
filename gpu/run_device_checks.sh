#!/bin/bash
# Device checks, run on the GPU machine from the repository root with the
# build staged by gpu/make_devbuild.sh carried in .devbuild/:
#   1. the GPU tests (bit-exact codes, search equal to the CPU, large k,
#      out-of-memory, errors)
#   2. the GPU benchmark (encode, scan bandwidth, recall, fp16 brute force,
#      then IVF1024 over 1M of the vectors) at 5M x 128, then 1M x 1536
#      without IVF (its host-side k-means and assignment would take the
#      step's time)
#   3. a short compute-sanitizer memcheck of a few tests, if time allows
#   4. an Nsight Compute profile of the 4-bit scan kernel, if ncu is there
# Everything goes to stdout; the caller tees it to $OUT/log.
set -u
DEV=${DEVBUILD:-.devbuild}
T_TESTS=${T_TESTS:-180}
T_BENCH=${T_BENCH:-120}
T_BENCH_1536=${T_BENCH_1536:-75}
T_SANITIZE=${T_SANITIZE:-50}
T_NCU=${T_NCU:-45}

echo "== machine"
nvidia-smi --query-gpu=name,memory.total,driver_version,clocks.sm,clocks.mem \
  --format=csv 2>&1 | head -3
nproc
# cuBLAS 13: the toolkit's, else the Python wheel's
for dir in /usr/local/cuda/lib64 /usr/local/cuda/lib \
    $(python3 -c 'import nvidia.cublas, os; print(os.path.dirname(nvidia.cublas.__file__) + "/lib")' 2>/dev/null); do
  if [ -e "$dir/libcublas.so.13" ]; then
    export LD_LIBRARY_PATH="$dir${LD_LIBRARY_PATH:+:$LD_LIBRARY_PATH}"
    break
  fi
done
echo "LD_LIBRARY_PATH=${LD_LIBRARY_PATH:-}"
if ldd "$DEV/test_gpu_turboquant" | grep -q "not found"; then
  echo "missing libraries:"
  ldd "$DEV/test_gpu_turboquant" | grep "not found"
  # last resort: any libcudart / libcublas on the machine
  for lib in libcudart.so.13 libcublas.so.13 libcublasLt.so.13; do
    p=$(find / -name "$lib" -not -path "*/proc/*" 2>/dev/null | head -1)
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
timeout "$T_TESTS" "$DEV/test_gpu_turboquant" --gtest_color=no
echo "tests exit code $? after $(( $(date +%s) - start )) s"

echo
echo "== benchmark"
start=$(date +%s)
timeout "$T_BENCH" "$DEV/bench_gpu_turboquant"
echo "benchmark exit code $? after $(( $(date +%s) - start )) s"

# d = 1536 (776-byte codes), where the exact rescoring dominated the search
if [ "$T_BENCH_1536" -gt 0 ]; then
  echo
  echo "== benchmark, 1M x 1536"
  start=$(date +%s)
  timeout "$T_BENCH_1536" "$DEV/bench_gpu_turboquant" --nb 1000000 --d 1536 \
    --nq-recall 256 --ivf-nb 0
  echo "benchmark exit code $? after $(( $(date +%s) - start )) s"
fi

if command -v compute-sanitizer >/dev/null && [ "$T_SANITIZE" -gt 0 ]; then
  echo
  echo "== compute-sanitizer memcheck (a few tests)"
  timeout "$T_SANITIZE" compute-sanitizer --tool memcheck --error-exitcode 3 \
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
  timeout "$T_NCU" ncu --kernel-name regex:scan_tc4_kernel --launch-skip 96 \
    --launch-count 1 --section SpeedOfLight --section Occupancy \
    --section WarpStateStats --section InstructionStats \
    --section ComputeWorkloadAnalysis "$DEV/bench_gpu_turboquant" 2>&1 |
    sed -n '/scan_tc4_kernel</,$p' | grep -E "^ +[A-Z]" | grep -vE "^ +(OPT|INF|WRN)" |
    head -60
  echo "ncu exit code ${PIPESTATUS[0]}"
else
  echo "ncu: not on this machine"
fi
