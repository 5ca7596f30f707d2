#include <faiss_turbo/impl/packing.h>

#include <cstring>

#ifdef __SSE2__
#include <emmintrin.h>
#endif

#include <faiss_turbo/impl/coord_rules.h>

namespace faiss_turbo {

namespace {

#if defined(__BYTE_ORDER__) && __BYTE_ORDER__ == __ORDER_LITTLE_ENDIAN__
constexpr bool kLittleEndian = true;
#else
constexpr bool kLittleEndian = false;
#endif

/// 8 indices of nbits bits (each < 2^nbits) as put_bits lays them out,
/// LSB first: idx[l] at bit nbits * l of the result (8 * nbits bits).
/// Halving steps: bytes -> pairs in 16 bits -> quads in 32 bits -> all.
uint64_t pack8_indices(const uint8_t* idx, int nbits) {
    uint64_t v;
    memcpy(&v, idx, 8); // little-endian: byte l = idx[l]
    v = (v & 0x00ff00ff00ff00ffULL) |
        ((v & 0xff00ff00ff00ff00ULL) >> (8 - nbits));
    v = (v & 0x0000ffff0000ffffULL) |
        ((v & 0xffff0000ffff0000ULL) >> (16 - 2 * nbits));
    return (v & 0xffffffffULL) | ((v >> 32) << (4 * nbits));
}

/// OR the low nb <= 64 bits of w into the stream p at bit pos (little-
/// endian words); p must have 8 writable bytes past the last bit
void or_bits64(uint8_t* p, size_t pos, uint64_t w, int nb) {
    size_t byte = pos >> 3;
    int s = pos & 7;
    uint64_t cur;
    memcpy(&cur, p + byte, 8);
    cur |= w << s;
    memcpy(p + byte, &cur, 8);
    if (s && s + nb > 64) {
        p[byte + 8] |= (uint8_t)(w >> (64 - s));
    }
}

#ifdef __SSE2__
/// 16 indices from a byte boundary into 2 * nbits bytes (nbits 1, 2, 4),
/// the same halving steps as pack8_indices on all 16 at once; the zeroed
/// bytes they land on are overwritten (exactly those), not ORed
size_t pack16_sse2(const uint8_t* idx, size_t n, int nbits, uint8_t* out) {
    const __m128i lo8 = _mm_set1_epi16(0x00ff);
    size_t j = 0;
    for (; j + 16 <= n; j += 16, out += 2 * nbits) {
        __m128i v = _mm_loadu_si128((const __m128i*)(idx + j));
        if (nbits == 1) { // bit j of the result = bit 0 of byte j
            uint16_t m = (uint16_t)_mm_movemask_epi8(_mm_slli_epi16(v, 7));
            memcpy(out, &m, 2);
            continue;
        }
        // pairs: byte 2l + 1 above byte 2l, in each 16-bit lane
        v = _mm_or_si128(
                _mm_and_si128(v, lo8),
                _mm_slli_epi16(_mm_srli_epi16(v, 8), nbits));
        if (nbits == 2) { // quads: lane 2l + 1 above lane 2l, in 32 bits
            v = _mm_madd_epi16(v, _mm_set1_epi32(0x00100001));
            v = _mm_packs_epi32(v, v); // all < 256: no saturation
        }
        v = _mm_packus_epi16(v, v);
        if (nbits == 2) {
            uint32_t w = (uint32_t)_mm_cvtsi128_si32(v);
            memcpy(out, &w, 4);
        } else {
            _mm_storel_epi64((__m128i*)out, v);
        }
    }
    return j;
}
#endif

} // namespace

size_t
pack_indices(const uint8_t* idx, size_t n, int nbits, uint8_t* p, size_t pos) {
    size_t j = 0;
#ifdef __SSE2__
    if ((pos & 7) == 0 && (nbits == 1 || nbits == 2 || nbits == 4)) {
        j = pack16_sse2(idx, n, nbits, p + (pos >> 3));
        pos += j * nbits;
    }
#endif
    if (kLittleEndian && nbits > 0) {
        for (; j + 8 <= n; j += 8) {
            or_bits64(p, pos, pack8_indices(idx + j, nbits), 8 * nbits);
            pos += 8 * nbits;
        }
    }
    for (; j < n; j++) {
        put_bits(p, pos, idx[j], nbits);
        pos += nbits;
    }
    return pos;
}

} // namespace faiss_turbo
