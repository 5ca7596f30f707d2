/**
 * The tensor-core approximate pass for 4-bit MSE codes (TQmse4 plain,
 * debiased or centered, d a multiple of 32): the same candidate test as
 * scan_approx.cu, laid out so that the scan streams codes instead of
 * waiting on them. Each warp scans its own tiles of 32 codes with no
 * block-wide barrier:
 *  - the 4 lanes of a quad read one code's 64-byte chunk (128 coordinates)
 *    as 4 words each, word i of lane j at byte 16 i + 4 j, so that each
 *    load instruction reads 16 contiguous bytes per code; the next chunk
 *    is loaded while this one is multiplied;
 *  - a lane turns its bytes straight into mma B fragments (a byte is two
 *    fp16 centroids) through a byte -> half2 table kept once per lane
 *    (256 x 32 words: a lane reads only its own bank, so lookups never
 *    conflict): a byte costs a permute, an address and a load;
 *  - for that, coordinates enter the products in a permuted order
 *    (perm_coord) in which each lane's bytes are its own fragment rows; the
 *    queries are stored in shared memory in the same order, and the dot
 *    product does not depend on the order;
 *  - |c_hat|^2 is the diagonal of one more mma per fragment (two code
 *    tiles as an A fragment times one of them), so no second table is
 *    read;
 *  - the error terms' query factors (alpha, beta) enter at their maximum
 *    over the launch: the test keeps a superset of what the per-query test
 *    keeps, at one multiply and one fma per (query, code).
 */
#include <gpu/impl/kernels.h>

#include <cuda_fp16.h>

#include <algorithm>
#include <cmath>

#include <gpu/impl/CudaUtils.h>
#include <gpu/impl/codec_device.cuh>
#include <gpu/impl/ptx.cuh>
#include <gpu/impl/scan_terms.cuh>

namespace faiss_turbo {
namespace gpu {

namespace {

constexpr int kWarps = 4;
constexpr int kThreads = 32 * kWarps;
constexpr int kNT = 4;          // mma n-tiles (8 codes each) per warp tile
constexpr int kCodes = 8 * kNT; // codes per warp tile
constexpr int kChunk = 128;     // coordinates per chunk: 64 code bytes
constexpr int kSteps = kChunk / 16; // mma k-steps per chunk
constexpr int kTabWords = 256 * 32; // byte -> half2, once per lane
constexpr size_t kSmemMax = 160 * 1024;

int padded_dim(const CodecView& c) {
    return (c.d + kChunk - 1) / kChunk * kChunk;
}

size_t smem_bytes(const CodecView& c, int mt) {
    return kTabWords * 4 + (size_t)mt * 16 * sizeof(QueryTerms) +
           (size_t)mt * 16 * (padded_dim(c) + 8) * sizeof(__half);
}

/** The coordinate at position kk of the permuted order. In k-step s of a
 * chunk, lane j of a quad holds fragment rows 2j, 2j + 1 (b0) and
 * 2j + 8, 2j + 9 (b1); they are the 4 coordinates of bytes 2 (s % 2) and
 * 2 (s % 2) + 1 of its word s / 2, word i being the chunk's coordinates
 * 32 i + 8 j .. 32 i + 8 j + 7. */
__device__ __forceinline__ int perm_coord(int kk) {
    const int ch = kk / kChunk, s = (kk % kChunk) / 16, r = kk % 16;
    const int j = (r % 8) / 2, hi = r / 8, e = r % 2;
    return ch * kChunk + 32 * (s / 2) + 8 * j + 4 * (s % 2) + 2 * hi + e;
}

/// words of chunk ch that hold coordinates (all 4 but in a last partial
/// chunk; d % 32 == 0)
__device__ __forceinline__ int chunk_words(const CodecView& c, int ch) {
    return min(4, (c.d - ch * kChunk) / 32);
}

/// a lane's 4 words of one chunk of each of its kNT codes
struct Chunk {
    uint32_t w[kNT][4];
};

__device__ __forceinline__ size_t code_of(size_t tile, int nt, int lane) {
    return tile * kCodes + nt * 8 + lane / 4;
}

__device__ __forceinline__ void load_chunk(
    const CodecView& c,
    const uint8_t* codes,
    size_t ntotal,
    size_t tile,
    int ch,
    int lane,
    Chunk& k) {
    const int nw = chunk_words(c, ch);
    const uint8_t* p = codes + code_of(tile, 0, lane) * c.code_size +
                       ch * 64 + 4 * (lane % 4);
    const size_t step = 8 * (size_t)c.code_size; // next n-tile
    if (nw == 4 && (tile + 1) * kCodes <= ntotal) { // all there
#pragma unroll
        for (int nt = 0; nt < kNT; nt++) {
#pragma unroll
            for (int i = 0; i < 4; i++) {
                k.w[nt][i] = __ldg((const uint32_t*)(p + nt * step) + 4 * i);
            }
        }
        return;
    }
#pragma unroll
    for (int nt = 0; nt < kNT; nt++) {
        if (code_of(tile, nt, lane) < ntotal) {
            const uint32_t* w = (const uint32_t*)(p + nt * step);
#pragma unroll
            for (int i = 0; i < 4; i++) {
                k.w[nt][i] = i < nw ? __ldg(w + 4 * i) : 0u;
            }
        } else {
#pragma unroll
            for (int i = 0; i < 4; i++) {
                k.w[nt][i] = 0;
            }
        }
    }
}

/// lane j of a quad reads its code's float scalar j (norm, aux, moff)
__device__ __forceinline__ void load_scalars(
    const CodecView& c,
    const uint8_t* codes,
    size_t ntotal,
    size_t tile,
    int lane,
    uint32_t sc[kNT]) {
#pragma unroll
    for (int nt = 0; nt < kNT; nt++) {
        const size_t v = code_of(tile, nt, lane);
        const int j = lane % 4;
        sc[nt] = v < ntotal && j < c.n_floats
                ? __ldg((const uint32_t*)(codes + v * c.code_size +
                                          c.mse_bytes + 4 * j))
                : 0u;
    }
}

/// d (+)= a b: FIRST, the first product of the accumulation, writes d
template <bool FIRST>
__device__ __forceinline__ void
mma_acc(float d[4], const uint32_t a[4], uint32_t b0, uint32_t b1) {
    if (FIRST) {
        mma_16816_zc(d, a, b0, b1);
    } else {
        mma_16816(d, a, b0, b1);
    }
}

/** acc += queries x codes and cc += codes x codes over one chunk (FIRST:
 * the tile's first chunk, which sets them). PARTIAL: the last chunk of a
 * d that is not a multiple of 128, of which only the first nsteps k-steps
 * hold coordinates. Codes past ntotal decode their zero words (centroid 0,
 * finite): their tests are off. */
template <int MT, bool PARTIAL, bool FIRST>
__device__ __forceinline__ void multiply_chunk(
    const Chunk& k,
    SharedAddr tab_lane,
    int nsteps,
    const __half* a_lane,
    int a_stride,
    float acc[MT][kNT][4],
    float cc[kNT][4]) {
#pragma unroll
    for (int s = 0; s < kSteps; s++) {
        if (PARTIAL && s >= nsteps) {
            break;
        }
        uint32_t a[MT][4];
#pragma unroll
        for (int m = 0; m < MT; m++) {
            ldmatrix_x4(a[m], a_lane + m * 16 * a_stride + s * 16);
        }
        const uint32_t sel = 0x4440 + 2 * (s % 2); // byte, zero-extended
#pragma unroll
        for (int nt = 0; nt < kNT; nt += 2) {
            // fragment rows of n-tiles nt and nt + 1: lo = b0, hi = b1
            uint32_t lo[2], hi[2];
#pragma unroll
            for (int i = 0; i < 2; i++) {
                const uint32_t w = k.w[nt + i][s / 2];
                // a table row is 32 words: byte b at tab_lane + 128 b
                lo[i] = ld_shared_u32(tab_lane + (__byte_perm(w, 0, sel) << 7));
                hi[i] = ld_shared_u32(
                        tab_lane + (__byte_perm(w, 0, sel + 1) << 7));
#pragma unroll
                for (int m = 0; m < MT; m++) {
                    if (FIRST && s == 0) {
                        mma_acc<true>(acc[m][nt + i], a[m], lo[i], hi[i]);
                    } else {
                        mma_acc<false>(acc[m][nt + i], a[m], lo[i], hi[i]);
                    }
                }
            }
            // both code tiles as one A fragment, n-tile nt in rows 0..7 and
            // nt + 1 in rows 8..15: times n-tile nt, rows 0..7 hold nt's
            // Gram matrix; times nt + 1, rows 8..15 hold nt + 1's
            const uint32_t both[4] = {lo[0], lo[1], hi[0], hi[1]};
            if (FIRST && s == 0) {
                mma_acc<true>(cc[nt], both, lo[0], hi[0]);
                mma_acc<true>(cc[nt + 1], both, lo[1], hi[1]);
            } else {
                mma_acc<false>(cc[nt], both, lo[0], hi[0]);
                mma_acc<false>(cc[nt + 1], both, lo[1], hi[1]);
            }
        }
    }
}

/** The code terms (s, U) of the tile's codes, with U = V + alpha_max
 * |s||b| + beta_max |s| (s = 0, U = -inf past ntotal), computed once per
 * code: lane L takes code L / 4 of n-tile L % 4, gathering its |c_hat|^2
 * and scalars, then each lane fetches those of its test layout (code
 * 2 (L % 4) + e of each n-tile, e = 0, 1) into s[nt][e], u[nt][e]. */
__device__ __forceinline__ void tile_code_terms(
    const CodecView& c,
    bool l2,
    const float cc[kNT][4],
    const uint32_t sc[kNT],
    size_t tile,
    size_t ntotal,
    float relx2,
    float amax,
    float bmax,
    int lane,
    float s[kNT][2],
    float u[kNT][2]) {
    const unsigned all = 0xffffffffu;
    const int quad = lane & ~3, n = lane / 4, j = lane % 4;
    float ccv = 0;
    uint32_t f[3] = {0, 0, 0};
#pragma unroll
    for (int nt = 0; nt < kNT; nt++) {
        // code n's |c_hat|^2 sits at column n, row n (even n-tiles) or
        // row 8 + n (odd ones): in lane 4n + n / 2
        const float diag = nt % 2 ? ((n & 1) ? cc[nt][3] : cc[nt][2])
                                  : ((n & 1) ? cc[nt][1] : cc[nt][0]);
        const float x = __shfl_sync(all, diag, quad + (n >> 1));
        ccv = nt == j ? x : ccv;
        // its float i is in lane 4n + i (load_scalars)
#pragma unroll
        for (int i = 0; i < 3; i++) {
            if (i < c.n_floats) {
                const uint32_t y = __shfl_sync(all, sc[nt], quad + i);
                f[i] = nt == j ? y : f[i];
            }
        }
    }
    CodeScalars cs;
    cs.norm = __uint_as_float(f[0]);
    if (c.has_aux) {
        cs.aux = __uint_as_float(f[1]);
    }
    if (c.ip_offset) {
        cs.moff = __uint_as_float(c.has_aux ? f[2] : f[1]);
    }
    const CodeTerms v = code_terms(c, l2, cs, ccv, relx2);
    const bool valid = tile * kCodes + j * 8 + n < ntotal;
    const float sv = valid ? v.s : 0.0f;
    const float uv = valid ? fmaf(bmax, v.as, fmaf(amax, v.sb, v.V))
                           : -INFINITY;
#pragma unroll
    for (int nt = 0; nt < kNT; nt++) {
#pragma unroll
        for (int e = 0; e < 2; e++) {
            const int src = 4 * (2 * j + e) + nt;
            s[nt][e] = __shfl_sync(all, sv, src);
            u[nt][e] = __shfl_sync(all, uv, src);
        }
    }
}

/** The test of a warp tile's products. acc element e of n-tile nt is
 * query m * 16 + lane / 4 + 8 (e / 2) and code nt * 8 + 2 (lane % 4) +
 * e % 2 (the mma C fragment). The queries' terms are read from shared
 * memory here, so that they take no registers during the products. */
template <int MT>
__device__ __forceinline__ void test_tile(
    const CodecView& c,
    bool l2,
    size_t ntotal,
    size_t tile,
    const float acc[MT][kNT][4],
    const float cc[kNT][4],
    const uint32_t sc[kNT],
    const QueryTerms* s_q,
    float relx2,
    float amax,
    float bmax,
    int lane,
    const CandidateLists& out) {
    float s[kNT][2], u[kNT][2];
    tile_code_terms(
        c, l2, cc, sc, tile, ntotal, relx2, amax, bmax, lane, s, u);
    float qg[MT][2], qQ[MT][2];
#pragma unroll
    for (int m = 0; m < MT; m++) {
#pragma unroll
        for (int h = 0; h < 2; h++) {
            const QueryTerms& k = s_q[m * 16 + lane / 4 + 8 * h];
            qg[m][h] = k.g;
            qQ[m][h] = k.Q;
        }
    }
#pragma unroll
    for (int nt = 0; nt < kNT; nt++) {
        const size_t v0 = tile * kCodes + nt * 8 + 2 * (lane % 4);
#pragma unroll
        for (int m = 0; m < MT; m++) {
            float lhs[4];
#pragma unroll
            for (int e = 0; e < 4; e++) {
                const float gd = qg[m][e / 2] * acc[m][nt][e];
                lhs[e] = fmaf(s[nt][e % 2], gd, u[nt][e % 2]);
            }
            // one branch for the four (nearly always not taken)
            if (fmaxf(lhs[0], lhs[1]) >= qQ[m][0] ||
                fmaxf(lhs[2], lhs[3]) >= qQ[m][1]) {
#pragma unroll
                for (int e = 0; e < 4; e++) {
                    // a code past ntotal has lhs -inf, which a bound of
                    // -inf (a sample without a finite key) would still pass
                    if (lhs[e] >= qQ[m][e / 2] && v0 + e % 2 < ntotal) {
                        push_candidate(
                            out,
                            m * 16 + lane / 4 + 8 * (e / 2),
                            (int)(v0 + e % 2));
                    }
                }
            }
        }
    }
}

/// blocks per SM the registers must allow: 12 warps or more per SM
constexpr int min_blocks(int mt) {
    return mt == 1 ? 4 : 3;
}

template <int MT>
__global__ void __launch_bounds__(kThreads, min_blocks(MT)) scan_tc4_kernel(
    CodecView c,
    const uint8_t* __restrict__ codes,
    size_t ntotal,
    ApproxQueries q,
    CandidateLists out) {
    extern __shared__ __align__(16) uint8_t smem_raw[];
    uint32_t* tab = (uint32_t*)smem_raw;
    QueryTerms* s_q = (QueryTerms*)(tab + kTabWords);
    __half* sA = (__half*)(s_q + MT * 16);
    const int t = threadIdx.x, lane = t % 32, warp = t / 32;
    const int kpad = (c.d + kChunk - 1) / kChunk * kChunk;
    const int a_stride = kpad + 8;

    // byte b -> (fp16 centroid of its low nibble, of its high nibble), the
    // values the tensor cores see, at word 32 b + lane
    for (int i = t; i < kTabWords; i += kThreads) {
        const int b = i / 32;
        tab[i] = pack_half2(c.cent_lo[b & 15], c.cent_lo[b >> 4]);
    }
    for (int i = t; i < MT * 16 * kpad; i += kThreads) {
        const int r = i / kpad, kk = i % kpad, j = perm_coord(kk);
        const float v = r < q.nq && j < c.d ? q.a[(size_t)r * c.kp + j] : 0;
        sA[r * a_stride + kk] = __float2half_rn(v);
    }
    for (int i = t; i < MT * 16; i += kThreads) {
        QueryTerms z;
        z.g = z.alpha = z.beta = 0;
        // padding rows keep nothing: no lhs (+inf included, where a code's
        // bound overflows) compares >= NaN
        z.Q = __int_as_float(0x7fc00000);
        s_q[i] = i < q.nq ? query_terms(q, i) : z;
    }
    __syncthreads();
    float amax = 0, bmax = 0;
    for (int i = 0; i < q.nq; i++) {
        amax = fmaxf(amax, s_q[i].alpha);
        bmax = fmaxf(bmax, s_q[i].beta);
    }
    const float relx2 = 1e-3f + q.rel; // fp16 centroids: 2^-10 on c^2
    const SharedAddr tab_lane = shared_addr(tab + lane);
    const int nch = kpad / kChunk;
    const size_t ntiles = (ntotal + kCodes - 1) / kCodes;
    const size_t wstride = (size_t)gridDim.x * kWarps;
    size_t tile = (size_t)blockIdx.x * kWarps + warp;
    if (tile >= ntiles) {
        return; // no barrier follows
    }
    Chunk next;
    uint32_t sc_next[kNT];
    load_chunk(c, codes, ntotal, tile, 0, lane, next);
    load_scalars(c, codes, ntotal, tile, lane, sc_next);
    for (; tile < ntiles; tile += wstride) {
        float acc[MT][kNT][4], cc[kNT][4]; // set by the first chunk
        uint32_t sc[kNT];
#pragma unroll
        for (int nt = 0; nt < kNT; nt++) {
            sc[nt] = sc_next[nt];
        }
        for (int ch = 0; ch < nch; ch++) {
            const Chunk cur = next;
            // keep the next chunk in flight: of this tile, or the next one
            const bool last = ch + 1 == nch;
            const size_t tn = last ? tile + wstride : tile;
            if (tn < ntiles) {
                load_chunk(c, codes, ntotal, tn, last ? 0 : ch + 1, lane, next);
                if (last) {
                    load_scalars(c, codes, ntotal, tn, lane, sc_next);
                }
            }
            const __half* a_lane =
                sA + (lane % 16) * a_stride + ch * kChunk + (lane / 16) * 8;
            const int nsteps = 2 * chunk_words(c, ch);
            if (ch == 0 && nsteps == kSteps) {
                multiply_chunk<MT, false, true>(
                    cur, tab_lane, kSteps, a_lane, a_stride, acc, cc);
            } else if (nsteps == kSteps) {
                multiply_chunk<MT, false, false>(
                    cur, tab_lane, kSteps, a_lane, a_stride, acc, cc);
            } else if (ch == 0) {
                multiply_chunk<MT, true, true>(
                    cur, tab_lane, nsteps, a_lane, a_stride, acc, cc);
            } else {
                multiply_chunk<MT, true, false>(
                    cur, tab_lane, nsteps, a_lane, a_stride, acc, cc);
            }
        }
        test_tile<MT>(
            c,
            q.l2,
            ntotal,
            tile,
            acc,
            cc,
            sc,
            s_q,
            relx2,
            amax,
            bmax,
            lane,
            out);
    }
}

template <int MT>
void launch(const ScanArgs& a) {
    const size_t smem = smem_bytes(a.c, MT);
    auto kernel = scan_tc4_kernel<MT>;
    const size_t tiles = (a.ntotal + kCodes - 1) / kCodes;
    const int grid = persistent_grid(
        kernel, kThreads, smem, a.num_sms, (tiles + kWarps - 1) / kWarps);
    kernel<<<grid, kThreads, smem, a.stream>>>(
        a.c, a.codes, a.ntotal, a.q, a.out);
    TQ_CUDA_CHECK_LAUNCH();
}

/// dynamic shared memory a block may use on the current device (99 KB on
/// sm_86 / sm_89, which run the sm_80 code; 227 KB on sm_90)
size_t smem_limit() {
    int dev = 0, optin = 0;
    TQ_CUDA_CHECK(cudaGetDevice(&dev));
    TQ_CUDA_CHECK(cudaDeviceGetAttribute(
        &optin, cudaDevAttrMaxSharedMemoryPerBlockOptin, dev));
    return std::min<size_t>(kSmemMax, (size_t)optin);
}

} // namespace

int tc4_max_queries(const CodecView& c) {
    const bool layout = !c.prod && c.n_hi == 0 && c.b_lo == 4 &&
                        c.d % 32 == 0 && c.mse_bytes == c.d / 2 &&
                        c.code_size % 4 == 0 && c.n_floats <= 3;
    if (!layout) {
        return 0;
    }
    const size_t limit = smem_limit();
    for (int mt : {4, 2, 1}) {
        if (smem_bytes(c, mt) <= limit) {
            return 16 * mt;
        }
    }
    return 0;
}

void launch_scan_tc4(const ScanArgs& a) {
    FAISS_THROW_IF_NOT_MSG(
        a.q.nq > 0 && a.q.nq <= tc4_max_queries(a.c), "too many queries");
    if (a.q.nq <= 16) {
        launch<1>(a);
    } else if (a.q.nq <= 32) {
        launch<2>(a);
    } else {
        launch<4>(a);
    }
}

} // namespace gpu
} // namespace faiss_turbo
