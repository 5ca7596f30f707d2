/**
 * Device helpers over CandidateRows (kernels.h), shared by the rescoring
 * and selection kernels, and the grid's y extent their launches slice by.
 */
#pragma once

#include <gpu/impl/kernels.h>

namespace faiss_turbo {
namespace gpu {

/// rows (items) per launch, in blockIdx.y: a grid's y extent; more go to
/// further launches. The CPU emulation takes slices of 7, so that its
/// tests run the launches' row offsets (they hold far fewer rows)
#ifdef TQ_CUDA_EMULATION
constexpr int kMaxGridY = 7;
#else
constexpr int kMaxGridY = 65535;
#endif

__device__ __forceinline__ size_t row_start(const CandidateRows& r, int row) {
    return r.row_off ? (size_t)r.row_off[row] : (size_t)row * r.stride;
}

__device__ __forceinline__ int row_count(const CandidateRows& r, int row) {
    return r.counts ? min(r.counts[row], r.n) : r.n;
}

} // namespace gpu
} // namespace faiss_turbo
