#!/bin/bash
# Installs what the build, the tests and the demo need, from Debian's
# packages. Idempotent: does nothing when everything is present.
set -euo pipefail

PKGS=(
  cmake g++ make pkg-config
  libfaiss-dev python3-faiss libopenblas-dev
  swig python3-dev python3-numpy python3-pytest
  libgtest-dev
  dataset-fashion-mnist
  clang libclang-rt-14-dev  # fuzz/run_fuzz.sh (libFuzzer)
)

missing=()
for p in "${PKGS[@]}"; do
  if ! dpkg-query -W -f='${Status}' "$p" 2>/dev/null | grep -q "ok installed"; then
    missing+=("$p")
  fi
done

if [ ${#missing[@]} -eq 0 ]; then
  exit 0
fi

echo "setup: installing ${missing[*]}"
SUDO=""
if [ "$(id -u)" != 0 ]; then SUDO=sudo; fi
export DEBIAN_FRONTEND=noninteractive
$SUDO apt-get update -qq
$SUDO apt-get install -y -qq --no-install-recommends "${missing[@]}" >/dev/null
