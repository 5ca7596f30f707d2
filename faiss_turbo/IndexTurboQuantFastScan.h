/**
 * Flat index over TurboQuant codes in the fast-scan layout (factory suffix
 * "fs": "TQmse4fs", "TQmse2cfs"): codes are stored in blocks of 32 and
 * searched by table lookups, as FAISS's IndexPQFastScan does for PQ (see
 * impl/scan_lut.h). The blocks are the index's only copy of the codes;
 * sa_encode / sa_decode, reconstruct and files use the codec's row codes
 * (TurboQuantizer.h), so codes and files move between this index and
 * IndexTurboQuant unchanged.
 *
 * Codecs: TQmse at 1, 2, 4 (and 1.5) bits, plain, debiased or centered, L2
 * or inner product. Plain TQmse keeps ||c_hat||^2 per code in memory (4
 * bytes, recomputed from the codes when a file is read).
 */
#pragma once

#include <faiss/Index.h>

#include <faiss_turbo/SearchParametersTurboQuant.h>
#include <faiss_turbo/TurboQuantizer.h>
#include <faiss_turbo/impl/blocked_codes.h>
#include <faiss_turbo/impl/compat.h>

namespace faiss_turbo {

struct IndexTurboQuant;

struct IndexTurboQuantFastScan : faiss::Index {
    TurboQuantizer tq;

    /// centered variant: train() learns the mean (factory suffix "c")
    bool centered = false;

    /// what search() uses without SearchParametersTurboQuant: scan_mode
    /// TQ_SCAN_INT8 = the 8-bit table scan (batches of 16+ queries at 4
    /// bits: the int8 scan on rows unpacked per tile, the faster there;
    /// impl/scan_lut.h), then the best k * rerank_factor re-scored exactly;
    /// TQ_SCAN_EXACT = every code in float
    SearchParametersTurboQuant search_defaults;

    /// the codes (only copy)
    BlockedCodes codes;

    /** @param d        dimension, >= 2
     *  @param bits     1, 1.5, 2 or 4 (TQmse)
     *  @param centered learn a mean in train(); the index starts untrained
     *  @param debiased debiased inner-product scoring
     */
    IndexTurboQuantFastScan(
            idx_t d,
            float bits,
            faiss::MetricType metric = faiss::METRIC_L2,
            bool centered = false,
            bool debiased = true,
            RotationType rotation_type = RotationType::AUTO,
            uint64_t seed = 1234);

#ifndef SWIG // an overload would cost Python its keyword arguments
    /// the same codec and codes as a flat IndexTurboQuant (TQmse at 1, 1.5,
    /// 2 or 4 bits), in blocks
    explicit IndexTurboQuantFastScan(const IndexTurboQuant& flat);
#endif

    IndexTurboQuantFastScan();

    /// learns the mean of the centered variant (only while empty)
    void train(idx_t n, const float* x) override;

    void add(idx_t n, const float* x) override;

    void reset() override;

    void
    search(idx_t n,
           const float* x,
           idx_t k,
           float* distances,
           idx_t* labels,
           const faiss::SearchParameters* params = nullptr) const override;

    /// the exact estimator's range search (IndexTurboQuant's results on
    /// the same codes; FAISS's fast-scan indexes have none), blocks
    /// unpacked as they are scanned
    void range_search(
            idx_t n,
            const float* x,
            float radius,
            faiss::RangeSearchResult* result,
            const faiss::SearchParameters* params = nullptr) const override;

    /// for FAISS's graph and refine indexes over this one (both metrics;
    /// a NaN or Inf query scores NaN)
    faiss::DistanceComputer* get_distance_computer() const override;

    void reconstruct(idx_t key, float* recons) const override;

    size_t remove_ids(const faiss::IDSelector& sel) override;

    size_t sa_code_size() const override;

    void sa_encode(idx_t n, const float* x, uint8_t* bytes) const override;

    void sa_decode(idx_t n, const uint8_t* bytes, float* x) const override;

    /// row codes [i0, i0 + n) (code_size bytes each) into out
    void get_codes(idx_t i0, idx_t n, uint8_t* out) const;

    /// append row codes of this codec (a file's, another index's)
    void add_codes(idx_t n, const uint8_t* codes);

    /// the same codec and codes as a flat IndexTurboQuant (replaces what
    /// flat held): the way to HNSW or the GPU
    void copy_to(IndexTurboQuant* flat) const;

    void merge_from(faiss::Index& other, idx_t add_id = 0) override;

    void check_compatible_for_merge(const faiss::Index& other) const override;

    void prepare_queries(idx_t n, const float* x, TQQueries& q) const;
};

} // namespace faiss_turbo
