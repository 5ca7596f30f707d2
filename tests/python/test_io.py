"""Writing and reading from Python: round trips are exact, plain FAISS
indexes keep FAISS's format, bad bytes raise."""

import pickle

import faiss
import numpy as np
import pytest

import faiss_turbo as ft
from tq_util import gaussian

D = 24


def filled(desc, n=600):
    index = ft.index_factory(D, desc)
    x = gaussian(n, D, 60)
    index.train(x)
    index.add(x)
    return index


@pytest.mark.parametrize("desc", ["TQmse4", "TQprod3c", "IVF8,TQ2.5",
                                  "PCA16,TQmse4", "HNSW8,TQmse2"])
def test_serialize_round_trip(desc):
    index = filled(desc)
    xq = gaussian(20, D, 61)
    data = ft.serialize_index(index)
    assert data.dtype == np.uint8
    back = ft.deserialize_index(data)
    assert type(back) is type(index)
    assert back.ntotal == index.ntotal
    for a, b in zip(index.search(xq, 5), back.search(xq, 5)):
        np.testing.assert_array_equal(a, b)
    # writing what was read gives the same bytes
    np.testing.assert_array_equal(ft.serialize_index(back), data)


def test_flat_codes_survive(tmp_path):
    index = filled("TQmse4c")
    fn = str(tmp_path / "index.ftq")
    ft.write_index(index, fn)
    back = ft.read_index(fn)
    assert isinstance(back, ft.IndexTurboQuant) and back.centered
    np.testing.assert_array_equal(faiss.vector_to_array(back.codes),
                                  faiss.vector_to_array(index.codes))
    np.testing.assert_array_equal(back.tq.mean, index.tq.mean)


def test_pickle():
    for desc in ["TQprod4", "IVF8,TQmse3"]:
        index = filled(desc)
        back = pickle.loads(pickle.dumps(index))
        assert type(back) is type(index)
        xq = gaussian(5, D, 62)
        np.testing.assert_array_equal(index.search(xq, 3)[1],
                                      back.search(xq, 3)[1])


def test_clone_is_independent():
    index = filled("TQmse4")
    copy = ft.clone_index(index)
    assert isinstance(copy, ft.IndexTurboQuant)
    copy.add(gaussian(10, D, 63))
    assert copy.ntotal == index.ntotal + 10


def test_plain_faiss_index_stays_faiss():
    index = faiss.index_factory(D, "PCA8,SQ8")
    x = gaussian(300, D, 64)
    index.train(x)
    index.add(x)
    data = ft.serialize_index(index)
    assert not ft.index_contains_turbo(index)
    # FAISS's own format: faiss reads it
    back = faiss.deserialize_index(data)
    assert isinstance(back, faiss.IndexPreTransform)
    back2 = ft.deserialize_index(data)
    assert isinstance(back2, faiss.IndexPreTransform)
    np.testing.assert_array_equal(back.search(x[:4], 2)[1],
                                  back2.search(x[:4], 2)[1])


def test_bad_bytes_raise(tmp_path):
    data = ft.serialize_index(filled("TQmse4"))
    with pytest.raises(RuntimeError):
        ft.deserialize_index(data[: len(data) // 2])
    corrupt = data.copy()
    corrupt[len(data) // 2] ^= 0xFF
    with pytest.raises(RuntimeError):
        ft.deserialize_index(corrupt)
    with pytest.raises(RuntimeError):
        ft.deserialize_index(np.random.RandomState(0).randint(
            0, 256, size=1000).astype(np.uint8))
    with pytest.raises(RuntimeError):
        ft.read_index(str(tmp_path / "no_such_file"))


def test_read_flags_as_faiss(tmp_path):
    """IO_FLAG_MMAP does not apply to our files (read into memory), as FAISS
    ignores it on a flat index: faiss_turbo.read_index takes it, as the
    drop-in faiss.read_index did; a flag that would drop data is refused"""
    index = filled("IVF8,TQmse4")
    fname = str(tmp_path / "f.ftq")
    ft.write_index(index, fname)
    xq = gaussian(5, index.d, 9)
    for flags in (faiss.IO_FLAG_MMAP, faiss.IO_FLAG_READ_ONLY,
                  faiss.IO_FLAG_ONDISK_SAME_DIR):
        back = ft.read_index(fname, flags)
        assert np.array_equal(back.search(xq, 4)[1], index.search(xq, 4)[1])
    with pytest.raises(RuntimeError, match="not supported"):
        ft.read_index(fname, faiss.IO_FLAG_SKIP_IVF_DATA)
