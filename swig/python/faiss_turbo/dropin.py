"""Drop-in use from code written for FAISS: install() makes faiss's own
module-level functions know the TurboQuant indexes, uninstall() puts the
very same function objects back.

    import faiss, faiss_turbo
    faiss_turbo.install()
    index = faiss.index_factory(128, "IVF1024,TQmse4")   # was "IVF1024,PQ32"
    faiss.write_index(index, "x.index")
    faiss.ParameterSpace().set_index_parameter(index, "nprobe", 16)

Each replacement looks at its argument and sends it to faiss-turbo only
when TurboQuant is involved (a "TQ..." token in a factory string, an index
containing one of our indexes, a faiss-turbo file); everything else goes to
the original FAISS function with the caller's arguments, unchanged.

The names are replaced on the faiss module and wherever a loaded faiss
submodule (faiss.contrib.*, faiss.class_wrappers) holds the original under
the same name, which covers faiss's own `from faiss import read_index`
done before install(); a module of the caller's that imported the name
before install() keeps FAISS's function (call install() first, or use
faiss.read_index). A copy taken after install() keeps the replacement
after uninstall().
"""

import sys
import threading

import numpy as np

import faiss
from faiss import class_wrappers

import faiss_turbo as _ft
from . import swigfaiss_turbo as _swig

__all__ = ["install", "uninstall", "is_installed", "faiss_original"]

# the names replaced on faiss (all exist in FAISS 1.7.3 .. 1.15)
PATCHED_NAMES = (
    "index_factory",
    "read_index",
    "write_index",
    "serialize_index",
    "deserialize_index",
    "clone_index",
    "downcast_index",
    "extract_index_ivf",
    "try_extract_index_ivf",
)

_lock = threading.Lock()
# faiss's functions that the replacements call: taken at import, then at
# each install() (kept after uninstall() for copies of a replacement)
_originals = {name: getattr(faiss, name) for name in PATCHED_NAMES}
# while installed: [(module, name, original)]
_replaced = []
_installed = []


def is_installed():
    return bool(_installed)


def faiss_original(name):
    """faiss's own function `name` (one of PATCHED_NAMES), installed or not"""
    return _originals[name]


###########################################################
# what is ours
###########################################################


def _contains_turbo(index):
    return isinstance(index, faiss.Index) and _swig.index_contains_turbo(index)


_magic = []


def _turbo_magic():
    """the first bytes of every faiss-turbo file, taken from a written
    file rather than restated here"""
    if not _magic:
        tiny = _ft.serialize_index(_ft.IndexTurboQuant(2, 1))
        _magic.append(tiny[:4].tobytes())
    return _magic[0]


def _file_is_turbo(fname):
    try:
        with open(fname, "rb") as f:
            return f.read(4) == _turbo_magic()
    except (OSError, TypeError, ValueError):
        return False  # FAISS opens it and reports the error as before


def _array_is_turbo(data):
    return (isinstance(data, np.ndarray) and data.dtype == np.uint8
            and data.ndim == 1 and data.size >= 4
            and data[:4].tobytes() == _turbo_magic())


def _reader_is_turbo(reader):
    """True / False when the next bytes can be seen without consuming them
    (a file name, a faiss.VectorIOReader), None otherwise"""
    if isinstance(reader, str):
        return _file_is_turbo(reader)
    if isinstance(reader, faiss.VectorIOReader):
        rp = int(reader.rp)
        if reader.data.size() < rp + 4:
            return False
        head = bytes(reader.data.at(rp + i) for i in range(4))
        return head == _turbo_magic()
    if isinstance(reader, faiss.IOReader):
        return None
    return False


def _owning(index):
    """faiss_turbo returns a FAISS wrapper (IndexIDMap...) as a proxy that
    references the proxy owning the C++ object; FAISS's unpickling keeps
    only `.this` of what faiss.deserialize_index returns. Chain the owner's
    SWIG pointer object to `.this` (SwigPyObject.append, as SWIG does for
    multiple inheritance), so that `.this` alone keeps the object alive.
    Not `thisown`: acquiring a pointer object that faiss's module made
    without ownership unbalances SWIG 4.1's shared runtime, whose type
    table is then freed while in use."""
    refs = getattr(index, "referenced_objects", None)
    if index is None or index.thisown or not refs:
        return index
    for owner in refs:
        if (owner.thisown and int(owner.this) == int(index.this)
                and index.this.next() is None):
            index.this.append(owner.this)
            break
    return index


###########################################################
# the replacements: same signatures as FAISS's
###########################################################


def _description_of(args, kwargs):
    if len(args) >= 2:
        return args[1]
    return kwargs.get("description")


def index_factory(*args, **kwargs):
    description = _description_of(args, kwargs)
    if isinstance(description, str) and _ft._is_turbo_description(description):
        return _owning(_ft.index_factory(*args, **kwargs))
    return _originals["index_factory"](*args, **kwargs)


def downcast_index(index):
    result = _originals["downcast_index"](index)
    our_classes = _ft._OUR_CLASSES
    if not isinstance(index, faiss.Index) or isinstance(result, our_classes):
        return result
    if isinstance(index, our_classes):
        return index
    down = _swig.downcast_index_c(index)
    # ours; or faiss.IndexHNSW over our storage, which FAISS 1.7.3 leaves
    # a plain faiss.Index (for FAISS's own indexes its answer stands)
    take = isinstance(down, our_classes) or (
        type(result) is faiss.Index and type(down) is not faiss.Index
        and _contains_turbo(index))
    if not take:
        return result
    class_wrappers.add_to_referenced_objects(down, index)
    return down


def _as_ours(ivf, owner):
    """ivf as IndexIVFTurboQuant when it is one (faiss gives an IndexIVF)"""
    if ivf is None or isinstance(ivf, _ft._OUR_CLASSES):
        return ivf
    down = _swig.downcast_index_c(ivf)
    if not isinstance(down, _ft._OUR_CLASSES):
        return ivf
    class_wrappers.add_to_referenced_objects(down, owner)
    return down


def extract_index_ivf(index):
    return _as_ours(_originals["extract_index_ivf"](index), index)


def try_extract_index_ivf(index):
    return _as_ours(_originals["try_extract_index_ivf"](index), index)


def write_index(*args):
    if args and _contains_turbo(args[0]):
        return _ft.write_index(*args)
    return _originals["write_index"](*args)


def read_index(*args):
    turbo = _reader_is_turbo(args[0]) if args else False
    if turbo is False:
        return _originals["read_index"](*args)
    # ours, or a reader that cannot be peeked at: faiss-turbo's reader
    # takes both formats (FAISS files through faiss::read_index)
    return _owning(_ft.read_index(*args))


def serialize_index(index):
    if _contains_turbo(index):
        return _ft.serialize_index(index)
    return _originals["serialize_index"](index)


def deserialize_index(data):
    if _array_is_turbo(data):
        return _owning(_ft.deserialize_index(data))
    return _originals["deserialize_index"](data)


def clone_index(index):
    if _contains_turbo(index):
        return _owning(_ft.clone_index(index))
    return _originals["clone_index"](index)


_REPLACEMENTS = {name: globals()[name] for name in PATCHED_NAMES}


###########################################################
# install / uninstall
###########################################################


def _faiss_modules():
    """faiss and its loaded pure-Python submodules; not the SWIG modules
    (faiss.swigfaiss*, faiss.loader), whose functions are the originals"""
    skip = ("faiss.swigfaiss", "faiss.loader")
    for name, module in list(sys.modules.items()):
        if module is None or name.partition(".")[0] != "faiss":
            continue
        if name.startswith(skip):
            continue
        yield module


def install():
    """Replace faiss's index_factory, read_index, write_index,
    serialize_index, deserialize_index, clone_index, downcast_index,
    extract_index_ivf and try_extract_index_ivf by versions that also
    handle TurboQuant indexes. Calling it again does nothing."""
    with _lock:
        if _installed:
            return
        _originals.update(
            {name: getattr(faiss, name) for name in PATCHED_NAMES})
        _installed.append(True)
        for module in _faiss_modules():
            for name, original in _originals.items():
                if vars(module).get(name) is original:
                    setattr(module, name, _REPLACEMENTS[name])
                    _replaced.append((module, name, original))


def uninstall():
    """Put back the function objects install() replaced (a no-op when not
    installed): faiss is then exactly what it was before install(). A name
    that someone replaced again after install() is left to them."""
    with _lock:
        for module, name, original in reversed(_replaced):
            if vars(module).get(name) is _REPLACEMENTS[name]:
                setattr(module, name, original)
        _replaced.clear()
        _installed.clear()
