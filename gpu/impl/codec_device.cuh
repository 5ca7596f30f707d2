/**
 * Device-side reading of TurboQuant codes (layout in TurboQuantizer.h) and
 * the exact score, with the CPU's operations in the CPU's order:
 * decode_rotated + dot_lanes + combine. __fmul_rn / __fadd_rn are never
 * contracted into fused multiply-adds, so keys equal the CPU's bit for bit.
 *
 * Coordinates are read in groups of 8 (coordinates 8g .. 8g + 7), which is
 * also dot_lanes' lane order: coordinate j always goes to lane j % 8, and
 * the exact score gives each lane a thread of its own.
 */
#pragma once

#include <cstdint>

#include <faiss_turbo/impl/coord_rules.h>
#include <gpu/impl/kernels.h>

namespace faiss_turbo {
namespace gpu {

/// 64 bits of the code array from bit address `bit` (LSB first). Reads up
/// to 12 bytes past the bit: the code arrays have 16 bytes of slack.
__device__ __forceinline__ uint64_t
load_bits64(const uint8_t* codes, uint64_t bit) {
    const uint32_t* w = (const uint32_t*)codes + (bit >> 5);
    uint32_t w0 = __ldg(w), w1 = __ldg(w + 1), w2 = __ldg(w + 2);
    int sh = (int)(bit & 31);
    uint32_t lo = __funnelshift_r(w0, w1, sh);
    uint32_t hi = __funnelshift_r(w1, w2, sh);
    return ((uint64_t)hi << 32) | lo;
}

__device__ __forceinline__ int coord_bits(const CodecView& c, int j) {
    return j < c.n_hi ? c.b_hi : c.b_lo;
}

__device__ __forceinline__ int coord_pos(const CodecView& c, int j) {
    return faiss_turbo::coord_bit_offset<int>(j, c.n_hi, c.b_hi, c.b_lo);
}

/** Group g of the MSE indices (coordinates 8g .. 8g + 7) of the code
 * starting at bit `vbit`: the 64 bits from its first coordinate, and their
 * common width; 0 when the group straddles n_hi (straddle_index then reads
 * each). W = 4: the 4-bit layout with code_size % 4 == 0 (one aligned word
 * per group); W = 0: any layout. Indices past d are garbage: mask them. */
template <int W>
__device__ __forceinline__ int group_bits(
    const CodecView& c,
    const uint8_t* codes,
    uint64_t vbit,
    int g,
    uint64_t& bits) {
    if (W == 4) {
        bits = __ldg((const uint32_t*)codes + (vbit >> 5) + g);
        return 4;
    }
    const int j0 = 8 * g;
    if (j0 + 8 <= c.n_hi || j0 >= c.n_hi) {
        bits = load_bits64(codes, vbit + coord_pos(c, j0));
        return coord_bits(c, j0);
    }
    return 0;
}

/// index l of a group from group_bits (w > 0)
__device__ __forceinline__ uint32_t group_field(uint64_t bits, int l, int w) {
    return (uint32_t)(bits >> (l * w)) & ((1u << w) - 1);
}

/// the index of coordinate j, read on its own (a group straddling n_hi)
__device__ __forceinline__ uint32_t
straddle_index(const CodecView& c, const uint8_t* codes, uint64_t vbit, int j) {
    uint32_t mask = (1u << coord_bits(c, j)) - 1;
    return (uint32_t)load_bits64(codes, vbit + coord_pos(c, j)) & mask;
}

/// the 8 MSE indices of group g
template <int W>
__device__ __forceinline__ void group_indices(
    const CodecView& c,
    const uint8_t* codes,
    uint64_t vbit,
    int g,
    uint32_t idx[8]) {
    uint64_t bits = 0;
    const int w = group_bits<W>(c, codes, vbit, g, bits);
#pragma unroll
    for (int l = 0; l < 8; l++) {
        idx[l] = w ? group_field(bits, l, w)
                   : straddle_index(c, codes, vbit, 8 * g + l);
    }
}

/// MSE index l of group g alone (the 8 threads of a rescored code each
/// take one lane: they read the same bytes)
template <int W>
__device__ __forceinline__ uint32_t lane_index(
    const CodecView& c,
    const uint8_t* codes,
    uint64_t vbit,
    int g,
    int l) {
    uint64_t bits = 0;
    const int w = group_bits<W>(c, codes, vbit, g, bits);
    return w ? group_field(bits, l, w)
             : straddle_index(c, codes, vbit, 8 * g + l);
}

/// the code's byte `off` (bytes past the MSE part: signs, floats)
__device__ __forceinline__ uint32_t
code_byte(const CodecView& c, const uint8_t* codes, uint64_t vec, int off) {
    const uint64_t bit = (vec * (uint64_t)c.code_size + off) * 8;
    return (uint32_t)(load_bits64(codes, bit) & 0xff);
}

/// the float scalars of a code (TQCodeScalars): 0 where absent
struct CodeScalars {
    float norm = 0;
    float aux = 0;  ///< beta (debiased MSE) or gamma (PROD)
    float moff = 0; ///< <mean, x - mean> (ip_offset codecs)
};

/// the scalars of code `vec`, in TurboQuantizer::read_scalars' order
__device__ __forceinline__ CodeScalars
code_scalars(const CodecView& c, const uint8_t* codes, uint64_t vec) {
    const uint64_t bit =
        (vec * (uint64_t)c.code_size + c.mse_bytes + c.qjl_bytes) * 8;
    uint64_t bits = load_bits64(codes, bit);
    CodeScalars s;
    s.norm = __uint_as_float((uint32_t)bits);
    if (c.has_aux) {
        s.aux = __uint_as_float((uint32_t)(bits >> 32));
    }
    if (c.ip_offset) {
        s.moff = __uint_as_float(
            (uint32_t)load_bits64(codes, bit + 32 * (1 + c.has_aux)));
    }
    return s;
}

/// threads per exactly scored code: thread l of 8 runs dot_lanes'
/// accumulator l (coordinates j = l mod 8, in order)
constexpr int kExactLanes = 8;

/// dot_lanes' final tree over its 8 accumulators, one per thread of the 8
/// (aligned in the warp): ((a0 + a4) + (a1 + a5)) + ((a2 + a6) + (a3 + a7))
/// in lane 0, bit for bit, as IEEE addition commutes. Every thread of the
/// warp must call it
__device__ __forceinline__ float lanes_sum(float a) {
    a = __fadd_rn(a, __shfl_xor_sync(0xffffffffu, a, 4));
    a = __fadd_rn(a, __shfl_xor_sync(0xffffffffu, a, 1));
    return __fadd_rn(a, __shfl_xor_sync(0xffffffffu, a, 2));
}

/** The CPU's scores of code `vec` (TurboQuantizer::score) for ng <= G
 * queries, returned as keys: the L2 distance or minus the inner product.
 * The code's coordinates are decoded once for all of them; each query's
 * sums take the CPU's operations in the CPU's order, as for one query. Run
 * by kExactLanes threads, l = their lane; the keys are lane 0's. Every
 * thread of the warp calls it (the sums are shuffled); a thread with
 * !active adds nothing. Query g: y[g], sy[g] (sy only for PROD), qconst[g];
 * cent_*: centroid tables. */
template <int W, int G>
__device__ __forceinline__ void exact_keys(
    const CodecView& c,
    const uint8_t* codes,
    uint64_t vec,
    int l,
    bool active,
    int ng,
    const float* const* y,
    const float* const* sy,
    const float* qconst,
    bool l2,
    const float* cent_hi,
    const float* cent_lo,
    float* keys) {
    const uint64_t vbit = vec * (uint64_t)c.code_size * 8;
    const bool plain = !c.prod && !c.debiased;
    float ac[G], as[G], acc = 0;
#pragma unroll
    for (int g = 0; g < G; g++) {
        ac[g] = as[g] = 0;
    }
    for (int j = l; active && j < c.d; j += kExactLanes) {
        const int grp = j / 8;
        float cv = (j < c.n_hi ? cent_hi : cent_lo)[lane_index<W>(
            c, codes, vbit, grp, l)];
#pragma unroll
        for (int g = 0; g < G; g++) {
            if (g < ng) {
                ac[g] = __fadd_rn(ac[g], __fmul_rn(y[g][j], cv));
            }
        }
        if (plain) {
            acc = __fadd_rn(acc, __fmul_rn(cv, cv));
        }
        if (c.prod) {
            uint32_t sbyte = code_byte(c, codes, vec, c.mse_bytes + grp);
            float sg = ((sbyte >> l) & 1) ? 1.0f : -1.0f;
#pragma unroll
            for (int g = 0; g < G; g++) {
                if (g < ng) {
                    as[g] = __fadd_rn(as[g], __fmul_rn(sy[g][j], sg));
                }
            }
        }
    }
    float dot_c[G], dot_s[G];
#pragma unroll
    for (int g = 0; g < G; g++) { // every thread shuffles, whatever ng
        dot_c[g] = lanes_sum(ac[g]);
        dot_s[g] = c.prod ? lanes_sum(as[g]) : 0.0f;
    }
    const float dot_cc = plain ? lanes_sum(acc) : 0.0f;
    if (l != 0 || !active) {
        return;
    }
    const CodeScalars s = code_scalars(c, codes, vec);
    const float norm = s.norm, aux = s.aux;
#pragma unroll
    for (int g = 0; g < G; g++) {
        if (g >= ng) {
            break;
        }
        float ip, x2;
        if (c.prod) {
            float corr = __fmul_rn(__fmul_rn(c.qjl_factor, aux), dot_s[g]);
            ip = __fmul_rn(norm, __fadd_rn(dot_c[g], corr));
            x2 = __fmul_rn(norm, norm);
        } else if (c.debiased) {
            ip = __fmul_rn(aux, dot_c[g]);
            x2 = __fmul_rn(norm, norm);
        } else {
            ip = __fmul_rn(norm, dot_c[g]);
            x2 = __fmul_rn(__fmul_rn(norm, norm), dot_cc);
        }
        // the CPU's ip + qconst + moff for inner products, in that order
        // (moff = 0 without ip_offset, added all the same as the CPU does)
        keys[g] = l2 ? __fsub_rn(__fadd_rn(qconst[g], x2), __fmul_rn(2.0f, ip))
                     : -__fadd_rn(__fadd_rn(ip, qconst[g]), s.moff);
    }
}

/// exact_keys for one query: its key in lane 0
template <int W>
__device__ __forceinline__ float exact_key(
    const CodecView& c,
    const uint8_t* codes,
    uint64_t vec,
    int l,
    bool active,
    const float* y,
    const float* sy,
    float qconst,
    bool l2,
    const float* cent_hi,
    const float* cent_lo) {
    float key = 0;
    exact_keys<W, 1>(
        c, codes, vec, l, active, 1, &y, &sy, &qconst, l2, cent_hi, cent_lo,
        &key);
    return key;
}

} // namespace gpu
} // namespace faiss_turbo
