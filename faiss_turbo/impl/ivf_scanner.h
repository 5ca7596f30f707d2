/**
 * Scanning the inverted lists of IndexIVFTurboQuant: the InvertedListScanner
 * and the table of coarse centroids in the codec's rotated space that lets
 * residual codes be scored without rotating q - c for every list (the
 * identities are in IndexIVFTurboQuant.h).
 *
 * Every code is scored by TurboQuantizer::score (decode_rotated, dot_lanes,
 * combine), the same arithmetic as the flat scan, so an IVF index without
 * residuals probing all lists returns exactly the flat index's results.
 */
#pragma once

#include <cstddef>
#include <memory>
#include <mutex>
#include <vector>

#include <faiss/IndexIVF.h>

#include <faiss_turbo/TurboQuantizer.h>
#include <faiss_turbo/impl/compat.h>

namespace faiss_turbo {

/// R c_l (and S R c_l for PROD) for every coarse centroid c_l
struct IVFCentroidTable {
    size_t nlist = 0;
    size_t d = 0;
    std::vector<float> rc;  ///< nlist x d: R c_l
    std::vector<float> src; ///< nlist x d, PROD only: S R c_l
    /// what it was built from, to notice a replaced quantizer
    const faiss::Index* quantizer = nullptr;
};

std::shared_ptr<const IVFCentroidTable> build_ivf_centroid_table(
        const TurboQuantizer& tq, const faiss::Index& quantizer, size_t nlist);

/// A table built on first use and shared by all scanners (and threads).
/// Copying a cache shares the table; the mutex is never copied.
struct IVFCentroidCache {
    IVFCentroidCache() = default;
    IVFCentroidCache(const IVFCentroidCache& other);
    IVFCentroidCache& operator=(const IVFCentroidCache& other);

    std::shared_ptr<const IVFCentroidTable>
    get(const TurboQuantizer& tq,
        const faiss::Index& quantizer,
        size_t nlist) const;

    void reset();

   private:
    mutable std::mutex mutex;
    mutable std::shared_ptr<const IVFCentroidTable> table;
};

/** A scanner for TurboQuant codes.
 *
 * @param table  the centroid table when the codes encode residuals, null
 *               when they encode the vectors themselves
 * @param l2     METRIC_L2 (distances, smaller is better) or inner products
 */
faiss::InvertedListScanner* new_ivf_tq_scanner(
        const TurboQuantizer& tq,
        bool l2,
        std::shared_ptr<const IVFCentroidTable> table,
        bool store_pairs,
        const faiss::IDSelector* sel);

} // namespace faiss_turbo
