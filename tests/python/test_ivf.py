"""IndexIVFTurboQuant from Python: a faiss.IndexIVF whose lists hold
TurboQuant codes."""

import gc

import faiss
import numpy as np
import pytest

import faiss_turbo as ft
from tq_util import brute_force, clustered, recall_at


@pytest.fixture(scope="module")
def data():
    xb = clustered(4000, 32, 50)
    xq = clustered(50, 32, 51)
    return xb, xq


def make_ivf(d, nlist, bits, **kwargs):
    index = ft.IndexIVFTurboQuant(faiss.IndexFlatL2(d), d, nlist, bits,
                                  **kwargs)
    gc.collect()  # the quantizer lives on through the index only
    return index


def test_is_a_faiss_ivf():
    index = make_ivf(32, 16, 4)
    assert isinstance(index, faiss.IndexIVF)
    assert index.nlist == 16 and not index.is_trained
    assert index.code_size == index.tq.code_size
    assert index.tq.bits == 4


def test_full_probe_equals_the_flat_index(data):
    """without residuals, all lists probed, the IVF scores every vector with
    the flat index's codec: the same answer"""
    xb, xq = data
    ivf = make_ivf(32, 16, 3, by_residual=False, seed=5)
    ivf.train(xb)
    ivf.add(xb)
    ivf.nprobe = 16
    flat = ft.IndexTurboQuant(32, 3, seed=5)
    flat.add(xb)
    D, I = ivf.search(xq, 10)
    D0, I0 = flat.search(xq, 10)
    np.testing.assert_allclose(D, D0, rtol=1e-5, atol=1e-4)
    assert (I == I0).mean() > 0.99


def test_recall_grows_with_nprobe(data):
    xb, xq = data
    _, gt = brute_force(xb, xq, 10)
    ivf = make_ivf(32, 32, 4)
    ivf.train(xb)
    ivf.add(xb)
    recalls = []
    for nprobe in [1, 4, 32]:
        faiss.ParameterSpace().set_index_parameter(ivf, "nprobe", nprobe)
        assert ivf.nprobe == nprobe
        recalls.append(recall_at(ivf.search(xq, 10)[1], gt, 10))
    assert recalls[0] <= recalls[1] <= recalls[2], recalls
    assert recalls[2] > recalls[0]


def test_add_with_ids_and_reconstruct(data):
    xb, _ = data
    ivf = make_ivf(32, 8, 4)
    ivf.train(xb)
    # arbitrary ids: the direct map must be a hash table
    ivf.set_direct_map_type(faiss.DirectMap.Hashtable)
    ids = np.arange(len(xb), dtype=np.int64) * 3 + 1
    ivf.add_with_ids(xb, ids)
    r = ivf.reconstruct(int(ids[10]))
    assert r.shape == (32,)
    # close to the vector: 4 bits per coordinate
    assert ((r - xb[10]) ** 2).sum() < 0.05 * (xb[10] ** 2).sum()
    with pytest.raises(RuntimeError):
        ivf.reconstruct(2)  # not an id


def test_bad_input(data):
    xb, xq = data
    ivf = make_ivf(32, 8, 4)
    with pytest.raises(RuntimeError):
        ivf.add(xb)  # not trained
    ivf.train(xb)
    with pytest.raises(ValueError, match="float32"):
        ivf.add(xb.astype(np.float64))
    with pytest.raises(ValueError, match="k=0"):
        ivf.search(xq, 0)
    bad = xq.copy()
    bad[0, 0] = np.nan
    with pytest.raises(RuntimeError, match="NaN"):
        ivf.search(bad, 1)
    with pytest.raises(RuntimeError):
        ft.IndexIVFTurboQuant(faiss.IndexFlatL2(16), 32, 8, 4)  # d differs


@pytest.mark.parametrize("key", ["IVF8,TQmse4", "IVF8,TQmse4fs"])
def test_reset_centroid_table_after_new_centroids(key):
    """the rotated centroids are kept from the first search: new centroids
    put into the same quantizer need reset_centroid_table() (documented in
    the README), which gives the results of an index trained on them"""
    rng = np.random.RandomState(0)
    x = rng.randn(3000, 16).astype("float32")
    new = rng.randn(8, 16).astype("float32")
    index = ft.index_factory(16, key)
    index.train(x)
    index.nprobe = 2
    index.search(x[:2], 1)  # builds the table
    q = faiss.downcast_index(index.quantizer)
    q.reset()
    q.add(new)
    index.reset_centroid_table()
    index.add(x[:1000])
    ref = ft.index_factory(16, key)
    ref.train(x)  # the mean (centered codecs) and the quantizer...
    qr = faiss.downcast_index(ref.quantizer)
    qr.reset()
    qr.add(new)  # ...then the same new centroids, before any search
    ref.nprobe = 2
    ref.add(x[:1000])
    Dr, Ir = ref.search(x[:200], 5)
    D, I = index.search(x[:200], 5)
    np.testing.assert_array_equal(I, Ir)
    np.testing.assert_array_equal(D, Dr)
