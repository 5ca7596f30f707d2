"""The GPU classes from Python (faiss_turbo/gpu.py).

Without GPU support compiled in, the GPU names are absent (as in faiss's
CPU build) and get_num_gpus() is 0. With it and no device, every entry
point raises RuntimeError("no CUDA device: ..."). With a device, the GPU
indexes give the CPU's codes and the CPU's exact search (TQ_SCAN_EXACT),
bit for bit, as gpu/tests/test_gpu_turboquant.cpp checks in C++."""

import gc
import os
import re

import faiss
import numpy as np
import pytest

import faiss_turbo as ft
from tq_util import clustered, gaussian

GPU_NAMES = ["StandardGpuResources", "GpuIndexTurboQuant",
             "GpuIndexIVFTurboQuant", "GpuIndexTurboQuantConfig",
             "GpuScanMode", "index_cpu_to_gpu", "index_gpu_to_cpu"]

HAS_GPU_SUPPORT = ft.has_gpu_support()
NUM_GPUS = ft.get_num_gpus()

needs_gpu_support = pytest.mark.skipif(
    not HAS_GPU_SUPPORT, reason="faiss_turbo built without CUDA")
needs_no_device = pytest.mark.skipif(
    not HAS_GPU_SUPPORT or NUM_GPUS > 0,
    reason=("checks the errors of a machine without a CUDA device"
            if HAS_GPU_SUPPORT else "faiss_turbo built without CUDA"))
needs_device = pytest.mark.skipif(
    not HAS_GPU_SUPPORT or NUM_GPUS == 0, reason="no CUDA device")

NO_DEVICE = "no CUDA device"


def build_option_gpu():
    """FAISS_TURBO_ENABLE_GPU of the CMake build this package comes from
    (None: not run from a build tree)"""
    build = os.path.dirname(os.path.dirname(os.path.dirname(
        os.path.abspath(ft.__file__))))
    try:
        with open(os.path.join(build, "CMakeCache.txt")) as f:
            cache = f.read()
    except OSError:
        return None
    m = re.search(r"^FAISS_TURBO_ENABLE_GPU:BOOL=(\w+)", cache, re.M)
    return m and m.group(1).upper() in ("ON", "TRUE", "1", "YES")


###########################################################
# every build
###########################################################


def test_gpu_names_follow_the_build():
    """GPU names exist exactly when the module has GPU support, and that is
    when the CMake build enabled the GPU library"""
    option = build_option_gpu()
    if option is not None:
        assert HAS_GPU_SUPPORT == option
    for name in GPU_NAMES:
        assert hasattr(ft, name) == HAS_GPU_SUPPORT, name
        assert (name in ft.__all__) == HAS_GPU_SUPPORT, name
    assert isinstance(NUM_GPUS, int) and NUM_GPUS >= 0
    if not HAS_GPU_SUPPORT:
        assert NUM_GPUS == 0


def test_emulated_run_is_emulated():
    """make test-gpu-emulated (TQ_GPU_EMULATED_RUN=1) checks the GPU
    classes on the emulated device: not a run where they all skip"""
    if os.environ.get("TQ_GPU_EMULATED_RUN") != "1":
        pytest.skip("not make test-gpu-emulated")
    if build_option_gpu() is False:
        pytest.skip("built without CUDA's toolkit: no GPU classes")
    assert HAS_GPU_SUPPORT and ft.gpu_is_emulated() and NUM_GPUS == 1


def test_no_gpus_without_a_driver():
    """no NVIDIA driver on the machine: no device can be counted (but the
    one emulated device of an emulation build, gpu/README.md)"""
    if os.path.exists("/dev/nvidiactl") or os.path.exists("/dev/dxg"):
        pytest.skip("an NVIDIA driver is present")
    assert NUM_GPUS == (1 if ft.gpu_is_emulated() else 0)
    if not HAS_GPU_SUPPORT:
        assert not ft.gpu_is_emulated()


###########################################################
# GPU support, no device: clean errors that name the problem
###########################################################


@pytest.fixture(scope="module")
def cpu_flat():
    index = ft.IndexTurboQuant(32, 4)
    index.add(gaussian(200, 32, 1))
    return index


@pytest.fixture(scope="module")
def cpu_ivf():
    xb = clustered(1000, 32, 2)
    index = ft.IndexIVFTurboQuant(faiss.IndexFlatL2(32), 32, 8, 4)
    index.train(xb)
    index.add(xb)
    return index


@needs_no_device
def test_resources_without_device_raise():
    with pytest.raises(RuntimeError, match=NO_DEVICE):
        ft.StandardGpuResources()
    with pytest.raises(RuntimeError, match=NO_DEVICE):  # again: not sticky
        ft.StandardGpuResources()


@needs_no_device
def test_indexes_without_device_raise(cpu_flat, cpu_ivf):
    """the device check comes before any use of the resources argument
    (None here: there is no way to make resources without a device)"""
    with pytest.raises(RuntimeError, match=NO_DEVICE):
        ft.GpuIndexTurboQuant(None, 32, 4)
    with pytest.raises(RuntimeError, match=NO_DEVICE):
        ft.GpuIndexTurboQuant(None, cpu_flat)
    with pytest.raises(RuntimeError, match=NO_DEVICE):
        ft.GpuIndexIVFTurboQuant(None, cpu_ivf)
    with pytest.raises(RuntimeError, match=NO_DEVICE):
        ft.GpuIndexIVFTurboQuant(None, 32, 16, 4)


@needs_no_device
def test_cloner_without_device_raises(cpu_flat, cpu_ivf):
    for index in (cpu_flat, cpu_ivf):
        with pytest.raises(RuntimeError, match=NO_DEVICE):
            ft.index_cpu_to_gpu(None, 0, index)
    # a CPU index is not a GPU index, device or not
    with pytest.raises(RuntimeError, match="not a GPU TurboQuant index"):
        ft.index_gpu_to_cpu(cpu_flat)


@needs_no_device
def test_cpu_indexes_work_after_gpu_errors(cpu_flat):
    """the failed CUDA calls leave the CPU side as it was"""
    for _ in range(2):
        with pytest.raises(RuntimeError, match=NO_DEVICE):
            ft.index_cpu_to_gpu(None, 0, cpu_flat)
    xq = gaussian(5, 32, 3)
    D, I = cpu_flat.search(xq, 3)
    assert I.shape == (5, 3) and (I >= 0).all()


@needs_gpu_support
def test_config_defaults():
    c = ft.GpuIndexTurboQuantConfig()
    assert (c.device, c.scan_mode, c.direct_max_ntotal) == (
        0, ft.GpuScanMode.AUTO, 32768)
    c.scan_mode = ft.GpuScanMode.TENSOR_CORES
    assert c.scan_mode == ft.GpuScanMode.TENSOR_CORES


###########################################################
# with a device (skipped here): the CPU's codes and exact results
###########################################################

D_FLAT = 64


@pytest.fixture(scope="module")
def res():
    return ft.StandardGpuResources()


def flat_codes(index):
    return faiss.vector_to_array(index.codes).reshape(
        index.ntotal, index.code_size)


def exact_flat():
    """the CPU's reference scan: every code scored with the estimator"""
    return ft.SearchParametersTurboQuant(scan_mode=ft.TQ_SCAN_EXACT)


def assert_same_results(ref, D, I):
    """ref: the CPU's (D, I) with one more column, to see ties. Distances
    bit for bit; labels too, except within a run of equal distances"""
    Dr, Ir = ref
    k = D.shape[1]
    assert np.array_equal(D, Dr[:, :k])
    tie = np.zeros(D.shape, dtype=bool)
    tie[:, 1:] |= Dr[:, 1:k] == Dr[:, :k - 1]
    tie |= Dr[:, 1:k + 1] == Dr[:, :k]
    assert ((I == Ir[:, :k]) | tie).all()


FLAT_CASES = [
    dict(bits=4, variant=ft.TQVariant.MSE, metric=faiss.METRIC_L2),
    dict(bits=3, variant=ft.TQVariant.PROD, metric=faiss.METRIC_L2,
         rotation=ft.RotationType.HADAMARD, qjl=ft.QJLType.HADAMARD),
    dict(bits=2.5, variant=ft.TQVariant.MSE,
         metric=faiss.METRIC_INNER_PRODUCT, rotation=ft.RotationType.DENSE),
]


def make_cpu_flat(case, xb):
    index = ft.IndexTurboQuant(
        D_FLAT, case["bits"], variant=case["variant"],
        metric=case["metric"],
        rotation_type=case.get("rotation", ft.RotationType.AUTO),
        qjl_type=case.get("qjl", ft.QJLType.GAUSSIAN))
    index.add(xb)
    return index


@needs_device
@pytest.mark.parametrize("case", FLAT_CASES)
def test_flat_round_trip_keeps_codes(res, case):
    xb = gaussian(3000, D_FLAT, 10)
    cpu = make_cpu_flat(case, xb)
    gpu = ft.index_cpu_to_gpu(res, 0, cpu)
    assert isinstance(gpu, ft.GpuIndexTurboQuant)
    assert isinstance(gpu, faiss.Index)
    assert (gpu.ntotal, gpu.d, gpu.getDevice()) == (cpu.ntotal, cpu.d, 0)
    assert np.array_equal(gpu.get_codes(), flat_codes(cpu))
    back = ft.index_gpu_to_cpu(gpu)
    assert isinstance(back, ft.IndexTurboQuant)
    assert np.array_equal(flat_codes(back), flat_codes(cpu))
    xq = gaussian(7, D_FLAT, 11)
    p = exact_flat()
    assert_same_results(cpu.search(xq, 6, params=p),
                        *back.search(xq, 5, params=p))


@needs_device
@pytest.mark.parametrize("case", FLAT_CASES)
def test_flat_add_on_gpu_encodes_like_cpu(res, case):
    xb = gaussian(2000, D_FLAT, 12)
    cpu = make_cpu_flat(case, xb)
    gpu = ft.GpuIndexTurboQuant(
        res, D_FLAT, case["bits"], case["variant"], case["metric"], False,
        True, case.get("rotation", ft.RotationType.AUTO),
        case.get("qjl", ft.QJLType.GAUSSIAN))
    gpu.add(xb)
    assert np.array_equal(gpu.get_codes(), flat_codes(cpu))
    assert np.array_equal(gpu.reconstruct_n(100, 10),
                          cpu.reconstruct_n(100, 10))


@needs_device
@pytest.mark.parametrize("case", FLAT_CASES)
@pytest.mark.parametrize("mode,direct_max", [
    ("AUTO", 1 << 30),        # every code rescored exactly
    ("CUDA_CORES", 0),        # sample, fp32 approximate pass, rescoring
    ("TENSOR_CORES", 0),      # the same with the fp16 mma pass
])
def test_flat_search_equals_cpu_exact(res, case, mode, direct_max):
    xb = gaussian(5000, D_FLAT, 13)
    cpu = make_cpu_flat(case, xb)
    gpu = ft.index_cpu_to_gpu(res, 0, cpu)
    gpu.set_scan_mode(getattr(ft.GpuScanMode, mode))
    gpu.set_direct_max_ntotal(direct_max)
    xq = xb[:20] + 0.1 * gaussian(20, D_FLAT, 14)
    for k in (1, 10, 100):
        ref = cpu.search(xq, k + 1, params=exact_flat())
        assert_same_results(ref, *gpu.search(xq, k))


@needs_device
def test_flat_and_ivf_selector_like_cpu(res):
    """search(params=SearchParameters(sel=...)) on the GPU: the CPU's exact
    results with the same selector (-1 where fewer ids are kept than k)"""
    xb = clustered(5000, D_FLAT, 15)
    xq = xb[:9] + 0.1 * gaussian(9, D_FLAT, 16)
    cpu = make_cpu_flat(FLAT_CASES[0], xb)
    gpu = ft.index_cpu_to_gpu(res, 0, cpu)
    gpu.set_direct_max_ntotal(0)  # the sampled path
    for sel in (faiss.IDSelectorRange(1000, 3000),
                faiss.IDSelectorBatch(np.array([5, 77, 4000], dtype='int64'))):
        p = exact_flat()
        p.sel = sel
        ref = cpu.search(xq, 11, params=p)
        D, I = gpu.search(xq, 10, params=faiss.SearchParameters(sel=sel))
        assert_same_results(ref, D, I)
    ivf = make_cpu_ivf(faiss.METRIC_L2, True, xb)
    ivf.add(xb)
    givf = ft.index_cpu_to_gpu(res, 0, ivf)
    sel = faiss.IDSelectorRange(0, 2500)
    p = ft.SearchParametersIVFTurboQuant(
        nprobe=4, scan_mode=ft.TQ_SCAN_EXACT, sel=sel)
    ref = ivf.search(xq, 11, params=p)
    D, I = givf.search(
        xq, 10, params=faiss.SearchParametersIVF(nprobe=4, sel=sel))
    assert_same_results(ref, D, I)
    with pytest.raises(RuntimeError, match="must be a SearchParametersIVF"):
        givf.search(xq, 10, params=faiss.SearchParameters(sel=sel))


@needs_device
def test_gpu_bad_input_raises(res, cpu_flat):
    gpu = ft.index_cpu_to_gpu(res, 0, cpu_flat)
    with pytest.raises(ValueError, match="float32"):
        gpu.search(np.zeros((2, 32)), 3)
    with pytest.raises(ValueError, match="k=0"):
        gpu.search(np.zeros((2, 32), dtype=np.float32), 0)
    with pytest.raises(ValueError, match="out of range"):
        gpu.reconstruct(gpu.ntotal)
    with pytest.raises(RuntimeError, match="does not exist"):
        ft.index_cpu_to_gpu(res, NUM_GPUS, cpu_flat)
    with pytest.raises(RuntimeError, match="only IndexTurboQuant"):
        ft.index_cpu_to_gpu(res, 0, faiss.IndexFlatL2(32))


@needs_device
def test_gpu_refusals_found_by_a_probe(res, cpu_ivf):
    """each was a crash or a silently broken index"""
    gpu = ft.index_cpu_to_gpu(res, 0, cpu_ivf)
    # FAISS's default reconstruct_n threw from an OpenMP loop: abort; now
    # IndexIVF's contract (ids within ntotal), checked first
    with pytest.raises(RuntimeError, match="not within ntotal=1000"):
        gpu.reconstruct_n(999, 2)
    assert np.array_equal(gpu.reconstruct_n(10, 3), cpu_ivf.reconstruct_n(10, 3))
    # the lists are sized by nlist: a write sent searches past them
    with pytest.raises(AttributeError):
        gpu.nlist = 100
    # list numbers past nlist sent the search past the lists: segfault
    xb = gaussian(300, 32, 40)
    bad = ft.IndexIVFTurboQuant(faiss.IndexFlatL2(32), 32, 4, 4,
                                by_residual=False)
    bad.train(xb)
    bad.add(xb)
    bad.quantizer.add(xb[:2])
    with pytest.raises(RuntimeError, match="holds 6 centroids, not nlist=4"):
        ft.index_cpu_to_gpu(res, 0, bad)
    # a scan mode that is none of GpuScanMode's
    flat = ft.GpuIndexTurboQuant(res, 32, 4)
    with pytest.raises(RuntimeError, match="scan_mode=99"):
        flat.set_scan_mode(99)
    config = ft.GpuIndexTurboQuantConfig()
    config.scan_mode = 99
    with pytest.raises(RuntimeError, match="scan_mode=99"):
        ft.index_cpu_to_gpu(res, 0, ft.IndexTurboQuant(32, 4), config)
    # config() is a copy: writing to it leaves the index as it was (a view
    # let 99 through, and the search took the CUDA-core pass)
    flat.add(xb)
    flat.config().scan_mode = 99
    assert flat.config().scan_mode == ft.GpuScanMode.AUTO
    flat.search(xb[:2], 3)


@needs_device
def test_gpu_train_out_of_memory_keeps_the_index(res):
    """a train whose device tables cannot be made leaves the index as it
    was (it stayed 'trained' with the new mean on the host only, and then
    encoded unlike the CPU)"""
    xb = gaussian(300, 32, 41) + 3
    r = ft.StandardGpuResources()
    gpu = ft.GpuIndexTurboQuant(r, 32, 4, ft.TQVariant.MSE, faiss.METRIC_L2,
                                True)
    r.setMemoryLimit(r.getMemoryUsage(0) + 1)
    with pytest.raises(RuntimeError):
        gpu.train(xb)
    r.setMemoryLimit(0)
    assert not gpu.is_trained
    gpu.train(xb)
    gpu.add(xb)
    cpu = ft.IndexTurboQuant(32, 4, centered=True)
    cpu.train(xb)
    cpu.add(xb)
    assert np.array_equal(gpu.get_codes(), flat_codes(cpu))


@needs_device
@pytest.mark.parametrize("metric", [faiss.METRIC_L2,
                                    faiss.METRIC_INNER_PRODUCT])
def test_gpu_overflowing_scores_rank_as_on_cpu(res, metric):
    """scores of +-inf or NaN (stored vectors of entries 1e30, queries of
    +-1e18) as in the CPU's heaps: a +inf L2 distance or NaN is an empty
    slot, label -1; an inner product of -inf keeps its label (the larger
    ids of a run that k cuts); a NaN came first on the GPU"""
    cpu = ft.IndexTurboQuant(32, 4, metric=metric)
    cpu.add(gaussian(200, 32, 42))
    big = np.full((2, 32), 1e30, dtype=np.float32)
    # CPU add refuses them by L2 (no search could return them); stored as
    # a file of an earlier version, or a GPU add, holds them
    codes = np.concatenate([faiss.vector_to_array(cpu.codes),
                            cpu.sa_encode(big).ravel()])
    faiss.copy_array_to_vector(codes, cpu.codes)
    cpu.ntotal += 2
    gpu = ft.index_cpu_to_gpu(res, 0, cpu)
    p = exact_flat()
    for q in (np.full((1, 32), 1e18, dtype=np.float32),
              np.full((1, 32), -1e18, dtype=np.float32), gaussian(2, 32, 43)):
        for k in (3, 201, 204):
            D0, I0 = cpu.search(q, k, params=p)
            D, I = gpu.search(q, k)
            assert np.array_equal(I, I0), (k, I[:, -3:], I0[:, -3:])
            assert np.array_equal(D, D0, equal_nan=True)


@needs_device
def test_gpu_names_like_cpu(res, cpu_flat, cpu_ivf):
    """index.tq and index.code_size, as on the CPU classes, read-only"""
    for cpu in (cpu_flat, cpu_ivf):
        gpu = ft.index_cpu_to_gpu(res, 0, cpu)
        assert gpu.code_size == cpu.code_size == cpu.tq.code_size
        assert gpu.tq.seed == cpu.tq.seed and gpu.tq.bits == cpu.tq.bits
        assert gpu.tq.d == cpu.tq.d and gpu.tq.variant == cpu.tq.variant
        for name in ("tq", "code_size"):
            with pytest.raises(AttributeError):
                setattr(gpu, name, None)


@needs_device
def test_gpu_index_keeps_resources_alive(cpu_flat):
    r = ft.StandardGpuResources()
    gpu = ft.index_cpu_to_gpu(r, 0, cpu_flat)
    q = gpu.tq
    del r, gpu
    gc.collect()
    assert q.code_size == cpu_flat.code_size  # the index lives on through q
    own = ft.GpuIndexTurboQuant(ft.StandardGpuResources(), 32, 4)
    gc.collect()
    own.add(gaussian(100, 32, 15))
    assert own.search(gaussian(2, 32, 16), 4)[1].shape == (2, 4)


@needs_device
@pytest.mark.parametrize("wrap", ["IndexIDMap2", "IndexPreTransform"])
def test_wrapped_gpu_index_keeps_resources_alive(wrap):
    """a wrapper's proxy holds the proxy owning the GPU index; the
    resources must outlive that index (they were released first: the index
    then freed its device memory through a deleted object, a segfault)"""
    xb, xq = gaussian(500, D_FLAT, 32), gaussian(3, D_FLAT, 33)
    cpu = wrapped_cpu_index(wrap, xb)
    gpu = ft.index_cpu_to_gpu(ft.StandardGpuResources(), 0, cpu)
    gc.collect()
    D0, I0 = cpu.search(xq, 4)
    D, I = gpu.search(xq, 4)  # the resources still live
    assert np.array_equal(I, I0)
    del gpu
    gc.collect()  # the GPU index goes first, then its resources


@needs_device
def test_gpu_size_fields_are_read_only(res, cpu_flat, cpu_ivf):
    """ntotal, d and metric_type size and shape the device data: a write
    sent reads past the codes (a segfault, or an illegal address)"""
    for gpu in (ft.index_cpu_to_gpu(res, 0, cpu_flat),
                ft.index_cpu_to_gpu(res, 0, cpu_ivf)):
        n = gpu.ntotal
        for name, value in (("ntotal", 10**9), ("d", 16),
                            ("metric_type", faiss.METRIC_INNER_PRODUCT)):
            with pytest.raises(AttributeError, match="read-only"):
                setattr(gpu, name, value)
        assert gpu.ntotal == n and gpu.d == 32
        gpu.add(gaussian(3, 32, 34))  # the index still updates it
        assert gpu.ntotal == n + 3


@needs_device
def test_in_faiss_wrappers_and_downcast(res):
    """a GPU index inside a faiss.IndexIDMap, and back as its class"""
    idmap = faiss.IndexIDMap(ft.GpuIndexTurboQuant(res, 32, 4))
    xb = gaussian(300, 32, 17)
    ids = np.arange(300, dtype=np.int64) * 7
    idmap.add_with_ids(xb, ids)
    _, I = idmap.search(xb[:5], 1)
    assert set(I.ravel()) <= set(ids)
    inner = ft.downcast_index(idmap.index)
    assert isinstance(inner, ft.GpuIndexTurboQuant)
    assert inner.ntotal == 300


def wrapped_cpu_index(wrap, xb):
    """an IndexTurboQuant (exact scan, as the GPU's results) inside one of
    faiss's wrappers, filled with xb"""
    inner = ft.IndexTurboQuant(D_FLAT, 4)
    inner.search_defaults.scan_mode = ft.TQ_SCAN_EXACT
    if wrap == "IndexIDMap":
        index = faiss.IndexIDMap(inner)
    elif wrap == "IndexIDMap2":
        index = faiss.IndexIDMap2(inner)
    elif wrap == "IndexPreTransform":
        index = faiss.IndexPreTransform(
            faiss.RandomRotationMatrix(D_FLAT, D_FLAT), inner)
    else:
        index = faiss.IndexRefineFlat(inner)
    index.train(xb)
    if "IDMap" in wrap:
        index.add_with_ids(xb, np.arange(len(xb), dtype=np.int64) * 5 + 1)
    else:
        index.add(xb)
    return index


def wrapped(index):
    """the index inside one of faiss's wrappers, as its class"""
    inner = index.base_index if hasattr(index, "base_index") else index.index
    return ft.downcast_index(inner)


@needs_device
@pytest.mark.parametrize("wrap", ["IndexIDMap", "IndexIDMap2",
                                  "IndexPreTransform", "IndexRefineFlat"])
def test_cloners_go_through_faiss_wrappers(res, wrap):
    """as faiss's cloners do: the wrapper is copied and our index inside it
    moves to the GPU (a refinement index stays on the CPU), then back; the
    GPU wrapper finds the CPU wrapper's results"""
    xb, xq = gaussian(3000, D_FLAT, 30), gaussian(6, D_FLAT, 31)
    cpu = wrapped_cpu_index(wrap, xb)
    gpu = ft.index_cpu_to_gpu(res, 0, cpu)
    assert type(gpu) is type(cpu) and gpu.ntotal == cpu.ntotal
    assert isinstance(wrapped(gpu), ft.GpuIndexTurboQuant)
    D0, I0 = cpu.search(xq, 5)  # same k: a refinement sees k candidates
    D, I = gpu.search(xq, 5)
    assert np.array_equal(D, D0) and np.array_equal(I, I0)
    back = ft.index_gpu_to_cpu(gpu)
    assert type(back) is type(cpu)
    assert isinstance(wrapped(back), ft.IndexTurboQuant)
    assert np.array_equal(flat_codes(wrapped(back)), flat_codes(wrapped(cpu)))
    if "IDMap" in wrap:
        assert np.array_equal(faiss.vector_to_array(back.id_map),
                              faiss.vector_to_array(cpu.id_map))
    if wrap == "IndexIDMap2":  # its reverse map was rebuilt
        assert np.array_equal(back.reconstruct(5 * 17 + 1),
                              cpu.reconstruct(5 * 17 + 1))
    del cpu, gpu
    gc.collect()
    assert back.search(xq, 5)[1].shape == (6, 5)  # owns what it holds


NLIST = 16


def ivf_lists(index):
    """per list: (ids, codes) as numpy"""
    out = []
    for l in range(index.nlist):
        n = index.invlists.list_size(l)
        ids = faiss.rev_swig_ptr(index.invlists.get_ids(l), n).copy()
        codes = faiss.rev_swig_ptr(index.invlists.get_codes(l),
                                   n * index.code_size).copy()
        out.append((ids, codes))
    return out


def make_cpu_ivf(metric, by_residual, xb):
    index = ft.IndexIVFTurboQuant(
        faiss.IndexFlat(D_FLAT, metric), D_FLAT, NLIST, 4, metric=metric,
        by_residual=by_residual)
    index.train(xb)
    return index


IVF_CASES = [(faiss.METRIC_L2, True), (faiss.METRIC_INNER_PRODUCT, True),
             (faiss.METRIC_L2, False)]


@needs_device
@pytest.mark.parametrize("metric,by_residual", IVF_CASES)
def test_ivf_round_trip_and_add(res, metric, by_residual):
    """lists copied to the GPU and back unchanged; vectors added on the GPU
    land in the CPU's lists with the CPU's codes"""
    xb = clustered(6000, D_FLAT, 20)
    cpu = make_cpu_ivf(metric, by_residual, xb)
    cpu.add(xb[:3000])
    gpu = ft.index_cpu_to_gpu(res, 0, cpu)
    assert isinstance(gpu, ft.GpuIndexIVFTurboQuant)
    assert (gpu.nlist, gpu.ntotal) == (NLIST, 3000)
    cpu.add(xb[3000:])
    gpu.add(xb[3000:])
    back = ft.index_gpu_to_cpu(gpu)
    assert isinstance(back, ft.IndexIVFTurboQuant)
    for (ia, ca), (ib, cb) in zip(ivf_lists(cpu), ivf_lists(back)):
        assert np.array_equal(ia, ib) and np.array_equal(ca, cb)


@needs_device
@pytest.mark.parametrize("metric,by_residual", IVF_CASES)
def test_ivf_search_equals_cpu_exact(res, metric, by_residual):
    xb = clustered(6000, D_FLAT, 21)
    cpu = make_cpu_ivf(metric, by_residual, xb)
    cpu.add(xb)
    gpu = ft.index_cpu_to_gpu(res, 0, cpu)
    xq = xb[:25] + 0.1 * gaussian(25, D_FLAT, 22)
    for nprobe in (1, 4, NLIST):
        gpu.nprobe = nprobe
        p = ft.SearchParametersIVFTurboQuant(
            nprobe=nprobe, scan_mode=ft.TQ_SCAN_EXACT)
        for k in (1, 10, 100):
            assert_same_results(cpu.search(xq, k + 1, params=p),
                                *gpu.search(xq, k))
    # each (query, list) scored on its own: the same results
    gpu.set_queries_per_list(1)
    assert gpu.queries_per_list() == 1
    assert_same_results(cpu.search(xq, 11, params=p), *gpu.search(xq, 10))
    with pytest.raises(RuntimeError, match="must be in 1..8"):
        gpu.set_queries_per_list(0)


@needs_device
@pytest.mark.parametrize("metric,by_residual", IVF_CASES)
def test_ivf_reconstruct_and_remove_ids(res, metric, by_residual):
    """reconstruct gives the CPU index's vectors bit for bit; remove_ids
    drops the same vectors as the CPU's (lists compared as sets: FAISS
    moves a list's last entry into the hole)"""
    xb = clustered(3000, D_FLAT, 23)
    cpu = make_cpu_ivf(metric, by_residual, xb)
    cpu.add(xb)
    gpu = ft.index_cpu_to_gpu(res, 0, cpu)
    cpu.set_direct_map_type(faiss.DirectMap.Hashtable)
    for key in (0, 1, 1500, 2999):
        assert np.array_equal(gpu.reconstruct(key), cpu.reconstruct(key))
    with pytest.raises(RuntimeError, match="not in the index"):
        gpu.reconstruct(3000)
    sel = faiss.IDSelectorRange(100, 400)
    # FAISS removes with a hashtable direct map only by IDSelectorArray
    cpu.set_direct_map_type(faiss.DirectMap.NoMap)
    assert gpu.remove_ids(sel) == cpu.remove_ids(sel) == 300
    cpu.set_direct_map_type(faiss.DirectMap.Hashtable)
    assert gpu.ntotal == cpu.ntotal == 2700
    back = ft.index_gpu_to_cpu(gpu)
    for (ia, ca), (ib, cb) in zip(ivf_lists(cpu), ivf_lists(back)):
        rows_a = sorted(zip(ia, ca.reshape(len(ia), -1).tolist()))
        rows_b = sorted(zip(ib, cb.reshape(len(ib), -1).tolist()))
        assert rows_a == rows_b
    assert np.array_equal(gpu.reconstruct(2999), cpu.reconstruct(2999))


###########################################################
# found by a probe of this API on the emulated device
###########################################################

@needs_device
def test_ivf_max_codes_and_quantizer_params_like_cpu(res):
    """SearchParametersIVF.max_codes, the index's own max_codes and
    quantizer_params change the GPU's results as the CPU's (they were
    ignored: other results, silently)"""
    xb = clustered(3000, 32, 61)
    xq = xb[:6] + 0.1 * gaussian(6, 32, 62)
    cpu = ft.index_factory(32, "IVF32_HNSW4,TQmse4")
    cpu.train(xb)
    cpu.add(xb)
    gpu = ft.index_cpu_to_gpu(res, 0, cpu)
    cases = [dict(nprobe=8, max_codes=50), dict(nprobe=32, max_codes=400),
             dict(nprobe=8, quantizer_params=faiss.SearchParametersHNSW(
                 efSearch=1))]
    for kw in cases:
        ref = cpu.search(xq, 11, params=ft.SearchParametersIVFTurboQuant(
            scan_mode=ft.TQ_SCAN_EXACT, **kw))
        assert_same_results(
            ref, *gpu.search(xq, 10, params=faiss.SearchParametersIVF(**kw)))
    # the index's own limit goes both ways with the cloners
    cpu.max_codes = 50
    cpu.nprobe = 8
    gpu = ft.index_cpu_to_gpu(res, 0, cpu)
    assert gpu.max_codes == 50
    assert ft.index_gpu_to_cpu(gpu).max_codes == 50
    ref = cpu.search(xq, 11, params=ft.SearchParametersIVFTurboQuant(
        scan_mode=ft.TQ_SCAN_EXACT, nprobe=8, max_codes=50))
    assert_same_results(ref, *gpu.search(xq, 10))


@needs_device
@pytest.mark.parametrize("key,metric", [
    ("L2norm,TQmse4", faiss.METRIC_INNER_PRODUCT),
    ("L2norm,IVF8,TQmse4", faiss.METRIC_INNER_PRODUCT),
    ("ITQ,TQmse4", faiss.METRIC_L2)])
def test_cloner_copies_every_transform(res, key, metric):
    """FAISS 1.7.3's Cloner refuses L2 normalization and ITQ: the chain
    is copied through FAISS's I/O instead"""
    xb = clustered(1500, 32, 63)
    cpu = ft.index_factory(32, key, metric)
    cpu.train(xb)
    cpu.add(xb)
    gpu = ft.index_cpu_to_gpu(res, 0, cpu)
    assert isinstance(gpu, faiss.IndexPreTransform)
    xq = xb[:5] + 0.1 * gaussian(5, 32, 64)
    D, I = gpu.search(xq, 10)
    Dc, Ic = cpu.search(xq, 10)
    # the CPU's default search is the int8 scan with an exact rerank:
    # the same top 10 here
    assert (I == Ic).mean() > 0.9
    back = ft.index_gpu_to_cpu(gpu)
    assert np.array_equal(back.search(xq, 10)[1], Ic)


@needs_device
def test_flat_sa_codec_and_failed_copy(res):
    """the flat GPU index's sa_encode / sa_decode are the CPU codec's (its
    sa_code_size was there, but both raised); a copyFrom that fails (d past
    4096) leaves the index as it was (it kept the new d with the old device
    tables: wrong codes and results, silently)"""
    xb = gaussian(500, 32, 65)
    cpu = ft.IndexTurboQuant(32, 4)
    cpu.add(xb)
    gpu = ft.index_cpu_to_gpu(res, 0, cpu)
    codes = gpu.sa_encode(xb[:20])
    assert np.array_equal(codes, cpu.sa_encode(xb[:20]))
    assert codes.shape == (20, gpu.sa_code_size())
    assert np.array_equal(gpu.sa_decode(codes), cpu.sa_decode(codes))
    before = gpu.search(xb[:4], 5)
    with pytest.raises(RuntimeError, match="d <= 4096, not d=5000"):
        gpu.copyFrom(ft.IndexTurboQuant(5000, 2))
    assert gpu.d == 32 and gpu.ntotal == 500
    after = gpu.search(xb[:4], 5)
    assert np.array_equal(before[0], after[0])
    assert np.array_equal(before[1], after[1])
    gpu.add(xb[:10])
    assert np.array_equal(gpu.get_codes(500, 10), cpu.sa_encode(xb[:10]))
    # out of device memory for the new codes: the same
    r = ft.StandardGpuResources()
    small = ft.index_cpu_to_gpu(r, 0, cpu)
    big = ft.IndexTurboQuant(32, 2)
    big.add(gaussian(3000, 32, 66))
    r.setMemoryLimit(r.getMemoryUsage(0) + 1000)
    with pytest.raises(RuntimeError):
        small.copyFrom(big)
    r.setMemoryLimit(0)
    assert small.ntotal == 500 and small.code_size == cpu.code_size
    assert np.array_equal(small.get_codes(), flat_codes(cpu))
    # nor does an IVF index of that d wait for train() to say so
    with pytest.raises(RuntimeError, match="d <= 4096, not d=5000"):
        ft.GpuIndexIVFTurboQuant(res, 5000, 16, 4)


@needs_device
def test_two_indexes_searched_from_two_threads(res):
    """two GPU indexes (flat and IVF, their own resources) searched at once
    from two Python threads give each one's results (on the emulated device
    the fibers' global state crashed: launches are serialized there)"""
    import threading
    xb = clustered(2000, 32, 67)
    xq = xb[:8] + 0.1 * gaussian(8, 32, 68)
    flat = ft.IndexTurboQuant(32, 4)
    flat.add(xb)
    ivf = ft.index_factory(32, "IVF8,TQmse4")
    ivf.train(xb)
    ivf.add(xb)
    gpus = [ft.index_cpu_to_gpu(ft.StandardGpuResources(), 0, c)
            for c in (flat, ivf)]
    gpus[1].nprobe = 4
    want = [g.search(xq, 10) for g in gpus]
    got, errors = [[], []], []

    def run(i):
        try:
            for _ in range(3):
                got[i].append(gpus[i].search(xq, 10))
        except Exception as e:  # noqa: BLE001 - reported below
            errors.append(e)

    threads = [threading.Thread(target=run, args=(i,)) for i in (0, 1)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    assert not errors
    for i in (0, 1):
        for D, I in got[i]:
            assert np.array_equal(D, want[i][0])
            assert np.array_equal(I, want[i][1])
