/**
 * Kernels of the fast-scan layout (IndexTurboQuantFastScan): table lookups
 * on 4-bit slots of codes stored in blocks, as FAISS's PQ fast-scan does.
 *
 * A slot is one nibble of a code's MSE bit stream (TurboQuantizer.h): one
 * coordinate at 4 bits, two at 2 bits, four at 1 bit. Because the codebook
 * is shared by every coordinate, a query's table of a slot is
 * lut[v] = sum of y_j c[index_j(v)] over the slot's coordinates, quantized
 * to 8 bits (impl/scan_lut.h); a code's score is then a sum of one table
 * entry per slot, which pshufb looks up for 16 codes at a time.
 *
 * Block layout (kLutBlockCodes = 32 codes, ngroups groups of 32 bytes):
 * group g holds slots 2g and 2g + 1, i.e. byte g of every code's bit
 * stream. Byte i < 16 of a group: low nibble = slot 2g of code i, high
 * nibble = slot 2g of code i + 16; byte 16 + i: the same for slot 2g + 1.
 * So one 32-byte load and two nibble masks give, against the group's
 * 32-byte table (slot 2g's 16 entries, then slot 2g + 1's), two 256-bit
 * pshufb of 32 lookups each, with no permutation.
 *
 * The kernels only compute exact integer sums, so every instruction set
 * gives the same integers (tests check them against the scalar reference).
 * This header is included by the AVX2 translation unit: it must hold no
 * inline code that another translation unit could also instantiate.
 */
#pragma once

#include <cstddef>
#include <cstdint>

namespace faiss_turbo {

/// codes per block of the fast-scan layout
constexpr size_t kLutBlockCodes = 32;

/// bytes of one group (two slots of 32 codes, or two 16-entry tables)
constexpr size_t kLutGroupBytes = 32;

/// queries one kernel call scores per pass over a block
constexpr size_t kLutMaxQueries = 4;

struct LutKernels {
    const char* name;

    /** Sums of nblocks consecutive blocks (ngroups * 32 bytes each) for nq
     * <= kLutMaxQueries queries: out[(b * nq + q) * 32 + i] = sum over the
     * slots of code i of block b of the entry of query q's table.
     * luts: nq tables of ngroups * 32 bytes, one after the other.
     */
    void (*block_sums)(
            const uint8_t* blocks,
            size_t ngroups,
            size_t nblocks,
            const uint8_t* luts,
            size_t nq,
            uint32_t* out);

    /** Code i < 32 of a block (ngroups groups) as its row's MSE bytes:
     * mse[g] = slot 2g's nibble | slot 2g + 1's nibble << 4. What the exact
     * re-scoring reads for each candidate: one byte per 32 of the block.
     */
    void (*unpack_code)(
            const uint8_t* block, size_t ngroups, size_t i, uint8_t* mse);
};

/// one block (ngroups groups) against NQ tables of lut_bytes each: the
/// sums of its 32 codes, out[q * 32 + i]
using LutBlockFn =
        void(const uint8_t* block,
             size_t ngroups,
             const uint8_t* luts,
             size_t lut_bytes,
             uint32_t* out);

/// LutKernels::block_sums through an instruction set's block kernels: the
/// queries of each block two at a time (two shares one load of the codes
/// between a pair), one for an odd last query
void lut_block_sums_by_pairs(
        const uint8_t* blocks,
        size_t ngroups,
        size_t nblocks,
        const uint8_t* luts,
        size_t nq,
        uint32_t* out,
        LutBlockFn* two,
        LutBlockFn* one);

/// the portable kernels, the reference of the others
const LutKernels& lut_kernels_scalar();

/// the AVX2 kernels, null where the build or the CPU has no AVX2
const LutKernels* lut_kernels_avx2();

/// AVX-512's block_sums with AVX2's unpack_code, null where the build or
/// the CPU lacks AVX2 or AVX-512 F/BW
const LutKernels* lut_kernels_avx512();

/// the best kernels of this CPU (FAISS_TURBO_SIMD=scalar: the portable ones,
/// FAISS_TURBO_SIMD=avx2: AVX2's)
const LutKernels& lut_kernels_best();

} // namespace faiss_turbo
