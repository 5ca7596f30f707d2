"""Our indexes inside faiss's wrappers: they go into faiss's C++ code as
faiss::Index*, and the wrappers keep them alive."""

import gc

import faiss
import numpy as np
import pytest

import faiss_turbo as ft
from tq_util import brute_force, clustered, gaussian, recall_at


def test_index_idmap():
    d, nb, nq, k = 32, 1500, 30, 8
    xb, xq = gaussian(nb, d, 20), gaussian(nq, d, 21)
    ids = np.arange(nb, dtype=np.int64) * 7 + 3

    bare = ft.IndexTurboQuant(d, 4)
    bare.add(xb)
    D0, I0 = bare.search(xq, k)

    idmap = faiss.IndexIDMap(ft.IndexTurboQuant(d, 4))
    gc.collect()  # the wrapper holds the only reference to our index
    idmap.add_with_ids(xb, ids)
    assert idmap.ntotal == nb
    D, I = idmap.search(xq, k)
    np.testing.assert_array_equal(D, D0)
    np.testing.assert_array_equal(I, ids[I0])

    # removing through the map removes from our index
    assert idmap.remove_ids(ids[:100]) == 100
    assert ft.downcast_index(idmap.index).ntotal == nb - 100


def test_index_shards_equal_one_index():
    d, nb, nq, k = 32, 2000, 40, 10
    xb, xq = gaussian(nb, d, 22), gaussian(nq, d, 23)
    one = ft.IndexTurboQuant(d, 3)
    one.add(xb)
    D0, I0 = one.search(xq, k)
    for threaded in [False, True]:
        shards = faiss.IndexShards(d, threaded, True)  # successive ids
        for _ in range(2):
            shards.add_shard(ft.IndexTurboQuant(d, 3))
        gc.collect()
        shards.add(xb)
        assert shards.ntotal == nb
        D, I = shards.search(xq, k)
        np.testing.assert_array_equal(D, D0)
        np.testing.assert_array_equal(I, I0)


def test_index_refine_flat_improves_recall():
    d, nb, nq, k = 32, 5000, 100, 10
    xb, xq = clustered(nb, d, 24), clustered(nq, d, 25)
    _, gt = brute_force(xb, xq, k)

    base = ft.IndexTurboQuant(d, 2)
    base.add(xb)
    _, Ib = base.search(xq, k)

    refine = faiss.IndexRefineFlat(ft.IndexTurboQuant(d, 2))
    gc.collect()
    refine.k_factor = 4
    refine.add(xb)
    _, Ir = refine.search(xq, k)

    rb, rr = recall_at(Ib, gt, k), recall_at(Ir, gt, k)
    assert rr > rb, (rb, rr)
    # re-ranking 40 candidates exactly finds what those candidates hold
    assert rr >= recall_at(base.search(xq, 4 * k)[1], gt, k) - 1e-9


def test_parameter_space():
    ps = faiss.ParameterSpace()
    index = ft.IndexTurboQuant(16, 4)
    ps.set_index_parameter(index, "verbose", 1)
    assert index.verbose

    # through faiss's wrappers down to ours
    idmap = faiss.IndexIDMap(index)
    ps.set_index_parameters(idmap, "verbose=0")
    assert not index.verbose

    refine = faiss.IndexRefineFlat(ft.IndexTurboQuant(16, 4))
    ps.set_index_parameter(refine, "k_factor_rf", 3)
    assert refine.k_factor == 3

    with pytest.raises(RuntimeError, match="nprobe"):
        ps.set_index_parameter(index, "nprobe", 4)


def test_faiss_functions_that_do_not_know_us_raise():
    index = ft.IndexTurboQuant(16, 4)
    with pytest.raises(RuntimeError):
        faiss.serialize_index(index)
    with pytest.raises(RuntimeError):
        faiss.clone_index(index)


def test_downcast_index():
    index = ft.IndexTurboQuant(16, 4)
    assert ft.downcast_index(index) is index

    idmap = faiss.IndexIDMap(index)
    del index
    gc.collect()
    inner = idmap.index  # faiss gives it one of its own classes
    assert not isinstance(inner, ft.IndexTurboQuant)
    down = ft.downcast_index(inner)
    assert isinstance(down, ft.IndexTurboQuant)
    assert down.tq.bits == 4
    # the same C++ object
    idmap.add_with_ids(gaussian(5, 16, 26), np.arange(5, dtype=np.int64))
    assert down.ntotal == 5

    # faiss's objects get faiss's answer
    # an HNSW over ours, seen as a plain faiss.Index by faiss's wrappers
    hnsw = ft.index_factory(16, "HNSW8,TQmse4")
    seen_by_faiss = faiss.IndexIDMap(hnsw).index
    assert type(seen_by_faiss) is faiss.Index
    assert isinstance(ft.downcast_index(seen_by_faiss), faiss.IndexHNSW)
    assert ft.downcast_index(hnsw) is hnsw
    assert isinstance(ft.downcast_index(hnsw.storage), ft.IndexTurboQuant)

    flat_map = faiss.IndexIDMap(faiss.IndexFlatL2(16))
    for other in [faiss.IndexFlatL2(16), faiss.index_factory(16, "PCA8,SQ8"),
                  flat_map.index]:
        assert type(ft.downcast_index(other)) is \
            type(faiss.downcast_index(other))

    with pytest.raises(ValueError):
        ft.downcast_index("not an index")


def test_search_parameters_selector():
    """faiss's SearchParameters and IDSelector reach our C++ search"""
    d, nb, nq, k = 16, 1000, 20, 5
    xb, xq = gaussian(nb, d, 27), gaussian(nq, d, 28)
    index = ft.IndexTurboQuant(d, 4)
    index.add(xb)
    sel = faiss.IDSelectorRange(200, 300)
    D, I = index.search(xq, k, params=faiss.SearchParameters(sel=sel))
    assert ((I >= 200) & (I < 300)).all()

    sub = ft.IndexTurboQuant(d, 4)
    sub.add(xb[200:300])
    Ds, Is = sub.search(xq, k)
    np.testing.assert_array_equal(D, Ds)
    np.testing.assert_array_equal(I, Is + 200)


def test_index_pre_transform():
    d, nb = 64, 2000
    xb = clustered(nb, d, 29)
    pca = faiss.PCAMatrix(d, 32)
    index = faiss.IndexPreTransform(pca, ft.index_factory(32, "TQmse4c"))
    gc.collect()
    assert not index.is_trained
    index.train(xb)  # trains the PCA, then our mean
    assert index.is_trained
    index.add(xb)
    inner = ft.downcast_index(index.index)
    assert isinstance(inner, ft.IndexTurboQuant)
    assert inner.ntotal == nb and inner.tq.mean.shape == (32,)
    _, I = index.search(xb[:20], 1)
    assert (I[:, 0] == np.arange(20)).mean() >= 0.9
