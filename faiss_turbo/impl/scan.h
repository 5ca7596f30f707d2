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

/// offer (val, id) to a heap of size k, ties broken by the smaller id
void push_topk(bool l2, size_t k, float* vals, idx_t* ids, float v, idx_t id);

} // namespace faiss_turbo
