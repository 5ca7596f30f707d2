/**
 * Integer kernels of the int8 scan (see scan_int8.h for the estimator).
 *
 * A code is cut into segments that share one scalar table: the b_hi and
 * b_lo parts of the MSE indices and, for PROD, the sign bits. Decoding maps
 * each index to an unsigned table value u in [0, 128] and queries are in
 * [-63, 63] (7 bits), so that AVX2's maddubs (u8 x s8, pairs summed in
 * s16) gives at most 2 * 128 * 63 = 16128 and two maddubs add in s16
 * without overflow: one widening madd per two maddubs, as the multiply
 * port bounds the batched scan (7-bit queries measured 1.3x faster than
 * 8-bit ones, and their rounding, max |y| / 126, stays well below the
 * codec's error). AVX-512 VNNI's vpdpbusd (int8_kernels_avx512.cpp)
 * fuses maddubs and madd. The kernels only compute exact
 * integer sums, U = sum u * q8 per segment and V = sum v (a second table,
 * for ||c_hat||^2), so every instruction set gives the same integers and
 * the float estimator on top of them is computed once, in scan_int8.cpp.
 *
 * Kernel order: a tile row (and a prepared query) holds the segments one
 * after the other, each padded with zeros to a multiple of 32 bytes. Segments
 * of 1, 2 or 4 bits that start on a byte are "interleaved": the SIMD decoder
 * turns 32 code bytes into 8 / b vectors of 32 values, vector k holding bits
 * k*b.. of each byte, so coordinate j of chunk c sits at c * 256 / b +
 * (j % (8 / b)) * 32 + (j / (8 / b)) (j relative to the chunk). Other
 * segments (3, 5-8 bits, or off a byte in fractional widths) are in natural
 * order; the SIMD decoder reads them 32 indices at a time from any bit
 * offset. Queries are permuted once into this order.
 *
 * This header is included by the AVX2 translation unit: it must hold no
 * inline code that another translation unit could also instantiate.
 */
#pragma once

#include <cstddef>
#include <cstdint>

namespace faiss_turbo {

constexpr int kInt8MaxSegments = 3;

/// queries the direct kernel scores per pass over the codes
constexpr size_t kInt8MaxDirectQueries = 4;

/// natural-order segments may be read up to this many bytes past their
/// last byte (the SIMD decoder's loads)
constexpr size_t kInt8NaturalOverread = 32;

/// codes per panel of the AVX-512 tiles (Int8Kernels::panel)
constexpr size_t kInt8PanelCodes = 16;

/// offset of the table values: u = round(c / scale) + kInt8Offset
constexpr int kInt8Offset = 64;

/// prepared queries are integers in [-kInt8QueryMax, kInt8QueryMax]
constexpr int kInt8QueryMax = 63;

/// plain data, value-initialize it (Int8Segment s{}): constructors would be
/// inline code (see above)
struct Int8Segment {
    uint32_t bit_offset;  ///< first bit of the segment in a code
    int nbits;            ///< 1..8
    uint32_t ncoords;     ///< coordinates in the segment
    uint32_t tile_offset; ///< first byte in a row, multiple of 32
    uint32_t width;       ///< bytes in a row, multiple of 32
    bool interleaved;     ///< the SIMD order (nbits 1, 2, 4 on a byte)
    uint8_t u[256];       ///< index -> value in [0, 128]
    uint8_t v[256];       ///< index -> c^2 in units (for ||c_hat||^2)
};

struct Int8Layout {
    int nseg;
    Int8Segment seg[kInt8MaxSegments];
    size_t code_size;
    size_t row;      ///< bytes of a tile row / prepared query
    size_t max_read; ///< bytes a kernel may read from a code's start
    bool want_v;     ///< compute the V sums
    bool direct;     ///< direct_dots applies (every layout, since the
                     ///< SIMD decoder reads natural segments too)
};

/// One instruction set's kernels. Outputs are int32, indexed
/// [(query * n + code) * nseg + segment] for U (query-major, so that the
/// scores of one query over a block are computed in one vectorizable loop)
/// and [code * nseg + segment] for V (written only when layout.want_v).
/// Codes may be read up to layout.max_read bytes past each code's start.
struct Int8Kernels {
    const char* name;

    /// decode n codes into a tile of int8_tile_bytes(*this, layout, n)
    /// bytes: n rows of layout.row bytes (panel == 0), or their panels
    void (*decode_tile)(
            const Int8Layout& layout,
            const uint8_t* codes,
            size_t n,
            uint8_t* tile,
            int32_t* vsum);

    /// U sums of the n codes of a tile (as decode_tile wrote it) against
    /// nq prepared queries (rows of layout.row bytes)
    void (*tile_dots)(
            const Int8Layout& layout,
            const uint8_t* tile,
            size_t n,
            const int8_t* q8,
            size_t nq,
            int32_t* out);

    /// U (and V) sums straight from the codes: layout.direct only,
    /// nq <= kInt8MaxDirectQueries. ahead: bytes past the n codes that the
    /// caller scans next (the same array), which a kernel may ask for in
    /// advance (0: none)
    void (*direct_dots)(
            const Int8Layout& layout,
            const uint8_t* codes,
            size_t n,
            const int8_t* q8,
            size_t nq,
            int32_t* out,
            int32_t* vsum,
            size_t ahead);

    /// 0: a tile is the decoded rows. Else the rows in panels of this many
    /// codes (int8_kernels_avx512.cpp), which decode_tile writes through
    /// rows in the tile's second half
    size_t panel;
};

/// bytes of a tile of n codes for K's decode_tile
size_t int8_tile_bytes(const Int8Kernels& K, const Int8Layout& L, size_t n);

/// the portable kernels, the reference of the others
const Int8Kernels& int8_kernels_scalar();

/// the AVX2 kernels, null where the build or the CPU has no AVX2
const Int8Kernels* int8_kernels_avx2();

/// AVX2's tile decoder with AVX-512 VNNI's dot products, null where the
/// build or the CPU lacks AVX2, AVX-512 F/BW/VL or VNNI
const Int8Kernels* int8_kernels_avx512();

/// the best kernels of this CPU; FAISS_TURBO_SIMD=scalar in the environment
/// forces the portable ones, FAISS_TURBO_SIMD=avx2 AVX2's (read once)
const Int8Kernels& int8_kernels_best();

/// position of coordinate j of a segment in a row (relative to tile_offset)
size_t int8_kernel_position(const Int8Segment& s, size_t j);

/// coordinates [j0, j1) of a natural-order segment, scalar, into out[0..):
/// table values, V sum returned. The tail of every instruction set's
/// natural decoders.
int32_t int8_decode_natural_range(
        const Int8Segment& s,
        const uint8_t* code,
        size_t j0,
        size_t j1,
        uint8_t* out);

/// scalar decode of one natural-order segment of a code into its row slice
/// (zero padded); V sum returned. Shared by every instruction set.
int32_t int8_decode_natural(
        const Int8Segment& s,
        const uint8_t* code,
        size_t code_size,
        uint8_t* row);

} // namespace faiss_turbo
