/**
 * Search-time options of IndexTurboQuant and IndexIVFTurboQuant (pass to
 * search() as params).
 */
#pragma once

#include <cmath>

#include <faiss/Index.h>
#include <faiss/IndexIVF.h>
#include <faiss/impl/FaissAssert.h>

namespace faiss_turbo {

enum TQScanMode : int {
    /// every code decoded to floats and scored with the estimator
    /// (TurboQuantizer::score): the reference
    TQ_SCAN_EXACT = 0,
    /// integer dot products (impl/scan_int8.h), then the best
    /// k * rerank_factor re-scored exactly
    TQ_SCAN_INT8 = 1,
};

/// default re-scoring factor: 10-recall@10 of the int8 scan against the
/// exact estimator is 1.000 from 2 on (random unit vectors d = 1536, 2 and
/// 4 bits, 100k codes; SIFT and text embeddings at k = 10 and 64 already
/// from 1.5: `bench_kernels --d 1536`), and the heap of the k * factor best
/// and their re-scoring are most of the time at small d and large k
constexpr float kTQDefaultRerankFactor = 2;

/// searches of fewer queries than this skip the sign pre-scan
/// (SearchParametersTurboQuant::prescan): the scan is then bound by
/// reading the codes, which the pre-scan reads too, and building its tiles
/// costs more than it saves (bench_kernels, 100k codes, L = 250-500, d =
/// 1536 / 384: 4x the int8 scan's time at nq = 1, 0.91-1.08x at 16,
/// 1.00-1.16x at 32, 1.10-1.28x at 64, 1.4-2.0x at 1000; with the first
/// pass's seeds, 0.94-1.43x at 32 for L = 250-1000)
constexpr int kTQPrescanMinQueries = 32;

struct SearchParametersTurboQuant : faiss::SearchParameters {
    int scan_mode = TQ_SCAN_INT8;
    /// TQ_SCAN_INT8: candidates re-scored with the exact estimator, as a
    /// multiple of k (>= 1; the scores returned are then exact). Below 1:
    /// no re-scoring, the int8 scores are returned.
    float rerank_factor = kTQDefaultRerankFactor;
    /// TQ_SCAN_INT8, k-NN search of the flat indexes: when > 0, a first
    /// pass ranks every code by the signs of its rotated coordinates (16
    /// per table lookup, impl/scan_prescan.h), and only each query's best
    /// max(prescan, k * rerank_factor) go on to the int8 scan. Faster for
    /// batches, at a recall that this shortlist's length sets
    /// (bench_kernels prints both). Calls with fewer than
    /// kTQPrescanMinQueries queries, and CPUs without its SIMD kernels
    /// (prescan_supported(): AVX2 + BMI2), scan every code instead. On
    /// IndexTurboQuantFastScan the second pass is the int8 scan, also at
    /// the widths where it would otherwise take its table scan. 0: off. IVF
    /// indexes refuse it; range_search ignores it
    int prescan = 0;
};

/// what the sign pre-scan did, summed over searches since reset(), as
/// FAISS's IndexIVFStats: one global, tq_prescan_stats (Python:
/// faiss_turbo.cvar.tq_prescan_stats), added to once per batch of queries,
/// as FAISS's are not meant for concurrent searches
struct TQPrescanStats {
    size_t nq = 0;         ///< queries that took the pre-scan
    size_t nseeded = 0;    ///< of them, those whose first pass had a seed
    size_t nrescanned = 0; ///< seeded queries scanned again without one
    size_t nentries = 0;   ///< entries into the first pass's reservoirs

    void reset() {
        *this = TQPrescanStats();
    }
};

extern TQPrescanStats tq_prescan_stats;

/** The same options for IndexIVFTurboQuant, with FAISS's IVF ones (nprobe,
 * max_codes, sel, ...: as FAISS, nprobe is then this object's, not the
 * index's). With TQ_SCAN_INT8 the scanner keeps, per query, the best
 * ceil(k * rerank_factor) int8 scores seen so far over the probed lists and
 * re-scores exactly the codes that enter them (impl/ivf_scanner.h): a
 * superset of the final int8 top k * rerank_factor, so results are at least
 * as good as the flat index's int8 scan with the same factor over the same
 * codes, and the scores returned are exact (rerank_factor >= 1).
 */
struct SearchParametersIVFTurboQuant : faiss::SearchParametersIVF {
    int scan_mode = TQ_SCAN_INT8;
    float rerank_factor = kTQDefaultRerankFactor;
};

/// throws, naming `what`, unless scan_mode and rerank_factor are valid;
/// the one check of every search path (flat, IVF, the int8 scan itself)
inline void
check_scan_options(int scan_mode, float rerank_factor, const char* what) {
    FAISS_THROW_IF_NOT_FMT(
            scan_mode == TQ_SCAN_EXACT || scan_mode == TQ_SCAN_INT8,
            "%s: unknown scan_mode %d (0 = exact, 1 = int8)",
            what,
            scan_mode);
    FAISS_THROW_IF_NOT_FMT(
            std::isfinite(rerank_factor) && rerank_factor >= 0,
            "%s: rerank_factor=%g must be >= 0",
            what,
            rerank_factor);
}

/// throws, naming `what`, unless prescan is valid with scan_mode
inline void check_prescan(int prescan, int scan_mode, const char* what) {
    FAISS_THROW_IF_NOT_FMT(
            prescan >= 0, "%s: prescan=%d must be >= 0", what, prescan);
    FAISS_THROW_IF_NOT_FMT(
            prescan == 0 || scan_mode == TQ_SCAN_INT8,
            "%s: prescan=%d needs scan_mode 1 (int8), not %d",
            what,
            prescan,
            scan_mode);
}

/// a flat index's options for one search: params when they are ours, else
/// the index's defaults; checked. The IVF class's are refused: their
/// scan_mode and rerank_factor would be silently the defaults'
inline const SearchParametersTurboQuant& flat_search_options(
        const faiss::SearchParameters* params,
        const SearchParametersTurboQuant& defaults) {
    FAISS_THROW_IF_NOT_MSG(
            !dynamic_cast<const SearchParametersIVFTurboQuant*>(params),
            "search: SearchParametersIVFTurboQuant is for IVF indexes; a "
            "flat index takes SearchParametersTurboQuant");
    const auto* tp = dynamic_cast<const SearchParametersTurboQuant*>(params);
    const SearchParametersTurboQuant& opt = tp ? *tp : defaults;
    check_scan_options(opt.scan_mode, opt.rerank_factor, "search");
    check_prescan(opt.prescan, opt.scan_mode, "search");
    return opt;
}

} // namespace faiss_turbo
