/**
 * AVX2 float kernels with the reference's exact roundings (see
 * float_kernels.h). Compiled with -mavx2 only, and the library's
 * -ffp-contract=off: no multiply-add can be fused. Internal linkage only.
 */
#include <immintrin.h>

#include <faiss_turbo/impl/simd/float_kernels.h>

namespace faiss_turbo {

namespace {

/// lane l accumulates a[i] * b[i] for i = l mod 8, in order of i
float dot_lanes_avx2(const float* a, const float* b, size_t d) {
    __m256 acc = _mm256_setzero_ps();
    size_t i = 0;
    for (; i + 8 <= d; i += 8) {
        acc = _mm256_add_ps(
                acc,
                _mm256_mul_ps(_mm256_loadu_ps(a + i), _mm256_loadu_ps(b + i)));
    }
    float l[8];
    _mm256_storeu_ps(l, acc);
    for (; i < d; i++) {
        l[i % 8] += a[i] * b[i];
    }
    return ((l[0] + l[4]) + (l[1] + l[5])) + ((l[2] + l[6]) + (l[3] + l[7]));
}

float reduce_lanes(
        __m256 acc, const float* a, const float* b, size_t i, size_t d) {
    float l[8];
    _mm256_storeu_ps(l, acc);
    for (; i < d; i++) {
        l[i % 8] += a[i] * b[i];
    }
    return ((l[0] + l[4]) + (l[1] + l[5])) + ((l[2] + l[6]) + (l[3] + l[7]));
}

/// four rows at once: four independent chains of additions
void dot_rows_avx2(
        const float* m, size_t nrows, const float* x, size_t d, float* out) {
    size_t r = 0;
    for (; r + 4 <= nrows; r += 4) {
        const float* m0 = m + r * d;
        __m256 a0 = _mm256_setzero_ps(), a1 = a0, a2 = a0, a3 = a0;
        size_t i = 0;
        for (; i + 8 <= d; i += 8) {
            __m256 xv = _mm256_loadu_ps(x + i);
            a0 = _mm256_add_ps(a0, _mm256_mul_ps(_mm256_loadu_ps(m0 + i), xv));
            a1 = _mm256_add_ps(
                    a1, _mm256_mul_ps(_mm256_loadu_ps(m0 + d + i), xv));
            a2 = _mm256_add_ps(
                    a2, _mm256_mul_ps(_mm256_loadu_ps(m0 + 2 * d + i), xv));
            a3 = _mm256_add_ps(
                    a3, _mm256_mul_ps(_mm256_loadu_ps(m0 + 3 * d + i), xv));
        }
        out[r] = reduce_lanes(a0, m0, x, i, d);
        out[r + 1] = reduce_lanes(a1, m0 + d, x, i, d);
        out[r + 2] = reduce_lanes(a2, m0 + 2 * d, x, i, d);
        out[r + 3] = reduce_lanes(a3, m0 + 3 * d, x, i, d);
    }
    for (; r < nrows; r++) {
        out[r] = dot_lanes_avx2(m + r * d, x, d);
    }
}

/// one butterfly stage of span h < 8 inside a vector: positions with bit h
/// clear get x + x[+h], the others x[-h] - x (mask: those positions)
template <int H, int MASK> __m256 stage_in_vector(__m256 v) {
    __m256 p;
    if (H == 1) {
        p = _mm256_permute_ps(v, 0xb1);
    } else if (H == 2) {
        p = _mm256_permute_ps(v, 0x4e);
    } else {
        p = _mm256_permute2f128_ps(v, v, 0x01);
    }
    return _mm256_blend_ps(_mm256_add_ps(v, p), _mm256_sub_ps(p, v), MASK);
}

/// the stages h = 1, 2, 4 only mix aligned groups of 8, so each group can
/// run them in turn; the wider stages then go over the whole block
void fwht_avx2(float* x, size_t p) {
    for (size_t i = 0; i < p; i += 8) {
        __m256 v = _mm256_loadu_ps(x + i);
        v = stage_in_vector<1, 0xaa>(v);
        v = stage_in_vector<2, 0xcc>(v);
        v = stage_in_vector<4, 0xf0>(v);
        _mm256_storeu_ps(x + i, v);
    }
    for (size_t h = 8; h < p; h *= 2) {
        for (size_t i = 0; i < p; i += 2 * h) {
            for (size_t j = i; j < i + h; j += 8) {
                __m256 a = _mm256_loadu_ps(x + j);
                __m256 b = _mm256_loadu_ps(x + j + h);
                _mm256_storeu_ps(x + j, _mm256_add_ps(a, b));
                _mm256_storeu_ps(x + j + h, _mm256_sub_ps(a, b));
            }
        }
    }
}

/// idx = number of thresholds < v, 8 values at a time (v > t is false for
/// NaN as in the scalar rule; encode refuses NaN anyway)
void quantize_avx2(
        const float* v,
        size_t n,
        const float* thresholds,
        int nbits,
        uint8_t* idx) {
    const int nt = (1 << nbits) - 1;
    __m256 t[15];
    for (int k = 0; k < nt; k++) {
        t[k] = _mm256_set1_ps(thresholds[k]);
    }
    size_t i = 0;
    for (; i + 8 <= n; i += 8) {
        __m256 x = _mm256_loadu_ps(v + i);
        __m256i cnt = _mm256_setzero_si256();
        for (int k = 0; k < nt; k++) {
            __m256 gt = _mm256_cmp_ps(x, t[k], _CMP_GT_OQ);
            cnt = _mm256_sub_epi32(cnt, _mm256_castps_si256(gt));
        }
        int32_t c[8];
        _mm256_storeu_si256((__m256i*)c, cnt);
        for (int l = 0; l < 8; l++) {
            idx[i + l] = (uint8_t)c[l];
        }
    }
    for (; i < n; i++) {
        int c = 0;
        for (int k = 0; k < nt; k++) {
            c += v[i] > thresholds[k];
        }
        idx[i] = (uint8_t)c;
    }
}

} // namespace

extern const FloatKernels kFloatKernelsAVX2 = {
        "avx2",
        dot_lanes_avx2,
        dot_rows_avx2,
        fwht_avx2,
        quantize_avx2,
};

} // namespace faiss_turbo
