#!/bin/bash
# Builds the C++ library and tests against a later FAISS from Debian's
# archive (its libfaiss-dev: headers and static libfaiss.a, unpacked under
# /tmp, not installed) and runs the C++ tests, but for the two that make
# their own build with the installed FAISS (sanitize, fuzz_io). No Python:
# Debian's python3-faiss of those releases is for a later Python. Downloads one package from deb.debian.org (https), checked
# against the SHA256 that trixie's or sid's package index gives for it.
#
#   scripts/test_against_faiss_deb.sh 1.11.0-3        # trixie
#   scripts/test_against_faiss_deb.sh 1.13.2-1+b3     # sid (as of 2026-11)
set -euo pipefail
V=${1:?usage: $0 DEBIAN_VERSION (e.g. 1.11.0-3)}
ROOT=$(cd "$(dirname "$0")/.." && pwd)
WORK=/tmp/faiss-deb-$V
DEB=libfaiss-dev_${V}_amd64.deb
mkdir -p "$WORK"
MIRROR=https://deb.debian.org/debian
if [ ! -f "$WORK/unpacked" ]; then
  want=""
  for suite in trixie sid; do
    want=$(curl -fsS "$MIRROR/dists/$suite/main/binary-amd64/Packages.xz" |
      xz -dc | awk -v v="$V" '
        /^Package: /{p = ($2 == "libfaiss-dev")} p && /^Version: /{ok = ($2 == v)}
        p && ok && /^SHA256: / && !found {print $2; found = 1}')
    [ -n "$want" ] && break
  done
  [ -n "$want" ] || { echo "libfaiss-dev $V is in neither trixie nor sid"; exit 2; }
  curl -fsS -o "$WORK/$DEB" "$MIRROR/pool/main/f/faiss/${DEB//+/%2B}"
  echo "$want  $WORK/$DEB" | sha256sum -c --quiet
  rm -rf "$WORK/usr"
  dpkg-deb -x "$WORK/$DEB" "$WORK"
  touch "$WORK/unpacked"
fi
# symbols of newer C and C++ runtimes that those builds use
g++ -O2 -fPIC -c "$ROOT/scripts/faiss_runtime_standins.cpp" \
  -o "$WORK/standins.o"
cmake -S "$ROOT" -B "$WORK/build" -DCMAKE_BUILD_TYPE=Release \
  -Dfaiss_DIR="$WORK/usr/lib/x86_64-linux-gnu/cmake/faiss" \
  -DFAISS_TURBO_ENABLE_PYTHON=OFF -DFAISS_TURBO_ENABLE_GPU=OFF \
  -DCMAKE_EXE_LINKER_FLAGS="$WORK/standins.o" >/dev/null
cmake --build "$WORK/build" -j "$(nproc)"
cd "$WORK/build"
OMP_NUM_THREADS=2 ctest -j "$(nproc)" -LE "sanitize|fuzz" --output-on-failure
