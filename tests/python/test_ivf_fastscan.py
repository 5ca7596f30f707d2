"""IndexIVFTurboQuantFastScan from Python: the same codes and exact scores
as IndexIVFTurboQuant, files, pickling, FAISS's IVF functions, memory,
bad input."""

import pickle

import faiss
import numpy as np
import pytest

import faiss_turbo as ft
from tq_util import assert_exact_scores, clustered, gaussian, recall_at

NLIST = 16


def ivf_params(mode=ft.TQ_SCAN_INT8, nprobe=4):
    return ft.SearchParametersIVFTurboQuant(nprobe=nprobe, scan_mode=mode)


def list_rows(index, l):
    """list l's ids and decoded vectors, whatever the layout"""
    n = index.invlists.list_size(l)
    ids = faiss.rev_swig_ptr(index.invlists.get_ids(l), n).copy()
    x = np.empty((n, index.d), dtype=np.float32)
    for o in range(n):
        index.reconstruct_from_offset(l, o, faiss.swig_ptr(x[o]))
    return ids, x


@pytest.mark.parametrize("desc", ["IVF16,TQmse4fs", "IVF16,TQmse2fs",
                                  "IVF16,TQmse1fs", "IVF16,TQmse1.5fs"])
@pytest.mark.parametrize("metric", [faiss.METRIC_L2,
                                    faiss.METRIC_INNER_PRODUCT])
def test_same_lists_and_exact_scores_as_row_lists(desc, metric):
    d, k, nb = 48, 10, 3000
    xb, xq = clustered(nb, d, 1), clustered(20, d, 2)
    fs = ft.index_factory(d, desc, metric)
    assert isinstance(fs, ft.IndexIVFTurboQuantFastScan)
    assert isinstance(fs, ft.IndexIVFTurboQuant)
    assert ft.reverse_index_factory(fs) == desc
    fs.train(xb)
    # the row index on the same centroids
    rows = ft.IndexIVFTurboQuant(faiss.clone_index(fs.quantizer), d, NLIST,
                                 fs.tq.bits, metric=metric)
    rows.add(xb)
    fs.add(xb)
    for l in (0, 7, 15):
        i1, c1 = list_rows(fs, l)
        i2, c2 = list_rows(rows, l)
        np.testing.assert_array_equal(i1, i2)
        np.testing.assert_array_equal(c1, c2)
        n = rows.invlists.list_size(l)
        np.testing.assert_array_equal(
            fs.get_list_codes(l),
            faiss.rev_swig_ptr(rows.invlists.get_codes(l),
                               n * rows.code_size).reshape(n, -1))
    with pytest.raises(ValueError):
        fs.get_list_codes(NLIST)

    ex = ivf_params(ft.TQ_SCAN_EXACT)
    Dx, Ix = rows.search(xq, k, params=ex)
    D1, I1 = fs.search(xq, k, params=ex)
    np.testing.assert_array_equal(I1, Ix)
    np.testing.assert_array_equal(D1, Dx)
    # the table scan re-scores its candidates: exact scores of its labels
    D2, I2 = fs.search(xq, k, params=ivf_params())
    Dall, Iall = rows.search(xq, nb, params=ex)
    assert_exact_scores(D2, I2, Dall, Iall)
    assert recall_at(I2, Ix, k) >= 0.95


def test_files_pickle_clone_memory(tmp_path):
    d, nb = 32, 2000
    xb = gaussian(nb, d, 3)
    index = ft.IndexIVFTurboQuantFastScan(faiss.IndexFlatL2(d), d, NLIST, 4,
                                          metric=faiss.METRIC_L2)
    index.train(xb)
    index.add(xb)
    index.nprobe = 4
    D, I = index.search(xb[:10], 5)
    fname = str(tmp_path / "ivffs.index")
    ft.write_index(index, fname)
    for back in (ft.read_index(fname), pickle.loads(pickle.dumps(index)),
                 ft.clone_index(index), index.clone()):
        assert isinstance(back, ft.IndexIVFTurboQuantFastScan)
        D2, I2 = back.search(xb[:10], 5)
        np.testing.assert_array_equal(I2, I)
        np.testing.assert_array_equal(D2, D)
    # the blocks are the only copy: codes, ids and (residual lists, after
    # a search) one derived float, plus the padding of at most 31 codes per
    # list
    per_code = index.code_size + 8 + 4
    assert nb * per_code <= index.memory_bytes() <= (
        (nb + 31 * NLIST) * per_code)


def test_faiss_ivf_functions():
    d, nb = 24, 1500
    xb = gaussian(nb, d, 4)
    index = ft.index_factory(d, "IVF16,TQmse2fs")
    index.train(xb)
    index.add_with_ids(xb, np.arange(nb) + 10)
    index.nprobe = 16
    _, I = index.search(xb[:3], 1)
    assert list(I[:, 0]) == [10, 11, 12]
    assert index.remove_ids(faiss.IDSelectorRange(10, 110)) == 100
    assert index.ntotal == nb - 100
    _, I = index.search(xb[:3], 1)
    assert (I[:, 0] >= 110).all()
    index.set_direct_map_type(faiss.DirectMap.Hashtable)
    np.testing.assert_array_equal(
        index.reconstruct(500),
        index.sa_decode(index.sa_encode(xb[490:491]))[0])
    index.set_direct_map_type(faiss.DirectMap.NoMap)
    lims, Dr, Ir = index.range_search(xb[:2], 1e9)
    assert lims[-1] == 2 * (nb - 100)
    ps = ft.ParameterSpace()
    ps.set_index_parameter(index, "rerank_factor", 3)
    assert index.search_defaults.rerank_factor == 3


def test_bad_input():
    d = 16
    with pytest.raises(RuntimeError, match="3 bits"):
        ft.IndexIVFTurboQuantFastScan(faiss.IndexFlatL2(d), d, 4, 3)
    with pytest.raises(RuntimeError, match="TQmse"):
        ft.index_factory(d, "IVF4,TQprod3fs")
    index = ft.index_factory(d, "IVF4,TQmse4fs")
    index.train(gaussian(300, d, 5))
    index.add(gaussian(300, d, 5))
    q = gaussian(1, d, 6)
    q[0, 3] = np.nan
    with pytest.raises(RuntimeError, match="NaN"):
        index.search(q, 1)
    with pytest.raises(ValueError):
        index.add(np.zeros((3, d + 1), dtype=np.float32))
    assert index.ntotal == 300
