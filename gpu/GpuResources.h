/**
 * What the GPU indexes need from their environment: a stream and a cuBLAS
 * handle per device, and device memory. Abstract so that another owner (a
 * FAISS-GPU GpuResourcesProvider, an application's pool) can back it;
 * StandardGpuResources is the default implementation.
 */
#pragma once

#include <cstddef>

#include <cublas_v2.h>
#include <cuda_runtime_api.h>

namespace faiss_turbo {
namespace gpu {

class GpuResources {
   public:
    virtual ~GpuResources() {}

    /// the stream that orders all of an index's work on `device`
    virtual cudaStream_t getStream(int device) = 0;

    /// a cuBLAS handle bound to getStream(device)
    virtual cublasHandle_t getBlasHandle(int device) = 0;

    /// device memory on `device`; throws faiss::FaissException naming
    /// `what`, the size and the free memory when it cannot be had
    virtual void* allocMemory(int device, size_t bytes, const char* what) = 0;

    /// release memory from allocMemory once the work queued on it is done
    /// (implementations synchronize first)
    virtual void freeMemory(int device, void* p) = 0;

    /// bytes currently held through this object on `device`
    virtual size_t getMemoryUsage(int device) const = 0;
};

} // namespace gpu
} // namespace faiss_turbo
