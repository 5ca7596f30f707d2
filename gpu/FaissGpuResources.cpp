#include <gpu/FaissGpuResources.h>

#include <exception>
#include <string>

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
    size_t& used = used_[device]; // the entry exists before memory is held
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
        const std::string cause =
                std::string("FAISS GPU resources: ") + e.what();
        throwOutOfMemory(device, what, bytes, used, cause.c_str());
    }
    FAISS_THROW_IF_NOT_FMT(
            p,
            "FAISS GPU resources returned no memory for %s (%zu bytes)",
            what,
            bytes);
    try {
        sizes_[p] = Alloc{device, bytes};
    } catch (...) { // no record, no memory
        res_->deallocMemory(device, p);
        throw;
    }
    used += bytes;
    return p;
}

void FaissGpuResources::freeMemory(int device, void* p) {
    if (!p) {
        return;
    }
    std::unique_lock<std::mutex> lock(mutex_);
    auto it = sizes_.find(p);
    FAISS_THROW_IF_NOT_MSG(
            it != sizes_.end() && it->second.device == device,
            "freeMemory: pointer not from this object on this device");
    // forgotten even if what follows fails: nothing frees it again
    used_[device] -= it->second.bytes;
    sizes_.erase(it);
    // the work queued on the memory is done before it goes back (a pooling
    // allocator may hand it out again at once). It may have been queued on
    // any stream FAISS's default was since: the device is synchronized,
    // as cudaFree would, without the lock (other threads go on)
    lock.unlock();
    DeviceScope scope(device);
    // a failure here is a kernel fault, which the CUDA context keeps: the
    // memory stays with FAISS (whose deallocMemory aborts when cudaFree
    // fails, where we throw)
    TQ_CUDA_CHECK(cudaDeviceSynchronize());
    lock.lock();
    res_->deallocMemory(device, p);
}

size_t FaissGpuResources::getMemoryUsage(int device) const {
    std::lock_guard<std::mutex> lock(mutex_);
    auto it = used_.find(device);
    return it == used_.end() ? 0 : it->second;
}

} // namespace gpu
} // namespace faiss_turbo
