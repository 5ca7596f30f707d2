/**
 * GpuResources backed by FAISS-GPU's: where FAISS is built with its GPU
 * module, our indexes take their streams, cuBLAS handles and device memory
 * from a faiss::gpu::GpuResourcesProvider (for example a
 * faiss::gpu::StandardGpuResources), sharing its memory and stream with
 * FAISS's own GPU indexes.
 *
 *     faiss::gpu::StandardGpuResources fres;
 *     faiss_turbo::gpu::FaissGpuResources res(&fres);
 *     auto* g = faiss_turbo::gpu::index_cpu_to_gpu(&res, 0, cpu_index);
 *
 * Built only when FAISS's headers have faiss/gpu/GpuResources.h.
 */
#pragma once

#include <map>
#include <memory>
#include <mutex>

#include <faiss/gpu/GpuResources.h>

#include <gpu/GpuResources.h>

namespace faiss_turbo {
namespace gpu {

class FaissGpuResources : public GpuResources {
   public:
    /// shares the provider's resources object (the provider may go first)
    explicit FaissGpuResources(faiss::gpu::GpuResourcesProvider* provider);
    explicit FaissGpuResources(std::shared_ptr<faiss::gpu::GpuResources> res);

    FaissGpuResources(const FaissGpuResources&) = delete;
    FaissGpuResources& operator=(const FaissGpuResources&) = delete;

    /// FAISS's default stream for the device (setDefaultStream moves it)
    cudaStream_t getStream(int device) override;

    /// FAISS's handle, bound to getStream(device) on every call: FAISS
    /// binds it to its stream at each use, we to ours
    cublasHandle_t getBlasHandle(int device) override;

    /// MemorySpace::Device memory from FAISS's allocator, ordered on
    /// getStream(device), with `device` current
    void* allocMemory(int device, size_t bytes, const char* what) override;

    /// synchronizes the device (as cudaFree does), then gives the memory
    /// back to FAISS. After a kernel fault the synchronization fails: this
    /// throws and the memory stays with FAISS, which aborts when cudaFree
    /// fails in its deallocMemory, and also when it is destroyed with
    /// memory outstanding; after a fault the CUDA context is lost anyway
    void freeMemory(int device, void* p) override;

    /// bytes held through this object (not FAISS's other users)
    size_t getMemoryUsage(int device) const override;

    const std::shared_ptr<faiss::gpu::GpuResources>& getResources() const {
        return res_;
    }

   private:
    struct Alloc {
        int device;
        size_t bytes;
    };

    cudaStream_t stream_locked(int device); // with mutex_ held

    std::shared_ptr<faiss::gpu::GpuResources> res_;
    /// held across the calls into FAISS too (its resources objects are not
    /// thread-safe), so that our indexes on several threads may share this
    /// object; not across the synchronization in freeMemory
    mutable std::mutex mutex_;
    std::map<int, size_t> used_;
    std::map<void*, Alloc> sizes_;
};

} // namespace gpu
} // namespace faiss_turbo
