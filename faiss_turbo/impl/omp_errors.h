/**
 * Exceptions out of OpenMP regions. An exception that leaves a region (or
 * one of its iterations) calls std::terminate: out of memory for a
 * thread's scratch ended the process. Each piece of work inside a region
 * runs through OmpErrors::run, which keeps the first exception and skips
 * the work that follows; rethrow(), after the region, throws it on the
 * calling thread. Worksharing constructs (omp for) stay outside run(): all
 * threads must still reach them. Where a lambda cannot capture (clang,
 * inside a generic lambda), a try whose handler calls capture() does the
 * same.
 */
#pragma once

#include <atomic>
#include <exception>
#include <mutex>

namespace faiss_turbo {

class OmpErrors {
   public:
    /// f(), unless some work failed already; its exception is kept
    template <class F> void run(F&& f) noexcept {
        if (failed_.load(std::memory_order_relaxed)) {
            return;
        }
        try {
            f();
        } catch (...) {
            capture();
        }
    }

    /// in a catch handler: keeps its exception if it is the first
    void capture() noexcept {
        std::lock_guard<std::mutex> lock(mutex_);
        if (!first_) {
            first_ = std::current_exception();
        }
        failed_.store(true, std::memory_order_relaxed);
    }

    bool failed() const {
        return failed_.load(std::memory_order_relaxed);
    }

    /// throws the first kept exception, if any (after the region)
    void rethrow() {
        if (first_) {
            std::rethrow_exception(first_);
        }
    }

   private:
    std::atomic<bool> failed_{false};
    std::mutex mutex_;
    std::exception_ptr first_;
};

} // namespace faiss_turbo
