#include <faiss_turbo/IndexIVFTurboQuant.h>

#include <algorithm>
#include <cmath>
#include <cstring>
#include <limits>
#include <memory>
#include <mutex>
#include <vector>

#include <omp.h>

#include <faiss/clone_index.h>
#include <faiss/impl/FaissAssert.h>
#include <faiss/impl/IDSelector.h>
#include <faiss/invlists/DirectMap.h>
#include <faiss/invlists/InvertedLists.h>

#include <faiss_turbo/impl/blocked_invlists.h>
#include <faiss_turbo/impl/kernels.h>
#include <faiss_turbo/impl/omp_errors.h>

namespace faiss_turbo {

namespace {

constexpr idx_t kEncodeBlock = 4096; // vectors encoded at once

void check_metric(faiss::MetricType m) {
    FAISS_THROW_IF_NOT_FMT(
            m == faiss::METRIC_L2 || m == faiss::METRIC_INNER_PRODUCT,
            "IndexIVFTurboQuant supports METRIC_L2 and "
            "METRIC_INNER_PRODUCT, not metric %d",
            (int)m);
}

faiss::Index* non_null(faiss::Index* quantizer) {
    FAISS_THROW_IF_NOT_MSG(
            quantizer, "IndexIVFTurboQuant: the coarse quantizer is null");
    return quantizer;
}

/** Carries a search's scan options from search_preassigned to
 * get_InvertedListScanner. FAISS before 1.11 calls
 * get_InvertedListScanner(store_pairs, sel) without the search's params,
 * and the scanners are made inside FAISS's parallel loops, so the options
 * ride on the one argument that does get there: the selector. It forwards
 * is_member to the caller's selector; get_InvertedListScanner unwraps it
 * and the scanner sees the caller's selector (null if none), so filtering
 * costs what it cost before. FAISS treats a non-null selector alike
 * except that (1) it refuses it with store_pairs: then no wrapper, and
 * the options come from params (FAISS >= 1.11) or search_defaults;
 * (2) an IDSelectorRange with assume_sorted loses FAISS's list-clipping
 * shortcut (same results, through is_member).
 */
struct IVFScanOptionsSelector : faiss::IDSelector {
    const faiss::IDSelector* inner = nullptr;
    IVFScanOptions options;
    /// scanners made before FAISS's parallel region, one per thread, and
    /// handed out there by get_InvertedListScanner: FAISS makes them
    /// outside its try, where out of memory would end the process
    mutable std::vector<std::unique_ptr<faiss::InvertedListScanner>> spare;
    mutable std::mutex spare_mutex;

    bool is_member(idx_t id) const override {
        return !inner || inner->is_member(id);
    }

    /// a spare scanner (owned by the caller), or null when none is left
    faiss::InvertedListScanner* take_spare() const {
        std::lock_guard<std::mutex> lock(spare_mutex);
        if (spare.empty()) {
            return nullptr;
        }
        faiss::InvertedListScanner* s = spare.back().release();
        spare.pop_back();
        return s;
    }
};

/// inner products store <o, r> exactly for the point o that the encoded r
/// is relative to (the list centroid, or the mean): see TurboQuantizer.h
bool uses_ip_offset(faiss::MetricType metric, bool by_residual, bool centered) {
    return metric == faiss::METRIC_INNER_PRODUCT && (by_residual || centered);
}

/// the code size, before the tables are built (IndexIVF needs it first)
size_t layout_code_size(
        size_t d, TQVariant variant, float bits, bool deb, bool ip_offset) {
    TurboQuantizer t;
    t.d = d;
    t.variant = variant;
    t.bits = bits;
    t.debiased = deb && variant == TQVariant::MSE;
    t.ip_offset = ip_offset;
    t.set_layout();
    return t.code_size;
}

} // namespace

IndexIVFTurboQuant::IndexIVFTurboQuant() = default;

IndexIVFTurboQuant::IndexIVFTurboQuant(
        faiss::Index* quantizer_in,
        size_t d_in,
        size_t nlist_in,
        float bits,
        TQVariant variant,
        faiss::MetricType metric,
        bool by_residual_in,
        bool centered_in,
        bool debiased,
        RotationType rotation_type,
        QJLType qjl_type,
        uint64_t seed)
    : faiss::IndexIVF(
              non_null(quantizer_in),
              d_in,
              nlist_in,
              layout_code_size(
                      d_in,
                      variant,
                      bits,
                      debiased,
                      uses_ip_offset(metric, by_residual_in, centered_in)),
              metric),
      centered(centered_in) {
    check_metric(metric);
    FAISS_THROW_IF_NOT_MSG(
            nlist_in > 0, "IndexIVFTurboQuant: nlist must be > 0");
    tq = TurboQuantizer(
            d_in,
            variant,
            bits,
            debiased && variant == TQVariant::MSE,
            rotation_type,
            qjl_type,
            seed);
    by_residual = by_residual_in;
    tq.ip_offset = uses_ip_offset(metric, by_residual, centered);
    tq.set_layout();
    if (centered && !by_residual) {
        is_trained = false; // the mean is learned in train()
    }
}

IndexIVFTurboQuant* IndexIVFTurboQuant::clone() const {
    std::unique_ptr<IndexIVFTurboQuant> res(new IndexIVFTurboQuant(*this));
    deepen_copy(*res);
    return res.release();
}

void IndexIVFTurboQuant::deepen_copy(IndexIVFTurboQuant& res) const {
    // the shallow copy shares our pointers: disown them before anything
    // can throw, then give it its own
    res.own_fields = false;
    res.own_invlists = false;
    res.quantizer = nullptr;
    res.invlists = nullptr;
    std::unique_ptr<faiss::InvertedLists> il;
    if (auto a = dynamic_cast<const faiss::ArrayInvertedLists*>(invlists)) {
        il.reset(new faiss::ArrayInvertedLists(*a));
    } else if (auto b = dynamic_cast<const BlockedInvertedLists*>(invlists)) {
        il.reset(new BlockedInvertedLists(*b));
    }
    FAISS_THROW_IF_NOT_MSG(
            il,
            "IndexIVFTurboQuant::clone: only ArrayInvertedLists and "
            "BlockedInvertedLists can be copied");
    FAISS_THROW_IF_NOT_MSG(
            quantizer, "IndexIVFTurboQuant::clone: no quantizer");
    std::unique_ptr<faiss::Index> q(faiss::clone_index(quantizer));
    IndexIVFTurboQuant* r = &res;
    r->quantizer = q.release();
    r->own_fields = true;
    r->invlists = il.release();
    r->own_invlists = true;
    r->centroid_cache.reset(); // it would point at our quantizer
}

void IndexIVFTurboQuant::train(idx_t n, const float* x) {
    FAISS_THROW_IF_NOT_FMT(n >= 0, "train: n=%ld < 0", (long)n);
    FAISS_THROW_IF_NOT_MSG(
            ntotal == 0,
            "IndexIVFTurboQuant::train: the index must be empty (the codes "
            "depend on the centroids and the mean)");
    check_vectors(n, x, "IndexIVFTurboQuant::train");
    centroid_cache.reset();
    faiss::IndexIVF::train(n, x);
    centroid_cache.reset();
}

void IndexIVFTurboQuant::add_with_ids(
        idx_t n, const float* x, const idx_t* xids) {
    check_vectors(n, x, "IndexIVFTurboQuant::add");
    FAISS_THROW_IF_NOT_MSG(
            is_trained, "IndexIVFTurboQuant::add: index not trained");
    // IndexIVF::add_with_ids is assign + add_core, whose parallel loop
    // stores each list's entries outside any try: out of memory there
    // ended the process. Here, in batches as add_core's (they bound the
    // codes' buffer), a batch is stored on this thread once it is encoded
    // and its lists' memory reserved
    constexpr idx_t kBatch = 65536;
    for (idx_t i0 = 0; i0 < n; i0 += kBatch) {
        const idx_t nb = std::min(kBatch, n - i0);
        add_batch(nb, x + i0 * d, xids ? xids + i0 : nullptr);
    }
}

void IndexIVFTurboQuant::add_batch(idx_t n, const float* x, const idx_t* xids) {
    std::vector<idx_t> coarse(n);
    quantizer->assign(n, x, coarse.data());
    std::vector<uint8_t> codes(n * code_size);
    encode_vectors(n, x, coarse.data(), codes.data()); // lists checked
    reserve_lists(n, coarse.data());
    faiss::DirectMapAdd dm(direct_map, n, xids);
    idx_t i = 0;
    try { // cannot fail on our lists (reserved); other lists may
        for (; i < n; i++) {
            const idx_t id = xids ? xids[i] : ntotal + i;
            const size_t ofs = invlists->add_entry(
                    coarse[i], id, codes.data() + i * code_size);
            dm.add(i, coarse[i], ofs);
        }
    } catch (...) { // the first i are stored: counted, and mapped
        ntotal += i;
        if (direct_map.type == faiss::DirectMap::Array) {
            direct_map.array.resize(ntotal);
        }
        throw;
    }
    ntotal += n;
}

namespace {

/// capacity for n elements of a std::vector or of FAISS's MaybeOwnedVector
/// (1.11+, no reserve): a resize there and back
template <class V> void reserve_by_resize(V& v, size_t n) {
    const size_t old = v.size();
    if (n > old) {
        v.resize(n);
        v.resize(old);
    }
}

} // namespace

void IndexIVFTurboQuant::reserve_lists(idx_t n, const idx_t* list_nos) {
    auto array = dynamic_cast<faiss::ArrayInvertedLists*>(invlists);
    auto blocked = dynamic_cast<BlockedInvertedLists*>(invlists);
    if (!array && !blocked) {
        return;
    }
    // the lists touched and their counts, by sorting (a counter per list
    // would cost O(nlist) for every small batch)
    std::vector<idx_t> sorted(list_nos, list_nos + n);
    std::sort(sorted.begin(), sorted.end());
    for (size_t i = 0; i < sorted.size();) {
        const idx_t l = sorted[i];
        size_t more = 0;
        for (; i < sorted.size() && sorted[i] == l; i++) {
            more++;
        }
        if (array) {
            const size_t size = array->ids[l].size() + more;
            reserve_by_resize(array->ids[l], size);
            reserve_by_resize(array->codes[l], size * code_size);
        } else {
            blocked->reserve_more(l, more);
        }
    }
}

#if FAISS_TURBO_HAS_TRAIN_ENCODER
void IndexIVFTurboQuant::train_encoder(
        idx_t n, const float* x, const idx_t* /*assign*/) {
#else
void IndexIVFTurboQuant::train_residual(idx_t n, const float* x) {
#endif
    // the codec itself needs no data; with residuals x is not what is
    // encoded here (FAISS < 1.8 passes the raw vectors), so no mean then
    if (!centered || by_residual) {
        return;
    }
    FAISS_THROW_IF_NOT_MSG(n > 0, "IndexIVFTurboQuant::train needs vectors");
    tq.train_mean(n, x);
}

void IndexIVFTurboQuant::encode_vectors(
        idx_t n,
        const float* x,
        const idx_t* list_nos,
        uint8_t* codes,
        bool include_listnos) const {
    FAISS_THROW_IF_NOT_MSG(is_trained, "IndexIVFTurboQuant: not trained");
    const size_t cs = include_listnos ? coarse_code_size() : 0;
    const size_t stride = cs + code_size;
    std::vector<float> res, origins;
    std::vector<uint8_t> tmp;
    // residuals of inner-product codecs store <c, x - c> (ip_offset)
    const bool want_origins = by_residual && tq.ip_offset;
    for (idx_t i0 = 0; i0 < n; i0 += kEncodeBlock) {
        idx_t nb = std::min(kEncodeBlock, n - i0);
        const float* xb = x + i0 * d;
        // before the parallel loop. A negative list is FAISS's "not
        // stored", but FAISS's add_core still counts the vector in ntotal,
        // so no list would hold an id that ntotal counts (and the index
        // could not be written): refused, as an out-of-range one
        for (idx_t i = 0; i < nb; i++) {
            idx_t l = list_nos[i0 + i];
            FAISS_THROW_IF_NOT_FMT(
                    l >= 0 && l < (idx_t)nlist,
                    "IndexIVFTurboQuant: vector %ld assigned to list %ld, "
                    "not in [0, %zd)",
                    (long)(i0 + i),
                    (long)l,
                    nlist);
        }
        if (by_residual) {
            res.resize(nb * d);
            origins.assign(want_origins ? nb * d : 0, 0.0f);
            OmpErrors errors; // the quantizer may throw (reconstruct)
#pragma omp parallel for if (nb > 64)
            for (idx_t i = 0; i < nb; i++) {
                idx_t l = list_nos[i0 + i];
                errors.run([&] {
                    quantizer->compute_residual(
                            xb + i * d, res.data() + i * d, l);
                    if (want_origins) {
                        quantizer->reconstruct(l, origins.data() + i * d);
                    }
                });
            }
            errors.rethrow();
            xb = res.data();
        }
        tmp.resize(nb * code_size);
        tq.encode( // a refused residual is named by the caller's row
                nb,
                xb,
                tmp.data(),
                want_origins ? origins.data() : nullptr,
                i0);
        for (idx_t i = 0; i < nb; i++) {
            uint8_t* out = codes + (i0 + i) * stride;
            idx_t l = list_nos[i0 + i];
            if (cs) {
                encode_listno(l, out);
            }
            memcpy(out + cs, tmp.data() + i * code_size, code_size);
        }
    }
}

void IndexIVFTurboQuant::add_centroids(
        idx_t n, const idx_t* list_nos, float* x) const {
    std::vector<float> c(d);
    for (idx_t i = 0; i < n; i++) {
        quantizer->reconstruct(list_nos[i], c.data());
        for (idx_t j = 0; j < d; j++) {
            x[i * d + j] += c[j];
        }
    }
}

void IndexIVFTurboQuant::sa_decode(
        idx_t n, const uint8_t* bytes, float* x) const {
    FAISS_THROW_IF_NOT_FMT(n >= 0, "sa_decode: n=%ld < 0", (long)n);
    const size_t cs = coarse_code_size();
    std::vector<idx_t> lists(n);
    std::vector<uint8_t> codes(n * code_size);
    for (idx_t i = 0; i < n; i++) {
        const uint8_t* code = bytes + i * (cs + code_size);
        lists[i] = decode_listno(code);
        memcpy(codes.data() + i * code_size, code + cs, code_size);
    }
    tq.check_codes(n, codes.data(), "sa_decode");
    tq.decode(n, codes.data(), x);
    if (by_residual) {
        add_centroids(n, lists.data(), x);
    }
}

void IndexIVFTurboQuant::reconstruct_from_offset(
        int64_t list_no, int64_t offset, float* recons) const {
    // FAISS's get_single_code only asserts the offset (an abort)
    FAISS_THROW_IF_NOT_FMT(
            list_no >= 0 && list_no < (int64_t)nlist && offset >= 0 &&
                    offset < (int64_t)invlists->list_size(list_no),
            "reconstruct_from_offset: list %ld offset %ld out of range",
            (long)list_no,
            (long)offset);
    faiss::InvertedLists::ScopedCodes code(invlists, list_no, offset);
    tq.decode(1, code.get(), recons);
    if (by_residual) {
        idx_t l = list_no;
        add_centroids(1, &l, recons);
    }
}

void IndexIVFTurboQuant::check_no_prescan(
        const faiss::SearchParameters* params, const char* what) const {
    if (dynamic_cast<const SearchParametersIVFTurboQuant*>(params)) {
        return; // the defaults are not used
    }
    FAISS_THROW_IF_NOT_FMT(
            search_defaults.prescan == 0,
            "%s: search_defaults.prescan=%d: the sign pre-scan is an option "
            "of the flat indexes, an IVF index scans only its probed lists",
            what,
            search_defaults.prescan);
}

IVFScanOptions IndexIVFTurboQuant::scan_options(
        const faiss::SearchParameters* params,
        idx_t k,
        const char* what) const {
    const auto* tp = dynamic_cast<const SearchParametersIVFTurboQuant*>(params);
    IVFScanOptions o;
    o.scan_mode = tp ? tp->scan_mode : search_defaults.scan_mode;
    o.rerank_factor = tp ? tp->rerank_factor : search_defaults.rerank_factor;
    o.k = k > 0 ? (size_t)k : 0;
    o.ntotal = ntotal;
    check_scan_options(o.scan_mode, o.rerank_factor, what);
    return o;
}

void IndexIVFTurboQuant::check_scanner_options(
        const faiss::SearchParameters* params, const char* what) const {
    scan_options(params, 0, what);
#if !FAISS_TURBO_SCANNER_TAKES_PARAMS
    // FAISS < 1.8 gives a scanner no parameters: it reads search_defaults
    scan_options(nullptr, 0, what);
#endif
}

#if FAISS_TURBO_SCANNER_TAKES_PARAMS
faiss::InvertedListScanner* IndexIVFTurboQuant::get_InvertedListScanner(
        bool store_pairs,
        const faiss::IDSelector* sel,
        const faiss::IVFSearchParameters* params) const {
#else
faiss::InvertedListScanner* IndexIVFTurboQuant::get_InvertedListScanner(
        bool store_pairs, const faiss::IDSelector* sel) const {
    const faiss::IVFSearchParameters* params = nullptr;
#endif
    if (auto carrier = dynamic_cast<const IVFScanOptionsSelector*>(sel)) {
        if (faiss::InvertedListScanner* s = carrier->take_spare()) {
            return s;
        }
    }
    return new_scanner(store_pairs, sel, params);
}

int IndexIVFTurboQuant::scan_threads(idx_t n, size_t np) const {
    // FAISS's rule (IndexIVF::search_preassigned's do_parallel): serial in
    // parallel_mode 0, where IndexIVF::search splits the queries around it
    const int pmode = parallel_mode & ~PARALLEL_MODE_NO_HEAP_INIT;
    np = std::min(np, nlist);
    const bool parallel = pmode == 1   ? np > 1
                          : pmode == 2 ? np * n > 1
                          : pmode == 3 ? n > 1
                                       : false;
    const int nt = omp_get_max_threads();
    return parallel && nt >= 2 && !omp_in_parallel() ? nt : 1;
}

faiss::InvertedListScanner* IndexIVFTurboQuant::new_scanner(
        bool store_pairs,
        const faiss::IDSelector* sel,
        const faiss::IVFSearchParameters* params) const {
    IVFScanOptions options;
    if (auto carrier = dynamic_cast<const IVFScanOptionsSelector*>(sel)) {
        options = carrier->options; // checked by search_preassigned
        sel = carrier->inner;
    } else { // store_pairs, range search, or a scanner made by the caller
        options = scan_options(
                params, 0, "IndexIVFTurboQuant::get_InvertedListScanner");
    }
    std::shared_ptr<const IVFCentroidTable> table;
    if (by_residual) {
        table = centroid_cache.get(tq, *quantizer, nlist);
    }
    // the scanner follows the lists' layout (checked by search_preassigned)
    return new_ivf_tq_scanner(
            tq,
            metric_type == faiss::METRIC_L2,
            std::move(table),
            store_pairs,
            sel,
            options,
            dynamic_cast<const BlockedInvertedLists*>(invlists));
}

void IndexIVFTurboQuant::search(
        idx_t n,
        const float* x,
        idx_t k,
        float* distances,
        idx_t* labels,
        const faiss::SearchParameters* params) const {
    check_queries(n, x, "IndexIVFTurboQuant::search");
    scan_options(params, k, "IndexIVFTurboQuant::search"); // checks them
    check_no_prescan(params, "IndexIVFTurboQuant::search");
    check_lists("IndexIVFTurboQuant::search"); // before FAISS's threads
    faiss::IndexIVF::search(n, x, k, distances, labels, params);
}

void IndexIVFTurboQuant::range_search(
        idx_t n,
        const float* x,
        float radius,
        faiss::RangeSearchResult* result,
        const faiss::SearchParameters* params) const {
    const char* what = "IndexIVFTurboQuant::range_search";
    check_queries(n, x, what);
    check_lists(what);
    check_radius(radius, what);
    // FAISS makes the range scanners inside its threads, where the
    // options' check could not throw: checked here (range scores are exact
    // whatever the options)
    check_scanner_options(params, what);
    faiss::IndexIVF::range_search(n, x, radius, result, params);
}

void IndexIVFTurboQuant::search_preassigned(
        idx_t n,
        const float* x,
        idx_t k,
        const idx_t* assign,
        const float* centroid_dis,
        float* distances,
        idx_t* labels,
        bool store_pairs,
        const faiss::IVFSearchParameters* params,
        faiss::IndexIVFStats* stats) const {
    check_queries(n, x, "IndexIVFTurboQuant::search_preassigned");
    check_lists("IndexIVFTurboQuant::search_preassigned");
    check_assign(n, assign, params, "IndexIVFTurboQuant::search_preassigned");
    check_no_prescan(params, "IndexIVFTurboQuant::search_preassigned");
    IVFScanOptionsSelector carrier;
    carrier.options =
            scan_options(params, k, "IndexIVFTurboQuant::search_preassigned");
    if (store_pairs) { // no carrier: the scanner checks the options itself
        check_scanner_options(params, "IndexIVFTurboQuant::search_preassigned");
    }
    // FAISS refuses a selector with store_pairs (see IVFScanOptionsSelector)
    faiss::SearchParametersIVF wrapped;
    if (!store_pairs) {
        if (params) {
            wrapped = *params; // FAISS's fields, whatever the version
        } else {
            wrapped.nprobe = nprobe;
            wrapped.max_codes = max_codes;
        }
        carrier.inner = wrapped.sel;
        wrapped.sel = &carrier;
        params = &wrapped;
        const int nt = scan_threads(n, params->nprobe);
        carrier.spare.reserve(nt); // a push_back that throws would leak
        for (int t = 0; t < nt; t++) {
            carrier.spare.emplace_back(new_scanner(false, &carrier, params));
        }
    }
    faiss::IndexIVF::search_preassigned(
            n,
            x,
            k,
            assign,
            centroid_dis,
            distances,
            labels,
            store_pairs,
            params,
            stats);
    if (parallel_mode & PARALLEL_MODE_NO_HEAP_INIT) {
        return; // the caller owns the heaps and finalizes them
    }
    // FAISS's heaps leave +-FLT_MAX in empty slots; the flat index and the
    // FAISS convention we follow use infinities
    const float empty = metric_type == faiss::METRIC_L2
                                ? std::numeric_limits<float>::infinity()
                                : -std::numeric_limits<float>::infinity();
    for (idx_t i = 0; i < n * k; i++) {
        if (labels[i] < 0) {
            distances[i] = empty;
        }
    }
}

void IndexIVFTurboQuant::range_search_preassigned(
        idx_t nx,
        const float* x,
        float radius,
        const idx_t* keys,
        const float* coarse_dis,
        faiss::RangeSearchResult* result,
        bool store_pairs,
        const faiss::IVFSearchParameters* params,
        faiss::IndexIVFStats* stats) const {
    const char* what = "IndexIVFTurboQuant::range_search_preassigned";
    check_queries(nx, x, what);
    check_lists(what);
    check_assign(nx, keys, params, what);
    check_radius(radius, what);
    check_scanner_options(params, what); // as range_search
    // FAISS makes the scanner (which refuses the pair) in its threads
    FAISS_THROW_IF_NOT_FMT(
            !(store_pairs && params && params->sel),
            "%s: a selector cannot be combined with store_pairs",
            what);
    faiss::IndexIVF::range_search_preassigned(
            nx,
            x,
            radius,
            keys,
            coarse_dis,
            result,
            store_pairs,
            params,
            stats);
}

void IndexIVFTurboQuant::check_vectors(
        idx_t n, const float* x, const char* what) const {
    FAISS_THROW_IF_NOT_FMT(n >= 0, "%s: n=%ld < 0", what, (long)n);
    if (metric_type == faiss::METRIC_L2) { // NaN / Inf included
        check_l2_norms(n, d, x, what, "vector");
    } else {
        check_finite(n, d, x, what, "vector");
    }
}

void IndexIVFTurboQuant::check_queries(
        idx_t n, const float* x, const char* what) const {
    FAISS_THROW_IF_NOT_FMT(n >= 0, "%s: n=%ld < 0", what, (long)n);
    if (metric_type == faiss::METRIC_L2) { // NaN / Inf included
        check_l2_norms(n, d, x, what, "query");
    } else {
        check_ip_norms(n, d, x, what, "query");
    }
}

size_t IndexIVFTurboQuant::check_assign(
        idx_t n,
        const idx_t* assign,
        const faiss::IVFSearchParameters* params,
        const char* what) const {
    const size_t np = std::min(nlist, params ? params->nprobe : nprobe);
    FAISS_THROW_IF_NOT_FMT(np > 0, "%s: nprobe is 0", what);
    for (idx_t i = 0; i < n * (idx_t)np; i++) {
        FAISS_THROW_IF_NOT_FMT(
                assign[i] < (idx_t)nlist,
                "%s: query %ld assigned to list %ld of %zd",
                what,
                (long)(i / np),
                (long)assign[i],
                nlist);
    }
    return np;
}

void IndexIVFTurboQuant::check_same_codes(
        const faiss::Index& other, const char* what) const {
    auto o = dynamic_cast<const IndexIVFTurboQuant*>(&other);
    FAISS_THROW_IF_NOT_FMT(
            o, "%s: the other index is no IndexIVFTurboQuant", what);
    FAISS_THROW_IF_NOT_FMT(
            tq.same_codes_as(o->tq) && o->by_residual == by_residual &&
                    o->centered == centered,
            "%s needs the same codec (bits, variant, seed, rotation, QJL "
            "type, mean, codebooks and ip_offset: indexes read from older "
            "files may hold other codebooks, and inner-product ones no "
            "ip_offset) and the same by_residual",
            what);
}

void IndexIVFTurboQuant::check_compatible_for_merge(
        const faiss::Index& other) const {
    faiss::IndexIVF::check_compatible_for_merge(other);
    check_same_codes(other, "IndexIVFTurboQuant: merge");
}

void IndexIVFTurboQuant::check_lists(const char* what) const {
    FAISS_THROW_IF_NOT_FMT(is_trained, "%s: index not trained", what);
    FAISS_THROW_IF_NOT_FMT(
            invlists && invlists->nlist == nlist &&
                    invlists->code_size == code_size,
            "%s: no inverted lists, or lists of another nlist or code size",
            what);
    auto b = dynamic_cast<BlockedInvertedLists*>(invlists);
    FAISS_THROW_IF_NOT_FMT(
            !b || (b->tq.d == tq.d && b->tq.bits == tq.bits &&
                   b->tq.variant == tq.variant &&
                   b->tq.debiased == tq.debiased &&
                   b->tq.ip_offset == tq.ip_offset),
            "%s: blocked lists of another codec",
            what);
    // the centroid table is built here, not first in a scanner inside
    // FAISS's threads, where its checks of the quantizer could not throw
    auto table = centroid_table();
    if (b) { // per-code terms that let one query's tables serve every list
        b->refresh(table);
    }
}

std::shared_ptr<const IVFCentroidTable>
IndexIVFTurboQuant::centroid_table() const {
    return by_residual ? centroid_cache.get(tq, *quantizer, nlist) : nullptr;
}

void IndexIVFTurboQuant::copy_subset_to(
        faiss::IndexIVF& other,
        ivf_subset_type_t subset_type,
        idx_t a1,
        idx_t a2) const {
    FAISS_THROW_IF_NOT_MSG(
            &other != this, "IndexIVFTurboQuant: copy_subset_to itself");
    // not merge's whole check: row and blocked lists both take row codes
    check_same_codes(other, "IndexIVFTurboQuant::copy_subset_to");
    faiss::IndexIVF::copy_subset_to(other, subset_type, a1, a2);
}

void IndexIVFTurboQuant::merge_from(faiss::Index& other, idx_t add_id) {
    FAISS_THROW_IF_NOT_MSG(
            &other != this, "IndexIVFTurboQuant: merge_from itself");
    check_compatible_for_merge(other);
    auto& o = static_cast<IndexIVFTurboQuant&>(other);
    const bool blocked = dynamic_cast<BlockedInvertedLists*>(invlists) ||
                         dynamic_cast<BlockedInvertedLists*>(o.invlists);
    if (!blocked) {
        faiss::IndexIVF::merge_from(other, add_id);
        return;
    }
    // FAISS's InvertedLists::merge_from reads get_codes() as rows, which
    // blocked lists are not: move row codes list by list, the counts
    // with each list, so that a failure part way (out of memory) leaves
    // every vector in one index or the other, counted there
    std::vector<idx_t> ids;
    for (size_t l = 0; l < nlist; l++) {
        const size_t n = o.invlists->list_size(l);
        if (n == 0) {
            continue;
        }
        faiss::InvertedLists::ScopedIds oids(o.invlists, l);
        ids.assign(oids.get(), oids.get() + n);
        for (idx_t& id : ids) {
            id += add_id;
        }
        invlists->add_entries(l, n, ids.data(), ListRows(*o.invlists, l).get());
        o.invlists->resize(l, 0);
        ntotal += n;
        o.ntotal -= n;
    }
}

void IndexIVFTurboQuant::update_vectors(
        int nv, const idx_t* ids, const float* x) {
    FAISS_THROW_IF_NOT_MSG(is_trained, "update_vectors: index not trained");
    check_vectors(nv, x, "update_vectors");
    check_update_ids(nv, ids);
    // the new codes before any vector moves: a vector encode refuses (one
    // too long for float) must leave the stored ones in place, where
    // FAISS's Hashtable path removes them first
    std::vector<idx_t> assign(nv);
    quantizer->assign(nv, x, assign.data());
    std::vector<uint8_t> codes(nv * code_size);
    encode_vectors(nv, x, assign.data(), codes.data()); // lists checked
    reserve_lists(nv, assign.data()); // the moves below then allocate less
    if (direct_map.type == faiss::DirectMap::Hashtable) {
        replace_hashed(nv, ids, assign.data(), codes.data());
    } else if (dynamic_cast<BlockedInvertedLists*>(invlists)) {
        update_blocked(nv, ids, assign.data(), codes.data());
    } else {
        direct_map.update_codes(invlists, nv, ids, assign.data(), codes.data());
    }
}

void IndexIVFTurboQuant::replace_hashed(
        int nv, const idx_t* ids, const idx_t* assign, const uint8_t* codes) {
    faiss::IDSelectorArray sel(nv, ids);
    const size_t removed = remove_ids(sel);
    FAISS_THROW_IF_NOT(removed == (size_t)nv); // check_update_ids' ids
    for (int i = 0; i < nv; i++) {
        const size_t ofs =
                invlists->add_entry(assign[i], ids[i], codes + i * code_size);
        direct_map.add_single_id(ids[i], assign[i], ofs);
        ntotal++;
    }
}

void IndexIVFTurboQuant::check_update_ids(int nv, const idx_t* ids) const {
    // all of them before any vector moves: FAISS checks an Array map's ids
    // as it updates them (the earlier ones stayed updated), and with a
    // Hashtable removes them all first (a missing or repeated id lost the
    // vectors removed)
    const bool array = direct_map.type == faiss::DirectMap::Array;
    FAISS_THROW_IF_NOT_MSG(
            array || direct_map.type == faiss::DirectMap::Hashtable,
            "update_vectors: needs a direct map (make_direct_map() or "
            "set_direct_map_type())");
    std::vector<idx_t> sorted(ids, ids + nv);
    std::sort(sorted.begin(), sorted.end());
    for (int i = 0; i < nv; i++) {
        const idx_t id = sorted[i];
        const bool known =
                array ? id >= 0 && id < (idx_t)direct_map.array.size() &&
                                direct_map.array[id] >= 0
                      : direct_map.hashtable.count(id) > 0;
        FAISS_THROW_IF_NOT_FMT(
                known, "update_vectors: id %ld is not in the index", (long)id);
        FAISS_THROW_IF_NOT_FMT(
                i == 0 || sorted[i - 1] != id,
                "update_vectors: id %ld given twice",
                (long)id);
    }
}

void IndexIVFTurboQuant::update_blocked(
        int nv, const idx_t* ids, const idx_t* assign, const uint8_t* codes) {
    // DirectMap::update_codes' steps: the entry leaves its list (the
    // list's last one takes its place), then joins its new list
    std::vector<idx_t>& where = direct_map.array;
    for (int i = 0; i < nv; i++) {
        const idx_t id = ids[i];
        const size_t l = faiss::lo_listno(where[id]);
        const size_t ofs = faiss::lo_offset(where[id]);
        const size_t last = invlists->list_size(l) - 1;
        if (ofs != last) {
            const idx_t id2 = invlists->get_single_id(l, last);
            // the copy first (blocked lists allocate it): out of memory
            // then leaves the map as the lists are
            faiss::InvertedLists::ScopedCodes moved(invlists, l, last);
            invlists->update_entry(l, ofs, id2, moved.get());
            where[id2] = faiss::lo_build(l, ofs);
        }
        invlists->resize(l, last);
        const size_t l2 = assign[i];
        where[id] = faiss::lo_build(l2, invlists->list_size(l2));
        invlists->add_entry(l2, id, codes + i * code_size);
    }
}

void IndexIVFTurboQuant::reset_centroid_table() {
    centroid_cache.reset();
}

} // namespace faiss_turbo
