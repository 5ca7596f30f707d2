/**
 * AVX-512 VNNI batched kernel (tile_dots), compiled with -mavx512f
 * -mavx512bw -mavx512vl -mavx512vnni and chosen at run time (dispatch.cpp)
 * where the CPU has all four. The decoders stay AVX2's: the batched scan
 * decodes a tile once per 32 queries, so its time is in this kernel.
 *
 * vpdpbusd multiplies u8 table values by s8 queries and adds each group of
 * four products into an int32 lane, without saturation: one instruction
 * where AVX2 needs maddubs + madd + add, and the same exact integer sums
 * (int8_kernels.h), so every kernel set returns the same results.
 * Everything here has internal linkage but the kernel itself (see
 * int8_kernels_avx2.cpp for why).
 */
#include <immintrin.h>

#include <faiss_turbo/impl/simd/int8_kernels.h>

namespace faiss_turbo {

namespace {

/// acc + the sums of four products u8 (u) x s8 (q) per int32 lane. In
/// assembly: GCC 12 compiles the intrinsic on a copy of each accumulator,
/// which doubled the kernel's instructions and spilled its rows
__m512i dpbusd(__m512i acc, __m512i u, __m512i q) {
    __asm__("vpdpbusd %2, %1, %0" : "+v"(acc) : "v"(u), "vm"(q));
    return acc;
}

/// the sums of a[0..3] (missing ones zero) in the four lanes: pairs are
/// interleaved and added, then pairs of pairs, then the 128-bit lanes
__m128i hsum4(const __m512i* a, int na) {
    const __m512i z = _mm512_setzero_si512();
    __m512i r0 = a[0], r1 = na > 1 ? a[1] : z;
    __m512i r2 = na > 2 ? a[2] : z, r3 = na > 3 ? a[3] : z;
    __m512i x = _mm512_add_epi32(
            _mm512_unpacklo_epi32(r0, r1), _mm512_unpackhi_epi32(r0, r1));
    __m512i y = _mm512_add_epi32(
            _mm512_unpacklo_epi32(r2, r3), _mm512_unpackhi_epi32(r2, r3));
    // each 128-bit lane: partial sums of a[0], a[1], a[2], a[3]
    __m512i s = _mm512_add_epi32(
            _mm512_unpacklo_epi64(x, y), _mm512_unpackhi_epi64(x, y));
    __m256i h = _mm256_add_epi32(
            _mm512_castsi512_si256(s), _mm512_extracti64x4_epi64(s, 1));
    return _mm_add_epi32(
            _mm256_castsi256_si128(h), _mm256_extracti128_si256(h, 1));
}

/// NC tile rows x NQ queries, all segments; out at (query 0, row 0), n
/// rows per query in out
template <int NC, int NQ>
void micro_tile(
        const Int8Layout& L,
        const uint8_t* tile,
        const int8_t* q8,
        size_t n,
        int32_t* out) {
    constexpr int NA = NC * NQ;
    const int nseg = L.nseg; // read once: out may alias L for the compiler
    for (int s = 0; s < nseg; s++) {
        const Int8Segment& sg = L.seg[s];
        __m512i acc[NA + 3]; // [q * NC + c], padded for hsum4
        for (int a = 0; a < NA; a++) {
            acc[a] = _mm512_setzero_si512();
        }
        const size_t j1 = sg.tile_offset + sg.width;
        size_t j = sg.tile_offset;
        // 64 bytes a step: NC row vectors in registers, each query vector
        // loaded once for the NC rows
        for (; j + 64 <= j1; j += 64) {
            __m512i r[NC];
            for (int c = 0; c < NC; c++) {
                r[c] = _mm512_loadu_si512(tile + c * L.row + j);
            }
            for (int q = 0; q < NQ; q++) {
                __m512i qv = _mm512_loadu_si512(q8 + q * L.row + j);
                for (int c = 0; c < NC; c++) {
                    acc[q * NC + c] = dpbusd(acc[q * NC + c], r[c], qv);
                }
            }
        }
        if (j < j1) { // an odd 32 bytes (widths are multiples of 32): the
                      // upper half of each vector is zero
            const __mmask64 half = 0xffffffffull;
            __m512i r[NC];
            for (int c = 0; c < NC; c++) {
                r[c] = _mm512_maskz_loadu_epi8(half, tile + c * L.row + j);
            }
            for (int q = 0; q < NQ; q++) {
                __m512i qv = _mm512_maskz_loadu_epi8(half, q8 + q * L.row + j);
                for (int c = 0; c < NC; c++) {
                    acc[q * NC + c] = dpbusd(acc[q * NC + c], r[c], qv);
                }
            }
        }
        for (int a0 = 0; a0 < NA; a0 += 4) {
            __m128i v = hsum4(acc + a0, NA - a0);
            if (NC == 4 && nseg == 1) { // rows 0..3 of query a0 / 4
                _mm_storeu_si128((__m128i*)(out + a0 / 4 * n), v);
                continue;
            }
            alignas(16) int32_t t[4];
            _mm_store_si128((__m128i*)t, v);
            for (int a = a0; a < a0 + 4 && a < NA; a++) {
                out[((a / NC) * n + a % NC) * nseg + s] = t[a - a0];
            }
        }
    }
}

/// micro tile: 4 rows x 4 queries = 16 accumulators, 4 rows and a query
/// in 21 of the 32 registers; its 8 loads per 16 vpdpbusd keep the
/// multiplier busy (bench_kernels "tile_dots alone": 0.32 ns per 64
/// coordinates at d = 1536 where a bare vpdpbusd loop takes 0.27; 2 x 8,
/// 8 x 2, 4 x 6 and 6 x 4 measured 1.1-2x slower)
constexpr size_t kMicroRows = 4;
constexpr size_t kMicroQueries = 4;

/// std::min would instantiate a shared inline function with this file's
/// instruction set (see the top)
size_t smaller(size_t a, size_t b) {
    return a < b ? a : b;
}

/// rows [0, nc) x queries [0, nqb), nc <= kMicroRows, nqb <= kMicroQueries:
/// full micro tiles where they fit, else a row or a query at a time
void micro_tile_any(
        const Int8Layout& L,
        const uint8_t* tile,
        size_t nc,
        const int8_t* q8,
        size_t nqb,
        size_t n,
        int32_t* out) {
    constexpr int RC = kMicroRows, RQ = kMicroQueries;
    if (nc == RC && nqb == RQ) {
        micro_tile<RC, RQ>(L, tile, q8, n, out);
    } else if (nqb == RQ) {
        for (size_t c = 0; c < nc; c++) {
            micro_tile<1, RQ>(L, tile + c * L.row, q8, n, out + c * L.nseg);
        }
    } else if (nc == RC) {
        for (size_t q = 0; q < nqb; q++) {
            micro_tile<RC, 1>(L, tile, q8 + q * L.row, n, out + q * n * L.nseg);
        }
    } else {
        for (size_t q = 0; q < nqb; q++) {
            for (size_t c = 0; c < nc; c++) {
                micro_tile<1, 1>(
                        L,
                        tile + c * L.row,
                        q8 + q * L.row,
                        n,
                        out + (q * n + c) * L.nseg);
            }
        }
    }
}

} // namespace

void tile_dots_avx512vnni(
        const Int8Layout& L,
        const uint8_t* tile,
        size_t n,
        const int8_t* q8,
        size_t nq,
        int32_t* out) {
    // query groups outside: the group stays in L1 while the tile streams
    for (size_t q0 = 0; q0 < nq; q0 += kMicroQueries) {
        const size_t nqb = smaller(kMicroQueries, nq - q0);
        for (size_t i0 = 0; i0 < n; i0 += kMicroRows) {
            micro_tile_any(
                    L,
                    tile + i0 * L.row,
                    smaller(kMicroRows, n - i0),
                    q8 + q0 * L.row,
                    nqb,
                    n,
                    out + (q0 * n + i0) * L.nseg);
        }
    }
}

} // namespace faiss_turbo
