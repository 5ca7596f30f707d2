"""IndexTurboQuantFastScan from Python: the same codes and exact scores as
IndexTurboQuant, files, factory strings, FAISS wrappers, bad input."""

import faiss
import numpy as np
import pytest

import faiss_turbo as ft
from tq_util import assert_exact_scores, clustered, gaussian, recall_at


def exact_params():
    p = ft.SearchParametersTurboQuant()
    p.scan_mode = ft.TQ_SCAN_EXACT
    return p


@pytest.mark.parametrize("desc", ["TQmse4fs", "TQmse2cfs", "TQmse1fs",
                                  "TQmse1.5fs"])
@pytest.mark.parametrize("metric", [faiss.METRIC_L2,
                                    faiss.METRIC_INNER_PRODUCT])
def test_same_codes_and_exact_scores_as_flat(desc, metric):
    d, k = 48, 10
    xb, xq = clustered(2000, d, 1), clustered(20, d, 2)
    fs = ft.index_factory(d, desc, metric)
    flat = ft.index_factory(d, desc[:-2], metric)
    assert isinstance(fs, ft.IndexTurboQuantFastScan)
    assert isinstance(fs, faiss.Index)
    assert ft.reverse_index_factory(fs) == desc
    for index in (fs, flat):
        index.train(xb)
        index.add(xb)
    codes = fs.get_codes()
    assert codes.shape == (2000, flat.code_size)
    np.testing.assert_array_equal(
        codes, faiss.vector_to_array(flat.codes).reshape(codes.shape))
    np.testing.assert_array_equal(fs.sa_encode(xb[:5]), codes[:5])
    np.testing.assert_array_equal(fs.reconstruct(7), flat.reconstruct(7))

    Dx, Ix = flat.search(xq, k, params=exact_params())
    D1, I1 = fs.search(xq, k, params=exact_params())
    np.testing.assert_array_equal(I1, Ix)
    np.testing.assert_array_equal(D1, Dx)
    # the table scan re-scores its candidates: exact scores of its labels
    D2, I2 = fs.search(xq, k)
    _, Iall = flat.search(xq, 2000, params=exact_params())
    Dall, _ = flat.search(xq, 2000, params=exact_params())
    assert_exact_scores(D2, I2, Dall, Iall)
    assert recall_at(I2, Ix, k) >= 0.95


def test_files_pickle_and_add_codes(tmp_path):
    d = 32
    xb = gaussian(500, d, 3)
    index = ft.IndexTurboQuantFastScan(d, 4, metric=faiss.METRIC_L2)
    index.add(xb)
    fname = str(tmp_path / "fs.index")
    ft.write_index(index, fname)
    back = ft.read_index(fname)
    assert isinstance(back, ft.IndexTurboQuantFastScan)
    np.testing.assert_array_equal(back.get_codes(), index.get_codes())
    import pickle
    again = pickle.loads(pickle.dumps(index))
    np.testing.assert_array_equal(again.get_codes(), index.get_codes())
    # row codes in, the same index out
    other = ft.IndexTurboQuantFastScan(d, 4)
    other.add_codes(index.get_codes(100, 50))
    assert other.ntotal == 50
    np.testing.assert_array_equal(other.reconstruct(3), index.reconstruct(103))
    # from a flat IndexTurboQuant
    flat = ft.IndexTurboQuant(d, 4)
    flat.add(xb)
    conv = ft.IndexTurboQuantFastScan(flat)
    np.testing.assert_array_equal(conv.get_codes(), index.get_codes())
    # and back, for range search
    back_flat = ft.IndexTurboQuant(2, 1)
    conv.copy_to(back_flat)
    np.testing.assert_array_equal(faiss.vector_to_array(back_flat.codes),
                                  faiss.vector_to_array(flat.codes))
    lims, _, _ = back_flat.range_search(xb[:2], 1e9)
    assert lims[-1] == 1000


def test_faiss_wrappers_remove_and_parameters():
    d = 24
    xb = gaussian(300, d, 4)
    index = ft.IndexTurboQuantFastScan(d, 2)
    idmap = faiss.IndexIDMap(index)
    idmap.add_with_ids(xb, np.arange(300) + 1000)
    _, I = idmap.search(xb[:3], 1)
    assert list(I[:, 0]) == [1000, 1001, 1002]
    assert index.remove_ids(faiss.IDSelectorRange(0, 100)) == 100
    assert index.ntotal == 200
    ps = ft.ParameterSpace()
    ps.set_index_parameter(index, "rerank_factor", 4)
    assert index.search_defaults.rerank_factor == 4
    assert index.memory_bytes() >= index.ntotal * (d * 2 // 8)


def test_bad_input():
    d = 16
    index = ft.IndexTurboQuantFastScan(d, 4)
    index.add(gaussian(10, d, 5))
    with pytest.raises(ValueError):
        index.add(np.zeros((3, d + 1), dtype=np.float32))
    with pytest.raises(ValueError):
        index.add_codes(np.zeros((3, 5), dtype=np.uint8))
    q = gaussian(1, d, 6)
    q[0, 3] = np.nan
    with pytest.raises(RuntimeError, match="NaN"):
        index.search(q, 1)
    with pytest.raises(RuntimeError, match="NaN"):
        index.range_search(q, 1.0)
    with pytest.raises(RuntimeError, match="3 bits"):
        ft.IndexTurboQuantFastScan(d, 3)
    with pytest.raises(RuntimeError, match="fast-scan"):
        ft.index_factory(d, "IVF4,TQprod3fs")
    assert index.ntotal == 10


def test_faiss_functions_after_install():
    ft.install()
    try:
        index = faiss.index_factory(32, "IDMap2,TQmse2cfs")
        xb = clustered(300, 32, 7)
        index.train(xb)
        index.add_with_ids(xb, np.arange(300) * 2)
        inner = faiss.downcast_index(index.index)
        assert isinstance(inner, ft.IndexTurboQuantFastScan)
        back = faiss.deserialize_index(faiss.serialize_index(index))
        D1, I1 = index.search(xb[:5], 4)
        D2, I2 = back.search(xb[:5], 4)
        np.testing.assert_array_equal(I1, I2)
        np.testing.assert_array_equal(D1, D2)
        assert list(I1[:, 0]) == [0, 2, 4, 6, 8]
    finally:
        ft.uninstall()
