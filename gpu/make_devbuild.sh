#!/bin/bash
# Builds the GPU tests and benchmark against one self-contained shared
# library (FAISS_TURBO_GPU_DEVBUILD) and stages them in .devbuild/ at the
# repository root, stripped, with the Fortran/OpenMP runtimes they need, for
# a machine that has CUDA but no FAISS or OpenBLAS (run_device_checks.sh).
# Usage: gpu/make_devbuild.sh [build-dir]   (default /tmp/build-gpu)
set -euo pipefail
ROOT=$(cd "$(dirname "$0")/.." && pwd)
BUILD=${1:-/tmp/build-gpu}
DEST=$ROOT/.devbuild
cmake -S "$ROOT" -B "$BUILD" -DCMAKE_BUILD_TYPE=Release \
  -DFAISS_TURBO_ENABLE_PYTHON=OFF -DFAISS_TURBO_GPU_DEVBUILD=ON >/dev/null
cmake --build "$BUILD" -j2 --target test_gpu_turboquant \
  test_faiss_gpu_resources bench_gpu_turboquant
rm -rf "$DEST"
mkdir -p "$DEST"
for f in libfaiss_turbo_gpu_bundle.so test_gpu_turboquant \
  test_faiss_gpu_resources bench_gpu_turboquant; do
  cp "$BUILD/gpu/$f" "$DEST/"
  strip --strip-unneeded "$DEST/$f"
done
# runtimes of the static OpenBLAS (gfortran, quadmath) and of OpenMP
for lib in libgfortran.so.5 libquadmath.so.0 libgomp.so.1; do
  cp -L "/usr/lib/x86_64-linux-gnu/$lib" "$DEST/"
done
# the C++ runtime we built with, used there only if the machine's is older
mkdir -p "$DEST/fallback"
for lib in libstdc++.so.6 libgcc_s.so.1; do
  cp -L "/usr/lib/x86_64-linux-gnu/$lib" "$DEST/fallback/"
done
grep -qxF '/.devbuild/' "$ROOT/.git/info/exclude" 2>/dev/null ||
  echo '/.devbuild/' >> "$ROOT/.git/info/exclude"
du -sh "$DEST"
ls -la "$DEST"
