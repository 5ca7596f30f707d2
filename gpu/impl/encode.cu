/**
 * GPU encoding, one warp per vector, reproducing TurboQuantizer::encode
 * operation for operation: the canonical reductions (coord_rules.h: lane l
 * of the warp sums coordinates l, l + 32, ... in double, then the same
 * tree), the Hadamard butterflies in the CPU's stage order, the scalar
 * quantizer's decision rule and the bit packing. Built with --fmad=false;
 * the explicit __f*_rn calls say the same. The dense products (rotation,
 * Gaussian QJL) follow matmul_rows (dot_lanes per output). So the codes
 * equal the CPU's bit for bit, whatever the rotation.
 */
#include <gpu/impl/kernels.h>

#include <climits>

#include <faiss_turbo/impl/coord_rules.h>

#include <gpu/impl/CudaUtils.h>

namespace faiss_turbo {
namespace gpu {

namespace {

constexpr int kWarp = 32;
constexpr int kMaxWarpsPerBlock = 8;
constexpr size_t kEncodeSmem = 46 * 1024;

/// canonical_tree_reduce across the warp (lane l holds p[l]); all lanes
/// get the result
__device__ double warp_canonical_reduce(double p) {
    for (int off = kCanonicalLanes / 2; off >= 1; off /= 2) {
        p = p + __shfl_down_sync(0xffffffffu, p, off);
    }
    return __shfl_sync(0xffffffffu, p, 0);
}

/// HadamardRotation::apply of one vector on a warp: rounds of sign +
/// permutation, then on each block fwht_inplace's butterflies, stage by
/// stage, and the block's scale. Returns the buffer (y or tmp) that holds the result.
__device__ float*
hadamard_warp(const HadamardView& h, int d, float* y, float* tmp, int lane) {
    for (int r = 0; r < h.nrounds; r++) {
        const float* s = h.signs + (size_t)r * d;
        const uint32_t* perm = h.perms + (size_t)r * d;
        for (int i = lane; i < d; i += kWarp) {
            uint32_t pi = perm[i];
            tmp[i] = __fmul_rn(y[pi], s[pi]);
        }
        __syncwarp();
        for (int b = 0; b < h.nblocks; b++) {
            float* blk = tmp + h.blk_off[b];
            const int size = h.blk_size[b];
            for (int hs = 1; hs < size; hs *= 2) {
                for (int q = lane; q < size / 2; q += kWarp) {
                    int j = ((q & ~(hs - 1)) << 1) | (q & (hs - 1));
                    float a = blk[j], c = blk[j + hs];
                    blk[j] = __fadd_rn(a, c);
                    blk[j + hs] = __fsub_rn(a, c);
                }
                __syncwarp();
            }
            for (int i = lane; i < size; i += kWarp) {
                blk[i] = __fmul_rn(blk[i], h.blk_scale[b]);
            }
        }
        __syncwarp();
        float* t = y;
        y = tmp;
        tmp = t;
    }
    return y;
}

constexpr int kMmTile = 32; // vectors and rows of a matmul block
constexpr int kMmK = 32;    // coordinates per shared-memory stage
constexpr int kMmPad = kMmK + 4;

/// matmul_rows: thread (tx, ty) of 16 x 16 computes vectors ty, ty + 16
/// and rows tx, tx + 16 of the block's 32 x 32 tile, each output with
/// dot_lanes' 8 accumulators (coordinate j in lane j % 8) and final tree.
__global__ void __launch_bounds__(256) matmul_rows_kernel(
    size_t n,
    int d,
    const float* __restrict__ x,
    const float* __restrict__ m,
    float* __restrict__ y) {
    __shared__ __align__(16) float xs[kMmTile][kMmPad];
    __shared__ __align__(16) float ms[kMmTile][kMmPad];
    const int tx = threadIdx.x, ty = threadIdx.y, t = ty * 16 + tx;
    const size_t v0 = (size_t)blockIdx.x * kMmTile;
    const int r0 = blockIdx.y * kMmTile;
    float acc[2][2][8];
#pragma unroll
    for (int a = 0; a < 2; a++) {
#pragma unroll
        for (int b = 0; b < 2; b++) {
#pragma unroll
            for (int l = 0; l < 8; l++) {
                acc[a][b][l] = 0.0f;
            }
        }
    }
    for (int k0 = 0; k0 < d; k0 += kMmK) {
#pragma unroll
        for (int i = 0; i < 4; i++) {
            int e = t + 256 * i, row = e / kMmK, col = e % kMmK;
            int k = k0 + col;
            size_t v = v0 + row;
            int r = r0 + row;
            // zero padding: adding +0 changes at most the sign of a zero
            xs[row][col] = (v < n && k < d) ? x[v * d + k] : 0.0f;
            ms[row][col] = (r < d && k < d) ? m[(size_t)r * d + k] : 0.0f;
        }
        __syncthreads();
#pragma unroll
        for (int g = 0; g < kMmK / 8; g++) {
            float xv[2][8], mv[2][8];
#pragma unroll
            for (int a = 0; a < 2; a++) {
                const float4* px = (const float4*)&xs[ty + 16 * a][8 * g];
                const float4* pm = (const float4*)&ms[tx + 16 * a][8 * g];
                float4 x0 = px[0], x1 = px[1], m0 = pm[0], m1 = pm[1];
                xv[a][0] = x0.x, xv[a][1] = x0.y, xv[a][2] = x0.z;
                xv[a][3] = x0.w, xv[a][4] = x1.x, xv[a][5] = x1.y;
                xv[a][6] = x1.z, xv[a][7] = x1.w;
                mv[a][0] = m0.x, mv[a][1] = m0.y, mv[a][2] = m0.z;
                mv[a][3] = m0.w, mv[a][4] = m1.x, mv[a][5] = m1.y;
                mv[a][6] = m1.z, mv[a][7] = m1.w;
            }
#pragma unroll
            for (int a = 0; a < 2; a++) {
#pragma unroll
                for (int b = 0; b < 2; b++) {
#pragma unroll
                    for (int l = 0; l < 8; l++) {
                        acc[a][b][l] = __fadd_rn(
                            acc[a][b][l], __fmul_rn(mv[b][l], xv[a][l]));
                    }
                }
            }
        }
        __syncthreads();
    }
#pragma unroll
    for (int a = 0; a < 2; a++) {
        size_t v = v0 + ty + 16 * a;
#pragma unroll
        for (int b = 0; b < 2; b++) {
            int r = r0 + tx + 16 * b;
            if (v < n && r < d) {
                const float* p = acc[a][b];
                y[v * d + r] = __fadd_rn(
                    __fadd_rn(__fadd_rn(p[0], p[4]), __fadd_rn(p[1], p[5])),
                    __fadd_rn(__fadd_rn(p[2], p[6]), __fadd_rn(p[3], p[7])));
            }
        }
    }
}

/// byte `b` of the packed MSE indices (put_bits' layout)
__device__ uint32_t
pack_mse_byte(const CodecView& c, const uint8_t* idx, int b) {
    int bit0 = 8 * b;
    int hi_bits = c.n_hi * c.b_hi;
    int j = bit0 < hi_bits
                ? bit0 / c.b_hi
                : (c.b_lo ? c.n_hi + (bit0 - hi_bits) / c.b_lo : c.d);
    uint32_t v = 0;
    for (; j < c.d; j++) {
        int w = j < c.n_hi ? c.b_hi : c.b_lo;
        int pos = j < c.n_hi ? j * c.b_hi : hi_bits + (j - c.n_hi) * c.b_lo;
        if (pos >= bit0 + 8) {
            break;
        }
        if (w == 0) {
            continue;
        }
        int sh = pos - bit0;
        v |= sh >= 0 ? (uint32_t)idx[j] << sh : (uint32_t)idx[j] >> -sh;
    }
    return v & 0xff;
}

struct EncodeSmem {
    float* cent_hi;
    float* cent_lo;
    float* thr_hi;
    float* thr_lo;
    float* warp_base;
};

/// the first bad vector wins: the flag keeps INT_MAX - i at its largest
__device__ __forceinline__ void mark_bad(int* bad_flag, size_t i) {
    const int v = i < (size_t)INT_MAX ? INT_MAX - (int)i : 1;
    atomicMax(bad_flag, v);
}

__global__ void encode_kernel(
    EncodeParams p,
    size_t n,
    const float* __restrict__ x,
    const float* __restrict__ y_in,
    uint8_t* __restrict__ codes,
    float* __restrict__ resid,
    int* bad_flag,
    int warp_floats) {
    extern __shared__ float smem[];
    const CodecView& c = p.c;
    const int d = c.d;
    const int nhi_tab = 1 << c.b_hi, nlo_tab = 1 << c.b_lo;
    float* cent_hi = smem;
    float* cent_lo = cent_hi + 256;
    float* thr_hi = cent_lo + 256;
    float* thr_lo = thr_hi + 256;
    for (int i = threadIdx.x; i < nhi_tab; i += blockDim.x) {
        cent_hi[i] = c.cent_hi[i];
        if (i + 1 < nhi_tab) {
            thr_hi[i] = c.thr_hi[i];
        }
    }
    for (int i = threadIdx.x; i < nlo_tab; i += blockDim.x) {
        cent_lo[i] = c.cent_lo[i];
        if (i + 1 < nlo_tab) {
            thr_lo[i] = c.thr_lo[i];
        }
    }
    __syncthreads();

    const int lane = threadIdx.x % kWarp, warp = threadIdx.x / kWarp;
    float* buf0 = thr_lo + 256 + (size_t)warp * warp_floats;
    float* buf1 = buf0 + d;
    uint8_t* idxb = (uint8_t*)(buf1 + d);
    const size_t nwarps = (size_t)gridDim.x * (blockDim.x / kWarp);

    for (size_t i = (size_t)blockIdx.x * (blockDim.x / kWarp) + warp; i < n;
         i += nwarps) {
        // centered vector, its norm and <mean, x - mean> (the
        // canonical_dots of encode)
        double part = 0, mpart = 0;
        bool bad = false;
        const float* origin = p.origins ? p.origins + i * d : p.mean;
        for (int j = lane; j < d; j += kWarp) {
            float v = x[i * d + j];
            bad |= !isfinite(v);
            float xc = p.mean ? __fsub_rn(v, p.mean[j]) : v;
            buf0[j] = xc;
            part += (double)xc * (double)xc;
            if (c.ip_offset && origin) {
                mpart += (double)origin[j] * (double)xc;
            }
        }
        if (__any_sync(0xffffffffu, bad) && lane == 0) {
            mark_bad(bad_flag, p.first + i);
        }
        float norm = __double2float_rn(__dsqrt_rn(warp_canonical_reduce(part)));
        float moff =
            c.ip_offset ? __double2float_rn(warp_canonical_reduce(mpart)) : 0;
        __syncwarp();
        float* cur = buf0;
        float* other = buf1;
        if (p.rot_hadamard) {
            cur = hadamard_warp(p.rot, d, buf0, buf1, lane);
            other = cur == buf0 ? buf1 : buf0;
        } else {
            for (int j = lane; j < d; j += kWarp) {
                buf0[j] = y_in[i * d + j];
            }
            __syncwarp();
        }
        // quantize u = y / norm; keep the residual (PROD) or c (debiased)
        float inv = norm > 0 ? __fdiv_rn(1.0f, norm) : 0.0f;
        part = 0;
        // as the CPU's encode_one: a vector too long for float (its norm,
        // its rotation or a float of its code overflows) is refused
        bool overflow = !isfinite(norm);
        for (int j = lane; j < d; j += kWarp) {
            bool hi = j < c.n_hi;
            float u = scale_coord(cur[j], norm, inv);
            overflow |= !isfinite(u);
            uint32_t id =
                quantize_coord(u, hi ? thr_hi : thr_lo, hi ? c.b_hi : c.b_lo);
            idxb[j] = (uint8_t)id;
            float cv = (hi ? cent_hi : cent_lo)[id];
            float r = c.prod ? __fsub_rn(u, cv) : cv;
            other[j] = r;
            part += c.prod ? (double)r * (double)r : (double)u * (double)r;
        }
        double red = warp_canonical_reduce(part);
        float aux = 0;
        if (c.prod) {
            aux = __double2float_rn(__dsqrt_rn(red));
        } else if (c.debiased) {
            aux = red > 0 ? __double2float_rn(__ddiv_rn((double)norm, red))
                          : 0.0f;
        }
        overflow |= !isfinite(aux) || !isfinite(moff);
        if (__any_sync(0xffffffffu, overflow) && lane == 0) {
            mark_bad(bad_flag, p.first + i);
        }
        __syncwarp();
        uint8_t* code = codes + i * c.code_size;
        for (int b = lane; b < c.mse_bytes; b += kWarp) {
            code[b] = (uint8_t)pack_mse_byte(c, idxb, b);
        }
        if (c.prod) {
            if (p.qjl_hadamard) {
                float* sr = hadamard_warp(p.qjl, d, other, cur, lane);
                for (int b = lane; b < c.qjl_bytes; b += kWarp) {
                    uint32_t v = 0;
                    for (int t = 0; t < 8 && 8 * b + t < d; t++) {
                        v |= (__fmul_rn(sr[8 * b + t], p.qjl_scale) > 0) << t;
                    }
                    code[c.mse_bytes + b] = (uint8_t)v;
                }
            } else {
                for (int j = lane; j < d; j += kWarp) {
                    resid[i * d + j] = other[j];
                }
            }
        }
        uint8_t* tail = code + c.mse_bytes + c.qjl_bytes;
        if (lane < 4 * c.n_floats) {
            // write_scalars' order: norm, [aux], [moff]
            int f = lane / 4;
            float v = f == 0 ? norm : (f == 1 && c.has_aux ? aux : moff);
            uint32_t bits = __float_as_uint(v);
            tail[lane] = (uint8_t)(bits >> (8 * (lane % 4)));
        }
        __syncwarp();
    }
}

__global__ void center_kernel(
    size_t total,
    int d,
    const float* __restrict__ x,
    const float* __restrict__ mean,
    float* __restrict__ out) {
    for (size_t i = blockIdx.x * (size_t)blockDim.x + threadIdx.x; i < total;
         i += (size_t)gridDim.x * blockDim.x) {
        out[i] = __fsub_rn(x[i], mean[i % d]);
    }
}

__global__ void pack_signs_kernel(
    CodecView c,
    size_t n,
    const float* __restrict__ sr,
    uint8_t* __restrict__ codes) {
    size_t total = n * c.qjl_bytes;
    for (size_t t = blockIdx.x * (size_t)blockDim.x + threadIdx.x; t < total;
         t += (size_t)gridDim.x * blockDim.x) {
        size_t i = t / c.qjl_bytes;
        int b = (int)(t % c.qjl_bytes);
        uint32_t v = 0;
        for (int k = 0; k < 8 && 8 * b + k < c.d; k++) {
            v |= (sr[i * c.d + 8 * b + k] > 0) << k;
        }
        codes[i * c.code_size + c.mse_bytes + b] = (uint8_t)v;
    }
}

int grid_for(size_t work, int threads) {
    size_t blocks = (work + threads - 1) / threads;
    return (int)std::min<size_t>(std::max<size_t>(blocks, 1), 65535);
}

} // namespace

void launch_center(
    size_t n,
    int d,
    const float* x,
    const float* mean,
    float* x_out,
    cudaStream_t s) {
    size_t total = n * d;
    center_kernel<<<grid_for(total, 256), 256, 0, s>>>(
        total, d, x, mean, x_out);
    TQ_CUDA_CHECK_LAUNCH();
}

void launch_matmul_rows(
    size_t n, int d, const float* x, const float* m, float* y, cudaStream_t s) {
    if (n == 0) {
        return;
    }
    dim3 grid(
        (unsigned)((n + kMmTile - 1) / kMmTile), (d + kMmTile - 1) / kMmTile);
    matmul_rows_kernel<<<grid, dim3(16, 16), 0, s>>>(n, d, x, m, y);
    TQ_CUDA_CHECK_LAUNCH();
}

void launch_encode(
    const EncodeParams& p,
    size_t n,
    const float* x,
    const float* y,
    uint8_t* codes,
    float* resid,
    int* bad_flag,
    cudaStream_t s) {
    if (n == 0) {
        return;
    }
    const int d = p.c.d;
    // per warp: two d-float buffers and d index bytes
    int warp_floats = 2 * d + (d + 3) / 4;
    warp_floats = (warp_floats + 3) / 4 * 4;
    size_t tables = 4 * 256 * sizeof(float);
    size_t per_warp = warp_floats * sizeof(float);
    int warps = (int)std::min<size_t>(
        kMaxWarpsPerBlock, (kEncodeSmem - tables) / per_warp);
    FAISS_THROW_IF_NOT_FMT(
        warps >= 1, "GPU encode: d=%d too large for shared memory", d);
    size_t smem = tables + warps * per_warp;
    int blocks = (int)std::min<size_t>((n + warps - 1) / warps, 65535 * 4);
    encode_kernel<<<blocks, warps * kWarp, smem, s>>>(
        p, n, x, y, codes, resid, bad_flag, warp_floats);
    TQ_CUDA_CHECK_LAUNCH();
}

void launch_pack_signs(
    const CodecView& c,
    size_t n,
    const float* sr,
    uint8_t* codes,
    cudaStream_t s) {
    pack_signs_kernel<<<grid_for(n * c.qjl_bytes, 256), 256, 0, s>>>(
        c, n, sr, codes);
    TQ_CUDA_CHECK_LAUNCH();
}

} // namespace gpu
} // namespace faiss_turbo
