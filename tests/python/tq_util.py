"""Helpers shared by the Python tests: data, brute force, recall."""

import os

import numpy as np
import pytest

REPO = os.path.dirname(os.path.dirname(os.path.dirname(
    os.path.abspath(__file__))))


def gaussian(n, d, seed):
    return np.random.RandomState(seed).randn(n, d).astype(np.float32)


def clustered(n, d, seed, nclusters=20):
    """Gaussian clusters: a nearest-neighbor structure worth searching"""
    rs = np.random.RandomState(seed)
    centers = rs.randn(nclusters, d) * 2
    x = centers[rs.randint(nclusters, size=n)] + rs.randn(n, d)
    return x.astype(np.float32)


def brute_force(xb, xq, k, l2=True):
    """exact k-NN in float64: (distances or inner products, labels)"""
    xb = xb.astype(np.float64)
    xq = xq.astype(np.float64)
    ip = xq @ xb.T
    if l2:
        s = (xq ** 2).sum(1)[:, None] + (xb ** 2).sum(1)[None, :] - 2 * ip
        order = np.argsort(s, axis=1, kind="stable")[:, :k]
    else:
        s = ip
        order = np.argsort(-s, axis=1, kind="stable")[:, :k]
    return np.take_along_axis(s, order, axis=1), order


def recall_at(I, gt, k):
    """k-recall@k: |I[:, :k] & gt[:, :k]| / k averaged over queries"""
    hits = sum(len(np.intersect1d(I[i, :k], gt[i, :k])) for i in range(len(I)))
    return hits / (k * len(I))


def data_dir():
    env = os.environ.get("FAISS_TURBO_DATA")
    return env if env else os.path.join(REPO, "..", "shared", "data")


def load_bigann10k():
    """the 10k real SIFT descriptors as float32, or skip the test"""
    fn = os.path.join(data_dir(), "bigann10k", "bigann10k_base.u8bin")
    if not os.path.exists(fn):
        pytest.skip("real data missing: %s (set FAISS_TURBO_DATA to the "
                    "folder holding bigann10k/)" % fn)
    raw = np.fromfile(fn, dtype=np.uint8)
    n, d = raw[:8].view(np.int32)
    assert raw.size == 8 + n * d, "truncated file %s" % fn
    return raw[8:].reshape(n, d).astype(np.float32)


def assert_exact_scores(D, I, Dall, Iall):
    """D, I: results whose scores must be those of the exact scan Dall, Iall
    (all codes, so every label of I is there)"""
    for q in range(len(I)):
        exact = dict(zip(Iall[q], Dall[q]))
        np.testing.assert_array_equal(D[q], [exact[i] for i in I[q]])
