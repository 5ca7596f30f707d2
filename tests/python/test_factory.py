"""faiss_turbo.index_factory: our strings give our classes, the others are
faiss's; the codebook helper."""

import faiss
import numpy as np
import pytest

import faiss_turbo as ft
from tq_util import gaussian


@pytest.mark.parametrize("desc, variant, bits, centered", [
    ("TQmse4", ft.TQVariant.MSE, 4, False),
    ("TQprod3", ft.TQVariant.PROD, 3, False),
    ("TQ2.5", ft.TQVariant.MSE, 2.5, False),
    ("TQmse4c", ft.TQVariant.MSE, 4, True),
    ("TQprod2.5c", ft.TQVariant.PROD, 2.5, True),
])
def test_turbo_strings(desc, variant, bits, centered):
    d = 64
    index = ft.index_factory(d, desc)
    assert isinstance(index, ft.IndexTurboQuant)
    assert index.d == d and index.metric_type == faiss.METRIC_L2
    tq = index.tq
    assert tq.variant == variant and tq.bits == bits
    assert index.centered == centered
    # centered indexes learn their mean first
    assert index.is_trained == (not centered)
    assert index.code_size == tq.code_size
    # the layout in bits: b bits per coordinate (PROD: the sign bit is one
    # of them), then float32 scalars
    n_floats = 2 if (variant == ft.TQVariant.PROD or tq.debiased) else 1
    assert tq.code_size == int(np.ceil(d * bits / 8)) + 4 * n_floats

    x = gaussian(200, d, 30)
    if centered:
        with pytest.raises(RuntimeError, match="train"):
            index.add(x)
        index.train(x)
        assert index.is_trained
    index.add(x)
    _, I = index.search(x[:5], 1)
    assert I.shape == (5, 1)


def test_fractional_split():
    """TQ2.5 at d=64: half the coordinates at 3 bits, half at 2"""
    tq = ft.index_factory(64, "TQ2.5").tq
    assert (tq.n_hi, tq.b_hi, tq.b_lo) == (32, 3, 2)


def test_metric_is_passed():
    index = ft.index_factory(32, "TQprod4", faiss.METRIC_INNER_PRODUCT)
    assert index.metric_type == faiss.METRIC_INNER_PRODUCT
    index = ft.index_factory(32, "TQmse4", metric=faiss.METRIC_INNER_PRODUCT)
    assert index.metric_type == faiss.METRIC_INNER_PRODUCT


@pytest.mark.parametrize("desc, cls", [
    ("Flat", faiss.IndexFlat),
    ("PCA16,Flat", faiss.IndexPreTransform),
    ("ITQ32,SQ8", faiss.IndexPreTransform),
    ("IVF8,SQ8", faiss.IndexIVFScalarQuantizer),
    ("IDMap,Flat", faiss.IndexIDMap),
])
def test_faiss_strings_go_to_faiss(desc, cls):
    index = ft.index_factory(64, desc)
    assert isinstance(index, cls)
    assert type(index).__module__.startswith("faiss.")
    assert not isinstance(index, ft.IndexTurboQuant)
    # a normal faiss object: trains, adds and searches
    x = gaussian(500, 64, 31)
    index.train(x)
    if isinstance(index, faiss.IndexIDMap):
        index.add_with_ids(x, np.arange(500, dtype=np.int64))
    else:
        index.add(x)
    _, I = index.search(x[:3], 1)
    assert (I[:, 0] == np.arange(3)).all()


@pytest.mark.parametrize("desc, outer", [
    ("IVF16,TQmse4", ft.IndexIVFTurboQuant),
    ("PCA32,TQmse4", faiss.IndexPreTransform),
    ("IDMap,TQprod3", faiss.IndexIDMap),
    ("HNSW16,TQ2.5", faiss.IndexHNSW),
    ("TQmse2c,RFlat", faiss.IndexRefine),
])
def test_composite_strings(desc, outer):
    """our tokens inside FAISS's grammar: the outer index has its most
    derived Python class, and ours is inside"""
    index = ft.index_factory(64, desc)
    assert isinstance(index, outer)
    assert ft.index_contains_turbo(index)
    x = gaussian(1000, 64, 32)
    index.train(x)
    if isinstance(index, faiss.IndexIDMap):
        index.add_with_ids(x, np.arange(1000, dtype=np.int64) + 5)
    else:
        index.add(x)
    assert index.ntotal == 1000
    _, I = index.search(x[:10], 3)
    assert I.shape == (10, 3) and (I >= 0).all()
    assert not ft.index_contains_turbo(faiss.index_factory(64, "PCA32,Flat"))


@pytest.mark.parametrize("desc", ["TQ9", "TQmse0", "TQ2.55", "TQmse4x",
                                  "PCA16,TQfoo", "IVF16,TQ", "Flatt"])
def test_bad_strings_raise(desc):
    with pytest.raises(RuntimeError):
        ft.index_factory(64, desc)


def test_bad_factory_arguments_raise():
    with pytest.raises(RuntimeError):
        ft.index_factory(0, "TQmse4")
    with pytest.raises(RuntimeError):
        ft.index_factory(1, "TQmse4")
    with pytest.raises(RuntimeError):
        ft.index_factory(16, "TQmse4", faiss.METRIC_L1)
    with pytest.raises(ValueError):
        ft.index_factory(16, None)
    # not a SWIG overload error: the C++ factory's d is an int
    with pytest.raises(ValueError, match="d=1099511627776 does not fit"):
        ft.index_factory(2**40, "TQmse4")
    with pytest.raises(ValueError, match="d must be an int"):
        ft.index_factory(16.0, "TQmse4")


def test_parse_tq_token():
    spec = ft.TQSpec()
    assert ft.parse_tq_token("TQprod3.5c", spec)
    assert spec.variant == ft.TQVariant.PROD
    assert spec.bits == 3.5 and spec.centered
    assert not ft.parse_tq_token("SQ8", spec)


@pytest.mark.parametrize("d, nbits", [(16, 1), (128, 2), (300, 3)])
def test_lloyd_max_codebook(d, nbits):
    cb = ft.get_lloyd_max_codebook(d, nbits)
    c, t = cb.centroids, cb.thresholds
    assert c.shape == (2 ** nbits,) and t.shape == (2 ** nbits - 1,)
    assert (np.diff(c) > 0).all()
    # the law is symmetric, and so is its Lloyd-Max quantizer
    np.testing.assert_allclose(c, -c[::-1], atol=1e-6)
    # Lloyd-Max: the boundaries are the midpoints of the centroids
    np.testing.assert_allclose(t, (c[1:] + c[:-1]) / 2, atol=1e-6)
    assert 0 < cb.mse < 1 / d  # better than coding every coordinate as 0


def test_one_bit_codebook_against_theory():
    """for large d a coordinate is ~ N(0, 1/d), whose 1-bit Lloyd-Max
    centroids are +-E|X| = +-sqrt(2 / (pi d)), with mse (1 - 2/pi) / d"""
    d = 4096
    cb = ft.get_lloyd_max_codebook(d, 1)
    np.testing.assert_allclose(cb.centroids[1], np.sqrt(2 / (np.pi * d)),
                               rtol=1e-3)
    np.testing.assert_allclose(cb.mse, (1 - 2 / np.pi) / d, rtol=1e-3)


def test_bad_codebook_arguments_raise():
    with pytest.raises(RuntimeError):
        ft.get_lloyd_max_codebook(1, 2)
    with pytest.raises(RuntimeError):
        ft.get_lloyd_max_codebook(16, 9)
    # int() would make 2.5 bits a 2-bit codebook without a word
    with pytest.raises(ValueError, match="nbits must be an int"):
        ft.get_lloyd_max_codebook(16, 2.5)
    with pytest.raises(ValueError, match="d must be an int"):
        ft.get_lloyd_max_codebook(4.7, 2)
