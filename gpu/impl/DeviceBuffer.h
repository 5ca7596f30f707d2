/**
 * A typed device array owned through GpuResources (so it is counted and its
 * out-of-memory errors are FAISS exceptions). Growing allocates the new
 * array before releasing the old one: a failed growth leaves the contents.
 */
#pragma once

#include <cstddef>
#include <utility>

#include <gpu/GpuResources.h>
#include <gpu/impl/CudaUtils.h>

namespace faiss_turbo {
namespace gpu {

template <typename T> class DeviceBuffer {
   public:
    DeviceBuffer() = default;

    DeviceBuffer(GpuResources* res, int device, const char* what)
        : res_(res), device_(device), what_(what) {}

    ~DeviceBuffer() {
        release();
    }

    DeviceBuffer(const DeviceBuffer&) = delete;
    DeviceBuffer& operator=(const DeviceBuffer&) = delete;

    DeviceBuffer(DeviceBuffer&& o) noexcept {
        *this = std::move(o);
    }

    DeviceBuffer& operator=(DeviceBuffer&& o) noexcept {
        if (this != &o) {
            release();
            res_ = o.res_;
            device_ = o.device_;
            what_ = o.what_;
            ptr_ = o.ptr_;
            cap_ = o.cap_;
            o.ptr_ = nullptr;
            o.cap_ = 0;
        }
        return *this;
    }

    T* data() const {
        return ptr_;
    }

    size_t capacity() const {
        return cap_;
    }

    /// capacity for n elements, contents not kept; `slack` extra bytes
    /// after the end stay readable (the decoders read whole words)
    void reserve_discard(size_t n, size_t slack = 0) {
        if (n <= cap_) {
            return;
        }
        T* p = (T*)res_->allocMemory(device_, n * sizeof(T) + slack, what_);
        release();
        ptr_ = p;
        cap_ = n;
    }

    /// capacity for n elements, the first `keep` kept
    void reserve_keep(size_t n, size_t keep, cudaStream_t s, size_t slack = 0) {
        if (n <= cap_) {
            return;
        }
        T* p = (T*)res_->allocMemory(device_, n * sizeof(T) + slack, what_);
        if (keep > 0) {
            cudaError_t err = cudaMemcpyAsync(
                p, ptr_, keep * sizeof(T), cudaMemcpyDeviceToDevice, s);
            if (err != cudaSuccess) {
                res_->freeMemory(device_, p);
                TQ_CUDA_CHECK(err);
            }
        }
        release();
        ptr_ = p;
        cap_ = n;
    }

    void release() {
        if (ptr_) {
            try {
                res_->freeMemory(device_, ptr_);
            } catch (...) {
                // a sticky CUDA error: the context is lost anyway
            }
            ptr_ = nullptr;
            cap_ = 0;
        }
    }

   private:
    GpuResources* res_ = nullptr;
    int device_ = 0;
    const char* what_ = "";
    T* ptr_ = nullptr;
    size_t cap_ = 0;
};

} // namespace gpu
} // namespace faiss_turbo
