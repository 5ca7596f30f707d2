#include <gpu/FaissGpuResources.h>

#include <exception>

#include <gpu/impl/CudaUtils.h>

namespace faiss_turbo {
namespace gpu {

namespace {

std::shared_ptr<faiss::gpu::GpuResources>
resources_of(faiss::gpu::GpuResourcesProvider* provider) {
    FAISS_THROW_IF_NOT_MSG(provider, "FaissGpuResources: null provider");
    return provider->getResources();
}

} // namespace

FaissGpuResources::FaissGpuResources(faiss::gpu::GpuResourcesProvider* provider)
    : FaissGpuResources(resources_of(provider)) {}

FaissGpuResources::FaissGpuResources(
        std::shared_ptr<faiss::gpu::GpuResources> res)
    : res_(std::move(res)) {
    FAISS_THROW_IF_NOT_MSG(res_, "FaissGpuResources: null FAISS resources");
}

cudaStream_t FaissGpuResources::getStream(int device) {
    checkDevice(device);
    return res_->getDefaultStream(device);
}

cublasHandle_t FaissGpuResources::getBlasHandle(int device) {
    cudaStream_t stream = getStream(device);
    cublasHandle_t handle = res_->getBlasHandle(device);
    TQ_CUBLAS_CHECK(cublasSetStream(handle, stream));
    return handle;
}

void* FaissGpuResources::allocMemory(
        int device, size_t bytes, const char* what) {
    cudaStream_t stream = getStream(device);
    if (bytes == 0) {
        return nullptr;
    }
    void* p = nullptr;
    try {
        p = res_->allocMemory(faiss::gpu::AllocRequest(
                faiss::gpu::AllocType::Other,
                device,
                faiss::gpu::MemorySpace::Device,
                stream,
                bytes));
    } catch (const std::exception& e) {
        // FAISS names neither our use nor, always, the card's free memory
        size_t free_b = 0, total_b = 0;
        {
            DeviceScope scope(device);
            cudaMemGetInfo(&free_b, &total_b);
        }
        cudaGetLastError(); // an allocation failure is not sticky
        FAISS_THROW_FMT(
                "GPU out of memory on device %d: %s needs %zd bytes; the "
                "device "
                "has %zd of %zd bytes free, %zd held by this index's resources "
                "(FAISS GPU resources: %s)",
                device,
                what,
                bytes,
                free_b,
                total_b,
                getMemoryUsage(device),
                e.what());
    }
    FAISS_THROW_IF_NOT_FMT(
            p,
            "FAISS GPU resources returned no memory for %s (%zd bytes)",
            what,
            bytes);
    std::lock_guard<std::mutex> lock(mutex_);
    used_[device] += bytes;
    sizes_[p] = {device, bytes};
    return p;
}

void FaissGpuResources::freeMemory(int device, void* p) {
    if (!p) {
        return;
    }
    size_t bytes = 0;
    {
        std::lock_guard<std::mutex> lock(mutex_);
        auto it = sizes_.find(p);
        FAISS_THROW_IF_NOT_MSG(
                it != sizes_.end() && it->second.first == device,
                "freeMemory: pointer not from this object on this device");
        bytes = it->second.second;
        // forgotten even if what follows fails: nothing frees it again
        sizes_.erase(it);
        used_[device] -= bytes;
    }
    // our contract: the memory's pending work is done before it goes back
    // (a pooling allocator may hand it out again at once)
    cudaError_t err = cudaStreamSynchronize(getStream(device));
    res_->deallocMemory(device, p);
    TQ_CUDA_CHECK(err);
}

size_t FaissGpuResources::getMemoryUsage(int device) const {
    std::lock_guard<std::mutex> lock(mutex_);
    auto it = used_.find(device);
    return it == used_.end() ? 0 : it->second;
}

} // namespace gpu
} // namespace faiss_turbo
