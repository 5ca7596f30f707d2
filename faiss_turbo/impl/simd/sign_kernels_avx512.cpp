/**
 * AVX-512 sign pre-scan kernels, compiled with -mavx512f -mavx512bw
 * -mavx512vbmi -mavx512vnni -mbmi2 and chosen at run time (dispatch.cpp)
 * where the CPU has them all.
 *
 * The tile: BMI2's pext gathers a column's 16 sign bits from one word of
 * the code (b <= 3, or 4 bits on a byte), else each group's 4, and pdep
 * spreads them into the column's 4 bytes. The dots: per column, one vpermb
 * (a 64-entry table: 4 groups x 16 patterns) and one vpdpbusd (ones x the
 * entries, 4 groups into each code's lane) for 16 codes x 16 coordinates.
 * On the Zen 4 machine a vpermb + vpdpbusd pair measured 0.41 ns, a bare
 * vpdpbusd 0.27: 2.5 times the int8 scan's coordinates per ns.
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

/// acc + sums of four products u8 (u) x s8 (q) per int32 lane (in
/// assembly, as int8_kernels_avx512.cpp does, for GCC 12's copies)
__m512i dpbusd(__m512i acc, __m512i u, __m512i q) {
    __asm__("vpdpbusd %2, %1, %0" : "+v"(acc) : "v"(u), "vm"(q));
    return acc;
}

/// column w of one code: byte t = (t << 4) | nibble of group 4 w + t
uint32_t column_dword(const SignLayout& L, const uint8_t* code, size_t w) {
    return _pdep_u32(sign_column_nibbles_bmi2(L, code, w), 0x0f0f0f0fu) |
           0x30201000u;
}

void build_tile_avx512(
        const SignLayout& L, const uint8_t* codes, size_t n, uint8_t* tile) {
    const size_t np = (n + kPanel - 1) / kPanel;
    for (size_t i = 0; i < np * kPanel; i++) {
        uint32_t* out =
                (uint32_t*)(tile + (i / kPanel) * L.ncols * kCol) + i % kPanel;
        const uint8_t* code = codes + i * L.code_size;
        for (size_t w = 0; w < L.ncols; w++) {
            out[w * (kCol / 4)] =
                    i < n ? column_dword(L, code, w) : 0x30201000u;
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
    const __m512i ones = _mm512_set1_epi8(1);
    __m512i acc[NQ][NP];
    for (int q = 0; q < NQ; q++) {
        for (int p = 0; p < NP; p++) {
            acc[q][p] = _mm512_setzero_si512();
        }
    }
    for (size_t w = 0; w < L.ncols; w++) {
        __m512i x[NP];
        for (int p = 0; p < NP; p++) {
            x[p] = _mm512_loadu_si512(panels + p * stride + w * kCol);
        }
        for (int q = 0; q < NQ; q++) {
            const __m512i t =
                    _mm512_loadu_si512(tables + q * stride + w * kCol);
            for (int p = 0; p < NP; p++) {
                __m512i e = _mm512_permutexvar_epi8(x[p], t);
                acc[q][p] = dpbusd(acc[q][p], ones, e);
            }
        }
    }
    for (int p = 0; p < NP; p++) {
        const size_t c0 = p * kPanel;
        if (c0 >= nvalid) {
            break;
        }
        const size_t nc = nvalid - c0 < kPanel ? nvalid - c0 : kPanel;
        const __mmask16 m = (__mmask16)((1u << nc) - 1);
        for (int q = 0; q < NQ; q++) {
            _mm512_mask_storeu_epi32(out + q * n + c0, m, acc[q][p]);
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
    switch (nqb) {
        case 1:
            return sign_block<NP, 1>(L, panels, nvalid, tables, n, out);
        case 2:
            return sign_block<NP, 2>(L, panels, nvalid, tables, n, out);
        case 3:
            return sign_block<NP, 3>(L, panels, nvalid, tables, n, out);
        default:
            return sign_block<NP, 4>(L, panels, nvalid, tables, n, out);
    }
}

/// queries per pass: their tables (4 x 6 KB at d = 1536) stay in L1 while
/// the panels stream; 4 panels x 4 queries are 16 accumulators
constexpr size_t kPassQueries = 4;
constexpr size_t kPassPanels = 4;

void tile_dots_avx512(
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
        for (size_t p0 = 0; p0 < np; p0 += kPassPanels) {
            const uint8_t* panels = tile + p0 * stride;
            const size_t c0 = p0 * kPanel, nvalid = n - c0;
            int32_t* o = out + q0 * n + c0;
            switch (np - p0 < kPassPanels ? np - p0 : kPassPanels) {
                case 1:
                    sign_block_any<1>(L, panels, nvalid, tq, nqb, n, o);
                    break;
                case 2:
                    sign_block_any<2>(L, panels, nvalid, tq, nqb, n, o);
                    break;
                case 3:
                    sign_block_any<3>(L, panels, nvalid, tq, nqb, n, o);
                    break;
                default:
                    sign_block_any<4>(L, panels, nvalid, tq, nqb, n, o);
            }
        }
    }
}

void scores_reach_avx512(
        const SignScoreForm& f,
        const int32_t* S,
        size_t n,
        float* out,
        uint64_t* reach) {
    memset(reach, 0, (n + 63) / 64 * sizeof(uint64_t));
    const __m512 qc = _mm512_set1_ps(f.qconst), c0 = _mm512_set1_ps(f.c0);
    const __m512 unit = _mm512_set1_ps(f.unit), bd = _mm512_set1_ps(f.bound);
    size_t i = 0;
    for (; i + 16 <= n; i += 16) {
        const __m512 s = _mm512_cvtepi32_ps(_mm512_loadu_si512(S + i));
        const __m512 a = _mm512_add_ps(qc, _mm512_loadu_ps(f.B + i));
        const __m512 e = _mm512_add_ps(c0, _mm512_mul_ps(unit, s));
        const __m512 v =
                _mm512_add_ps(a, _mm512_mul_ps(_mm512_loadu_ps(f.AC + i), e));
        _mm512_storeu_ps(out + i, v);
        const __mmask16 m = f.l2 ? _mm512_cmp_ps_mask(v, bd, _CMP_LE_OQ)
                                 : _mm512_cmp_ps_mask(v, bd, _CMP_GE_OQ);
        reach[i / 64] |= (uint64_t)m << (i % 64);
    }
    sign_scores_reach_from(f, S, i, n, out, reach);
}

} // namespace

extern const SignKernels kSignKernelsAVX512 = {
        "avx512vbmi",
        kSignTileDwords,
        build_tile_avx512,
        tile_dots_avx512,
        scores_reach_avx512};

} // namespace faiss_turbo
