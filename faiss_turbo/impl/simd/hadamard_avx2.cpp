/**
 * The rounds of a HadamardRotation on 8 vectors at once (AVX2), with the
 * reference's roundings (rotation.cpp, fwht_inplace in coord_rules.h).
 *
 * The 8 vectors are interleaved: row j of the work buffer holds element j
 * of each of them in one 256-bit register. A round's permutation then moves
 * whole rows: its first butterfly pass loads row perm[i] where it would
 * load row i, so the permutation costs no pass of its own. Every butterfly
 * stage, the first three included, adds and subtracts whole rows with no
 * lane shuffles. Each element goes through the same operations as in the
 * one-vector path: x * s, the gather, a + b and a - b at each stage in
 * stage order, times the block's scale, times the next round's signs. So
 * the bits are the same; the rotation tests compare them.
 *
 * Compiled with -mavx2 only (and -ffp-contract=off, as the library).
 */
#include <immintrin.h>

#include <cmath>
#include <utility>

#include <faiss_turbo/impl/simd/float_kernels.h>

namespace faiss_turbo {

namespace {

constexpr size_t kLanes = 8;

/// 8 x 8 floats: r[i] lane j <- r[j] lane i
void transpose8(__m256* r) {
    __m256 t[8], u[8];
    for (int k = 0; k < 4; k++) {
        t[2 * k] = _mm256_unpacklo_ps(r[2 * k], r[2 * k + 1]);
        t[2 * k + 1] = _mm256_unpackhi_ps(r[2 * k], r[2 * k + 1]);
    }
    for (int k = 0; k < 2; k++) {
        for (int h = 0; h < 2; h++) {
            __m256 a = t[4 * k + h], b = t[4 * k + 2 + h];
            u[4 * k + 2 * h] = _mm256_shuffle_ps(a, b, 0x44);
            u[4 * k + 2 * h + 1] = _mm256_shuffle_ps(a, b, 0xee);
        }
    }
    for (int k = 0; k < 4; k++) {
        r[k] = _mm256_permute2f128_ps(u[k], u[k + 4], 0x20);
        r[k + 4] = _mm256_permute2f128_ps(u[k], u[k + 4], 0x31);
    }
}

/// rows w[j] = (x_v[j] * s[j]) for v < 8, x_v = x + v * ldx (s null: no
/// product)
void interleave_signed(
        const float* x, size_t ldx, size_t d, const float* s, float* w) {
    size_t j = 0;
    for (; j + kLanes <= d; j += kLanes) {
        __m256 r[8];
        for (size_t v = 0; v < kLanes; v++) {
            r[v] = _mm256_loadu_ps(x + v * ldx + j);
        }
        transpose8(r); // r[t] = element j + t of the 8 vectors
        for (size_t t = 0; t < kLanes; t++) {
            _mm256_store_ps(
                    w + (j + t) * kLanes,
                    s ? _mm256_mul_ps(r[t], _mm256_set1_ps(s[j + t])) : r[t]);
        }
    }
    for (; j < d; j++) {
        for (size_t v = 0; v < kLanes; v++) {
            w[j * kLanes + v] = s ? x[v * ldx + j] * s[j] : x[v * ldx + j];
        }
    }
}

/// y_v[j] = row j lane v
void deinterleave(const float* w, size_t d, float* y, size_t ldy) {
    size_t j = 0;
    for (; j + kLanes <= d; j += kLanes) {
        __m256 r[8];
        for (size_t t = 0; t < kLanes; t++) {
            r[t] = _mm256_load_ps(w + (j + t) * kLanes);
        }
        transpose8(r);
        for (size_t v = 0; v < kLanes; v++) {
            _mm256_storeu_ps(y + v * ldy + j, r[v]);
        }
    }
    for (; j < d; j++) {
        for (size_t v = 0; v < kLanes; v++) {
            y[v * ldy + j] = w[j * kLanes + v];
        }
    }
}

/// the end of a block's transform: times scale, then times the sign of
/// its row when signs is set (the next round's)
struct Finish {
    __m256 scale;
    const float* signs;

    __m256 operator()(__m256 v, size_t row) const {
        v = _mm256_mul_ps(v, scale);
        return signs ? _mm256_mul_ps(v, _mm256_set1_ps(signs[row])) : v;
    }
};

/// where a round's first pass reads its rows: row perm[i] of src, the
/// round's permutation gathered as the pass reads (null: the block itself)
struct RowSource {
    const float* src = nullptr;
    const uint32_t* perm = nullptr;
};

/// stages h, 2h, ... (R of them, R <= 3) on the rows j + k h, k < 2^R,
/// in stage order, read from in when Gather, else from w; fin (not null)
/// ends the last stage of the transform
template <int R, bool Gather>
void radix_pass(
        float* w, size_t p, size_t h, const RowSource& in, const Finish* fin) {
    constexpr int kRows = 1 << R;
    for (size_t i = 0; i < p; i += kRows * h) {
        for (size_t j = i; j < i + h; j++) {
            __m256 r[kRows];
            for (int k = 0; k < kRows; k++) {
                const size_t row = j + k * h;
                r[k] = _mm256_load_ps(
                        Gather ? in.src + in.perm[row] * kLanes
                               : w + row * kLanes);
            }
            for (int s = 1; s < kRows; s *= 2) { // stage h * s
                for (int k = 0; k < kRows; k++) {
                    if ((k & s) == 0) {
                        __m256 a = r[k], b = r[k + s];
                        r[k] = _mm256_add_ps(a, b);
                        r[k + s] = _mm256_sub_ps(a, b);
                    }
                }
            }
            for (int k = 0; k < kRows; k++) {
                size_t row = j + k * h;
                _mm256_store_ps(
                        w + row * kLanes, fin ? (*fin)(r[k], row) : r[k]);
            }
        }
    }
}

/// radix_pass, gathering when in has a source
template <int R>
void pass(
        float* w, size_t p, size_t h, const RowSource& in, const Finish* fin) {
    if (in.src) {
        radix_pass<R, true>(w, p, h, in, fin);
    } else {
        radix_pass<R, false>(w, p, h, in, fin);
    }
}

/// fwht_inplace on the p = 2^k rows of w, the first pass reading them
/// from in, then Finish: three stages per pass over the rows, the last
/// pass one or two
void fwht_rows(float* w, size_t p, RowSource in, const Finish& fin) {
    size_t h = 1;
    for (; h * 8 < p; h *= 8, in = RowSource()) {
        pass<3>(w, p, h, in, nullptr);
    }
    if (h * 8 == p) {
        pass<3>(w, p, h, in, &fin);
    } else if (h * 4 == p) {
        pass<2>(w, p, h, in, &fin);
    } else if (h * 2 == p) {
        pass<1>(w, p, h, in, &fin);
    } else { // p = 1: no stage, the scale (1) and signs only
        pass<0>(w, p, h, in, &fin);
    }
}

/// dst row perm[i] = src row i times s[perm[i]]: the transpose's
/// scatter, then its signs, as rows
void scatter_rows_signed(
        const float* src,
        const uint32_t* perm,
        const float* s,
        size_t d,
        float* dst) {
    for (size_t i = 0; i < d; i++) {
        const uint32_t k = perm[i];
        _mm256_store_ps(
                dst + k * kLanes,
                _mm256_mul_ps(
                        _mm256_load_ps(src + i * kLanes),
                        _mm256_set1_ps(s[k])));
    }
}

/// the normalized transform of each block of d's bits (from the highest)
/// on the rows of w, read from src through perm (both null: w in place);
/// next: signs to multiply in (d of them) or null
void hadamard_rows(
        float* w,
        size_t d,
        const float* src,
        const uint32_t* perm,
        const float* next) {
    size_t off = 0;
    for (size_t bit = size_t(1) << 62; bit > 0; bit >>= 1) {
        if (d & bit) {
            Finish fin{
                    _mm256_set1_ps((float)(1.0 / std::sqrt((double)bit))),
                    next ? next + off : nullptr};
            RowSource in{src, perm ? perm + off : nullptr};
            fwht_rows(w + off * kLanes, bit, in, fin);
            off += bit;
        }
    }
}

} // namespace

void hadamard8_avx2(
        const HadamardRounds& h,
        const float* x,
        size_t ldx,
        float* y,
        size_t ldy,
        float* work) {
    const size_t d = h.d;
    float* a = work;
    float* b = work + d * kLanes;
    interleave_signed(x, ldx, d, h.signs, a);
    for (int r = 0; r < h.nrounds; r++) { // b = H (a permuted)
        hadamard_rows(
                b,
                d,
                a,
                h.perms + r * d,
                r + 1 < h.nrounds ? h.signs + (r + 1) * d : nullptr);
        std::swap(a, b);
    }
    deinterleave(a, d, y, ldy);
}

void hadamard8_transpose_avx2(
        const HadamardRounds& h,
        const float* y,
        size_t ldy,
        float* x,
        size_t ldx,
        float* work) {
    const size_t d = h.d;
    float* a = work;
    float* b = work + d * kLanes;
    interleave_signed(y, ldy, d, nullptr, a);
    for (int r = h.nrounds - 1; r >= 0; r--) {
        hadamard_rows(a, d, nullptr, nullptr, nullptr);
        scatter_rows_signed(a, h.perms + r * d, h.signs + r * d, d, b);
        std::swap(a, b);
    }
    deinterleave(a, d, x, ldx);
}

} // namespace faiss_turbo
