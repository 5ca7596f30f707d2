"""IndexTurboQuant from Python: numpy in and out, search against brute force
over the decoded vectors, bit-exact codec round trips, thread independence."""

import gc

import faiss
import numpy as np
import pytest

import faiss_turbo as ft
from tq_util import brute_force, gaussian


@pytest.fixture
def omp_threads():
    """restores the OpenMP thread count a test changes"""
    saved = faiss.omp_get_max_threads()
    yield
    faiss.omp_set_num_threads(saved)


def test_is_a_faiss_index():
    index = ft.IndexTurboQuant(16, 4)
    assert isinstance(index, faiss.IndexFlatCodes)
    assert isinstance(index, faiss.Index)
    assert index.d == 16 and index.ntotal == 0 and index.is_trained
    assert index.code_size == index.tq.code_size == index.sa_code_size()


def test_constructor_keywords_and_enums():
    index = ft.IndexTurboQuant(
        40, 3, variant=ft.TQVariant.PROD,
        metric=faiss.METRIC_INNER_PRODUCT,
        rotation_type=ft.RotationType.HADAMARD,
        qjl_type=ft.QJLType.HADAMARD, seed=99)
    tq = index.tq
    assert index.metric_type == faiss.METRIC_INNER_PRODUCT
    assert tq.d == 40 and tq.bits == 3 and tq.seed == 99
    assert tq.variant == ft.TQVariant.PROD
    assert tq.rotation_type == ft.RotationType.HADAMARD
    assert tq.qjl_type == ft.QJLType.HADAMARD
    assert not tq.debiased  # PROD is never debiased
    assert "PROD" in tq.layout_string()
    # PROD at 3 bits: 2-bit MSE indices, d sign bits, norm and gamma
    assert tq.code_size == 40 * 2 // 8 + 40 // 8 + 8


def test_codec_fields_are_read_only():
    index = ft.IndexTurboQuant(16, 4)
    with pytest.raises(AttributeError):
        index.tq.bits = 2
    with pytest.raises(AttributeError):
        index.centered = True


def test_codec_view_keeps_index_alive():
    index = ft.IndexTurboQuant(16, 4)
    index.add(gaussian(10, 16, 0))
    tq = index.tq
    del index
    gc.collect()
    assert tq.code_size == 16 * 4 // 8 + 8  # debiased by default: + beta
    assert tq.decode(tq.encode(gaussian(3, 16, 1))).shape == (3, 16)


@pytest.mark.parametrize("metric", [faiss.METRIC_L2,
                                    faiss.METRIC_INNER_PRODUCT])
@pytest.mark.parametrize("bits", [2, 4])
def test_search_equals_brute_force_over_decoded(metric, bits):
    """plain TQmse scores are distances to (inner products with) the
    decoded vectors, so the search is a brute force over them"""
    d, nb, nq, k = 32, 2000, 50, 10
    xb, xq = gaussian(nb, d, 1), gaussian(nq, d, 2)
    index = ft.IndexTurboQuant(d, bits, metric=metric, debiased=False)
    index.add(xb)
    assert index.ntotal == nb
    D, I = index.search(xq, k)
    assert D.shape == (nq, k) and D.dtype == np.float32
    assert I.shape == (nq, k) and I.dtype == np.int64

    decoded = index.reconstruct_n(0, nb)
    l2 = metric == faiss.METRIC_L2
    Dref, Iref = brute_force(decoded, xq, k, l2)
    np.testing.assert_allclose(D, Dref, rtol=1e-4, atol=1e-3)
    # each returned score is the score of the returned label's decoded
    # vector, and labels differ from brute force only at near-ties
    dec = decoded.astype(np.float64)
    q = xq.astype(np.float64)[:, None, :]
    if l2:
        own = ((dec[I] - q) ** 2).sum(-1)
    else:
        own = (dec[I] * q).sum(-1)
    np.testing.assert_allclose(D, own, rtol=1e-4, atol=1e-3)
    assert (I == Iref).mean() > 0.98


@pytest.mark.parametrize("desc", ["TQmse4", "TQmse4fs", "TQprod3", "TQmse2"])
def test_tiny_queries_rank_as_unit_queries(desc):
    """unit queries scaled by 2^-128 (entries below float's normal range,
    so the query quantizers' scales are subnormal and their reciprocals
    overflow) find what the unit queries find, their scores scaled down;
    one query alone (the direct scan) and with the sign pre-scan too"""
    d, nb, nq, k = 64, 3000, 20, 10
    xb = gaussian(nb, d, 5)
    xq = gaussian(nq, d, 6)
    xq /= np.linalg.norm(xq, axis=1, keepdims=True)
    tiny = np.float32(2.0 ** -128)
    index = ft.index_factory(d, desc, faiss.METRIC_INNER_PRODUCT)
    index.add(xb)
    params = [None]
    if ft.prescan_supported():
        params.append(ft.SearchParametersTurboQuant(prescan=300))
    for p in params:
        for n in (nq, 1):
            D0, I0 = index.search(xq[:n], k, params=p)
            D, I = index.search(xq[:n] * tiny, k, params=p)
            assert (I == I0).mean() > 0.95, (p, n)
            np.testing.assert_allclose(D / tiny, D0, rtol=1e-3,
                                       atol=1e-3 * np.abs(D0).max())


def test_range_search_agrees_with_search():
    d, nb, nq, k = 24, 1000, 20, 5
    xb, xq = gaussian(nb, d, 3), gaussian(nq, d, 4)
    index = ft.IndexTurboQuant(d, 4, debiased=False)
    index.add(xb)
    D, I = index.search(xq, k)
    # radius between the k-th and (k+1)-th scores: exactly the top k
    D2, _ = index.search(xq, k + 1)
    for i in range(nq):
        radius = (D2[i, k - 1] + D2[i, k]) / 2
        lims, Dr, Ir = index.range_search(xq[i:i + 1], radius)
        assert sorted(Ir) == sorted(I[i])
        np.testing.assert_array_equal(np.sort(Dr), D[i])


def test_fewer_than_k_results():
    index = ft.IndexTurboQuant(8, 4)
    index.add(gaussian(3, 8, 0))
    D, I = index.search(gaussian(2, 8, 1), 5)
    assert (I[:, 3:] == -1).all()
    assert np.isinf(D[:, 3:]).all()
    assert sorted(I[0, :3]) == [0, 1, 2]


@pytest.mark.parametrize("desc", ["TQmse4", "TQprod3", "TQ2.5", "TQmse1"])
def test_sa_codes_round_trip(desc):
    d, n = 48, 300
    x = gaussian(n, d, 5)
    index = ft.index_factory(d, desc)
    codes = index.sa_encode(x)
    assert codes.shape == (n, index.sa_code_size())
    assert codes.dtype == np.uint8
    # encoding is deterministic, bit for bit
    np.testing.assert_array_equal(codes, index.sa_encode(x))
    # add stores exactly the sa_encode codes
    index.add(x)
    stored = faiss.vector_to_array(index.codes).reshape(n, -1)
    np.testing.assert_array_equal(stored, codes)
    # reconstruct is sa_decode of the stored codes, bit for bit
    decoded = index.sa_decode(stored)
    np.testing.assert_array_equal(index.reconstruct_n(0, n), decoded)
    np.testing.assert_array_equal(index.reconstruct(7), decoded[7])
    np.testing.assert_array_equal(
        index.reconstruct_batch(np.array([4, 1])), decoded[[4, 1]])
    # the codec seen through index.tq is the same codec
    np.testing.assert_array_equal(index.tq.encode(x), codes)
    np.testing.assert_array_equal(index.tq.decode(codes), decoded)


def test_reconstruction_error_falls_with_bits():
    d, n = 64, 500
    x = gaussian(n, d, 6)
    errs = []
    for bits in [1, 2, 3, 4]:
        index = ft.IndexTurboQuant(d, bits, debiased=False)
        r = index.sa_decode(index.sa_encode(x))
        errs.append(((r - x) ** 2).sum() / (x ** 2).sum())
    assert all(a > b for a, b in zip(errs, errs[1:])), errs


def test_add_in_batches_equals_add_at_once():
    x = gaussian(200, 16, 7)
    a, b = ft.IndexTurboQuant(16, 3), ft.IndexTurboQuant(16, 3)
    a.add(x)
    b.add(x[:50])
    b.add(x[50:])
    np.testing.assert_array_equal(faiss.vector_to_array(a.codes),
                                  faiss.vector_to_array(b.codes))


def test_reset_and_remove_ids():
    x = gaussian(100, 16, 8)
    index = ft.IndexTurboQuant(16, 4)
    index.add(x)
    assert index.remove_ids(np.arange(10, dtype=np.int64)) == 10
    assert index.ntotal == 90
    ref = ft.IndexTurboQuant(16, 4)
    ref.add(x[10:])
    np.testing.assert_array_equal(index.reconstruct_n(0, 90),
                                  ref.reconstruct_n(0, 90))
    index.reset()
    assert index.ntotal == 0


@pytest.mark.parametrize("desc", ["TQmse4", "TQprod3", "TQ2.5c"])
def test_same_results_with_1_and_2_threads(desc, omp_threads):
    d, nb, nq, k = 64, 3000, 64, 10
    xb, xq = gaussian(nb, d, 9), gaussian(nq, d, 10)
    results = []
    for nt in [1, 2]:
        faiss.omp_set_num_threads(nt)
        index = ft.index_factory(d, desc)
        index.train(xb)
        index.add(xb)
        D, I = index.search(xq, k)
        results.append((faiss.vector_to_array(index.codes), D, I))
    for a, b in zip(*results):
        np.testing.assert_array_equal(a, b)


def test_centered_mean_is_the_training_mean():
    x = gaussian(400, 16, 11) + 3
    index = ft.index_factory(16, "TQmse4c")
    assert not index.is_trained and index.centered
    assert index.tq.mean.size == 0
    index.train(x)
    assert index.is_trained
    np.testing.assert_allclose(index.tq.mean, x.astype(np.float64).mean(0),
                               rtol=1e-6)


def test_centered_inner_products_store_the_mean_offset():
    """TQmse2c by inner product stores <mean, x - mean> (ip_offset): 4 more
    bytes, kept through a file; recall on vectors that share a large common
    direction (test_index.cpp compares it with the codes alone: 0.28)"""
    d, n = 64, 3000
    common = gaussian(1, d, 30)
    x = common + 0.5 * gaussian(n, d, 31)
    x /= np.linalg.norm(x, axis=1, keepdims=True)
    q = common + 0.5 * gaussian(100, d, 32)
    q /= np.linalg.norm(q, axis=1, keepdims=True)
    ip = ft.index_factory(d, "TQmse2c", faiss.METRIC_INNER_PRODUCT)
    l2 = ft.index_factory(d, "TQmse2c")
    assert ip.tq.ip_offset and not l2.tq.ip_offset
    assert ip.code_size == l2.code_size + 4
    ip.train(x)
    ip.add(x)
    back = ft.deserialize_index(ft.serialize_index(ip))
    assert back.tq.ip_offset
    D, I = ip.search(q, 10)
    D2, I2 = back.search(q, 10)
    assert np.array_equal(I, I2) and np.array_equal(D, D2)
    gt = np.argsort(-(q @ x.T), axis=1)[:, :10]
    recall = np.mean([len(set(a) & set(b)) / 10 for a, b in zip(I, gt)])
    print(f"10-recall@10 {recall:.3f}")
    assert recall > 0.5


def test_concurrent_searches_from_python_threads():
    """two Python threads searching one index (the GIL is released in the
    C++ call) get the single-threaded answer"""
    import threading
    xb, xq = gaussian(2000, 32, 12), gaussian(40, 32, 13)
    index = ft.IndexTurboQuant(32, 4)
    index.add(xb)
    ref = index.search(xq, 5)
    out = [None, None]

    def run(i):
        out[i] = index.search(xq, 5)

    threads = [threading.Thread(target=run, args=(i,)) for i in range(2)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    for D, I in out:
        np.testing.assert_array_equal(D, ref[0])
        np.testing.assert_array_equal(I, ref[1])


def test_standalone_codec_is_the_index_codec():
    """one codec: a TurboQuantizer with the index's parameters encodes
    exactly as the index does"""
    x = gaussian(100, 40, 14)
    index = ft.IndexTurboQuant(40, 3.5, ft.TQVariant.PROD, seed=77)
    tq = ft.TurboQuantizer(40, ft.TQVariant.PROD, 3.5, seed=77)
    assert tq.code_size == index.code_size
    assert tq.layout_string() == index.tq.layout_string()
    np.testing.assert_array_equal(tq.encode(x), index.sa_encode(x))
    other_seed = ft.TurboQuantizer(40, ft.TQVariant.PROD, 3.5, seed=78)
    assert (other_seed.encode(x) != index.sa_encode(x)).any()
