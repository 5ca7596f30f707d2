/**
 * Per-coordinate rules of the codec, shared by the CPU and the CUDA code:
 * the canonical reductions, the scalar quantizer's decision rule, the
 * Walsh-Hadamard butterfly order and the bit packing. Any change here changes
 * codes: the golden-file tests catch it.
 */
#pragma once

#include <cmath>
#include <cstddef>
#include <cstdint>

#include <faiss_turbo/impl/host_device.h>

namespace faiss_turbo {

/// Number of partial sums in the canonical reductions. A CUDA warp computes
/// the same partials (lane l sums elements l, l + 32, ...) and reduces them
/// with the same tree, so norms and dots agree bit for bit. Products of two
/// floats are exact in double, so fused multiply-adds cannot change them.
constexpr int kCanonicalLanes = 32;

TQ_HOST_DEVICE double canonical_tree_reduce(double* p) {
    for (int off = kCanonicalLanes / 2; off >= 1; off /= 2) {
        for (int l = 0; l < off; l++) {
            p[l] = p[l] + p[l + off];
        }
    }
    return p[0];
}

/// sum_i a[i] * b[i] in the canonical order, in double
TQ_HOST_DEVICE double canonical_dot(const float* a, const float* b, size_t d) {
    double p[kCanonicalLanes];
    for (int l = 0; l < kCanonicalLanes; l++) {
        p[l] = 0;
    }
    for (size_t i = 0; i < d; i++) {
        p[i % kCanonicalLanes] += (double)a[i] * (double)b[i];
    }
    return canonical_tree_reduce(p);
}

/// index of the Lloyd-Max cell holding v: the number of thresholds < v.
/// thresholds has (1 << nbits) - 1 sorted entries; nbits == 0 gives 0.
TQ_HOST_DEVICE uint32_t
quantize_coord(float v, const float* thresholds, int nbits) {
    uint32_t idx = 0;
    for (uint32_t step = (1u << nbits) >> 1; step >= 1; step >>= 1) {
        if (v > thresholds[idx + step - 1]) {
            idx += step;
        }
    }
    return idx;
}

/// v / s, the scaling of a vector to unit norm (encode) and of a query to
/// its quantizer's range: v times inv = 1 / s, one multiply a coordinate,
/// while inv is a finite float; a division where it is not (s below about
/// 2.9e-39, a subnormal), where the reciprocal made every coordinate inf or
/// NaN. Callers give inv = 0 for s = 0 (a zero vector stays zero).
TQ_HOST_DEVICE float scale_coord(float v, float s, float inv) {
#if defined(__CUDA_ARCH__)
    return isfinite(inv) ? __fmul_rn(v, inv) : __fdiv_rn(v, s);
#else
    return std::isfinite(inv) ? v * inv : v / s;
#endif
}

/// in-place unnormalized fast Walsh-Hadamard transform of p = 2^k floats.
/// The butterfly stages run h = 1, 2, 4, ...: the GPU keeps this order.
TQ_HOST_DEVICE void fwht_inplace(float* x, size_t p) {
    for (size_t h = 1; h < p; h *= 2) {
        for (size_t i = 0; i < p; i += 2 * h) {
            for (size_t j = i; j < i + h; j++) {
                float a = x[j];
                float b = x[j + h];
                x[j] = a + b;
                x[j + h] = a - b;
            }
        }
    }
}

/// bit offset of MSE coordinate j in a code (TurboQuantizer.h's layout):
/// the first n_hi coordinates take b_hi bits each, the others b_lo. I:
/// size_t on the host, int in the GPU's kernels (32-bit arithmetic there)
template <class I>
TQ_HOST_DEVICE I coord_bit_offset(I j, I n_hi, int b_hi, int b_lo) {
    return j < n_hi ? j * b_hi : n_hi * b_hi + (j - n_hi) * b_lo;
}

/// write the low `w` bits of v (w <= 8) at bit offset pos, LSB first.
/// The destination bytes must be zero beforehand.
TQ_HOST_DEVICE void put_bits(uint8_t* p, size_t pos, uint32_t v, int w) {
    if (w == 0) {
        return;
    }
    size_t byte = pos >> 3;
    uint32_t shifted = v << (pos & 7);
    p[byte] |= (uint8_t)(shifted & 0xff);
    if ((pos & 7) + w > 8) {
        p[byte + 1] |= (uint8_t)(shifted >> 8);
    }
}

/// read `w` bits (w <= 8) at bit offset pos, LSB first
TQ_HOST_DEVICE uint32_t get_bits(const uint8_t* p, size_t pos, int w) {
    if (w == 0) {
        return 0;
    }
    size_t byte = pos >> 3;
    uint32_t v = p[byte];
    if ((pos & 7) + w > 8) {
        v |= (uint32_t)p[byte + 1] << 8;
    }
    return (v >> (pos & 7)) & ((1u << w) - 1);
}

} // namespace faiss_turbo
