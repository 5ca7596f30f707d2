#include <faiss_turbo/IndexHNSWTurboQuant.h>

#include <algorithm>
#include <cmath>
#include <vector>

#include <faiss/impl/FaissAssert.h>

#include <faiss_turbo/IndexTurboQuant.h>
#include <faiss_turbo/IndexTurboQuantFastScan.h>
#include <faiss_turbo/impl/kernels.h>

namespace faiss_turbo {

namespace {

/// the codec of our storage (rows or fast-scan blocks), else null
const TurboQuantizer* storage_codec(const faiss::Index* storage) {
    if (auto flat = dynamic_cast<const IndexTurboQuant*>(storage)) {
        return &flat->tq;
    }
    if (auto fs = dynamic_cast<const IndexTurboQuantFastScan*>(storage)) {
        return &fs->tq;
    }
    return nullptr;
}

/// FAISS's constructor reads storage->d before any check. Ours only (the
/// queries' checks are theirs), and empty: the graph links what is added
/// through it, and a file of a graph smaller than its storage is refused
faiss::Index* checked_storage(faiss::Index* storage) {
    FAISS_THROW_IF_NOT_MSG(storage, "IndexHNSWTurboQuant: null storage");
    FAISS_THROW_IF_NOT_MSG(
            storage_codec(storage),
            "IndexHNSWTurboQuant: the storage must be an IndexTurboQuant "
            "or IndexTurboQuantFastScan (faiss.IndexHNSW takes others)");
    FAISS_THROW_IF_NOT_FMT(
            storage->ntotal == 0,
            "IndexHNSWTurboQuant: the storage holds %ld vectors; it must be "
            "empty (add through the HNSW index, which links them)",
            (long)storage->ntotal);
    return storage;
}

/// FAISS's graph crashes (M = 0) or loops forever (M = 1) below 2 links
int checked_m(int M) {
    FAISS_THROW_IF_NOT_FMT(M >= 2, "IndexHNSWTurboQuant: M=%d must be >= 2", M);
    return M;
}

} // namespace

IndexHNSWTurboQuant::IndexHNSWTurboQuant(faiss::Index* storage, int M)
    : faiss::IndexHNSW(checked_storage(storage), checked_m(M)) {}

void IndexHNSWTurboQuant::reconstruct_n(
        idx_t i0, idx_t ni, float* recons) const {
    FAISS_THROW_IF_NOT_MSG(storage, "HNSW reconstruct_n: no storage");
    FAISS_THROW_IF_NOT_FMT(
            i0 >= 0 && ni >= 0 && i0 + ni <= ntotal,
            "reconstruct_n(%ld, %ld) out of range: ntotal=%ld",
            (long)i0,
            (long)ni,
            (long)ntotal);
    storage->reconstruct_n(i0, ni, recons);
}

void IndexHNSWTurboQuant::check_queries(
        idx_t n, const float* x, const char* what) const {
    FAISS_THROW_IF_NOT_MSG(storage, "HNSW search: no storage");
    FAISS_THROW_IF_NOT_FMT(n >= 0, "%s: negative number of queries", what);
    if (n > 0) {
        FAISS_THROW_IF_NOT_FMT(x, "%s: null queries", what);
    }
    if (metric_type != faiss::METRIC_L2) {
        check_ip_norms(n, d, x, what, "query"); // NaN / Inf included
        return;
    }
    check_finite(n, d, x, what, "query");
    const TurboQuantizer* tq = storage_codec(storage);
    if (tq) {
        // the L2 constant of the storage's own query preparation (the
        // centered query's squared norm in float), as its search tests
        // it (its distance computer refuses only NaN and Inf); no
        // rotation, and a block of queries at a time: a large batch is
        // not copied whole
        constexpr idx_t kBlock = 256;
        std::vector<float> qc, qconst(kBlock);
        for (idx_t i0 = 0; i0 < n; i0 += kBlock) {
            const idx_t nb = std::min(kBlock, n - i0);
            tq->center_queries(nb, x + i0 * d, true, qc, qconst.data());
            for (idx_t i = 0; i < nb; i++) {
                FAISS_THROW_IF_NOT_FMT(
                        std::isfinite(qconst[i]),
                        "%s: query %zd is too long for L2 distances in "
                        "float (its squared norm overflows)",
                        what,
                        (size_t)(i0 + i));
            }
        }
    } else {
        check_l2_norms(n, d, x, what, "query");
    }
}

void IndexHNSWTurboQuant::search(
        idx_t n,
        const float* x,
        idx_t k,
        float* distances,
        idx_t* labels,
        const faiss::SearchParameters* params) const {
    check_queries(n, x, "HNSW search");
    faiss::IndexHNSW::search(n, x, k, distances, labels, params);
}

void IndexHNSWTurboQuant::range_search(
        idx_t n,
        const float* x,
        float radius,
        faiss::RangeSearchResult* result,
        const faiss::SearchParameters* params) const {
    check_queries(n, x, "HNSW range_search");
    check_radius(radius, "HNSW range_search");
    faiss::IndexHNSW::range_search(n, x, radius, result, params);
}

} // namespace faiss_turbo
