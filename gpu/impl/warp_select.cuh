/**
 * Warp-level k-selection over 64-bit keys (select_k.cu makes them: the
 * float key's order-preserving bits, then the id or its complement, so that
 * ties go to the smaller or the larger id).
 *
 * A warp holds the L = 32 R smallest keys it has folded in, sorted, in R
 * registers per lane (element j = 32 r + lane). It reads 32 keys at a time,
 * one per lane, and folds them in only when one beats its k-th key (after
 * the first few batches, most do not: one vote, no shuffle): sort the 32 by
 * a bitonic network of shuffles; pair list element L-1-i with new key i and
 * keep the smaller of each pair, which leaves the L smallest of both in
 * bitonic order; then a bitonic merge sorts them. A block's warps merge
 * their lists pairwise the same way.
 */
#pragma once

#include <cstdint>

namespace faiss_turbo {
namespace gpu {

using SelectKey = unsigned long long;
/// no entry: above every real key (a real key's top bits are at most
/// those of +inf, 0xff800000)
constexpr SelectKey kNoSelectKey = ~0ull;

/// compare-exchange with lane (lane ^ st): this lane keeps the smaller key
/// of the pair if keep_min, else the larger
__device__ __forceinline__ SelectKey
exchange_lanes(SelectKey v, int st, bool keep_min) {
    const SelectKey o = __shfl_xor_sync(0xffffffffu, v, st);
    return (o < v) == keep_min ? o : v;
}

/// the warp's 32 keys (one per lane) sorted ascending over the lanes
__device__ __forceinline__ SelectKey warp_sort32(SelectKey v) {
    const int lane = threadIdx.x & 31;
#pragma unroll
    for (int size = 2; size <= 32; size *= 2) {
#pragma unroll
        for (int st = size / 2; st > 0; st /= 2) {
            const bool up = (lane & size) == 0;
            v = exchange_lanes(v, st, ((lane & st) == 0) == up);
        }
    }
    return v;
}

/// sorts a bitonic sequence of 32 R keys (element j = 32 r + lane),
/// ascending if up, else descending
template <int R>
__device__ __forceinline__ void warp_bitonic_merge(SelectKey (&v)[R], bool up) {
    const int lane = threadIdx.x & 31;
#pragma unroll
    for (int rs = R / 2; rs > 0; rs /= 2) { // strides of 32 rs: in-lane
#pragma unroll
        for (int r = 0; r < R; r++) {
            if ((r & rs) == 0) {
                const SelectKey a = v[r], b = v[r + rs];
                const bool swap = up ? b < a : a < b;
                v[r] = swap ? b : a;
                v[r + rs] = swap ? a : b;
            }
        }
    }
#pragma unroll
    for (int st = 16; st > 0; st /= 2) {
        const bool keep_min = ((lane & st) == 0) == up;
#pragma unroll
        for (int r = 0; r < R; r++) {
            v[r] = exchange_lanes(v[r], st, keep_min);
        }
    }
}

/// folds the warp's 32 keys x (one per lane, any order) into the sorted
/// list v: v becomes the 32 R smallest of both, sorted. Pairing a[j] with
/// b[L-1-j] (a ascending, b ascending) and keeping the smaller leaves the
/// L smallest of both, rising while a's element wins and falling after:
/// a bitonic sequence
template <int R>
__device__ __forceinline__ void warp_fold32(SelectKey (&v)[R], SelectKey x) {
    const int lane = threadIdx.x & 31;
    x = warp_sort32(x);
    // list element L-1-i against new key i: the tail register holds
    // elements 32 (R-1) + lane, paired with new key 31 - lane
    // (the other elements pair with keys past the 32: +inf, and stay)
    x = __shfl_sync(0xffffffffu, x, 31 - lane);
    v[R - 1] = x < v[R - 1] ? x : v[R - 1];
    warp_bitonic_merge<R>(v, true);
}

/// folds another warp's sorted list (32 R keys, in shared memory) into v
template <int R>
__device__ __forceinline__ void
warp_fold_list(SelectKey (&v)[R], const SelectKey* other) {
    const int lane = threadIdx.x & 31;
#pragma unroll
    for (int r = 0; r < R; r++) {
        const SelectKey o = other[(R - 1 - r) * 32 + 31 - lane];
        v[r] = o < v[r] ? o : v[r];
    }
    warp_bitonic_merge<R>(v, true);
}

/// element k - 1 of the sorted list, on every lane
template <int R>
__device__ __forceinline__ SelectKey
warp_kth(const SelectKey (&v)[R], int k) {
    // masks, not v[(k - 1) / 32]: a runtime index would put v in local
    // memory
    SelectKey t = 0;
#pragma unroll
    for (int r = 0; r < R; r++) {
        t |= v[r] & (0ull - (SelectKey)(r == (k - 1) / 32));
    }
    return __shfl_sync(0xffffffffu, t, (k - 1) & 31);
}

} // namespace gpu
} // namespace faiss_turbo
