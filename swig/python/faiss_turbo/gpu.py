"""The GPU indexes (gpu/) from Python, as faiss's GPU classes are used:

    res = faiss_turbo.StandardGpuResources()
    gpu_index = faiss_turbo.index_cpu_to_gpu(res, 0, cpu_index)
    D, I = gpu_index.search(xq, 10)
    cpu_index = faiss_turbo.index_gpu_to_cpu(gpu_index)

Imported by the package only when the module was built with CUDA
(has_gpu_support()); otherwise these names do not exist, as in faiss's CPU
build, so hasattr(faiss_turbo, "StandardGpuResources") tells them apart.

Without a usable device, StandardGpuResources(), the index constructors and
index_cpu_to_gpu raise RuntimeError("no CUDA device: ...") before any CUDA
work. A GPU index keeps its resources object alive (the C++ index holds a
plain pointer to it), as faiss's GPU indexes do.
"""

import enum
import functools

import numpy as np

from faiss import class_wrappers, swig_ptr

from . import swigfaiss_turbo as _swig
from . import (
    _FLAT_CHECKS,
    _IVF_CHECKS,
    _as_python_class,
    _strict,
)
from .swigfaiss_turbo import (  # noqa: F401 (re-exported)
    GpuIndexIVFTurboQuant,
    GpuIndexTurboQuant,
    GpuIndexTurboQuantConfig,
    GpuResources,
    GpuSearchStats,
    StandardGpuResources,
)

__all__ = [
    "GpuResources",
    "StandardGpuResources",
    "GpuIndexTurboQuant",
    "GpuIndexTurboQuantConfig",
    "GpuIndexIVFTurboQuant",
    "GpuScanMode",
    "GpuSearchStats",
    "index_cpu_to_gpu",
    "index_gpu_to_cpu",
]


class GpuScanMode(enum.IntEnum):
    AUTO = _swig.GpuScanMode_AUTO
    CUDA_CORES = _swig.GpuScanMode_CUDA_CORES
    TENSOR_CORES = _swig.GpuScanMode_TENSOR_CORES


def _require_device(device=-1):
    """RuntimeError naming why, unless CUDA device `device` (-1: any) can be
    used"""
    _swig.gpu_require_device(int(device))


def _checked_init(the_class, keeps_res):
    """the constructor first checks that some device exists (the C++ one
    then checks the device number); a GPU index references its `res`"""
    init = the_class.__init__

    @functools.wraps(init)
    def __init__(self, *args, **kwargs):
        _require_device()
        init(self, *args, **kwargs)
        if keeps_res:
            res = args[0] if args else kwargs.get("res")
            class_wrappers.add_to_referenced_objects(self, res)

    the_class.__init__ = __init__


def _keep_owner(the_class, name):
    """method `name` returns a reference into the index (its codec, its
    config, its stats): the result keeps the index alive"""
    method = getattr(the_class, name)

    @functools.wraps(method)
    def wrapper(self):
        ref = method(self)
        ref.referenced_objects = [self]
        return ref

    setattr(the_class, name, wrapper)


def _get_codes(self, i0=0, n=None):
    """codes of vectors [i0, i0 + n) as (n, code_size) uint8 (n=None: to
    the end)"""
    if n is None:
        n = self.ntotal - i0
    if i0 < 0 or n < 0 or i0 + n > self.ntotal:
        raise ValueError(
            "get_codes(%d, %d) out of range: ntotal=%d"
            % (i0, n, self.ntotal))
    codes = np.empty((n, self.code_size), dtype=np.uint8)
    self.get_codes_c(i0, n, swig_ptr(codes))
    return codes


for _cls, _checks in ((GpuIndexTurboQuant, _FLAT_CHECKS),
                      (GpuIndexIVFTurboQuant, _IVF_CHECKS)):
    class_wrappers.handle_Index(_cls)
    for _name, _check in _checks.items():
        if hasattr(_cls, _name):
            _strict(_cls, _name, _check)
    _checked_init(_cls, keeps_res=True)

_checked_init(StandardGpuResources, keeps_res=False)


def _read_only(cls, name, why):
    """cls.name readable as before, a write an AttributeError"""
    getter = getattr(cls, name).fget

    def refuse(self, value):
        raise AttributeError(f"{cls.__name__}.{name} is read-only: {why}")
    setattr(cls, name, property(getter, refuse))


# the device arrays are sized by these (a write sent reads past them) and
# the codes made for this metric
for _cls in (GpuIndexTurboQuant, GpuIndexIVFTurboQuant):
    for _name in ("ntotal", "d", "metric_type"):
        _read_only(_cls, _name, "the index's device data depend on it")
for _name in ("codec", "config", "last_search_stats"):
    _keep_owner(GpuIndexTurboQuant, _name)
_keep_owner(GpuIndexIVFTurboQuant, "codec")
# the CPU classes' names: index.tq (the codec) and index.code_size (bytes
# per vector in the lists / the codes array), read-only
for _cls in (GpuIndexTurboQuant, GpuIndexIVFTurboQuant):
    _cls.tq = property(_cls.codec, doc="the codec, as the CPU index's tq")
    _cls.code_size = property(lambda self: self.codec().code_size,
                              doc="bytes per vector code, as the CPU's")
GpuIndexTurboQuant.get_codes_c = GpuIndexTurboQuant.get_codes
GpuIndexTurboQuant.get_codes = _get_codes


def index_cpu_to_gpu(res, device, index, config=None):
    """a GPU copy of an IndexTurboQuant or IndexTurboQuantFastScan
    (GpuIndexTurboQuant, with `config`, a GpuIndexTurboQuantConfig, whose
    device is overridden) or of a trained
    IndexIVFTurboQuant (GpuIndexIVFTurboQuant), also inside faiss's
    IndexIDMap(2), IndexPreTransform and IndexRefine(Flat) (the wrapper is
    copied; a refinement index stays on the CPU); RuntimeError for other
    index types. The result keeps `res` alive."""
    _require_device(device)
    gpu_index = _swig.index_cpu_to_gpu_c(res, int(device), index, config)
    # res on the proxy that owns the C++ index, which is deleted before
    # what the proxy references: a wrapper's downcast proxy (below) holds
    # that owner, and res released first left the GPU index freeing its
    # memory through a deleted resources object
    class_wrappers.add_to_referenced_objects(gpu_index, res)
    return _as_python_class(gpu_index, gpu_index)  # faiss's wrappers


def index_gpu_to_cpu(index):
    """a CPU IndexTurboQuant / IndexIVFTurboQuant with the GPU index's codec
    and codes (needs no more than the device the index is on), through the
    same wrappers as index_cpu_to_gpu"""
    cpu = _swig.index_gpu_to_cpu_c(index)
    return _as_python_class(cpu, cpu)
