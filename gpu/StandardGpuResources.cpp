#include <gpu/StandardGpuResources.h>

#include <cstdio>

#include <gpu/impl/CudaUtils.h>

namespace faiss_turbo {
namespace gpu {

StandardGpuResources::~StandardGpuResources() {
    for (auto& it : devices_) {
        try { // a destructor must not throw (the runtime may be unloading)
            DeviceScope scope(it.first);
            for (auto& a : it.second.sizes) {
                cudaFree(a.first);
            }
            release(it.second);
        } catch (...) {
        }
    }
}

void StandardGpuResources::release(PerDevice& pd) {
    if (pd.blas) {
        cublasDestroy(pd.blas);
        pd.blas = nullptr;
    }
    if (pd.stream) {
        cudaStreamDestroy(pd.stream);
        pd.stream = nullptr;
    }
}

void StandardGpuResources::setMemoryLimit(size_t bytes) {
    std::lock_guard<std::mutex> lock(mutex_);
    limit_ = bytes;
}

StandardGpuResources::PerDevice& StandardGpuResources::init_device(int device) {
    auto it = devices_.find(device);
    if (it != devices_.end()) {
        return it->second;
    }
    checkDevice(device);
    DeviceScope scope(device);
    PerDevice pd;
    try {
        TQ_CUDA_CHECK(
            cudaStreamCreateWithFlags(&pd.stream, cudaStreamNonBlocking));
        TQ_CUBLAS_CHECK(cublasCreate(&pd.blas));
        TQ_CUBLAS_CHECK(cublasSetStream(pd.blas, pd.stream));
        return devices_.emplace(device, pd).first->second;
    } catch (...) { // nothing half made is kept (a later call retries)
        release(pd);
        throw;
    }
}

cudaStream_t StandardGpuResources::getStream(int device) {
    std::lock_guard<std::mutex> lock(mutex_);
    return init_device(device).stream;
}

cublasHandle_t StandardGpuResources::getBlasHandle(int device) {
    std::lock_guard<std::mutex> lock(mutex_);
    return init_device(device).blas;
}

void* StandardGpuResources::allocMemory(
    int device, size_t bytes, const char* what) {
    std::lock_guard<std::mutex> lock(mutex_);
    PerDevice& pd = init_device(device);
    if (bytes == 0) {
        return nullptr;
    }
    FAISS_THROW_IF_NOT_FMT(
        limit_ == 0 || pd.used + bytes <= limit_,
        "GPU out of memory on device %d: %s needs %zd bytes, %zd in use "
        "and the limit set on the resources is %zd",
        device,
        what,
        bytes,
        pd.used,
        limit_);
    DeviceScope scope(device);
    void* p = nullptr;
    cudaError_t err = cudaMalloc(&p, bytes);
    if (err != cudaSuccess) {
        char cause[128];
        snprintf(
            cause,
            sizeof(cause),
            "CUDA error %d: %s",
            (int)err,
            cudaGetErrorString(err));
        throwOutOfMemory(device, what, bytes, pd.used, cause);
    }
    pd.used += bytes;
    pd.sizes[p] = bytes;
    return p;
}

void StandardGpuResources::freeMemory(int device, void* p) {
    if (!p) {
        return;
    }
    std::lock_guard<std::mutex> lock(mutex_);
    PerDevice& pd = init_device(device);
    auto it = pd.sizes.find(p);
    FAISS_THROW_IF_NOT_MSG(
        it != pd.sizes.end(), "freeMemory: pointer not from this object");
    DeviceScope scope(device);
    // synchronizes: pending work is done. Forgotten even if it fails (a
    // sticky error): the caller drops the pointer, nothing frees it again
    const cudaError_t err = cudaFree(p);
    pd.used -= it->second;
    pd.sizes.erase(it);
    TQ_CUDA_CHECK(err);
}

size_t StandardGpuResources::getMemoryUsage(int device) const {
    std::lock_guard<std::mutex> lock(mutex_);
    auto it = devices_.find(device);
    return it == devices_.end() ? 0 : it->second.used;
}

} // namespace gpu
} // namespace faiss_turbo
