#include <faiss_turbo/IndexTurboQuant.h>

#include <cmath>
#include <cstring>
#include <limits>

#include <faiss/impl/DistanceComputer.h>
#include <faiss/impl/FaissAssert.h>

#include <faiss_turbo/SearchParametersTurboQuant.h>
#include <faiss_turbo/impl/kernels.h>
#include <faiss_turbo/impl/scan.h>
#include <faiss_turbo/impl/scan_int8.h>
#include <faiss_turbo/impl/scan_prescan.h>

namespace faiss_turbo {

namespace {

void check_metric(faiss::MetricType m) {
    FAISS_THROW_IF_NOT_FMT(
            m == faiss::METRIC_L2 || m == faiss::METRIC_INNER_PRODUCT,
            "IndexTurboQuant supports METRIC_L2 and METRIC_INNER_PRODUCT, "
            "not metric %d",
            (int)m);
}

const faiss::IDSelector* selector_of(const faiss::SearchParameters* params) {
    return params ? params->sel : nullptr;
}

struct TQDistanceComputer : faiss::FlatCodesDistanceComputer {
    const IndexTurboQuant& index;
    TQQueries q;
    std::vector<float> buf;

    explicit TQDistanceComputer(const IndexTurboQuant& idx)
        : faiss::FlatCodesDistanceComputer(idx.codes.data(), idx.code_size),
          index(idx),
          buf(2 * idx.d),
          xi(idx.d),
          xj(idx.d) {
        if (!idx.tq.mean.empty()) {
            rmean.resize(idx.d);
            idx.tq.rotation->apply(1, idx.tq.mean.data(), rmean.data());
        }
    }

    /// FAISS calls distance computers inside its OpenMP regions
    /// (IndexHNSW::search over this storage), where an exception ends the
    /// process. So a query with a NaN or an Inf is not prepared but scores
    /// NaN everywhere, as FAISS's own flat storage gives for one.
    void set_query(const float* x) override {
        nonfinite = !all_finite(x, index.d);
        if (!nonfinite) {
            index.prepare_queries(1, x, q);
        }
    }

    float distance_to_code(const uint8_t* code) override {
        if (nonfinite) {
            return std::numeric_limits<float>::quiet_NaN();
        }
        return index.tq.score(q, 0, code, buf.data());
    }

    /// between two stored vectors: the metric on their reconstructions.
    /// For TQmse a reconstruction is mean + norm R^T c_hat, so the metric is
    /// computed in the rotated space in O(d): graph indexes (HNSW) call this
    /// for every link. TQprod's QJL term needs the full decode.
    float symmetric_dis(idx_t i, idx_t j) override {
        const TurboQuantizer& tq = index.tq;
        const size_t d = index.d;
        const bool l2 = index.metric_type == faiss::METRIC_L2;
        if (tq.variant == TQVariant::PROD) {
            index.reconstruct(i, xi.data());
            index.reconstruct(j, xj.data());
        } else {
            TQCodeScalars si, sj;
            tq.decode_rotated(code_of(i), xi.data(), nullptr, si);
            tq.decode_rotated(code_of(j), xj.data(), nullptr, sj);
            for (size_t t = 0; t < d; t++) {
                xi[t] *= si.norm;
                xj[t] *= sj.norm;
            }
            if (l2 || rmean.empty()) { // the mean cancels
                return metric_between(xi.data(), xj.data(), d, l2);
            }
            for (size_t t = 0; t < d; t++) {
                xi[t] += rmean[t];
                xj[t] += rmean[t];
            }
        }
        return metric_between(xi.data(), xj.data(), d, l2);
    }

   private:
    std::vector<float> xi, xj, rmean; // rmean = R mean
    bool nonfinite = false;

    const uint8_t* code_of(idx_t i) const {
        return index.codes.data() + i * index.code_size;
    }
};

} // namespace

IndexTurboQuant::IndexTurboQuant() {
    is_trained = false;
}

IndexTurboQuant::IndexTurboQuant(
        idx_t d_in,
        float bits,
        TQVariant variant,
        faiss::MetricType metric,
        bool centered_in,
        bool debiased,
        RotationType rotation_type,
        QJLType qjl_type,
        uint64_t seed)
    : faiss::IndexFlatCodes(0, d_in, metric), centered(centered_in) {
    check_metric(metric);
    FAISS_THROW_IF_NOT_FMT(d_in >= 2, "IndexTurboQuant: d=%ld < 2", (long)d_in);
    tq = TurboQuantizer(
            d_in,
            variant,
            bits,
            debiased && variant == TQVariant::MSE,
            rotation_type,
            qjl_type,
            seed);
    // centered inner products: the exact <mean, r> per code (see
    // TurboQuantizer.h); 4 bytes per vector for much of the recall
    tq.ip_offset = centered && metric == faiss::METRIC_INNER_PRODUCT;
    tq.set_layout();
    code_size = tq.code_size;
    is_trained = !centered;
}

void IndexTurboQuant::set_debiased(bool deb) {
    FAISS_THROW_IF_NOT_MSG(
            ntotal == 0, "set_debiased: the index must be empty");
    FAISS_THROW_IF_NOT_MSG(
            !deb || tq.variant == TQVariant::MSE,
            "debiased scoring applies to TQmse only");
    tq.debiased = deb;
    tq.set_layout();
    code_size = tq.code_size;
}

void IndexTurboQuant::train(idx_t n, const float* x) {
    FAISS_THROW_IF_NOT_FMT(n >= 0, "train: n=%ld < 0", (long)n);
    if (!centered) {
        return;
    }
    FAISS_THROW_IF_NOT_MSG(
            ntotal == 0,
            "IndexTurboQuant::train: the mean can only change while the "
            "index is empty");
    FAISS_THROW_IF_NOT_MSG(n > 0, "IndexTurboQuant::train needs vectors");
    tq.train_mean(n, x);
    is_trained = true;
}

void IndexTurboQuant::add(idx_t n, const float* x) {
    FAISS_THROW_IF_NOT_FMT(n >= 0, "add: n=%ld < 0", (long)n);
    FAISS_THROW_IF_NOT_MSG(
            is_trained, "IndexTurboQuant: train() the centered index first");
    if (n == 0) {
        return;
    }
    // encode first, so a bad vector leaves the index unchanged
    std::vector<uint8_t> buf(n * code_size);
    sa_encode(n, x, buf.data());
    if (metric_type == faiss::METRIC_L2) {
        tq.check_l2_codes(n, buf.data(), "IndexTurboQuant::add");
    }
    codes.resize((ntotal + n) * code_size);
    memcpy(codes.data() + ntotal * code_size, buf.data(), buf.size());
    ntotal += n;
}

void IndexTurboQuant::prepare_queries(
        idx_t n, const float* x, TQQueries& q) const {
    tq.prepare_queries(n, x, metric_type == faiss::METRIC_L2, q);
}

void IndexTurboQuant::search(
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
    const bool prescan = prescan_applies(tq, opt.prescan, n);
    TQQueries q;
    prepare_queries(n, x, q);
    q.check_range("search", x, d);
    if (prescan) {
        scan_knn_prescan(
                tq,
                codes.data(),
                nullptr,
                ntotal,
                q,
                k,
                opt.rerank_factor,
                opt.prescan,
                distances,
                labels,
                selector_of(params));
        return;
    }
    if (opt.scan_mode == TQ_SCAN_INT8 && int8_scan_supported(tq)) {
        scan_knn_int8(
                tq,
                codes.data(),
                ntotal,
                q,
                k,
                opt.rerank_factor,
                distances,
                labels,
                selector_of(params));
        return;
    }
    scan_knn(
            tq,
            codes.data(),
            ntotal,
            q,
            k,
            distances,
            labels,
            selector_of(params));
}

void IndexTurboQuant::range_search(
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
    scan_range(
            tq, codes.data(), ntotal, q, radius, result, selector_of(params));
}

void IndexTurboQuant::sa_encode(idx_t n, const float* x, uint8_t* bytes) const {
    FAISS_THROW_IF_NOT_FMT(n >= 0, "sa_encode: n=%ld < 0", (long)n);
    FAISS_THROW_IF_NOT_MSG(is_trained, "sa_encode: index not trained");
    tq.encode(n, x, bytes);
}

void IndexTurboQuant::sa_decode(idx_t n, const uint8_t* bytes, float* x) const {
    FAISS_THROW_IF_NOT_FMT(n >= 0, "sa_decode: n=%ld < 0", (long)n);
    tq.check_codes(n, bytes, "sa_decode"); // NaN floats: not our codes
    tq.decode(n, bytes, x);
}

faiss::FlatCodesDistanceComputer*
IndexTurboQuant::get_FlatCodesDistanceComputer() const {
    return new TQDistanceComputer(*this);
}

void IndexTurboQuant::check_compatible_for_merge(
        const faiss::Index& other) const {
    auto o = dynamic_cast<const IndexTurboQuant*>(&other);
    FAISS_THROW_IF_NOT_MSG(o, "can only merge IndexTurboQuant indexes");
    // FAISS's merge appends the codes, then resets the other: itself
    FAISS_THROW_IF_NOT_MSG(o != this, "IndexTurboQuant: merge_from itself");
    FAISS_THROW_IF_NOT_MSG(
            o->metric_type == metric_type && tq.same_codes_as(o->tq),
            "IndexTurboQuant: merge needs the same codec (d, metric, bits, "
            "variant, seed, rotation, QJL type, mean, codebooks: an index "
            "read from an older file may hold other codebooks)");
}

} // namespace faiss_turbo
