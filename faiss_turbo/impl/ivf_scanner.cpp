#include <faiss_turbo/impl/ivf_scanner.h>

#include <algorithm>
#include <cmath>
#include <exception>

#include <faiss/impl/AuxIndexStructures.h>
#include <faiss/impl/FaissAssert.h>
#include <faiss/invlists/DirectMap.h>
#include <faiss/utils/Heap.h>
#if FAISS_TURBO_SCAN_CODES_HANDLER
#include <faiss/impl/ResultHandler.h>
#endif

#include <faiss_turbo/SearchParametersTurboQuant.h>
#include <faiss_turbo/impl/blocked_invlists.h>
#include <faiss_turbo/impl/coord_rules.h>
#include <faiss_turbo/impl/kernels.h>
#include <faiss_turbo/impl/scan_int8.h>
#include <faiss_turbo/impl/scan_lut.h>

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

bool ivf_list_needs_own_tables(const float* ly, size_t d, float y2) {
    // table errors scale with the vector the tables are built from: own
    // tables once the list's query is half the query's length or less
    return dot_lanes(ly, ly, d) * 4 < y2;
}

void ivf_list_query(
        const TurboQuantizer& tq,
        bool l2,
        const IVFCentroidTable& table,
        const TQQueries& q,
        size_t l,
        TQQueries& out) {
    const size_t d = tq.d;
    const float* rc = table.rc.data() + l * d;
    const bool shifted = ivf_list_shifted(tq, l2, &table);
    out.n = 1;
    out.l2 = q.l2;
    out.y.resize(d);
    for (size_t j = 0; j < d; j++) {
        out.y[j] = shifted ? q.y[j] - rc[j] : q.y[j];
    }
    out.sy = q.sy;
    if (shifted && !table.src.empty() && !q.sy.empty()) {
        const float* src = table.src.data() + l * d;
        for (size_t j = 0; j < d; j++) {
            out.sy[j] = q.sy[j] - src[j];
        }
    }
    out.qconst.resize(1);
    if (l2) {
        out.qconst[0] = (float)canonical_dot(out.y.data(), out.y.data(), d);
    } else { // <q, c> (+ <q, mean>), ip_offset or not
        out.qconst[0] = q.qconst[0] + dot_lanes(q.y.data(), rc, d);
    }
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

/// codes scored by the int8 kernels at once (the scores of a run are
/// buffered before the selector and the heaps see them)
constexpr size_t kInt8Run = 256;

/// the best kk int8 scores of one query so far, ties by label: a code that
/// enters is worth re-scoring exactly
struct Int8Candidates {
    bool l2 = true;
    size_t kk = 0; ///< 0: not started for this query
    std::vector<float> dis;
    std::vector<idx_t> ids;

    void start(size_t kk_in) {
        kk = kk_in;
        dis.resize(kk);
        ids.resize(kk);
        if (l2) {
            faiss::heap_heapify<HeapForL2>(kk, dis.data(), ids.data());
        } else {
            faiss::heap_heapify<HeapForIP>(kk, dis.data(), ids.data());
        }
    }

    /// whether (v, id) enters the kk best
    bool offer(float v, idx_t id) {
        if (l2) {
            if (!HeapForL2::cmp2(dis[0], v, ids[0], id)) {
                return false;
            }
            faiss::heap_replace_top<HeapForL2>(
                    kk, dis.data(), ids.data(), v, id);
        } else {
            if (!HeapForIP::cmp2(dis[0], v, ids[0], id)) {
                return false;
            }
            faiss::heap_replace_top<HeapForIP>(
                    kk, dis.data(), ids.data(), v, id);
        }
        return true;
    }

    /// whether (v, id), offered earlier, is still among the kk best: the
    /// kk best so far are those not worse than the worst kept
    bool holds(float v, idx_t id) const {
        return l2 ? !HeapForL2::cmp2(v, dis[0], id, ids[0])
                  : !HeapForIP::cmp2(v, dis[0], id, ids[0]);
    }
};

/// a code of the current list that entered the running top kk
struct Int8Entry {
    size_t j; ///< position in the list
    float v;  ///< int8 score
    idx_t id;
};

struct TQScanner : faiss::InvertedListScanner {
    const TurboQuantizer& tq;
    std::shared_ptr<const IVFCentroidTable> table;
    bool l2;
    IVFScanOptions options;

    TQQueries query; ///< the current query, prepared once
    TQQueries listq; ///< the query relative to the current list's centroid
    const TQQueries* cur = &query;

    /// int8 mode only (null: every code scored exactly)
    std::unique_ptr<Int8CodeScorer> scorer;
    /// whether the codes have approximate scores (score_run)
    bool approx = false;
    // scratch of scan_codes, which FAISS declares const (one scanner per
    // thread)
    mutable Int8Candidates cands;
    mutable std::vector<Int8Entry> entered;
    mutable std::vector<float> run_scores;
    mutable std::vector<float> buf;
    /// what set_query or set_list threw (out of memory): FAISS calls them
    /// inside its OpenMP region but outside its try, where a throw ends
    /// the process. The list's scan_codes, inside the try, throws it. Also
    /// what a scan_codes threw: FAISS goes on to the query's next list,
    /// whose scan must not use the running top kk left half updated
    mutable std::exception_ptr pending;

    TQScanner(
            const TurboQuantizer& tq_in,
            bool l2_in,
            std::shared_ptr<const IVFCentroidTable> table_in,
            bool store_pairs_in,
            const faiss::IDSelector* sel_in,
            const IVFScanOptions& options_in,
            bool row_codes = true)
        : faiss::InvertedListScanner(store_pairs_in, sel_in),
          tq(tq_in),
          table(std::move(table_in)),
          l2(l2_in),
          options(options_in) {
        keep_max = !l2;
        code_size = tq.code_size;
        if (row_codes && options.scan_mode == TQ_SCAN_INT8 &&
            int8_scan_supported(tq)) {
            scorer = std::make_unique<Int8CodeScorer>(tq, l2);
            approx = true;
        }
        run_scores.resize(kInt8Run);
        cands.l2 = l2;
        buf.resize(2 * tq.d);
    }

    void set_query(const float* x) override {
        pending = nullptr;
        try {
            tq.prepare_queries(1, x, l2, query);
            listq = query;
            cur = &query;
            cands.kk = 0; // a new running top kk
            if (scorer) {
                scorer->set_query(*cur, 0);
            }
        } catch (...) {
            pending = std::current_exception();
        }
    }

    /// residual codes: the query relative to c, from R c and S R c alone
    /// (identities in IndexIVFTurboQuant.h)
    void set_list(idx_t list_no_in, float /*coarse_dis*/) override {
        list_no = list_no_in;
        if (!table || pending) {
            return;
        }
        try {
            FAISS_THROW_IF_NOT_FMT(
                    list_no_in >= 0 && (size_t)list_no_in < table->nlist,
                    "IndexIVFTurboQuant: list %ld out of range",
                    (long)list_no_in);
            ivf_list_query(tq, l2, *table, query, list_no_in, listq);
            cur = &listq;
            if (scorer) { // the int8 query follows the list's query
                scorer->set_query(*cur, 0);
            }
        } catch (...) {
            pending = std::current_exception();
        }
    }

    /// f() (a list's scan), after throwing what set_query or set_list
    /// kept; what f throws is kept for the query's other lists too
    template <class F> auto keeping_errors(F&& f) const {
        if (pending) {
            std::rethrow_exception(pending);
        }
        try {
            return f();
        } catch (...) {
            pending = std::current_exception();
            throw;
        }
    }

    virtual ~TQScanner() = default;

    /// approximate scores of codes [j0, j0 + nr) of the list at codes
    /// (what scan_codes got); nr <= kInt8Run, j0 a multiple of it
    virtual void
    score_run(const uint8_t* codes, size_t j0, size_t nr, float* out) const {
        scorer->score_run(codes + j0 * code_size, nr, out);
    }

    /// row code j of the list at codes
    virtual const uint8_t* row(const uint8_t* codes, size_t j) const {
        return codes + j * code_size;
    }

    /// the list's n codes as rows
    virtual const uint8_t* rows(const uint8_t* codes, size_t /*n*/) const {
        return codes;
    }

    float distance_to_code(const uint8_t* code) const override {
        std::vector<float> b(2 * tq.d);
        return tq.score(*cur, 0, code, b.data());
    }

    idx_t label_of(const idx_t* ids, size_t j) const {
        return store_pairs ? (idx_t)faiss::lo_build(list_no, j) : ids[j];
    }

    /// the int8 path applies to a search for k results: without
    /// re-scoring always; with it when k is known and not every code
    /// would be re-scored anyway. Starts the running top kk if needed.
    bool use_int8(size_t k) const {
        if (!approx) {
            return false;
        }
        if (options.rerank_factor < 1) {
            return true;
        }
        if (k == 0) {
            return false;
        }
        if (cands.kk == 0) {
            double want = std::ceil((double)k * options.rerank_factor);
            if (want >= (double)options.ntotal) {
                return false;
            }
            cands.start(std::max(k, (size_t)want));
        }
        return true;
    }

    /** int8 scores of the codes in runs; push(v, id) offers a result to
     * FAISS (true if it was kept). rerank_factor < 1: the int8 scores are
     * offered. Otherwise the codes that enter the running top kk are
     * offered with their exact score, once the list is scanned and only if
     * they are still in it: a code evicted by a later code of the same list
     * cannot be in the final int8 top kk, and re-scoring costs ~6 int8
     * scores. */
    template <class Push>
    size_t scan_int8(
            size_t n, const uint8_t* codes, const idx_t* ids, Push push) const {
        const bool rerank = options.rerank_factor >= 1;
        size_t nup = 0;
        entered.clear();
        for (size_t j0 = 0; j0 < n; j0 += kInt8Run) {
            const size_t nr = std::min(kInt8Run, n - j0);
            score_run(codes, j0, nr, run_scores.data());
            for (size_t j = 0; j < nr; j++) {
                idx_t id = label_of(ids, j0 + j);
                if (sel && !sel->is_member(id)) {
                    continue;
                }
                float v = run_scores[j];
                if (!rerank) {
                    nup += push(v, id) ? 1 : 0;
                } else if (cands.offer(v, id)) {
                    entered.push_back({j0 + j, v, id});
                }
            }
        }
        for (const Int8Entry& e : entered) {
            if (cands.holds(e.v, e.id)) {
                float v = tq.score(*cur, 0, row(codes, e.j), buf.data());
                nup += push(v, e.id) ? 1 : 0;
            }
        }
        return nup;
    }

    /// every code scored exactly
    template <class Push>
    size_t scan_exact(
            size_t n, const uint8_t* codes, const idx_t* ids, Push push) const {
        size_t nup = 0;
        codes = rows(codes, n);
        for (size_t j = 0; j < n; j++, codes += code_size) {
            idx_t id = label_of(ids, j);
            if (sel && !sel->is_member(id)) {
                continue;
            }
            float v = tq.score(*cur, 0, codes, buf.data());
            nup += push(v, id) ? 1 : 0;
        }
        return nup;
    }

#if !FAISS_TURBO_SCAN_CODES_K_FINAL
    /// ties are decided by the label as in the flat scan (push_topk), so
    /// the exact mode's results do not depend on the order lists are
    /// scanned in
    size_t scan_codes(
            size_t n,
            const uint8_t* codes,
            const idx_t* ids,
            float* distances,
            idx_t* labels,
            size_t k) const override {
        auto push = [&](float v, idx_t id) {
            if (l2) {
                if (!HeapForL2::cmp2(distances[0], v, labels[0], id)) {
                    return false;
                }
                faiss::heap_replace_top<HeapForL2>(k, distances, labels, v, id);
            } else {
                if (!HeapForIP::cmp2(distances[0], v, labels[0], id)) {
                    return false;
                }
                faiss::heap_replace_top<HeapForIP>(k, distances, labels, v, id);
            }
            return true;
        };
        return keeping_errors([&] {
            return use_int8(k) ? scan_int8(n, codes, ids, push)
                               : scan_exact(n, codes, ids, push);
        });
    }
#endif

#if FAISS_TURBO_SCAN_CODES_HANDLER
    /// the handler does not say k: it comes with the options (see
    /// IVFScanOptions::k)
    size_t scan_codes(
            size_t n,
            const uint8_t* codes,
            const idx_t* ids,
            faiss::ResultHandler& handler) const override {
        auto push = [&](float v, idx_t id) {
            return (l2 ? v < handler.threshold : v > handler.threshold) &&
                   handler.add_result(v, id);
        };
        return keeping_errors([&] {
            return use_int8(options.k) ? scan_int8(n, codes, ids, push)
                                       : scan_exact(n, codes, ids, push);
        });
    }
#endif

    /// always exact: a radius on int8 scores would return other vectors
    /// than the estimator's, and there is no k to re-score a short list
    void scan_codes_range(
            size_t n,
            const uint8_t* codes,
            const idx_t* ids,
            float radius,
            faiss::RangeQueryResult& result) const override {
        keeping_errors([&] {
            std::vector<float> b(2 * tq.d);
            const uint8_t* c = rows(codes, n);
            for (size_t j = 0; j < n; j++, c += code_size) {
                idx_t id = label_of(ids, j);
                if (sel && !sel->is_member(id)) {
                    continue;
                }
                float v = tq.score(*cur, 0, c, b.data());
                if (l2 ? v < radius : v > radius) {
                    result.add(v, id);
                }
            }
        });
    }
};

/** The lists of IndexIVFTurboQuantFastScan (blocks, BlockedInvertedLists):
 * approximate scores by 8-bit table lookups (scan_lut.h), exact scores on
 * rows unpacked from the blocks. The tables are the query's, built once
 * and shared by its lists: a residual code's dot with the list's query is
 * <y, c_hat> - <R c, c_hat>, the second term kept per code by the lists
 * (BlockedInvertedLists::cdot). A list whose cdot is stale (changed since
 * the search began) gets tables of its own query instead.
 */
struct TQBlockScanner : TQScanner {
    const BlockedInvertedLists& lists;
    const LutKernels& kernels;
    // scratch, one scanner per thread
    mutable LutTables qtab;      ///< the query's
    mutable LutTables ltab;      ///< the current list's query's
    mutable float query_y2 = -1; ///< ||y||^2 of the query (qtab's source)
    mutable int own = -1; ///< the list scores with ltab (-1: not decided)
    mutable std::vector<float> ftables; ///< the tables' float scratch
    mutable std::vector<uint32_t> sums;
    mutable std::vector<uint8_t> rowbuf;

    TQBlockScanner(
            const TurboQuantizer& tq_in,
            bool l2_in,
            std::shared_ptr<const IVFCentroidTable> table_in,
            bool store_pairs_in,
            const faiss::IDSelector* sel_in,
            const IVFScanOptions& options_in,
            const BlockedInvertedLists& lists_in)
        : TQScanner(
                  tq_in,
                  l2_in,
                  std::move(table_in),
                  store_pairs_in,
                  sel_in,
                  options_in,
                  false),
          lists(lists_in),
          kernels(lut_kernels_best()) {
        approx = options.scan_mode == TQ_SCAN_INT8;
        sums.resize(kInt8Run);
    }

    void set_query(const float* x) override {
        TQScanner::set_query(x);
        qtab.built = false;
        query_y2 = -1; // see own_tables
    }

    void set_list(idx_t list_no_in, float coarse_dis) override {
        TQScanner::set_list(list_no_in, coarse_dis);
        ltab.built = false;
        own = -1;
    }

    /// whether the current (shifted) list scores with tables of its own
    /// query: a list changed since the refresh has no <R c, c_hat> yet, or
    /// ivf_list_needs_own_tables. Decided on the list's first run (not in
    /// set_query / set_list, whose failures are kept pending)
    bool own_tables() const {
        if (own < 0) {
            if (query_y2 < 0) {
                query_y2 = dot_lanes(query.y.data(), query.y.data(), tq.d);
            }
            own = !lists.fresh(list_no, table.get()) ||
                  ivf_list_needs_own_tables(cur->y.data(), tq.d, query_y2);
        }
        return own;
    }

    /// the tables for the current list, and the per-code terms to
    /// subtract from their dots (null: none). Tables are built on the
    /// first run that needs them, so empty lists cost nothing
    const LutTables& tables(const float*& corr, size_t j0) const {
        corr = nullptr;
        // the list's query differs from the query by R c (set_list)
        const bool shifted = ivf_list_shifted(tq, l2, table.get());
        if (shifted && own_tables()) {
            if (!ltab.built) {
                ltab.build(tq, cur->y.data(), ftables);
            }
            return ltab;
        }
        if (shifted) {
            corr = lists.cdot[list_no].data() + j0;
        }
        if (!qtab.built) {
            qtab.build(tq, query.y.data(), ftables);
        }
        return qtab;
    }

    const BlockedCodes& list() const {
        return lists.codes[list_no];
    }

    /// codes: the list's blocks (get_codes)
    void score_run(const uint8_t* codes, size_t j0, size_t nr, float* out)
            const override {
        const float* corr;
        const LutTables& t = tables(corr, j0);
        const BlockedCodes& bc = list();
        kernels.block_sums(
                codes + j0 / kLutBlockCodes * bc.block_bytes(),
                bc.ngroups,
                (nr + kLutBlockCodes - 1) / kLutBlockCodes,
                t.lut.data(),
                1,
                sums.data());
        const float qc = cur->qconst[0];
        tq.with_form(l2, [&](auto prod, auto deb, auto l2c) {
            for (size_t i = 0; i < nr; i++) {
                TQAffine a = tq.template affine_form<prod(), deb(), l2c()>(
                        bc.scalars(j0 + i));
                float dot = t.delta * (float)(int32_t)sums[i] + t.bias;
                if (corr) {
                    dot -= corr[i];
                }
                out[i] = qc + a.b + a.ac * dot;
            }
            return 0;
        });
    }

    const uint8_t* row(const uint8_t* /*codes*/, size_t j) const override {
        rowbuf.resize(code_size);
        list().code(tq, j, rowbuf.data());
        return rowbuf.data();
    }

    const uint8_t* rows(const uint8_t* /*codes*/, size_t n) const override {
        rowbuf.resize(n * code_size);
        list().rows(tq, 0, n, rowbuf.data());
        return rowbuf.data();
    }
};

} // namespace

faiss::InvertedListScanner* new_ivf_tq_scanner(
        const TurboQuantizer& tq,
        bool l2,
        std::shared_ptr<const IVFCentroidTable> table,
        bool store_pairs,
        const faiss::IDSelector* sel,
        const IVFScanOptions& options,
        const BlockedInvertedLists* lists) {
    // with store_pairs the lists' ids are not read, so a selector on ids
    // cannot be applied (FAISS 1.8+ refuses the combination as well)
    FAISS_THROW_IF_NOT_MSG(
            !(store_pairs && sel),
            "IndexIVFTurboQuant: an IDSelector cannot be combined with "
            "store_pairs");
    if (lists) {
        return new TQBlockScanner(
                tq, l2, std::move(table), store_pairs, sel, options, *lists);
    }
    return new TQScanner(tq, l2, std::move(table), store_pairs, sel, options);
}

} // namespace faiss_turbo
