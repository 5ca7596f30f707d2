/**
 * Test double of FAISS-GPU's faiss/gpu/GpuResources.h, for checking
 * gpu/FaissGpuResources where FAISS has no GPU module (Debian's does not).
 * It declares, with FAISS's names and signatures, only what the adapter
 * and its test use: the allocation request, the abstract resources object
 * and its provider. Where FAISS is built with GPU support, the build uses
 * FAISS's own header instead (gpu/CMakeLists.txt).
 */
#pragma once

#include <cublas_v2.h>
#include <cuda_runtime_api.h>

#include <cstddef>
#include <memory>
#include <utility>
#include <vector>

namespace faiss {
namespace gpu {

enum AllocType { Other = 0, FlatData = 1, IVFLists = 2, Quantizer = 3 };

enum MemorySpace { Temporary = 0, Device = 1, Unified = 2 };

struct AllocInfo {
    AllocInfo() {}
    AllocInfo(AllocType at, int dev, MemorySpace sp, cudaStream_t st)
        : type(at), device(dev), space(sp), stream(st) {}

    AllocType type = AllocType::Other;
    int device = 0;
    MemorySpace space = MemorySpace::Device;
    cudaStream_t stream = nullptr;
};

struct AllocRequest : public AllocInfo {
    AllocRequest() {}
    AllocRequest(
            AllocType at, int dev, MemorySpace sp, cudaStream_t st, size_t sz)
        : AllocInfo(at, dev, sp, st), size(sz) {}

    size_t size = 0;
};

class GpuResources {
   public:
    virtual ~GpuResources() {}
    virtual void initializeForDevice(int device) = 0;
    virtual bool supportsBFloat16(int device) = 0;
    virtual cublasHandle_t getBlasHandle(int device) = 0;
    virtual cudaStream_t getDefaultStream(int device) = 0;
    virtual void setDefaultStream(int device, cudaStream_t stream) = 0;
    virtual std::vector<cudaStream_t> getAlternateStreams(int device) = 0;
    virtual void* allocMemory(const AllocRequest& req) = 0;
    virtual void deallocMemory(int device, void* in) = 0;
    virtual size_t getTempMemoryAvailable(int device) const = 0;
    virtual std::pair<void*, size_t> getPinnedMemory() = 0;
    virtual cudaStream_t getAsyncCopyStream(int device) = 0;
};

class GpuResourcesProvider {
   public:
    virtual ~GpuResourcesProvider() {}
    virtual std::shared_ptr<GpuResources> getResources() = 0;
};

} // namespace gpu
} // namespace faiss
