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

/// the metric between two d-vectors, summed in double: the squared L2
/// distance when l2, else the inner product (distance computers'
/// symmetric_dis)
float metric_between(const float* a, const float* b, size_t d, bool l2);

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

/// throws (naming `what`) if a range search's radius is NaN: no distance
/// compares to it, so the search would silently find nothing (+-inf are
/// radii: every vector, or none)
void check_radius(float radius, const char* what);

/// throws (naming `what` and the row) unless each row's squared norm is a
/// finite float: L2 distances in float (FAISS's coarse quantizers', and
/// ours) overflow past it, so that every distance of the row is +inf (a
/// flat quantizer then assigns no list, or an arbitrary one). A row with a
/// NaN or Inf is refused as check_finite refuses it (its double sum of
/// squares is NaN or Inf exactly then), so this one pass does both checks
void check_l2_norms(
        size_t n,
        size_t d,
        const float* x,
        const char* what,
        const char* row = "vector");

/// the same check for inner-product queries: a query whose squared norm
/// is no float gives scores that overflow to +-inf and NaN (no label)
void check_ip_norms(
        size_t n,
        size_t d,
        const float* x,
        const char* what,
        const char* row = "query");

} // namespace faiss_turbo
