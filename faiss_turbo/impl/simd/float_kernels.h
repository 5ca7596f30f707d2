/**
 * SIMD versions of float kernels whose operation order is fixed by the
 * codec (dot_lanes in kernels.h, fwht_inplace in coord_rules.h). They do
 * exactly the reference's roundings (each lane sums its own elements in
 * order, no fused multiply-add, butterflies a + b and a - b), so codes and
 * scores stay identical bit for bit; tests check it.
 *
 * Included by the AVX2 translation unit: no inline code here (see
 * int8_kernels.h).
 */
#pragma once

#include <cstddef>
#include <cstdint>

namespace faiss_turbo {

/// a HadamardRotation's rounds (rotation.h): nrounds x d signs and
/// permutations
struct HadamardRounds {
    size_t d;
    int nrounds;
    const float* signs;
    const uint32_t* perms;
};

/// 8 vectors through a HadamardRotation's rounds (or their transpose):
/// src + v * lds -> dst + v * ldd for v < 8; work: 2 * d * 8 floats,
/// 32-byte aligned
using Hadamard8Fn =
        void(const HadamardRounds& h,
             const float* src,
             size_t lds,
             float* dst,
             size_t ldd,
             float* work);

struct FloatKernels {
    const char* name;
    /// dot_lanes (kernels.h)
    float (*dot_lanes)(const float* a, const float* b, size_t d);
    /// out[r] = dot_lanes(m + r * d, x, d) for r < nrows (interleaved
    /// rows hide the latency of each lane's chain of additions)
    void (*dot_rows)(
            const float* m, size_t nrows, const float* x, size_t d, float* out);
    /// fwht_inplace (coord_rules.h) for p = 2^k >= 8
    void (*fwht)(float* x, size_t p);
    /// quantize_coord (coord_rules.h) of n values, nbits 1..4: the number
    /// of thresholds < v, which the binary search finds in sorted ones;
    /// with chat set, also chat[i] = centroids[idx[i]] (encode's c_hat,
    /// with no second pass over the indices)
    void (*quantize)(
            const float* v,
            size_t n,
            const float* thresholds,
            int nbits,
            uint8_t* idx,
            const float* centroids,
            float* chat);
    /// out[i * ldo + r] = dot_lanes(m + r * d, x + i * d, d) for r < nrows,
    /// i < nx: 4 rows x 2 vectors per pass over the elements (each output
    /// keeps its own lanes and tree), the trees of 8 outputs at once
    void (*dot_rows_block)(
            const float* m,
            size_t nrows,
            const float* x,
            size_t nx,
            size_t d,
            float* out,
            size_t ldo);
    /// canonical_dot (coord_rules.h): the same 32 double lanes and tree
    double (*canonical_dot)(const float* a, const float* b, size_t d);
    /// fwht then x[i] *= scale, then (signs not null) x[i] *= signs[i]:
    /// fwht_inplace's roundings, then the products
    void (*fwht_scaled)(float* x, size_t p, float scale, const float* signs);
    /// see lookup_centroids below (nbits 1, 2 or 4)
    void (*lookup_centroids)(
            const uint8_t* p,
            size_t nbytes,
            int nbits,
            const float* table,
            float* out);
    /// the rounds of h on the 8 vectors src + v * lds into dst + v * ldd
    /// (dst may be src), the same bits as one vector at a time
    Hadamard8Fn* hadamard8;
    /// their transpose (inverse), as apply_transpose one vector at a time
    Hadamard8Fn* hadamard8_transpose;
};

/// FloatKernels::hadamard8 and hadamard8_transpose of the AVX2 kernels
/// (simd/hadamard_avx2.cpp)
Hadamard8Fn hadamard8_avx2;
Hadamard8Fn hadamard8_transpose_avx2;

/// null where the build or the CPU has no AVX2
const FloatKernels* float_kernels_avx2();

/// the SIMD kernels in use (null: the scalar references), see dispatch.cpp
const FloatKernels* float_kernels_simd();

/// out[r] = dot_lanes(m + r * d, x, d) for r < nrows (same bits)
void dot_lanes_rows(
        const float* m, size_t nrows, const float* x, size_t d, float* out);

/// FloatKernels::dot_rows_block through the best kernels (same bits)
void dot_lanes_rows_block(
        const float* m,
        size_t nrows,
        const float* x,
        size_t nx,
        size_t d,
        float* out,
        size_t ldo);

/// canonical_dot (coord_rules.h) through the best kernels (same bits)
double canonical_dot_fast(const float* a, const float* b, size_t d);

/// fwht_inplace then x[i] *= scale, then (signs not null) x[i] *= signs[i],
/// through the best kernels (same bits)
void fwht_scaled_fast(
        float* x, size_t p, float scale, const float* signs = nullptr);

/// out[j] = table[index j] for the nbytes * 8 / nbits indices of nbits
/// (1, 2, 4 or 8) packed LSB-first from p on: the decode of every
/// re-scored candidate, through the best kernels of this CPU
void lookup_centroids(
        const uint8_t* p,
        size_t nbytes,
        int nbits,
        const float* table,
        float* out);

/// lookup_centroids without SIMD: the reference, and the SIMD kernels'
/// tail (compiled without AVX2 flags, so safe to call from any kernel)
void lookup_centroids_scalar(
        const uint8_t* p,
        size_t nbytes,
        int nbits,
        const float* table,
        float* out);

/// quantize_coord of n values (thresholds sorted, as Codebook::check
/// demands) through the best kernels of this CPU (same indices); with chat
/// set, chat[i] = centroids[idx[i]] too
void quantize_coords(
        const float* v,
        size_t n,
        const float* thresholds,
        int nbits,
        uint8_t* idx,
        const float* centroids = nullptr,
        float* chat = nullptr);

/// whether a kernel written for AVX-512F alone may run: the CPU has it and
/// FAISS_TURBO_SIMD does not cap the choice below it (read once)
bool simd_avx512f_usable();

} // namespace faiss_turbo
