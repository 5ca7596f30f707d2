#include <gpu/impl/CudaUtils.h>

namespace faiss_turbo {
namespace gpu {

int getNumDevices() {
    int n = 0;
    if (cudaGetDeviceCount(&n) != cudaSuccess) {
        cudaGetLastError(); // no driver: not an error for the caller
        return 0;
    }
    return n;
}

void checkDevice(int device) {
    int n = getNumDevices();
    FAISS_THROW_IF_NOT_FMT(
        device >= 0 && device < n,
        "GPU device %d does not exist (%d CUDA devices visible)",
        device,
        n);
}

void throwOutOfMemory(
    int device,
    const char* what,
    size_t bytes,
    size_t held,
    const char* cause) {
    cudaGetLastError();
    size_t free_b = 0, total_b = 0;
    cudaMemGetInfo(&free_b, &total_b);
    FAISS_THROW_FMT(
        "GPU out of memory on device %d: %s needs %zu bytes; the device has "
        "%zu of %zu bytes free, %zu held by this index's resources (%s)",
        device,
        what,
        bytes,
        free_b,
        total_b,
        held,
        cause);
}

bool isDevicePointer(const void* p) {
    return pointerDevice(p) >= 0;
}

int pointerDevice(const void* p) {
    cudaPointerAttributes a;
    if (cudaPointerGetAttributes(&a, p) != cudaSuccess) {
        cudaGetLastError(); // older runtimes: plain host memory is an error
        return -1;
    }
    return a.type == cudaMemoryTypeDevice ? a.device : -1;
}

DeviceScope::DeviceScope(int device) {
    TQ_CUDA_CHECK(cudaGetDevice(&prev_));
    if (prev_ != device) {
        TQ_CUDA_CHECK(cudaSetDevice(device));
    }
}

DeviceScope::~DeviceScope() {
    int cur = -1;
    if (cudaGetDevice(&cur) == cudaSuccess && cur != prev_ && prev_ >= 0) {
        cudaSetDevice(prev_);
    }
}

} // namespace gpu
} // namespace faiss_turbo
