/**
 * IVF over TurboQuant codes in the fast-scan layout (factory
 * "IVF1024,TQmse4fs"): each inverted list holds its codes in blocks of 32
 * (BlockedInvertedLists, the only copy), scanned by 8-bit table lookups
 * built once per query (impl/ivf_scan_lut.h), then a short list re-scored
 * exactly, as the flat IndexTurboQuantFastScan does. Everything
 * else is IndexIVFTurboQuant's: the codec, residuals, training, search
 * parameters, range search (exact, on rows unpacked per list), merges,
 * remove_ids and files (row codes, blocks rebuilt on reading).
 *
 * Codecs: TQmse at 1, 1.5, 2 or 4 bits (see lut_scan_unsupported).
 */
#pragma once

#include <faiss_turbo/IndexIVFTurboQuant.h>
#include <faiss_turbo/impl/blocked_invlists.h>

namespace faiss_turbo {

struct IndexIVFTurboQuantFastScan : IndexIVFTurboQuant {
    /** @param quantizer coarse quantizer (any FAISS index), not owned
     *                   unless own_fields is set
     *  @param bits      1, 1.5, 2 or 4 (TQmse)
     *  other parameters as in IndexIVFTurboQuant
     */
    IndexIVFTurboQuantFastScan(
            faiss::Index* quantizer,
            size_t d,
            size_t nlist,
            float bits,
            faiss::MetricType metric = faiss::METRIC_L2,
            bool by_residual = kIVFTurboQuantByResidual,
            bool centered = false,
            bool debiased = true,
            RotationType rotation_type = RotationType::AUTO,
            uint64_t seed = 1234);

    IndexIVFTurboQuantFastScan();

    /// a deep copy (quantizer and lists included, owned)
    IndexIVFTurboQuantFastScan* clone() const override;

    /// the blocked lists (throws if they were replaced by other lists)
    const BlockedInvertedLists& blocked_lists() const;

    /** By default (TQ_SCAN_INT8) the lists are searched by chunks of
     * queries (impl/ivf_scan_lut.h): one reservoir of candidates per query
     * over all its lists, re-scored once (rerank_factor >= 1). Exact mode,
     * store_pairs and PARALLEL_MODE_NO_HEAP_INIT take IndexIVFTurboQuant's
     * path (FAISS's loop with our scanner). */
    void search_preassigned(
            idx_t n,
            const float* x,
            idx_t k,
            const idx_t* assign,
            const float* centroid_dis,
            float* distances,
            idx_t* labels,
            bool store_pairs,
            const faiss::IVFSearchParameters* params = nullptr,
            faiss::IndexIVFStats* stats = nullptr) const override;

   protected:
    IndexIVFTurboQuantFastScan(const IndexIVFTurboQuantFastScan&) = default;
};

} // namespace faiss_turbo
