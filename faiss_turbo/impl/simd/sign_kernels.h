/**
 * Kernels of the sign pre-scan (scan_prescan.h): every code reduced to the
 * signs of its rotated coordinates, four to a nibble, and scored against
 * queries by table lookups.
 *
 * The Lloyd-Max codebooks are symmetric and sorted, so a coordinate's sign
 * is the top bit of its index. A query's table for a group of four
 * coordinates holds, for each of the 16 sign patterns, sum_i +-y_i
 * (quantized to int8), and a code's pre-scan sum is the sum of its groups'
 * entries: 16 coordinates per byte lookup and int8 add, where the int8 scan
 * multiplies and adds one coordinate per byte.
 *
 * Tiles: panels of kSignPanelCodes codes, a column (4 groups) of a panel
 * in 64 bytes. A query's table for column w is 64 int8 entries, entry
 * 16 t + n for group 4 w + t and pattern n. Two layouts of a column:
 *   - dwords (portable, AVX-512): byte t of code c's dword is
 *     (t << 4) | nibble(c, 4 w + t). One vpermb of a column by the table
 *     gives 16 codes x 4 groups of entries, and one vpdpbusd against ones
 *     adds each code's four into its int32 lane;
 *   - lanes (AVX2): byte 16 t + c is nibble(c, 4 w + t), so that each
 *     128-bit lane holds one group of 16 codes and pshufb looks it up in
 *     that group's 16 entries (the table's same lane).
 *
 * This header is included by SIMD translation units: no inline code (see
 * int8_kernels.h).
 */
#pragma once

#include <cstddef>
#include <cstdint>

namespace faiss_turbo {

/// codes per panel of a sign tile
constexpr size_t kSignPanelCodes = 16;

/// bytes of a column of a panel, and of a query's table for one column
constexpr size_t kSignColumnBytes = 64;

/// Where the signs of each group of four coordinates sit in a code: the
/// bits `mask` of the little-endian 64-bit word read at byte `byte`, in
/// coordinate order, deposited into the nibble bits `present` (coordinates
/// without bits, or past d, have no sign: their bit stays 0). Plain data;
/// the arrays belong to the caller (SignCodec).
struct SignLayout {
    size_t code_size;
    size_t ngroups;         ///< ceil(d / 4)
    size_t ncols;           ///< ceil(ngroups / 4)
    const uint32_t* byte;   ///< ngroups
    const uint64_t* mask;   ///< ngroups
    const uint8_t* present; ///< ngroups, 4 bits each
    /// a column's 16 signs in one word, where they fit with every
    /// coordinate present (b <= 3 bits, or 4 on a byte): bits col_mask
    /// of the word at col_byte, else col_mask 0 (4 groups). Only the SIMD
    /// kernels read them; the result is the same
    const uint32_t* col_byte; ///< ncols
    const uint64_t* col_mask; ///< ncols
    size_t max_read;          ///< bytes read from a code's start, >= code_size
};

/// one query's first-pass scores of a tile: per code B and AC (an
/// Int8BlockAffine's b and ac), per query qconst, c0 and unit, and the bound
/// its reservoir's offers must reach
struct SignScoreForm {
    const float* B;
    const float* AC;
    float qconst, c0, unit;
    bool l2;
    float bound;
};

/// SignKernels::tile_layout
constexpr int kSignTileDwords = 0;
constexpr int kSignTileLanes = 1;

struct SignKernels {
    const char* name;

    /// kSignTileDwords or kSignTileLanes (same size)
    int tile_layout;

    /// the tile of n codes (sign_tile_bytes(n) bytes; the codes readable
    /// for layout.max_read bytes each)
    void (*build_tile)(
            const SignLayout& layout,
            const uint8_t* codes,
            size_t n,
            uint8_t* tile);

    /// out[q * n + i] = code i's pre-scan sum for query q, i < n; tables:
    /// nq x layout.ncols x kSignColumnBytes
    void (*tile_dots)(
            const SignLayout& layout,
            const uint8_t* tile,
            size_t n,
            const int8_t* tables,
            size_t nq,
            int32_t* out);

    /// out[i] = (qconst + B[i]) + AC[i] * (c0 + unit * S[i]) for i < n, the
    /// same float operations in every set (so the same scores), and bit i
    /// % 64 of reach[i / 64]: whether out[i] reaches the bound (<= it for
    /// l2, >= otherwise; NaN does not). One pass, where a pass for the
    /// scores and one for the bounds read every score twice
    void (*scores_reach)(
            const SignScoreForm& f,
            const int32_t* S,
            size_t n,
            float* out,
            uint64_t* reach);
};

/// bytes of a tile of n codes
size_t sign_tile_bytes(const SignLayout& layout, size_t n);

/// the nibble of group g of a code (the definition the kernels follow)
uint32_t sign_nibble(const SignLayout& layout, const uint8_t* code, size_t g);

/// the 4 nibbles of column w of a code (nibble t: group 4 w + t) by BMI2's
/// pext: the SIMD kernels' tile builders, where the CPU has BMI2
uint32_t sign_column_nibbles_bmi2(
        const SignLayout& layout, const uint8_t* code, size_t w);

/// scores_reach's definition for codes [i0, n) (reach's bits of them
/// zeroed by the caller): the SIMD sets' tails
void sign_scores_reach_from(
        const SignScoreForm& f,
        const int32_t* S,
        size_t i0,
        size_t n,
        float* out,
        uint64_t* reach);

/// the portable kernels, the reference of the others
const SignKernels& sign_kernels_scalar();

/// AVX2 (and BMI2) kernels, null where the build or the CPU lacks them
const SignKernels* sign_kernels_avx2();

/// AVX-512 VBMI + VNNI (and BMI2) kernels, null where the build or the CPU
/// lacks them
const SignKernels* sign_kernels_avx512();

/// the best kernels of this CPU (FAISS_TURBO_SIMD as int8_kernels_best)
const SignKernels& sign_kernels_best();

} // namespace faiss_turbo
