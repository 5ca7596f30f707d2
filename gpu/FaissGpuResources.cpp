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

cudaStream_t FaissGpuResources::stream_locked(int device) {
    checkDevice(device);
    return res_->getDefaultStream(device);
}

cudaStream_t FaissGpuResources::getStream(int device) {
    std::lock_guard<std::mutex> lock(mutex_);
    return stream_locked(device);
}

cublasHandle_t FaissGpuResources::getBlasHandle(int device) {
    std::lock_guard<std::mutex> lock(mutex_);
    cudaStream_t stream = stream_locked(device);
    cublasHandle_t handle = res_->getBlasHandle(device);
    TQ_CUBLAS_CHECK(cublasSetStream(handle, stream));
    return handle;
}

void* FaissGpuResources::allocMemory(
        int device, size_t bytes, const char* what) {
    std::lock_guard<std::mutex> lock(mutex_);
    cudaStream_t stream = stream_locked(device);
    if (bytes == 0) {
        return nullptr;
    }
    // FAISS's StandardGpuResources allocates on the current device
    DeviceScope scope(device);
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
        cudaMemGetInfo(&free_b, &total_b);
        cudaGetLastError(); // an allocation failure is not sticky
        FAISS_THROW_FMT(
                "GPU out of memory on device %d: %s needs %zd bytes; the "
                "device has %zd of %zd bytes free, %zd held by this index's "
                "resources (FAISS GPU resources: %s)",
                device,
                what,
                bytes,
                free_b,
                total_b,
                used_[device],
                e.what());
    }
    FAISS_THROW_IF_NOT_FMT(
            p,
            "FAISS GPU resources returned no memory for %s (%zd bytes)",
            what,
            bytes);
    try {
        sizes_[p] = Alloc{device, bytes, stream};
    } catch (...) { // no record, no memory
        res_->deallocMemory(device, p);
        throw;
    }
    used_[device] += bytes;
    return p;
}

void FaissGpuResources::freeMemory(int device, void* p) {
    if (!p) {
        return;
    }
    std::lock_guard<std::mutex> lock(mutex_);
    auto it = sizes_.find(p);
    FAISS_THROW_IF_NOT_MSG(
            it != sizes_.end() && it->second.device == device,
            "freeMemory: pointer not from this object on this device");
    const Alloc a = it->second;
    // forgotten even if what follows fails: nothing frees it again
    sizes_.erase(it);
    used_[device] -= a.bytes;
    // the work queued on the memory is done before it goes back (a pooling
    // allocator may hand it out again at once): it was queued on the
    // stream it was allocated on, or on the current one
    DeviceScope scope(device);
    cudaError_t err = cudaStreamSynchronize(a.stream);
    cudaStream_t now = stream_locked(device);
    if (err == cudaSuccess && now != a.stream) {
        err = cudaStreamSynchronize(now);
    }
    // after a failed sync (a kernel fault) the memory is kept: FAISS's
    // deallocMemory aborts when cudaFree fails, where we can throw
    TQ_CUDA_CHECK(err);
    res_->deallocMemory(device, p);
}

size_t FaissGpuResources::getMemoryUsage(int device) const {
    std::lock_guard<std::mutex> lock(mutex_);
    auto it = used_.find(device);
    return it == used_.end() ? 0 : it->second;
}

} // namespace gpu
} // namespace faiss_turbo
