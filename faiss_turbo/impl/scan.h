/**
 * Exact scans of TurboQuant codes: every code scored with the codec's
 * estimator (TurboQuantizer::combine), top-k or range selection. Used by the
 * flat index; the IVF scanner scores the same way.
 *
 * Results do not depend on the thread count: each score is computed by the
 * same arithmetic whatever the partition, and ties are broken by label.
 */
#pragma once

#include <cstddef>
#include <cstdint>
#include <utility>
#include <vector>

#include <faiss/impl/AuxIndexStructures.h>
#include <faiss/impl/IDSelector.h>

#include <faiss_turbo/TurboQuantizer.h>
#include <faiss_turbo/impl/compat.h>

namespace faiss_turbo {

/// k nearest (L2) or largest inner products, FAISS's conventions: sorted,
/// label -1 and +inf (L2) / -inf (IP) when fewer than k results
void scan_knn(
        const TurboQuantizer& tq,
        const uint8_t* codes,
        size_t ncodes,
        const TQQueries& queries,
        size_t k,
        float* distances,
        idx_t* labels,
        const faiss::IDSelector* sel);

/// all codes with distance < radius (L2) or inner product > radius (IP)
void scan_range(
        const TurboQuantizer& tq,
        const uint8_t* codes,
        size_t ncodes,
        const TQQueries& queries,
        float radius,
        faiss::RangeSearchResult* result,
        const faiss::IDSelector* sel);

/// sort a heap of k results into FAISS's output order, the empty slots last
/// with label -1 and +inf / -inf
void finalize_topk(bool l2, size_t k, float* vals, idx_t* ids);

/// fill k slots with the empty value (+inf / -inf, -1): the heap's start
void init_topk(bool l2, size_t k, float* vals, idx_t* ids);

/// offer (val, id) to a heap of size k. Ties at the k-th place are FAISS's
/// heaps' (CMax / CMin::cmp2): the smaller id stays for L2, the larger for
/// IP, as in FAISS's own IVF result heaps that our IVF scanner fills
void push_topk(bool l2, size_t k, float* vals, idx_t* ids, float v, idx_t id);

/** The kk best (score, id) of a stream, ties as push_topk's: the same set
 * as a heap of kk, for far fewer mispredicted branches.
 * An offer that beats the bound is appended; a buffer of 2 kk is cut back to
 * its kk best, which tightens the bound: the kk-th best score is selected on
 * 4-byte keys (a branch-free quickselect), then one pass keeps the better
 * entries and, of those equal to it, the best by id. On SIFT at k = 64 the
 * heap took 640 replacements per query of 7 levels each, a fifth of the
 * search.
 */
struct TopkReservoir {
    bool l2 = true;
    size_t kk = 0;
    float bound;         ///< offers must beat (bound, bound_id)
    idx_t bound_id = -1; ///< (+inf / -inf, -1) until the first cut
    std::vector<std::pair<float, idx_t>> buf;

    TopkReservoir(bool l2, size_t kk);

    bool beats(float v, idx_t id) const {
        return l2 ? v < bound || (v == bound && id < bound_id)
                  : v > bound || (v == bound && id > bound_id);
    }

    /// a candidate that beats() the bound
    void add(float v, idx_t id) {
        buf.emplace_back(v, id);
        if (buf.size() == 2 * kk) {
            cut();
        }
    }

    /// keep the kk best, the bound becomes the worst of them
    void cut();

    /// the kk best into vals / ids (kk slots, unordered, empty ones as
    /// init_topk fills them): finalize_topk sorts them
    void finish(float* vals, idx_t* ids);
};

} // namespace faiss_turbo
