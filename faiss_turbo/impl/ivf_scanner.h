/**
 * Scanning the inverted lists of IndexIVFTurboQuant: the InvertedListScanner
 * and the table of coarse centroids in the codec's rotated space that lets
 * residual codes be scored without rotating q - c for every list (the
 * identities are in IndexIVFTurboQuant.h).
 *
 * TQ_SCAN_EXACT: every code is scored by TurboQuantizer::score
 * (decode_rotated, dot_lanes, combine), the same arithmetic as the flat
 * scan, so an IVF index without residuals probing all lists returns exactly
 * the flat index's exact-mode results.
 *
 * TQ_SCAN_INT8 (SearchParametersTurboQuant.h): codes are scored in runs by
 * Int8CodeScorer; per query the scanner keeps the best kk =
 * max(k, ceil(k * rerank_factor)) int8 scores seen so far over the lists it
 * scans, and a code that entered them and is still there once its list is
 * scanned is re-scored with TurboQuantizer::score before FAISS's heap sees
 * it. A code of the final int8 top kk is never evicted, so the codes
 * re-scored are a superset of the int8 top kk of the probed lists, and the
 * scores returned are exact. Which superset depends on the order lists are
 * scanned in, so (unlike the exact mode) a near-miss can depend on that
 * order: parallel_mode 1 and 2 (a query's lists split among threads) may
 * differ from 0 and 3, which scan a query's lists in probe order on one
 * thread and so do not depend on the thread count. rerank_factor < 1: the
 * int8 scores go to FAISS's heap as they are. range search always scores
 * exactly.
 *
 * Lists in blocks (BlockedInvertedLists, IndexIVFTurboQuantFastScan): the
 * same, with the approximate scores from 8-bit tables (scan_lut.h) of the
 * query, less each code's stored <R c, c_hat>, or of the list's query
 * (built on the list's first run) where the list changed since its
 * refresh or ivf_list_needs_own_tables says so; the exact scores on row
 * codes unpacked from the blocks.
 */
#pragma once

#include <cstddef>
#include <memory>
#include <mutex>
#include <vector>

#include <faiss/IndexIVF.h>

#include <faiss_turbo/SearchParametersTurboQuant.h>
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

/// how a scanner scores codes in scan_codes (resolved by the index from
/// SearchParametersIVFTurboQuant or its search_defaults)
struct IVFScanOptions {
    int scan_mode = TQ_SCAN_EXACT; ///< TQScanMode
    float rerank_factor = kTQDefaultRerankFactor;
    /// k of the search, 0 if unknown: FAISS's ResultHandler interface
    /// (1.14+) does not give it to scan_codes, so int8 with re-scoring
    /// then falls back to the exact scan
    size_t k = 0;
    /// the index's ntotal: when kk >= ntotal every code would be
    /// re-scored, and the exact scan is cheaper
    size_t ntotal = 0;
};

/// whether a list's query differs from the query by R c: residual codes
/// meet R (q - c) always for L2, for inner products when they store
/// <c, r> (ip_offset; files of earlier versions do not)
inline bool ivf_list_shifted(
        const TurboQuantizer& tq, bool l2, const IVFCentroidTable* table) {
    return table && (l2 || tq.ip_offset);
}

/// whether a shifted list's query ly (d floats) is so much shorter than
/// the query (y2: ||y||^2 of the vector the query's 8-bit tables come
/// from) that those tables, their steps sized by the query, would rank the
/// list's codes coarsely: data far from the origin next to its spread.
/// The list's query then gets tables of its own.
bool ivf_list_needs_own_tables(const float* ly, size_t d, float y2);

/** out = the prepared query q (one query) seen from list l: y, sy (PROD)
 * and qconst from R c and S R c alone (identities in IndexIVFTurboQuant.h).
 * The one place that computes them, so that every search path scores a
 * list's codes alike. */
void ivf_list_query(
        const TurboQuantizer& tq,
        bool l2,
        const IVFCentroidTable& table,
        const TQQueries& q,
        size_t l,
        TQQueries& out);

struct BlockedInvertedLists;

/** A scanner for TurboQuant codes.
 *
 * @param table  the centroid table when the codes encode residuals, null
 *               when they encode the vectors themselves
 * @param l2     METRIC_L2 (distances, smaller is better) or inner products
 * @param lists  the index's lists when they are blocks (fast-scan: the
 *               int8 mode is then the 8-bit table scan), else null (rows)
 */
faiss::InvertedListScanner* new_ivf_tq_scanner(
        const TurboQuantizer& tq,
        bool l2,
        std::shared_ptr<const IVFCentroidTable> table,
        bool store_pairs,
        const faiss::IDSelector* sel,
        const IVFScanOptions& options = IVFScanOptions(),
        const BlockedInvertedLists* lists = nullptr);

} // namespace faiss_turbo
