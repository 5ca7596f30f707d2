/**
 * AVX-512 fast-scan kernel (block_sums), compiled with -mavx512f
 * -mavx512bw and chosen at run time (dispatch.cpp) where the CPU has them;
 * unpack_code stays AVX2's.
 *
 * The AVX2 kernel's scheme on two groups per 512-bit vector: one load of
 * 64 code bytes and two nibble masks, then per query one load of the two
 * groups' tables (64 bytes, each 128-bit lane a slot's 16 entries) and two
 * vpshufb of 64 lookups each. The 8-bit lookups accumulate in 16-bit lanes
 * (a += r counts even bytes plus 256 x odd bytes, b += r >> 8 odd bytes,
 * so even = a - (b << 8) modulo 2^16); each 128-bit lane takes one slot a
 * step, so the sums move to 32-bit lanes every kFlushSteps steps (256 x
 * 255 < 2^16), and the four lanes (slots) are added there. The same exact
 * integer sums as every kernel set.
 */
#include <faiss_turbo/impl/simd/lut_kernels.h>

#include <immintrin.h>

namespace faiss_turbo {

namespace {

/// steps of two groups between moves to 32-bit lanes
constexpr size_t kFlushSteps = 256;

/// as the AVX2 kernel (see there): codes prefetched this far ahead of the
/// loads, into L2
constexpr size_t kPrefetchBytes = 32768;

/// the 16-bit sums (a, b as above) of 16 codes in each of the four lanes,
/// added over the lanes to the 32-bit sums of codes 0-7 (lo8) and 8-15
/// (hi8)
void flush(__m512i a, __m512i b, __m256i& lo8, __m256i& hi8) {
    __m512i even = _mm512_sub_epi16(a, _mm512_slli_epi16(b, 8));
    __m512i t[2] = {
            _mm512_unpacklo_epi16(even, b),  // codes 0-7, each lane
            _mm512_unpackhi_epi16(even, b)}; // codes 8-15
    __m256i* dst[2] = {&lo8, &hi8};
    for (int h = 0; h < 2; h++) {
        __m512i s = _mm512_add_epi32( // lanes 0 + 2, 1 + 3
                _mm512_cvtepu16_epi32(_mm512_castsi512_si256(t[h])),
                _mm512_cvtepu16_epi32(_mm512_extracti64x4_epi64(t[h], 1)));
        *dst[h] = _mm256_add_epi32(
                *dst[h],
                _mm256_add_epi32(
                        _mm512_castsi512_si256(s),
                        _mm512_extracti64x4_epi64(s, 1)));
    }
}

/// one block against NQ tables
template <int NQ>
void block_nq(
        const uint8_t* blk,
        size_t ngroups,
        const uint8_t* luts,
        size_t lut_bytes,
        uint32_t* out) {
    const __m512i m4 = _mm512_set1_epi8(0x0f);
    __m256i tot[NQ][4];
    for (int q = 0; q < NQ; q++) {
        for (int j = 0; j < 4; j++) {
            tot[q][j] = _mm256_setzero_si256();
        }
    }
    const size_t flush_groups = 2 * kFlushSteps;
    for (size_t g0 = 0; g0 < ngroups; g0 += flush_groups) {
        const size_t g1 =
                ngroups < g0 + flush_groups ? ngroups : g0 + flush_groups;
        __m512i a0[NQ], b0[NQ], a1[NQ], b1[NQ];
        for (int q = 0; q < NQ; q++) {
            a0[q] = b0[q] = a1[q] = b1[q] = _mm512_setzero_si512();
        }
        // two groups a step; an odd last group with a zero upper half
        // (zero tables look up zeros)
        for (size_t g = g0; g < g1; g += 2) {
            const uint8_t* src = blk + g * kLutGroupBytes;
            const __mmask64 m = g + 2 <= g1 ? ~0ull : 0xffffffffull;
            _mm_prefetch(
                    (const char*)((uintptr_t)src + kPrefetchBytes),
                    _MM_HINT_T1);
            __m512i v = _mm512_maskz_loadu_epi8(m, src);
            __m512i lo = _mm512_and_si512(v, m4);
            __m512i hi = _mm512_and_si512(_mm512_srli_epi16(v, 4), m4);
            for (int q = 0; q < NQ; q++) {
                __m512i t = _mm512_maskz_loadu_epi8(
                        m, luts + q * lut_bytes + g * kLutGroupBytes);
                __m512i r0 = _mm512_shuffle_epi8(t, lo);
                __m512i r1 = _mm512_shuffle_epi8(t, hi);
                a0[q] = _mm512_add_epi16(a0[q], r0);
                b0[q] = _mm512_add_epi16(b0[q], _mm512_srli_epi16(r0, 8));
                a1[q] = _mm512_add_epi16(a1[q], r1);
                b1[q] = _mm512_add_epi16(b1[q], _mm512_srli_epi16(r1, 8));
            }
        }
        for (int q = 0; q < NQ; q++) {
            flush(a0[q], b0[q], tot[q][0], tot[q][1]);
            flush(a1[q], b1[q], tot[q][2], tot[q][3]);
        }
    }
    for (int q = 0; q < NQ; q++) {
        for (int j = 0; j < 4; j++) {
            _mm256_storeu_si256(
                    (__m256i*)(out + q * kLutBlockCodes + 8 * j), tot[q][j]);
        }
    }
}

} // namespace

void block_sums_avx512(
        const uint8_t* blocks,
        size_t ngroups,
        size_t nblocks,
        const uint8_t* luts,
        size_t nq,
        uint32_t* out) {
    lut_block_sums_by_pairs(
            blocks, ngroups, nblocks, luts, nq, out, block_nq<2>, block_nq<1>);
}

} // namespace faiss_turbo
