/**
 * A code's signs for the SIMD sign kernels, by BMI2's pext and pdep:
 * compiled with -mbmi2, one copy for the AVX2 and AVX-512 kernel sets,
 * which both run only where the CPU has BMI2 (dispatch.cpp).
 */
#include <immintrin.h>

#include <faiss_turbo/impl/simd/sign_kernels.h>

namespace faiss_turbo {

namespace {

uint64_t load64(const uint8_t* p) {
    uint64_t w;
    __builtin_memcpy(&w, p, 8);
    return w;
}

} // namespace

uint32_t
sign_column_nibbles_bmi2(const SignLayout& L, const uint8_t* code, size_t w) {
    if (L.col_mask[w] != 0) { // the column's 16 signs in one word
        return (uint32_t)_pext_u64(load64(code + L.col_byte[w]), L.col_mask[w]);
    }
    uint32_t nibs = 0;
    for (size_t t = 0; t < 4; t++) {
        size_t g = 4 * w + t;
        if (g >= L.ngroups) {
            break;
        }
        uint32_t bits =
                (uint32_t)_pext_u64(load64(code + L.byte[g]), L.mask[g]);
        uint32_t nib =
                L.present[g] == 0xf ? bits : _pdep_u32(bits, L.present[g]);
        nibs |= nib << (4 * t);
    }
    return nibs;
}

} // namespace faiss_turbo
