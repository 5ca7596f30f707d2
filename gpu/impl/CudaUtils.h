/**
 * CUDA error checks that throw FAISS exceptions, the device count and a
 * scope guard for the current device. Host code only.
 */
#pragma once

#include <cublas_v2.h>
#include <cuda_runtime_api.h>

#include <faiss/impl/FaissAssert.h>

#define TQ_CUDA_CHECK(expr)                                                    \
    do {                                                                       \
        cudaError_t err_ = (expr);                                             \
        FAISS_THROW_IF_NOT_FMT(                                                \
            err_ == cudaSuccess,                                               \
            "CUDA error %d (%s) in %s",                                        \
            (int)err_,                                                         \
            cudaGetErrorString(err_),                                          \
            #expr);                                                            \
    } while (0)

#define TQ_CUBLAS_CHECK(expr)                                                  \
    do {                                                                       \
        cublasStatus_t st_ = (expr);                                           \
        FAISS_THROW_IF_NOT_FMT(                                                \
            st_ == CUBLAS_STATUS_SUCCESS,                                      \
            "cuBLAS error %d in %s",                                           \
            (int)st_,                                                          \
            #expr);                                                            \
    } while (0)

/// after a kernel launch: a bad configuration shows up here
#define TQ_CUDA_CHECK_LAUNCH() TQ_CUDA_CHECK(cudaGetLastError())

namespace faiss_turbo {
namespace gpu {

/// number of CUDA devices; 0 when there is no driver or no device
int getNumDevices();

/// throws unless `device` names an existing device
void checkDevice(int device);

/// whether p points to device memory (managed and host memory are not)
bool isDevicePointer(const void* p);

/// the device whose memory p points into, or -1 (host, managed memory)
int pointerDevice(const void* p);

/// throws the out-of-memory exception of every GpuResources: `what` needs
/// `bytes` on `device` (current), which has this much free (asked here),
/// `held` of it through these resources; `cause` says what refused it.
/// Clears the CUDA error an allocation failure leaves (it is not sticky)
[[noreturn]] void throwOutOfMemory(
    int device,
    const char* what,
    size_t bytes,
    size_t held,
    const char* cause);

/// makes `device` current for the scope, restoring the previous one
class DeviceScope {
   public:
    explicit DeviceScope(int device);
    ~DeviceScope();

   private:
    int prev_ = -1;
};

} // namespace gpu
} // namespace faiss_turbo
