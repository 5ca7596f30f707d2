#include <faiss_turbo/impl/ivf_scanner.h>

#include <faiss/impl/AuxIndexStructures.h>
#include <faiss/impl/FaissAssert.h>
#include <faiss/invlists/DirectMap.h>
#include <faiss/utils/Heap.h>
#if FAISS_TURBO_SCAN_CODES_HANDLER
#include <faiss/impl/ResultHandler.h>
#endif

#include <faiss_turbo/impl/coord_rules.h>

namespace faiss_turbo {

/*************************************************************
 * centroid table
 *************************************************************/

std::shared_ptr<const IVFCentroidTable> build_ivf_centroid_table(
        const TurboQuantizer& tq, const faiss::Index& quantizer, size_t nlist) {
    const size_t d = tq.d;
    FAISS_THROW_IF_NOT_FMT(
            (size_t)quantizer.d == d && (size_t)quantizer.ntotal == nlist,
            "IndexIVFTurboQuant: the coarse quantizer has %zd centroids of "
            "dimension %d, expected %zd of dimension %zd (train the index)",
            (size_t)quantizer.ntotal,
            quantizer.d,
            nlist,
            d);
    auto t = std::make_shared<IVFCentroidTable>();
    t->nlist = nlist;
    t->d = d;
    t->quantizer = &quantizer;
    std::vector<float> c(nlist * d);
    quantizer.reconstruct_n(0, nlist, c.data());
    t->rc.resize(nlist * d);
    tq.rotation->apply(nlist, c.data(), t->rc.data());
    if (tq.variant == TQVariant::PROD) {
        t->src.resize(nlist * d);
        tq.qjl->apply(nlist, t->rc.data(), t->src.data());
    }
    return t;
}

IVFCentroidCache::IVFCentroidCache(const IVFCentroidCache& other) {
    std::lock_guard<std::mutex> lock(other.mutex);
    table = other.table;
}

IVFCentroidCache& IVFCentroidCache::operator=(const IVFCentroidCache& other) {
    if (this != &other) {
        std::shared_ptr<const IVFCentroidTable> t;
        {
            std::lock_guard<std::mutex> lock(other.mutex);
            t = other.table;
        }
        std::lock_guard<std::mutex> lock(mutex);
        table = t;
    }
    return *this;
}

std::shared_ptr<const IVFCentroidTable> IVFCentroidCache::get(
        const TurboQuantizer& tq,
        const faiss::Index& quantizer,
        size_t nlist) const {
    std::lock_guard<std::mutex> lock(mutex);
    if (!table || table->quantizer != &quantizer || table->nlist != nlist ||
        table->d != tq.d || (size_t)quantizer.ntotal != nlist) {
        table = build_ivf_centroid_table(tq, quantizer, nlist);
    }
    return table;
}

void IVFCentroidCache::reset() {
    std::lock_guard<std::mutex> lock(mutex);
    table.reset();
}

/*************************************************************
 * scanner
 *************************************************************/

namespace {

using HeapForL2 = faiss::CMax<float, idx_t>;
using HeapForIP = faiss::CMin<float, idx_t>;

struct TQScanner : faiss::InvertedListScanner {
    const TurboQuantizer& tq;
    std::shared_ptr<const IVFCentroidTable> table;
    bool l2;

    TQQueries query; ///< the current query, prepared once
    TQQueries listq; ///< the query relative to the current list's centroid
    const TQQueries* cur = &query;

    TQScanner(
            const TurboQuantizer& tq_in,
            bool l2_in,
            std::shared_ptr<const IVFCentroidTable> table_in,
            bool store_pairs_in,
            const faiss::IDSelector* sel_in)
            : faiss::InvertedListScanner(store_pairs_in, sel_in),
              tq(tq_in),
              table(std::move(table_in)),
              l2(l2_in) {
        keep_max = !l2;
        code_size = tq.code_size;
    }

    void set_query(const float* x) override {
        tq.prepare_queries(1, x, l2, query);
        listq = query;
        cur = &query;
    }

    /// residual codes: the query relative to c, from R c and S R c alone
    /// (identities in IndexIVFTurboQuant.h)
    void set_list(idx_t list_no_in, float /*coarse_dis*/) override {
        list_no = list_no_in;
        if (!table) {
            return;
        }
        FAISS_THROW_IF_NOT_FMT(
                list_no_in >= 0 && (size_t)list_no_in < table->nlist,
                "IndexIVFTurboQuant: list %ld out of range",
                (long)list_no_in);
        const size_t d = tq.d;
        const float* rc = table->rc.data() + list_no_in * d;
        if (l2) {
            for (size_t j = 0; j < d; j++) {
                listq.y[j] = query.y[j] - rc[j];
            }
            listq.qconst[0] =
                    (float)canonical_dot(listq.y.data(), listq.y.data(), d);
            if (!table->src.empty()) {
                const float* src = table->src.data() + list_no_in * d;
                for (size_t j = 0; j < d; j++) {
                    listq.sy[j] = query.sy[j] - src[j];
                }
            }
        } else {
            listq.qconst[0] =
                    query.qconst[0] + dot_lanes(query.y.data(), rc, d);
        }
        cur = &listq;
    }

    float distance_to_code(const uint8_t* code) const override {
        std::vector<float> buf(2 * tq.d);
        return tq.score(*cur, 0, code, buf.data());
    }

    idx_t label_of(const idx_t* ids, size_t j) const {
        return store_pairs ? (idx_t)faiss::lo_build(list_no, j) : ids[j];
    }

#if !FAISS_TURBO_SCAN_CODES_K_FINAL
    /// ties are decided by the label as in the flat scan (push_topk), so
    /// the results do not depend on the order lists are scanned in
    size_t scan_codes(
            size_t n,
            const uint8_t* codes,
            const idx_t* ids,
            float* distances,
            idx_t* labels,
            size_t k) const override {
        std::vector<float> buf(2 * tq.d);
        size_t nup = 0;
        for (size_t j = 0; j < n; j++, codes += code_size) {
            idx_t id = label_of(ids, j);
            if (sel && !sel->is_member(id)) {
                continue;
            }
            float v = tq.score(*cur, 0, codes, buf.data());
            if (l2 ? HeapForL2::cmp2(distances[0], v, labels[0], id)
                   : HeapForIP::cmp2(distances[0], v, labels[0], id)) {
                if (l2) {
                    faiss::heap_replace_top<HeapForL2>(
                            k, distances, labels, v, id);
                } else {
                    faiss::heap_replace_top<HeapForIP>(
                            k, distances, labels, v, id);
                }
                nup++;
            }
        }
        return nup;
    }
#endif

#if FAISS_TURBO_SCAN_CODES_HANDLER
    size_t scan_codes(
            size_t n,
            const uint8_t* codes,
            const idx_t* ids,
            faiss::ResultHandler& handler) const override {
        std::vector<float> buf(2 * tq.d);
        size_t nup = 0;
        for (size_t j = 0; j < n; j++, codes += code_size) {
            idx_t id = label_of(ids, j);
            if (sel && !sel->is_member(id)) {
                continue;
            }
            float v = tq.score(*cur, 0, codes, buf.data());
            if (l2 ? v < handler.threshold : v > handler.threshold) {
                nup += handler.add_result(v, id) ? 1 : 0;
            }
        }
        return nup;
    }
#endif

    void scan_codes_range(
            size_t n,
            const uint8_t* codes,
            const idx_t* ids,
            float radius,
            faiss::RangeQueryResult& result) const override {
        std::vector<float> buf(2 * tq.d);
        for (size_t j = 0; j < n; j++, codes += code_size) {
            idx_t id = label_of(ids, j);
            if (sel && !sel->is_member(id)) {
                continue;
            }
            float v = tq.score(*cur, 0, codes, buf.data());
            if (l2 ? v < radius : v > radius) {
                result.add(v, id);
            }
        }
    }
};

} // namespace

faiss::InvertedListScanner* new_ivf_tq_scanner(
        const TurboQuantizer& tq,
        bool l2,
        std::shared_ptr<const IVFCentroidTable> table,
        bool store_pairs,
        const faiss::IDSelector* sel) {
    // with store_pairs the lists' ids are not read, so a selector on ids
    // cannot be applied (FAISS 1.8+ refuses the combination as well)
    FAISS_THROW_IF_NOT_MSG(
            !(store_pairs && sel),
            "IndexIVFTurboQuant: an IDSelector cannot be combined with "
            "store_pairs");
    return new TQScanner(tq, l2, std::move(table), store_pairs, sel);
}

} // namespace faiss_turbo
