#!/bin/bash
# Compiles (syntax and types, no code, no link) every C++ source of the
# library, tests, benchmarks, fuzzer and GPU host code, and the SWIG
# wrapper of the Python module, against another
# FAISS's headers, to keep faiss_turbo/impl/compat.h honest where only
# Debian's FAISS 1.7.3 is installed. Needs no FAISS library.
#
#   scripts/check_faiss_headers.sh INCLUDE_DIR   # the dir holding faiss/
#
# Headers of Debian's later FAISS packages (trixie: 1.11.0-3, sid:
# 1.13.2-1+b3): scripts/test_against_faiss_deb.sh VERSION fetches, checks
# and unpacks one under /tmp/faiss-deb-VERSION (then builds and tests), e.g.
#   scripts/check_faiss_headers.sh /tmp/faiss-deb-1.11.0-3/usr/include
set -u
INC=${1:?usage: $0 INCLUDE_DIR (holding faiss/Index.h)}
[ -f "$INC/faiss/Index.h" ] || { echo "no faiss/Index.h under $INC"; exit 2; }
cd "$(dirname "$0")/.."
printf '%s: FAISS %s.%s.%s\n' "$INC" $(sed -n \
  's/^#define FAISS_VERSION_\(MAJOR\|MINOR\|PATCH\) \([0-9]*\)/\2/p' \
  "$INC/faiss/Index.h")
LOGS=$(mktemp -d)
check() { # one source; the SIMD files with their instruction sets
  local f=$1 flags=""
  case $f in
    *avx512*) flags="-mavx2 -mfma -mbmi2 -mavx512f -mavx512bw -mavx512vl -mavx512vnni -mavx512vbmi" ;;
    *avx2* | *bmi2*) flags="-mavx2 -mfma -mbmi2" ;;
  esac
  case $f in # the adapter's FAISS-GPU header: the test double
    gpu/FaissGpuResources.cpp | gpu/tests/test_faiss_gpu_resources.cpp)
      flags="$flags -Igpu/tests/faiss_gpu_double" ;;
  esac
  if ! g++ -std=c++17 -fopenmp -fsyntax-only $flags -I"$INC" -I. -Itests \
    -I/usr/local/cuda/include -DFAISS_TURBO_DATA_DIR='""' \
    -DFAISS_TURBO_GOLDEN_DIR='""' "$f" >"$LOGS/$(echo "$f" | tr / _).log" 2>&1
  then
    echo "FAIL $f"
    grep -m 5 "error" "$LOGS/$(echo "$f" | tr / _).log"
    return 1
  fi
}
export -f check
export INC LOGS
ls faiss_turbo/*.cpp faiss_turbo/impl/*.cpp faiss_turbo/impl/simd/*.cpp \
  tests/*.cpp tests/golden/*.cpp bench/*.cpp fuzz/*.cpp gpu/*.cpp \
  gpu/impl/*.cpp gpu/tests/*.cpp gpu/bench/*.cpp 2>/dev/null |
  xargs -P "$(nproc)" -I{} bash -c 'check "$1"' _ {}
rc=$?
# the Python module's wrapper, as SWIG writes it from those headers
PYINC=$(/usr/bin/python3 -c 'import sysconfig; print(sysconfig.get_paths()["include"])')
NPINC=$(/usr/bin/python3 -c 'import numpy; print(numpy.get_include())')
if ! command -v swig >/dev/null; then
  echo "no swig: the Python module's wrapper is not checked"
else
  if ! { swig -python -c++ -DSWIGWORDSIZE64 -I"$INC" -I. -outdir "$LOGS" \
      -o "$LOGS/wrap.cxx" swig/faiss_turbo.i &&
    g++ -std=c++17 -fopenmp -fsyntax-only -I"$INC" -I. -I"$PYINC" \
      -I"$NPINC" "$LOGS/wrap.cxx"; } >"$LOGS/swig.log" 2>&1; then
    echo "FAIL swig/faiss_turbo.i"
    grep -m 5 "rror" "$LOGS/swig.log"
    rc=1
  fi
fi
n=$(ls "$LOGS"/*.log | wc -l)
rm -rf "$LOGS"
[ $rc -eq 0 ] && echo "all $n sources compile" || echo "some of $n sources fail"
exit $rc
