"""Recall on real data: the 10k SIFT descriptors of ../shared/data (or
$FAISS_TURBO_DATA), the first 200 as queries, exact ground truth."""

import numpy as np
import pytest

import faiss_turbo as ft
from tq_util import load_bigann10k, recall_at

NQ, K = 200, 10


@pytest.fixture(scope="module")
def sift():
    x = load_bigann10k()
    xq, xb = x[:NQ], x[NQ:]
    # exact L2 in integers: SIFT values are small integers, so no rounding
    xqi, xbi = xq.astype(np.int64), xb.astype(np.int64)
    dist = ((xqi ** 2).sum(1)[:, None] + (xbi ** 2).sum(1)[None, :]
            - 2 * xqi @ xbi.T)
    gt = np.argsort(dist, axis=1, kind="stable")[:, :K]
    return xb, xq, gt


@pytest.mark.parametrize("desc, min_recall", [
    ("TQmse4c", 0.905),
    ("TQmse2c", 0.735),
])
def test_recall_10_at_10(sift, desc, min_recall):
    xb, xq, gt = sift
    index = ft.index_factory(xb.shape[1], desc)
    index.train(xb)
    index.add(xb)
    _, I = index.search(xq, K)
    r = recall_at(I, gt, K)
    print("%s 10-recall@10 = %.4f" % (desc, r))
    assert r >= min_recall, "%s: 10-recall@10 = %.4f < %.3f" % (
        desc, r, min_recall)
