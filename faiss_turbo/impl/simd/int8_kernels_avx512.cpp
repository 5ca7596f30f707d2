/**
 * AVX-512 VNNI int8 kernels, compiled with -mavx512f -mavx512bw -mavx512vl
 * -mavx512vnni and chosen at run time (dispatch.cpp) where the CPU has all
 * four: the batched kernel (tile_dots, on tiles in panels of 16 codes)
 * and the direct one (one to four queries straight from codes of 1, 2 and
 * 4 bits). The tile decoder (before the panels) and the direct kernel of
 * the other widths stay AVX2's.
 *
 * vpdpbusd multiplies u8 table values by s8 queries and adds each group of
 * four products into an int32 lane, without saturation: one instruction
 * where AVX2 needs maddubs + madd + add, and the same exact integer sums
 * (int8_kernels.h), so every kernel set returns the same results.
 * Everything here has internal linkage but the kernels themselves (see
 * int8_kernels_avx2.cpp for why).
 */
#include <immintrin.h>

#include <algorithm>

#include <faiss_turbo/impl/simd/int8_kernels.h>

namespace faiss_turbo {

extern const Int8Kernels kInt8KernelsAVX2;

namespace {

/// acc + the sums of four products u8 (u) x s8 (q) per int32 lane. In
/// assembly: GCC 12 compiles the intrinsic on a copy of each accumulator,
/// which doubled the kernel's instructions and spilled its rows
__m512i dpbusd(__m512i acc, __m512i u, __m512i q) {
    __asm__("vpdpbusd %2, %1, %0" : "+v"(acc) : "v"(u), "vm"(q));
    return acc;
}

/// std::min would instantiate a shared inline function with this file's
/// instruction set (see the top)
size_t smaller(size_t a, size_t b) {
    return a < b ? a : b;
}

/*************************************************************
 * panels: tiles for vpdpbusd without horizontal sums
 *************************************************************/

/// codes per panel: panel p, column k holds bytes 4k..4k+3 of rows
/// 16p..16p+15, one row after the other (64 bytes). One vpdpbusd of a
/// column against a query dword broadcast to every lane gives the 16
/// codes' partial sums in 16 lanes, where the row layout needed a
/// horizontal sum per (code, query): at d = 384 that cost a quarter of
/// the kernel
constexpr size_t kPanel = kInt8PanelCodes;

size_t panels_of(size_t n) {
    return (n + kPanel - 1) / kPanel;
}

/// 16 x 16 int32: r[j] lane i <- r[i] lane j (dword pairs, then quads,
/// then 128-bit lanes)
void transpose16(__m512i* r) {
    __m512i t[16], u[16];
    for (int i = 0; i < 8; i++) {
        t[2 * i] = _mm512_unpacklo_epi32(r[2 * i], r[2 * i + 1]);
        t[2 * i + 1] = _mm512_unpackhi_epi32(r[2 * i], r[2 * i + 1]);
    }
    // u[4 i + m], 128-bit lane l: column 4 l + m of rows 4 i..4 i + 3
    for (int i = 0; i < 4; i++) {
        u[4 * i] = _mm512_unpacklo_epi64(t[4 * i], t[4 * i + 2]);
        u[4 * i + 1] = _mm512_unpackhi_epi64(t[4 * i], t[4 * i + 2]);
        u[4 * i + 2] = _mm512_unpacklo_epi64(t[4 * i + 1], t[4 * i + 3]);
        u[4 * i + 3] = _mm512_unpackhi_epi64(t[4 * i + 1], t[4 * i + 3]);
    }
    for (int m = 0; m < 4; m++) {
        __m512i wl = _mm512_shuffle_i32x4(u[m], u[4 + m], 0x44);
        __m512i wh = _mm512_shuffle_i32x4(u[m], u[4 + m], 0xee);
        __m512i xl = _mm512_shuffle_i32x4(u[8 + m], u[12 + m], 0x44);
        __m512i xh = _mm512_shuffle_i32x4(u[8 + m], u[12 + m], 0xee);
        r[m] = _mm512_shuffle_i32x4(wl, xl, 0x88);
        r[4 + m] = _mm512_shuffle_i32x4(wl, xl, 0xdd);
        r[8 + m] = _mm512_shuffle_i32x4(wh, xh, 0x88);
        r[12 + m] = _mm512_shuffle_i32x4(wh, xh, 0xdd);
    }
}

/// the 16 rows at rows (row bytes each, a multiple of 32) as a panel
void rows_to_panel(const uint8_t* rows, size_t row, uint8_t* panel) {
    for (size_t j = 0; j < row; j += 64) {
        // a last 32 bytes: upper halves zero, half the columns stored
        const bool half = j + 64 > row;
        const __mmask64 m = half ? 0xffffffffull : ~0ull;
        __m512i r[kPanel];
        for (size_t i = 0; i < kPanel; i++) {
            r[i] = _mm512_maskz_loadu_epi8(m, rows + i * row + j);
        }
        transpose16(r);
        for (size_t c = 0; c < (half ? 8 : 16); c++) {
            _mm512_storeu_si512(panel + (j / 4 + c) * 64, r[c]);
        }
    }
}

/// AVX2's decoder into the tile's second half (rows, zero padded to whole
/// panels), then the panels into its first half
void decode_tile_panels(
        const Int8Layout& L,
        const uint8_t* codes,
        size_t n,
        uint8_t* tile,
        int32_t* vsum) {
    const size_t np = panels_of(n), panel_bytes = kPanel * L.row;
    uint8_t* rows = tile + np * panel_bytes;
    kInt8KernelsAVX2.decode_tile(L, codes, n, rows, vsum);
    __builtin_memset(rows + n * L.row, 0, (np * kPanel - n) * L.row);
    for (size_t p = 0; p < np; p++) {
        rows_to_panel(rows + p * panel_bytes, L.row, tile + p * panel_bytes);
    }
}

/// NP panels (the first nvalid of their codes stored) x NQ queries, every
/// segment; out at (query 0, code c0), n codes per query
template <int NP, int NQ>
void panel_tile(
        const Int8Layout& L,
        const uint8_t* panels,
        size_t nvalid,
        const int8_t* q8,
        size_t n,
        int32_t* out) {
    const int nseg = L.nseg;
    const size_t panel_bytes = kPanel * L.row;
    for (int s = 0; s < nseg; s++) {
        const Int8Segment& sg = L.seg[s];
        __m512i acc[NQ][NP];
        for (int q = 0; q < NQ; q++) {
            for (int p = 0; p < NP; p++) {
                acc[q][p] = _mm512_setzero_si512();
            }
        }
        const size_t k1 = (sg.tile_offset + sg.width) / 4;
        for (size_t k = sg.tile_offset / 4; k < k1; k++) {
            __m512i a[NP];
            for (int p = 0; p < NP; p++) {
                a[p] = _mm512_loadu_si512(panels + p * panel_bytes + k * 64);
            }
            for (int q = 0; q < NQ; q++) {
                int32_t w;
                __builtin_memcpy(&w, q8 + q * L.row + 4 * k, 4);
                const __m512i b = _mm512_set1_epi32(w);
                for (int p = 0; p < NP; p++) {
                    acc[q][p] = dpbusd(acc[q][p], a[p], b);
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
                int32_t* o = out + (q * n + c0) * nseg + s;
                if (nseg == 1) {
                    _mm512_mask_storeu_epi32(o, m, acc[q][p]);
                    continue;
                }
                alignas(64) int32_t t[kPanel];
                _mm512_store_si512(t, acc[q][p]);
                for (size_t i = 0; i < nc; i++) {
                    o[i * nseg] = t[i];
                }
            }
        }
    }
}

/// queries per pass over a pair of panels: 16 accumulators, 2 panel
/// columns and a broadcast in registers. bench_kernels "tile_dots alone"
/// (32 codes x 32 queries): 0.29 ns per 64 coordinates at d = 384 and
/// 1536, where a bare vpdpbusd loop takes 0.27 and the row tiles' 4 x 4
/// micro tiles with horizontal sums took 0.42 and 0.32; 12 queries a
/// pass measured no faster
constexpr int kPanelQueries = 8;

template <int NP>
void panel_tile_any(
        const Int8Layout& L,
        const uint8_t* panels,
        size_t nvalid,
        const int8_t* q8,
        size_t nqb,
        size_t n,
        int32_t* out) {
    switch (nqb) {
        case 1:
            return panel_tile<NP, 1>(L, panels, nvalid, q8, n, out);
        case 2:
            return panel_tile<NP, 2>(L, panels, nvalid, q8, n, out);
        case 3:
            return panel_tile<NP, 3>(L, panels, nvalid, q8, n, out);
        case 4:
            return panel_tile<NP, 4>(L, panels, nvalid, q8, n, out);
        case 5:
            return panel_tile<NP, 5>(L, panels, nvalid, q8, n, out);
        case 6:
            return panel_tile<NP, 6>(L, panels, nvalid, q8, n, out);
        case 7:
            return panel_tile<NP, 7>(L, panels, nvalid, q8, n, out);
        default:
            return panel_tile<NP, 8>(L, panels, nvalid, q8, n, out);
    }
}

/*************************************************************
 * straight from the codes
 *************************************************************/

/// a code's 32-byte chunk of B-bit indices in both halves, shifted apart so
/// that sub-vectors k (low half) and k + 1 (high half) come out together,
/// in the order of the query's 64 bytes there (int8_kernels.h)
template <int B> __m512i pair_indices(const uint8_t* p, int k) {
    const __m512i x =
            _mm512_broadcast_i64x4(_mm256_loadu_si256((const __m256i*)p));
    const __m512i shift = _mm512_inserti64x4(
            _mm512_set1_epi16((short)(k * B)),
            _mm256_set1_epi16((short)((k + 1) * B)),
            1);
    return _mm512_and_si512(
            _mm512_srlv_epi16(x, shift), _mm512_set1_epi8((1 << B) - 1));
}

/// out[j] (j < 4 / B), each 128-bit lane: entry n = table[(n >> jB) & (2^B
/// - 1)], the value of the index in bits jB.. of nibble n
template <int B> void nibble_tables(const uint8_t* table, __m512i* out) {
    static_assert(B == 1 || B == 2 || B == 4, "interleaved widths");
    for (int j = 0; j < 4 / B; j++) {
        alignas(16) uint8_t t[16];
        for (int n = 0; n < 16; n++) {
            t[n] = table[(n >> (j * B)) & ((1 << B) - 1)];
        }
        out[j] = _mm512_broadcast_i32x4(_mm_load_si128((const __m128i*)t));
    }
}

/// bytes of the last chunk's sub-vectors k (low half) and k + 1 (high
/// half) that hold coordinates (rem of the chunk's): the others index
/// padding bits, whose V values must not count
__mmask64 pair_tail(size_t rem, int per, int k) {
    auto count = [&](int kk) -> uint64_t {
        long c = (long)rem > kk ? ((long)rem - kk + per - 1) / per : 0;
        return c >= 32 ? 32 : (uint64_t)c;
    };
    auto first = [](uint64_t c) -> uint64_t {
        return c >= 32 ? 0xffffffffull : (1ull << c) - 1;
    };
    return first(count(k)) | first(count(k + 1)) << 32;
}

/// the direct kernels' arguments for one segment: code i's sums at
/// u[q * stride + i * nseg] (query q) and v[i * nseg]; codes i < npf ask
/// for the code kFarPrefetchBytes ahead (prefetch_far)
struct DirectRun {
    const Int8Layout& L;
    const uint8_t* codes;
    size_t n;
    const int8_t* q8;
    int32_t* u;
    int32_t* v;
    size_t npf;
};

/// How far ahead of the code it scores a run of codes asks for them, into
/// L2. One query's scan of 100k x 1536 codes from DRAM on the Zen 4
/// machine, against the hardware's prefetchers alone: 1.22-1.27x faster at
/// 4 bits and 1.18-1.21x at 2 bits (32.5 vs 40-42 ns a code at 4 bits;
/// 16-64 KB ahead measured alike); level with 2 threads and in an IVF scan
/// (nprobe 16 of 256 lists); 1.02x slower with the codes in L3. Into L1
/// and 1-16 KB ahead it had been slower than none (AVX2's kernel: see
/// prefetch_ahead there)
constexpr size_t kFarPrefetchBytes = 32768;

/// how many of n codes of cs bytes, followed by ahead bytes that the
/// caller scans next, have a whole code kFarPrefetchBytes past them:
/// those ask for it (prefetch_far), so that no request leaves the array
/// (an IVF list's end: the next list is elsewhere)
size_t far_prefetches(size_t n, size_t cs, size_t ahead) {
    const size_t end = n * cs + ahead; // bytes from the first code
    if (end < kFarPrefetchBytes + cs) {
        return 0;
    }
    return std::min(n, (end - kFarPrefetchBytes - cs) / cs + 1);
}

/// the cs bytes of a code kFarPrefetchBytes past code, into L2
void prefetch_far(const uint8_t* code, size_t cs) {
    const char* a = (const char*)code + kFarPrefetchBytes;
    for (size_t b = 0; b < cs; b += 64) {
        _mm_prefetch(a + b, _MM_HINT_T1);
    }
}

/// bytes of a segment's queries that direct_segment reorders on the stack
/// (4 queries); wider segments take the chunk-at-a-time loop
constexpr size_t kPairedQueryBytes = 16384;

/// the queries of segment s in the order of chunk pairs: for chunks c and
/// c + 1 (c even), sub-vector k of both (32 bytes each) side by side, as a
/// 64-byte load of the two chunks' codes shifted by k B bits yields them;
/// an odd last chunk stays as it is. out: nq * s.width bytes
void pair_queries(
        const Int8Segment& s,
        int per,
        const int8_t* q8,
        size_t row,
        size_t nq,
        int8_t* out) {
    const size_t chunk = 32 * per, nchunks = s.width / chunk;
    for (size_t q = 0; q < nq; q++) {
        const int8_t* src = q8 + q * row + s.tile_offset;
        int8_t* dst = out + q * s.width;
        for (size_t c = 0; c < nchunks; c++) {
            const size_t h = c % 2, base = (c - h) * chunk;
            const bool paired = c - h + 1 < nchunks;
            for (int k = 0; k < per; k++) {
                const size_t to =
                        paired ? base + k * 64 + h * 32 : c * chunk + k * 32;
                __m256i v = _mm256_loadu_si256(
                        (const __m256i*)(src + c * chunk + k * 32));
                _mm256_storeu_si256((__m256i*)(dst + to), v);
            }
        }
    }
}

/// one interleaved segment of every code against NQ queries: 64 table
/// values per vpshufb (the 16-entry table in each 128-bit lane), one
/// vpdpbusd per query. Two chunks of codes a step when the queries are
/// paired (qp: pair_queries), else one chunk in both halves of a vector.
/// The first segment's pass asks for the codes kFarPrefetchBytes ahead
/// (r.npf): see there
template <int B, int NQ, bool WANT_V>
void direct_segment(
        const Int8Segment& s, const DirectRun& r, const int8_t* qp) {
    constexpr int per = 8 / B;
    // independent chains of vpdpbusd per query: one chain of 4-5 cycle
    // latencies bounded a lone query's scan
    constexpr int CH = NQ == 1 ? 4 : NQ == 2 ? 2 : 1;
    constexpr int kPairsPerStep = CH > per ? CH / per : 1;
    const __m512i T =
            _mm512_broadcast_i32x4(_mm_loadu_si128((const __m128i*)s.u));
    const __m512i V =
            _mm512_broadcast_i32x4(_mm_loadu_si128((const __m128i*)s.v));
    // J = 4 / B indices per nibble: table j decodes the one in bits jB..
    // of a nibble, so a byte's indices cost one mask (low nibble) or one
    // shift and mask (high) for all of them, not one each (nibble_tables)
    constexpr int J = 4 / B;
    __m512i TN[J], VN[J];
    nibble_tables<B>(s.u, TN);
    nibble_tables<B>(s.v, VN);
    const __m512i zero = _mm512_setzero_si512();
    const __m512i low4 = _mm512_set1_epi8(0x0f);
    const size_t row = qp ? s.width : r.L.row;
    const int8_t* qs = qp ? qp : r.q8 + s.tile_offset;
    const size_t nseg = r.L.nseg, cs = r.L.code_size;
    const size_t stride = r.n * nseg;
    const size_t chunk = 32 * per, nchunks = s.width / chunk;
    const size_t npairs = qp ? nchunks / 2 : 0;
    for (size_t i = 0; i < r.n; i++) {
        const uint8_t* code = r.codes + i * cs;
        const uint8_t* p = code + (s.bit_offset >> 3);
        if (i < r.npf) {
            prefetch_far(code, cs);
        }
        __m512i acc[NQ][CH], vacc = zero;
        for (int q = 0; q < NQ; q++) {
            for (int h = 0; h < CH; h++) {
                acc[q][h] = zero;
            }
        }
        auto score = [&](__m512i Tu,
                         __m512i Tv,
                         __m512i idx,
                         const int8_t* qv,
                         __mmask64 keep_v,
                         int h) {
            __m512i u = _mm512_shuffle_epi8(Tu, idx);
            for (int q = 0; q < NQ; q++) {
                acc[q][h] =
                        dpbusd(acc[q][h], u, _mm512_loadu_si512(qv + q * row));
            }
            if (WANT_V) {
                __m512i vv = _mm512_maskz_shuffle_epi8(keep_v, Tv, idx);
                vacc = _mm512_add_epi64(vacc, _mm512_sad_epu8(vv, zero));
            }
        };
        // chunk pair c2: per steps, on chains (first + k) % CH
        auto pair = [&](size_t c2, int first) {
            const __m512i x = _mm512_loadu_si512(p + c2 * 64);
            const __m512i nib[2] = {
                    _mm512_and_si512(x, low4),
                    _mm512_and_si512(_mm512_srli_epi16(x, 4), low4)};
            const bool last = 2 * c2 + 2 == nchunks;
            for (int k = 0; k < per; k++) {
                // index k of each byte: index k % J of nibble k / J
                const __m512i idx = nib[k / J];
                __mmask64 keep = ~0ull;
                if (WANT_V && last) { // the second chunk holds the end:
                    // sub-vector k of it in the upper half (pair_tail's
                    // lower half, moved up; its upper half drops out)
                    const size_t rem = s.ncoords - (2 * c2 + 1) * chunk;
                    keep = 0xffffffffull | pair_tail(rem, per, k) << 32;
                }
                score(TN[k % J],
                      VN[k % J],
                      idx,
                      qs + c2 * 2 * chunk + k * 64,
                      keep,
                      (first + k) % CH);
            }
        };
        size_t c2 = 0;
        for (; c2 + kPairsPerStep <= npairs; c2 += kPairsPerStep) {
            for (int j = 0; j < kPairsPerStep; j++) {
                pair(c2 + j, j * per);
            }
        }
        for (; c2 < npairs; c2++) {
            pair(c2, 0);
        }
        for (size_t c = 2 * npairs; c < nchunks; c++) {
            for (int k = 0; k < per; k += 2) {
                __mmask64 keep =
                        c + 1 == nchunks
                                ? pair_tail(s.ncoords - c * chunk, per, k)
                                : ~0ull;
                score(T,
                      V,
                      pair_indices<B>(p + c * 32, k),
                      qs + c * chunk + k * 32,
                      keep,
                      (k / 2) % CH);
            }
        }
        for (int q = 0; q < NQ; q++) {
            __m512i t = acc[q][0];
            for (int h = 1; h < CH; h++) {
                t = _mm512_add_epi32(t, acc[q][h]);
            }
            r.u[q * stride + i * nseg] = _mm512_reduce_add_epi32(t);
        }
        if (WANT_V) {
            r.v[i * nseg] = (int32_t)_mm512_reduce_add_epi64(vacc);
        }
    }
}

template <int NQ, bool WANT_V>
void direct_codes(
        const Int8Layout& L,
        const uint8_t* codes,
        size_t n,
        const int8_t* q8,
        int32_t* out,
        int32_t* vsum,
        size_t ahead) {
    alignas(64) int8_t paired[kPairedQueryBytes];
    const size_t npf = far_prefetches(n, L.code_size, ahead);
    for (int s = 0; s < L.nseg; s++) {
        const Int8Segment& sg = L.seg[s];
        // the first segment's pass asks for the codes ahead
        const DirectRun r{
                L,
                codes,
                n,
                q8,
                out + s,
                WANT_V ? vsum + s : nullptr,
                s == 0 ? npf : 0};
        // one code alone (the pre-scan's second pass) takes the queries
        // as they are: pairing them cost it more than its half-filled
        // vectors do
        const int8_t* qp = nullptr;
        if (n > 1 && NQ * sg.width <= kPairedQueryBytes) {
            pair_queries(sg, 8 / sg.nbits, q8, L.row, NQ, paired);
            qp = paired;
        }
        if (sg.nbits == 4) {
            direct_segment<4, NQ, WANT_V>(sg, r, qp);
        } else if (sg.nbits == 2) {
            direct_segment<2, NQ, WANT_V>(sg, r, qp);
        } else {
            direct_segment<1, NQ, WANT_V>(sg, r, qp);
        }
    }
}

template <int NQ>
void direct_codes_v(
        const Int8Layout& L,
        const uint8_t* codes,
        size_t n,
        const int8_t* q8,
        int32_t* out,
        int32_t* vsum,
        size_t ahead) {
    if (L.want_v) {
        direct_codes<NQ, true>(L, codes, n, q8, out, vsum, ahead);
    } else {
        direct_codes<NQ, false>(L, codes, n, q8, out, vsum, ahead);
    }
}

/// the segments the direct kernel reads (1, 2 and 4 bits on a byte); the
/// others (3, 5-8 bits, fractional parts off a byte) take AVX2's
bool direct_applies(const Int8Layout& L) {
    for (int s = 0; s < L.nseg; s++) {
        if (!L.seg[s].interleaved) {
            return false;
        }
    }
    return true;
}

} // namespace

void direct_dots_avx512vnni(
        const Int8Layout& L,
        const uint8_t* codes,
        size_t n,
        const int8_t* q8,
        size_t nq,
        int32_t* out,
        int32_t* vsum,
        size_t ahead) {
    if (!direct_applies(L)) { // AVX2's kernel decodes natural segments
        kInt8KernelsAVX2.direct_dots(L, codes, n, q8, nq, out, vsum, ahead);
        return;
    }
    switch (nq) {
        case 1:
            direct_codes_v<1>(L, codes, n, q8, out, vsum, ahead);
            break;
        case 2:
            direct_codes_v<2>(L, codes, n, q8, out, vsum, ahead);
            break;
        case 3:
            direct_codes_v<3>(L, codes, n, q8, out, vsum, ahead);
            break;
        default:
            direct_codes_v<4>(L, codes, n, q8, out, vsum, ahead);
    }
}

void decode_tile_avx512vnni(
        const Int8Layout& L,
        const uint8_t* codes,
        size_t n,
        uint8_t* tile,
        int32_t* vsum) {
    decode_tile_panels(L, codes, n, tile, vsum);
}

void tile_dots_avx512vnni(
        const Int8Layout& L,
        const uint8_t* tile,
        size_t n,
        const int8_t* q8,
        size_t nq,
        int32_t* out) {
    // query groups outside: the group stays in L1 while the panels stream
    const size_t panel_bytes = kPanel * L.row;
    for (size_t q0 = 0; q0 < nq; q0 += kPanelQueries) {
        const size_t nqb = smaller(kPanelQueries, nq - q0);
        for (size_t c0 = 0; c0 < n; c0 += 2 * kPanel) {
            const uint8_t* panels = tile + c0 / kPanel * panel_bytes;
            const size_t nvalid = n - c0;
            int32_t* o = out + (q0 * n + c0) * L.nseg;
            if (nvalid > kPanel) {
                panel_tile_any<2>(
                        L, panels, nvalid, q8 + q0 * L.row, nqb, n, o);
            } else {
                panel_tile_any<1>(
                        L, panels, nvalid, q8 + q0 * L.row, nqb, n, o);
            }
        }
    }
}

} // namespace faiss_turbo
