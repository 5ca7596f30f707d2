/**
 * AVX2 float kernels with the reference's exact roundings (see
 * float_kernels.h). Compiled with -mavx2 only, and the library's
 * -ffp-contract=off: no multiply-add can be fused. Internal linkage only.
 */
#include <immintrin.h>

#include <cstring>

#include <faiss_turbo/impl/simd/float_kernels.h>

namespace faiss_turbo {

namespace {

/// not std::min: a template instantiated here with -mavx2 could be the
/// copy the linker keeps for the whole program
inline size_t min_sz(size_t a, size_t b) {
    return a < b ? a : b;
}

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

/// the tree ((l0 + l4) + (l1 + l5)) + ((l2 + l6) + (l3 + l7)) of 8
/// accumulators at once: lanes 0-3 of the result are acc[0..3]'s, lanes
/// 4-7 acc[4..7]'s. The 128-bit halves give l_j + l_{j+4}, then two hadds
/// the pairs (a + b = b + a exactly, so hadd's operand order is free).
__m256 reduce_tree8(const __m256* acc) {
    __m256 v[4];
    for (int k = 0; k < 4; k++) {
        __m256 lo = _mm256_permute2f128_ps(acc[k], acc[k + 4], 0x20);
        __m256 hi = _mm256_permute2f128_ps(acc[k], acc[k + 4], 0x31);
        v[k] = _mm256_add_ps(lo, hi);
    }
    return _mm256_hadd_ps(
            _mm256_hadd_ps(v[0], v[1]), _mm256_hadd_ps(v[2], v[3]));
}

/// rows m[0..3] times vectors x0, x1: acc[k] (row k, x0) and acc[4 + k]
/// (row k, x1) in dot_lanes order. The last d % 8 elements come from
/// masked loads: their zeros add +0 to the other lanes, which changes no
/// bit (an accumulator that starts at +0 is never -0).
__m256 dot_block4x2(
        const float* const* m,
        const float* x0,
        const float* x1,
        size_t d,
        __m256i tail_mask) {
    __m256 acc[8];
    for (int k = 0; k < 8; k++) {
        acc[k] = _mm256_setzero_ps();
    }
    size_t j = 0;
    for (; j + 8 <= d; j += 8) {
        __m256 a = _mm256_loadu_ps(x0 + j), b = _mm256_loadu_ps(x1 + j);
        for (int k = 0; k < 4; k++) {
            __m256 mk = _mm256_loadu_ps(m[k] + j);
            // in a register: the compiler otherwise folds this load into
            // both products, 10 loads per pass instead of 6, and 256-bit
            // loads (2 per cycle) then bound the loop
            asm("" : "+x"(mk));
            acc[k] = _mm256_add_ps(acc[k], _mm256_mul_ps(mk, a));
            acc[k + 4] = _mm256_add_ps(acc[k + 4], _mm256_mul_ps(mk, b));
        }
    }
    if (j < d) {
        __m256 a = _mm256_maskload_ps(x0 + j, tail_mask);
        __m256 b = _mm256_maskload_ps(x1 + j, tail_mask);
        for (int k = 0; k < 4; k++) {
            __m256 mk = _mm256_maskload_ps(m[k] + j, tail_mask);
            acc[k] = _mm256_add_ps(acc[k], _mm256_mul_ps(mk, a));
            acc[k + 4] = _mm256_add_ps(acc[k + 4], _mm256_mul_ps(mk, b));
        }
    }
    return reduce_tree8(acc);
}

/// 4 rows x 2 vectors: 8 independent chains of additions per pass, 6 loads
/// for 8 products. Edges repeat the last row / vector and drop the copies.
void dot_rows_block_avx2(
        const float* m,
        size_t nrows,
        const float* x,
        size_t nx,
        size_t d,
        float* out,
        size_t ldo) {
    const __m256i tail_mask = _mm256_cmpgt_epi32(
            _mm256_set1_epi32((int)(d % 8)),
            _mm256_setr_epi32(0, 1, 2, 3, 4, 5, 6, 7));
    for (size_t r = 0; r < nrows; r += 4) {
        const float* mr[4];
        for (size_t k = 0; k < 4; k++) {
            mr[k] = m + min_sz(r + k, nrows - 1) * d;
        }
        for (size_t i = 0; i < nx; i += 2) {
            const float* x0 = x + i * d;
            const float* x1 = x + min_sz(i + 1, nx - 1) * d;
            __m256 res = dot_block4x2(mr, x0, x1, d, tail_mask);
            float* o = out + i * ldo + r;
            if (r + 4 <= nrows && i + 2 <= nx) {
                _mm_storeu_ps(o, _mm256_castps256_ps128(res));
                _mm_storeu_ps(o + ldo, _mm256_extractf128_ps(res, 1));
                continue;
            }
            float t[8];
            _mm256_storeu_ps(t, res);
            for (size_t v = 0; v < 2 && i + v < nx; v++) {
                for (size_t k = 0; k < 4 && r + k < nrows; k++) {
                    o[v * ldo + k] = t[4 * v + k];
                }
            }
        }
    }
}

/// 32 double lanes as 8 registers of 4: lane l = register l / 4, slot
/// l % 4, so each tree level of canonical_tree_reduce is one vector add
double canonical_dot_avx2(const float* a, const float* b, size_t d) {
    __m256d acc[8];
    for (int k = 0; k < 8; k++) {
        acc[k] = _mm256_setzero_pd();
    }
    size_t i = 0;
    if (a == b) { // a squared norm (encode's): one conversion a load
        for (; i + 32 <= d; i += 32) {
            for (int k = 0; k < 8; k++) {
                __m256d pa = _mm256_cvtps_pd(_mm_loadu_ps(a + i + 4 * k));
                acc[k] = _mm256_add_pd(acc[k], _mm256_mul_pd(pa, pa));
            }
        }
    }
    for (; i + 32 <= d; i += 32) {
        for (int k = 0; k < 8; k++) {
            __m256d pa = _mm256_cvtps_pd(_mm_loadu_ps(a + i + 4 * k));
            __m256d pb = _mm256_cvtps_pd(_mm_loadu_ps(b + i + 4 * k));
            acc[k] = _mm256_add_pd(acc[k], _mm256_mul_pd(pa, pb));
        }
    }
    if (i < d) {
        double p[32];
        for (int k = 0; k < 8; k++) {
            _mm256_storeu_pd(p + 4 * k, acc[k]);
        }
        for (size_t l = 0; i + l < d; l++) {
            p[l] += (double)a[i + l] * (double)b[i + l];
        }
        for (int k = 0; k < 8; k++) {
            acc[k] = _mm256_loadu_pd(p + 4 * k);
        }
    }
    for (int k = 0; k < 4; k++) { // off = 16
        acc[k] = _mm256_add_pd(acc[k], acc[k + 4]);
    }
    acc[0] = _mm256_add_pd(acc[0], acc[2]); // off = 8
    acc[1] = _mm256_add_pd(acc[1], acc[3]);
    acc[0] = _mm256_add_pd(acc[0], acc[1]); // off = 4
    __m128d s = _mm_add_pd(                 // off = 2
            _mm256_castpd256_pd128(acc[0]),
            _mm256_extractf128_pd(acc[0], 1));
    return _mm_cvtsd_f64(s) + _mm_cvtsd_f64(_mm_unpackhi_pd(s, s));
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

/// stages 1, 2 and 4 inside v (they only mix aligned groups of 8)
__m256 stages_in_vector(__m256 v) {
    v = stage_in_vector<1, 0xaa>(v);
    v = stage_in_vector<2, 0xcc>(v);
    return stage_in_vector<4, 0xf0>(v);
}

/// what the last stage does to its outputs: times scale, then, when
/// signs is set, times signs[position] (the next Hadamard round's signs:
/// both products exact as the reference's separate passes do them)
struct LastStage {
    __m256 sc;
    const float* signs;

    __m256 operator()(__m256 v, size_t j) const {
        v = _mm256_mul_ps(v, sc);
        return signs ? _mm256_mul_ps(v, _mm256_loadu_ps(signs + j)) : v;
    }
};

/// one butterfly of stage h: a + b to x[j], a - b to x[j + h], through
/// last when it is the last stage (not null)
void butterfly_out(
        float* x,
        size_t j,
        size_t h,
        __m256 a,
        __m256 b,
        const LastStage* last) {
    __m256 s0 = _mm256_add_ps(a, b), s1 = _mm256_sub_ps(a, b);
    if (last) {
        s0 = (*last)(s0, j);
        s1 = (*last)(s1, j + h);
    }
    _mm256_storeu_ps(x + j, s0);
    _mm256_storeu_ps(x + j + h, s1);
}

/// stages 1 to 8 in one pass over x, p >= 16; last: see butterfly_out
/// (set when they are all the stages, p = 16)
void first_stages16(float* x, size_t p, const LastStage* last) {
    for (size_t i = 0; i < p; i += 16) {
        __m256 a = stages_in_vector(_mm256_loadu_ps(x + i));
        __m256 b = stages_in_vector(_mm256_loadu_ps(x + i + 8));
        butterfly_out(x, i, 8, a, b, last);
    }
}

/// the stages h = from, 2 from, ... < p, two per pass over x: four
/// vectors in registers go through stage h then stage 2h, the same
/// butterflies in the same order as one stage at a time, with half the
/// loads and stores. An odd last stage runs alone. The last stage's
/// outputs go through last (when not null)
void wide_stages(float* x, size_t p, size_t from, const LastStage* last) {
    size_t h = from;
    for (; 4 * h <= p; h *= 4) {
        const LastStage* fin = 4 * h == p ? last : nullptr;
        for (size_t i = 0; i < p; i += 4 * h) {
            for (size_t j = i; j < i + h; j += 8) {
                __m256 a = _mm256_loadu_ps(x + j);
                __m256 b = _mm256_loadu_ps(x + j + h);
                __m256 c = _mm256_loadu_ps(x + j + 2 * h);
                __m256 e = _mm256_loadu_ps(x + j + 3 * h);
                __m256 t0 = _mm256_add_ps(a, b), t1 = _mm256_sub_ps(a, b);
                __m256 t2 = _mm256_add_ps(c, e), t3 = _mm256_sub_ps(c, e);
                __m256 o[4] = {
                        _mm256_add_ps(t0, t2),
                        _mm256_add_ps(t1, t3),
                        _mm256_sub_ps(t0, t2),
                        _mm256_sub_ps(t1, t3)};
                for (size_t k = 0; k < 4; k++) {
                    size_t jk = j + k * h;
                    _mm256_storeu_ps(x + jk, fin ? (*fin)(o[k], jk) : o[k]);
                }
            }
        }
    }
    if (h < p) { // 2 h = p
        for (size_t j = 0; j < h; j += 8) {
            __m256 a = _mm256_loadu_ps(x + j), b = _mm256_loadu_ps(x + j + h);
            butterfly_out(x, j, h, a, b, last);
        }
    }
}

/// fwht_inplace's butterflies, then (last not null) the scale and signs
/// of LastStage: the same roundings as separate passes. p = 2^k >= 8
void fwht_avx2_t(float* x, size_t p, const LastStage* last) {
    if (p == 8) {
        __m256 v = stages_in_vector(_mm256_loadu_ps(x));
        _mm256_storeu_ps(x, last ? (*last)(v, 0) : v);
        return;
    }
    first_stages16(x, p, p == 16 ? last : nullptr);
    wide_stages(x, p, 16, last);
}

void fwht_avx2(float* x, size_t p) {
    fwht_avx2_t(x, p, nullptr);
}

void fwht_scaled_avx2(float* x, size_t p, float scale, const float* signs) {
    const LastStage last{_mm256_set1_ps(scale), signs};
    fwht_avx2_t(x, p, &last);
}

/// 4-bit indices of 8 values by quantize_coord's binary search, one
/// comparison per level: the level's threshold comes from a blend or a
/// lane permutation of the thresholds by the bits found so far (16
/// operations, where counting the 15 thresholds takes 30)
struct Quantize16 {
    __m256 t7, t3, t11, odd, even;

    explicit Quantize16(const float* t)
        : t7(_mm256_set1_ps(t[7])),
          t3(_mm256_set1_ps(t[3])),
          t11(_mm256_set1_ps(t[11])),
          odd(_mm256_setr_ps(t[1], t[5], t[9], t[13], 0, 0, 0, 0)),
          even(_mm256_setr_ps(
                  t[0], t[2], t[4], t[6], t[8], t[10], t[12], t[14])) {}

    /// 1 where x > t
    static __m256i gt(__m256 x, __m256 t) {
        return _mm256_srli_epi32(
                _mm256_castps_si256(_mm256_cmp_ps(x, t, _CMP_GT_OQ)), 31);
    }

    /// 2 i + (x > t): the next level's index
    static __m256i step(__m256i i, __m256 x, __m256 t) {
        return _mm256_add_epi32(_mm256_slli_epi32(i, 1), gt(x, t));
    }

    __m256i operator()(__m256 x) const {
        __m256i i3 = gt(x, t7); // idx / 8
        __m256 t = _mm256_blendv_ps(
                t3, t11, _mm256_castsi256_ps(_mm256_slli_epi32(i3, 31)));
        __m256i i2 = step(i3, x, t); // idx / 4: next t[4 i2 + 1]
        __m256i i1 = step(i2, x, _mm256_permutevar8x32_ps(odd, i2));
        return step(i1, x, _mm256_permutevar8x32_ps(even, i1)); // t[2 i1]
    }
};

/// indices of 8 values by counting the thresholds below them (widths 1-3)
struct CountThresholds {
    __m256 t[7];
    int nt;

    CountThresholds(const float* thresholds, int nbits) : nt((1 << nbits) - 1) {
        for (int k = 0; k < nt; k++) {
            t[k] = _mm256_set1_ps(thresholds[k]);
        }
    }

    __m256i operator()(__m256 x) const {
        __m256i cnt = _mm256_setzero_si256();
        for (int k = 0; k < nt; k++) {
            __m256 gt = _mm256_cmp_ps(x, t[k], _CMP_GT_OQ);
            cnt = _mm256_sub_epi32(cnt, _mm256_castps_si256(gt));
        }
        return cnt;
    }
};

/// 8 indices of B bits from the low 8 * B bits of w, in order, as int32
template <int B> __m256i indices8(uint32_t w) {
    const __m256i shifts =
            _mm256_setr_epi32(0, B, 2 * B, 3 * B, 4 * B, 5 * B, 6 * B, 7 * B);
    return _mm256_and_si256(
            _mm256_srlv_epi32(_mm256_set1_epi32((int)w), shifts),
            _mm256_set1_epi32((1 << B) - 1));
}

/// table[idx] for 8 indices < 2^B: permutevar takes 8 entries, so 4-bit
/// indices pick from two halves by their bit 3 (moved to the sign bit)
template <int B> __m256 lookup8(__m256 lo, __m256 hi, __m256i idx) {
    __m256 v = _mm256_permutevar8x32_ps(lo, idx);
    if (B == 4) {
        __m256 h = _mm256_permutevar8x32_ps(hi, idx);
        v = _mm256_blendv_ps(
                v, h, _mm256_castsi256_ps(_mm256_slli_epi32(idx, 28)));
    }
    return v;
}

/// idx[i] = index(v[i]) for the whole groups of 8, and chat[i] =
/// centroids[idx[i]] when chat is set (lo, hi: the table's two halves, as
/// lookup8 takes them); returns how many done
template <int B, class Index>
size_t quantize_groups(
        const float* v,
        size_t n,
        const Index& index,
        __m256 lo,
        __m256 hi,
        uint8_t* idx,
        float* chat) {
    size_t i = 0;
    for (; i + 8 <= n; i += 8) {
        __m256i cnt = index(_mm256_loadu_ps(v + i));
        if (chat) {
            _mm256_storeu_ps(chat + i, lookup8<B>(lo, hi, cnt));
        }
        // counts <= 15: 32 -> 16 -> 8 bits, then the two halves' 4 bytes
        __m256i c8 = _mm256_packus_epi16(_mm256_packs_epi32(cnt, cnt), cnt);
        __m128i b = _mm_unpacklo_epi32(
                _mm256_castsi256_si128(c8), _mm256_extracti128_si256(c8, 1));
        _mm_storel_epi64((__m128i*)(idx + i), b);
    }
    return i;
}

/// idx = number of thresholds < v (the binary search's result on sorted
/// thresholds), 8 values at a time (v > t is false for NaN as in the
/// scalar rule; encode refuses NaN anyway)
void quantize_avx2(
        const float* v,
        size_t n,
        const float* thresholds,
        int nbits,
        uint8_t* idx,
        const float* centroids,
        float* chat) {
    float t[16] = {};
    if (chat) {
        std::memcpy(t, centroids, sizeof(float) << nbits);
    }
    const __m256 lo = _mm256_loadu_ps(t), hi = _mm256_loadu_ps(t + 8);
    size_t i;
    if (nbits == 4) {
        i = quantize_groups<4>(v, n, Quantize16(thresholds), lo, hi, idx, chat);
    } else {
        // widths 1-3 index at most 8 entries: lookup8<3> takes them all
        i = quantize_groups<3>(
                v, n, CountThresholds(thresholds, nbits), lo, hi, idx, chat);
    }
    // the tail by counting (no inline code from coord_rules.h here: see
    // int8_kernels.h)
    const int nt = (1 << nbits) - 1;
    for (; i < n; i++) {
        int c = 0;
        for (int k = 0; k < nt; k++) {
            c += v[i] > thresholds[k];
        }
        idx[i] = (uint8_t)c;
        if (chat) {
            chat[i] = centroids[idx[i]];
        }
    }
}

template <int B>
void lookup_centroids_t(
        const uint8_t* p, size_t nbytes, const float* table, float* out) {
    constexpr size_t step = B; // bytes per 8 indices
    float t[16] = {};
    std::memcpy(t, table, sizeof(float) * (1 << B));
    const __m256 lo = _mm256_loadu_ps(t), hi = _mm256_loadu_ps(t + 8);
    size_t i = 0;
    for (; i + 4 <= nbytes; i += step) { // 4 readable bytes from p + i
        uint32_t w;
        std::memcpy(&w, p + i, 4);
        _mm256_storeu_ps(out + i * 8 / B, lookup8<B>(lo, hi, indices8<B>(w)));
    }
    lookup_centroids_scalar(p + i, nbytes - i, B, table, out + i * 8 / B);
}

void lookup_centroids_avx2(
        const uint8_t* p,
        size_t nbytes,
        int nbits,
        const float* table,
        float* out) {
    if (nbits == 4) {
        lookup_centroids_t<4>(p, nbytes, table, out);
    } else if (nbits == 2) {
        lookup_centroids_t<2>(p, nbytes, table, out);
    } else {
        lookup_centroids_t<1>(p, nbytes, table, out);
    }
}

} // namespace

extern const FloatKernels kFloatKernelsAVX2 = {
        "avx2",
        dot_lanes_avx2,
        dot_rows_avx2,
        fwht_avx2,
        quantize_avx2,
        dot_rows_block_avx2,
        canonical_dot_avx2,
        fwht_scaled_avx2,
        lookup_centroids_avx2,
        hadamard8_avx2,
        hadamard8_transpose_avx2,
};

} // namespace faiss_turbo
