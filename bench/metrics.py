"""Ground truth and recall, tie-aware.

Ground truth comes from an exact faiss.IndexFlat (L2 or IP). Recall checks
the exact distance of each returned id rather than the id itself: Fashion-
MNIST and SIFT hold duplicate vectors, and a method that returns the twin of
the true nearest neighbour has found a nearest neighbour.

  recall@1@k   fraction of queries with a nearest neighbour among the first
               k results (the TurboQuant paper's Figure 5), k = 1..K
  10-recall@10 mean fraction of the 10 true neighbours among the first 10
               results
"""

import numpy as np

# both sides are float64 (exact_scores); the tolerance only absorbs the
# rounding of float32 inputs summed in different orders
REL_TOL = 1e-9


def ground_truth(xb, xq, metric, k):
    """(scores, ids) of the k exact neighbours. FAISS finds them in float32,
    where |q|^2 + |x|^2 - 2<q,x> loses the small distances of large vectors
    (Fashion-MNIST: norms^2 ~ 1e7, a near-duplicate at distance ~1); the
    scores are recomputed in float64 (exact_scores), as those of every
    method's results are, so that both sides of a comparison agree."""
    import faiss

    index = (faiss.IndexFlatL2 if metric == "L2" else faiss.IndexFlatIP)(xb.shape[1])
    index.add(xb)
    _, ids = index.search(xq, k)
    scores = exact_scores(xb, xq, ids, metric)
    order = np.argsort(scores if metric == "L2" else -scores, axis=1, kind="stable")
    return (np.take_along_axis(scores, order, 1), np.take_along_axis(ids, order, 1))


def exact_scores(xb, xq, labels, metric, chunk_bytes=1 << 26):
    """Exact distance (L2, squared) or inner product of every returned id;
    invalid ids (-1) get +inf / -inf."""
    nq, k = labels.shape
    bad = np.inf if metric == "L2" else -np.inf
    out = np.full((nq, k), bad, dtype=np.float64)
    step = max(1, chunk_bytes // max(1, k * xb.shape[1] * 8))
    for i in range(0, nq, step):
        lab = labels[i:i + step]
        ok = (lab >= 0) & (lab < len(xb))
        vec = xb[np.where(ok, lab, 0)].astype(np.float64)  # (c, k, d)
        q = xq[i:i + step, None, :].astype(np.float64)
        s = ((vec - q) ** 2).sum(-1) if metric == "L2" else (vec * q).sum(-1)
        out[i:i + step] = np.where(ok, s, bad)
    return out


def as_good(scores, ref, metric):
    """scores at least as good as ref (broadcast), within REL_TOL."""
    tol = REL_TOL * np.abs(ref) + 1e-6
    return scores <= ref + tol if metric == "L2" else scores >= ref - tol


def recall_1_at_k(scores, gt_d, metric):
    """Array r with r[k-1] = recall@1@k, for k = 1..scores.shape[1]."""
    hit = as_good(scores, gt_d[:, :1], metric)
    first = np.where(hit.any(1), hit.argmax(1), scores.shape[1])
    kmax = scores.shape[1]
    return np.array([(first < k).mean() for k in range(1, kmax + 1)])


def recall_n_at_n(scores, gt_d, metric, n=10):
    """n-recall@n: results in the first n as good as the n-th true one."""
    if scores.shape[1] < n or gt_d.shape[1] < n:
        raise ValueError(f"{n}-recall@{n} needs {n} results and {n} true neighbours")
    hit = as_good(scores[:, :n], gt_d[:, n - 1:n], metric)
    return float(np.minimum(hit.sum(1), n).mean() / n)


def recalls(xb, xq, labels, gt_d, metric):
    scores = exact_scores(xb, xq, labels, metric)
    r1 = recall_1_at_k(scores, gt_d, metric)
    return {"recall_1_at_k": [round(float(v), 5) for v in r1],
            "R@1": float(r1[0]),
            "R@1@10": float(r1[min(9, len(r1) - 1)]),
            "10-R@10": recall_n_at_n(scores, gt_d, metric)}
