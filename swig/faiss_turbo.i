/**
 * Python bridge of faiss-turbo. Built with the same SWIG (4.x, default type
 * table) as the faiss package next to it, so the two modules share one
 * runtime type table: our classes derive from faiss's proxies and our
 * objects go into faiss's C++ functions as faiss::Index*.
 *
 * FAISS's headers are %import-ed (not %include-d): SWIG learns the base
 * classes without wrapping them a second time. The numpy-friendly methods
 * come from faiss.class_wrappers in python/faiss_turbo/__init__.py.
 */

%module(package="faiss_turbo") swigfaiss_turbo

// 321: names like apply/type in the codec's headers; 403: faiss's
// IndexFlatCodes looks abstract to SWIG (it is wrapped by faiss, not here)
#pragma SWIG nowarn=321
#pragma SWIG nowarn=403

// integer types spelled as faiss's swig file does, so that pointer types
// get the same mangled names (int64_t* is _p_long in both modules)
typedef unsigned char uint8_t;
typedef unsigned short uint16_t;
typedef unsigned int uint32_t;
typedef signed char int8_t;
typedef short int16_t;
typedef int int32_t;
#ifdef SWIGWORDSIZE64
typedef unsigned long uint64_t;
typedef long int64_t;
#else
typedef unsigned long long uint64_t;
typedef long long int64_t;
#endif
typedef uint64_t size_t;

#define __restrict

%{
#include <cstring>
#include <string>

#include <faiss/IndexHNSW.h>
#include <faiss/impl/FaissException.h>

#include <faiss_turbo/IndexHNSWTurboQuant.h>
#include <faiss_turbo/IndexIVFTurboQuant.h>
#include <faiss_turbo/IndexIVFTurboQuantFastScan.h>
#include <faiss_turbo/IndexTurboQuant.h>
#include <faiss_turbo/IndexTurboQuantFastScan.h>
#include <faiss_turbo/SearchParametersTurboQuant.h>
#include <faiss_turbo/TurboQuantizer.h>
#include <faiss_turbo/impl/codebook.h>
#include <faiss_turbo/impl/scan_prescan.h>
#include <faiss_turbo/impl/simd/int8_kernels.h>
#include <faiss_turbo/index_factory.h>
#include <faiss_turbo/index_io.h>
%}

/********************************************************
 * GIL and exceptions: as faiss's swig file, the GIL is released around
 * every C++ call and C++ exceptions become Python exceptions.
 ********************************************************/

%exception {
    Py_BEGIN_ALLOW_THREADS
    try {
        $action
    } catch (faiss::FaissException& e) {
        PyEval_RestoreThread(_save);
        if (!PyErr_Occurred()) {
            PyErr_SetString(PyExc_RuntimeError, e.what());
        }
        SWIG_fail;
    } catch (std::bad_alloc& ba) {
        PyEval_RestoreThread(_save);
        PyErr_SetString(PyExc_MemoryError, "std::bad_alloc");
        SWIG_fail;
    } catch (const std::exception& ex) {
        PyEval_RestoreThread(_save);
        std::string what = std::string("C++ exception ") + ex.what();
        PyErr_SetString(PyExc_RuntimeError, what.c_str());
        SWIG_fail;
    }
    Py_END_ALLOW_THREADS
}

%include <std_string.i>

/********************************************************
 * FAISS's classes: known to SWIG, wrapped by the faiss module
 ********************************************************/

%import(module="faiss") <faiss/impl/platform_macros.h>
%import(module="faiss") <faiss/MetricType.h>
%import(module="faiss") <faiss/Index.h>
%import(module="faiss") <faiss/IndexFlatCodes.h>
%import(module="faiss") <faiss/IndexIVF.h>
%import(module="faiss") <faiss/IndexHNSW.h>
%import(module="faiss") <faiss/impl/io.h>

// idx_t and the FAISS version macros the headers below test
%import <faiss_turbo/impl/compat.h>

/********************************************************
 * Enums of the codec (rotation.h and qjl.h: only their enums)
 ********************************************************/

%ignore faiss_turbo::matmul_rows;
%ignore faiss_turbo::Rotation;
%ignore faiss_turbo::DenseRotation;
%ignore faiss_turbo::HadamardRotation;
%ignore faiss_turbo::make_rotation;
%ignore faiss_turbo::QJLProjection;

%include <faiss_turbo/impl/rotation.h>
%include <faiss_turbo/impl/qjl.h>

/********************************************************
 * The codec: read-only from Python
 ********************************************************/

%ignore faiss_turbo::TQQueries;
%ignore faiss_turbo::TQCodeScalars;
%ignore faiss_turbo::dot_lanes;
%ignore faiss_turbo::TurboQuantizer::TurboQuantizer();
// the codec is read-only from Python (index.tq is a view into the index,
// whose stored codes depend on it): centering is the index's train()
%ignore faiss_turbo::TurboQuantizer::train_mean;
%ignore faiss_turbo::TurboQuantizer::set_layout;
%ignore faiss_turbo::TurboQuantizer::build_tables;
%ignore faiss_turbo::TurboQuantizer::check_tables;
%ignore faiss_turbo::TurboQuantizer::decode_rotated;
%ignore faiss_turbo::TurboQuantizer::prepare_queries;
%ignore faiss_turbo::TurboQuantizer::combine;
%ignore faiss_turbo::TurboQuantizer::score;
%ignore faiss_turbo::TurboQuantizer::rotation;
%ignore faiss_turbo::TurboQuantizer::cb_hi;
%ignore faiss_turbo::TurboQuantizer::cb_lo;
%ignore faiss_turbo::TurboQuantizer::qjl;
// a std::vector: exposed as numpy by the package (see get_mean below)
%ignore faiss_turbo::TurboQuantizer::mean;

%feature("kwargs") faiss_turbo::TurboQuantizer::TurboQuantizer;
%feature("compactdefaultargs") faiss_turbo::TurboQuantizer::TurboQuantizer;

%immutable;
%include <faiss_turbo/TurboQuantizer.h>
%mutable;

%extend faiss_turbo::TurboQuantizer {
    size_t mean_size() const {
        return $self->mean.size();
    }

    /// copies the mean (mean_size() floats) to out
    void get_mean(float* out) const {
        if (!$self->mean.empty()) {
            memcpy(out,
                   $self->mean.data(),
                   sizeof(float) * $self->mean.size());
        }
    }
}

/********************************************************
 * The index
 ********************************************************/

// search(x, k, params=SearchParametersTurboQuant(rerank_factor=2)) and
// the index's search_defaults (what ParameterSpace tunes)
// (IVF: SearchParametersIVFTurboQuant, a faiss.SearchParametersIVF, from
// the same header)
%ignore faiss_turbo::flat_search_options;
%include <faiss_turbo/SearchParametersTurboQuant.h>

// the default constructor leaves no codec tables: C++ deserialization only
%ignore faiss_turbo::IndexTurboQuant::IndexTurboQuant();
%ignore faiss_turbo::IndexTurboQuant::prepare_queries;
%ignore faiss_turbo::IndexTurboQuant::get_FlatCodesDistanceComputer;
// changing these would desynchronize the stored codes from the codec
%immutable faiss_turbo::IndexTurboQuant::tq;
%immutable faiss_turbo::IndexTurboQuant::centered;

// keyword arguments for the one constructor left
%feature("kwargs") faiss_turbo::IndexTurboQuant::IndexTurboQuant;
%feature("compactdefaultargs") faiss_turbo::IndexTurboQuant::IndexTurboQuant;

%include <faiss_turbo/IndexTurboQuant.h>

// the fast-scan layout: the same, its blocks stay C++ (get_codes /
// add_codes give the row codes, numpy in the package)
%ignore faiss_turbo::IndexTurboQuantFastScan::IndexTurboQuantFastScan();
// one constructor keeps keyword arguments: the conversion from a flat
// index (hidden from SWIG in the header) is from_flat,
// IndexTurboQuantFastScan(flat) in the package
%newobject faiss_turbo::IndexTurboQuantFastScan::from_flat;
%ignore faiss_turbo::IndexTurboQuantFastScan::prepare_queries;
%ignore faiss_turbo::IndexTurboQuantFastScan::codes;
%rename(get_codes_c) faiss_turbo::IndexTurboQuantFastScan::get_codes;
%rename(add_codes_c) faiss_turbo::IndexTurboQuantFastScan::add_codes;
%immutable faiss_turbo::IndexTurboQuantFastScan::tq;
%immutable faiss_turbo::IndexTurboQuantFastScan::centered;
%feature("kwargs") faiss_turbo::IndexTurboQuantFastScan::IndexTurboQuantFastScan;
%feature("compactdefaultargs")
        faiss_turbo::IndexTurboQuantFastScan::IndexTurboQuantFastScan;

%include <faiss_turbo/IndexTurboQuantFastScan.h>

// readers' empty constructor is C++ only: one constructor keeps keywords
%ignore faiss_turbo::IndexHNSWTurboQuant::IndexHNSWTurboQuant();
%feature("kwargs") faiss_turbo::IndexHNSWTurboQuant::IndexHNSWTurboQuant;
%include <faiss_turbo/IndexHNSWTurboQuant.h>

%extend faiss_turbo::IndexTurboQuantFastScan {
    static faiss_turbo::IndexTurboQuantFastScan* from_flat(
            const faiss_turbo::IndexTurboQuant& flat) {
        return new faiss_turbo::IndexTurboQuantFastScan(flat);
    }

    /// bytes held by the blocks and the per-code floats
    size_t memory_bytes() const {
        return $self->codes.bytes();
    }
}

// the same, plus the coarse quantizer (referenced by the package, as faiss
// does for its IVF indexes)
%ignore faiss_turbo::IndexIVFTurboQuant::IndexIVFTurboQuant();
%ignore faiss_turbo::IndexIVFTurboQuant::get_InvertedListScanner;
// FAISS's own wrapper reaches our override (virtual), whatever the
// subset type is in this FAISS version
%ignore faiss_turbo::IndexIVFTurboQuant::copy_subset_to;
%newobject faiss_turbo::IndexIVFTurboQuant::clone;
%immutable faiss_turbo::IndexIVFTurboQuant::tq;
%immutable faiss_turbo::IndexIVFTurboQuant::centered;
// the constructor's: the codes and the codec's layout (ip_offset) follow it
%immutable faiss_turbo::IndexIVFTurboQuant::by_residual;
%feature("kwargs") faiss_turbo::IndexIVFTurboQuant::IndexIVFTurboQuant;
%feature("compactdefaultargs")
        faiss_turbo::IndexIVFTurboQuant::IndexIVFTurboQuant;

%include <faiss_turbo/IndexIVFTurboQuant.h>

// IVF lists in blocks: the codec's fields and methods are the base's
%ignore faiss_turbo::IndexIVFTurboQuantFastScan::IndexIVFTurboQuantFastScan();
%ignore faiss_turbo::IndexIVFTurboQuantFastScan::blocked_lists;
%newobject faiss_turbo::IndexIVFTurboQuantFastScan::clone;
%feature("kwargs")
        faiss_turbo::IndexIVFTurboQuantFastScan::IndexIVFTurboQuantFastScan;
%feature("compactdefaultargs")
        faiss_turbo::IndexIVFTurboQuantFastScan::IndexIVFTurboQuantFastScan;

%include <faiss_turbo/IndexIVFTurboQuantFastScan.h>

%extend faiss_turbo::IndexIVFTurboQuantFastScan {
    /// bytes held by the lists' blocks, per-code floats and ids
    size_t memory_bytes() const {
        return $self->blocked_lists().bytes();
    }

    /// list l's row codes (list_size x code_size bytes) into out
    void get_list_codes_c(size_t l, uint8_t* out) const {
        $self->blocked_lists().get_rows(l, out);
    }
}

/********************************************************
 * Factory, downcast, files: faiss::Index* results come out as the most
 * derived of our classes, else as a plain faiss.Index (the package then
 * applies faiss.downcast_index)
 ********************************************************/

%typemap(out) faiss::Index* {
    if (auto tq_index = dynamic_cast<faiss_turbo::IndexTurboQuant*>($1)) {
        $result = SWIG_NewPointerObj(
                SWIG_as_voidptr(tq_index),
                $descriptor(faiss_turbo::IndexTurboQuant*),
                $owner);
    } else if (auto fs =
                       dynamic_cast<faiss_turbo::IndexTurboQuantFastScan*>(
                               $1)) {
        $result = SWIG_NewPointerObj(
                SWIG_as_voidptr(fs),
                $descriptor(faiss_turbo::IndexTurboQuantFastScan*),
                $owner);
    } else if (auto ivfs = dynamic_cast<
                       faiss_turbo::IndexIVFTurboQuantFastScan*>($1)) {
        $result = SWIG_NewPointerObj(
                SWIG_as_voidptr(ivfs),
                $descriptor(faiss_turbo::IndexIVFTurboQuantFastScan*),
                $owner);
    } else if (auto ivf = dynamic_cast<faiss_turbo::IndexIVFTurboQuant*>($1)) {
        $result = SWIG_NewPointerObj(
                SWIG_as_voidptr(ivf),
                $descriptor(faiss_turbo::IndexIVFTurboQuant*),
                $owner);
    } else if (auto th = dynamic_cast<faiss_turbo::IndexHNSWTurboQuant*>($1)) {
        $result = SWIG_NewPointerObj(
                SWIG_as_voidptr(th),
                $descriptor(faiss_turbo::IndexHNSWTurboQuant*),
                $owner);
    } else if (auto hnsw = dynamic_cast<faiss::IndexHNSW*>($1)) {
        // the factory's "HNSW32,TQmse4": faiss.downcast_index (1.7.3) does
        // not know the plain IndexHNSW
        $result = SWIG_NewPointerObj(
                SWIG_as_voidptr(hnsw), $descriptor(faiss::IndexHNSW*), $owner);
    } else if ($1) {
        $result = SWIG_NewPointerObj(
                SWIG_as_voidptr($1), $descriptor(faiss::Index*), $owner);
    } else {
        $result = SWIG_Py_Void();
    }
}

%rename(index_factory_c) faiss_turbo::index_factory;
%newobject faiss_turbo::index_factory;

%include <faiss_turbo/index_factory.h>

// files by name, and faiss's IOWriter / IOReader (VectorIOWriter gives
// serialize_index in the package); FILE* and std::vector are not wrapped
%rename(write_index_c) faiss_turbo::write_index;
%rename(read_index_c) faiss_turbo::read_index;
%rename(clone_index_c) faiss_turbo::clone_index;
%ignore faiss_turbo::write_index(const faiss::Index*, FILE*);
%ignore faiss_turbo::read_index(FILE*, int);
%ignore faiss_turbo::serialize_index;
%ignore faiss_turbo::deserialize_index;
%newobject faiss_turbo::read_index;
%newobject faiss_turbo::clone_index;

%include <faiss_turbo/index_io.h>

// whether searches apply SearchParametersTurboQuant.prescan on this CPU
// (its SIMD kernels: AVX2 + BMI2, or AVX-512 VBMI); elsewhere they scan
// every code
namespace faiss_turbo {
bool prescan_supported();
}

%inline %{
namespace faiss_turbo {

/// the same object seen through the out typemap (not owned)
faiss::Index* downcast_index_c(faiss::Index* index) {
    return index;
}

/// the int8 scan's kernels on this CPU ("avx512vnni", "avx2" or
/// "scalar"), as FAISS_TURBO_SIMD leaves them
const char* int8_kernels_name() {
    return int8_kernels_best().name;
}

/// number of centroids of the Lloyd-Max codebook
size_t lloyd_max_codebook_k(size_t d, int nbits) {
    return get_lloyd_max_codebook(d, nbits)->k();
}

/// copies the codebook: centroids (k floats), thresholds (k - 1 floats);
/// returns the per-coordinate mse
double lloyd_max_codebook_copy(
        size_t d,
        int nbits,
        float* centroids,
        float* thresholds) {
    auto cb = get_lloyd_max_codebook(d, nbits);
    memcpy(centroids, cb->centroids.data(), sizeof(float) * cb->k());
    memcpy(thresholds,
           cb->thresholds.data(),
           sizeof(float) * cb->thresholds.size());
    return cb->mse;
}

} // namespace faiss_turbo
%}

/********************************************************
 * GPU indexes (gpu/), wrapped when swig runs with -DFAISS_TURBO_GPU (set
 * by swig/CMakeLists.txt when the CUDA library is built). Without it the
 * module has no GPU names, as faiss's CPU-only module: code tests
 * hasattr(faiss_turbo, "StandardGpuResources"); get_num_gpus() is always
 * there (0 without GPU support). The package's gpu.py adds the numpy
 * methods and the device checks.
 ********************************************************/

#ifdef FAISS_TURBO_GPU

%{
#include <gpu/GpuCloner.h>
#include <gpu/GpuIndexIVFTurboQuant.h>
#include <gpu/GpuIndexTurboQuant.h>
#include <gpu/StandardGpuResources.h>
#include <gpu/impl/CudaUtils.h>
%}

// streams, handles and raw device memory mean nothing in Python
%ignore faiss_turbo::gpu::GpuResources::getStream;
%ignore faiss_turbo::gpu::GpuResources::getBlasHandle;
%ignore faiss_turbo::gpu::GpuResources::allocMemory;
%ignore faiss_turbo::gpu::GpuResources::freeMemory;
%ignore faiss_turbo::gpu::StandardGpuResources::getStream;
%ignore faiss_turbo::gpu::StandardGpuResources::getBlasHandle;
%ignore faiss_turbo::gpu::StandardGpuResources::allocMemory;
%ignore faiss_turbo::gpu::StandardGpuResources::freeMemory;

%include <gpu/GpuResources.h>
%include <gpu/StandardGpuResources.h>

// device pointers: a host array passed there would be a CUDA fault
%ignore faiss_turbo::gpu::GpuIndexTurboQuant::add_from_device;
%ignore faiss_turbo::gpu::GpuIndexTurboQuant::encode_device;
// two constructors (from a CPU index, from parameters): positional
// arguments only, as faiss's GPU classes (SWIG has no keywords for
// overloads)
%feature("compactdefaultargs")
        faiss_turbo::gpu::GpuIndexTurboQuant::GpuIndexTurboQuant;

%include <gpu/GpuIndexTurboQuant.h>

%newobject faiss_turbo::gpu::GpuIndexIVFTurboQuant::toCpu;
// two constructors as well: positional arguments
%feature("compactdefaultargs")
        faiss_turbo::gpu::GpuIndexIVFTurboQuant::GpuIndexIVFTurboQuant;

// the lists are sized by nlist: a write would send searches past them
%immutable faiss_turbo::gpu::GpuIndexIVFTurboQuant::nlist;
%include <gpu/GpuIndexIVFTurboQuant.h>

// a new GPU index comes out as its class (the general faiss::Index*
// typemap above knows the CPU classes, which index_gpu_to_cpu returns)
%typemap(out) faiss::Index* index_cpu_to_gpu {
    if (auto flat = dynamic_cast<faiss_turbo::gpu::GpuIndexTurboQuant*>($1)) {
        $result = SWIG_NewPointerObj(
                SWIG_as_voidptr(flat),
                $descriptor(faiss_turbo::gpu::GpuIndexTurboQuant*),
                $owner);
    } else if (auto ivf =
                       dynamic_cast<faiss_turbo::gpu::GpuIndexIVFTurboQuant*>(
                               $1)) {
        $result = SWIG_NewPointerObj(
                SWIG_as_voidptr(ivf),
                $descriptor(faiss_turbo::gpu::GpuIndexIVFTurboQuant*),
                $owner);
    } else {
        $result = SWIG_NewPointerObj(
                SWIG_as_voidptr($1), $descriptor(faiss::Index*), $owner);
    }
}

// the package's downcast_index: a faiss.Index proxy of a GPU index (from
// an IndexShards, an IndexIDMap...) as its class (not owned)
%typemap(out) faiss::Index* downcast_gpu_index_c =
        faiss::Index* index_cpu_to_gpu;

%inline %{
namespace faiss_turbo {
faiss::Index* downcast_gpu_index_c(faiss::Index* index) {
    return index;
}
} // namespace faiss_turbo
%}

%rename(index_cpu_to_gpu_c) faiss_turbo::gpu::index_cpu_to_gpu;
%rename(index_gpu_to_cpu_c) faiss_turbo::gpu::index_gpu_to_cpu;
%newobject faiss_turbo::gpu::index_cpu_to_gpu;
%newobject faiss_turbo::gpu::index_gpu_to_cpu;

%include <gpu/GpuCloner.h>

%inline %{
namespace faiss_turbo {

/// faiss.get_num_gpus(): CUDA devices visible, 0 without a driver
int get_num_gpus() {
    return faiss_turbo::gpu::getNumDevices();
}

/// throws, naming why, unless CUDA device `device` (-1: any) can be used:
/// the GPU classes call it first, so that Python gets this message rather
/// than one about a later step
void gpu_require_device(int device) {
    int n = 0;
    cudaError_t err = cudaGetDeviceCount(&n);
    if (err != cudaSuccess) {
        cudaGetLastError(); // not sticky: a later call may succeed
        FAISS_THROW_FMT(
                "no CUDA device: cudaGetDeviceCount failed with CUDA error "
                "%d (%s)",
                (int)err,
                cudaGetErrorString(err));
    }
    FAISS_THROW_IF_NOT_MSG(n > 0, "no CUDA device: cudaGetDeviceCount found 0");
    FAISS_THROW_IF_NOT_FMT(
            device >= -1 && device < n,
            "CUDA device %d does not exist (%d CUDA devices visible)",
            device,
            n);
}

/// whether this module was built with the GPU classes
bool has_gpu_support() {
    return true;
}

/// whether its GPU kernels are emulated on the CPU (a test build,
/// FAISS_TURBO_GPU_EMULATION: one emulated device, slow)
bool gpu_is_emulated() {
#ifdef FAISS_TURBO_GPU_EMULATED
    return true;
#else
    return false;
#endif
}

} // namespace faiss_turbo
%}

#else // no FAISS_TURBO_GPU

%inline %{
namespace faiss_turbo {

int get_num_gpus() {
    return 0;
}

bool has_gpu_support() {
    return false;
}

bool gpu_is_emulated() {
    return false;
}

} // namespace faiss_turbo
%}

#endif
