/**
 * Exact rescoring of candidates (the CPU's score, bit for bit:
 * codec_device.cuh), per (query, candidates) row or per IVF list shared by
 * several queries, and the row gather of remove_ids.
 */
#include <gpu/impl/kernels.h>

#include <algorithm>

#include <gpu/impl/CudaUtils.h>
#include <gpu/impl/candidate_rows.cuh>
#include <gpu/impl/codec_device.cuh>

namespace faiss_turbo {
namespace gpu {

namespace {

constexpr int kRescoreThreads = 128;
/// slots a rescoring block scores, kSlotsPerRound at a time
constexpr int kSlotsPerRound = kRescoreThreads / kExactLanes;
constexpr int kSlotsPerBlock = 128;
/// dynamic shared memory any launch may use without an opt-in
constexpr size_t kDefaultSmem = 48 * 1024;

/// smem of a rescoring block: centroid tables, then its ng rows' queries
/// (ng x d floats of y, then ng x d of S y for PROD)
__device__ __forceinline__ void stage_queries(
    const CodecView& c,
    const ExactQueries& q,
    const int* rw,
    int ng,
    float* sm) {
    for (int i = threadIdx.x; i < (1 << c.b_hi); i += blockDim.x) {
        sm[i] = c.cent_hi[i];
    }
    for (int i = threadIdx.x; i < (1 << c.b_lo); i += blockDim.x) {
        sm[256 + i] = c.cent_lo[i];
    }
    float* qs = sm + 512;
    for (int g = 0; g < ng; g++) {
        for (int j = threadIdx.x; j < c.d; j += blockDim.x) {
            qs[g * c.d + j] = q.y[(size_t)rw[g] * c.d + j];
            if (c.prod) {
                qs[(ng + g) * c.d + j] = q.sy[(size_t)rw[g] * c.d + j];
            }
        }
    }
}

/** Slot i of a rescoring block's thread in round r (kExactLanes threads
 * per slot, kSlotsPerRound slots per round) and whether it is one of the
 * n; false once its whole warp is past them: the thread stops, while a
 * warp partly past still shuffles with all its threads. */
__device__ __forceinline__ bool round_slot(int r, int n, int& i, bool& in) {
    const int64_t i64 = (int64_t)blockIdx.x * kSlotsPerBlock + r +
                        threadIdx.x / kExactLanes;
    const int64_t warp0 = i64 - (threadIdx.x % 32) / kExactLanes;
    if (warp0 >= n) {
        return false;
    }
    in = i64 < n;
    i = in ? (int)i64 : 0; // past n, i64 may not fit an int
    return true;
}

/// whether the search's IDSelector keeps the code at position p
__device__ __forceinline__ bool
code_kept(const ExactQueries& q, bool in, int p) {
    return in && (!q.allow || ((q.allow[p >> 5] >> (p & 31)) & 1u));
}

template <int W>
__global__ void __launch_bounds__(kRescoreThreads) rescore_kernel(
    CodecView c,
    const uint8_t* __restrict__ codes,
    size_t ntotal,
    ExactQueries q,
    CandidateRows rows,
    int row0,
    const int* __restrict__ pos,
    const int64_t* __restrict__ labels,
    float* __restrict__ keys_out,
    int* __restrict__ ids_out) {
    extern __shared__ float sm[];
    const int row = row0 + blockIdx.y;
    stage_queries(c, q, &row, 1, sm);
    __syncthreads();
    const float* y = sm + 512;
    const float* sy = y + c.d;
    // kSlotsPerBlock slots per block in rounds (the query's copy above
    // serves them all)
    const int n = row_count(rows, row);
    const int l = threadIdx.x % kExactLanes;
    for (int r = 0; r < kSlotsPerBlock; r += kSlotsPerRound) {
        int i;
        bool in;
        if (!round_slot(r, n, i, in)) {
            return;
        }
        size_t slot = row_start(rows, row) + i;
        int p = !in            ? 0
                : !pos         ? (int)((size_t)i * ntotal / rows.n)
                : rows.pos_off ? pos[rows.pos_off[row] + i]
                               : pos[slot];
        const bool kept = code_kept(q, in, p);
        float key = exact_key<W>(
            c, codes, p, l, kept, y, sy, q.qconst[row], q.l2, sm, sm + 256);
        if (in && l == 0) {
            // left out by the selector: no entry (id -1), which selection
            // skips
            keys_out[slot] = kept ? key : __int_as_float(0x7f800000); // +inf
            ids_out[slot] = !kept ? -1 : labels ? (int)labels[p] : p;
        }
    }
}

/** rescore_kernel for IVF lists: block (x, y) scores slots x *
 * kSlotsPerBlock.. of item item0 + y's list for its ng <= G rows, each
 * code decoded once for them (exact_keys), each row's keys those that
 * rescore_kernel writes */
template <int W, int G>
__global__ void __launch_bounds__(kRescoreThreads) rescore_lists_kernel(
    CodecView c,
    const uint8_t* __restrict__ codes,
    ExactQueries q,
    CandidateRows rows,
    ListItems items,
    int item0,
    const int* __restrict__ pos,
    const int64_t* __restrict__ labels,
    float* __restrict__ keys_out,
    int* __restrict__ ids_out) {
    extern __shared__ float sm[];
    const int it = item0 + blockIdx.y;
    const int n = items.count[it];
    if ((int64_t)blockIdx.x * kSlotsPerBlock >= n) {
        return; // the whole block, before any barrier
    }
    int rw[G];
    int ng = 0;
#pragma unroll
    for (int g = 0; g < G; g++) {
        rw[g] = items.rows[(size_t)it * kListQueries + g];
        ng += rw[g] >= 0; // the rows come first
    }
    stage_queries(c, q, rw, ng, sm);
    __syncthreads();
    const float* yp[G];
    const float* syp[G];
    float qc[G];
#pragma unroll
    for (int g = 0; g < G; g++) {
        yp[g] = sm + 512 + g * c.d;
        syp[g] = sm + 512 + (ng + g) * c.d;
        qc[g] = g < ng ? q.qconst[rw[g]] : 0.0f;
    }
    const int l = threadIdx.x % kExactLanes;
    for (int r = 0; r < kSlotsPerBlock; r += kSlotsPerRound) {
        int i;
        bool in;
        if (!round_slot(r, n, i, in)) {
            return;
        }
        const int p = in ? pos[items.pos_off[it] + i] : 0;
        const bool kept = code_kept(q, in, p);
        float keys[G];
        exact_keys<W, G>(
            c, codes, p, l, kept, ng, yp, syp, qc, q.l2, sm, sm + 256, keys);
        if (in && l == 0) {
            for (int g = 0; g < ng; g++) {
                const size_t slot = row_start(rows, rw[g]) + i;
                keys_out[slot] = kept ? keys[g] : __int_as_float(0x7f800000);
                ids_out[slot] = !kept ? -1 : labels ? (int)labels[p] : p;
            }
        }
    }
}

__global__ void gather_rows_kernel(
    const uint8_t* __restrict__ src,
    const int64_t* __restrict__ keep,
    size_t n,
    size_t row_bytes,
    uint8_t* __restrict__ dst) {
    size_t total = n * row_bytes;
    for (size_t t = blockIdx.x * (size_t)blockDim.x + threadIdx.x; t < total;
         t += (size_t)gridDim.x * blockDim.x) {
        size_t r = t / row_bytes, b = t % row_bytes;
        dst[t] = src[keep[r] * row_bytes + b];
    }
}

} // namespace

void launch_rescore(
    const CodecView& c,
    const uint8_t* codes,
    size_t ntotal,
    const ExactQueries& q,
    const CandidateRows& rows,
    const int* pos,
    const int64_t* labels,
    float* keys_out,
    int* ids_out,
    cudaStream_t s) {
    if (rows.nrows == 0 || rows.n == 0) {
        return;
    }
    // centroid tables and the query: 34 KB at kMaxGpuDim, under the 48 KB
    // a launch may use without an opt-in
    const size_t smem = (512 + 2 * (size_t)c.d) * sizeof(float);
    const bool fast4 = c.n_hi == 0 && c.b_lo == 4 && c.code_size % 4 == 0;
    const int blocks =
        (int)(((int64_t)rows.n + kSlotsPerBlock - 1) / kSlotsPerBlock);
    for (int r0 = 0; r0 < rows.nrows; r0 += kMaxGridY) {
        dim3 grid(blocks, std::min(kMaxGridY, rows.nrows - r0));
        if (fast4) {
            rescore_kernel<4><<<grid, kRescoreThreads, smem, s>>>(
                c, codes, ntotal, q, rows, r0, pos, labels, keys_out, ids_out);
        } else {
            rescore_kernel<0><<<grid, kRescoreThreads, smem, s>>>(
                c, codes, ntotal, q, rows, r0, pos, labels, keys_out, ids_out);
        }
        TQ_CUDA_CHECK_LAUNCH();
    }
}

int list_queries_per_item(const CodecView& c) {
    const size_t per_row = (c.prod ? 2 : 1) * (size_t)c.d * sizeof(float);
    const size_t room = kDefaultSmem - 512 * sizeof(float);
    return (int)std::max<size_t>(
        1, std::min<size_t>(kListQueries, room / per_row));
}

namespace {

template <int W, int G>
void rescore_lists(
    const CodecView& c,
    const uint8_t* codes,
    const ExactQueries& q,
    const CandidateRows& rows,
    const ListItems& items,
    int ng,
    const int* pos,
    const int64_t* labels,
    float* keys_out,
    int* ids_out,
    cudaStream_t s) {
    const size_t smem =
        (512 + (c.prod ? 2 : 1) * (size_t)ng * c.d) * sizeof(float);
    const int blocks =
        (int)(((int64_t)items.n + kSlotsPerBlock - 1) / kSlotsPerBlock);
    for (int i0 = 0; i0 < items.nitems; i0 += kMaxGridY) {
        dim3 grid(blocks, std::min(kMaxGridY, items.nitems - i0));
        rescore_lists_kernel<W, G><<<grid, kRescoreThreads, smem, s>>>(
            c, codes, q, rows, items, i0, pos, labels, keys_out, ids_out);
        TQ_CUDA_CHECK_LAUNCH();
    }
}

/// the smallest kernel for items of at most ng rows
template <int W>
void rescore_lists_by_width(
    const CodecView& c,
    const uint8_t* codes,
    const ExactQueries& q,
    const CandidateRows& rows,
    const ListItems& items,
    int ng,
    const int* pos,
    const int64_t* labels,
    float* keys_out,
    int* ids_out,
    cudaStream_t s) {
    if (ng == 1) {
        rescore_lists<W, 1>(
            c, codes, q, rows, items, ng, pos, labels, keys_out, ids_out, s);
    } else if (ng == 2) {
        rescore_lists<W, 2>(
            c, codes, q, rows, items, ng, pos, labels, keys_out, ids_out, s);
    } else if (ng <= 4) {
        rescore_lists<W, 4>(
            c, codes, q, rows, items, ng, pos, labels, keys_out, ids_out, s);
    } else {
        rescore_lists<W, kListQueries>(
            c, codes, q, rows, items, ng, pos, labels, keys_out, ids_out, s);
    }
}

} // namespace

void launch_rescore_lists(
    const CodecView& c,
    const uint8_t* codes,
    const ExactQueries& q,
    const CandidateRows& rows,
    const ListItems& items,
    int ng,
    const int* pos,
    const int64_t* labels,
    float* keys_out,
    int* ids_out,
    cudaStream_t s) {
    FAISS_THROW_IF_NOT_FMT(
        ng >= 1 && ng <= list_queries_per_item(c),
        "launch_rescore_lists: %d rows per item, at most %d here",
        ng,
        list_queries_per_item(c));
    if (items.nitems == 0 || items.n == 0) {
        return;
    }
    const bool fast4 = c.n_hi == 0 && c.b_lo == 4 && c.code_size % 4 == 0;
    if (fast4) {
        rescore_lists_by_width<4>(
            c, codes, q, rows, items, ng, pos, labels, keys_out, ids_out, s);
    } else {
        rescore_lists_by_width<0>(
            c, codes, q, rows, items, ng, pos, labels, keys_out, ids_out, s);
    }
}

void launch_gather_rows(
    const uint8_t* src,
    const int64_t* keep,
    size_t n,
    size_t row_bytes,
    uint8_t* dst,
    cudaStream_t s) {
    size_t total = n * row_bytes;
    if (total == 0) {
        return;
    }
    int blocks = (int)std::min<size_t>((total + 255) / 256, 65535);
    gather_rows_kernel<<<blocks, 256, 0, s>>>(src, keep, n, row_bytes, dst);
    TQ_CUDA_CHECK_LAUNCH();
}

} // namespace gpu
} // namespace faiss_turbo
