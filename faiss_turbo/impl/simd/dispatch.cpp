/**
 * Run-time choice of the SIMD kernels. The library is built for the
 * baseline instruction set (FAISS here is plain SSE2); the AVX2 kernels are
 * compiled apart (FAISS_TURBO_WITH_AVX2) and used only where the CPU and the
 * OS support them (__builtin_cpu_supports checks both), and so are the
 * AVX-512 (VNNI) int8 and fast-scan kernels (FAISS_TURBO_WITH_AVX512) and
 * the sign pre-scan's (FAISS_TURBO_WITH_SIGN512: VBMI, VNNI, BMI2; its AVX2
 * kernels also need BMI2).
 * FAISS_TURBO_SIMD in the environment (read once, any case) caps the
 * choice, for comparisons: "scalar" keeps every kernel portable, "avx2"
 * leaves out AVX-512; another value is named on stderr and ignored. The cap
 * does not reach the float score loops the compiler clones for AVX-512 and
 * AVX2 (FAISS_TURBO_CLONES, scan.h): the loader picks those by the CPU, and
 * they run the same float operations lane by lane, so the same scores.
 */
#include <faiss_turbo/impl/simd/float_kernels.h>
#include <faiss_turbo/impl/simd/int8_kernels.h>
#include <faiss_turbo/impl/simd/lut_kernels.h>
#include <faiss_turbo/impl/simd/sign_kernels.h>

#include <strings.h>

#include <cstdio>
#include <cstdlib>
#include <cstring>
#include <initializer_list>

#include <faiss_turbo/impl/coord_rules.h>
#include <faiss_turbo/impl/kernels.h>

namespace faiss_turbo {

#if FAISS_TURBO_WITH_AVX2
extern const SignKernels kSignKernelsAVX2;
extern const Int8Kernels kInt8KernelsAVX2;
extern const FloatKernels kFloatKernelsAVX2;
extern const LutKernels kLutKernelsAVX2;
#endif

#if FAISS_TURBO_WITH_AVX512
void decode_tile_avx512vnni(
        const Int8Layout& L,
        const uint8_t* codes,
        size_t n,
        uint8_t* tile,
        int32_t* vsum);
void tile_dots_avx512vnni(
        const Int8Layout& L,
        const uint8_t* tile,
        size_t n,
        const int8_t* q8,
        size_t nq,
        int32_t* out);
void direct_dots_avx512vnni(
        const Int8Layout& L,
        const uint8_t* codes,
        size_t n,
        const int8_t* q8,
        size_t nq,
        int32_t* out,
        int32_t* vsum,
        size_t ahead);
void block_sums_avx512(
        const uint8_t* blocks,
        size_t ngroups,
        size_t nblocks,
        const uint8_t* luts,
        size_t nq,
        uint32_t* out);
#endif

#if FAISS_TURBO_WITH_SIGN512
extern const SignKernels kSignKernelsAVX512;
#endif

namespace {

/// FAISS_TURBO_SIMD as "scalar", "avx2", or null (no cap)
const char* simd_cap() {
    static const char* cap = []() -> const char* {
        const char* env = getenv("FAISS_TURBO_SIMD");
        if (!env || !*env || strcasecmp(env, "avx512") == 0) {
            return nullptr;
        }
        for (const char* level : {"scalar", "avx2"}) {
            if (strcasecmp(env, level) == 0) {
                return level;
            }
        }
        fprintf(stderr,
                "faiss_turbo: FAISS_TURBO_SIMD=%s is not scalar, avx2 or "
                "avx512: ignored\n",
                env);
        return nullptr;
    }();
    return cap;
}

bool simd_allowed(const char* level) {
    const char* cap = simd_cap();
    if (!cap) {
        return true;
    }
    if (strcmp(cap, "scalar") == 0) {
        return false;
    }
    return strcmp(level, "avx2") == 0; // cap avx2
}

bool use_avx2() {
    static const bool ok = [] {
#if FAISS_TURBO_WITH_AVX2
        return simd_allowed("avx2") && __builtin_cpu_supports("avx2");
#else
        return false;
#endif
    }();
    return ok;
}

/// the kernel set a family runs: AVX-512's where the CPU and
/// FAISS_TURBO_SIMD allow it, else AVX2's, else the portable one (the
/// sets given are null where the build or the CPU lacks them)
template <class K>
const K& best_of(const K* avx512, const K* avx2, const K& scalar) {
    if (avx512 && use_avx2() && simd_allowed("avx512")) {
        return *avx512;
    }
    return use_avx2() && avx2 ? *avx2 : scalar;
}

} // namespace

const Int8Kernels* int8_kernels_avx2() {
#if FAISS_TURBO_WITH_AVX2
    static const bool supported = __builtin_cpu_supports("avx2");
    return supported ? &kInt8KernelsAVX2 : nullptr;
#else
    return nullptr;
#endif
}

const Int8Kernels* int8_kernels_avx512() {
#if FAISS_TURBO_WITH_AVX2 && FAISS_TURBO_WITH_AVX512
    // AVX2's tile decoder then panels, VNNI's dot products
    static const Int8Kernels k = {
            "avx512vnni",
            decode_tile_avx512vnni,
            tile_dots_avx512vnni,
            direct_dots_avx512vnni,
            kInt8PanelCodes};
    static const bool supported = __builtin_cpu_supports("avx2") &&
                                  __builtin_cpu_supports("avx512f") &&
                                  __builtin_cpu_supports("avx512bw") &&
                                  __builtin_cpu_supports("avx512vl") &&
                                  __builtin_cpu_supports("avx512vnni");
    return supported ? &k : nullptr;
#else
    return nullptr;
#endif
}

bool simd_avx512f_usable() {
    static const bool ok = simd_allowed("avx512") && use_avx2() &&
                           __builtin_cpu_supports("avx512f");
    return ok;
}

size_t int8_tile_bytes(const Int8Kernels& K, const Int8Layout& L, size_t n) {
    if (K.panel == 0) {
        return n * L.row;
    }
    const size_t padded = (n + K.panel - 1) / K.panel * K.panel;
    return 2 * padded * L.row; // the panels, then the rows
}

const Int8Kernels& int8_kernels_best() {
    static const Int8Kernels& best = best_of(
            int8_kernels_avx512(), int8_kernels_avx2(), int8_kernels_scalar());
    return best;
}

const LutKernels* lut_kernels_avx2() {
#if FAISS_TURBO_WITH_AVX2
    static const bool supported = __builtin_cpu_supports("avx2");
    return supported ? &kLutKernelsAVX2 : nullptr;
#else
    return nullptr;
#endif
}

const LutKernels* lut_kernels_avx512() {
#if FAISS_TURBO_WITH_AVX2 && FAISS_TURBO_WITH_AVX512
    static const LutKernels k = {
            "avx512", block_sums_avx512, kLutKernelsAVX2.unpack_code};
    static const bool supported = __builtin_cpu_supports("avx2") &&
                                  __builtin_cpu_supports("avx512f") &&
                                  __builtin_cpu_supports("avx512bw");
    return supported ? &k : nullptr;
#else
    return nullptr;
#endif
}

const LutKernels& lut_kernels_best() {
    static const LutKernels& best = best_of(
            lut_kernels_avx512(), lut_kernels_avx2(), lut_kernels_scalar());
    return best;
}

const SignKernels* sign_kernels_avx512() {
#if FAISS_TURBO_WITH_SIGN512
    static const bool supported = __builtin_cpu_supports("avx2") &&
                                  __builtin_cpu_supports("avx512f") &&
                                  __builtin_cpu_supports("avx512bw") &&
                                  __builtin_cpu_supports("avx512vbmi") &&
                                  __builtin_cpu_supports("avx512vnni") &&
                                  __builtin_cpu_supports("bmi2");
    return supported ? &kSignKernelsAVX512 : nullptr;
#else
    return nullptr;
#endif
}

const SignKernels* sign_kernels_avx2() {
#if FAISS_TURBO_WITH_AVX2
    static const bool supported =
            __builtin_cpu_supports("avx2") && __builtin_cpu_supports("bmi2");
    return supported ? &kSignKernelsAVX2 : nullptr;
#else
    return nullptr;
#endif
}

const SignKernels& sign_kernels_best() {
    static const SignKernels& best = best_of(
            sign_kernels_avx512(), sign_kernels_avx2(), sign_kernels_scalar());
    return best;
}

const FloatKernels* float_kernels_avx2() {
#if FAISS_TURBO_WITH_AVX2
    static const bool supported = __builtin_cpu_supports("avx2");
    return supported ? &kFloatKernelsAVX2 : nullptr;
#else
    return nullptr;
#endif
}

const FloatKernels* float_kernels_simd() {
    return use_avx2() ? float_kernels_avx2() : nullptr;
}

void dot_lanes_rows(
        const float* m, size_t nrows, const float* x, size_t d, float* out) {
    static const FloatKernels* k = float_kernels_simd();
    if (k) {
        k->dot_rows(m, nrows, x, d, out);
        return;
    }
    for (size_t r = 0; r < nrows; r++) {
        out[r] = dot_lanes(m + r * d, x, d);
    }
}

void dot_lanes_rows_block(
        const float* m,
        size_t nrows,
        const float* x,
        size_t nx,
        size_t d,
        float* out,
        size_t ldo) {
    static const FloatKernels* k = float_kernels_simd();
    if (k) {
        k->dot_rows_block(m, nrows, x, nx, d, out, ldo);
        return;
    }
    for (size_t i = 0; i < nx; i++) {
        for (size_t r = 0; r < nrows; r++) {
            out[i * ldo + r] = dot_lanes(m + r * d, x + i * d, d);
        }
    }
}

double canonical_dot_fast(const float* a, const float* b, size_t d) {
    static const FloatKernels* k = float_kernels_simd();
    return k ? k->canonical_dot(a, b, d) : canonical_dot(a, b, d);
}

void fwht_scaled_fast(float* x, size_t p, float scale, const float* signs) {
    static const FloatKernels* k = float_kernels_simd();
    if (k && p >= 8) {
        k->fwht_scaled(x, p, scale, signs);
        return;
    }
    fwht_inplace(x, p);
    for (size_t i = 0; i < p; i++) {
        x[i] *= scale;
        if (signs) {
            x[i] *= signs[i];
        }
    }
}

void lookup_centroids(
        const uint8_t* p,
        size_t nbytes,
        int nbits,
        const float* table,
        float* out) {
    static const FloatKernels* k = float_kernels_simd();
    if (k && nbits != 8) {
        k->lookup_centroids(p, nbytes, nbits, table, out);
        return;
    }
    lookup_centroids_scalar(p, nbytes, nbits, table, out);
}

void lookup_centroids_scalar(
        const uint8_t* p,
        size_t nbytes,
        int nbits,
        const float* table,
        float* out) {
    const int per = 8 / nbits;
    const uint32_t mask = (1u << nbits) - 1;
    for (size_t i = 0; i < nbytes; i++) {
        for (int l = 0; l < per; l++) {
            out[i * per + l] = table[(p[i] >> (l * nbits)) & mask];
        }
    }
}

void quantize_coords(
        const float* v,
        size_t n,
        const float* thresholds,
        int nbits,
        uint8_t* idx,
        const float* centroids,
        float* chat) {
    static const FloatKernels* k = float_kernels_simd();
    if (k && nbits >= 1 && nbits <= 4) {
        k->quantize(v, n, thresholds, nbits, idx, centroids, chat);
        return;
    }
    for (size_t i = 0; i < n; i++) {
        idx[i] = (uint8_t)quantize_coord(v[i], thresholds, nbits);
        if (chat) {
            chat[i] = centroids[idx[i]];
        }
    }
}

} // namespace faiss_turbo
