/**
 * Portable fast-scan kernels: the reference of the SIMD ones.
 */
#include <faiss_turbo/impl/simd/lut_kernels.h>

namespace faiss_turbo {

namespace {

void block_sums_scalar(
        const uint8_t* blocks,
        size_t ngroups,
        size_t nblocks,
        const uint8_t* luts,
        size_t nq,
        uint32_t* out) {
    const size_t block_bytes = ngroups * kLutGroupBytes;
    for (size_t b = 0; b < nblocks; b++) {
        const uint8_t* blk = blocks + b * block_bytes;
        for (size_t q = 0; q < nq; q++) {
            const uint8_t* lut = luts + q * block_bytes;
            uint32_t* o = out + (b * nq + q) * kLutBlockCodes;
            for (size_t i = 0; i < kLutBlockCodes; i++) {
                o[i] = 0;
            }
            for (size_t g = 0; g < ngroups; g++) {
                const uint8_t* v = blk + g * kLutGroupBytes;
                const uint8_t* t0 = lut + g * kLutGroupBytes; // slot 2g
                const uint8_t* t1 = t0 + 16;                  // slot 2g + 1
                for (size_t i = 0; i < 16; i++) {
                    o[i] += t0[v[i] & 15] + t1[v[16 + i] & 15];
                    o[16 + i] += t0[v[i] >> 4] + t1[v[16 + i] >> 4];
                }
            }
        }
    }
}

void unpack_code_scalar(
        const uint8_t* block, size_t ngroups, size_t i, uint8_t* mse) {
    const size_t j = i % 16;
    for (size_t g = 0; g < ngroups; g++) {
        const uint8_t lo = block[g * kLutGroupBytes + j];      // slot 2g
        const uint8_t hi = block[g * kLutGroupBytes + 16 + j]; // slot 2g + 1
        mse[g] = i < 16 ? (uint8_t)((lo & 15) | (hi << 4))
                        : (uint8_t)((lo >> 4) | (hi & 0xf0));
    }
}

const LutKernels kLutKernelsScalar = {
        "scalar", block_sums_scalar, unpack_code_scalar};

} // namespace

const LutKernels& lut_kernels_scalar() {
    return kLutKernelsScalar;
}

void lut_block_sums_by_pairs(
        const uint8_t* blocks,
        size_t ngroups,
        size_t nblocks,
        const uint8_t* luts,
        size_t nq,
        uint32_t* out,
        LutBlockFn* two,
        LutBlockFn* one) {
    const size_t block_bytes = ngroups * kLutGroupBytes;
    for (size_t b = 0; b < nblocks; b++) {
        const uint8_t* blk = blocks + b * block_bytes;
        uint32_t* o = out + b * nq * kLutBlockCodes;
        size_t q = 0;
        for (; q + 2 <= nq; q += 2) {
            two(blk,
                ngroups,
                luts + q * block_bytes,
                block_bytes,
                o + q * kLutBlockCodes);
        }
        if (q < nq) {
            one(blk,
                ngroups,
                luts + q * block_bytes,
                block_bytes,
                o + q * kLutBlockCodes);
        }
    }
}

} // namespace faiss_turbo
