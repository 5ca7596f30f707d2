/**
 * Portable sign pre-scan kernels: the reference of the SIMD ones (same
 * tiles byte for byte, same integer sums) and the path of other CPUs.
 */
#include <faiss_turbo/impl/simd/sign_kernels.h>

#include <cstring>

namespace faiss_turbo {

size_t sign_tile_bytes(const SignLayout& L, size_t n) {
    const size_t np = (n + kSignPanelCodes - 1) / kSignPanelCodes;
    return np * L.ncols * kSignColumnBytes;
}

uint32_t sign_nibble(const SignLayout& L, const uint8_t* code, size_t g) {
    uint64_t w;
    memcpy(&w, code + L.byte[g], 8); // the bit stream is LSB-first
    uint32_t bits = 0;
    int k = 0;
    for (uint64_t m = L.mask[g]; m != 0; m &= m - 1) { // pext
        bits |= (uint32_t)((w >> __builtin_ctzll(m)) & 1) << k++;
    }
    uint32_t nib = 0;
    k = 0;
    for (uint32_t p = L.present[g]; p != 0; p &= p - 1) { // pdep
        nib |= ((bits >> k++) & 1) << __builtin_ctz(p);
    }
    return nib;
}

namespace {

void build_tile_scalar(
        const SignLayout& L, const uint8_t* codes, size_t n, uint8_t* tile) {
    memset(tile, 0, sign_tile_bytes(L, n));
    for (size_t i = 0; i < n; i++) {
        const uint8_t* code = codes + i * L.code_size;
        const size_t p = i / kSignPanelCodes, c = i % kSignPanelCodes;
        for (size_t w = 0; w < L.ncols; w++) {
            uint8_t* dw = tile + (p * L.ncols + w) * kSignColumnBytes + 4 * c;
            for (size_t t = 0; t < 4; t++) {
                size_t g = 4 * w + t;
                uint32_t nib = g < L.ngroups ? sign_nibble(L, code, g) : 0;
                dw[t] = (uint8_t)(t << 4 | nib);
            }
        }
    }
    // codes past n in the last panel: pattern 0 in every group
    for (size_t i = n; i % kSignPanelCodes != 0; i++) {
        const size_t p = i / kSignPanelCodes, c = i % kSignPanelCodes;
        for (size_t w = 0; w < L.ncols; w++) {
            uint8_t* dw = tile + (p * L.ncols + w) * kSignColumnBytes + 4 * c;
            for (size_t t = 0; t < 4; t++) {
                dw[t] = (uint8_t)(t << 4);
            }
        }
    }
}

void tile_dots_scalar(
        const SignLayout& L,
        const uint8_t* tile,
        size_t n,
        const int8_t* tables,
        size_t nq,
        int32_t* out) {
    for (size_t q = 0; q < nq; q++) {
        const int8_t* tq = tables + q * L.ncols * kSignColumnBytes;
        for (size_t i = 0; i < n; i++) {
            const size_t p = i / kSignPanelCodes, c = i % kSignPanelCodes;
            const uint8_t* col = tile + p * L.ncols * kSignColumnBytes + 4 * c;
            int32_t s = 0;
            for (size_t w = 0; w < L.ncols; w++) {
                for (size_t t = 0; t < 4; t++) {
                    uint8_t e = col[w * kSignColumnBytes + t];
                    s += tq[w * kSignColumnBytes + (e & 63)];
                }
            }
            out[q * n + i] = s;
        }
    }
}

} // namespace

void sign_scores_reach_from(
        const SignScoreForm& f,
        const int32_t* S,
        size_t i0,
        size_t n,
        float* out,
        uint64_t* reach) {
    for (size_t i = i0; i < n; i++) {
        const float v =
                f.qconst + f.B[i] + f.AC[i] * (f.c0 + f.unit * (float)S[i]);
        out[i] = v;
        const bool r = f.l2 ? v <= f.bound : v >= f.bound;
        reach[i / 64] |= (uint64_t)r << (i % 64);
    }
}

namespace {

void scores_reach_scalar(
        const SignScoreForm& f,
        const int32_t* S,
        size_t n,
        float* out,
        uint64_t* reach) {
    memset(reach, 0, (n + 63) / 64 * sizeof(uint64_t));
    sign_scores_reach_from(f, S, 0, n, out, reach);
}

} // namespace

const SignKernels& sign_kernels_scalar() {
    static const SignKernels k = {
            "scalar",
            kSignTileDwords,
            build_tile_scalar,
            tile_dots_scalar,
            scores_reach_scalar};
    return k;
}

} // namespace faiss_turbo
