"""The int8 scan of IndexIVFTurboQuant from Python: its per-call options
(SearchParametersIVFTurboQuant), search_defaults and ParameterSpace."""

import gc

import faiss
import numpy as np
import pytest

import faiss_turbo as ft
from tq_util import clustered


D = 32
NLIST = 16


@pytest.fixture(scope="module")
def ivf():
    xb = clustered(4000, D, 60)
    index = ft.IndexIVFTurboQuant(faiss.IndexFlatL2(D), D, NLIST, 4)
    gc.collect()  # the quantizer lives on through the index only
    index.train(xb)
    index.add(xb)
    return index


@pytest.fixture(scope="module")
def xq():
    return clustered(40, D, 61)


def params(**kw):
    return ft.SearchParametersIVFTurboQuant(nprobe=NLIST, **kw)


def test_params_class():
    p = ft.SearchParametersIVFTurboQuant(nprobe=3, rerank_factor=2.5)
    assert isinstance(p, faiss.SearchParametersIVF)
    assert (p.nprobe, p.scan_mode, p.rerank_factor) == (3, ft.TQ_SCAN_INT8,
                                                       2.5)


def test_int8_finds_the_exact_top_with_exact_scores(ivf, xq):
    """int8 + re-scoring: nearly the exact scan's top 10, and the distances
    of the labels both return are the same floats"""
    De, Ie = ivf.search(xq, 10, params=params(scan_mode=ft.TQ_SCAN_EXACT))
    D8, I8 = ivf.search(xq, 10, params=params())
    hits = sum(len(np.intersect1d(I8[i], Ie[i])) for i in range(len(xq)))
    assert hits / Ie.size >= 0.97
    for i in range(len(xq)):
        exact = dict(zip(Ie[i], De[i]))
        for lab, dis in zip(I8[i], D8[i]):
            if lab in exact:
                assert dis == exact[lab]


def test_per_call_params_override_defaults(ivf, xq):
    exact = params(scan_mode=ft.TQ_SCAN_EXACT)
    raw = params(rerank_factor=0)  # int8 scores, not re-scored
    De, Ie = ivf.search(xq, 10, params=exact)
    Dr, Ir = ivf.search(xq, 10, params=raw)
    assert not np.array_equal(De, Dr)
    ivf.nprobe = NLIST
    try:
        ivf.search_defaults.rerank_factor = 0
        np.testing.assert_array_equal(ivf.search(xq, 10)[0], Dr)
        D, I = ivf.search(xq, 10, params=exact)
        np.testing.assert_array_equal(D, De)
        np.testing.assert_array_equal(I, Ie)
    finally:
        ivf.search_defaults.rerank_factor = 4
        ivf.nprobe = 1


def test_selector_in_the_params(ivf, xq):
    sel = faiss.IDSelectorRange(1000, 2000)
    for mode in (ft.TQ_SCAN_EXACT, ft.TQ_SCAN_INT8):
        _, I = ivf.search(xq, 10, params=params(scan_mode=mode, sel=sel))
        assert ((I >= 1000) & (I < 2000)).all()


def test_bad_options_raise(ivf, xq):
    for kw, word in [(dict(rerank_factor=float("nan")), "rerank_factor"),
                     (dict(rerank_factor=-1), "rerank_factor"),
                     (dict(scan_mode=5), "scan_mode")]:
        with pytest.raises(RuntimeError, match=word):
            ivf.search(xq, 10, params=params(**kw))


def test_parameter_space_sets_ivf_defaults():
    wrapped = ft.index_factory(D, "IDMap,IVF16,TQmse4")
    ivf = ft.downcast_index(faiss.extract_index_ivf(wrapped))
    assert isinstance(ivf, ft.IndexIVFTurboQuant)
    ps = ft.ParameterSpace()
    ps.set_index_parameters(wrapped, "nprobe=5,rerank_factor=2,scan_mode=0")
    assert ivf.nprobe == 5
    assert ivf.search_defaults.rerank_factor == 2
    assert ivf.search_defaults.scan_mode == ft.TQ_SCAN_EXACT
    assert ft.parameters.turbo_flat_indexes(wrapped) == []
    with pytest.raises(RuntimeError, match="rerank_factor"):
        ps.set_index_parameter(wrapped, "rerank_factor", -1)
