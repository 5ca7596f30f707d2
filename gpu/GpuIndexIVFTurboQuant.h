/**
 * IVF TurboQuant on one GPU: the inverted lists of an IndexIVFTurboQuant
 * (same codec, same coarse quantizer, same residual convention) with their
 * codes and ids in device memory.
 *
 * Division of labour: the coarse quantizer is a copy of the CPU index's
 * (any FAISS index) and runs on the host, so a query probes exactly the
 * CPU's lists; the lists are scanned on the GPU with the CPU's arithmetic
 * (the query seen from list l, y - R c_l, is prepared on the host as the
 * CPU scanner does), so results equal IndexIVFTurboQuant's. Encoding for
 * add() runs on the GPU (residuals x - c_l formed on the host).
 *
 * Training runs on the host: train() trains a CPU IndexIVFTurboQuant of the
 * same parameters (FAISS's k-means) and copies it, so the lists are those
 * of a CPU index trained on the same vectors.
 *
 * An IDSelector (SearchParameters::sel) keeps the CPU's results: the
 * probed codes it leaves out score +inf (impl/IdFilter.h). Not here: range
 * search; ids must lie in [0, 2^31).
 */
#pragma once

#include <memory>
#include <mutex>
#include <vector>

#include <faiss/Index.h>

#include <faiss_turbo/IndexIVFTurboQuant.h>
#include <faiss_turbo/impl/compat.h>

#include <gpu/GpuResources.h>
#include <gpu/impl/DeviceBuffer.h>

namespace faiss_turbo {
namespace gpu {

class DeviceCodec;

class GpuIndexIVFTurboQuant : public faiss::Index {
   public:
    /// a copy of a trained CPU index: quantizer, codec, lists
    GpuIndexIVFTurboQuant(
        GpuResources* res, const IndexIVFTurboQuant& cpu, int device = 0);

    /// an empty, untrained index with a flat coarse quantizer of nlist
    /// lists (IndexFlatL2 or IndexFlatIP, as metric); parameters as
    /// IndexIVFTurboQuant's
    GpuIndexIVFTurboQuant(
        GpuResources* res,
        idx_t d,
        size_t nlist,
        float bits,
        TQVariant variant = TQVariant::MSE,
        faiss::MetricType metric = faiss::METRIC_L2,
        bool by_residual = kIVFTurboQuantByResidual,
        bool centered = false,
        bool debiased = true,
        RotationType rotation_type = RotationType::AUTO,
        QJLType qjl_type = QJLType::AUTO,
        uint64_t seed = 1234,
        int device = 0);

    ~GpuIndexIVFTurboQuant() override;

    size_t nlist = 0; ///< read only: the lists are sized by it
    size_t nprobe = 1; ///< lists probed per query (IVFSearchParameters too)
    /// codes a query scans at most, in whole lists as FAISS's IndexIVF
    /// (SearchParametersIVF too); 0: no limit
    size_t max_codes = 0;

    void copyFrom(const IndexIVFTurboQuant& cpu);

    /// a new CPU index (caller owns it) with a copy of the quantizer, the
    /// codec and the lists (ArrayInvertedLists)
    IndexIVFTurboQuant* toCpu() const;

    /// trains a CPU IndexIVFTurboQuant of this index's parameters and
    /// quantizer on x (host or device memory) and copies it: the coarse
    /// quantizer (unless already trained), then the mean if centered. The
    /// index must be empty, as the CPU index's.
    void train(idx_t n, const float* x) override;

    /// ids ntotal, ntotal + 1, ...; x (and the ids of add_with_ids) on
    /// the host or in device memory
    void add(idx_t n, const float* x) override;

    void add_with_ids(idx_t n, const float* x, const idx_t* xids) override;

    /// queries and results on the host or in device memory (copied: the
    /// host prepares the queries), any n, 1 <= k <= 2048
    void search(
        idx_t n,
        const float* x,
        idx_t k,
        float* distances,
        idx_t* labels,
        const faiss::SearchParameters* params = nullptr) const override;

    void reset() override;

    /// the vector of id key (its first position in the order of addition)
    /// as IndexIVFTurboQuant::reconstruct_from_offset gives it: the CPU
    /// decoder on the stored code plus the list's centroid. O(ntotal): no
    /// direct map is kept.
    void reconstruct(idx_t key, float* recons) const override;

    /// as IndexIVF::reconstruct_n (the CPU index's): the ids in [i0, i0 +
    /// ni), which must lie within ntotal, found in the lists (an id stored
    /// twice: its last copy in list order); slots of absent ids untouched
    void reconstruct_n(idx_t i0, idx_t ni, float* recons) const override;

    /// drops the vectors whose id sel holds (the others keep their order
    /// in their lists); the number dropped
    size_t remove_ids(const faiss::IDSelector& sel) override;

    /// vectors in list l
    size_t list_size(size_t l) const;

    size_t getDeviceMemoryUsage() const;

    /// the most queries (rows) one decode of a probed list's codes serves
    /// (1..8, default 8; fewer where shared memory holds fewer queries, at
    /// large d). 1 scores each (query, list) on its own, as before lists
    /// were shared: for measuring. Results do not depend on it.
    void set_queries_per_list(int n);
    int queries_per_list() const {
        return queries_per_list_;
    }

    int getDevice() const {
        return device_;
    }

    const TurboQuantizer& codec() const {
        return tq_;
    }

   private:
    struct Scratch;
    static constexpr int kMaxQueriesPerList = 8; ///< kListQueries

    /// members, resources and device checks; no codec yet
    GpuIndexIVFTurboQuant(
        GpuResources* res, int device, idx_t d, faiss::MetricType metric);

    GpuResources* res_;
    int device_;
    TurboQuantizer tq_;
    bool by_residual_ = true;
    int queries_per_list_ = kMaxQueriesPerList;
    bool centered_ = false;
    /// the CPU index's, kept for toCpu (the GPU always scores exactly)
    SearchParametersTurboQuant search_defaults_;
    std::unique_ptr<faiss::Index> coarse_; ///< copy of the CPU quantizer
    std::vector<float> rc_, src_;          ///< R c_l and S R c_l (nlist x d)
    std::unique_ptr<DeviceCodec> dcodec_;

    DeviceBuffer<uint8_t> codes_;         ///< position order (as added)
    DeviceBuffer<int64_t> labels_;        ///< label of each position
    DeviceBuffer<int> perm_;              ///< positions grouped by list
    std::vector<std::vector<int>> lists_; ///< positions of each list
    std::vector<int64_t> list_off_;       ///< list l at perm_[off[l]..]
    std::vector<idx_t> host_labels_;

    mutable std::mutex search_mutex_;
    mutable std::unique_ptr<Scratch> scratch_;

    cudaStream_t stream() const;
    /// a CPU index with a copy of the quantizer and these parameters, no
    /// lists
    std::unique_ptr<IndexIVFTurboQuant> cpu_shell() const;
    /// the parameters of cpu (trained or not) with copies of its
    /// quantizer and codec moved in; empty: no lists, no device codec.
    /// Moves and scalars only (copyFrom's commit)
    void set_parameters(
        const IndexIVFTurboQuant& cpu,
        std::unique_ptr<faiss::Index> coarse,
        TurboQuantizer&& tq) noexcept;
    /// a CPU index's lists, in position order (ids checked)
    struct Lists {
        std::vector<uint8_t> codes;
        std::vector<idx_t> labels;
        std::vector<std::vector<int>> lists;
    };
    static Lists read_lists(const IndexIVFTurboQuant& cpu);
    /// lists' positions concatenated into perm (on the device), list l
    /// from list_off[l]; perm unchanged if it cannot grow
    void upload_perm(
        const std::vector<std::vector<int>>& lists,
        std::vector<int64_t>& list_off,
        DeviceBuffer<int>& perm) const;
    /// perm_ and list_off_ from lists_ (unchanged on failure)
    void rebuild_perm();
    /// a search chunk's rows (query i, probe p) = i * np + p: each row's
    /// query as seen from its list, the CPU scanner's set_list (y, S y,
    /// qconst), and where its candidates go (row_off, counts; per query
    /// q_off, q_cnt); pos_off: the list's first slot in the list order
    struct ChunkRows {
        std::vector<float> y, sy, qc;
        std::vector<int64_t> row_off, pos_off, q_off;
        std::vector<int> counts, q_cnt;
        size_t total = 0;
        int max_row = 0, max_q = 0;
    };
    ChunkRows prepare_rows(
        const TQQueries& q,
        const idx_t* assign,
        size_t np,
        size_t mc,
        idx_t q0,
        int nq) const;
    /// a search chunk's probed lists as ListItems (impl/kernels.h): each
    /// list with up to list_queries_per_item of the rows that probe it
    struct ListPlan {
        std::vector<int64_t> pos_off;
        std::vector<int> count;
        std::vector<int> rows; ///< kListQueries per item, -1: none
        int ng = 1;            ///< the most rows of an item
    };
    /// rows r < R probe list assign[r] (-1: none), counts[r] codes at
    /// pos_off[r] of the list order
    ListPlan plan_lists(
        const idx_t* assign,
        size_t R,
        const std::vector<int>& counts,
        const std::vector<int64_t>& pos_off) const;
    /// add n vectors, rows first.. of the caller's input (for errors)
    void append(idx_t n, const float* x, const idx_t* xids, idx_t first);
    /// keep the first n vectors added (undoes a failed add)
    void truncate(idx_t n);
    /// search() on host pointers, n >= 0 (staged_search checks it)
    void search_host(
        idx_t n,
        const float* x,
        idx_t k,
        float* distances,
        idx_t* labels,
        const faiss::SearchParameters* params) const;

    /// mc: max_codes as FAISS's, a query stops after the list that brings
    /// the codes it scanned to mc (0: no limit)
    void search_chunk(
        const TQQueries& q,
        const idx_t* assign,
        size_t np,
        size_t mc,
        idx_t q0,
        int nq,
        int k,
        const uint32_t* allow, ///< IdFilter.h bitmap, or null
        float* distances,
        idx_t* labels) const;

    /// the selector's bitmap over the codes of the lists in assign, on
    /// the device (in the scratch; valid until the next search)
    const uint32_t* upload_allowed(
        const faiss::IDSelector& sel,
        const std::vector<idx_t>& assign) const;
};

} // namespace gpu
} // namespace faiss_turbo
