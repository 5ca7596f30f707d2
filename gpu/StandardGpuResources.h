/**
 * The default GpuResources: one stream and one cuBLAS handle per device,
 * created on first use, and cudaMalloc with per-device accounting and an
 * optional cap (to share a card, or to test out-of-memory handling).
 */
#pragma once

#include <map>
#include <mutex>

#include <gpu/GpuResources.h>

namespace faiss_turbo {
namespace gpu {

class StandardGpuResources : public GpuResources {
   public:
    StandardGpuResources() = default;
    ~StandardGpuResources() override;

    StandardGpuResources(const StandardGpuResources&) = delete;
    StandardGpuResources& operator=(const StandardGpuResources&) = delete;

    /// allocations past `bytes` on one device fail like an out-of-memory
    /// (0: no cap other than the card's)
    void setMemoryLimit(size_t bytes);

    cudaStream_t getStream(int device) override;
    cublasHandle_t getBlasHandle(int device) override;
    void* allocMemory(int device, size_t bytes, const char* what) override;
    void freeMemory(int device, void* p) override;
    size_t getMemoryUsage(int device) const override;

   private:
    struct PerDevice {
        cudaStream_t stream = nullptr;
        cublasHandle_t blas = nullptr;
        size_t used = 0;
        std::map<void*, size_t> sizes;
    };

    PerDevice& init_device(int device); // with mutex_ held
    static void release(PerDevice& pd); // its handle and stream

    mutable std::mutex mutex_;
    std::map<int, PerDevice> devices_;
    size_t limit_ = 0;
};

} // namespace gpu
} // namespace faiss_turbo
