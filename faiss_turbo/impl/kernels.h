/**
 * Small float kernels with a fixed operation order. Every scoring path (flat
 * scan, IVF scanner, TurboQuantizer::score) uses them, so their results
 * agree bit for bit and do not depend on threads.
 */
#pragma once

#include <cstddef>

namespace faiss_turbo {

/// sum_i a[i] * b[i] with 8 accumulators (lane i % 8), combined pairwise
float dot_lanes(const float* a, const float* b, size_t d);

/// y += alpha * x
void axpy(size_t d, float alpha, const float* x, float* y);

/// no NaN or Inf among the n values: a branch-free pass
bool all_finite(const float* x, size_t n);

/// throws (naming `what`, the row and the dimension) unless the n x d
/// values are all finite; `row` names a row in the message ("vector",
/// "query"), counted from `first` (x is rows first.. of the caller's
/// input). all_finite first: the common case costs a read.
void check_finite(
        size_t n,
        size_t d,
        const float* x,
        const char* what,
        const char* row = "vector",
        size_t first = 0);

} // namespace faiss_turbo
