/**
 * What the GPU test programs share: every GPU test skips (GTEST_SKIP) when
 * no CUDA device is visible, so CI without a GPU passes them as skipped;
 * device copies of host arrays, and back.
 */
#pragma once

#include <gtest/gtest.h>

#include <algorithm>
#include <memory>
#include <vector>

#include <gpu/impl/CudaUtils.h>

#define SKIP_WITHOUT_GPU()                                                     \
    do {                                                                       \
        if (faiss_turbo::gpu::getNumDevices() == 0) {                          \
            GTEST_SKIP() << "no CUDA device visible";                          \
        }                                                                      \
    } while (0)

namespace tqtest {

struct CudaFree {
    void operator()(void* p) const {
        cudaFree(p);
    }
};

/// device memory the test owns
template <typename T>
using DevicePtr = std::unique_ptr<T, CudaFree>;

/// a copy of v on the device (one element at least)
template <typename T>
DevicePtr<T> to_device_array(const std::vector<T>& v) {
    T* p = nullptr;
    TQ_CUDA_CHECK(
        cudaMalloc((void**)&p, std::max<size_t>(v.size(), 1) * sizeof(T)));
    DevicePtr<T> out(p);
    TQ_CUDA_CHECK(cudaMemcpy(
        p, v.data(), v.size() * sizeof(T), cudaMemcpyHostToDevice));
    TQ_CUDA_CHECK(cudaDeviceSynchronize()); // a pageable copy may still land
    return out;
}

/// the first n elements of p
template <typename T>
std::vector<T> to_host_array(const DevicePtr<T>& p, size_t n) {
    std::vector<T> v(n);
    TQ_CUDA_CHECK(
        cudaMemcpy(v.data(), p.get(), n * sizeof(T), cudaMemcpyDeviceToHost));
    return v;
}

} // namespace tqtest
