/**
 * The fast-scan search (IndexTurboQuantFastScan): codes in blocks
 * (impl/blocked_codes.h) scored by 8-bit table lookups
 * (simd/lut_kernels.h), then a short list re-scored with the exact
 * estimator.
 *
 * A slot is 4 bits of a code's MSE stream; its table for a rotated query y
 * is L_s[v] = sum over the slot's coordinates j of y_j c(index_j(v)), so
 * that <y, c_hat> = sum_s L_s[v_s]. The tables are quantized with one step
 * per query: u = round((L - min_s L) / delta), delta = max_s span_s / 255,
 * so <y, c_hat> ~ delta sum_s u_s + sum_s min_s L, within nslots * delta / 2
 * (lut_quantize's bound, tested). The rest of the estimator (norms, beta,
 * ||c_hat||^2, moff) is the codec's own TurboQuantizer::combine_form.
 *
 * Compared with the int8 scan (scan_int8.h), a query's tables serve every
 * code and the work per code shrinks with the bits: one lookup per 4 bits,
 * where the int8 scan decodes every coordinate and multiplies it.
 */
#pragma once

#include <cstddef>
#include <cstdint>
#include <string>
#include <vector>

#include <faiss/impl/IDSelector.h>

#include <faiss_turbo/TurboQuantizer.h>
#include <faiss_turbo/impl/blocked_codes.h>
#include <faiss_turbo/impl/compat.h>
#include <faiss_turbo/impl/simd/lut_kernels.h>

namespace faiss_turbo {

/// empty when the fast-scan layout takes this codec, else why not (TQmse
/// whose widths are 1, 2 or 4 bits, so that no coordinate crosses a slot)
std::string lut_scan_unsupported(const TurboQuantizer& tq);

/// one query's float tables: entry v of slot s at out[16 s + v],
/// 32 * mse_bytes floats
void lut_float_tables(const TurboQuantizer& tq, const float* y, float* out);

/// the float tables (nslots x 16) as 8-bit ones, with <y, c_hat> ~
/// delta * sum + bias
void lut_quantize(
        const float* tables,
        size_t nslots,
        uint8_t* lut,
        float& delta,
        float& bias);

/// one query's 8-bit tables (lut_float_tables, then lut_quantize)
struct LutTables {
    std::vector<uint8_t> lut; ///< 32 * mse_bytes
    float delta = 1, bias = 0;
    bool built = false;

    /// ftables: scratch for the float tables
    void
    build(const TurboQuantizer& tq,
          const float* y,
          std::vector<float>& ftables);
};

/// queries as 8-bit tables
struct LutQueries {
    size_t n = 0;
    size_t lut_bytes = 0;      ///< 32 * mse_bytes per query
    std::vector<uint8_t> luts; ///< n x lut_bytes
    std::vector<float> delta, bias;

    void prepare(const TurboQuantizer& tq, const TQQueries& q);
};

/** Whether the table scan is the faster one for nq queries, else the int8
 * scan over rows unpacked per tile (scan_knn_int8 on BlockedCodes). A
 * table lookup costs the same per 4 bits whatever the width, so its cost
 * per code grows with the bits, while the int8 tiles decode a code once
 * for many queries and multiply 8-bit values whatever the width: one query
 * at a time, or at 1, 1.5 and 2 bits, the tables win; batched at 4 bits,
 * the tiles (measured by bench_kernels' fast-scan lines and the harness).
 */
bool lut_scan_preferred(const TurboQuantizer& tq, size_t nq);

/** k nearest over the table scores, then (rerank_factor >= 1) the
 * ceil(k * rerank_factor) best re-scored with TurboQuantizer::score and the
 * k best kept: scores returned are then exact. rerank_factor < 1: the
 * table scores are returned. Same conventions as scan_knn (sorted, -1 /
 * inf padding, ties by label, thread-count independent).
 */
void scan_knn_lut(
        const TurboQuantizer& tq,
        const BlockedCodes& codes,
        const TQQueries& queries,
        size_t k,
        float rerank_factor,
        float* distances,
        idx_t* labels,
        const faiss::IDSelector* sel,
        const LutKernels& kernels = lut_kernels_best());

/// scan_knn (every code scored exactly) over blocked codes
void scan_knn_blocked_exact(
        const TurboQuantizer& tq,
        const BlockedCodes& codes,
        const TQQueries& queries,
        size_t k,
        float* distances,
        idx_t* labels,
        const faiss::IDSelector* sel);

} // namespace faiss_turbo
