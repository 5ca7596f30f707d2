"""The sign pre-scan from Python: SearchParametersTurboQuant(prescan=...),
search_defaults (kept by serialization, set by ParameterSpace) and its
errors."""

import pickle

import faiss
import numpy as np
import pytest

import faiss_turbo as ft


D = 96
NB = 3000


def unit(n, seed):
    x = np.random.default_rng(seed).standard_normal((n, D)).astype("float32")
    return x / np.linalg.norm(x, axis=1, keepdims=True)


@pytest.fixture(scope="module")
def index():
    index = ft.index_factory(D, "TQmse4")
    index.add(unit(NB, 1))
    return index


@pytest.fixture(scope="module")
def xq():
    return unit(64, 2)


def kept(I, ref):
    return np.mean([len(set(a) & set(b)) for a, b in zip(I, ref)]) / I.shape[1]


def test_every_code_kept_is_the_int8_scan(index, xq):
    D0, I0 = index.search(xq, 10)
    p = ft.SearchParametersTurboQuant(prescan=NB)
    assert p.prescan == NB
    D1, I1 = index.search(xq, 10, params=p)
    np.testing.assert_array_equal(I0, I1)
    np.testing.assert_array_equal(D0, D1)
    fs = ft.index_factory(D, "TQmse4fs")
    fs.add(unit(NB, 1))
    np.testing.assert_array_equal(I0, fs.search(xq, 10, params=p)[1])


needs_kernels = pytest.mark.skipif(
    not ft.prescan_supported(),
    reason="no SIMD sign kernels: searches scan every code (C++ tests cover "
           "the portable ones)")


@needs_kernels
def test_short_lists_prune_and_keep_most(index, xq):
    _, I0 = index.search(xq, 10)
    fractions = []
    for n in (20, 200, 1000):
        _, I = index.search(
            xq, 10, params=ft.SearchParametersTurboQuant(prescan=n))
        fractions.append(kept(I, I0))
    assert fractions[0] < 1  # 20 of 3000 prunes
    assert fractions == sorted(fractions)
    assert fractions[2] > 0.9  # measured 0.99


@needs_kernels
def test_stats_count_the_prescan(index, xq):
    # faiss_turbo.cvar.tq_prescan_stats, as faiss.cvar.indexIVF_stats: a
    # shortlist of 64 of 3000 codes takes a seed (a sample of 1 panel in 8)
    st = ft.cvar.tq_prescan_stats
    st.reset()
    index.search(xq, 10, params=ft.SearchParametersTurboQuant(prescan=64))
    assert (st.nq, st.nseeded) == (len(xq), len(xq))
    assert 64 * len(xq) <= st.nentries < 4 * 64 * len(xq)
    index.search(xq[:8], 10, params=ft.SearchParametersTurboQuant(prescan=64))
    assert st.nq == len(xq)  # 8 queries scan every code
    st.reset()
    assert st.nq == st.nentries == 0


def test_unsupported_cpus_scan_every_code(index, xq):
    if ft.prescan_supported():
        pytest.skip("this CPU has the sign kernels")
    p = ft.SearchParametersTurboQuant(prescan=20)
    np.testing.assert_array_equal(index.search(xq, 10)[1],
                                  index.search(xq, 10, params=p)[1])


def test_search_defaults_are_kept(index, xq):
    p = ft.SearchParametersTurboQuant(prescan=100)
    ref = index.search(xq, 10, params=p)
    copy = ft.deserialize_index(ft.serialize_index(index))
    assert copy.search_defaults.prescan == 0
    index.search_defaults.prescan = 100
    try:
        np.testing.assert_array_equal(index.search(xq, 10)[1], ref[1])
        for again in (ft.deserialize_index(ft.serialize_index(index)),
                      pickle.loads(pickle.dumps(index))):
            assert again.search_defaults.prescan == 100
            np.testing.assert_array_equal(again.search(xq, 10)[1], ref[1])
    finally:
        index.search_defaults.prescan = 0


def test_parameter_space(xq):
    index = ft.index_factory(D, "IDMap2,TQmse4")
    index.add_with_ids(unit(NB, 1), np.arange(NB, dtype=np.int64))
    flat = ft.downcast_index(index.index)
    ps = ft.ParameterSpace()
    ps.set_index_parameters(index, "prescan=100")
    assert flat.search_defaults.prescan == 100
    p = ft.SearchParametersTurboQuant(prescan=100)
    np.testing.assert_array_equal(index.search(xq, 10)[1],
                                  flat.search(xq, 10, params=p)[1])
    with pytest.raises(RuntimeError, match="must be an integer >= 0"):
        ps.set_index_parameter(index, "prescan", 2.5)
    ivf = ft.index_factory(D, "IVF8,TQmse4")
    with pytest.raises(RuntimeError, match="an option of IndexTurboQuant"):
        ps.set_index_parameter(ivf, "prescan", 100)


def test_bad_options_raise(index, xq):
    with pytest.raises(RuntimeError, match="prescan=-1 must be >= 0"):
        index.search(xq, 10, params=ft.SearchParametersTurboQuant(prescan=-1))
    with pytest.raises(RuntimeError, match="needs scan_mode 1"):
        index.search(xq, 10, params=ft.SearchParametersTurboQuant(
            prescan=10, scan_mode=ft.TQ_SCAN_EXACT))
    ivf = ft.index_factory(D, "IVF8,TQmse4")
    ivf.train(unit(NB, 1))
    ivf.add(unit(NB, 1))
    ivf.search_defaults.prescan = 10
    with pytest.raises(RuntimeError, match="an option of the flat indexes"):
        ivf.search(xq, 10)
    with pytest.raises(RuntimeError, match="an option of the flat indexes"):
        ft.serialize_index(ivf)
    # range search ignores it
    ivf.search_defaults.prescan = 0
    r = float(np.median(ivf.search(xq, 10)[0][:, 5]))
    ref = ivf.range_search(xq, r)
    ivf.search_defaults.prescan = 10
    got = ivf.range_search(xq, r)
    assert ref[0][-1] > 0
    for a, b in zip(ref, got):
        np.testing.assert_array_equal(a, b)
