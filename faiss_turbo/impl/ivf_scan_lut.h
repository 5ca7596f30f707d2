/**
 * The search of IndexIVFTurboQuantFastScan's lists (BlockedInvertedLists)
 * by 8-bit tables, instead of FAISS's scanner loop. Queries go in chunks
 * (at most 64); a chunk's lists are scanned in list order, each list's
 * blocks scored for up to kLutMaxQueries of its queries per pass (read
 * once for them). One query's tables serve all its lists (residual codes
 * through the lists' per-code <R c, c_hat>, BlockedInvertedLists::cdot),
 * except a list whose residual query is much shorter than the query
 * (ivf_list_needs_own_tables: data far from the origin), which gets
 * tables of the list's query;
 * the approximate scores of all its probed lists go to one reservoir of
 * the best kk = k * rerank_factor (keyed by list and offset), and only
 * those kk are re-scored exactly, once its lists are scanned
 * (rerank_factor < 1: the k best table scores are returned, ties by
 * label). The reservoir's set does not depend on the order of its offers,
 * so a batch answers as its queries one by one. FAISS's scanner cannot
 * wait for the end of a query: it re-scores a code when its list ends if
 * the code is still among the best so far, several times kk codes in all
 * (impl/ivf_scanner.h).
 *
 * The exact scores are those of the row index (the list's query is
 * prepared as TQScanner::set_list does); results follow FAISS's
 * conventions, ties at the k-th place by label.
 */
#pragma once

#include <cstddef>

#include <faiss/IndexIVF.h>
#include <faiss/impl/IDSelector.h>

#include <faiss_turbo/TurboQuantizer.h>
#include <faiss_turbo/impl/compat.h>

namespace faiss_turbo {

struct BlockedInvertedLists;
struct IVFCentroidTable;

struct IVFLutSearch {
    const TurboQuantizer& tq;
    const BlockedInvertedLists& lists;
    /// R c of the centroids when the codes are residuals, else null
    const IVFCentroidTable* table = nullptr;
    bool l2 = true;
    size_t nprobe = 1;
    size_t max_codes = 0; ///< 0: no limit (FAISS's IndexIVF::max_codes)
    float rerank_factor = 2;
    const faiss::IDSelector* sel = nullptr;

    /** n queries x (d floats), assign: n x nprobe list numbers (-1:
     * none); D, L: n x k. stats (may be null): nq, nlist, ndis added.
     * Runs on one thread inside a parallel region, else over chunks. */
    void
    search(size_t n,
           const float* x,
           const idx_t* assign,
           size_t k,
           float* D,
           idx_t* L,
           faiss::IndexIVFStats* stats) const;
};

} // namespace faiss_turbo
