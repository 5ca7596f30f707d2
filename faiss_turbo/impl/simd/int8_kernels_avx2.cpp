/**
 * AVX2 int8 kernels, compiled with -mavx2 and chosen at run time
 * (dispatch.cpp). Everything here has internal linkage and no inline
 * code of other headers is instantiated: the linker could otherwise keep
 * this file's AVX2 copy of a shared function for every CPU.
 *
 * Two maddubs (u8 table value x s8 query, pairs summed in s16) are added
 * in s16, then widened by madd with ones: with u <= 128 and |q| <= 63 no
 * 16-bit sum can overflow (int8_kernels.h), so the int32 sums equal the
 * scalar kernels' exactly.
 */
#include <immintrin.h>

#include <cstring>

#include <faiss_turbo/impl/simd/int8_kernels.h>

namespace faiss_turbo {

namespace {

static_assert(
        2 * (2 * (2 * kInt8Offset) * kInt8QueryMax) <= 32767,
        "two maddubs must add in s16 without overflow");

/// the int32 sums of two maddubs: u0 . q0 + u1 . q1, four products per
/// lane (u unsigned, q signed)
__m256i dot2(__m256i u0, __m256i q0, __m256i u1, __m256i q1) {
    const __m256i ones = _mm256_set1_epi16(1);
    return _mm256_madd_epi16(
            _mm256_add_epi16(
                    _mm256_maddubs_epi16(u0, q0), _mm256_maddubs_epi16(u1, q1)),
            ones);
}

int32_t hsum32(__m256i v) {
    __m128i s = _mm_add_epi32(
            _mm256_castsi256_si128(v), _mm256_extracti128_si256(v, 1));
    s = _mm_add_epi32(s, _mm_shuffle_epi32(s, 0x4e));
    s = _mm_add_epi32(s, _mm_shuffle_epi32(s, 0xb1));
    return _mm_cvtsi128_si32(s);
}

/// the four sums of a, b, c, d at once: two rounds of hadd pair up the
/// lanes of each 128-bit half, then the halves are added (integer sums:
/// the order changes no result)
__m128i hsum32x4(__m256i a, __m256i b, __m256i c, __m256i d) {
    __m256i h =
            _mm256_hadd_epi32(_mm256_hadd_epi32(a, b), _mm256_hadd_epi32(c, d));
    return _mm_add_epi32(
            _mm256_castsi256_si128(h), _mm256_extracti128_si256(h, 1));
}

/// the four lanes of v to o[0], o[stride], o[2 * stride], o[3 * stride]
void store4(__m128i v, int32_t* o, size_t stride) {
    if (stride == 1) {
        _mm_storeu_si128((__m128i*)o, v);
        return;
    }
    o[0] = _mm_cvtsi128_si32(v);
    o[stride] = _mm_extract_epi32(v, 1);
    o[2 * stride] = _mm_extract_epi32(v, 2);
    o[3 * stride] = _mm_extract_epi32(v, 3);
}

int32_t hsum64(__m256i v) {
    __m128i s = _mm_add_epi64(
            _mm256_castsi256_si128(v), _mm256_extracti128_si256(v, 1));
    s = _mm_add_epi64(s, _mm_unpackhi_epi64(s, s));
    return (int32_t)_mm_cvtsi128_si64(s);
}

/// a 16-entry table in both lanes, for pshufb
__m256i load_table(const uint8_t* t) {
    return _mm256_broadcastsi128_si256(_mm_loadu_si128((const __m128i*)t));
}

/// bytes i of sub-vector k of the last chunk whose coordinate
/// i * per + k is < rem (the others are padding)
__m256i tail_mask(size_t rem, int per, int k) {
    long cnt = (long)rem > k ? ((long)rem - k + per - 1) / per : 0;
    cnt = cnt > 32 ? 32 : cnt;
    const __m256i iota = _mm256_setr_epi64x( // bytes 0, 1, ..., 31
            0x0706050403020100,
            0x0f0e0d0c0b0a0908,
            0x1716151413121110,
            0x1f1e1d1c1b1a1918);
    return _mm256_cmpgt_epi8(_mm256_set1_epi8((char)cnt), iota);
}

/// A 16-entry table (u or v) read by nibbles: table j of J = 4 / B maps a
/// nibble to the value of its index j, so the indices of a byte cost one
/// mask (low nibble) or one shift and mask (high) for all of them. With a
/// shift and a mask per index, a one-query scan of 10k codes (d = 1536, in
/// cache) took 1.13x / 1.23x the time at 2 bits and 1.20x / 1.36x at 1 bit
/// (AVX2 / AVX-512 kernels)
template <int B> struct NibbleLut {
    static_assert(B == 1 || B == 2 || B == 4, "interleaved widths");
    static constexpr int J = 4 / B;
    __m256i t[J];

    explicit NibbleLut(const uint8_t* table) {
        for (int j = 0; j < J; j++) {
            alignas(16) uint8_t e[16];
            for (int n = 0; n < 16; n++) {
                e[n] = table[(n >> (j * B)) & ((1 << B) - 1)];
            }
            t[j] = load_table(e);
        }
    }

    /// values of index k of each byte, from nib (nibbles(x))
    __m256i operator()(const __m256i* nib, int k) const {
        return _mm256_shuffle_epi8(t[k % J], nib[k / J]);
    }
};

/// the low and high nibbles of each byte of x
void nibbles(__m256i x, __m256i* nib) {
    const __m256i low4 = _mm256_set1_epi8(0x0f);
    nib[0] = _mm256_and_si256(x, low4);
    nib[1] = _mm256_and_si256(_mm256_srli_epi16(x, 4), low4);
}

/*************************************************************
 * decode to a tile
 *************************************************************/

template <int B>
int32_t decode_interleaved(
        const Int8Segment& s, const uint8_t* code, uint8_t* row, bool want_v) {
    constexpr int per = 8 / B;
    const NibbleLut<B> T(s.u), V(s.v);
    const __m256i zero = _mm256_setzero_si256();
    const uint8_t* p = code + (s.bit_offset >> 3);
    const size_t chunk = 32 * per, nchunks = s.width / chunk;
    __m256i vacc = zero;
    for (size_t c = 0; c < nchunks; c++) {
        __m256i nib[2];
        nibbles(_mm256_loadu_si256((const __m256i*)(p + c * 32)), nib);
        for (int k = 0; k < per; k++) {
            _mm256_storeu_si256(
                    (__m256i*)(row + c * chunk + k * 32), T(nib, k));
            if (want_v) {
                __m256i vv = V(nib, k);
                if (c + 1 == nchunks) {
                    vv = _mm256_and_si256(
                            vv, tail_mask(s.ncoords - c * chunk, per, k));
                }
                vacc = _mm256_add_epi64(vacc, _mm256_sad_epu8(vv, zero));
            }
        }
    }
    return hsum64(vacc);
}

/// a bit width as a type, for by_width (local: no code of other headers'
/// templates is instantiated here)
template <int B> struct Width { static constexpr int value = B; };

/// f(Width<nbits>()) for nbits in 1..8: one instance of a kernel per width
template <typename F> auto by_width(int nbits, F&& f) {
    switch (nbits) {
        case 1:
            return f(Width<1>());
        case 2:
            return f(Width<2>());
        case 3:
            return f(Width<3>());
        case 4:
            return f(Width<4>());
        case 5:
            return f(Width<5>());
        case 6:
            return f(Width<6>());
        case 7:
            return f(Width<7>());
        default:
            return f(Width<8>());
    }
}

/// a table of 2^B bytes indexed by 32 indices at once: pshufb takes 16
/// entries, so wider tables are pieces of 16 selected by the index's high
/// bits (B > 4: 5- to 8-bit codes)
template <int B> struct Lut {
    static constexpr int kPieces = B > 4 ? 1 << (B - 4) : 1;
    __m256i t[kPieces];

    explicit Lut(const uint8_t* tab) {
        for (int h = 0; h < kPieces; h++) {
            t[h] = load_table(tab + 16 * h);
        }
    }

    __m256i operator()(__m256i idx) const {
        if (B <= 4) {
            return _mm256_shuffle_epi8(t[0], idx);
        }
        const __m256i nib = _mm256_set1_epi8(15);
        __m256i lo = _mm256_and_si256(idx, nib);
        __m256i hi = _mm256_and_si256(_mm256_srli_epi16(idx, 4), nib);
        __m256i r = _mm256_setzero_si256();
        for (int h = 0; h < kPieces; h++) {
            __m256i sel = _mm256_cmpeq_epi8(hi, _mm256_set1_epi8((char)h));
            r = _mm256_or_si256(
                    r, _mm256_and_si256(_mm256_shuffle_epi8(t[h], lo), sel));
        }
        return r;
    }
};

/// the per-lane constants of natural_indices32 for segment s (the bit
/// offset within a byte is the same at every step: 32 B bits). Lane h of
/// 128 bits gets indices 16 h .. 16 h + 15 in order: 16-bit lane t of the
/// "even" pass holds index 16 h + 2 t in its low byte, the "odd" pass index
/// 16 h + 2 t + 1 in its high byte, so one OR gives the bytes in order (no
/// pack, no cross-lane permute). Each pass picks the index's 16-bit window
/// (pshufb), moves its B bits to the top by a per-lane multiply, then down.
struct NaturalPattern {
    __m256i even_ctl, even_mul, odd_ctl, odd_mul;
    int shift; ///< bit offset in the first byte (the 8-bit decoder's)

    explicit NaturalPattern(const Int8Segment& s) {
        alignas(32) uint8_t c[2][32];
        alignas(32) uint16_t m[2][16];
        const int b = s.nbits;
        shift = s.bit_offset & 7;
        for (int h = 0; h < 2; h++) {
            for (int t = 0; t < 8; t++) {
                for (int odd = 0; odd < 2; odd++) {
                    // bit of the index from lane h's first loaded byte
                    int i = 16 * h + 2 * t + odd;
                    int pos = shift + b * (i - (broadcast(b) ? 0 : 16 * h));
                    int k = 8 * h + t;
                    c[odd][2 * k] = (uint8_t)(pos >> 3);
                    c[odd][2 * k + 1] = (uint8_t)((pos >> 3) + 1);
                    m[odd][k] = (uint16_t)(1u << (16 - b - (pos & 7)));
                }
            }
        }
        even_ctl = _mm256_load_si256((const __m256i*)c[0]);
        odd_ctl = _mm256_load_si256((const __m256i*)c[1]);
        even_mul = _mm256_load_si256((const __m256i*)m[0]);
        odd_mul = _mm256_load_si256((const __m256i*)m[1]);
    }

    /// 32 indices of b bits (+ 7 bits of offset) fit in one 16-byte load,
    /// which both lanes share; wider ones load 16 bytes a lane
    static constexpr bool broadcast(int b) {
        return 32 * b + 7 <= 128;
    }
};

/// one NaturalPattern per segment of a layout (unused past nseg)
struct NaturalPatterns {
    NaturalPattern p[kInt8MaxSegments];

    explicit NaturalPatterns(const Int8Layout& L)
        : p{NaturalPattern(L.seg[0]),
            NaturalPattern(L.seg[1]),
            NaturalPattern(L.seg[2])} {}

    const NaturalPattern& operator[](int s) const {
        return p[s];
    }
};

/// 32 bytes at bit offset shift from p on (8-bit indices): each byte is
/// the low bits of one byte and the high bits of the next; reads 33 bytes
__m256i byte_indices32(const uint8_t* p, int shift) {
    const __m128i lo_n = _mm_cvtsi32_si128(shift);
    const __m128i hi_n = _mm_cvtsi32_si128(8 - shift);
    __m256i lo = _mm256_loadu_si256((const __m256i*)p);
    __m256i hi = _mm256_loadu_si256((const __m256i*)(p + 1));
    // 16-bit shifts, then the bits that crossed into a byte masked away
    lo = _mm256_and_si256(
            _mm256_srl_epi16(lo, lo_n),
            _mm256_set1_epi8((char)(0xff >> shift)));
    hi = _mm256_and_si256(
            _mm256_sll_epi16(hi, hi_n),
            _mm256_set1_epi8((char)((0xff << (8 - shift)) & 0xff)));
    return _mm256_or_si256(lo, hi);
}

/// 32 indices of B bits from p on (at the pattern's bit offset), in order,
/// one per byte; reads at most 3 B + 16 bytes (16 for B <= 3, 2 B + 16 for
/// 4..7, 33 for 8)
template <int B>
__m256i natural_indices32(const uint8_t* p, const NaturalPattern& pat) {
    if (B == 8) {
        return byte_indices32(p, pat.shift);
    }
    __m128i lo = _mm_loadu_si128((const __m128i*)p);
    __m256i x = NaturalPattern::broadcast(B)
                        ? _mm256_broadcastsi128_si256(lo)
                        : _mm256_inserti128_si256(
                                  _mm256_castsi128_si256(lo),
                                  _mm_loadu_si128((const __m128i*)(p + 2 * B)),
                                  1);
    __m256i e = _mm256_mullo_epi16(
            _mm256_shuffle_epi8(x, pat.even_ctl), pat.even_mul);
    __m256i o = _mm256_mullo_epi16(
            _mm256_shuffle_epi8(x, pat.odd_ctl), pat.odd_mul);
    // even: the B top bits down to bit 0; odd: down to bit 8, the bits
    // below it cleared
    e = _mm256_srli_epi16(e, 16 - B);
    o = _mm256_and_si256(
            _mm256_srli_epi16(o, 8 - B), _mm256_set1_epi16((short)0xff00));
    return _mm256_or_si256(e, o);
}

/// table values of coordinates [j, j + 32) of natural segment s (zero
/// past its end), scalar: the tail the SIMD steps leave; V sum added to *v
__m256i
natural_tail(const Int8Segment& s, const uint8_t* code, size_t j, int32_t* v) {
    alignas(32) uint8_t t[32] = {};
    size_t j1 = j + 32 < s.ncoords ? j + 32 : s.ncoords;
    if (j < j1) {
        *v += int8_decode_natural_range(s, code, j, j1, t);
    }
    return _mm256_load_si256((const __m256i*)t);
}

/// a natural-order segment of B <= 8 bits at any bit offset (fractional
/// widths, 3, 5-8 bits), 32 coordinates a step, reading up to max_read bytes
/// from the code (kInt8NaturalOverread): the scalar decoder took 4 cycles
/// a coordinate, 20x the interleaved decoders' time at nq = 1
template <int B>
int32_t decode_natural(
        const Int8Segment& s,
        const NaturalPattern& pat,
        const uint8_t* code,
        size_t max_read,
        uint8_t* row,
        bool want_v) {
    const Lut<B> T(s.u), V(s.v);
    const __m256i zero = _mm256_setzero_si256();
    __m256i vacc = zero;
    size_t j = 0;
    for (; j + 32 <= s.ncoords; j += 32) {
        const size_t byte = (s.bit_offset + B * j) >> 3;
        if (byte + 3 * B + 16 > max_read) {
            break; // not within the readable bytes
        }
        __m256i idx = natural_indices32<B>(code + byte, pat);
        _mm256_storeu_si256((__m256i*)(row + j), T(idx));
        if (want_v) {
            vacc = _mm256_add_epi64(vacc, _mm256_sad_epu8(V(idx), zero));
        }
    }
    int32_t vsum = hsum64(vacc);
    // the rest, and the zero padding up to the width (a multiple of 32)
    for (; j < s.width; j += 32) {
        _mm256_storeu_si256(
                (__m256i*)(row + j), natural_tail(s, code, j, &vsum));
    }
    return vsum;
}

int32_t decode_natural_any(
        const Int8Layout& L,
        int si,
        const NaturalPattern& pat,
        const uint8_t* code,
        uint8_t* row) {
    const Int8Segment& s = L.seg[si];
    const size_t mr = L.max_read;
    return by_width(s.nbits, [&](auto w) {
        return decode_natural<decltype(w)::value>(
                s, pat, code, mr, row, L.want_v);
    });
}

void decode_tile_avx2(
        const Int8Layout& L,
        const uint8_t* codes,
        size_t n,
        uint8_t* tile,
        int32_t* vsum) {
    const NaturalPatterns pats(L);
    for (size_t i = 0; i < n; i++) {
        const uint8_t* code = codes + i * L.code_size;
        for (int s = 0; s < L.nseg; s++) {
            const Int8Segment& sg = L.seg[s];
            uint8_t* row = tile + i * L.row + sg.tile_offset;
            int32_t v;
            if (!sg.interleaved) {
                v = decode_natural_any(L, s, pats[s], code, row);
            } else if (sg.nbits == 4) {
                v = decode_interleaved<4>(sg, code, row, L.want_v);
            } else if (sg.nbits == 2) {
                v = decode_interleaved<2>(sg, code, row, L.want_v);
            } else {
                v = decode_interleaved<1>(sg, code, row, L.want_v);
            }
            if (L.want_v) {
                vsum[i * L.nseg + s] = v;
            }
        }
    }
}

/*************************************************************
 * tile x queries
 *************************************************************/

/// NC tile rows x NQ queries, all segments; out at (query 0, row 0), n
/// rows per query in out
template <int NC, int NQ>
void micro_tile(
        const Int8Layout& L,
        const uint8_t* tile,
        const int8_t* q8,
        size_t n,
        int32_t* out) {
    const __m256i ones = _mm256_set1_epi16(1);
    for (int s = 0; s < L.nseg; s++) {
        const Int8Segment& sg = L.seg[s];
        __m256i acc[NC][NQ];
        for (int c = 0; c < NC; c++) {
            for (int q = 0; q < NQ; q++) {
                acc[c][q] = _mm256_setzero_si256();
            }
        }
        const size_t j1 = sg.tile_offset + sg.width;
        // 64 bytes a step, two maddubs per madd: NC * NQ accumulators, two
        // row vectors and the ones in registers, the queries read from L1
        size_t j = sg.tile_offset;
        for (; j + 64 <= j1; j += 64) {
            for (int c = 0; c < NC; c++) {
                const uint8_t* r = tile + c * L.row + j;
                __m256i c0 = _mm256_loadu_si256((const __m256i*)r);
                __m256i c1 = _mm256_loadu_si256((const __m256i*)(r + 32));
                for (int q = 0; q < NQ; q++) {
                    const int8_t* qp = q8 + q * L.row + j;
                    acc[c][q] = _mm256_add_epi32(
                            acc[c][q],
                            dot2(c0,
                                 _mm256_loadu_si256((const __m256i*)qp),
                                 c1,
                                 _mm256_loadu_si256(
                                         (const __m256i*)(qp + 32))));
                }
            }
        }
        for (; j < j1; j += 32) { // an odd 32-byte step
            for (int c = 0; c < NC; c++) {
                __m256i cv = _mm256_loadu_si256(
                        (const __m256i*)(tile + c * L.row + j));
                for (int q = 0; q < NQ; q++) {
                    __m256i qv = _mm256_loadu_si256(
                            (const __m256i*)(q8 + q * L.row + j));
                    acc[c][q] = _mm256_add_epi32(
                            acc[c][q],
                            _mm256_madd_epi16(
                                    _mm256_maddubs_epi16(cv, qv), ones));
                }
            }
        }
        for (int q = 0; q < NQ; q++) {
            int32_t* o = out + q * n * L.nseg + s;
            if (NC == 4) {
                store4(hsum32x4(acc[0][q], acc[1][q], acc[2][q], acc[3][q]),
                       o,
                       L.nseg);
                continue;
            }
            for (int c = 0; c < NC; c++) {
                o[c * L.nseg] = hsum32(acc[c][q]);
            }
        }
    }
}

/// rows per micro tile: 4 x 2 accumulators, 2 queries, a row and the ones
/// in 12 of the 16 registers (6 rows measured no faster: GCC spills)
constexpr size_t kMicroRows = 4;

template <int NQ>
void micro_tile_rows(
        const Int8Layout& L,
        const uint8_t* tile,
        size_t nc,
        const int8_t* q8,
        size_t n,
        int32_t* out) {
    switch (nc) {
        case 4:
            micro_tile<4, NQ>(L, tile, q8, n, out);
            break;
        case 3:
            micro_tile<3, NQ>(L, tile, q8, n, out);
            break;
        case 2:
            micro_tile<2, NQ>(L, tile, q8, n, out);
            break;
        default:
            micro_tile<1, NQ>(L, tile, q8, n, out);
    }
}

void tile_dots_avx2(
        const Int8Layout& L,
        const uint8_t* tile,
        size_t n,
        const int8_t* q8,
        size_t nq,
        int32_t* out) {
    // query pairs outside: the pair stays in L1 while the tile streams
    for (size_t q0 = 0; q0 < nq; q0 += 2) {
        const size_t nqb = nq - q0 < 2 ? nq - q0 : 2;
        for (size_t i0 = 0; i0 < n; i0 += kMicroRows) {
            const size_t nc = n - i0 < kMicroRows ? n - i0 : kMicroRows;
            int32_t* o = out + (q0 * n + i0) * L.nseg;
            if (nqb == 2) {
                micro_tile_rows<2>(
                        L, tile + i0 * L.row, nc, q8 + q0 * L.row, n, o);
            } else {
                micro_tile_rows<1>(
                        L, tile + i0 * L.row, nc, q8 + q0 * L.row, n, o);
            }
        }
    }
}

/*************************************************************
 * straight from the codes
 *************************************************************/

/// where one segment's pass over a block of codes writes: code i's sums
/// at u[q * stride + i * nseg] (query q) and v[i * nseg]; the first
/// segment's pass also prefetches the codes ahead
struct SegmentRun {
    const Int8Layout& L;
    const uint8_t* codes;
    size_t n;
    const int8_t* q8;
    int32_t* u; ///< the output of code 0, query 0, this segment
    int32_t* v;
    bool prefetch;

    const uint8_t* code(size_t i) const {
        return codes + i * L.code_size;
    }

    /// queries' stride in u
    size_t stride() const {
        return n * L.nseg;
    }
};

/// codes ahead of the one scored that the scan prefetches: a few, and at
/// least kPrefetchBytes ahead (short codes come faster than memory answers)
constexpr size_t kPrefetchAhead = 4;
constexpr size_t kPrefetchBytes = 1024;

/// a few codes ahead of code i: more reads in flight than the
/// prefetcher's. Past the last code the addresses are only hints
/// (integers, so no out-of-range pointer is formed); prefetches never
/// fault.
void prefetch_ahead(const SegmentRun& r, size_t i) {
    const size_t cs = r.L.code_size;
    const size_t ahead = kPrefetchAhead * cs > kPrefetchBytes
                                 ? kPrefetchAhead * cs
                                 : kPrefetchBytes;
    uintptr_t a = (uintptr_t)r.code(i) + ahead;
    for (size_t b = 0; b < cs; b += 64) {
        _mm_prefetch((const char*)(a + b), _MM_HINT_T0);
    }
}

/// one interleaved segment of every code of the run against NQ queries
template <int B, int NQ, bool WANT_V>
void direct_segment(const Int8Segment& s, const SegmentRun& r) {
    constexpr int per = 8 / B;
    const NibbleLut<B> T(s.u), V(s.v);
    const __m256i zero = _mm256_setzero_si256();
    const int8_t* qs = r.q8 + s.tile_offset;
    const size_t row = r.L.row, stride = r.stride(), nseg = r.L.nseg;
    const size_t chunk = 32 * per, nchunks = s.width / chunk;
    for (size_t i = 0; i < r.n; i++) {
        if (r.prefetch) {
            prefetch_ahead(r, i);
        }
        const uint8_t* p = r.code(i) + (s.bit_offset >> 3);
        __m256i acc[NQ];
        for (int q = 0; q < NQ; q++) {
            acc[q] = zero;
        }
        __m256i vacc = zero;
        for (size_t c = 0; c < nchunks; c++) {
            __m256i nib[2];
            nibbles(_mm256_loadu_si256((const __m256i*)(p + c * 32)), nib);
            // per = 8 / B is even: sub-vectors k and k + 1 share a madd
            for (int k = 0; k < per; k += 2) {
                __m256i u0 = T(nib, k);
                __m256i u1 = T(nib, k + 1);
                const int8_t* qp = qs + c * chunk + k * 32;
                for (int q = 0; q < NQ; q++) {
                    const int8_t* rq = qp + q * row;
                    acc[q] = _mm256_add_epi32(
                            acc[q],
                            dot2(u0,
                                 _mm256_loadu_si256((const __m256i*)rq),
                                 u1,
                                 _mm256_loadu_si256(
                                         (const __m256i*)(rq + 32))));
                }
                if (WANT_V) {
                    for (int h = 0; h < 2; h++) {
                        __m256i vv = V(nib, k + h);
                        if (c + 1 == nchunks) {
                            vv = _mm256_and_si256(
                                    vv,
                                    tail_mask(
                                            s.ncoords - c * chunk, per, k + h));
                        }
                        vacc = _mm256_add_epi64(
                                vacc, _mm256_sad_epu8(vv, zero));
                    }
                }
            }
        }
        for (int q = 0; q < NQ; q++) {
            r.u[q * stride + i * nseg] = hsum32(acc[q]);
        }
        if (WANT_V) {
            r.v[i * nseg] = hsum64(vacc);
        }
    }
}

/// one natural-order segment (B <= 8 bits) of every code of the run
/// against NQ queries: decoded 64 coordinates at a time into registers,
/// then the same integer dot products as direct_segment
template <int B, int NQ, bool WANT_V>
void direct_natural(
        const Int8Segment& s, const NaturalPattern& pat, const SegmentRun& r) {
    const Lut<B> T(s.u), V(s.v);
    const __m256i zero = _mm256_setzero_si256(), ones = _mm256_set1_epi16(1);
    const int8_t* qs = r.q8 + s.tile_offset;
    const size_t row = r.L.row, stride = r.stride(), nseg = r.L.nseg;
    const size_t max_read = r.L.max_read;
    for (size_t i = 0; i < r.n; i++) {
        if (r.prefetch) {
            prefetch_ahead(r, i);
        }
        const uint8_t* code = r.code(i);
        __m256i acc[NQ];
        for (int q = 0; q < NQ; q++) {
            acc[q] = zero;
        }
        __m256i vacc = zero;
        size_t j = 0;
        // pairs of 32-index steps while their loads stay readable
        for (; j + 64 <= s.ncoords; j += 64) {
            const size_t byte = (s.bit_offset + B * j) >> 3;
            if (byte + 7 * B + 16 > max_read) {
                break;
            }
            __m256i i0 = natural_indices32<B>(code + byte, pat);
            __m256i i1 = natural_indices32<B>(code + byte + 4 * B, pat);
            __m256i u0 = T(i0);
            __m256i u1 = T(i1);
            for (int q = 0; q < NQ; q++) {
                const int8_t* rq = qs + q * row + j;
                acc[q] = _mm256_add_epi32(
                        acc[q],
                        dot2(u0,
                             _mm256_loadu_si256((const __m256i*)rq),
                             u1,
                             _mm256_loadu_si256((const __m256i*)(rq + 32))));
            }
            if (WANT_V) {
                vacc = _mm256_add_epi64(vacc, _mm256_sad_epu8(V(i0), zero));
                vacc = _mm256_add_epi64(vacc, _mm256_sad_epu8(V(i1), zero));
            }
        }
        int32_t vsum = 0;
        for (; j < s.ncoords; j += 32) {
            const size_t byte = (s.bit_offset + B * j) >> 3;
            __m256i u;
            if (j + 32 <= s.ncoords && byte + 3 * B + 16 <= max_read) {
                __m256i idx = natural_indices32<B>(code + byte, pat);
                u = T(idx);
                if (WANT_V) {
                    vacc = _mm256_add_epi64(
                            vacc, _mm256_sad_epu8(V(idx), zero));
                }
            } else {
                u = natural_tail(s, code, j, &vsum);
            }
            for (int q = 0; q < NQ; q++) {
                const int8_t* rq = qs + q * row + j;
                acc[q] = _mm256_add_epi32(
                        acc[q],
                        _mm256_madd_epi16(
                                _mm256_maddubs_epi16(
                                        u,
                                        _mm256_loadu_si256((const __m256i*)rq)),
                                ones));
            }
        }
        for (int q = 0; q < NQ; q++) {
            r.u[q * stride + i * nseg] = hsum32(acc[q]);
        }
        if (WANT_V) {
            r.v[i * nseg] = hsum64(vacc) + vsum;
        }
    }
}

/// segment by segment (tables and dispatch once per block, not per code;
/// the first pass brings the codes into cache for the others)
template <int NQ, bool WANT_V>
void direct_codes(
        const Int8Layout& L,
        const uint8_t* codes,
        size_t n,
        const int8_t* q8,
        int32_t* out,
        int32_t* vsum) {
    const NaturalPatterns pats(L);
    for (int s = 0; s < L.nseg; s++) {
        const Int8Segment& sg = L.seg[s];
        const SegmentRun r{
                L, codes, n, q8, out + s, WANT_V ? vsum + s : nullptr, s == 0};
        if (!sg.interleaved) {
            by_width(sg.nbits, [&](auto w) {
                direct_natural<decltype(w)::value, NQ, WANT_V>(sg, pats[s], r);
            });
        } else if (sg.nbits == 4) {
            direct_segment<4, NQ, WANT_V>(sg, r);
        } else if (sg.nbits == 2) {
            direct_segment<2, NQ, WANT_V>(sg, r);
        } else {
            direct_segment<1, NQ, WANT_V>(sg, r);
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
        int32_t* vsum) {
    if (L.want_v) {
        direct_codes<NQ, true>(L, codes, n, q8, out, vsum);
    } else {
        direct_codes<NQ, false>(L, codes, n, q8, out, vsum);
    }
}

void direct_dots_avx2(
        const Int8Layout& L,
        const uint8_t* codes,
        size_t n,
        const int8_t* q8,
        size_t nq,
        int32_t* out,
        int32_t* vsum,
        size_t /* ahead */) {
    // these kernels ask a few codes ahead into L1 (prefetch_ahead): into
    // L2 32 KB ahead, as AVX-512's do, was 1.1-1.25x slower here
    switch (nq) {
        case 1:
            direct_codes_v<1>(L, codes, n, q8, out, vsum);
            break;
        case 2:
            direct_codes_v<2>(L, codes, n, q8, out, vsum);
            break;
        case 3:
            direct_codes_v<3>(L, codes, n, q8, out, vsum);
            break;
        default:
            direct_codes_v<4>(L, codes, n, q8, out, vsum);
    }
}

} // namespace

extern const Int8Kernels kInt8KernelsAVX2 = {
        "avx2",
        decode_tile_avx2,
        tile_dots_avx2,
        direct_dots_avx2,
        0, // tiles are rows
};

} // namespace faiss_turbo
