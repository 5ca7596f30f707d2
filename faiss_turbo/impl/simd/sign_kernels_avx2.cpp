/**
 * AVX2 sign pre-scan kernels, compiled with -mavx2 -mbmi2 and chosen at
 * run time (dispatch.cpp) where the CPU has both and not the AVX-512 ones.
 *
 * The tile's lanes layout (sign_kernels.h): each 128-bit lane of a column
 * half is one group of 16 codes, and the table half loaded beside it holds
 * that group's 16 entries in the same lane, so one pshufb looks up 32
 * entries. Two pmaddubsw by the u8 masks (1, 0) and (0, 1) move the even
 * and the odd codes' entries into s16 lanes, which add up to 128 columns
 * (2 x 128 x 127 < 2^15) before they go to int32. About 5 instructions per
 * 32 lookups (128 coordinates), where AVX2's int8 scan spends 2 per 32
 * coordinates. pext builds the tiles: on AMD before Zen 3 it is
 * microcoded and slow, which the batched scan amortizes over the batch.
 * Everything here has internal linkage but the kernel set (see
 * int8_kernels_avx2.cpp for why).
 */
#include <immintrin.h>

#include <cstring>

#include <faiss_turbo/impl/simd/sign_kernels.h>

namespace faiss_turbo {

namespace {

constexpr size_t kPanel = kSignPanelCodes;
constexpr size_t kCol = kSignColumnBytes;
/// columns whose s16 sums cannot overflow: 2 adds of |entry| <= 127 each
constexpr size_t kFlushColumns = 128;

void build_tile_avx2(
        const SignLayout& L, const uint8_t* codes, size_t n, uint8_t* tile) {
    const size_t np = (n + kPanel - 1) / kPanel;
    for (size_t i = 0; i < np * kPanel; i++) {
        uint8_t* col = tile + (i / kPanel) * L.ncols * kCol + i % kPanel;
        const uint8_t* code = codes + i * L.code_size;
        for (size_t w = 0; w < L.ncols; w++) {
            uint32_t nibs = i < n ? sign_column_nibbles_bmi2(L, code, w) : 0;
            for (size_t t = 0; t < 4; t++) {
                col[w * kCol + 16 * t] = (uint8_t)((nibs >> (4 * t)) & 15);
            }
        }
    }
}

/// NP panels (nvalid of their codes wanted) x NQ queries; out at (query
/// 0, the first panel's first code), n codes per query
template <int NP, int NQ>
void sign_block(
        const SignLayout& L,
        const uint8_t* panels,
        size_t nvalid,
        const int8_t* tables,
        size_t n,
        int32_t* out) {
    const size_t stride = L.ncols * kCol; // a panel, and a query's tables
    const __m256i even = _mm256_set1_epi16(0x0001); // u8 (1, 0)
    const __m256i odd = _mm256_set1_epi16(0x0100);  // u8 (0, 1)
    int32_t sums[NQ][NP][kPanel] = {};
    for (size_t w0 = 0; w0 < L.ncols; w0 += kFlushColumns) {
        const size_t w1 =
                L.ncols - w0 < kFlushColumns ? L.ncols : w0 + kFlushColumns;
        __m256i ae[NQ][NP], ao[NQ][NP];
        for (int q = 0; q < NQ; q++) {
            for (int p = 0; p < NP; p++) {
                ae[q][p] = ao[q][p] = _mm256_setzero_si256();
            }
        }
        for (size_t w = w0; w < w1; w++) {
            for (size_t h = 0; h < kCol; h += 32) {
                __m256i x[NP];
                for (int p = 0; p < NP; p++) {
                    x[p] = _mm256_loadu_si256((
                            const __m256i*)(panels + p * stride + w * kCol + h));
                }
                for (int q = 0; q < NQ; q++) {
                    const __m256i t = _mm256_loadu_si256((
                            const __m256i*)(tables + q * stride + w * kCol + h));
                    for (int p = 0; p < NP; p++) {
                        __m256i v = _mm256_shuffle_epi8(t, x[p]);
                        ae[q][p] = _mm256_add_epi16(
                                ae[q][p], _mm256_maddubs_epi16(even, v));
                        ao[q][p] = _mm256_add_epi16(
                                ao[q][p], _mm256_maddubs_epi16(odd, v));
                    }
                }
            }
        }
        // word i of lane l: code 2 i (+ 1 for ao), group of lane l
        for (int q = 0; q < NQ; q++) {
            for (int p = 0; p < NP; p++) {
                alignas(32) int16_t e[16], o[16];
                _mm256_store_si256((__m256i*)e, ae[q][p]);
                _mm256_store_si256((__m256i*)o, ao[q][p]);
                for (size_t i = 0; i < 8; i++) {
                    sums[q][p][2 * i] += e[i] + e[8 + i];
                    sums[q][p][2 * i + 1] += o[i] + o[8 + i];
                }
            }
        }
    }
    for (int p = 0; p < NP; p++) {
        for (size_t c = 0; c < kPanel && p * kPanel + c < nvalid; c++) {
            for (int q = 0; q < NQ; q++) {
                out[q * n + p * kPanel + c] = sums[q][p][c];
            }
        }
    }
}

template <int NP>
void sign_block_any(
        const SignLayout& L,
        const uint8_t* panels,
        size_t nvalid,
        const int8_t* tables,
        size_t nqb,
        size_t n,
        int32_t* out) {
    if (nqb == 1) {
        sign_block<NP, 1>(L, panels, nvalid, tables, n, out);
    } else {
        sign_block<NP, 2>(L, panels, nvalid, tables, n, out);
    }
}

/// 2 panels x 2 queries: 8 accumulators, 2 panel halves, a table half
/// and the 2 masks in AVX2's 16 registers
constexpr size_t kPassQueries = 2;

void tile_dots_avx2(
        const SignLayout& L,
        const uint8_t* tile,
        size_t n,
        const int8_t* tables,
        size_t nq,
        int32_t* out) {
    const size_t stride = L.ncols * kCol;
    const size_t np = (n + kPanel - 1) / kPanel;
    for (size_t q0 = 0; q0 < nq; q0 += kPassQueries) {
        const size_t nqb = nq - q0 < kPassQueries ? nq - q0 : kPassQueries;
        const int8_t* tq = tables + q0 * stride;
        for (size_t p0 = 0; p0 < np; p0 += 2) {
            const uint8_t* panels = tile + p0 * stride;
            const size_t c0 = p0 * kPanel, nvalid = n - c0;
            int32_t* o = out + q0 * n + c0;
            if (np - p0 >= 2) {
                sign_block_any<2>(L, panels, nvalid, tq, nqb, n, o);
            } else {
                sign_block_any<1>(L, panels, nvalid, tq, nqb, n, o);
            }
        }
    }
}

void scores_reach_avx2(
        const SignScoreForm& f,
        const int32_t* S,
        size_t n,
        float* out,
        uint64_t* reach) {
    memset(reach, 0, (n + 63) / 64 * sizeof(uint64_t));
    const __m256 qc = _mm256_set1_ps(f.qconst), c0 = _mm256_set1_ps(f.c0);
    const __m256 unit = _mm256_set1_ps(f.unit), bd = _mm256_set1_ps(f.bound);
    size_t i = 0;
    for (; i + 8 <= n; i += 8) {
        const __m256 s =
                _mm256_cvtepi32_ps(_mm256_loadu_si256((const __m256i*)(S + i)));
        const __m256 a = _mm256_add_ps(qc, _mm256_loadu_ps(f.B + i));
        const __m256 e = _mm256_add_ps(c0, _mm256_mul_ps(unit, s));
        const __m256 v =
                _mm256_add_ps(a, _mm256_mul_ps(_mm256_loadu_ps(f.AC + i), e));
        _mm256_storeu_ps(out + i, v);
        const __m256 c = f.l2 ? _mm256_cmp_ps(v, bd, _CMP_LE_OQ)
                              : _mm256_cmp_ps(v, bd, _CMP_GE_OQ);
        reach[i / 64] |= (uint64_t)_mm256_movemask_ps(c) << (i % 64);
    }
    sign_scores_reach_from(f, S, i, n, out, reach);
}

} // namespace

extern const SignKernels kSignKernelsAVX2 = {
        "avx2",
        kSignTileLanes,
        build_tile_avx2,
        tile_dots_avx2,
        scores_reach_avx2};

} // namespace faiss_turbo
