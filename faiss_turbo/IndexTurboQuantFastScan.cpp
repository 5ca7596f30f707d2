#include <faiss_turbo/IndexTurboQuantFastScan.h>

#include <limits>

#include <faiss/impl/DistanceComputer.h>
#include <faiss/impl/FaissAssert.h>

#include <faiss_turbo/IndexTurboQuant.h>
#include <faiss_turbo/impl/kernels.h>
#include <faiss_turbo/impl/scan.h>
#include <faiss_turbo/impl/scan_int8.h>
#include <faiss_turbo/impl/scan_lut.h>
#include <faiss_turbo/impl/scan_prescan.h>

namespace faiss_turbo {

namespace {

/** Scores of stored vectors for FAISS's graph and refine indexes
 * (faiss.IndexHNSW over this storage, IndexRefine with it as the refine
 * index), which call it inside their OpenMP regions. FAISS's default
 * computer covers L2 only (by reconstruct) and aborted there for inner
 * products. The estimator on each code, as the flat index's computer; a
 * query with a NaN or an Inf scores NaN (an exception would end the
 * process there). */
struct TQFastScanDistanceComputer : faiss::DistanceComputer {
    const IndexTurboQuantFastScan& index;
    TQQueries q;
    std::vector<uint8_t> code;
    std::vector<float> buf, xi, xj;
    bool nonfinite = false;

    explicit TQFastScanDistanceComputer(const IndexTurboQuantFastScan& idx)
        : index(idx),
          code(idx.tq.code_size),
          buf(2 * idx.d),
          xi(idx.d),
          xj(idx.d) {}

    void set_query(const float* x) override {
        nonfinite = !all_finite(x, index.d);
        if (!nonfinite) {
            index.prepare_queries(1, x, q);
        }
    }

    float operator()(idx_t i) override {
        if (nonfinite) {
            return std::numeric_limits<float>::quiet_NaN();
        }
        index.codes.code(index.tq, i, code.data());
        return index.tq.score(q, 0, code.data(), buf.data());
    }

    /// the metric on the two reconstructions
    float symmetric_dis(idx_t i, idx_t j) override {
        index.codes.code(index.tq, i, code.data());
        index.tq.decode(1, code.data(), xi.data());
        index.codes.code(index.tq, j, code.data());
        index.tq.decode(1, code.data(), xj.data());
        return metric_between(
                xi.data(),
                xj.data(),
                index.d,
                index.metric_type == faiss::METRIC_L2);
    }
};

void check_codec(const TurboQuantizer& tq) {
    std::string why = lut_scan_unsupported(tq);
    FAISS_THROW_IF_NOT_FMT(
            why.empty(),
            "IndexTurboQuantFastScan: the fast-scan layout does not take %s",
            why.c_str());
}

} // namespace

IndexTurboQuantFastScan::IndexTurboQuantFastScan() {
    is_trained = false;
}

IndexTurboQuantFastScan::IndexTurboQuantFastScan(
        idx_t d_in,
        float bits,
        faiss::MetricType metric,
        bool centered_in,
        bool debiased,
        RotationType rotation_type,
        uint64_t seed)
    : faiss::Index(d_in, metric), centered(centered_in) {
    FAISS_THROW_IF_NOT_FMT(
            metric == faiss::METRIC_L2 || metric == faiss::METRIC_INNER_PRODUCT,
            "IndexTurboQuantFastScan supports METRIC_L2 and "
            "METRIC_INNER_PRODUCT, not metric %d",
            (int)metric);
    FAISS_THROW_IF_NOT_FMT(
            d_in >= 2, "IndexTurboQuantFastScan: d=%ld < 2", (long)d_in);
    tq = TurboQuantizer(
            d_in,
            TQVariant::MSE,
            bits,
            debiased,
            rotation_type,
            QJLType::GAUSSIAN,
            seed);
    tq.ip_offset = centered && metric == faiss::METRIC_INNER_PRODUCT;
    tq.set_layout();
    check_codec(tq);
    codes.set_codec(tq);
    is_trained = !centered;
}

IndexTurboQuantFastScan::IndexTurboQuantFastScan(const IndexTurboQuant& flat)
    : faiss::Index(flat.d, flat.metric_type),
      tq(flat.tq),
      centered(flat.centered),
      search_defaults(flat.search_defaults) {
    check_codec(tq);
    codes.set_codec(tq);
    is_trained = flat.is_trained;
    add_codes(flat.ntotal, flat.codes.data());
}

void IndexTurboQuantFastScan::train(idx_t n, const float* x) {
    FAISS_THROW_IF_NOT_FMT(n >= 0, "train: n=%ld < 0", (long)n);
    if (!centered) {
        return;
    }
    FAISS_THROW_IF_NOT_MSG(
            ntotal == 0,
            "IndexTurboQuantFastScan::train: the mean can only change while "
            "the index is empty");
    FAISS_THROW_IF_NOT_MSG(
            n > 0, "IndexTurboQuantFastScan::train needs vectors");
    tq.train_mean(n, x);
    is_trained = true;
}

void IndexTurboQuantFastScan::add(idx_t n, const float* x) {
    FAISS_THROW_IF_NOT_FMT(n >= 0, "add: n=%ld < 0", (long)n);
    FAISS_THROW_IF_NOT_MSG(
            is_trained,
            "IndexTurboQuantFastScan: train() the centered index first");
    if (n == 0) {
        return;
    }
    // encode first, so a bad vector leaves the index unchanged
    std::vector<uint8_t> buf(n * tq.code_size);
    sa_encode(n, x, buf.data());
    if (metric_type == faiss::METRIC_L2) { // files and merges keep theirs
        tq.check_l2_codes(n, buf.data(), "IndexTurboQuantFastScan::add");
    }
    add_codes(n, buf.data());
}

void IndexTurboQuantFastScan::add_codes(idx_t n, const uint8_t* rows) {
    FAISS_THROW_IF_NOT_FMT(n >= 0, "add_codes: n=%ld < 0", (long)n);
    FAISS_THROW_IF_NOT_MSG(
            is_trained || n == 0,
            "add_codes: train() the centered index first (codes hold "
            "x - mean)");
    tq.check_codes(n, rows, "IndexTurboQuantFastScan::add_codes");
    codes.append(tq, n, rows);
    ntotal = codes.ntotal;
}

void IndexTurboQuantFastScan::get_codes(idx_t i0, idx_t n, uint8_t* out) const {
    FAISS_THROW_IF_NOT_FMT(
            i0 >= 0 && n >= 0 && i0 + n <= ntotal,
            "get_codes: [%ld, %ld) is not within [0, %ld)",
            (long)i0,
            (long)(i0 + n),
            (long)ntotal);
    codes.rows(tq, i0, n, out); // whole blocks by transposes
}

void IndexTurboQuantFastScan::copy_to(IndexTurboQuant* flat) const {
    FAISS_THROW_IF_NOT_MSG(flat, "copy_to: null index");
    flat->d = d;
    flat->metric_type = metric_type;
    flat->metric_arg = metric_arg;
    flat->is_trained = is_trained;
    flat->tq = tq;
    flat->centered = centered;
    flat->search_defaults = search_defaults;
    flat->code_size = tq.code_size;
    flat->codes.resize(ntotal * tq.code_size);
    get_codes(0, ntotal, flat->codes.data());
    flat->ntotal = ntotal;
}

void IndexTurboQuantFastScan::reset() {
    codes.clear();
    ntotal = 0;
}

void IndexTurboQuantFastScan::prepare_queries(
        idx_t n, const float* x, TQQueries& q) const {
    tq.prepare_queries(n, x, metric_type == faiss::METRIC_L2, q);
}

void IndexTurboQuantFastScan::search(
        idx_t n,
        const float* x,
        idx_t k,
        float* distances,
        idx_t* labels,
        const faiss::SearchParameters* params) const {
    FAISS_THROW_IF_NOT_FMT(n >= 0, "search: n=%ld < 0", (long)n);
    FAISS_THROW_IF_NOT_FMT(k > 0, "search: k=%ld must be > 0", (long)k);
    FAISS_THROW_IF_NOT_MSG(is_trained, "search: index not trained");
    if (n == 0) {
        return;
    }
    const SearchParametersTurboQuant& opt =
            flat_search_options(params, search_defaults);
    const faiss::IDSelector* sel = params ? params->sel : nullptr;
    const bool prescan = prescan_applies(tq, opt.prescan, n);
    TQQueries q;
    prepare_queries(n, x, q);
    q.check_range("search", x, d);
    if (prescan) { // its second pass is the int8 scan at every width
        scan_knn_prescan(
                tq,
                nullptr,
                &codes,
                codes.ntotal,
                q,
                k,
                opt.rerank_factor,
                opt.prescan,
                distances,
                labels,
                sel);
    } else if (opt.scan_mode == TQ_SCAN_INT8 && lut_scan_preferred(tq, n)) {
        scan_knn_lut(
                tq, codes, q, k, opt.rerank_factor, distances, labels, sel);
    } else if (opt.scan_mode == TQ_SCAN_INT8) {
        scan_knn_int8(
                tq, codes, q, k, opt.rerank_factor, distances, labels, sel);
    } else {
        scan_knn_blocked_exact(tq, codes, q, k, distances, labels, sel);
    }
}

void IndexTurboQuantFastScan::range_search(
        idx_t n,
        const float* x,
        float radius,
        faiss::RangeSearchResult* result,
        const faiss::SearchParameters* params) const {
    FAISS_THROW_IF_NOT_FMT(n >= 0, "range_search: n=%ld < 0", (long)n);
    FAISS_THROW_IF_NOT_MSG(is_trained, "range_search: index not trained");
    check_radius(radius, "range_search");
    TQQueries q;
    prepare_queries(n, x, q);
    q.check_range("range_search", x, d);
    // the exact scan, each block's rows unpacked where it is scored: no
    // second copy of the codes
    scan_range(
            tq,
            [this](size_t i0, size_t nb, uint8_t* buf) {
                codes.rows(tq, i0, nb, buf);
                return (const uint8_t*)buf;
            },
            ntotal,
            q,
            radius,
            result,
            params ? params->sel : nullptr);
}

faiss::DistanceComputer*
IndexTurboQuantFastScan::get_distance_computer() const {
    return new TQFastScanDistanceComputer(*this);
}

void IndexTurboQuantFastScan::reconstruct(idx_t key, float* recons) const {
    FAISS_THROW_IF_NOT_FMT(
            key >= 0 && key < ntotal,
            "reconstruct: key %ld not in [0, %ld)",
            (long)key,
            (long)ntotal);
    std::vector<uint8_t> row(tq.code_size);
    codes.code(tq, key, row.data());
    tq.decode(1, row.data(), recons);
}

size_t IndexTurboQuantFastScan::remove_ids(const faiss::IDSelector& sel) {
    std::vector<bool> keep(ntotal);
    for (idx_t i = 0; i < ntotal; i++) {
        keep[i] = !sel.is_member(i);
    }
    size_t removed = codes.compact(keep);
    ntotal = codes.ntotal;
    return removed;
}

size_t IndexTurboQuantFastScan::sa_code_size() const {
    return tq.code_size;
}

void IndexTurboQuantFastScan::sa_encode(
        idx_t n, const float* x, uint8_t* bytes) const {
    FAISS_THROW_IF_NOT_FMT(n >= 0, "sa_encode: n=%ld < 0", (long)n);
    FAISS_THROW_IF_NOT_MSG(is_trained, "sa_encode: index not trained");
    tq.encode(n, x, bytes);
}

void IndexTurboQuantFastScan::sa_decode(
        idx_t n, const uint8_t* bytes, float* x) const {
    FAISS_THROW_IF_NOT_FMT(n >= 0, "sa_decode: n=%ld < 0", (long)n);
    tq.check_codes(n, bytes, "sa_decode"); // NaN floats: not our codes
    tq.decode(n, bytes, x);
}

void IndexTurboQuantFastScan::check_compatible_for_merge(
        const faiss::Index& other) const {
    auto o = dynamic_cast<const IndexTurboQuantFastScan*>(&other);
    FAISS_THROW_IF_NOT_MSG(o, "can only merge IndexTurboQuantFastScan indexes");
    FAISS_THROW_IF_NOT_MSG(
            o->metric_type == metric_type && tq.same_codes_as(o->tq),
            "IndexTurboQuantFastScan: merge needs the same codec (d, "
            "metric, bits, seed, rotation, mean, codebooks: an index read "
            "from an older file may hold other codebooks)");
}

void IndexTurboQuantFastScan::merge_from(faiss::Index& other, idx_t add_id) {
    FAISS_THROW_IF_NOT_MSG(
            add_id == 0, "IndexTurboQuantFastScan: merge_from with add_id");
    FAISS_THROW_IF_NOT_MSG(
            &other != this, "IndexTurboQuantFastScan: merge_from itself");
    check_compatible_for_merge(other);
    auto& o = static_cast<IndexTurboQuantFastScan&>(other);
    std::vector<uint8_t> rows(o.ntotal * tq.code_size);
    o.get_codes(0, o.ntotal, rows.data());
    add_codes(o.ntotal, rows.data());
    o.reset();
}

} // namespace faiss_turbo
