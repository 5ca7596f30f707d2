/**
 * Search-time options of IndexTurboQuant (pass to search() as params).
 */
#pragma once

#include <faiss/Index.h>

namespace faiss_turbo {

enum TQScanMode : int {
    /// every code decoded to floats and scored with the estimator
    /// (TurboQuantizer::score): the reference
    TQ_SCAN_EXACT = 0,
    /// integer dot products (impl/scan_int8.h), then the best
    /// k * rerank_factor re-scored exactly
    TQ_SCAN_INT8 = 1,
};

struct SearchParametersTurboQuant : faiss::SearchParameters {
    int scan_mode = TQ_SCAN_INT8;
    /// TQ_SCAN_INT8: candidates re-scored with the exact estimator, as a
    /// multiple of k (>= 1; the scores returned are then exact). Below 1:
    /// no re-scoring, the int8 scores are returned.
    float rerank_factor = 4;
};

} // namespace faiss_turbo
