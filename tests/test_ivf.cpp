/**
 * IndexIVFTurboQuant: equality with the flat index, residual scoring,
 * selectors and range search against a brute force over the index's own
 * estimator, the int8 scan with exact re-scoring and its options, merging,
 * removal, reconstruction, parallel modes, errors.
 */
#include <gtest/gtest.h>

#include <cmath>
#include <limits>
#include <map>
#include <memory>
#include <set>

#include <faiss/IndexFlat.h>
#include <faiss/clone_index.h>
#include <faiss/impl/AuxIndexStructures.h>
#include <faiss/impl/FaissException.h>
#include <faiss/impl/IDSelector.h>
#include <faiss/invlists/InvertedLists.h>

#include <faiss_turbo/IndexIVFTurboQuant.h>
#include <faiss_turbo/IndexIVFTurboQuantFastScan.h>
#include <faiss_turbo/IndexTurboQuant.h>
#include <faiss_turbo/SearchParametersTurboQuant.h>
#include <faiss_turbo/impl/coord_rules.h>
#include <faiss_turbo/impl/scan_int8.h>

#include <omp.h>

#include "test_util.h"

using namespace faiss_turbo;
using tqtest::idx_t;
using tqtest::Result;
using tqtest::search;

namespace {

struct Params {
    float bits;
    TQVariant variant;
    faiss::MetricType metric;
};

const Params kParams[] = {
        {4, TQVariant::MSE, faiss::METRIC_L2},
        {2.5, TQVariant::MSE, faiss::METRIC_L2},
        {3, TQVariant::PROD, faiss::METRIC_L2},
        {4, TQVariant::MSE, faiss::METRIC_INNER_PRODUCT},
        {3, TQVariant::PROD, faiss::METRIC_INNER_PRODUCT},
};

std::string name(const Params& p) {
    char buf[64];
    snprintf(
            buf,
            sizeof(buf),
            "%s%g %s",
            p.variant == TQVariant::PROD ? "prod" : "mse",
            p.bits,
            p.metric == faiss::METRIC_L2 ? "L2" : "IP");
    return buf;
}

std::unique_ptr<IndexIVFTurboQuant> make_ivf(
        size_t d,
        size_t nlist,
        const Params& p,
        bool by_residual,
        bool centered = false,
        bool debiased = true) {
    faiss::Index* q = p.metric == faiss::METRIC_L2
                              ? (faiss::Index*)new faiss::IndexFlatL2(d)
                              : (faiss::Index*)new faiss::IndexFlatIP(d);
    std::unique_ptr<IndexIVFTurboQuant> ivf;
    try {
        ivf = std::make_unique<IndexIVFTurboQuant>(
                q,
                d,
                nlist,
                p.bits,
                p.variant,
                p.metric,
                by_residual,
                centered,
                debiased);
    } catch (...) {
        delete q;
        throw;
    }
    ivf->own_fields = true;
    ivf->cp.seed = 7;
    return ivf;
}

/// the flat index's reference scan: every code scored by the estimator,
/// as the IVF scanner does
const faiss::SearchParameters* exact_flat() {
    static const SearchParametersTurboQuant p = [] {
        SearchParametersTurboQuant e;
        e.scan_mode = TQ_SCAN_EXACT;
        return e;
    }();
    return &p;
}

/// IVF options of one search (the reference scan unless told)
SearchParametersIVFTurboQuant
ivf_params(size_t nprobe, int mode = TQ_SCAN_EXACT, float rerank = 4) {
    SearchParametersIVFTurboQuant p;
    p.nprobe = nprobe;
    p.scan_mode = mode;
    p.rerank_factor = rerank;
    return p;
}

/// at full probe, exact scans: the IVF index answers as the flat one
void expect_same_as_flat(
        const faiss::Index& flat,
        const IndexIVFTurboQuant& ivf,
        const std::vector<float>& xq,
        size_t k) {
    auto exact = ivf_params(ivf.nlist);
    Result rf = search(flat, xq, k, exact_flat()),
           ri = search(ivf, xq, k, &exact);
    EXPECT_EQ(rf.I, ri.I);
    EXPECT_EQ(rf.D, ri.D);
}

/// every (id, estimate) of query x, scored by the index's own scanner
std::map<idx_t, float>
all_estimates(const IndexIVFTurboQuant& index, const float* x) {
    std::unique_ptr<faiss::InvertedListScanner> sc(
            index.get_InvertedListScanner());
    sc->set_query(x);
    std::map<idx_t, float> est;
    for (size_t l = 0; l < index.nlist; l++) {
        sc->set_list(l, 0);
        faiss::InvertedLists::ScopedCodes codes(index.invlists, l);
        faiss::InvertedLists::ScopedIds ids(index.invlists, l);
        for (size_t j = 0; j < index.invlists->list_size(l); j++) {
            est[ids[j]] =
                    sc->distance_to_code(codes.get() + j * index.code_size);
        }
    }
    return est;
}

/// |a's labels in b| / |b|, per query rows of k, -1 ignored
double overlap(const Result& a, const Result& b, size_t k) {
    size_t hit = 0, tot = 0;
    for (size_t i = 0; i < a.I.size(); i += k) {
        std::set<idx_t> want(b.I.begin() + i, b.I.begin() + i + k);
        want.erase(-1);
        tot += want.size();
        for (size_t j = 0; j < k; j++) {
            hit += want.count(a.I[i + j]);
        }
    }
    return tot ? (double)hit / tot : 1;
}

bool l2(const faiss::Index& index) {
    return index.metric_type == faiss::METRIC_L2;
}

/// the k best of est among the ids sel accepts, FAISS order (ties by id)
void brute_topk(
        const std::map<idx_t, float>& est,
        bool is_l2,
        size_t k,
        const faiss::IDSelector* sel,
        std::vector<std::pair<float, idx_t>>& out) {
    out.clear();
    for (auto& e : est) {
        if (!sel || sel->is_member(e.first)) {
            out.emplace_back(is_l2 ? e.second : -e.second, e.first);
        }
    }
    std::sort(out.begin(), out.end());
    out.resize(std::min(k, out.size()));
    for (auto& o : out) {
        o.first = is_l2 ? o.first : -o.first;
    }
}

} // namespace

// Without residuals and probing every list, the IVF index scores the same
// codes with the same arithmetic as the flat index: identical results, and
// identical codes in the lists.
TEST(IVF, NoResidualFullProbeEqualsFlat) {
    const size_t d = 32, nb = 2000, nq = 40, k = 10, nlist = 16;
    auto xb = tqtest::random_gaussian(nb, d, 1);
    auto xq = tqtest::random_gaussian(nq, d, 2);
    for (const Params& p : kParams) {
        SCOPED_TRACE(name(p));
        IndexTurboQuant flat(d, p.bits, p.variant, p.metric);
        flat.add(nb, xb.data());
        auto ivf = make_ivf(d, nlist, p, false);
        ivf->train(nb, xb.data());
        ivf->add(nb, xb.data());
        expect_same_as_flat(flat, *ivf, xq, k);
        for (size_t l = 0; l < nlist; l++) {
            faiss::InvertedLists::ScopedCodes codes(ivf->invlists, l);
            faiss::InvertedLists::ScopedIds ids(ivf->invlists, l);
            for (size_t j = 0; j < ivf->invlists->list_size(l); j++) {
                ASSERT_EQ(
                        0,
                        memcmp(codes.get() + j * ivf->code_size,
                               flat.codes.data() + ids[j] * flat.code_size,
                               flat.code_size));
            }
        }
    }
}

// Missing results: label -1 and +inf (L2) / -inf (IP), as the flat index.
TEST(IVF, MissingResultsAreInfinite) {
    const size_t d = 16, nb = 300, k = 20;
    auto xb = tqtest::random_gaussian(nb, d, 3);
    for (const Params& p : kParams) {
        SCOPED_TRACE(name(p));
        auto ivf = make_ivf(d, 8, p, true);
        ivf->train(nb, xb.data());
        ivf->add(5, xb.data());
        std::vector<float> xq(xb.begin(), xb.begin() + 2 * d);
        Result r = search(*ivf, xq, k);
        float empty = l2(*ivf) ? INFINITY : -INFINITY;
        for (size_t i = 0; i < 2; i++) {
            size_t nfound = 0;
            for (size_t j = 0; j < k; j++) {
                if (r.I[i * k + j] >= 0) {
                    EXPECT_EQ(nfound, j) << "results first";
                    nfound++;
                } else {
                    EXPECT_EQ(empty, r.D[i * k + j]);
                }
            }
            EXPECT_LE(nfound, 5u);
            EXPECT_GE(nfound, 1u);
        }
    }
}

// The residual scanner against its definition: the flat codec's estimate
// of the query q - c against the code of x - c, c the list's centroid
// (inner products: plus <q, c>; the code's stored <c, x - c> is in the
// codec's estimate, ip_offset).
TEST(IVF, ResidualScoreIsFlatScoreOfResiduals) {
    const size_t d = 24, nb = 600, nlist = 8;
    auto xb = tqtest::random_gaussian(nb, d, 4);
    auto xq = tqtest::random_gaussian(3, d, 5);
    for (const Params& p : kParams) {
        SCOPED_TRACE(name(p));
        auto ivf = make_ivf(d, nlist, p, true);
        ivf->train(nb, xb.data());
        ivf->add(nb, xb.data());
        const TurboQuantizer& tq = ivf->tq;
        std::vector<float> c(d), qc(d), buf(2 * d);
        for (size_t qi = 0; qi < 3; qi++) {
            const float* q = xq.data() + qi * d;
            auto est = all_estimates(*ivf, q);
            for (size_t l = 0; l < nlist; l++) {
                ivf->quantizer->reconstruct(l, c.data());
                TQQueries tqq;
                for (size_t j = 0; j < d; j++) {
                    qc[j] = q[j] - c[j];
                }
                tq.prepare_queries(1, qc.data(), l2(*ivf), tqq);
                if (!l2(*ivf)) {
                    ASSERT_TRUE(tq.ip_offset);
                    double qcd = 0;
                    for (size_t j = 0; j < d; j++) {
                        qcd += (double)q[j] * c[j];
                    }
                    tqq.qconst[0] += qcd;
                }
                faiss::InvertedLists::ScopedCodes codes(ivf->invlists, l);
                faiss::InvertedLists::ScopedIds ids(ivf->invlists, l);
                for (size_t j = 0; j < ivf->invlists->list_size(l); j++) {
                    float ref = tq.score(
                            tqq, 0, codes.get() + j * tq.code_size, buf.data());
                    // equal up to the rounding of R (q - c) vs R q - R c
                    ASSERT_NEAR(ref, est[ids[j]], 1e-4 * (1 + std::fabs(ref)));
                }
            }
        }
    }
}

// Inner products of residuals: each code stores <c, x - c> exactly (the
// canonical sum of the residual FAISS's quantizer computes), and on vectors
// that share a large common direction that shows as recall: without it the
// codes' error meets all of q, with it only q - c.
TEST(IVF, InnerProductResidualsUseTheExactOffset) {
    const size_t d = 64, nb = 5000, nq = 200, k = 10, nlist = 16;
    auto common = tqtest::random_gaussian(1, d, 7);
    auto xb = tqtest::around_direction(nb, common, 8);
    auto xq = tqtest::around_direction(nq, common, 9);
    std::vector<idx_t> gt;
    tqtest::brute_force_knn(xb.data(), nb, xq.data(), nq, d, k, false, gt);
    auto exact = ivf_params(nlist);
    double r[2];
    for (bool off : {false, true}) {
        auto ivf = make_ivf(
                d,
                nlist,
                {2, TQVariant::MSE, faiss::METRIC_INNER_PRODUCT},
                true);
        ASSERT_TRUE(ivf->tq.ip_offset);
        // off: the layout of files from before this option, to compare
        ivf->tq.ip_offset = off;
        ivf->tq.set_layout();
        ivf->code_size = ivf->invlists->code_size = ivf->tq.code_size;
        ivf->train(nb, xb.data());
        ivf->add(nb, xb.data());
        r[off] = tqtest::recall_at(
                search(*ivf, xq, k, &exact).I, gt, nq, k, k, k);
        if (!off) {
            continue;
        }
        std::vector<float> res(d), c(d);
        for (size_t l = 0; l < nlist; l++) {
            ivf->quantizer->reconstruct(l, c.data());
            faiss::InvertedLists::ScopedCodes codes(ivf->invlists, l);
            faiss::InvertedLists::ScopedIds ids(ivf->invlists, l);
            for (size_t j = 0; j < ivf->invlists->list_size(l); j++) {
                ivf->quantizer->compute_residual(
                        xb.data() + ids[j] * d, res.data(), l);
                TQCodeScalars s;
                ivf->tq.read_scalars(codes.get() + j * ivf->code_size, s);
                ASSERT_EQ(
                        s.moff, (float)canonical_dot(c.data(), res.data(), d));
            }
        }
    }
    printf("IVF 2 bits, 10-recall@10 without / with <c, r>: %.3f / %.3f\n",
           r[0],
           r[1]);
    EXPECT_GT(r[1], r[0] + 0.1);
}

// IDSelector and range search at full probe return exactly what a brute
// force over the scanner's estimates selects.
TEST(IVF, SelectorAndRangeMatchBruteForce) {
    const size_t d = 32, nb = 1500, nq = 8, k = 15, nlist = 12;
    auto xb = tqtest::random_gaussian(nb, d, 6);
    auto xq = tqtest::random_gaussian(nq, d, 7);
    std::vector<idx_t> even;
    for (idx_t i = 0; i < (idx_t)nb; i += 2) {
        even.push_back(i);
    }
    faiss::IDSelectorBatch batch(even.size(), even.data());
    faiss::IDSelectorRange range(100, 700);
    faiss::IDSelectorRange sorted_range(100, 700, true);
    faiss::IDSelectorNot notbatch(&batch);
    const faiss::IDSelector* sels[] = {
            &batch, &range, &sorted_range, &notbatch};
    for (const Params& p : kParams) {
        for (bool res : {false, true}) {
            SCOPED_TRACE(name(p) + (res ? " residual" : ""));
            auto ivf = make_ivf(d, nlist, p, res);
            ivf->train(nb, xb.data());
            ivf->add(nb, xb.data());
            std::vector<std::map<idx_t, float>> est;
            for (size_t i = 0; i < nq; i++) {
                est.push_back(all_estimates(*ivf, xq.data() + i * d));
            }
            std::vector<std::pair<float, idx_t>> bf;
            for (const faiss::IDSelector* sel : sels) {
                auto sp = ivf_params(nlist);
                sp.sel = const_cast<faiss::IDSelector*>(sel);
                Result r = search(*ivf, xq, k, &sp);
                for (size_t i = 0; i < nq; i++) {
                    brute_topk(est[i], l2(*ivf), k, sel, bf);
                    for (size_t j = 0; j < k; j++) {
                        ASSERT_EQ(bf[j].second, r.I[i * k + j]);
                        ASSERT_EQ(bf[j].first, r.D[i * k + j]);
                    }
                }
            }
            // radius: the 40th smallest (L2) / largest (IP) estimate of q0
            brute_topk(est[0], l2(*ivf), 40, nullptr, bf);
            float radius = bf.back().first;
            faiss::RangeSearchResult rr(nq);
            faiss::SearchParametersIVF sp;
            sp.nprobe = nlist;
            ivf->range_search(nq, xq.data(), radius, &rr, &sp);
            for (size_t i = 0; i < nq; i++) {
                std::map<idx_t, float> got, want;
                for (size_t j = rr.lims[i]; j < rr.lims[i + 1]; j++) {
                    got[rr.labels[j]] = rr.distances[j];
                }
                for (auto& e : est[i]) {
                    if (l2(*ivf) ? e.second < radius : e.second > radius) {
                        want.insert(e);
                    }
                }
                ASSERT_EQ(want, got);
            }
            EXPECT_EQ(39u, rr.lims[1]); // strictly inside the radius
        }
    }
}

// FAISS's parallel modes split the work differently; the exact scores do
// not change, so neither do the results. The int8 scan re-scores the codes
// that enter a running top kk, which depends on how a query's lists are
// split: modes 1 and 2 split them, mode 3 scans them as mode 0 does.
TEST(IVF, ParallelModesAgree) {
    const size_t d = 32, nb = 3000, nq = 64, k = 10, nlist = 32;
    auto xb = tqtest::random_gaussian(nb, d, 8);
    auto xq = tqtest::random_gaussian(nq, d, 9);
    for (const Params& p : {kParams[0], kParams[2], kParams[3]}) {
        SCOPED_TRACE(name(p));
        auto ivf = make_ivf(d, nlist, p, true);
        ivf->train(nb, xb.data());
        ivf->add(nb, xb.data());
        auto exact = ivf_params(6), int8 = ivf_params(6, TQ_SCAN_INT8);
        Result r0 = search(*ivf, xq, k, &exact),
               r8 = search(*ivf, xq, k, &int8);
        for (int mode : {1, 2, 3}) {
            ivf->parallel_mode = mode;
            Result r = search(*ivf, xq, k, &exact);
            EXPECT_EQ(r0.I, r.I) << "parallel_mode " << mode;
            EXPECT_EQ(r0.D, r.D) << "parallel_mode " << mode;
            r = search(*ivf, xq, k, &int8);
            if (mode == 3) {
                EXPECT_EQ(r8.I, r.I);
                EXPECT_EQ(r8.D, r.D);
            } else { // still exact scores of nearly the same labels
                EXPECT_GE(overlap(r, r8, k), 0.97) << "parallel_mode " << mode;
                for (size_t i = 0; i < nq; i++) {
                    auto est = all_estimates(*ivf, xq.data() + i * d);
                    for (size_t j = 0; j < k; j++) {
                        ASSERT_EQ(est.at(r.I[i * k + j]), r.D[i * k + j]);
                    }
                }
            }
        }
    }
}

namespace {

/// the first n vectors of SIFT as the base, the next nq as queries
bool load_sift(
        std::vector<float>& xb, std::vector<float>& xq, size_t& d, size_t nq) {
    size_t n;
    std::vector<float> x = tqtest::load_bigann10k(n, d);
    if (n == 0) {
        return false;
    }
    xb.assign(x.begin(), x.end() - nq * d);
    xq.assign(x.end() - nq * d, x.end());
    return true;
}

} // namespace

// On SIFT, residual codes at full probe do at least as well as the flat
// index on the same vectors (the residuals are smaller, so is their
// quantization error), and a quarter of the lists gets most of the way.
TEST(IVF, SiftRecall) {
    std::vector<float> xb, xq;
    size_t d;
    const size_t nq = 200, k = 10, nlist = 64;
    if (!load_sift(xb, xq, d, nq)) {
        GTEST_SKIP() << "bigann10k not found";
    }
    size_t nb = xb.size() / d;
    std::vector<idx_t> gt;
    tqtest::brute_force_knn(xb.data(), nb, xq.data(), nq, d, k, true, gt);
    std::unique_ptr<faiss::Index> centroids;
    for (float bits : {2.0f, 4.0f}) {
        IndexTurboQuant flat(d, bits);
        flat.add(nb, xb.data());
        double rflat = tqtest::recall_at(
                search(flat, xq, k, exact_flat()).I, gt, nq, k, k, k);
        auto ivf = make_ivf(
                d, nlist, {bits, TQVariant::MSE, faiss::METRIC_L2}, true);
        if (!centroids) {
            ivf->train(nb, xb.data());
            centroids.reset(faiss::clone_index(ivf->quantizer));
        } else { // the same coarse quantizer, trained once
            delete ivf->quantizer;
            ivf->quantizer = faiss::clone_index(centroids.get());
            ivf->is_trained = true;
        }
        ivf->add(nb, xb.data());
        std::map<size_t, double> rec;
        for (size_t np : {1, 4, 16, 64}) {
            auto exact = ivf_params(np);
            rec[np] = tqtest::recall_at(
                    search(*ivf, xq, k, &exact).I, gt, nq, k, k, k);
        }
        printf("SIFT %g bits, nlist %zd: flat %.3f, IVF residual nprobe "
               "1/4/16/64: %.3f %.3f %.3f %.3f\n",
               bits,
               nlist,
               rflat,
               rec[1],
               rec[4],
               rec[16],
               rec[64]);
        EXPECT_GE(rec[64], rflat);
        EXPECT_LT(rec[1], rec[4]);
        EXPECT_LT(rec[4], rec[16]);
        EXPECT_GE(rec[16], 0.95 * rec[64]);
    }
}

// Two copies of one trained index filled with the two halves and merged
// equal one copy filled with everything: same lists, same results.
TEST(IVF, MergeOfClonesEqualsOneIndex) {
    const size_t d = 32, nb = 2000, nq = 20, k = 10, nlist = 16;
    auto xb = tqtest::random_gaussian(nb, d, 10);
    auto xq = tqtest::random_gaussian(nq, d, 11);
    for (const Params& p : {kParams[1], kParams[4]}) {
        SCOPED_TRACE(name(p));
        auto trained = make_ivf(d, nlist, p, true);
        trained->train(nb, xb.data());
        std::unique_ptr<IndexIVFTurboQuant> a(trained->clone()),
                b(trained->clone()), all(trained->clone());
        a->add(nb / 2, xb.data());
        b->add(nb - nb / 2, xb.data() + nb / 2 * d);
        all->add(nb, xb.data());
        a->merge_from(*b, nb / 2);
        EXPECT_EQ(0, b->ntotal);
        ASSERT_EQ(all->ntotal, a->ntotal);
        for (size_t l = 0; l < nlist; l++) {
            size_t ls = all->invlists->list_size(l);
            ASSERT_EQ(ls, a->invlists->list_size(l));
            faiss::InvertedLists::ScopedIds ia(a->invlists, l),
                    iall(all->invlists, l);
            faiss::InvertedLists::ScopedCodes ca(a->invlists, l),
                    call(all->invlists, l);
            ASSERT_EQ(0, memcmp(ia.get(), iall.get(), ls * sizeof(idx_t)));
            ASSERT_EQ(0, memcmp(ca.get(), call.get(), ls * a->code_size));
        }
        a->nprobe = all->nprobe = 4;
        Result ra = search(*a, xq, k), rall = search(*all, xq, k);
        EXPECT_EQ(rall.I, ra.I);
        EXPECT_EQ(rall.D, ra.D);
    }
}

TEST(IVF, MergeRejectsAnotherCodec) {
    const size_t d = 16, nb = 400;
    auto xb = tqtest::random_gaussian(nb, d, 12);
    auto a = make_ivf(d, 8, kParams[0], true);
    a->train(nb, xb.data());
    std::unique_ptr<IndexIVFTurboQuant> same(a->clone());
    EXPECT_NO_THROW(a->check_compatible_for_merge(*same));
    // same layout and centroids, different codec seed / residual flag
    std::unique_ptr<IndexIVFTurboQuant> seed(a->clone());
    seed->tq = TurboQuantizer(
            d,
            TQVariant::MSE,
            4,
            true,
            RotationType::AUTO,
            QJLType::GAUSSIAN,
            99);
    EXPECT_THROW(a->check_compatible_for_merge(*seed), faiss::FaissException);
    std::unique_ptr<IndexIVFTurboQuant> nores(a->clone());
    nores->by_residual = false;
    EXPECT_THROW(a->check_compatible_for_merge(*nores), faiss::FaissException);
    auto bits = make_ivf(d, 8, kParams[1], true);
    bits->train(nb, xb.data());
    EXPECT_THROW(a->check_compatible_for_merge(*bits), faiss::FaissException);
    // codebooks as read from an older file (other rules computed them):
    // the codes would decode with this index's centroids
    std::unique_ptr<IndexIVFTurboQuant> older(a->clone());
    auto cb = std::make_shared<Codebook>(*older->tq.cb_hi);
    cb->centroids.back() *= 1.01f;
    older->tq.cb_hi = older->tq.cb_lo = cb;
    EXPECT_THROW(a->check_compatible_for_merge(*older), faiss::FaissException);
    // copy_subset_to moves codes too: FAISS checked the lists' sizes only
    a->add(nb, xb.data());
    const auto all = (faiss_turbo::ivf_subset_type_t)0; // ids in [a1, a2)
    EXPECT_THROW(a->copy_subset_to(*seed, all, 0, 100), faiss::FaissException);
    EXPECT_EQ(seed->ntotal, 0);
    a->make_direct_map(); // merge would refuse it; copying reads lists
    a->copy_subset_to(*same, all, 0, 100);
    EXPECT_EQ(same->ntotal, 100);
}

// remove_ids leaves exactly what a selector on the complement would see.
TEST(IVF, RemoveIdsEqualsSelector) {
    const size_t d = 32, nb = 1500, nq = 10, k = 10, nlist = 16;
    auto xb = tqtest::random_gaussian(nb, d, 13);
    auto xq = tqtest::random_gaussian(nq, d, 14);
    auto ivf = make_ivf(d, nlist, kParams[0], true);
    ivf->train(nb, xb.data());
    ivf->add(nb, xb.data());
    ivf->nprobe = 5;
    faiss::IDSelectorRange gone(200, 900);
    faiss::IDSelectorNot kept(&gone);
    // exact scan: removal reorders the lists, and which codes the int8
    // scan re-scores depends on the order it meets them
    ivf->search_defaults.scan_mode = TQ_SCAN_EXACT;
    faiss::SearchParametersIVF sp;
    sp.nprobe = 5;
    sp.sel = &kept;
    Result before = search(*ivf, xq, k, &sp);
    EXPECT_EQ(700u, ivf->remove_ids(gone));
    EXPECT_EQ((idx_t)nb - 700, ivf->ntotal);
    Result after = search(*ivf, xq, k);
    EXPECT_EQ(before.I, after.I);
    EXPECT_EQ(before.D, after.D);
}

// Reconstruction: sa_encode / sa_decode, reconstruct and
// reconstruct_from_offset give the same vectors; add_sa_codes fills the
// same lists as add; the error of 4-bit codes obeys the paper's MSE bound
// sqrt(3) pi / 2 * 4^-b relative to the encoded vector's squared norm.
TEST(IVF, ReconstructAndStandaloneCodes) {
    const size_t d = 32, nb = 1000, nlist = 8;
    auto xb = tqtest::random_gaussian(nb, d, 15);
    for (bool res : {false, true}) {
        SCOPED_TRACE(res ? "residual" : "plain");
        auto ivf = make_ivf(d, nlist, kParams[0], res);
        ivf->train(nb, xb.data());
        std::unique_ptr<IndexIVFTurboQuant> viasa(ivf->clone());
        ivf->add(nb, xb.data());
        std::vector<uint8_t> sa(nb * ivf->sa_code_size());
        ivf->sa_encode(nb, xb.data(), sa.data());
        std::vector<float> dec(nb * d), rec(nb * d), rec2(nb * d);
        ivf->sa_decode(nb, sa.data(), dec.data());
        ivf->make_direct_map();
        for (size_t i = 0; i < nb; i++) {
            ivf->reconstruct(i, rec.data() + i * d);
        }
        EXPECT_EQ(dec, rec);
        ivf->reconstruct_n(0, nb, rec2.data());
        EXPECT_EQ(rec, rec2);
        // search_and_reconstruct goes through store_pairs and the offsets
        const size_t nq = 5, k = 3;
        std::vector<float> D(nq * k), R(nq * k * d);
        std::vector<idx_t> I(nq * k);
        ivf->search_and_reconstruct(
                nq, xb.data(), k, D.data(), I.data(), R.data());
        for (size_t j = 0; j < nq * k; j++) {
            ASSERT_GE(I[j], 0);
            ASSERT_TRUE(std::equal(
                    R.begin() + j * d,
                    R.begin() + (j + 1) * d,
                    rec.begin() + I[j] * d));
        }

        std::vector<idx_t> ids(nb);
        for (size_t i = 0; i < nb; i++) {
            ids[i] = i;
        }
        viasa->add_sa_codes(nb, sa.data(), ids.data());
        for (size_t l = 0; l < nlist; l++) {
            size_t ls = ivf->invlists->list_size(l);
            ASSERT_EQ(ls, viasa->invlists->list_size(l));
            faiss::InvertedLists::ScopedCodes a(ivf->invlists, l),
                    b(viasa->invlists, l);
            ASSERT_EQ(0, memcmp(a.get(), b.get(), ls * ivf->code_size));
        }

        std::vector<float> c(d);
        std::vector<idx_t> assign(nb);
        ivf->quantizer->assign(nb, xb.data(), assign.data());
        double err = 0, nrm = 0;
        for (size_t i = 0; i < nb; i++) {
            ivf->quantizer->reconstruct(assign[i], c.data());
            for (size_t j = 0; j < d; j++) {
                double r = xb[i * d + j] - (res ? c[j] : 0);
                double e = xb[i * d + j] - rec[i * d + j];
                err += e * e;
                nrm += r * r;
            }
        }
        EXPECT_LT(err / nrm, std::sqrt(3.0) * M_PI / 2 / 256);
    }
}

// Centered without residuals: train learns the data mean and the index
// then equals the flat centered index at full probe (by inner product both
// store <mean, x - mean>, ip_offset).
TEST(IVF, CenteredEqualsFlatCentered) {
    const size_t d = 32, nb = 1500, nq = 20, k = 10, nlist = 8;
    auto xb = tqtest::random_gaussian(nb, d, 16);
    for (auto& v : xb) {
        v += 3;
    }
    auto xq = tqtest::random_gaussian(nq, d, 17);
    for (auto m : {faiss::METRIC_L2, faiss::METRIC_INNER_PRODUCT}) {
        SCOPED_TRACE(m == faiss::METRIC_L2 ? "L2" : "IP");
        IndexTurboQuant flat(d, 3, TQVariant::MSE, m, true);
        flat.train(nb, xb.data());
        flat.add(nb, xb.data());
        auto ivf = make_ivf(d, nlist, {3, TQVariant::MSE, m}, false, true);
        EXPECT_EQ(ivf->tq.ip_offset, m == faiss::METRIC_INNER_PRODUCT);
        EXPECT_EQ(ivf->tq.ip_offset, flat.tq.ip_offset);
        EXPECT_FALSE(ivf->is_trained);
        EXPECT_THROW(ivf->add(nb, xb.data()), faiss::FaissException);
        ivf->train(nb, xb.data());
        EXPECT_EQ(flat.tq.mean, ivf->tq.mean);
        ivf->add(nb, xb.data());
        expect_same_as_flat(flat, *ivf, xq, k);
    }
    // with residuals the centroids take the mean's role: none is learned
    auto res = make_ivf(
            d, nlist, {3, TQVariant::MSE, faiss::METRIC_L2}, true, true);
    res->train(nb, xb.data());
    EXPECT_TRUE(res->tq.mean.empty());
}

TEST(IVF, BadInputThrows) {
    const size_t d = 16, nb = 400;
    auto xb = tqtest::random_gaussian(nb, d, 18);
    faiss::IndexFlatL2 q(d);
    EXPECT_THROW(IndexIVFTurboQuant(nullptr, d, 8, 4), faiss::FaissException);
    EXPECT_THROW(IndexIVFTurboQuant(&q, d, 8, 9), faiss::FaissException);
    EXPECT_THROW(IndexIVFTurboQuant(&q, d, 0, 4), faiss::FaissException);
    EXPECT_THROW(
            IndexIVFTurboQuant(&q, d, 8, 4, TQVariant::MSE, faiss::METRIC_L1),
            faiss::FaissException);
    auto ivf = make_ivf(d, 8, kParams[0], true);
    ivf->train(nb, xb.data());
    ivf->add(nb, xb.data());
    EXPECT_THROW(ivf->train(nb, xb.data()), faiss::FaissException);
    std::vector<float> bad(xb.begin(), xb.begin() + d);
    bad[3] = NAN;
    std::vector<float> D(5);
    std::vector<idx_t> I(5);
    EXPECT_THROW(ivf->add(1, bad.data()), faiss::FaissException);
    EXPECT_EQ((idx_t)nb, ivf->ntotal);
    ivf->nprobe = 8;
    bad[3] = INFINITY;
    EXPECT_ANY_THROW(ivf->search(1, bad.data(), 5, D.data(), I.data()));

    // a NaN among many vectors: the coarse quantizer had assigned it a
    // list number out of range (a crash in the residual); now refused by
    // its row before assignment, for both list layouts
    auto many = tqtest::random_gaussian(5000, d, 19);
    many[4500 * d + 3] = NAN;
    std::unique_ptr<IndexIVFTurboQuant> fs(
            new IndexIVFTurboQuantFastScan(new faiss::IndexFlatL2(d), d, 8, 4));
    fs->own_fields = true;
    fs->train(nb, xb.data());
    for (IndexIVFTurboQuant* index : {ivf.get(), fs.get()}) {
        idx_t before = index->ntotal;
        tqtest::throws_with(
                [&] { index->add(5000, many.data()); },
                "vector 4500 has a NaN");
        EXPECT_EQ(index->ntotal, before);
    }
    // finite vectors too long for L2 distances in float (1e20: squared
    // norm 1.6e41): every coarse distance was +inf, and the quantizer gave
    // no list (the vector silently not added, the query silently empty) or
    // an arbitrary one. Refused by row, the index unchanged, for add,
    // train, search and range search; inner products take them
    auto longrow = tqtest::random_gaussian(5000, d, 20);
    for (size_t j = 0; j < d; j++) {
        longrow[4500 * d + j] = 1e20f;
    }
    const float* q4500 = longrow.data() + 4500 * d;
    faiss::RangeSearchResult rlong(1);
    for (IndexIVFTurboQuant* index : {ivf.get(), fs.get()}) {
        idx_t before = index->ntotal;
        tqtest::throws_with(
                [&] { index->add(5000, longrow.data()); },
                "vector 4500 is too long for L2 distances");
        EXPECT_EQ(index->ntotal, before);
        EXPECT_THROW(
                index->search(1, q4500, 5, D.data(), I.data()),
                faiss::FaissException);
        EXPECT_THROW(
                index->range_search(1, q4500, 1.0f, &rlong),
                faiss::FaissException);
        // a residual too long for float past the first encode block (the
        // caller's list numbers): named by the caller's row
        for (size_t j = 0; j < d; j++) {
            longrow[4500 * d + j] = 3e38f;
        }
        std::vector<idx_t> lists(5000, 0);
        std::vector<uint8_t> out(5000 * index->code_size);
        tqtest::throws_with(
                [&] {
                    index->encode_vectors(
                            5000, longrow.data(), lists.data(), out.data());
                },
                "vector 4500 is too long for float");
        for (size_t j = 0; j < d; j++) {
            longrow[4500 * d + j] = 1e20f;
        }
    }
    auto ip = make_ivf(d, 8, kParams[3], true);
    ip->train(nb, xb.data());
    ip->add(5000, longrow.data());
    EXPECT_EQ(ip->ntotal, 5000);
    auto fresh = make_ivf(d, 8, kParams[0], true);
    EXPECT_THROW(fresh->train(5000, many.data()), faiss::FaissException);
    EXPECT_FALSE(fresh->is_trained);
    // search before train: refused before FAISS's threads (the centroid
    // table's check, made by the first scanner inside them, aborted the
    // process), for both layouts, through search and search_preassigned
    for (bool blocked : {false, true}) {
        std::unique_ptr<IndexIVFTurboQuant> un(
                blocked ? new IndexIVFTurboQuantFastScan(
                                  new faiss::IndexFlatL2(d), d, 8, 4)
                        : new IndexIVFTurboQuant(
                                  new faiss::IndexFlatL2(d), d, 8, 4));
        un->own_fields = true;
        EXPECT_THROW(
                un->search(1, xb.data(), 5, D.data(), I.data()),
                faiss::FaissException);
        std::vector<idx_t> assign(1, 0);
        std::vector<float> cdis(1, 0.0f);
        EXPECT_THROW(
                un->search_preassigned(
                        1,
                        xb.data(),
                        5,
                        assign.data(),
                        cdis.data(),
                        D.data(),
                        I.data(),
                        false),
                faiss::FaissException);
        faiss::RangeSearchResult rr(1);
        EXPECT_THROW(
                un->range_search(1, xb.data(), 1.0f, &rr),
                faiss::FaissException);
    }
    // a trained index whose quantizer lost its centroids afterwards
    auto emptied = make_ivf(d, 8, kParams[0], true);
    emptied->train(nb, xb.data());
    emptied->quantizer->reset();
    EXPECT_THROW(
            emptied->search(1, xb.data(), 5, D.data(), I.data()),
            faiss::FaissException);
    fs->add(nb, xb.data());
    // search_preassigned with a list number past nlist: FAISS checked it
    // inside its parallel loop, which ended the process; negative numbers
    // are skipped, as FAISS does
    for (IndexIVFTurboQuant* index : {ivf.get(), fs.get()}) {
        index->nprobe = 2;
        std::vector<idx_t> assign = {0, 8};
        std::vector<float> cdis(2, 0.0f);
        auto preassigned = [&] {
            index->search_preassigned(
                    1,
                    xb.data(),
                    5,
                    assign.data(),
                    cdis.data(),
                    D.data(),
                    I.data(),
                    false);
        };
        tqtest::throws_with([&] { preassigned(); }, "assigned to list 8 of 8");
        // through the check, a valid assignment gives range_search's
        std::vector<idx_t> good(2);
        index->quantizer->search(1, xb.data(), 2, cdis.data(), good.data());
        faiss::RangeSearchResult r1(1);
        index->range_search_preassigned(
                1, xb.data(), 50.0f, good.data(), cdis.data(), &r1);
        std::vector<float> x0(xb.begin(), xb.begin() + d);
        tqtest::RangeResult r2 = tqtest::range_search(*index, x0, 50.0f);
        ASSERT_GT(r2.lims[1], 0u);
        ASSERT_EQ(r1.lims[1], r2.lims[1]);
        EXPECT_TRUE(
                std::equal(r1.labels, r1.labels + r1.lims[1], r2.I.begin()));
        faiss::RangeSearchResult rres(1);
        EXPECT_THROW(
                index->range_search_preassigned(
                        1, xb.data(), 1.0f, assign.data(), cdis.data(), &rres),
                faiss::FaissException);
        assign = {-1, -1};
        preassigned();
        EXPECT_EQ(I, std::vector<idx_t>(5, -1));
    }
    // update_vectors with a bad id changes nothing, for both layouts and
    // both direct maps: FAISS moved the vectors before it (Array), or
    // removed them all and then threw (Hashtable: an unknown or repeated id)
    // A vector encode refuses (too long for float: only the L2 input check
    // stops it earlier) changes nothing either (Hashtable: FAISS removed
    // the old vector first)
    std::vector<float> too_long(2 * d, 1e38f);
    for (bool blocked : {false, true}) {
        for (auto map :
             {faiss::DirectMap::Array, faiss::DirectMap::Hashtable}) {
            SCOPED_TRACE(
                    testing::Message()
                    << "blocked " << blocked << " map " << (int)map);
            std::unique_ptr<IndexIVFTurboQuant> upd(
                    blocked ? new IndexIVFTurboQuantFastScan(
                                      new faiss::IndexFlatIP(d),
                                      d,
                                      8,
                                      4,
                                      faiss::METRIC_INNER_PRODUCT)
                            : new IndexIVFTurboQuant(
                                      new faiss::IndexFlatIP(d),
                                      d,
                                      8,
                                      4,
                                      TQVariant::MSE,
                                      faiss::METRIC_INNER_PRODUCT));
            upd->own_fields = true;
            upd->train(nb, xb.data());
            upd->add(nb, xb.data());
            upd->set_direct_map_type(map);
            std::vector<float> before(nb * d), after(nb * d);
            upd->reconstruct_n(0, nb, before.data());
            for (idx_t bad : {(idx_t)nb, (idx_t)-1, (idx_t)3}) {
                idx_t ids[2] = {3, bad}; // 3 twice: a repeated id
                EXPECT_THROW(
                        upd->update_vectors(2, ids, xb.data() + 10 * d),
                        faiss::FaissException);
                EXPECT_EQ(upd->ntotal, (idx_t)nb);
                upd->reconstruct_n(0, nb, after.data());
                EXPECT_EQ(before, after);
            }
            idx_t ok_ids[2] = {3, 4};
            EXPECT_THROW(
                    upd->update_vectors(2, ok_ids, too_long.data()),
                    faiss::FaissException);
            EXPECT_EQ(upd->ntotal, (idx_t)nb);
            upd->reconstruct_n(0, nb, after.data());
            EXPECT_EQ(before, after);
            idx_t ids[2] = {3, 4};
            upd->update_vectors(2, ids, xb.data() + 10 * d);
            upd->reconstruct_n(0, nb, after.data());
            EXPECT_NE(before, after);
            EXPECT_TRUE(std::equal(
                    after.begin() + 5 * d,
                    after.end(),
                    before.begin() + 5 * d)); // the others unchanged
        }
    }
    // a list number past nlist (from a caller of encode_vectors)
    idx_t past = 8;
    std::vector<uint8_t> code(ivf->code_size);
    EXPECT_THROW(
            ivf->encode_vectors(1, xb.data(), &past, code.data()),
            faiss::FaissException);
}

/*************************************************************
 * int8 scan with exact re-scoring
 *************************************************************/

namespace {

struct Int8Case {
    Params p;
    bool debiased;
};

const Int8Case kInt8Cases[] = {
        {{4, TQVariant::MSE, faiss::METRIC_L2}, true},
        {{4, TQVariant::MSE, faiss::METRIC_L2}, false},
        {{2.5, TQVariant::MSE, faiss::METRIC_L2}, true},
        {{3, TQVariant::PROD, faiss::METRIC_L2}, true},
        {{4, TQVariant::MSE, faiss::METRIC_INNER_PRODUCT}, true},
        {{4, TQVariant::MSE, faiss::METRIC_INNER_PRODUCT}, false},
        {{3, TQVariant::PROD, faiss::METRIC_INNER_PRODUCT}, true},
};

std::string name(const Int8Case& c, bool res) {
    return name(c.p) + (c.debiased ? "" : " plain") + (res ? " residual" : "");
}

} // namespace

// The int8 scan finds almost all of the exact scan's top 10, and every
// distance it returns is the exact estimate of its label, bit for bit (the
// scanner re-scored it with TurboQuantizer::score).
TEST(IVFInt8, RecallAndExactScores) {
    const size_t d = 48, nb = 3000, nq = 40, k = 10, nlist = 16;
    auto xb = tqtest::random_gaussian(nb, d, 20);
    auto xq = tqtest::random_gaussian(nq, d, 21);
    for (const Int8Case& c : kInt8Cases) {
        for (bool res : {false, true}) {
            SCOPED_TRACE(name(c, res));
            auto ivf = make_ivf(d, nlist, c.p, res, false, c.debiased);
            ivf->train(nb, xb.data());
            ivf->add(nb, xb.data());
            for (size_t np : {(size_t)4, nlist}) {
                auto exact = ivf_params(np);
                auto int8 = ivf_params(np, TQ_SCAN_INT8, 4);
                Result re = search(*ivf, xq, k, &exact);
                Result r8 = search(*ivf, xq, k, &int8);
                double rec = overlap(r8, re, k);
                EXPECT_GE(rec, 0.97) << "nprobe " << np;
                for (size_t i = 0; i < nq; i++) {
                    auto est = all_estimates(*ivf, xq.data() + i * d);
                    for (size_t j = 0; j < k; j++) {
                        idx_t id = r8.I[i * k + j];
                        ASSERT_GE(id, 0);
                        ASSERT_EQ(est.at(id), r8.D[i * k + j]);
                        if (j > 0) { // sorted
                            float a = r8.D[i * k + j - 1], b = r8.D[i * k + j];
                            ASSERT_TRUE(l2(*ivf) ? a <= b : a >= b);
                        }
                    }
                }
            }
        }
    }
}

// rerank_factor 0: the int8 top k over all the codes, with the int8 scores
// (Int8CodeScorer's, one code at a time), which are not the exact ones.
TEST(IVFInt8, RerankZeroReturnsInt8Scores) {
    const size_t d = 32, nb = 1500, nq = 10, k = 10, nlist = 8;
    auto xb = tqtest::random_gaussian(nb, d, 22);
    auto xq = tqtest::random_gaussian(nq, d, 23);
    for (const Int8Case& c : kInt8Cases) {
        SCOPED_TRACE(name(c, false));
        auto ivf = make_ivf(d, nlist, c.p, false, false, c.debiased);
        ivf->train(nb, xb.data());
        ivf->add(nb, xb.data());
        auto p = ivf_params(nlist, TQ_SCAN_INT8, 0);
        Result r = search(*ivf, xq, k, &p);
        Int8CodeScorer scorer(ivf->tq, l2(*ivf));
        size_t differ = 0;
        for (size_t i = 0; i < nq; i++) {
            TQQueries q;
            ivf->tq.prepare_queries(1, xq.data() + i * d, l2(*ivf), q);
            scorer.set_query(q, 0);
            std::map<idx_t, float> s8;
            for (size_t l = 0; l < nlist; l++) {
                faiss::InvertedLists::ScopedCodes codes(ivf->invlists, l);
                faiss::InvertedLists::ScopedIds ids(ivf->invlists, l);
                for (size_t j = 0; j < ivf->invlists->list_size(l); j++) {
                    s8[ids[j]] = scorer.score(codes.get() + j * ivf->code_size);
                }
            }
            std::vector<std::pair<float, idx_t>> bf;
            brute_topk(s8, l2(*ivf), k, nullptr, bf);
            auto est = all_estimates(*ivf, xq.data() + i * d);
            for (size_t j = 0; j < k; j++) {
                ASSERT_EQ(bf[j].second, r.I[i * k + j]);
                ASSERT_EQ(bf[j].first, r.D[i * k + j]);
                differ += est.at(bf[j].second) != bf[j].first;
            }
        }
        EXPECT_GT(differ, 0u) << "int8 scores equal the exact ones";
    }
}

// Per-call SearchParametersIVFTurboQuant win over search_defaults, in both
// directions, and a selector inside them still applies.
TEST(IVFInt8, PerCallParamsOverrideDefaults) {
    const size_t d = 32, nb = 2000, nq = 12, k = 10, nlist = 8;
    auto xb = tqtest::random_gaussian(nb, d, 24);
    auto xq = tqtest::random_gaussian(nq, d, 25);
    auto ivf = make_ivf(d, nlist, kParams[0], true);
    ivf->train(nb, xb.data());
    ivf->add(nb, xb.data());
    ivf->nprobe = nlist;
    EXPECT_EQ(TQ_SCAN_INT8, ivf->search_defaults.scan_mode);
    EXPECT_EQ(kTQDefaultRerankFactor, ivf->search_defaults.rerank_factor);

    auto exact = ivf_params(nlist), raw8 = ivf_params(nlist, TQ_SCAN_INT8, 0);
    Result r_exact = search(*ivf, xq, k, &exact);
    Result r_raw8 = search(*ivf, xq, k, &raw8);
    EXPECT_NE(r_exact.D, r_raw8.D);

    ivf->search_defaults.rerank_factor = 0; // defaults: raw int8
    EXPECT_EQ(r_raw8.D, search(*ivf, xq, k).D);
    Result r = search(*ivf, xq, k, &exact);
    EXPECT_EQ(r_exact.I, r.I);
    EXPECT_EQ(r_exact.D, r.D);
    ivf->search_defaults.scan_mode = TQ_SCAN_EXACT; // defaults: exact
    EXPECT_EQ(r_exact.D, search(*ivf, xq, k).D);
    r = search(*ivf, xq, k, &raw8);
    EXPECT_EQ(r_raw8.I, r.I);
    EXPECT_EQ(r_raw8.D, r.D);
    // plain SearchParametersIVF: the defaults
    faiss::SearchParametersIVF plain;
    plain.nprobe = nlist;
    EXPECT_EQ(r_exact.D, search(*ivf, xq, k, &plain).D);

    std::vector<idx_t> odd;
    for (idx_t i = 1; i < (idx_t)nb; i += 2) {
        odd.push_back(i);
    }
    faiss::IDSelectorBatch batch(odd.size(), odd.data());
    for (int mode : {TQ_SCAN_EXACT, TQ_SCAN_INT8}) {
        auto p = ivf_params(nlist, mode, 4);
        p.sel = &batch;
        Result rs = search(*ivf, xq, k, &p);
        for (size_t i = 0; i < nq; i++) {
            auto est = all_estimates(*ivf, xq.data() + i * d);
            std::vector<std::pair<float, idx_t>> bf;
            brute_topk(est, true, k, &batch, bf);
            for (size_t j = 0; j < k; j++) {
                idx_t id = rs.I[i * k + j];
                ASSERT_EQ(1, id % 2) << "mode " << mode;
                ASSERT_EQ(est.at(id), rs.D[i * k + j]);
                if (mode == TQ_SCAN_EXACT) {
                    ASSERT_EQ(bf[j].second, id);
                }
            }
        }
    }
}

// Bad options are refused before FAISS's parallel loops, naming the field.
TEST(IVFInt8, BadOptionsThrow) {
    const size_t d = 16, nb = 400, k = 5;
    auto xb = tqtest::random_gaussian(nb, d, 26);
    auto ivf = make_ivf(d, 8, kParams[0], true);
    ivf->train(nb, xb.data());
    ivf->add(nb, xb.data());
    std::vector<float> D(2 * k);
    std::vector<idx_t> I(2 * k);
    auto expect_throw = [&](const faiss::SearchParameters* p,
                            const char* word) {
        try {
            ivf->search(2, xb.data(), k, D.data(), I.data(), p);
            ADD_FAILURE() << "no exception for " << word;
        } catch (const faiss::FaissException& e) {
            EXPECT_NE(std::string::npos, std::string(e.what()).find(word))
                    << e.what();
        }
    };
    for (float rf : {NAN, -1.0f, INFINITY}) {
        auto p = ivf_params(4, TQ_SCAN_INT8, rf);
        expect_throw(&p, "rerank_factor");
        ivf->search_defaults.rerank_factor = rf;
        expect_throw(nullptr, "rerank_factor");
        ivf->search_defaults.rerank_factor = 4;
    }
    auto p = ivf_params(4, 7);
    expect_throw(&p, "scan_mode");
    ivf->search_defaults.scan_mode = -1;
    expect_throw(nullptr, "scan_mode");
    // FAISS makes the scanners of range searches and of store_pairs
    // searches in its threads, where FAISS < 1.8 gives them no parameters:
    // bad defaults must throw before, even with valid parameters (they
    // ended the process)
    auto good = ivf_params(4, TQ_SCAN_EXACT, 4);
    faiss::RangeSearchResult rr(2);
    tqtest::throws_with(
            [&] { ivf->range_search(2, xb.data(), 1.0f, &rr, nullptr); },
            "scan_mode");
    std::vector<float> recons(2 * k * d);
    tqtest::throws_with(
            [&] {
                ivf->search_and_reconstruct(
                        2,
                        xb.data(),
                        k,
                        D.data(),
                        I.data(),
                        recons.data(),
                        nullptr);
            },
            "scan_mode");
#if !FAISS_TURBO_SCANNER_TAKES_PARAMS
    tqtest::throws_with(
            [&] { ivf->range_search(2, xb.data(), 1.0f, &rr, &good); },
            "scan_mode");
#endif
    ivf->search_defaults.scan_mode = TQ_SCAN_INT8;
    EXPECT_NO_THROW(ivf->search(2, xb.data(), k, D.data(), I.data()));
    EXPECT_NO_THROW(ivf->range_search(2, xb.data(), 1.0f, &rr, &good));
    // a selector with store_pairs: refused before FAISS's threads
    std::vector<idx_t> assign(2 * 4);
    std::vector<float> cdis(2 * 4);
    ivf->quantizer->search(2, xb.data(), 4, cdis.data(), assign.data());
    faiss::IDSelectorRange sel(0, 100);
    auto ps = ivf_params(4, TQ_SCAN_EXACT, 4);
    ps.sel = &sel;
    faiss::RangeSearchResult rp(2);
    tqtest::throws_with(
            [&] {
                ivf->range_search_preassigned(
                        2,
                        xb.data(),
                        1.0f,
                        assign.data(),
                        cdis.data(),
                        &rp,
                        true,
                        &ps);
            },
            "store_pairs");
}

// One thread or two: the same results, bit for bit (each query's lists are
// scanned in probe order by one thread).
TEST(IVFInt8, ThreadCountIndependent) {
    const size_t d = 32, nb = 3000, nq = 64, k = 10, nlist = 32;
    auto xb = tqtest::random_gaussian(nb, d, 27);
    auto xq = tqtest::random_gaussian(nq, d, 28);
    for (const Params& p : {kParams[1], kParams[2], kParams[4]}) {
        SCOPED_TRACE(name(p));
        auto ivf = make_ivf(d, nlist, p, true);
        ivf->train(nb, xb.data());
        ivf->add(nb, xb.data());
        ivf->nprobe = 8;
        int nt = omp_get_max_threads();
        omp_set_num_threads(1);
        Result r1 = search(*ivf, xq, k);
        omp_set_num_threads(2);
        Result r2 = search(*ivf, xq, k);
        omp_set_num_threads(nt);
        EXPECT_EQ(r1.I, r2.I);
        EXPECT_EQ(r1.D, r2.D);
    }
}
