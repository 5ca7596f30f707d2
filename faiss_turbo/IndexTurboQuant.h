/**
 * Flat index over TurboQuant codes (see TurboQuantizer.h for the codec).
 */
#pragma once

#include <faiss/IndexFlatCodes.h>

#include <faiss_turbo/SearchParametersTurboQuant.h>
#include <faiss_turbo/TurboQuantizer.h>
#include <faiss_turbo/impl/compat.h>

namespace faiss_turbo {

struct IndexTurboQuant : faiss::IndexFlatCodes {
    TurboQuantizer tq;

    /// centered variant: train() learns the mean (factory suffix "c")
    bool centered = false;

    /// what search() uses when it gets no SearchParametersTurboQuant, as
    /// IndexIVF::nprobe for SearchParametersIVF: ParameterSpace-style
    /// tuning sets these (its sel is not used). Saved in files (a write
    /// refuses values a search would refuse).
    SearchParametersTurboQuant search_defaults;

    /** @param d        dimension, >= 2
     *  @param bits     1..8 with at most one decimal (2.5); for PROD the
     *                  QJL bit is included
     *  @param centered learn a mean in train(); the index starts untrained
     *  @param debiased debiased inner-product scoring (MSE only)
     */
    IndexTurboQuant(
            idx_t d,
            float bits,
            TQVariant variant = TQVariant::MSE,
            faiss::MetricType metric = faiss::METRIC_L2,
            bool centered = false,
            bool debiased = true,
            RotationType rotation_type = RotationType::AUTO,
            QJLType qjl_type = QJLType::AUTO,
            uint64_t seed = 1234);

    IndexTurboQuant();

    /// learns the mean of the centered variant (only while empty); a no-op
    /// for the plain variants, which are trained from construction
    void train(idx_t n, const float* x) override;

    void add(idx_t n, const float* x) override;

    /// params may be a SearchParametersTurboQuant: scan_mode (default
    /// int8 dot products, then the best k * rerank_factor re-scored with
    /// the exact estimator) or TQ_SCAN_EXACT (every code in float)
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

    void sa_encode(idx_t n, const float* x, uint8_t* bytes) const override;

    void sa_decode(idx_t n, const uint8_t* bytes, float* x) const override;

    faiss::FlatCodesDistanceComputer*
    get_FlatCodesDistanceComputer() const override;

    /// turn debiased scoring on or off (changes code_size: empty index only)
    void set_debiased(bool debiased);

    /// the metric's FAISS conventions apply to the scores of
    /// TurboQuantizer::combine; this prepares queries for it
    void prepare_queries(idx_t n, const float* x, TQQueries& q) const;

    void check_compatible_for_merge(const faiss::Index& other) const override;
};

} // namespace faiss_turbo
