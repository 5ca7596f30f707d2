/**
 * The sign pre-scan (SearchParametersTurboQuant::prescan): a first pass
 * that scores every code by the signs of its rotated coordinates alone,
 * keeps each query's best `prescan`, and runs the int8 scan (then the exact
 * re-scoring) over those only.
 *
 * Why: in a batch the int8 scan is bound by its multiply-adds, one per
 * coordinate (0.28 ns per 64 on the Zen 4 machine); the sign kernels
 * (simd/sign_kernels.h) score 16 coordinates per table lookup. A sign
 * keeps about 2/pi of a Gaussian coordinate's variance, so the first pass
 * ranks well enough to shortlist, not to answer: recall is set by the
 * shortlist's length, which the caller chooses.
 *
 * The first pass's estimate: every Lloyd-Max codebook of the coordinate
 * law has E[c | sign] = sign E|x| (its centroids are its cells' means), so
 * <y, c_hat> ~ E|x| <y, sign>, and for plain MSE with L2, ||c_hat||^2 is
 * replaced by its expectation, sum (1/d - mse). The rest is the codec's
 * own affine form (Int8BlockAffine): norms, centering, debiasing.
 * PROD's QJL term is left out of the first pass. Each query's bound in the
 * first pass starts from a sample of the codes (FirstPassSeeds in the
 * .cpp), which spares its reservoir most of the early entries and changes
 * no result.
 */
#pragma once

#include <cstddef>
#include <cstdint>
#include <vector>

#include <faiss/impl/IDSelector.h>

#include <faiss_turbo/TurboQuantizer.h>
#include <faiss_turbo/impl/blocked_codes.h>
#include <faiss_turbo/impl/compat.h>
#include <faiss_turbo/impl/scan_int8.h>
#include <faiss_turbo/impl/simd/sign_kernels.h>

namespace faiss_turbo {

/// throws unless the codec has MSE bits and symmetric codebooks (the
/// indexes check it whether this CPU applies the pre-scan or not)
void check_prescan_codec(const TurboQuantizer& tq);

/// where the signs are in a codec's codes, and the first pass's constants
struct SignCodec {
    SignLayout layout{};
    std::vector<uint32_t> byte, col_byte;
    std::vector<uint64_t> mask, col_mask;
    std::vector<uint8_t> present;
    std::vector<char> has_sign; ///< d: coordinate j has at least one bit
    double mean_abs = 0;        ///< E|x| of the coordinate law
    /// plain MSE with L2: per segment of the int8 codec, the V sum whose
    /// ||c_hat||^2 is the expected one (Int8Codec::vscale units)
    std::vector<int32_t> vexp;

    /// throws unless the codec has MSE bits and symmetric codebooks
    SignCodec(const TurboQuantizer& tq, const Int8Codec& codec);
};

/// queries as the first pass scores them
struct SignQueries {
    size_t n = 0;
    std::vector<int8_t> tables; ///< n x layout.ncols x kSignColumnBytes
    std::vector<float> unit;    ///< n: <y, c_hat> ~ c0 + unit * sum

    /// n rotated queries y (n x d, TQQueries::y)
    void prepare(const SignCodec& sc, const float* y, size_t n);
};

/// whether searches apply SearchParametersTurboQuant::prescan on this CPU:
/// where the sign kernels are SIMD (AVX2 + BMI2, or AVX-512 VBMI + VNNI +
/// BMI2, as FAISS_TURBO_SIMD allows). The portable ones made the pre-scan
/// 5-10x slower than the scan it replaces (bench_kernels on the Zen 4
/// machine, commit d1d44ed), so searches there scan every code
bool prescan_supported();

/// whether a flat index's search of n queries takes the pre-scan: prescan
/// > 0, n >= kTQPrescanMinQueries, prescan_supported() and the int8 scan.
/// With prescan > 0 it first throws, on every CPU, unless the codec has
/// signs to pre-scan (check_prescan_codec), so errors do not depend on it
bool prescan_applies(const TurboQuantizer& tq, int prescan, size_t n);

/** k nearest as scan_knn_int8 (same conventions, the same results when
 * prescan >= ncodes), after a first pass that keeps each query's best
 * max(prescan, ceil(k * rerank_factor)) codes by their signs. Codes: rows
 * (codes, ncodes) or blocked (codes null). Results depend neither on the
 * thread count nor on the batch. seed: whether the first pass starts its
 * bounds from a sample of the codes (faster; the same results, which the
 * tests check with seed = false).
 */
void scan_knn_prescan(
        const TurboQuantizer& tq,
        const uint8_t* codes,
        const BlockedCodes* blocked,
        size_t ncodes,
        const TQQueries& q,
        size_t k,
        float rerank_factor,
        size_t prescan,
        float* distances,
        idx_t* labels,
        const faiss::IDSelector* sel,
        const Int8Kernels& kernels = int8_kernels_best(),
        const SignKernels& sign_kernels = sign_kernels_best(),
        bool seed = true);

} // namespace faiss_turbo
