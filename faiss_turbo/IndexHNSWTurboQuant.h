/**
 * FAISS's IndexHNSW over TurboQuant storage (factory "HNSW32,TQmse4"),
 * with the queries checked before the graph search starts.
 *
 * FAISS's IndexHNSW::search sets each query on the storage's distance
 * computer inside its OpenMP region: a query with a NaN or Inf (or one too
 * long for L2 distances in float) that the computer refuses there ends the
 * process, since an exception cannot leave an OpenMP region. Here the
 * whole batch is checked first, with the storage's own messages, and the
 * search is FAISS's. Files store it as an IndexHNSW (index_io.h); reading
 * gives this class back.
 */
#pragma once

#include <utility>

#include <faiss/IndexHNSW.h>

#include <faiss_turbo/impl/compat.h>

namespace faiss_turbo {

struct IndexHNSWTurboQuant : faiss::IndexHNSW {
    /// empty, for readers
    IndexHNSWTurboQuant() = default;

    /// storage: one of our flat indexes, empty (owned when own_fields is
    /// set)
    explicit IndexHNSWTurboQuant(faiss::Index* storage, int M = 32);

    void
    search(idx_t n,
           const float* x,
           idx_t k,
           float* distances,
           idx_t* labels,
           const faiss::SearchParameters* params = nullptr) const override;

    void range_search(
            idx_t n,
            const float* x,
            float radius,
            faiss::RangeSearchResult* result,
            const faiss::SearchParameters* params = nullptr) const override;

    /// the storage's, range checked first (FAISS's would reach the storage
    /// inside a parallel loop)
    void reconstruct_n(idx_t i0, idx_t ni, float* recons) const override;

#ifndef SWIG
    /// FAISS's search_level_0 (not virtual, so hidden here: calls through
    /// this class check the queries first), whatever its FAISS signature
    template <class... Rest>
    void search_level_0(idx_t n, const float* x, Rest&&... rest) const {
        check_queries(n, x, "HNSW search_level_0");
        faiss::IndexHNSW::search_level_0(n, x, std::forward<Rest>(rest)...);
    }
#endif

    /// throws, naming the query, unless the n queries can be searched:
    /// finite, and for our flat storage what its own search demands of
    /// them (the L2 range of the centered query)
    void check_queries(idx_t n, const float* x, const char* what) const;
};

} // namespace faiss_turbo
