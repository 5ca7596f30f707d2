/**
 * k-selection (launch_select_k): per (row, segment), the k smallest keys
 * with their ids, sorted, ties to the smaller id, like the CPU's heaps.
 *
 * k <= 128: warp_select_kernel (warp_select.cuh): each warp keeps its own
 * sorted top 32 R in registers over a strided share of the entries, then
 * the block's warps merge their lists pairwise. One read of the keys.
 *
 * larger k: select_k_kernel, block-wide: up to kCap entries are sorted
 * directly in shared memory (bitonic sort); longer rows first narrow the
 * range with 8-bit radix passes (histogram of the next digit among the
 * entries that share the current prefix) until the entries at or below the
 * prefix holding the k-th smallest key fit in kCap.
 */
#include <gpu/impl/kernels.h>

#include <algorithm>

#include <gpu/impl/CudaUtils.h>
#include <gpu/impl/candidate_rows.cuh>
#include <gpu/impl/warp_select.cuh>

namespace faiss_turbo {
namespace gpu {

namespace {

constexpr int kSelectThreads = 512;
constexpr int kCap = 4096;
constexpr int kWarpSelectThreads = 256;

/// the key's order as bits; NaN goes last, as +inf (the CPU's heaps never
/// keep a NaN score: its slot then shows as empty)
__device__ __forceinline__ uint32_t ordered_bits(float f) {
    f = f != f ? __int_as_float(0x7f800000) : f;
    uint32_t u = __float_as_uint(f == 0.0f ? 0.0f : f); // -0 == +0
    return (u & 0x80000000u) ? ~u : (u | 0x80000000u);
}

__device__ __forceinline__ float from_ordered_bits(uint32_t u) {
    return __uint_as_float((u & 0x80000000u) ? (u & 0x7fffffffu) : ~u);
}

/// what a selection launch reads and writes (launch_select_k's arguments)
struct SelectArgs {
    const float* keys;
    const int* ids;
    CandidateRows rows;
    int seg_len;
    int k;
    uint32_t flip; ///< ~0: ties to the larger id (ids enter reversed)
    float* out_keys;
    int* out_ids;
};

/// the entries of the block's (row, segment): row row0 + blockIdx.y,
/// segment blockIdx.x
struct SegmentKeys {
    const float* keys;
    const int* ids; ///< null: the entry's position in the row
    int beg;        ///< the segment's first position in the row
    int m;          ///< its entries
    uint32_t flip;
    float* out_keys; ///< its k results
    int* out_ids;

    /// entry i; an id < 0 is no entry
    __device__ __forceinline__ SelectKey key(int i) const {
        const int id = ids ? ids[i] : beg + i;
        return id < 0 ? kNoSelectKey
                      : ((SelectKey)ordered_bits(keys[i]) << 32) |
                        ((uint32_t)id ^ flip);
    }

    /// result i: key, or (+inf, -1) for no entry
    __device__ __forceinline__ void write(int i, SelectKey key) const {
        const bool none = key == kNoSelectKey;
        out_keys[i] = none ? __int_as_float(0x7f800000) // +inf
                           : from_ordered_bits((uint32_t)(key >> 32));
        out_ids[i] = none ? -1 : (int)((uint32_t)key ^ flip);
    }
};

__device__ __forceinline__ SegmentKeys
segment_keys(const SelectArgs& a, int row0) {
    const int row = row0 + blockIdx.y, seg = blockIdx.x;
    const size_t start = row_start(a.rows, row), out =
            ((size_t)row * gridDim.x + seg) * a.k;
    SegmentKeys s;
    s.beg = seg * a.seg_len;
    s.m = max(0, min(row_count(a.rows, row), s.beg + a.seg_len) - s.beg);
    s.keys = a.keys + start + s.beg;
    s.ids = a.ids ? a.ids + start + s.beg : nullptr;
    s.flip = a.flip;
    s.out_keys = a.out_keys + out;
    s.out_ids = a.out_ids + out;
    return s;
}

__global__ void __launch_bounds__(kSelectThreads) select_k_kernel(
    SelectArgs a,
    int row0) {
    __shared__ SelectKey buf[kCap];
    __shared__ unsigned int hist[256];
    __shared__ SelectKey s_prefix;
    __shared__ int s_below, s_eq, s_n, s_in;
    // s_n, s_in: entries collected below the prefix's range, within it
    const int t = threadIdx.x;
    const SegmentKeys seg = segment_keys(a, row0);
    const int m = seg.m;
    int shift = 64;
    SelectKey prefix = 0;
    if (m > kCap) {
        if (t == 0) {
            s_below = 0;
        }
        while (true) {
            shift -= 8;
            for (int i = t; i < 256; i += blockDim.x) {
                hist[i] = 0;
            }
            __syncthreads();
            for (int i = t; i < m; i += blockDim.x) {
                SelectKey key = seg.key(i);
                if (shift == 56 || (key >> (shift + 8)) == prefix) {
                    atomicAdd(&hist[(key >> shift) & 255], 1u);
                }
            }
            __syncthreads();
            if (t == 0) {
                int cum = s_below, dsel = 255;
                for (int dg = 0; dg < 256; dg++) {
                    if (cum + (int)hist[dg] >= a.k) {
                        dsel = dg;
                        break;
                    }
                    cum += hist[dg];
                }
                s_below = cum;
                s_eq = hist[dsel];
                s_prefix = (prefix << 8) | (unsigned)dsel;
            }
            __syncthreads();
            prefix = s_prefix;
            if (s_below + s_eq <= kCap || shift == 0) {
                break;
            }
            __syncthreads();
        }
    }
    // collect the entries below the prefix's range (s_below < k of them),
    // then those within it as room allows (all of them if m <= kCap): where
    // 8 passes leave more than kCap, they are equal keys, any of them will do
    if (t == 0) {
        s_n = 0;
        s_in = 0;
    }
    __syncthreads();
    const int below = shift == 64 ? 0 : s_below;
    for (int i = t; i < m; i += blockDim.x) {
        const SelectKey key = seg.key(i);
        const SelectKey top = shift == 64 ? prefix : key >> shift;
        if (top < prefix) {
            buf[atomicAdd(&s_n, 1)] = key;
        } else if (top == prefix) {
            const int pos = below + atomicAdd(&s_in, 1);
            if (pos < kCap) {
                buf[pos] = key;
            }
        }
    }
    __syncthreads();
    const int nsel = min(below + s_in, kCap);
    int npow = 1;
    while (npow < nsel) {
        npow *= 2;
    }
    for (int i = nsel + t; i < npow; i += blockDim.x) {
        buf[i] = kNoSelectKey;
    }
    __syncthreads();
    for (int size = 2; size <= npow; size *= 2) {
        for (int st = size / 2; st > 0; st /= 2) {
            for (int i = t; i < npow / 2; i += blockDim.x) {
                int lo = 2 * i - (i & (st - 1));
                int hi = lo + st;
                bool asc = (lo & size) == 0;
                SelectKey a = buf[lo], b = buf[hi];
                if ((a > b) == asc) {
                    buf[lo] = b;
                    buf[hi] = a;
                }
            }
            __syncthreads();
        }
    }
    for (int i = t; i < a.k; i += blockDim.x) {
        seg.write(i, i < nsel ? buf[i] : kNoSelectKey);
    }
}

template <int R>
__global__ void __launch_bounds__(kWarpSelectThreads) warp_select_kernel(
    SelectArgs a,
    int row0) {
    constexpr int kWarps = kWarpSelectThreads / 32;
    __shared__ SelectKey lists[kWarps][32 * R];
    const SegmentKeys seg = segment_keys(a, row0);
    const int warp = threadIdx.x / 32, lane = threadIdx.x & 31;
    SelectKey v[R];
#pragma unroll
    for (int r = 0; r < R; r++) {
        v[r] = kNoSelectKey;
    }
    SelectKey kth = kNoSelectKey;
    for (int b = warp * 32; b < seg.m; b += kWarpSelectThreads) {
        const SelectKey x = b + lane < seg.m ? seg.key(b + lane) : kNoSelectKey;
        if (__any_sync(0xffffffffu, x < kth)) {
            warp_fold32<R>(v, x);
            kth = warp_kth<R>(v, a.k);
        }
    }
    // warps 2h i + h hand their lists to warps 2h i
    for (int h = 1; h < kWarps; h *= 2) {
        if (warp % (2 * h) == h) {
#pragma unroll
            for (int r = 0; r < R; r++) {
                lists[warp][32 * r + lane] = v[r];
            }
        }
        __syncthreads();
        if (warp % (2 * h) == 0) {
            warp_fold_list<R>(v, lists[warp + h]);
        }
        __syncthreads();
    }
    if (warp == 0) {
#pragma unroll
        for (int r = 0; r < R; r++) {
            if (32 * r + lane < a.k) {
                seg.write(32 * r + lane, v[r]);
            }
        }
    }
}

} // namespace

void launch_select_k(
    const float* keys,
    const int* ids,
    const CandidateRows& rows,
    int nseg,
    int seg_len,
    int k,
    float* out_keys,
    int* out_ids,
    cudaStream_t s,
    bool larger_id_first,
    SelectPath path) {
    FAISS_THROW_IF_NOT_FMT(
        k >= 1 && k <= kMaxSelectK,
        "GPU k-selection supports 1 <= k <= %d, not k=%d",
        kMaxSelectK,
        k);
    const bool warp = path == SelectPath::Warp ||
            (path == SelectPath::Auto && k <= kWarpSelectMaxK);
    FAISS_THROW_IF_NOT_FMT(
        !warp || k <= kWarpSelectMaxK,
        "GPU warp k-selection supports k <= %d, not k=%d",
        kWarpSelectMaxK,
        k);
    const SelectArgs a{
        keys,
        ids,
        rows,
        seg_len,
        k,
        larger_id_first ? ~0u : 0u,
        out_keys,
        out_ids};
    for (int r0 = 0; r0 < rows.nrows; r0 += kMaxGridY) {
        dim3 grid(nseg, std::min(kMaxGridY, rows.nrows - r0));
        if (!warp) {
            select_k_kernel<<<grid, kSelectThreads, 0, s>>>(a, r0);
        } else if (k <= 32) {
            warp_select_kernel<1><<<grid, kWarpSelectThreads, 0, s>>>(a, r0);
        } else if (k <= 64) {
            warp_select_kernel<2><<<grid, kWarpSelectThreads, 0, s>>>(a, r0);
        } else {
            warp_select_kernel<4><<<grid, kWarpSelectThreads, 0, s>>>(a, r0);
        }
        TQ_CUDA_CHECK_LAUNCH();
    }
}

} // namespace gpu
} // namespace faiss_turbo
