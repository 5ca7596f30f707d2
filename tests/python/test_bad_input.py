"""Bad input raises an exception that names the problem, never crashes,
and leaves the index as it was."""

import pickle

import faiss
import numpy as np
import pytest

import faiss_turbo as ft
from tq_util import gaussian

D = 16


@pytest.fixture
def index():
    index = ft.IndexTurboQuant(D, 4)
    index.add(gaussian(50, D, 40))
    return index


@pytest.mark.parametrize("method", ["add", "train", "sa_encode"])
def test_wrong_vectors(index, method):
    f = getattr(index, method)
    with pytest.raises(ValueError, match="float32"):
        f(gaussian(5, D, 0).astype(np.float64))
    with pytest.raises(ValueError, match="shape"):
        f(gaussian(5, D + 1, 0))
    with pytest.raises(ValueError, match="shape"):
        f(gaussian(1, D, 0)[0])  # 1-D
    with pytest.raises(ValueError, match="numpy"):
        f(gaussian(5, D, 0).tolist())
    assert index.ntotal == 50


def test_wrong_queries(index):
    xq = gaussian(3, D, 1)
    with pytest.raises(ValueError, match="float32"):
        index.search(xq.astype(np.float64), 5)
    with pytest.raises(ValueError, match="shape"):
        index.search(gaussian(3, D - 1, 1), 5)
    with pytest.raises(ValueError, match="shape"):
        index.range_search(gaussian(3, 2 * D, 1), 1.0)
    with pytest.raises(ValueError, match="k=0"):
        index.search(xq, 0)
    with pytest.raises(ValueError, match="k=-3"):
        index.search(xq, -3)
    with pytest.raises(ValueError, match="k must be an int"):
        index.search(xq, 2.5)
    with pytest.raises(ValueError, match="k=0"):
        index.assign(xq, 0)


def test_nan_and_inf(index):
    x = gaussian(5, D, 2)
    x[3, 7] = np.nan
    with pytest.raises(RuntimeError, match="NaN"):
        index.add(x)
    assert index.ntotal == 50  # nothing of the batch was added
    with pytest.raises(RuntimeError, match="NaN"):
        index.search(x, 2)
    x[3, 7] = np.inf
    with pytest.raises(RuntimeError, match="Inf"):
        index.sa_encode(x)
    centered = ft.index_factory(D, "TQmse4c")
    with pytest.raises(RuntimeError, match="NaN"):
        centered.train(x)
    assert not centered.is_trained


@pytest.mark.parametrize("metric", [faiss.METRIC_L2, faiss.METRIC_INNER_PRODUCT])
def test_nan_query_through_faiss_hnsw_over_our_storage(metric):
    """FAISS's IndexHNSW calls our distance computer inside its OpenMP
    region, where an exception would end the process: a NaN or Inf query
    gets NaN distances there (as FAISS's own flat storage gives), the other
    queries their usual results"""
    storage = ft.IndexTurboQuant(D, 4, metric=metric)
    hnsw = faiss.IndexHNSW(storage, 8)
    hnsw.add(gaussian(300, D, 41))
    q = gaussian(4, D, 42)
    Dref, Iref = hnsw.search(q, 5)
    q[1, 3] = np.nan
    q[2, 0] = -np.inf
    Dist, Ids = hnsw.search(q, 5)
    assert np.isnan(Dist[1:3]).all()
    np.testing.assert_array_equal(Ids[[0, 3]], Iref[[0, 3]])
    np.testing.assert_array_equal(Dist[[0, 3]], Dref[[0, 3]])
    assert np.isfinite(Dref).all()


def test_negative_n_at_the_c_level(index):
    """the numpy methods derive n from the shape; the C-level ones take it
    as given and must refuse a negative one"""
    x = gaussian(2, D, 3)
    Dist = np.empty((2, 1), dtype=np.float32)
    Ids = np.empty((2, 1), dtype=np.int64)
    codes = np.empty((2, index.code_size), dtype=np.uint8)
    sp = faiss.swig_ptr
    with pytest.raises(RuntimeError, match="n=-1"):
        index.add_c(-1, sp(x))
    with pytest.raises(RuntimeError, match="n=-1"):
        index.search_c(-1, sp(x), 1, sp(Dist), sp(Ids))
    with pytest.raises(RuntimeError, match="k=0"):
        index.search_c(2, sp(x), 0, sp(Dist), sp(Ids))
    with pytest.raises(RuntimeError, match="n=-1"):
        index.sa_encode_c(-1, sp(x), sp(codes))
    with pytest.raises(RuntimeError, match="n=-1"):
        index.train_c(-1, sp(x))
    assert index.ntotal == 50


def test_wrong_codes(index):
    codes = index.sa_encode(gaussian(4, D, 4))
    with pytest.raises(ValueError, match="uint8"):
        index.sa_decode(codes.astype(np.int32))
    with pytest.raises(ValueError, match="shape"):
        index.sa_decode(codes[:, :-1])
    with pytest.raises(ValueError, match="shape"):
        index.tq.decode(codes[:, 1:])


@pytest.mark.parametrize("key", ["TQmse4", "TQmse4fs", "IVF8,TQmse4",
                                 "IVF8,TQmse4fs"])
def test_corrupted_codes_are_refused(key):
    """codes whose floats are NaN (not codes of this codec) are refused by
    sa_decode rather than decoded to NaN; a bad list or offset by
    reconstruct_from_offset rather than FAISS's assertion (an abort)"""
    xb = gaussian(500, D, 7)
    index = ft.index_factory(D, key)
    index.train(xb)
    index.add(xb)
    codes = index.sa_encode(xb[:3])
    assert np.isfinite(index.sa_decode(codes)).all()
    codes[1, -4:] = 255  # the last float of code 1: a NaN
    with pytest.raises(RuntimeError, match="code 1 is not a TurboQuant"):
        index.sa_decode(codes)
    if key.startswith("IVF"):
        r = np.zeros(D, dtype=np.float32)
        with pytest.raises(RuntimeError, match="offset 100000 out of range"):
            index.reconstruct_from_offset(0, 100000, faiss.swig_ptr(r))
        with pytest.raises(RuntimeError, match="list 8 offset 0"):
            index.reconstruct_from_offset(8, 0, faiss.swig_ptr(r))


def test_ids_out_of_range(index):
    with pytest.raises(ValueError, match="range"):
        index.reconstruct(50)
    with pytest.raises(ValueError, match="range"):
        index.reconstruct(-1)
    with pytest.raises(ValueError, match="range"):
        index.reconstruct_n(40, 20)
    with pytest.raises(ValueError, match="range"):
        index.reconstruct_batch(np.array([1, 99]))
    with pytest.raises(ValueError, match="ids"):
        index.add_with_ids(gaussian(3, D, 5), np.arange(2))


@pytest.mark.parametrize("args, kwargs, what", [
    ((1, 4), {}, "d=1"),
    ((D, 9), {}, "bits"),
    ((D, 0.5), {}, "bits"),
    ((D, 2.55), {}, "bits"),
    ((D, 4), {"metric": faiss.METRIC_L1}, "metric"),
    ((D, 4), {"variant": ft.TQVariant.PROD, "debiased": True}, None),
    # an unknown QJL type crashed PROD's add; an unknown rotation type
    ((D, 4), {"variant": ft.TQVariant.PROD, "qjl_type": 3}, "QJL type 3"),
    ((D, 4), {"variant": ft.TQVariant.MSE, "qjl_type": -1}, "QJL type -1"),
    ((D, 4), {"rotation_type": 7}, "rotation type 7"),
])
def test_bad_constructor_arguments(args, kwargs, what):
    if what is None:
        # debiased scoring is MSE only: asked for PROD it is simply off
        assert not ft.IndexTurboQuant(*args, **kwargs).tq.debiased
        return
    with pytest.raises(RuntimeError, match=what):
        ft.IndexTurboQuant(*args, **kwargs)


def test_unknown_keyword():
    with pytest.raises(TypeError):
        ft.IndexTurboQuant(D, 4, no_such_argument=1)


def test_set_debiased_needs_an_empty_index(index):
    with pytest.raises(RuntimeError, match="empty"):
        index.set_debiased(False)
    prod = ft.IndexTurboQuant(D, 3, ft.TQVariant.PROD)
    with pytest.raises(RuntimeError, match="TQmse"):
        prod.set_debiased(True)


def test_merge_needs_the_same_codec(index):
    other = ft.IndexTurboQuant(D, 4, seed=5)
    other.add(gaussian(5, D, 6))
    with pytest.raises(RuntimeError, match="same codec"):
        index.merge_from(other)
    with pytest.raises(RuntimeError):
        index.merge_from(faiss.IndexFlatL2(D))
    same = ft.IndexTurboQuant(D, 4)
    same.add(gaussian(5, D, 6))
    index.merge_from(same)
    assert index.ntotal == 55


@pytest.mark.parametrize("key", ["IVF8,TQmse4", "IVF8,TQmse4fs",
                                 "IVF8_HNSW8,TQmse2c"])
def test_ivf_nan_among_many_and_untrained_search(key):
    """a NaN in a large add crashed the process (the coarse quantizer gave
    it a list past nlist), and a search before train aborted it (an
    exception inside FAISS's threads): both are errors now"""
    x = gaussian(6000, D, 41)
    untrained = ft.index_factory(D, key)
    with pytest.raises(RuntimeError, match="not trained"):
        untrained.search(x[:2], 5)
    index = ft.index_factory(D, key)
    index.train(x)
    bad = x.copy()
    bad[4500, 3] = np.nan
    with pytest.raises(RuntimeError, match="vector 4500 has a NaN"):
        index.add(bad)
    assert index.ntotal == 0
    with pytest.raises(RuntimeError, match="vector 7 has a NaN"):
        ft.index_factory(D, key).train(bad[4493:])


def test_vector_too_long_for_float():
    index = ft.IndexTurboQuant(D, 4)
    x = np.zeros((3, D), dtype=np.float32)
    x[1] = 3e38
    with pytest.raises(RuntimeError, match="vector 1 is too long for float"):
        index.add(x)
    assert index.ntotal == 0


@pytest.mark.parametrize("metric", [faiss.METRIC_L2,
                                    faiss.METRIC_INNER_PRODUCT])
def test_hnsw_bad_queries_raise(metric):
    """FAISS's HNSW search met a NaN query inside its threads, where our
    storage's refusal ended the process: the factory's IndexHNSWTurboQuant
    checks the batch first. Pickling keeps the class (and so the check)"""
    x = gaussian(300, D, 8)
    index = ft.index_factory(D, "HNSW8,TQmse4", metric)
    assert isinstance(index, ft.IndexHNSWTurboQuant)
    assert isinstance(index, faiss.IndexHNSW)
    index.add(x)
    for copy in (index, pickle.loads(pickle.dumps(index))):
        assert isinstance(copy, ft.IndexHNSWTurboQuant)
        q = x[:3].copy()
        q[2, 7] = np.nan
        with pytest.raises(RuntimeError, match="query 2 has a NaN or Inf"):
            copy.search(q, 4)
        with pytest.raises(RuntimeError, match="query 2 has a NaN or Inf"):
            copy.range_search(q, 1.0)
        _, ids = copy.search(x[:3], 4)
        assert ids.shape == (3, 4) and (ids >= 0).all()
        # FAISS's level-0 search (pointer arguments), checked the same way
        entry = np.zeros(3, dtype="int32")
        entry_d = np.zeros(3, dtype="float32")
        dis = np.zeros((3, 4), dtype="float32")
        lab = np.zeros((3, 4), dtype="int64")
        args = [faiss.swig_ptr(a) for a in (entry, entry_d, dis, lab)]
        with pytest.raises(RuntimeError, match="query 2 has a NaN or Inf"):
            copy.search_level_0(3, faiss.swig_ptr(q), 4, *args)


def test_hnsw_keeps_its_storage_alive():
    """IndexHNSWTurboQuant(storage) does not own the storage: the Python
    object must keep it alive (a freed storage was reused by the next
    indexes made, and add read it)"""
    import gc
    x = gaussian(200, D, 9)
    index = ft.IndexHNSWTurboQuant(ft.IndexTurboQuant(D, 4), 8)
    junk = [ft.IndexTurboQuant(3 * D, 2) for _ in range(50)]
    gc.collect()
    index.add(x)
    assert index.ntotal == 200 and index.storage.d == D
    _, ids = index.search(x[:5], 1)
    assert (ids[:, 0] == np.arange(5)).all()
    del junk


def test_hnsw_checks_its_input_as_the_others():
    """IndexHNSWTurboQuant takes the checks of the flat and IVF classes:
    vectors of another dtype were converted silently, a wrong width gave a
    bare AssertionError, and reconstruct_n out of range ended the process"""
    index = ft.index_factory(D, "HNSW8,TQmse4")
    index.add(gaussian(100, D, 11))
    with pytest.raises(ValueError, match="float32"):
        index.add(gaussian(10, D, 12).astype(np.float64))
    with pytest.raises(ValueError, match="shape"):
        index.search(gaussian(3, D + 1, 13), 3)
    with pytest.raises(ValueError, match="k=0"):
        index.search(gaussian(3, D, 13), 0)
    for n0, ni in ((0, 101), (-1, 2), (99, 2)):
        with pytest.raises(ValueError, match="out of range"):
            index.reconstruct_n(n0, ni)
    assert index.ntotal == 100
    np.testing.assert_array_equal(
        index.reconstruct_n(0, 100), index.storage.reconstruct_n(0, 100))


@pytest.mark.parametrize("key", ["HNSW0,TQmse4", "HNSW1,TQmse4",
                                 "IVF4_HNSW1,TQmse4", "HNSW1_PQ4,Refine(TQmse4)"])
def test_hnsw_needs_two_links(key):
    """M = 0 crashed FAISS's add and M = 1 never returned from it"""
    with pytest.raises(RuntimeError, match="M >= 2"):
        ft.index_factory(D, key)
    with pytest.raises(RuntimeError, match="M=1 must be >= 2"):
        ft.IndexHNSWTurboQuant(ft.IndexTurboQuant(D, 4), 1)


def test_ids_must_be_integers_of_int64():
    """FAISS's conversion truncated 1.5 to 1 and wrapped 2**64 - 1 to -1"""
    x = gaussian(400, D, 14)
    ivf = ft.index_factory(D, "IVF4,TQmse4")
    ivf.train(x)
    with pytest.raises(ValueError, match="integers"):
        ivf.add_with_ids(x[:3], np.array([0.9, 1.5, 2.99]))
    with pytest.raises(ValueError, match="fit int64"):
        ivf.add_with_ids(x[:2], np.array([2**64 - 1, 2**63], dtype=np.uint64))
    ivf.add_with_ids(x[:2], np.array([7, 2**63 - 1], dtype=np.uint64))
    assert ivf.ntotal == 2
    flat = ft.IndexTurboQuant(D, 4)
    flat.add(x[:5])
    with pytest.raises(ValueError, match="integers"):
        flat.reconstruct_batch(np.array([1.9, 2.9]))


def test_views_keep_their_index_alive():
    """search_defaults of a temporary index wrote into freed memory (the
    next index made read rerank_factor 0 there)"""
    import gc
    sd = ft.IndexTurboQuant(D, 4).search_defaults
    tq = ft.IndexTurboQuant(D, 2).tq
    gc.collect()
    fresh = ft.IndexTurboQuant(D, 4)
    sd.rerank_factor = 0.0
    assert fresh.search_defaults.rerank_factor == 2.0
    assert tq.bits == 2
    for cls in (ft.IndexTurboQuantFastScan, ft.IndexTurboQuant):
        index = cls(D, 4)
        index.search_defaults.rerank_factor = 3.0  # still writes through
        assert index.search_defaults.rerank_factor == 3.0
    ivf = ft.index_factory(D, "IVF4,TQmse4")
    view = ivf.search_defaults
    del ivf
    gc.collect()
    view.rerank_factor = 1.5
    assert view.rerank_factor == 1.5


def test_io_refuses_none(index, tmp_path):
    with pytest.raises(TypeError, match="not None"):
        ft.read_index(None)
    with pytest.raises(TypeError, match="not None"):
        ft.write_index(index, None)


@pytest.mark.parametrize("metric", [faiss.METRIC_L2,
                                    faiss.METRIC_INNER_PRODUCT])
def test_faiss_graph_and_refine_over_the_fastscan_index(metric):
    """FAISS's IndexRefine and IndexHNSW score the fast-scan index's
    vectors through its distance computer: FAISS's default one covers L2
    only and aborted the process for inner products. The same scores as the
    flat index's: the same labels"""
    x, q = gaussian(500, D, 15), gaussian(20, D, 16)
    labels = []
    for key in ("Flat,Refine(TQmse4fs)", "Flat,Refine(TQmse4)"):
        index = ft.index_factory(D, key, metric)
        index.add(x)
        labels.append(index.search(q, 5)[1])
    np.testing.assert_array_equal(labels[0], labels[1])
    hnsw = faiss.IndexHNSW(ft.IndexTurboQuantFastScan(D, 4, metric=metric), 8)
    hnsw.add(x)
    qn = q[:3].copy()
    qn[1, 2] = np.nan
    Dist, Ids = hnsw.search(qn, 5)
    assert np.isnan(Dist[1]).all() and np.isfinite(Dist[[0, 2]]).all()
    # the graph finds the vectors the flat index ranks first
    flat = ft.IndexTurboQuantFastScan(D, 4, metric=metric)
    flat.add(x)
    _, If = flat.search(q, 1)
    _, Ih = hnsw.search(q, 1)
    assert (Ih[:, 0] == If[:, 0]).mean() >= 0.9


@pytest.mark.parametrize("key", ["IVF4,TQmse4", "IVF4,TQmse4fs"])
def test_preassigned_negative_lists_are_refused(key):
    """FAISS's add_core skips a vector assigned to a negative list but
    counts it in ntotal: no list held that id and the index could not be
    written. Refused, and nothing of the batch is added"""
    from faiss.contrib import ivf_tools
    x = gaussian(300, D, 17)
    index = ft.index_factory(D, key)
    index.train(x)
    index.add(x[:100])
    for bad in (-1, -7, 4):
        a = np.zeros(10, dtype="int64")
        a[3] = bad
        with pytest.raises(RuntimeError, match="assigned to list"):
            ivf_tools.add_preassigned(index, x[100:110], a,
                                      ids=np.arange(100, 110))
        assert index.ntotal == 100
    assert ft.deserialize_index(ft.serialize_index(index)).ntotal == 100


@pytest.mark.parametrize("key", ["TQmse4", "TQmse4fs", "IVF4,TQmse4",
                                 "IVF4,TQmse4fs", "HNSW16,TQmse4"])
def test_range_search_radius_nan_is_refused(key):
    """no distance compares to a NaN radius: the search would silently find
    nothing. An infinite radius is a radius (L2: every vector)"""
    xb = gaussian(200, D, 50)
    index = ft.index_factory(D, key)
    index.train(xb)
    index.add(xb)
    xq = gaussian(3, D, 51)
    with pytest.raises(RuntimeError, match="radius is NaN"):
        index.range_search(xq, float("nan"))
    if key.startswith("IVF"):
        index.nprobe = 4  # every list
    if not key.startswith("HNSW"):  # a graph visits part of it
        lims, _, _ = index.range_search(xq, float("inf"))
        np.testing.assert_array_equal(np.diff(lims), 200)


@pytest.mark.parametrize("key", ["IVF4,TQmse4", "IVF4,TQmse4fs"])
@pytest.mark.parametrize("field, value", [("rerank_factor", -1.0),
                                          ("rerank_factor", float("nan")),
                                          ("scan_mode", 7)])
def test_ivf_range_search_checks_search_defaults(key, field, value):
    """FAISS makes range scanners inside its OpenMP region, where the
    options' check ended the process: range_search checks them first, as
    search does"""
    xb = gaussian(300, D, 60)
    index = ft.index_factory(D, key)
    index.train(xb)
    index.add(xb)
    setattr(index.search_defaults, field, value)
    with pytest.raises(RuntimeError, match=field):
        index.search(xb[:2], 5)
    with pytest.raises(RuntimeError, match=field):
        index.range_search(xb[:2], 20.0)
    from faiss.contrib import ivf_tools
    with pytest.raises(RuntimeError, match=field):
        ivf_tools.range_search_preassigned(
            index, xb[:2], 20.0, np.zeros((2, 1), dtype="int64"))


def test_hnsw_storage_is_ours_and_empty():
    """a storage that held vectors gave a graph that did not link them (and
    a file that could not be read back); FAISS's own storage gave a file
    the writer refused with an assertion"""
    full = ft.IndexTurboQuant(D, 4)
    full.add(gaussian(20, D, 41))
    with pytest.raises(RuntimeError, match="holds 20 vectors; it must be"):
        ft.IndexHNSWTurboQuant(full, 8)
    with pytest.raises(RuntimeError, match="must be an IndexTurboQuant"):
        ft.IndexHNSWTurboQuant(faiss.IndexFlatL2(D), 8)
    x = gaussian(200, D, 42)
    for storage in (ft.IndexTurboQuant(D, 4), ft.IndexTurboQuantFastScan(D, 4)):
        index = ft.IndexHNSWTurboQuant(storage=storage, M=8)  # keywords
        index.add(x)
        _, ids = index.search(x[:5], 1)
        assert (ids[:, 0] == np.arange(5)).all()
        back = ft.deserialize_index(ft.serialize_index(index))
        assert isinstance(back, ft.IndexHNSWTurboQuant)
        assert np.array_equal(back.search(x[:5], 3)[1], index.search(x[:5], 3)[1])


def test_codes_depend_on_read_only_fields():
    """index.tq.train_mean moved a populated index's mean and by_residual
    could be flipped: both left codes that the index then read wrongly"""
    x = gaussian(400, D, 43)
    flat = ft.index_factory(D, "TQmse4c")
    flat.train(x)
    assert not hasattr(flat.tq, "train_mean")
    ivf = ft.index_factory(D, "IVF4,TQmse4")
    with pytest.raises(AttributeError):
        ivf.by_residual = not ivf.by_residual


def test_flat_index_refuses_ivf_params(index):
    """their scan_mode and rerank_factor were silently the defaults'"""
    p = ft.SearchParametersIVFTurboQuant(scan_mode=ft.TQ_SCAN_EXACT)
    with pytest.raises(RuntimeError, match="is for IVF indexes"):
        index.search(gaussian(2, D, 44), 3, params=p)
    fs = ft.IndexTurboQuantFastScan(D, 4)
    fs.add(gaussian(50, D, 45))
    with pytest.raises(RuntimeError, match="is for IVF indexes"):
        fs.search(gaussian(2, D, 44), 3, params=p)


def test_numpy_integers_and_float_ids(index):
    """k as a numpy integer reached SWIG's overloads as a TypeError;
    remove_ids([1.7]) removed id 1"""
    xq = gaussian(2, D, 46)
    assert np.array_equal(index.search(xq, np.int64(3))[1],
                          index.search(xq, 3)[1])
    with pytest.raises(ValueError, match="integers"):
        index.remove_ids(np.array([1.7]))
    assert index.ntotal == 50
    assert index.remove_ids(np.array([1, 2], dtype=np.int32)) == 2


def test_merge_from_itself_refused(index):
    """IndexFlatCodes' merge appended the codes, then reset the other: the
    index itself, which ended empty"""
    with pytest.raises(RuntimeError, match="merge_from itself"):
        index.merge_from(index)
    assert index.ntotal == 50


@pytest.mark.parametrize("key", ["TQmse4", "TQprod3", "TQmse4fs", "TQmse2fs",
                                 "IVF4,TQmse4", "IVF4,TQmse4fs", "HNSW8,TQmse4"])
def test_inner_product_query_too_long_for_float(key):
    """a finite query whose squared norm is no float gave -1 labels or
    -inf distances (scores overflowing to NaN)"""
    x = gaussian(300, D, 47)
    index = ft.index_factory(D, key, faiss.METRIC_INNER_PRODUCT)
    index.train(x)
    index.add(x)
    q = gaussian(3, D, 48)
    q[1] *= 1e38
    with pytest.raises(RuntimeError, match="query 1 is too long for inner "
                                           "products in float"):
        index.search(q, 5)
    q[1] /= 1e20  # long, but its scores fit: k labels
    _, ids = index.search(q, 5)
    assert (ids >= 0).all()


def test_hnsw_over_centered_fast_scan_checks_centered_queries():
    """HNSW over a centered fast-scan storage tested the raw query's norm,
    not the centered one its scores use: D = inf, arbitrary labels"""
    x = gaussian(200, D, 49) + 1e19
    storage = ft.IndexTurboQuantFastScan(D, 4, centered=True)
    storage.train(x)
    index = ft.IndexHNSWTurboQuant(storage, 8)
    index.add(x)
    q = np.full((1, D), -5e18, dtype=np.float32)  # raw squared norm fits
    with pytest.raises(RuntimeError, match="too long for L2 distances"):
        index.search(q, 3)


def test_codec_decode_refuses_codes_it_cannot_have_written(index):
    """tq.decode of a code with a NaN norm returned NaN vectors, where the
    index's sa_decode refused it"""
    codes = index.tq.encode(gaussian(3, D, 50))
    assert index.tq.decode(codes).shape == (3, D)
    codes[2] = 255  # the norm's bytes: a NaN
    with pytest.raises(RuntimeError, match="code 2 is not a TurboQuant code"):
        index.tq.decode(codes)
    with pytest.raises(RuntimeError, match="not a TurboQuant code"):
        index.sa_decode(codes)
