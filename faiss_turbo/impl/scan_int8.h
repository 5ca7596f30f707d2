/**
 * The int8 scan: TurboQuant codes scored with integer dot products.
 *
 * The scalar codebook is shared by every coordinate, so <y, c_hat> is a dot
 * product between the rotated query and one small table applied to the
 * indices. Both sides become integers:
 *   query: q8 = round(y / s_q) in [-63, 63], s_q = max |y| / 63 (one
 *          scale per query; S y of PROD has its own)
 *   codes: u = round(c / s_c) + 64 in [0, 128], one scale per codebook
 * so per segment (codebook) <y, c_hat> ~ s_q s_c (sum u q8 - 64 sum q8);
 * PROD's signs are the table {0, 1}: <S y, sgn> ~ s (2 sum b q8 - sum q8).
 * Plain MSE with L2 also needs ||c_hat||^2: a second table v ~ c^2 / s_v.
 * The kernels (simd/int8_kernels.h) compute the integer sums exactly, so
 * results depend neither on the instruction set nor on the thread count;
 * TurboQuantizer::combine turns them into the estimator's score.
 *
 * The two roundings cost much less than the codec's own error, and
 * scan_knn_int8 can re-score a short list with the exact estimator
 * (TurboQuantizer::score), so that the scores it returns are exact.
 */
#pragma once

#include <cstddef>
#include <cstdint>
#include <vector>

#include <faiss/impl/IDSelector.h>

#include <faiss_turbo/TurboQuantizer.h>
#include <faiss_turbo/impl/blocked_codes.h>
#include <faiss_turbo/impl/compat.h>
#include <faiss_turbo/impl/simd/int8_kernels.h>

namespace faiss_turbo {

/// the int32 sums bound d: 128 * 63 * d < 2^31
constexpr size_t kInt8MaxDim = 65536;

/// whether the int8 path applies to this codec
bool int8_scan_supported(const TurboQuantizer& tq);

/// the integer tables of one codec and the factors that make the kernels'
/// sums the estimator's dot products
struct Int8Codec {
    const TurboQuantizer* tq = nullptr;
    const Int8Kernels* kernels = nullptr;
    Int8Layout layout{};
    bool sign[kInt8MaxSegments] = {};     ///< PROD's sign segment
    size_t coord0[kInt8MaxSegments] = {}; ///< first rotated coordinate
    double cscale[kInt8MaxSegments] = {}; ///< s_c (MSE segments)
    double vscale[kInt8MaxSegments] = {}; ///< s_v (||c_hat||^2)
    /// MSE coordinates with a 0-bit codebook (PROD below 2 bits): c_hat is
    /// the constant zero_c there
    size_t zero_begin = 0, zero_end = 0;
    float zero_c = 0;

    int mult[kInt8MaxSegments] = {}; ///< t = mult * U - off (see below)
    /// byte of coordinate j of segment s in a row (int8_kernel_position)
    std::vector<uint32_t> pos[kInt8MaxSegments];
    bool l2 = true;

    /// @param l2  the metric (plain MSE with L2 needs ||c_hat||^2)
    Int8Codec(
            const TurboQuantizer& tq,
            bool l2,
            const Int8Kernels& kernels = int8_kernels_best());
};

/// queries in the kernels' order, with their scales. Segment s contributes
/// w * t to its dot product, t = mult * U - off: mult = 1, off = 64 sum q8
/// for MSE segments, mult = 2, off = sum q8 for PROD's signs.
struct Int8Queries {
    size_t n = 0;
    size_t row = 0;
    std::vector<int8_t> q8;   ///< n x row
    std::vector<float> w;     ///< n x kInt8MaxSegments
    std::vector<int32_t> off; ///< n x kInt8MaxSegments
    std::vector<float> c0;    ///< n: <y, c_hat> on 0-bit coordinates

    /// query qi of q into slot oi (resize first)
    void set(const Int8Codec& codec, const TQQueries& q, size_t qi, size_t oi);

    void resize(const Int8Codec& codec, size_t n);

    /// all queries of q
    void prepare(const Int8Codec& codec, const TQQueries& q);
};

/** TurboQuantizer::combine is affine in its two dot products: for one
 * code, score = qconst + b + ac * dot_c + as * dot_s. The coefficients
 * come from the codec's formula itself, TurboQuantizer::affine_form
 * (inner products at unit dots; for L2, b is the ||x||^2 term and the dots
 * count -2 times), so the estimator stays in the codec. Computed once per
 * block of codes and shared by every query scored on it. */
struct Int8BlockAffine {
    std::vector<float> b, ac, as;

    explicit Int8BlockAffine(size_t n = 0) : b(n), ac(n), as(n) {}

    /// codes i < n; V: the block's V sums (n x nseg), whose scaled sum is
    /// ||c_hat||^2 for plain MSE with L2, or null
    void
    set(const Int8Codec& codec,
        const uint8_t* codes,
        size_t n,
        const int32_t* V);
};

/** The estimator's scores of n codes for prepared query pi, from the
 * codes' U sums for that query (n x nseg, the kernels' query-major
 * order). One function for every caller, so that a code gets the same
 * int8 score whatever scanned it. The loop is specialized by segment
 * count so that the compiler vectorizes it: at small d, this per-pair
 * work costs as much as the integer dot products themselves.
 */
void int8_block_scores(
        const Int8Codec& codec,
        const Int8Queries& p,
        size_t pi,
        float qconst,
        const Int8BlockAffine& a,
        const int32_t* U,
        size_t n,
        float* out);

/** One query at a time, for scanners (e.g. an InvertedListScanner):
 * set_query() once per query, or again whenever the query changes (an IVF
 * list's residual query), then score() or score_run(). Scores approximate
 * TurboQuantizer::score. Not thread-safe (scratch buffers): one per scanner.
 */
struct Int8CodeScorer {
    Int8Codec codec;

    Int8CodeScorer(
            const TurboQuantizer& tq,
            bool l2,
            const Int8Kernels& kernels = int8_kernels_best());

    /// row qi of q (only y, sy, qconst and l2 are read; copied)
    void set_query(const TQQueries& q, size_t qi);

    /// one code (code_size bytes are read)
    float score(const uint8_t* code) const;

    /// n consecutive codes (n * code_size bytes are read) into out
    void score_run(const uint8_t* codes, size_t n, float* out) const;

   private:
    TQQueries q1;
    Int8Queries p1;
    mutable std::vector<uint8_t> tile, pad;
    mutable std::vector<int32_t> usum, vsum;
    mutable Int8BlockAffine aff;
};

/** k nearest over the int8 scores, then (rerank_factor >= 1) the
 * ceil(k * rerank_factor) best re-scored with TurboQuantizer::score and the
 * k best kept: scores returned are then exact. rerank_factor < 1: the int8
 * scores are returned. Same conventions as scan_knn (sorted, -1 / inf
 * padding, ties by label, thread-count independent).
 */
void scan_knn_int8(
        const TurboQuantizer& tq,
        const uint8_t* codes,
        size_t ncodes,
        const TQQueries& queries,
        size_t k,
        float rerank_factor,
        float* distances,
        idx_t* labels,
        const faiss::IDSelector* sel,
        const Int8Kernels& kernels = int8_kernels_best());

/// scan_knn_int8 over codes in the fast-scan layout: each tile's rows are
/// unpacked from their block (a cost shared by every query of the tile)
void scan_knn_int8(
        const TurboQuantizer& tq,
        const BlockedCodes& codes,
        const TQQueries& queries,
        size_t k,
        float rerank_factor,
        float* distances,
        idx_t* labels,
        const faiss::IDSelector* sel,
        const Int8Kernels& kernels = int8_kernels_best());

} // namespace faiss_turbo
