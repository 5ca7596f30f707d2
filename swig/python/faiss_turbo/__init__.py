"""faiss-turbo: TurboQuant (arXiv 2504.19874) indexes for FAISS.

The classes derive from faiss's (IndexTurboQuant is a faiss.IndexFlatCodes,
IndexTurboQuantFastScan, the same codes in blocks of 32, a faiss.Index)
and take numpy arrays like faiss's, so they go wherever a faiss.Index goes:
faiss.IndexIDMap, faiss.IndexShards, faiss.IndexRefineFlat,
faiss.ParameterSpace. Bad input raises ValueError (wrong dtype or shape) or
RuntimeError (rejected by the C++ code), never crashes.

    import faiss_turbo
    index = faiss_turbo.index_factory(128, "TQmse4")
    index.add(xb)
    D, I = index.search(xq, 10)
"""

import collections
import enum
import functools
import re

import numpy as np

# faiss first: our module joins its SWIG type table
import faiss
from faiss import class_wrappers, swig_ptr

from . import swigfaiss_turbo as _swig
from ._version import __version__  # noqa: F401 (written by CMake)
from .swigfaiss_turbo import *  # noqa: F401,F403

__all__ = [
    "IndexTurboQuant",
    "IndexTurboQuantFastScan",
    "TurboQuantizer",
    "TQVariant",
    "RotationType",
    "QJLType",
    "IndexIVFTurboQuant",
    "IndexIVFTurboQuantFastScan",
    "IndexHNSWTurboQuant",
    "index_factory",
    "reverse_index_factory",
    "downcast_index",
    "write_index",
    "read_index",
    "serialize_index",
    "deserialize_index",
    "clone_index",
    "index_contains_turbo",
    "get_lloyd_max_codebook",
    "parse_tq_token",
    "TQSpec",
]


###########################################################
# enums: SWIG gives TQVariant_MSE etc.; these are the same ints
###########################################################


class TQVariant(enum.IntEnum):
    MSE = _swig.TQVariant_MSE
    PROD = _swig.TQVariant_PROD


class RotationType(enum.IntEnum):
    AUTO = _swig.RotationType_AUTO
    DENSE = _swig.RotationType_DENSE
    HADAMARD = _swig.RotationType_HADAMARD


class QJLType(enum.IntEnum):
    GAUSSIAN = _swig.QJLType_GAUSSIAN
    HADAMARD = _swig.QJLType_HADAMARD
    AUTO = _swig.QJLType_AUTO


###########################################################
# argument checks: faiss's wrappers convert any dtype silently and assert
# without a message; ours name the problem
###########################################################


def _check_vectors(x, d, what="x"):
    if not isinstance(x, np.ndarray):
        raise ValueError(
            "%s must be a numpy array of float32, not %s"
            % (what, type(x).__name__))
    if x.dtype != np.float32:
        raise ValueError(
            "%s must have dtype float32, not %s (convert with "
            "x.astype('float32'))" % (what, x.dtype))
    if x.ndim != 2 or x.shape[1] != d:
        raise ValueError(
            "%s must have shape (n, %d), not %s" % (what, d, x.shape))


def _check_codes(codes, code_size):
    if not isinstance(codes, np.ndarray) or codes.dtype != np.uint8:
        raise ValueError(
            "codes must be a numpy array of uint8, not %s"
            % getattr(codes, "dtype", type(codes).__name__))
    if codes.ndim != 2 or codes.shape[1] != code_size:
        raise ValueError(
            "codes must have shape (n, %d), not %s"
            % (code_size, codes.shape))


def _check_int(v, what):
    """v is an integer (not a bool, not a float that SWIG or int() would
    truncate)"""
    if not isinstance(v, (int, np.integer)) or isinstance(v, bool):
        raise ValueError("%s must be an int, not %s" % (what, type(v).__name__))


def _check_k(k):
    _check_int(k, "k")
    if k <= 0:
        raise ValueError("k=%d must be > 0" % k)


def _check_integers(ids, what):
    """ids (a numpy array) are integers that fit int64: FAISS's conversion
    would truncate 1.5 to 1 and wrap 2**64 - 1 to -1 (no result's label)"""
    if ids.size == 0:
        return
    if ids.dtype.kind not in "iu":
        raise ValueError(
            "%s must be integers, not %s" % (what, ids.dtype))
    if ids.dtype.kind == "u" and ids.max() > np.iinfo(np.int64).max:
        raise ValueError("%s must fit int64: %d does not" % (what, ids.max()))


def _check_ids(ids, ntotal, what="key"):
    ids = np.asarray(ids)
    _check_integers(ids, what)
    if ids.size and (ids.min() < 0 or ids.max() >= ntotal):
        raise ValueError(
            "%s out of range: ids must be in [0, %d)" % (what, ntotal))


def _strict(the_class, name, check):
    """Wraps the numpy method `name` (as installed by faiss.class_wrappers)
    so that check(self, *args) runs first. The wrapper keeps the name
    replacement_<name>, which tells class_wrappers.replace_method not to
    wrap it a second time in a subclass. numpy integers the check took
    (k = np.int64(10)) reach SWIG as ints, which its overloads need."""
    method = getattr(the_class, name)

    def as_int(v):
        return int(v) if isinstance(v, np.integer) else v

    @functools.wraps(method)
    def wrapper(self, *args, **kwargs):
        check(self, *args, **kwargs)
        args = tuple(as_int(a) for a in args)
        kwargs = {key: as_int(v) for key, v in kwargs.items()}
        return method(self, *args, **kwargs)

    setattr(the_class, name, wrapper)


def _check_x(self, x, *args, **kwargs):
    _check_vectors(x, self.d)


def _check_x_k(self, x, k, *args, **kwargs):
    _check_vectors(x, self.d)
    _check_k(k)


def _check_x_ids(self, x, ids, *args, **kwargs):
    _check_vectors(x, self.d)
    ids = np.asarray(ids)
    if ids.shape != (x.shape[0],):
        raise ValueError(
            "ids must have shape (%d,), not %s" % (x.shape[0], ids.shape))
    _check_integers(ids, "ids")


def _check_sa_codes(self, codes, *args, **kwargs):
    _check_codes(codes, self.sa_code_size())


def _check_remove(self, ids, *args, **kwargs):
    """an IDSelector, or ids that are integers (faiss converts floats)"""
    if not isinstance(ids, faiss.IDSelector):
        _check_integers(np.asarray(ids), "ids")


def _check_key(self, key, *args, **kwargs):
    _check_ids([key], self.ntotal)


def _check_keys(self, keys, *args, **kwargs):
    _check_ids(keys, self.ntotal, "keys")


def _check_range_n(self, n0, ni, *args, **kwargs):
    if ni < 0 or n0 < 0 or n0 + ni > self.ntotal:
        raise ValueError(
            "reconstruct_n(%d, %d) out of range: ntotal=%d"
            % (n0, ni, self.ntotal))


# checks for every index of ours
_INDEX_CHECKS = {
    "add": _check_x,
    "train": _check_x,
    "sa_encode": _check_x,
    "range_search": _check_x,
    "search": _check_x_k,
    "assign": _check_x_k,
    "search_and_reconstruct": _check_x_k,
    "add_with_ids": _check_x_ids,
    "remove_ids": _check_remove,
    "sa_decode": _check_sa_codes,
    "add_sa_codes": _check_sa_codes,
}

# flat indexes: ids are 0..ntotal-1 (IVF ids are the user's; IndexIVF
# checks them against its direct map)
_FLAT_CHECKS = dict(
    _INDEX_CHECKS,
    reconstruct=_check_key,
    reconstruct_batch=_check_keys,
    reconstruct_n=_check_range_n,
)


def _check_finite_queries(self, x, *args, **kwargs):
    """IndexIVFTurboQuant rejects a NaN query inside FAISS 1.7.3's parallel
    search loop, where an exception ends the process: refuse it here"""
    _check_vectors(x, self.d)
    bad = ~np.isfinite(x).all(axis=1)
    if bad.any():
        raise RuntimeError(
            "TurboQuant search: query %d has a NaN or Inf"
            % np.flatnonzero(bad)[0])


def _check_ivf_query_k(self, x, k, *args, **kwargs):
    _check_finite_queries(self, x)
    _check_k(k)


_IVF_CHECKS = dict(
    _INDEX_CHECKS,
    search=_check_ivf_query_k,
    assign=_check_ivf_query_k,
    search_and_reconstruct=_check_ivf_query_k,
    range_search=_check_finite_queries,
)


def _handle_index(the_class, checks):
    """faiss's numpy methods (search(x, k) -> D, I, ...), then our checks,
    pickling through our serialization and a codec view that keeps the
    index alive"""
    class_wrappers.handle_Index(the_class)
    for name, check in checks.items():
        if hasattr(the_class, name):
            _strict(the_class, name, check)
    the_class.__getstate__ = _index_getstate
    the_class.__setstate__ = _index_setstate

    _view_keeps_owner(the_class, "tq",
                      "the codec (read-only view, keeps the index alive)")
    _view_keeps_owner(the_class, "search_defaults",
                      "the options of searches without params (a view "
                      "into the index, which it keeps alive)")


def _view_keeps_owner(the_class, name, doc):
    """SWIG's property for a struct member returns a view into the C++
    object that does not keep its owner alive: a view that outlives a
    temporary index (ft.IndexTurboQuant(16, 4).search_defaults) would
    write into freed memory. The view holds a reference to its index."""
    prop = getattr(the_class, name)
    get, set_ = prop.fget, prop.fset

    def view_of_index(self):
        v = get(self)
        v.referenced_objects = [self]
        return v

    setattr(the_class, name, property(view_of_index, set_, doc=doc))


def _index_getstate(self):
    return {"this": serialize_index(self).tobytes()}


def _index_setstate(self, state):
    index = deserialize_index(np.frombuffer(state["this"], dtype=np.uint8))
    self.this = index.this


def _keep_quantizer(the_class):
    """the coarse quantizer is not owned by the C++ object: the Python
    object keeps it alive, as faiss does for its IVF indexes (faiss's own
    helper for this drops keyword arguments)"""
    init = the_class.__init__

    @functools.wraps(init)
    def __init__(self, *args, **kwargs):
        init(self, *args, **kwargs)
        quantizer = args[0] if args else kwargs["quantizer"]
        class_wrappers.add_to_referenced_objects(self, quantizer)

    the_class.__init__ = __init__


_handle_index(IndexTurboQuant, _FLAT_CHECKS)  # noqa: F405
_handle_index(IndexTurboQuantFastScan, _FLAT_CHECKS)  # noqa: F405
# the factory's "HNSW32,TQmse4": FAISS's graph search, queries checked in
# C++ before it starts (no codec of its own: the storage has it); numpy
# inputs checked as the other classes' (dtype, shape, k, ranges)
class_wrappers.handle_Index(IndexHNSWTurboQuant)  # noqa: F405
for _name, _check in dict(_INDEX_CHECKS, reconstruct_n=_check_range_n,
                          reconstruct=_check_key).items():
    if hasattr(IndexHNSWTurboQuant, _name):  # noqa: F405
        _strict(IndexHNSWTurboQuant, _name, _check)  # noqa: F405
IndexHNSWTurboQuant.__getstate__ = _index_getstate  # noqa: F405
IndexHNSWTurboQuant.__setstate__ = _index_setstate  # noqa: F405
_hnsw_init = IndexHNSWTurboQuant.__init__  # noqa: F405


@functools.wraps(_hnsw_init)
def _hnsw_init_keep(self, *args, **kwargs):
    """IndexHNSWTurboQuant(storage, M=32): the storage is not owned by the
    C++ object (own_fields is false), so the Python object keeps it alive,
    as faiss does for IndexHNSW"""
    _hnsw_init(self, *args, **kwargs)
    storage = args[0] if args else kwargs.get("storage")
    if storage is not None:
        class_wrappers.add_to_referenced_objects(self, storage)


def _hnsw_search_level_0(self, n, x, *args, **kwargs):
    """faiss.IndexHNSW.search_level_0 (pointer arguments, as faiss has
    it), the queries checked first: FAISS's loop would end the process on
    one the storage refuses"""
    self.check_queries(n, x, "HNSW search_level_0")
    return faiss.IndexHNSW.search_level_0(self, n, x, *args, **kwargs)


IndexHNSWTurboQuant.__init__ = _hnsw_init_keep  # noqa: F405
IndexHNSWTurboQuant.search_level_0 = _hnsw_search_level_0  # noqa: F405


def _fs_get_codes(self, i0=0, n=None):
    """row codes [i0, i0 + n) (n, code_size) uint8, the codec's layout
    (as sa_encode writes them and IndexTurboQuant stores them)"""
    if n is None:
        n = self.ntotal - i0
    codes = np.empty((n, self.sa_code_size()), dtype=np.uint8)
    self.get_codes_c(i0, n, swig_ptr(codes))
    return codes


def _fs_add_codes(self, codes):
    """append row codes (n, code_size) uint8 of this codec"""
    _check_codes(codes, self.sa_code_size())
    codes = np.ascontiguousarray(codes)
    self.add_codes_c(codes.shape[0], swig_ptr(codes))


IndexTurboQuantFastScan.get_codes = _fs_get_codes  # noqa: F405
_fs_init = IndexTurboQuantFastScan.__init__  # noqa: F405


def _fs_init_any(self, *args, **kwargs):
    """IndexTurboQuantFastScan(d, bits, metric=..., centered=...,
    debiased=..., rotation_type=..., seed=...), or
    IndexTurboQuantFastScan(flat): the codes of an IndexTurboQuant"""
    if len(args) == 1 and not kwargs and isinstance(
            args[0], IndexTurboQuant):  # noqa: F405
        self.this = IndexTurboQuantFastScan.from_flat(args[0]).this  # noqa
        return
    _fs_init(self, *args, **kwargs)


IndexTurboQuantFastScan.__init__ = _fs_init_any  # noqa: F405
IndexTurboQuantFastScan.add_codes = _fs_add_codes  # noqa: F405
_handle_index(IndexIVFTurboQuant, _IVF_CHECKS)  # noqa: F405
_keep_quantizer(IndexIVFTurboQuant)  # noqa: F405
# by_residual is the constructor's (the codes follow it), read-only; from
# FAISS 1.8 on the field is IndexIVF's, which the .i's %immutable misses
IndexIVFTurboQuant.by_residual = property(  # noqa: F405
    IndexIVFTurboQuant.by_residual.fget,  # noqa: F405
    doc="encode x - c (read-only: set by the constructor)")
# the subclass inherits the numpy methods, checks and pickling
_keep_quantizer(IndexIVFTurboQuantFastScan)  # noqa: F405


def _ivf_fs_get_list_codes(self, list_no):
    """list list_no's codes as rows (list_size, code_size) uint8, the
    codec's layout. invlists.get_codes gives the blocks (as FAISS's
    BlockInvertedLists does), which faiss.contrib.inspect_tools.get_invlist
    would misread as rows."""
    if not 0 <= list_no < self.nlist:
        raise ValueError("list_no %d not in [0, %d)" % (list_no, self.nlist))
    n = self.invlists.list_size(list_no)
    codes = np.empty((n, self.code_size), dtype=np.uint8)
    if n:
        self.get_list_codes_c(list_no, swig_ptr(codes))
    return codes


IndexIVFTurboQuantFastScan.get_list_codes = _ivf_fs_get_list_codes  # noqa


###########################################################
# TurboQuantizer: numpy encode / decode, mean as an array
###########################################################


def _tq_encode(self, x):
    """codes (n, code_size) uint8 of the float32 vectors x (n, d)"""
    _check_vectors(x, self.d)
    x = np.ascontiguousarray(x)
    codes = np.empty((x.shape[0], self.code_size), dtype=np.uint8)
    self.encode_c(x.shape[0], swig_ptr(x), swig_ptr(codes))
    return codes


def _tq_decode(self, codes):
    """reconstructions (n, d) float32 of codes (n, code_size) uint8; codes
    this codec cannot have written (NaN or negative norms) are refused, as
    the indexes' sa_decode refuses them"""
    _check_codes(codes, self.code_size)
    codes = np.ascontiguousarray(codes)
    self.check_codes(codes.shape[0], swig_ptr(codes), "TurboQuantizer.decode")
    x = np.empty((codes.shape[0], self.d), dtype=np.float32)
    self.decode_c(codes.shape[0], swig_ptr(codes), swig_ptr(x))
    return x


def _tq_mean(self):
    m = np.zeros(self.mean_size(), dtype=np.float32)
    if m.size:
        self.get_mean(swig_ptr(m))
    return m


class_wrappers.replace_method(TurboQuantizer, "encode", _tq_encode)  # noqa
class_wrappers.replace_method(TurboQuantizer, "decode", _tq_decode)  # noqa
TurboQuantizer.mean = property(  # noqa: F405
    _tq_mean, doc="the mean subtracted before encoding (empty: none)")


###########################################################
# factory and downcast
###########################################################


_OUR_CLASSES = (IndexTurboQuant, IndexTurboQuantFastScan,  # noqa: F405
                IndexIVFTurboQuant,  # noqa: F405 (and its subclass)
                IndexHNSWTurboQuant)  # noqa: F405


def _is_turbo_description(description):
    """True if a token (the string cut at ',', '(' and ')') starts with "TQ":
    the C++ factory then builds it, or names the token it cannot parse"""
    return any(tok.startswith("TQ")
               for tok in re.split(r"[,()]", description))


def _as_python_class(index, owner):
    """index: what our C++ returned as faiss::Index*, with our class or
    faiss.IndexHNSW when it is one, else as a plain faiss.Index, which goes
    through faiss.downcast_index. A new proxy that does not
    own the C++ object holds `owner`, the proxy that does."""
    if type(index) is faiss.Index:
        index = faiss.downcast_index(index)
    if index is not owner:
        class_wrappers.add_to_referenced_objects(index, owner)
    return index


def index_factory(d, description, metric=faiss.METRIC_L2):
    """faiss.index_factory that also knows TurboQuant encodings: "TQmse4",
    "TQprod3", "TQ2.5" (= TQmse2.5), suffix "c" for centered ("TQmse4c",
    which must be trained), wherever FAISS takes an encoding when the C++
    factory supports it ("IVF256,TQmse4", "HNSW32,TQ2.5", ...). Strings
    without a TQ token go to faiss.index_factory and come back as normal
    faiss objects."""
    if not isinstance(description, str):
        raise ValueError(
            "description must be a str, not %s" % type(description).__name__)
    if not _is_turbo_description(description):
        return faiss.index_factory(d, description, metric)
    _check_int(d, "d")
    if not -2**31 <= d < 2**31:  # the C++ factory's d is an int
        raise ValueError("index_factory: dimension d=%d does not fit an int"
                         % d)
    index = index_factory_c(int(d), description, metric)  # noqa: F405
    return _as_python_class(index, index)


def downcast_index(index):
    """the most derived Python class of index: ours for our indexes (and
    faiss.IndexHNSW, which faiss 1.7.3's downcast does not know), else
    faiss.downcast_index(index). The result shares the C++ object: it
    lives as long as index does."""
    if not isinstance(index, faiss.Index):
        raise ValueError(
            "downcast_index needs a faiss.Index, not %s"
            % type(index).__name__)
    if isinstance(index, _OUR_CLASSES):
        return index
    down = downcast_index_c(index)  # noqa: F405
    if type(down) is faiss.Index and has_gpu_support():  # noqa: F405
        down = downcast_gpu_index_c(index)  # noqa: F405 (GPU classes)
    if type(down) is faiss.Index:  # none of the classes the typemap knows
        return faiss.downcast_index(index)
    if type(down) is type(index):
        return index
    class_wrappers.add_to_referenced_objects(down, index)
    return down


###########################################################
# codebooks
###########################################################

LloydMaxCodebook = collections.namedtuple(
    "LloydMaxCodebook", ["d", "nbits", "centroids", "thresholds", "mse"])


def get_lloyd_max_codebook(d, nbits):
    """The Lloyd-Max codebook of one coordinate of a random unit vector in
    R^d with 2^nbits levels: centroids (ascending), the thresholds between
    them and the per-coordinate mean squared error, as numpy."""
    _check_int(d, "d")
    _check_int(nbits, "nbits")  # a width of 2.5 is two codebooks
    d, nbits = int(d), int(nbits)
    k = lloyd_max_codebook_k(d, nbits)  # noqa: F405 (checks d and nbits)
    centroids = np.empty(k, dtype=np.float32)
    thresholds = np.empty(max(k - 1, 1), dtype=np.float32)
    mse = lloyd_max_codebook_copy(  # noqa: F405
        d, nbits, swig_ptr(centroids), swig_ptr(thresholds))
    return LloydMaxCodebook(d, nbits, centroids, thresholds[:k - 1], mse)


###########################################################
# reading and writing (faiss_turbo/index_io.h): indexes with one of ours
# inside get our file format, the others FAISS's
###########################################################


def write_index(index, fname_or_writer):
    """write to a file name or a faiss.IOWriter"""
    if fname_or_writer is None:
        raise TypeError("write_index: a file name or an IOWriter, not None")
    write_index_c(index, fname_or_writer)  # noqa: F405


def read_index(fname_or_reader, io_flags=0):
    """read from a file name or a faiss.IOReader; our classes come back as
    ours, the others as faiss's"""
    if fname_or_reader is None:
        raise TypeError("read_index: a file name or an IOReader, not None")
    index = read_index_c(fname_or_reader, io_flags)  # noqa: F405
    return _as_python_class(index, index)


def serialize_index(index):
    """the index as a numpy uint8 array (as faiss.serialize_index)"""
    writer = faiss.VectorIOWriter()
    write_index_c(index, writer)  # noqa: F405
    return faiss.vector_to_array(writer.data)


def deserialize_index(data):
    """the index of a serialize_index array"""
    reader = faiss.VectorIOReader()
    faiss.copy_array_to_vector(np.ascontiguousarray(data, dtype=np.uint8),
                               reader.data)
    return read_index(reader)


def clone_index(index):
    """a deep copy of any index, ours included"""
    copy = clone_index_c(index)  # noqa: F405
    return _as_python_class(copy, copy)


###########################################################
# drop-in use from code written for FAISS (dropin.py)
###########################################################

from .dropin import install, uninstall, is_installed  # noqa: E402
from .parameters import ParameterSpace  # noqa: E402

__all__ += ["install", "uninstall", "is_installed", "ParameterSpace",
            "SearchParametersTurboQuant", "SearchParametersIVFTurboQuant",
            "TQ_SCAN_EXACT", "TQ_SCAN_INT8"]


###########################################################
# GPU indexes (gpu.py): only when the module was built with CUDA; else
# absent, as in faiss's CPU build. get_num_gpus() is always there.
###########################################################

__all__ += ["get_num_gpus", "has_gpu_support", "gpu_is_emulated"]

if has_gpu_support():  # noqa: F405
    from .gpu import *  # noqa: E402,F401,F403
    from . import gpu as _gpu  # noqa: E402

    __all__ += _gpu.__all__
