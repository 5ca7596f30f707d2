"""faiss_turbo.install(): FAISS's own functions and Python test patterns on
TurboQuant factory strings; faiss unchanged for its own indexes, and
exactly itself again after uninstall()."""

import copy
import gc
import pickle
import sys

import faiss
import numpy as np
import pytest
from faiss import class_wrappers

import faiss_turbo as ft
from faiss_turbo import dropin as dropin
from tq_util import brute_force, clustered, recall_at

D = 32


@pytest.fixture
def installed():
    ft.install()
    yield
    ft.uninstall()


@pytest.fixture(scope="module")
def data():
    xt = clustered(1000, D, 40)
    xb = clustered(1500, D, 41)
    xq = clustered(40, D, 42)
    return xt, xb, xq


def built(key, data, metric=faiss.METRIC_L2):
    xt, xb, _ = data
    index = faiss.index_factory(D, key, metric)
    index.train(xt)
    if isinstance(index, (faiss.IndexIDMap, faiss.IndexIDMap2)):
        index.add_with_ids(xb, np.arange(len(xb), dtype=np.int64) * 2 + 1)
    else:
        index.add(xb)
    return index


def faiss_functions():
    """every (module, name) holding one of the replaced functions"""
    found = {}
    for name in dropin.PATCHED_NAMES:
        found[(faiss, name)] = getattr(faiss, name)
    found[(class_wrappers, "try_extract_index_ivf")] = \
        class_wrappers.try_extract_index_ivf
    return found


###########################################################
# install / uninstall
###########################################################


def test_uninstall_restores_the_same_objects():
    before = faiss_functions()
    original = faiss.index_factory
    ft.install()
    try:
        assert ft.is_installed()
        for (module, name), f in before.items():
            assert getattr(module, name) is not f, name
        ft.install()  # a second install changes nothing
        assert dropin.faiss_original("index_factory") is original
    finally:
        ft.uninstall()
    assert not ft.is_installed()
    assert faiss.index_factory is original
    for (module, name), f in before.items():
        assert getattr(module, name) is f, name
    ft.uninstall()  # a no-op
    assert faiss.index_factory is original


def test_names_imported_from_faiss_are_patched_and_restored():
    """a module that did `from faiss import read_index` before install()"""
    module = type(sys)("faiss.contrib._turbo_probe")
    module.read_index = faiss.read_index
    module.index_factory = faiss.index_factory
    sys.modules[module.__name__] = module
    try:
        ft.install()
        assert module.read_index is faiss.read_index
        index = module.index_factory(D, "TQmse4")
        assert isinstance(index, ft.IndexTurboQuant)
        ft.uninstall()
        assert module.read_index is dropin.faiss_original("read_index")
    finally:
        ft.uninstall()
        del sys.modules[module.__name__]


def test_another_patch_after_install_is_left_alone():
    original = faiss.read_index
    ft.install()

    def theirs(*args):
        return None

    faiss.read_index = theirs
    ft.uninstall()
    assert faiss.read_index is theirs
    faiss.read_index = original


def test_without_install_faiss_does_not_know_our_types():
    """why install() exists: FAISS's functions reject or flatten ours"""
    index = ft.index_factory(D, "IDMap,TQmse4")
    with pytest.raises(RuntimeError):
        faiss.serialize_index(index)
    with pytest.raises(RuntimeError):
        pickle.dumps(index)
    with pytest.raises(RuntimeError):
        faiss.index_factory(D, "IVF16,TQmse4")


###########################################################
# FAISS's own indexes: as before
###########################################################


FAISS_KEYS = ["Flat", "IVF16,Flat", "IDMap,SQ8", "PCA16,IVF16,SQ8",
              "HNSW8,Flat", "IVF16,Flat,RFlat"]


@pytest.mark.parametrize("key", FAISS_KEYS)
def test_faiss_indexes_unchanged(installed, data, key, tmp_path):
    orig = dropin.faiss_original
    _, _, xq = data
    index = built(key, data)
    ref = orig("index_factory")(D, key)
    assert type(index) is type(ref)
    assert type(faiss.downcast_index(index)) is \
        type(orig("downcast_index")(index))
    assert type(faiss.try_extract_index_ivf(index)) is \
        type(orig("try_extract_index_ivf")(index))

    blob = faiss.serialize_index(index)
    np.testing.assert_array_equal(blob, orig("serialize_index")(index))
    back = faiss.deserialize_index(blob)
    assert type(back) is type(orig("deserialize_index")(blob))
    fn = str(tmp_path / "x.index")
    faiss.write_index(index, fn)
    np.testing.assert_array_equal(np.fromfile(fn, dtype=np.uint8), blob)
    assert type(faiss.read_index(fn)) is type(orig("read_index")(fn))
    copies = [back, faiss.read_index(fn)]
    try:
        copies.append(faiss.clone_index(index))
        assert type(copies[-1]) is type(orig("clone_index")(index))
    except RuntimeError as e:  # FAISS 1.7.3 cannot clone IndexRefine
        with pytest.raises(RuntimeError, match=str(e)[-30:]):
            orig("clone_index")(index)
    for other in copies:
        np.testing.assert_array_equal(other.search(xq, 5)[1],
                                      index.search(xq, 5)[1])


def test_faiss_errors_unchanged(installed):
    for f, args in [(faiss.index_factory, (D, "IVF16,Flut")),
                    (faiss.read_index, ("/nonexistent/x.index",)),
                    (faiss.extract_index_ivf, (faiss.IndexFlatL2(D),))]:
        original = dropin.faiss_original(f.__name__)
        with pytest.raises(RuntimeError) as ours:
            f(*args)
        with pytest.raises(RuntimeError) as theirs:
            original(*args)
        assert str(ours.value) == str(theirs.value)


###########################################################
# our strings through FAISS's functions (FAISS's test_factory, test_io)
###########################################################


def test_factory_parse(installed):
    index = faiss.index_factory(D, "TQmse4")
    assert isinstance(index, ft.IndexTurboQuant)
    assert index.metric_type == faiss.METRIC_L2

    index = faiss.index_factory(D, "IVF16,TQprod3", faiss.METRIC_INNER_PRODUCT)
    assert isinstance(index, ft.IndexIVFTurboQuant)
    assert (index.nlist, index.metric_type) == (16, faiss.METRIC_INNER_PRODUCT)

    index = faiss.index_factory(D, "IVF16_HNSW8,TQmse4")
    ivf = faiss.extract_index_ivf(index)
    assert isinstance(ivf, ft.IndexIVFTurboQuant)
    assert isinstance(faiss.downcast_index(ivf.quantizer), faiss.IndexHNSWFlat)

    index = faiss.index_factory(D, "PCA16,IVF16,TQ2.5")
    assert isinstance(index, faiss.IndexPreTransform)
    ivf = faiss.extract_index_ivf(index)
    assert isinstance(ivf, ft.IndexIVFTurboQuant) and ivf.d == 16

    index = faiss.index_factory(D, "IDMap2,TQmse4")
    assert isinstance(index, faiss.IndexIDMap2)
    assert isinstance(faiss.downcast_index(index.index), ft.IndexTurboQuant)
    assert faiss.try_extract_index_ivf(index) is None

    index = faiss.index_factory(D, "HNSW8,TQmse4")
    assert isinstance(faiss.downcast_index(index), faiss.IndexHNSW)
    assert isinstance(faiss.downcast_index(index.storage), ft.IndexTurboQuant)

    index = faiss.index_factory(D, "TQmse2,RFlat")
    assert isinstance(index, faiss.IndexRefine)  # FAISS's downcast says so
    assert isinstance(faiss.downcast_index(index.base_index),
                      ft.IndexTurboQuant)

    with pytest.raises(RuntimeError, match="TQmse9"):
        faiss.index_factory(D, "IVF16,TQmse9")


IO_KEYS = ["TQmse4", "IVF16,TQmse4", "IDMap2,IVF16,TQprod3",
           "PCA16,IVF16,TQ2.5", "TQmse2,RFlat", "HNSW8,TQmse4"]


@pytest.mark.parametrize("key", IO_KEYS)
def test_io_round_trip(installed, data, key, tmp_path):
    _, _, xq = data
    index = built(key, data)
    Dref, Iref = index.search(xq, 10)
    fn = str(tmp_path / "x.index")
    faiss.write_index(index, fn)
    reader = faiss.VectorIOReader()
    faiss.copy_array_to_vector(np.fromfile(fn, dtype=np.uint8), reader.data)
    copies = [faiss.read_index(fn), faiss.read_index(reader),
              faiss.deserialize_index(faiss.serialize_index(index)),
              faiss.clone_index(index)]
    for other in copies:
        assert type(other) is type(index)
        D2, I2 = other.search(xq, 10)
        np.testing.assert_array_equal(I2, Iref)
        np.testing.assert_array_equal(D2, Dref)


def test_read_through_unpeekable_reader(installed, data, tmp_path):
    """a reader that cannot be peeked at goes to faiss-turbo's reader,
    which takes both formats"""
    fns = []
    for key in ["IVF16,TQmse4", "IVF16,Flat"]:
        fns.append(str(tmp_path / ("%d.index" % len(fns))))
        faiss.write_index(built(key, data), fns[-1])
    kinds = []
    for fn in fns:
        reader = faiss.BufferedIOReader(faiss.FileIOReader(fn))
        index = faiss.read_index(reader)
        kinds.append(type(faiss.extract_index_ivf(index)))
    assert kinds == [ft.IndexIVFTurboQuant, faiss.IndexIVF]


###########################################################
# FAISS's meta-index patterns
###########################################################


def test_idmap(installed, data):
    _, xb, xq = data
    ids = np.arange(len(xb), dtype=np.int64) * 3 + 7
    index = faiss.IndexIDMap(faiss.index_factory(D, "TQmse4"))
    gc.collect()
    index.add_with_ids(xb, ids)
    bare = faiss.index_factory(D, "TQmse4")
    bare.add(xb)
    np.testing.assert_array_equal(index.search(xq, 5)[1],
                                  ids[bare.search(xq, 5)[1]])
    assert index.remove_ids(ids[:10]) == 10
    assert faiss.downcast_index(index.index).ntotal == len(xb) - 10


def test_refine_improves_recall(installed, data):
    _, xb, xq = data
    _, gt = brute_force(xb, xq, 10)
    index = faiss.index_factory(D, "TQmse2,RFlat")
    index.add(xb)
    ps = faiss.ParameterSpace()
    ps.set_index_parameter(index, "k_factor_rf", 1)
    r1 = recall_at(index.search(xq, 10)[1], gt, 10)
    ps.set_index_parameter(index, "k_factor_rf", 8)
    r8 = recall_at(index.search(xq, 10)[1], gt, 10)
    assert r8 > r1


def test_shards_equal_one_index(installed, data):
    xt, xb, xq = data
    one = faiss.index_factory(D, "IVF16,TQmse4")
    one.train(xt)
    trained = faiss.serialize_index(one)
    one.add(xb)
    shards = faiss.IndexShards(D, False, True)
    for _ in range(3):
        shards.add_shard(faiss.deserialize_index(trained))
    gc.collect()
    shards.add(xb)
    ps = faiss.ParameterSpace()
    for nprobe in (1, 4):
        ps.set_index_parameters(shards, "nprobe=%d" % nprobe)
        ps.set_index_parameters(one, "nprobe=%d" % nprobe)
        D1, I1 = one.search(xq, 10)
        D2, I2 = shards.search(xq, 10)
        np.testing.assert_array_equal(I2, I1)
        np.testing.assert_array_equal(D2, D1)
    # pickled as FAISS pickles its IndexShards
    back = pickle.loads(pickle.dumps(shards))
    assert type(back) is faiss.IndexShards and back.ntotal == len(xb)
    np.testing.assert_array_equal(back.search(xq, 10)[1], I1)


def test_our_names_reach_every_shard(installed):
    shards = faiss.IndexShards(D, False, True)
    for _ in range(2):
        shards.add_shard(faiss.index_factory(D, "TQmse4"))
    ft.ParameterSpace().set_index_parameter(shards, "rerank_factor", 3)
    for i in range(shards.count()):
        sub = faiss.downcast_index(shards.at(i))
        assert sub.search_defaults.rerank_factor == 3


###########################################################
# ParameterSpace / AutoTune
###########################################################


def test_parameter_space_nprobe_through_wrappers(installed):
    """FAISS's C++ ParameterSpace reaches our IVF through dynamic_cast to
    its own IndexIVF (two copies of FAISS, types compared by name)"""
    ps = faiss.ParameterSpace()
    for key in ["IDMap,IVF16,TQmse4", "PCA16,IVF16,TQmse4"]:
        index = faiss.index_factory(D, key)
        ps.set_index_parameters(index, "nprobe=7")
        assert faiss.extract_index_ivf(index).nprobe == 7
    index = faiss.index_factory(D, "IVF16_HNSW8,TQmse4")
    ps.set_index_parameter(index, "quantizer_efSearch", 77)
    quantizer = faiss.downcast_index(faiss.extract_index_ivf(index).quantizer)
    assert quantizer.hnsw.efSearch == 77
    index = faiss.index_factory(D, "HNSW8,TQmse4")
    ps.set_index_parameter(index, "efSearch", 55)
    assert faiss.downcast_index(index).hnsw.efSearch == 55
    ps.initialize(faiss.index_factory(D, "IVF16,TQmse4"))
    assert ps.n_combinations() == 4  # nprobe 1, 2, 4, 8


def test_parameter_space_our_names(installed, data):
    _, xb, xq = data
    index = faiss.index_factory(D, "IDMap2,TQmse4")
    index.add_with_ids(xb, np.arange(len(xb), dtype=np.int64))
    flat = faiss.downcast_index(index.index)
    ps = ft.ParameterSpace()
    ps.set_index_parameters(index, "scan_mode=0,verbose=0")
    assert flat.search_defaults.scan_mode == ft.TQ_SCAN_EXACT
    D0, I0 = index.search(xq, 10)
    ps.set_index_parameters(index, "scan_mode=1,rerank_factor=2.5")
    assert flat.search_defaults.rerank_factor == 2.5
    # the same as passing the parameters to search()
    params = ft.SearchParametersTurboQuant(scan_mode=1, rerank_factor=2.5)
    np.testing.assert_array_equal(index.search(xq, 10)[1],
                                  flat.search(xq, 10, params=params)[1])
    # exact scan: the estimator's own order
    exact = ft.SearchParametersTurboQuant(scan_mode=0)
    np.testing.assert_array_equal(I0, flat.search(xq, 10, params=exact)[1])

    with pytest.raises(RuntimeError, match="scan_mode"):
        ps.set_index_parameter(index, "scan_mode", 7)
    with pytest.raises(RuntimeError, match="rerank_factor"):
        ps.set_index_parameter(index, "rerank_factor", -1)
    with pytest.raises(RuntimeError, match="could not set parameter"):
        ps.set_index_parameter(faiss.index_factory(D, "IVF16,Flat"),
                               "rerank_factor", 2)
    with pytest.raises(RuntimeError, match="could not set parameter"):
        ps.set_index_parameter(index, "no_such_parameter", 2)
    with pytest.raises(RuntimeError, match="could not interpret"):
        ps.set_index_parameters(index, "rerank_factor")


def test_autotune_explore(installed, data):
    _, xb, xq = data
    k = 10
    _, gt = brute_force(xb, xq, k)
    index = faiss.index_factory(D, "IVF16,TQmse4,Refine(TQmse8)")
    index.train(xb)
    index.add(xb)
    crit = faiss.OneRecallAtRCriterion(len(xq), k)
    crit.set_groundtruth(None, gt.astype(np.int64))
    ps = ft.ParameterSpace()
    ps.verbose = 0
    ps.initialize(index)
    ops = ps.explore(index, xq, crit)
    assert ops.all_pts.size() >= 2
    perfs = [ops.all_pts.at(i).perf for i in range(ops.all_pts.size())]
    names = [ops.all_pts.at(i).key for i in range(ops.all_pts.size())]
    assert all("nprobe=" in name for name in names)
    assert max(perfs) > min(perfs)  # nprobe matters on clustered data

    # with one of our ranges, explore runs in Python with the same rules
    flat = faiss.index_factory(D, "IDMap,TQmse2")
    flat.add_with_ids(xb, np.arange(len(xb), dtype=np.int64))
    ps = ft.ParameterSpace()
    ps.verbose = 0
    ps.initialize(flat)
    assert ps.n_combinations() == len(ft.parameters.TURBO_PARAMETERS[
        "rerank_factor"])
    ps.n_experiments = 0
    ops = ps.explore(flat, xq, crit)
    assert ops.all_pts.size() == ps.n_combinations()
    by_name = {ops.all_pts.at(i).key: ops.all_pts.at(i).perf
               for i in range(ops.all_pts.size())}
    assert by_name["rerank_factor=16"] >= by_name["rerank_factor=0"]
    # FAISS's sampling: the cheapest and the dearest first, then pruning
    ps.n_experiments = 4
    ops = ps.explore(flat, xq, crit)
    keys = [ops.all_pts.at(i).key for i in range(ops.all_pts.size())]
    assert keys[:2] == ["rerank_factor=0", "rerank_factor=16"]
    assert 2 <= len(keys) <= 4


###########################################################
# pickle / deepcopy
###########################################################


@pytest.mark.parametrize("key", ["IVF16,TQmse4", "IDMap,TQmse4",
                                 "PCA16,IVF16,TQ2.5", "TQmse2,RFlat"])
def test_pickle_and_deepcopy(installed, data, key):
    _, _, xq = data
    index = built(key, data)
    Dref, Iref = index.search(xq, 5)
    copies = [pickle.loads(pickle.dumps(index)), copy.deepcopy(index)]
    gc.collect()
    for other in copies:
        assert type(other) is type(index)
        D2, I2 = other.search(xq, 5)
        np.testing.assert_array_equal(I2, Iref)
        np.testing.assert_array_equal(D2, Dref)
