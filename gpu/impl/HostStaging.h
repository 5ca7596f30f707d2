/**
 * Host views of caller pointers that may be device memory, so that the GPU
 * indexes take vectors, queries and result buffers from either side, as
 * FAISS's GPU indexes do. Queries are prepared by the CPU codec and IVF
 * assignment runs on the host, so device inputs are copied to the host once,
 * and results meant for device memory are copied there at the end.
 * Host code only.
 */
#pragma once

#include <cstdint>
#include <vector>

#include <gpu/impl/CudaUtils.h>

namespace faiss_turbo {
namespace gpu {

/// n elements at p, readable on the host: p itself, or a host copy when p
/// is device memory
template <typename T>
class HostInput {
   public:
    HostInput(const T* p, size_t n) : p_(p) {
        if (n > 0 && isDevicePointer(p)) {
            copy_.resize(n);
            TQ_CUDA_CHECK(cudaMemcpy(
                copy_.data(), p, n * sizeof(T), cudaMemcpyDeviceToHost));
            p_ = copy_.data();
        }
    }

    const T* get() const {
        return p_;
    }

   private:
    const T* p_;
    std::vector<T> copy_;
};

/// n elements to write at p: written on the host, then copied to p by
/// commit() when p is device memory
template <typename T>
class HostOutput {
   public:
    HostOutput(T* p, size_t n) : dst_(p), p_(p), n_(n) {
        if (n > 0 && isDevicePointer(p)) {
            copy_.resize(n);
            p_ = copy_.data();
        }
    }

    T* get() {
        return p_;
    }

    void commit() {
        if (p_ != dst_) {
            TQ_CUDA_CHECK(cudaMemcpy(
                dst_, p_, n_ * sizeof(T), cudaMemcpyHostToDevice));
        }
    }

   private:
    T* dst_;
    T* p_;
    size_t n_;
    std::vector<T> copy_;
};

/// a search's n x d queries and n x k results, from and to caller
/// pointers on either side: search_host gets host pointers. A k outside
/// 1..max_k stages nothing (search_host refuses it before writing).
template <typename SearchHost>
void staged_search(
        int64_t n,
        int64_t d,
        int64_t k,
        int max_k,
        const float* x,
        float* distances,
        int64_t* labels,
        SearchHost search_host) {
    FAISS_THROW_IF_NOT_FMT(n >= 0, "search: n=%ld < 0", (long)n);
    const size_t nk = k > 0 && k <= max_k ? (size_t)(n * k) : 0;
    HostInput<float> xh(x, n * d);
    HostOutput<float> dh(distances, nk);
    HostOutput<int64_t> ih(labels, nk);
    search_host(xh.get(), dh.get(), ih.get());
    dh.commit();
    ih.commit();
}

} // namespace gpu
} // namespace faiss_turbo
