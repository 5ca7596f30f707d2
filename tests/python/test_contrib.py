"""faiss.contrib on TurboQuant indexes (with faiss_turbo.install()):
evaluation, ivf_tools, inspect_tools, exhaustive_search, ondisk."""

import faiss
import numpy as np
import pytest
from faiss.contrib import evaluation, exhaustive_search, inspect_tools
from faiss.contrib import ivf_tools, ondisk

import faiss_turbo as ft
from tq_util import brute_force, clustered

D = 24


@pytest.fixture(autouse=True)
def installed():
    ft.install()
    yield
    ft.uninstall()


@pytest.fixture(scope="module")
def data():
    return clustered(2000, D, 60), clustered(30, D, 61)


def ivf_index(xb, key="IVF16,TQmse4"):
    index = faiss.index_factory(D, key)
    index.train(xb)
    return index


def test_evaluation_knn_and_range(data):
    xb, xq = data
    k = 10
    _, gt = brute_force(xb, xq, k)
    index = ivf_index(xb)
    index.add(xb)
    recalls = []
    for nprobe in (1, 16):
        index.nprobe = nprobe
        _, I = index.search(xq, k)
        recalls.append(evaluation.knn_intersection_measure(I, gt))
        assert evaluation.knn_intersection_measure(I, I) == 1
    assert 0 < recalls[0] <= recalls[1] <= 1
    flat = faiss.index_factory(D, "TQmse4")
    flat.add(xb)

    # range search against the exact ground truth of exhaustive_search
    Dgt, _ = brute_force(xb, xq, 20)
    radius = float(np.median(Dgt[:, -1]))
    lims_ref, _, I_ref = exhaustive_search.range_ground_truth(
        xq, iter([xb]), radius)
    lims, _, Ir = flat.range_search(xq, radius)
    precision, recall = evaluation.range_PR(lims_ref, I_ref, lims, Ir)
    assert 0.5 < precision <= 1 and 0.5 < recall <= 1
    assert evaluation.range_PR(lims, Ir, lims, Ir) == (1, 1)


def test_ivf_tools_preassigned(data):
    xb, xq = data
    k = 5
    index = ivf_index(xb)
    reference = faiss.clone_index(index)
    reference.add(xb)

    _, assign = index.quantizer.search(xb, 1)
    ivf_tools.add_preassigned(index, xb, assign.ravel())
    assert index.ntotal == len(xb)
    index.nprobe = reference.nprobe = 4
    Dref, Iref = reference.search(xq, k)
    np.testing.assert_array_equal(index.search(xq, k)[1], Iref)

    coarse_dis, list_nos = index.quantizer.search(xq, index.nprobe)
    D2, I2 = ivf_tools.search_preassigned(index, xq, k, list_nos, coarse_dis)
    np.testing.assert_array_equal(I2, Iref)
    np.testing.assert_allclose(D2, Dref, rtol=1e-5)
    lims, Dr, Ir = ivf_tools.range_search_preassigned(
        index, xq, float(np.median(Dref[:, -1])), list_nos, coarse_dis)
    lims0, Dr0, Ir0 = index.range_search(xq, float(np.median(Dref[:, -1])))
    np.testing.assert_array_equal(lims, lims0)
    assert sorted(Ir) == sorted(Ir0)


def test_inspect_tools_invlists(data):
    xb, _ = data
    index = ivf_index(xb)
    ids = np.arange(len(xb), dtype=np.int64)  # the direct map needs these
    index.add(xb)
    ivf = faiss.extract_index_ivf(index)
    sizes = inspect_tools.get_invlist_sizes(ivf.invlists)
    _, assign = ivf.quantizer.search(xb, 1)
    np.testing.assert_array_equal(
        sizes, np.bincount(assign.ravel(), minlength=ivf.nlist))
    ivf.make_direct_map()
    assert ivf.coarse_code_size() == 1  # nlist = 16
    for list_no in (0, int(np.argmax(sizes))):
        list_ids, codes = inspect_tools.get_invlist(ivf.invlists, list_no)
        np.testing.assert_array_equal(
            np.sort(list_ids), ids[assign.ravel() == list_no])
        assert codes.shape == (sizes[list_no], ivf.code_size)
        # the stored codes, behind their list number, decode to the
        # index's own reconstructions
        prefixed = np.hstack(
            [np.full((len(codes), 1), list_no, dtype=np.uint8), codes])
        np.testing.assert_array_equal(
            ivf.sa_decode(prefixed),
            np.vstack([ivf.reconstruct(int(i)) for i in list_ids]))


def test_exhaustive_search_max_results(data):
    xb, xq = data
    flat = faiss.index_factory(D, "TQmse4")
    flat.add(xb)
    Dgt, _ = brute_force(xb, xq, 50)
    radius = float(Dgt[:, -1].max())
    _, Dall, _ = flat.range_search(xq, radius)
    new_radius, lims, Dr, Ir = exhaustive_search.range_search_max_results(
        flat, iter([xq[:15], xq[15:]]), radius,
        max_results=len(Dall) // 2, min_results=len(Dall) // 4)
    assert new_radius < radius
    assert len(Dall) // 4 <= len(Ir) <= len(Dall) // 2
    assert (Dr < new_radius).all()


def test_ondisk_merge(data, tmp_path):
    """merge_ondisk: shards read under IO_FLAG_MMAP (faiss-turbo files are
    read into memory), lists merged into OnDiskInvertedLists, which our IVF
    searches through the InvertedLists interface"""
    xb, xq = data
    k = 10
    trained = ivf_index(xb)
    trained_fn = str(tmp_path / "trained.index")
    faiss.write_index(trained, trained_fn)
    shard_fns = []
    for i, part in enumerate(np.array_split(np.arange(len(xb)), 3)):
        shard = faiss.read_index(trained_fn)
        shard.add_with_ids(xb[part], part.astype(np.int64))
        shard_fns.append(str(tmp_path / ("shard%d.index" % i)))
        faiss.write_index(shard, shard_fns[-1])

    index = faiss.read_index(trained_fn)
    ondisk.merge_ondisk(index, shard_fns, str(tmp_path / "merged.ivfdata"))
    assert index.ntotal == len(xb)
    assert isinstance(faiss.downcast_InvertedLists(index.invlists),
                      faiss.OnDiskInvertedLists)

    whole = faiss.read_index(trained_fn)
    whole.add(xb)
    for idx in (index, whole):
        idx.nprobe = 4
    D1, I1 = index.search(xq, k)
    D2, I2 = whole.search(xq, k)
    np.testing.assert_array_equal(I1, I2)
    np.testing.assert_array_equal(D1, D2)

    # written back, the on-disk lists are stored inline in our format
    fn = str(tmp_path / "merged.index")
    faiss.write_index(index, fn)
    back = faiss.read_index(fn)
    back.nprobe = 4
    np.testing.assert_array_equal(back.search(xq, k)[1], I2)
