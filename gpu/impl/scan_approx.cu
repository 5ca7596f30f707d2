/**
 * The approximate pass of the search (see kernels.h): every code is scored
 * approximately and kept as a candidate of query q when
 *     key_approx - eps <= T_q,
 * eps being a proven bound on |key_approx - key_cpu|. Queries enter as
 * a = [y, f S y] / |y| and codes as b = [c_hat, gamma sign] (PROD) or
 * b = c_hat (MSE), so <a, b> |y| scale is the inner product of the codec.
 *
 * Tensor cores: a block takes 64 codes at a time, decodes them into fp16 in
 * shared memory (128 coordinates at a time) and multiplies them with all
 * queries of the launch (up to 64, fp16 in shared memory) by mma.sync
 * m16n8k16 with fp32 accumulation; each of the 4 warps owns 16 codes.
 * CUDA cores (few queries): 8 threads per code, fp32, each code decoded
 * once for all queries of the launch.
 *
 * Both are persistent grids; template W = 4 is the 4-bit layout fast path.
 * 4-bit MSE codes with d a multiple of 32 take scan_tc4.cu's tensor-core
 * pass instead, which streams the codes.
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

constexpr int kTileN = 64;            // codes per tile (tensor cores)
constexpr int kTcThreads = 128;       // 4 warps x 16 codes
constexpr int kChunkK = 128;          // coordinates decoded per step
constexpr int kBStride = kChunkK + 8; // halfs per code row (no conflicts)
constexpr int kMaxTcQueries = 64;
constexpr size_t kTcSmemMax = 96 * 1024;

constexpr int kSimtThreads = 128;
constexpr int kSimtTpv = 8; // threads per code
constexpr int kMaxSimtQueries = 8;
constexpr size_t kSimtQuerySmem = 40 * 1024;

/// 8 coordinate values of group g of the approximate pass's b vector
template <int W>
__device__ __forceinline__ void decode_b_group(
    const CodecView& c,
    const uint8_t* codes,
    uint64_t vec,
    int g,
    float aux,
    const float* cent_hi,
    const float* cent_lo,
    float out[8]) {
    const int gs = c.kc / 8; // first group of the sign part
    if (g < gs) {
        if (8 * g >= c.d) {
#pragma unroll
            for (int l = 0; l < 8; l++) {
                out[l] = 0;
            }
            return;
        }
        uint32_t idx[8];
        group_indices<W>(c, codes, vec * (uint64_t)c.code_size * 8, g, idx);
#pragma unroll
        for (int l = 0; l < 8; l++) {
            int j = 8 * g + l;
            out[l] = j < c.d ? (j < c.n_hi ? cent_hi : cent_lo)[idx[l]] : 0.0f;
        }
    } else {
        int gg = g - gs;
        uint32_t byte =
            8 * gg < c.d ? code_byte(c, codes, vec, c.mse_bytes + gg) : 0;
#pragma unroll
        for (int l = 0; l < 8; l++) {
            int j = 8 * gg + l;
            out[l] = j < c.d ? (((byte >> l) & 1) ? aux : -aux) : 0.0f;
        }
    }
}

size_t tc_smem_bytes(int kp, int nq) {
    return (size_t)nq * (kp + 8) * 2 + (size_t)kTileN * kBStride * 2 +
           1024 * sizeof(float) + kTileN * sizeof(CodeScalars) +
           kTileN * sizeof(CodeTerms) + kMaxTcQueries * sizeof(QueryTerms);
}

template <int W>
__global__ void __launch_bounds__(kTcThreads) scan_tc_kernel(
    CodecView c,
    const uint8_t* __restrict__ codes,
    size_t ntotal,
    ApproxQueries q,
    CandidateLists out) {
    extern __shared__ __align__(16) uint8_t smem_raw[];
    const int kp = c.kp;
    const int a_stride = kp + 8;
    const int mtiles = (q.nq + 15) / 16;
    __half* sA = (__half*)smem_raw;
    __half* sB = sA + (size_t)mtiles * 16 * a_stride;
    float* cent_hi = (float*)(sB + kTileN * kBStride);
    float* cent_lo = cent_hi + 256;
    // 4-bit fast path: a code byte (two coordinates) -> their fp16 pair,
    // and the sum of their squares
    uint32_t* pair_tab = (uint32_t*)(cent_lo + 256);
    float* sq_tab = (float*)(pair_tab + 256);
    CodeScalars* s_cs = (CodeScalars*)(sq_tab + 256); // the tile's codes
    QueryTerms* s_q = (QueryTerms*)(s_cs + kTileN);
    CodeTerms* s_v = (CodeTerms*)(s_q + kMaxTcQueries);

    const int t = threadIdx.x, lane = t % 32, warp = t / 32;
    // fp16 centroids (as floats): the values the tensor cores see
    for (int i = t; i < (1 << c.b_hi); i += kTcThreads) {
        cent_hi[i] = __half2float(__float2half_rn(c.cent_hi[i]));
    }
    for (int i = t; i < (1 << c.b_lo); i += kTcThreads) {
        cent_lo[i] = __half2float(__float2half_rn(c.cent_lo[i]));
    }
    if (W == 4) {
        for (int i = t; i < 256; i += kTcThreads) {
            float c0 = __half2float(__float2half_rn(c.cent_lo[i & 15]));
            float c1 = __half2float(__float2half_rn(c.cent_lo[i >> 4]));
            pair_tab[i] = pack_half2(c0, c1);
            sq_tab[i] = c0 * c0 + c1 * c1;
        }
    }
    for (int i = t; i < mtiles * 16 * kp; i += kTcThreads) {
        int r = i / kp, col = i % kp;
        float v = r < q.nq ? q.a[(size_t)r * kp + col] : 0.0f;
        sA[r * a_stride + col] = __float2half_rn(v);
    }
    for (int i = t; i < q.nq; i += kTcThreads) {
        s_q[i] = query_terms(q, i);
    }
    const float relx2 = 1e-3f + q.rel; // fp16 centroids: 2^-10 on c^2
    const size_t ntiles = (ntotal + kTileN - 1) / kTileN;
    const int gi = t % 16, vr = t / 16; // decode: group slot, code row
    for (size_t tile = blockIdx.x; tile < ntiles; tile += gridDim.x) {
        const size_t v0 = tile * kTileN;
        if (t < kTileN) {
            CodeScalars cs;
            if (v0 + t < ntotal) {
                cs = code_scalars(c, codes, v0 + t);
            }
            s_cs[t] = cs;
        }
        __syncthreads();
        float acc[4][2][4];
#pragma unroll
        for (int m = 0; m < 4; m++) {
#pragma unroll
            for (int nt = 0; nt < 2; nt++) {
#pragma unroll
                for (int e = 0; e < 4; e++) {
                    acc[m][nt][e] = 0;
                }
            }
        }
        float ccp[8];
#pragma unroll
        for (int r = 0; r < 8; r++) {
            ccp[r] = 0;
        }
        for (int k0 = 0; k0 < kp; k0 += kChunkK) {
            const int kn = min(kChunkK, kp - k0);
            if (gi < kn / 8) {
                const int g = k0 / 8 + gi;
#pragma unroll
                for (int r = 0; r < 8; r++) {
                    const int vl = vr + 8 * r;
                    uint4* dst = (uint4*)(sB + vl * kBStride + gi * 8);
                    if (W == 4 && v0 + vl < ntotal && 8 * g + 8 <= c.d) {
                        // whole group of 4-bit MSE indices: one word
                        uint32_t w = __ldg(
                            (const uint32_t*)codes +
                            (v0 + vl) * (uint64_t)(c.code_size / 4) + g);
                        uint32_t b0 = w & 255, b1 = (w >> 8) & 255,
                                 b2 = (w >> 16) & 255, b3 = w >> 24;
                        *dst = make_uint4(
                            pair_tab[b0],
                            pair_tab[b1],
                            pair_tab[b2],
                            pair_tab[b3]);
                        ccp[r] += (sq_tab[b0] + sq_tab[b1]) +
                                  (sq_tab[b2] + sq_tab[b3]);
                        continue;
                    }
                    float v[8];
                    if (v0 + vl < ntotal) {
                        float auxh = __half2float(__float2half_rn(s_cs[vl].aux));
                        decode_b_group<W>(
                            c, codes, v0 + vl, g, auxh, cent_hi, cent_lo, v);
                    } else {
#pragma unroll
                        for (int l = 0; l < 8; l++) {
                            v[l] = 0;
                        }
                    }
                    if (8 * g < c.kc) {
#pragma unroll
                        for (int l = 0; l < 8; l++) {
                            ccp[r] += v[l] * v[l];
                        }
                    }
                    uint4 pk;
                    pk.x = pack_half2(v[0], v[1]);
                    pk.y = pack_half2(v[2], v[3]);
                    pk.z = pack_half2(v[4], v[5]);
                    pk.w = pack_half2(v[6], v[7]);
                    *dst = pk;
                }
            }
            __syncthreads();
            for (int ks = 0; ks < kn / 16; ks++) {
                uint32_t b[4];
                ldmatrix_x4(
                    b,
                    sB + (warp * 16 + (lane % 8) + (lane / 16) * 8) * kBStride +
                        ks * 16 + ((lane / 8) % 2) * 8);
#pragma unroll
                for (int m = 0; m < 4; m++) {
                    if (m < mtiles) {
                        uint32_t a[4];
                        ldmatrix_x4(
                            a,
                            sA + (m * 16 + lane % 16) * a_stride + k0 +
                                ks * 16 + (lane / 16) * 8);
                        mma_16816(acc[m][0], a, b[0], b[1]);
                        mma_16816(acc[m][1], a, b[2], b[3]);
                    }
                }
            }
            __syncthreads();
        }
        // |c_hat|^2 per code: the 16 threads of a code row are 16 lanes
#pragma unroll
        for (int r = 0; r < 8; r++) {
            float v = ccp[r];
            for (int off = 8; off >= 1; off /= 2) {
                v += __shfl_xor_sync(0xffffffffu, v, off);
            }
            if (gi == 0) {
                int vl = vr + 8 * r;
                s_v[vl] = code_terms(c, q.l2, s_cs[vl], v, relx2);
            }
        }
        __syncthreads();
#pragma unroll
        for (int m = 0; m < 4; m++) {
            if (m >= mtiles) {
                continue;
            }
#pragma unroll
            for (int nt = 0; nt < 2; nt++) {
#pragma unroll
                for (int e = 0; e < 4; e++) {
                    int qi = m * 16 + lane / 4 + (e >= 2 ? 8 : 0);
                    int vl = warp * 16 + nt * 8 + (lane % 4) * 2 + (e & 1);
                    if (qi < q.nq && v0 + vl < ntotal &&
                        keep_candidate(s_q[qi], s_v[vl], acc[m][nt][e])) {
                        push_candidate(out, qi, (int)(v0 + vl));
                    }
                }
            }
        }
        __syncthreads();
    }
}

template <int W>
__global__ void __launch_bounds__(kSimtThreads) scan_simt_kernel(
    CodecView c,
    const uint8_t* __restrict__ codes,
    size_t ntotal,
    ApproxQueries q,
    CandidateLists out) {
    extern __shared__ __align__(16) float smemf[];
    const int kp = c.kp;
    float* cent_hi = smemf;
    float* cent_lo = cent_hi + 256;
    QueryTerms* s_q = (QueryTerms*)(cent_lo + 256);
    float* sA = (float*)(s_q + kMaxSimtQueries);
    const float relx2 = q.rel; // fp32 sums of squares
    const int t = threadIdx.x;
    for (int i = t; i < (1 << c.b_hi); i += kSimtThreads) {
        cent_hi[i] = c.cent_hi[i];
    }
    for (int i = t; i < (1 << c.b_lo); i += kSimtThreads) {
        cent_lo[i] = c.cent_lo[i];
    }
    for (int i = t; i < q.nq * kp; i += kSimtThreads) {
        sA[i] = q.a[i];
    }
    for (int i = t; i < q.nq; i += kSimtThreads) {
        s_q[i] = query_terms(q, i);
    }
    __syncthreads();
    const int sub = t % kSimtTpv;
    const int per_block = kSimtThreads / kSimtTpv;
    const int ngroups = kp / 8;
    const size_t nblk = (ntotal + per_block - 1) / per_block;
    for (size_t blk = blockIdx.x; blk < nblk; blk += gridDim.x) {
        const size_t v = blk * per_block + t / kSimtTpv;
        const bool valid = v < ntotal;
        CodeScalars cs;
        if (valid) {
            cs = code_scalars(c, codes, v);
        }
        const float aux = cs.aux;
        float acc[kMaxSimtQueries];
#pragma unroll
        for (int qi = 0; qi < kMaxSimtQueries; qi++) {
            acc[qi] = 0;
        }
        float ccp = 0;
        if (valid) {
            for (int g = sub; g < ngroups; g += kSimtTpv) {
                float b[8];
                decode_b_group<W>(c, codes, v, g, aux, cent_hi, cent_lo, b);
                if (8 * g < c.kc) {
#pragma unroll
                    for (int l = 0; l < 8; l++) {
                        ccp += b[l] * b[l];
                    }
                }
#pragma unroll
                for (int qi = 0; qi < kMaxSimtQueries; qi++) {
                    if (qi < q.nq) {
                        const float4* a4 =
                            (const float4*)(sA + qi * kp + 8 * g);
                        float4 x0 = a4[0], x1 = a4[1];
                        acc[qi] += x0.x * b[0] + x0.y * b[1] + x0.z * b[2] +
                                   x0.w * b[3] + x1.x * b[4] + x1.y * b[5] +
                                   x1.z * b[6] + x1.w * b[7];
                    }
                }
            }
        }
        // the 8 threads of a code sum their parts (only the live queries:
        // q.nq is the same for the whole grid)
        for (int off = kSimtTpv / 2; off >= 1; off /= 2) {
            ccp += __shfl_xor_sync(0xffffffffu, ccp, off);
        }
#pragma unroll
        for (int qi = 0; qi < kMaxSimtQueries; qi++) {
            if (qi < q.nq) {
                for (int off = kSimtTpv / 2; off >= 1; off /= 2) {
                    acc[qi] += __shfl_xor_sync(0xffffffffu, acc[qi], off);
                }
            }
        }
        if (valid) {
            CodeTerms vt = code_terms(c, q.l2, cs, ccp, relx2);
#pragma unroll
            for (int qi = 0; qi < kMaxSimtQueries; qi++) {
                if (qi == sub && qi < q.nq &&
                    keep_candidate(s_q[qi], vt, acc[qi])) {
                    push_candidate(out, qi, (int)v);
                }
            }
        }
    }
}

bool fast4(const CodecView& c) {
    return c.n_hi == 0 && c.b_lo == 4 && c.code_size % 4 == 0;
}

template <int W>
void launch_tc(const ScanArgs& a) {
    size_t smem = tc_smem_bytes(a.c.kp, (a.q.nq + 15) / 16 * 16);
    auto kernel = scan_tc_kernel<W>;
    int grid = persistent_grid(
        kernel,
        kTcThreads,
        smem,
        a.num_sms,
        (a.ntotal + kTileN - 1) / kTileN);
    kernel<<<grid, kTcThreads, smem, a.stream>>>(
        a.c, a.codes, a.ntotal, a.q, a.out);
    TQ_CUDA_CHECK_LAUNCH();
}

template <int W>
void launch_simt(const ScanArgs& a) {
    size_t smem = 512 * sizeof(float) + kMaxSimtQueries * sizeof(QueryTerms) +
                  (size_t)a.q.nq * a.c.kp * sizeof(float);
    auto kernel = scan_simt_kernel<W>;
    int per_block = kSimtThreads / kSimtTpv;
    int grid = persistent_grid(
        kernel,
        kSimtThreads,
        smem,
        a.num_sms,
        (a.ntotal + per_block - 1) / per_block);
    kernel<<<grid, kSimtThreads, smem, a.stream>>>(
        a.c, a.codes, a.ntotal, a.q, a.out);
    TQ_CUDA_CHECK_LAUNCH();
}

} // namespace

int generic_tc_max_queries(const CodecView& c) {
    for (int nq = kMaxTcQueries; nq >= 16; nq -= 16) {
        if (tc_smem_bytes(c.kp, nq) <= kTcSmemMax) {
            return nq;
        }
    }
    return 0;
}

int approx_tc_max_queries(const CodecView& c) {
    const int n = tc4_max_queries(c);
    return n > 0 ? n : generic_tc_max_queries(c);
}

int approx_simt_max_queries(const CodecView& c) {
    size_t per_query = (size_t)c.kp * sizeof(float);
    return (int)std::max<size_t>(
        1, std::min<size_t>(kMaxSimtQueries, kSimtQuerySmem / per_query));
}

void approx_error_model(const CodecView& c, bool tc, float* rel, float* abs) {
    // fp32 accumulation over kp terms and the CPU's own dot_lanes rounding
    double acc = (c.kp + 16) * std::ldexp(1.0, -22);
    if (tc) {
        // fp16 rounding of a and of b: 2^-11 relative each (normal range),
        // 2^-25 absolute (subnormals), per coordinate
        *rel = (float)(std::ldexp(1.0, -10) + std::ldexp(1.0, -20) + acc);
        *abs = (float)(std::ldexp(1.0, -25) * std::sqrt((double)c.kp));
    } else {
        *rel = (float)acc;
        *abs = 0;
    }
}

void launch_scan_approx(bool tensor_cores, const ScanArgs& a, bool allow_tc4) {
    if (a.ntotal == 0 || a.q.nq == 0) {
        return;
    }
    if (tensor_cores) {
        if (allow_tc4 && tc4_max_queries(a.c) > 0) {
            launch_scan_tc4(a);
            return;
        }
        FAISS_THROW_IF_NOT_MSG(
            a.q.nq <= generic_tc_max_queries(a.c), "too many queries");
        if (fast4(a.c)) {
            launch_tc<4>(a);
        } else {
            launch_tc<0>(a);
        }
    } else {
        FAISS_THROW_IF_NOT_MSG(
            a.q.nq <= approx_simt_max_queries(a.c), "too many queries");
        if (fast4(a.c)) {
            launch_simt<4>(a);
        } else {
            launch_simt<0>(a);
        }
    }
}

} // namespace gpu
} // namespace faiss_turbo
