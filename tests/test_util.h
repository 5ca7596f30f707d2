#pragma once

#include <cstdint>
#include <memory>
#include <random>
#include <string>
#include <vector>

#include <gtest/gtest.h>

#include <faiss/Index.h>
#include <faiss/impl/FaissException.h>

#include <faiss_turbo/impl/compat.h>

namespace faiss_turbo {
struct IndexTurboQuant;
enum class TQVariant : int;
} // namespace faiss_turbo

namespace tqtest {

using faiss_turbo::idx_t;

/// a codec shape of the scan tests
struct TQCase {
    size_t d;
    faiss_turbo::TQVariant v;
    float bits;
    bool debiased;
};

/// "d=37 mse 4 debiased"
std::string case_name(const TQCase& c);

/// an IndexTurboQuant of that shape over nb Gaussian vectors + 0.3
/// (not centered at 0, so that centering matters), trained and filled
std::unique_ptr<faiss_turbo::IndexTurboQuant> make_case_index(
        const TQCase& c,
        faiss::MetricType m,
        bool centered,
        size_t nb,
        int seed);

/// n x d Gaussian vectors normalized to unit length
std::vector<float> random_unit(size_t n, size_t d, uint64_t seed);

/// n x d Gaussian vectors (not normalized)
std::vector<float> random_gaussian(size_t n, size_t d, uint64_t seed);

/// n unit vectors common + 0.5 g (g Gaussian) normalized: they share a
/// large common direction, as text embeddings do
std::vector<float>
around_direction(size_t n, const std::vector<float>& common, uint64_t seed);

/// dot_lanes' definition (faiss_turbo/impl/kernels.h): lane i % 8 in
/// order, then the fixed pairwise tree; the reference of its SIMD kernels
float dot_lanes_definition(const float* a, const float* b, size_t d);

/// n Gaussian values scaled by random powers of two (2^-12..2^11), so that
/// a changed rounding or summation order shows in the result bits
std::vector<float> mixed_values(size_t n, int seed);

/// normalize rows in place
void normalize_rows(std::vector<float>& x, size_t d);

/// the 10k real SIFT descriptors (empty if the data folder is missing)
std::vector<float> load_bigann10k(size_t& n, size_t& d);

/// brute-force k-NN, L2 or inner product
void brute_force_knn(
        const float* xb,
        size_t nb,
        const float* xq,
        size_t nq,
        size_t d,
        size_t k,
        bool l2,
        std::vector<idx_t>& labels);

/// 10-recall@10 style: |result[:k] & gt[:k]| / k averaged
double recall_at(
        const std::vector<idx_t>& res,
        const std::vector<idx_t>& gt,
        size_t nq,
        size_t k_res,
        size_t k_gt,
        size_t k);

/// results of one search
struct Result {
    std::vector<float> D;
    std::vector<idx_t> I;
};

/// index.search of the queries xq (nq x index.d), k results each
Result
search(const faiss::Index& index,
       const std::vector<float>& xq,
       size_t k,
       const faiss::SearchParameters* params = nullptr);

/// f() must throw a FaissException whose message contains `what`
template <class F> void throws_with(F&& f, const char* what) {
    try {
        f();
    } catch (const faiss::FaissException& e) {
        EXPECT_NE(std::string(e.what()).find(what), std::string::npos)
                << e.what();
        return;
    }
    ADD_FAILURE() << "no exception, wanted " << what;
}

/// results of one range search: lims (nq + 1), then D and I of every hit
struct RangeResult {
    std::vector<size_t> lims;
    std::vector<float> D;
    std::vector<idx_t> I;
};

/// index.range_search of the queries xq (nq x index.d)
RangeResult range_search(
        const faiss::Index& index,
        const std::vector<float>& xq,
        float radius,
        const faiss::SearchParameters* params = nullptr);

} // namespace tqtest
