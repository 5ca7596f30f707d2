/** IndexTurboQuant: search against brute force over its own estimator,
 * recall on real SIFT descriptors, FAISS conventions, interop, bad input. */
#include <gtest/gtest.h>

#include <omp.h>

#include <algorithm>
#include <cmath>
#include <limits>
#include <memory>

#include <faiss/IndexFlat.h>
#include <faiss/IndexIDMap.h>
#include <faiss/IndexRefine.h>
#include <faiss/IndexShards.h>
#include <faiss/impl/AuxIndexStructures.h>
#include <faiss/impl/FaissException.h>
#include <faiss/impl/IDSelector.h>

#include <faiss_turbo/IndexTurboQuant.h>
#include <faiss_turbo/IndexTurboQuantFastScan.h>
#include <faiss_turbo/SearchParametersTurboQuant.h>
#include <faiss_turbo/index_factory.h>

#include "test_util.h"

using namespace faiss_turbo;
using faiss::FaissException;

namespace {

struct Variant {
    const char* name;
    TQVariant v;
    float bits;
    bool debiased;
    bool centered;
};

const Variant kVariants[] = {
        {"mse3 plain", TQVariant::MSE, 3, false, false},
        {"mse2.5 debiased", TQVariant::MSE, 2.5, true, false},
        {"mse4 debiased centered", TQVariant::MSE, 4, true, true},
        {"prod3", TQVariant::PROD, 3, false, false},
        {"prod2 centered", TQVariant::PROD, 2, false, true},
};

std::unique_ptr<IndexTurboQuant> make_index(
        const Variant& v,
        size_t d,
        faiss::MetricType m,
        const std::vector<float>& xb) {
    auto idx = std::make_unique<IndexTurboQuant>(
            d, v.bits, v.v, m, v.centered, v.debiased);
    size_t n = xb.size() / d;
    idx->train(n, xb.data());
    idx->add(n, xb.data());
    return idx;
}

/// exhaustive top-k over TurboQuantizer::score, ties by label
void estimator_knn(
        const IndexTurboQuant& idx,
        const float* xq,
        size_t nq,
        size_t k,
        std::vector<float>& D,
        std::vector<idx_t>& I) {
    bool l2 = idx.metric_type == faiss::METRIC_L2;
    TQQueries q;
    idx.prepare_queries(nq, xq, q);
    std::vector<float> buf(2 * idx.d);
    D.assign(nq * k, l2 ? INFINITY : -INFINITY);
    I.assign(nq * k, -1);
    for (size_t qi = 0; qi < nq; qi++) {
        std::vector<std::pair<float, idx_t>> s;
        for (idx_t i = 0; i < idx.ntotal; i++) {
            float v = idx.tq.score(
                    q, qi, idx.codes.data() + i * idx.code_size, buf.data());
            s.emplace_back(l2 ? v : -v, i);
        }
        std::sort(s.begin(), s.end());
        for (size_t j = 0; j < k && j < s.size(); j++) {
            D[qi * k + j] = l2 ? s[j].first : -s[j].first;
            I[qi * k + j] = s[j].second;
        }
    }
}

} // namespace

TEST(Index, SearchEqualsEstimatorBruteForce) {
    const size_t d = 48, nb = 700, nq = 37, k = 10;
    auto xb = tqtest::random_gaussian(nb, d, 1);
    auto xq = tqtest::random_gaussian(nq, d, 2);
    for (auto& x : xb) {
        x += 0.7f; // off-center data, so the mean matters
    }
    for (const Variant& v : kVariants) {
        for (auto m : {faiss::METRIC_L2, faiss::METRIC_INNER_PRODUCT}) {
            auto idx = make_index(v, d, m, xb);
            std::vector<float> D(nq * k), Dref;
            std::vector<idx_t> I(nq * k), Iref;
            // the exact scan (the int8 scan is checked in test_kernels)
            SearchParametersTurboQuant exact;
            exact.scan_mode = TQ_SCAN_EXACT;
            idx->search(nq, xq.data(), k, D.data(), I.data(), &exact);
            estimator_knn(*idx, xq.data(), nq, k, Dref, Iref);
            EXPECT_EQ(I, Iref) << v.name << " metric " << m;
            EXPECT_EQ(D, Dref) << v.name << " metric " << m;
        }
    }
}

TEST(Index, PlainMseIsExactOverReconstructions) {
    // plain TQmse scores are the exact metric on the decoded vectors x_hat;
    // centered inner products add the stored <mean, x - x_hat>
    // (ip_offset): checked as the inner product of q (and 1) with the
    // vector (x_hat, <mean, x - x_hat>)
    const size_t d = 40, nb = 500, nq = 20, k = 5;
    auto xb = tqtest::random_gaussian(nb, d, 3);
    auto xq = tqtest::random_gaussian(nq, d, 4);
    for (bool centered : {false, true}) {
        for (auto m : {faiss::METRIC_L2, faiss::METRIC_INNER_PRODUCT}) {
            IndexTurboQuant idx(d, 3, TQVariant::MSE, m, centered, false);
            idx.train(nb, xb.data());
            idx.add(nb, xb.data());
            const bool off = centered && m == faiss::METRIC_INNER_PRODUCT;
            EXPECT_EQ(idx.tq.ip_offset, off);
            std::vector<float> rec(nb * d);
            idx.reconstruct_n(0, nb, rec.data());
            const size_t de = off ? d + 1 : d;
            std::vector<float> ext(nb * de), qext(nq * de, 1.0f);
            for (size_t i = 0; i < nb; i++) {
                std::copy_n(rec.data() + i * d, d, ext.data() + i * de);
                if (off) {
                    double c = 0;
                    for (size_t j = 0; j < d; j++) {
                        c += (double)idx.tq.mean[j] *
                             (xb[i * d + j] - rec[i * d + j]);
                    }
                    ext[i * de + d] = (float)c;
                }
            }
            for (size_t i = 0; i < nq; i++) {
                std::copy_n(xq.data() + i * d, d, qext.data() + i * de);
            }
            faiss::IndexFlat flat(de, m);
            flat.add(nb, ext.data());
            std::vector<float> D(nq * k), D2(nq * k);
            std::vector<idx_t> I(nq * k), I2(nq * k);
            idx.search(nq, xq.data(), k, D.data(), I.data());
            flat.search(nq, qext.data(), k, D2.data(), I2.data());
            for (size_t i = 0; i < nq * k; i++) {
                EXPECT_NEAR(D[i], D2[i], 1e-4 * (1 + std::fabs(D2[i])));
                // labels agree wherever the gap to the neighbour is clear
                bool clear = (i % k == 0 || D2[i] - D2[i - 1] > 1e-4) &&
                             ((i + 1) % k == 0 || D2[i + 1] - D2[i] > 1e-4);
                if (clear && m == faiss::METRIC_L2) {
                    EXPECT_EQ(I[i], I2[i]);
                }
            }
        }
    }
}

namespace {

double sift_recall(float bits, bool centered, bool debiased, double* plain) {
    size_t n, d;
    std::vector<float> x = tqtest::load_bigann10k(n, d);
    if (n == 0) {
        return -1;
    }
    const size_t nq = 200, k = 10;
    const float* xq = x.data();
    const float* xb = x.data() + nq * d;
    size_t nb = n - nq;
    std::vector<idx_t> gt;
    tqtest::brute_force_knn(xb, nb, xq, nq, d, k, true, gt);
    IndexTurboQuant idx(
            d, bits, TQVariant::MSE, faiss::METRIC_L2, centered, debiased);
    idx.train(nb, xb);
    idx.add(nb, xb);
    std::vector<float> D(nq * k);
    std::vector<idx_t> I(nq * k);
    idx.search(nq, xq, k, D.data(), I.data());
    (void)plain;
    return tqtest::recall_at(I, gt, nq, k, k, k);
}

} // namespace

TEST(Index, RecallOnSiftMatchesReference) {
    // reference (faithful numpy TQmse, same protocol): centered + debiased
    // 0.751 / 0.922 at 2 / 4 bits; plain 0.658 / 0.883
    double r2 = sift_recall(2, true, true, nullptr);
    if (r2 < 0) {
        GTEST_SKIP() << "bigann10k not found (set FAISS_TURBO_DATA)";
    }
    double r4 = sift_recall(4, true, true, nullptr);
    double p2 = sift_recall(2, false, false, nullptr);
    double p4 = sift_recall(4, false, false, nullptr);
    // the other two combinations, for the README's choice of defaults
    printf("SIFT 10-recall@10: centered plain %.3f / %.3f, uncentered "
           "debiased %.3f / %.3f\n",
           sift_recall(2, true, false, nullptr),
           sift_recall(4, true, false, nullptr),
           sift_recall(2, false, true, nullptr),
           sift_recall(4, false, true, nullptr));
    printf("SIFT 10-recall@10: centered+debiased %.3f / %.3f, plain %.3f / "
           "%.3f (2 / 4 bits)\n",
           r2,
           r4,
           p2,
           p4);
    EXPECT_GE(r2, 0.735);
    EXPECT_GE(r4, 0.905);
    EXPECT_GE(p2, 0.62);
    EXPECT_GE(p4, 0.85);
}

// vectors that share a large common direction (as text embeddings do):
// with the stored <mean, r> the codes' error meets only q - mean, which
// must show as recall against exact inner products
TEST(Index, CenteredInnerProductsUseTheExactOffset) {
    const size_t d = 64, nb = 5000, nq = 200, k = 10;
    auto common = tqtest::random_gaussian(1, d, 7);
    auto xb = tqtest::around_direction(nb, common, 8);
    auto xq = tqtest::around_direction(nq, common, 9);
    faiss::IndexFlatIP flat(d);
    flat.add(nb, xb.data());
    std::vector<float> Dg(nq * k);
    std::vector<idx_t> gt(nq * k);
    flat.search(nq, xq.data(), k, Dg.data(), gt.data());
    double r[2];
    for (bool off : {false, true}) {
        IndexTurboQuant idx(
                d, 2, TQVariant::MSE, faiss::METRIC_INNER_PRODUCT, true);
        EXPECT_TRUE(idx.tq.ip_offset);
        idx.tq.ip_offset = off; // the layout before this option, to compare
        idx.tq.set_layout();
        idx.code_size = idx.tq.code_size;
        idx.train(nb, xb.data());
        idx.add(nb, xb.data());
        std::vector<float> D(nq * k);
        std::vector<idx_t> I(nq * k);
        idx.search(nq, xq.data(), k, D.data(), I.data());
        r[off] = tqtest::recall_at(I, gt, nq, k, k, k);
    }
    printf("2 bits, 10-recall@10 without / with <mean, r>: %.3f / %.3f\n",
           r[0],
           r[1]);
    EXPECT_GT(r[1], r[0] + 0.1);
}

TEST(Index, ThreadCountIndependent) {
    const size_t d = 64, nb = 3000, k = 7;
    auto xb = tqtest::random_gaussian(nb, d, 5);
    for (size_t nq : {1, 3, 100}) {
        auto xq = tqtest::random_gaussian(nq, d, 6);
        for (const Variant& v : kVariants) {
            auto idx = make_index(v, d, faiss::METRIC_L2, xb);
            std::vector<float> D1(nq * k), D2(nq * k);
            std::vector<idx_t> I1(nq * k), I2(nq * k);
            int nt = omp_get_max_threads();
            omp_set_num_threads(1);
            idx->search(nq, xq.data(), k, D1.data(), I1.data());
            omp_set_num_threads(std::max(nt, 2));
            idx->search(nq, xq.data(), k, D2.data(), I2.data());
            omp_set_num_threads(nt);
            EXPECT_EQ(I1, I2) << v.name;
            EXPECT_EQ(D1, D2) << v.name;
        }
    }
}

TEST(Index, ResultConventions) {
    const size_t d = 16;
    auto xb = tqtest::random_gaussian(5, d, 7);
    auto xq = tqtest::random_gaussian(2, d, 8);
    for (auto m : {faiss::METRIC_L2, faiss::METRIC_INNER_PRODUCT}) {
        IndexTurboQuant idx(d, 4, TQVariant::MSE, m);
        // empty index
        std::vector<float> D(2 * 8);
        std::vector<idx_t> I(2 * 8);
        idx.search(2, xq.data(), 8, D.data(), I.data());
        for (size_t i = 0; i < 16; i++) {
            EXPECT_EQ(I[i], -1);
            EXPECT_EQ(D[i], m == faiss::METRIC_L2 ? INFINITY : -INFINITY);
        }
        idx.add(5, xb.data());
        idx.search(2, xq.data(), 8, D.data(), I.data());
        for (size_t q = 0; q < 2; q++) {
            for (size_t j = 0; j < 8; j++) {
                if (j < 5) {
                    EXPECT_GE(I[q * 8 + j], 0);
                    if (j > 0) {
                        // sorted: ascending for L2, descending for IP
                        float a = D[q * 8 + j - 1], b = D[q * 8 + j];
                        EXPECT_TRUE(m == faiss::METRIC_L2 ? a <= b : a >= b);
                    }
                } else {
                    EXPECT_EQ(I[q * 8 + j], -1);
                }
            }
        }
        // n = 0 is fine
        idx.search(0, xq.data(), 3, D.data(), I.data());
    }
}

TEST(Index, IDSelectorAndRangeSearch) {
    const size_t d = 32, nb = 800, nq = 10, k = 20;
    auto xb = tqtest::random_gaussian(nb, d, 9);
    auto xq = tqtest::random_gaussian(nq, d, 10);
    for (const Variant& v : kVariants) {
        for (auto m : {faiss::METRIC_L2, faiss::METRIC_INNER_PRODUCT}) {
            auto idx = make_index(v, d, m, xb);
            std::vector<float> Dall;
            std::vector<idx_t> Iall;
            estimator_knn(*idx, xq.data(), nq, nb, Dall, Iall);

            // selector: only even ids in [100, 600)
            faiss::IDSelectorRange range(100, 600);
            SearchParametersTurboQuant params;
            params.scan_mode = TQ_SCAN_EXACT;
            params.sel = &range;
            std::vector<float> D(nq * k);
            std::vector<idx_t> I(nq * k);
            idx->search(nq, xq.data(), k, D.data(), I.data(), &params);
            for (size_t q = 0; q < nq; q++) {
                size_t j = 0;
                for (size_t t = 0; t < nb && j < k; t++) {
                    idx_t id = Iall[q * nb + t];
                    if (id >= 100 && id < 600) {
                        EXPECT_EQ(I[q * k + j], id) << v.name;
                        EXPECT_EQ(D[q * k + j], Dall[q * nb + t]);
                        j++;
                    }
                }
            }

            // range: radius at the 30th result of each query's median
            float radius = Dall[0 * nb + 30];
            faiss::RangeSearchResult res(nq);
            idx->range_search(nq, xq.data(), radius, &res);
            for (size_t q = 0; q < nq; q++) {
                std::vector<idx_t> got(
                        res.labels + res.lims[q], res.labels + res.lims[q + 1]);
                std::vector<idx_t> want;
                for (size_t t = 0; t < nb; t++) {
                    float s = Dall[q * nb + t];
                    if (m == faiss::METRIC_L2 ? s < radius : s > radius) {
                        want.push_back(Iall[q * nb + t]);
                    }
                }
                std::sort(got.begin(), got.end());
                std::sort(want.begin(), want.end());
                EXPECT_EQ(got, want) << v.name;
            }
        }
    }
}

TEST(Index, CentredTrainingRule) {
    const size_t d = 16;
    auto x = tqtest::random_gaussian(100, d, 11);
    IndexTurboQuant idx(d, 4, TQVariant::MSE, faiss::METRIC_L2, true);
    EXPECT_FALSE(idx.is_trained);
    EXPECT_THROW(idx.add(100, x.data()), FaissException);
    idx.train(100, x.data());
    EXPECT_TRUE(idx.is_trained);
    EXPECT_EQ(idx.tq.mean.size(), d);
    idx.add(100, x.data());
    // the mean cannot change under stored codes
    EXPECT_THROW(idx.train(100, x.data()), FaissException);
    idx.reset();
    EXPECT_NO_THROW(idx.train(100, x.data()));
    // plain variants are trained from construction; train is a no-op
    IndexTurboQuant plain(d, 4);
    EXPECT_TRUE(plain.is_trained);
    plain.train(100, x.data());
    EXPECT_TRUE(plain.tq.mean.empty());
}

TEST(Index, ReconstructRemoveReset) {
    const size_t d = 24, nb = 50;
    auto xb = tqtest::random_gaussian(nb, d, 12);
    IndexTurboQuant idx(d, 3, TQVariant::PROD);
    idx.add(nb, xb.data());
    std::vector<uint8_t> codes(nb * idx.code_size);
    idx.sa_encode(nb, xb.data(), codes.data());
    EXPECT_TRUE(std::equal(codes.begin(), codes.end(), idx.codes.begin()));
    std::vector<float> r1(d), r2(d);
    idx.reconstruct(7, r1.data());
    idx.sa_decode(1, codes.data() + 7 * idx.code_size, r2.data());
    EXPECT_EQ(r1, r2);
    faiss::IDSelectorRange sel(10, 20);
    EXPECT_EQ(idx.remove_ids(sel), 10u);
    EXPECT_EQ(idx.ntotal, (idx_t)nb - 10);
    idx.reconstruct(10, r1.data()); // was id 20
    idx.sa_decode(1, codes.data() + 20 * idx.code_size, r2.data());
    EXPECT_EQ(r1, r2);
    idx.reset();
    EXPECT_EQ(idx.ntotal, 0);
    EXPECT_EQ(idx.codes.size(), 0u);
}

TEST(Index, DistanceComputerAndFaissWrappers) {
    const size_t d = 32, nb = 1000, nq = 20, k = 10;
    auto xb = tqtest::random_gaussian(nb, d, 13);
    auto xq = tqtest::random_gaussian(nq, d, 14);
    IndexTurboQuant idx(d, 2, TQVariant::MSE);
    idx.add(nb, xb.data());
    std::vector<float> D(nq * k);
    std::vector<idx_t> I(nq * k);
    idx.search(nq, xq.data(), k, D.data(), I.data());

    std::unique_ptr<faiss::DistanceComputer> dc(idx.get_distance_computer());
    dc->set_query(xq.data());
    for (size_t j = 0; j < k; j++) {
        EXPECT_FLOAT_EQ((*dc)(I[j]), D[j]);
    }

    // IndexIDMap
    faiss::IndexIDMap idmap(new IndexTurboQuant(d, 2, TQVariant::MSE));
    idmap.own_fields = true;
    std::vector<idx_t> ids(nb);
    for (size_t i = 0; i < nb; i++) {
        ids[i] = 1000 + 3 * i;
    }
    idmap.add_with_ids(nb, xb.data(), ids.data());
    std::vector<float> D2(nq * k);
    std::vector<idx_t> I2(nq * k);
    idmap.search(nq, xq.data(), k, D2.data(), I2.data());
    for (size_t i = 0; i < nq * k; i++) {
        EXPECT_EQ(I2[i], 1000 + 3 * I[i]);
    }

    // IndexShards of two halves = one index
    faiss::IndexShards shards((idx_t)d, false, true);
    IndexTurboQuant s0(d, 2, TQVariant::MSE), s1(d, 2, TQVariant::MSE);
    shards.add_shard(&s0);
    shards.add_shard(&s1);
    shards.add(nb, xb.data());
    shards.search(nq, xq.data(), k, D2.data(), I2.data());
    for (size_t i = 0; i < nq * k; i++) {
        ASSERT_EQ(D2[i], D[i]) << i;
    }
    EXPECT_EQ(I2, I);

    // IndexRefineFlat improves recall over the codes
    IndexTurboQuant base(d, 2, TQVariant::MSE);
    faiss::IndexRefineFlat refine(&base);
    refine.k_factor = 4;
    std::vector<idx_t> gt;
    tqtest::brute_force_knn(xb.data(), nb, xq.data(), nq, d, k, true, gt);
    refine.add(nb, xb.data());
    refine.search(nq, xq.data(), k, D2.data(), I2.data());
    double r_ref = tqtest::recall_at(I2, gt, nq, k, k, k);
    double r_base = tqtest::recall_at(I, gt, nq, k, k, k);
    EXPECT_GT(r_ref, r_base);
}

TEST(Index, SymmetricDistanceMatchesReconstructions) {
    // HNSW's graph building uses symmetric_dis: it must be the metric on the
    // reconstructions (computed in the rotated space for TQmse)
    const size_t d = 40, nb = 60;
    auto xb = tqtest::random_gaussian(nb, d, 21);
    for (auto& x : xb) {
        x += 0.5f;
    }
    for (const Variant& v : kVariants) {
        for (auto m : {faiss::METRIC_L2, faiss::METRIC_INNER_PRODUCT}) {
            auto idx = make_index(v, d, m, xb);
            std::unique_ptr<faiss::DistanceComputer> dc(
                    idx->get_distance_computer());
            std::vector<float> rec(nb * d);
            idx->reconstruct_n(0, nb, rec.data());
            for (idx_t i = 0; i < 10; i++) {
                idx_t j = nb - 1 - i;
                double s = 0;
                for (size_t t = 0; t < d; t++) {
                    float a = rec[i * d + t], b = rec[j * d + t];
                    s += m == faiss::METRIC_L2 ? (a - b) * (a - b) : a * b;
                }
                EXPECT_NEAR(
                        dc->symmetric_dis(i, j), s, 1e-4 * (1 + std::fabs(s)))
                        << v.name << " metric " << m;
            }
        }
    }
}

TEST(Index, BadInput) {
    EXPECT_THROW(IndexTurboQuant(0, 4), FaissException);
    EXPECT_THROW(IndexTurboQuant(-3, 4), FaissException);
    EXPECT_THROW(IndexTurboQuant(16, 0.5), FaissException);
    EXPECT_THROW(IndexTurboQuant(16, 8.5), FaissException);
    EXPECT_THROW(
            IndexTurboQuant(16, 4, TQVariant::MSE, faiss::METRIC_L1),
            FaissException);
    IndexTurboQuant idx(16, 4);
    auto x = tqtest::random_gaussian(10, 16, 15);
    idx.add(10, x.data());
    std::vector<float> D(10);
    std::vector<idx_t> I(10);
    EXPECT_THROW(
            idx.search(1, x.data(), 0, D.data(), I.data()), FaissException);
    EXPECT_THROW(
            idx.search(1, x.data(), -1, D.data(), I.data()), FaissException);
    EXPECT_THROW(
            idx.search(-1, x.data(), 1, D.data(), I.data()), FaissException);
    EXPECT_THROW(idx.add(-1, x.data()), FaissException);
    // a NaN anywhere: add fails and leaves the index as it was
    auto bad = x;
    bad[5 * 16 + 3] = NAN;
    EXPECT_THROW(idx.add(10, bad.data()), FaissException);
    EXPECT_EQ(idx.ntotal, 10);
    EXPECT_EQ(idx.codes.size(), 10 * idx.code_size);
    EXPECT_THROW(
            idx.search(10, bad.data(), 1, D.data(), I.data()), FaissException);
    bad[5 * 16 + 3] = -INFINITY;
    EXPECT_THROW(idx.add(10, bad.data()), FaissException);
    // a finite query too long for L2 distances in float (squared norm
    // 1.6e41): every distance was +inf and the results silently empty;
    // refused by its number. Inner products refuse it too: its scores
    // overflowed to NaN (-1 labels) in some codecs and layouts.
    std::vector<float> big(2 * 16, 0.5f);
    std::fill(big.begin() + 16, big.end(), 1e20f);
    faiss::RangeSearchResult res(2);
    for (bool fast : {false, true}) {
        std::unique_ptr<faiss::Index> l2(
                fast ? (faiss::Index*)new IndexTurboQuantFastScan(16, 4)
                     : (faiss::Index*)new IndexTurboQuant(16, 4));
        l2->add(10, x.data());
        tqtest::throws_with(
                [&] { l2->search(2, big.data(), 1, D.data(), I.data()); },
                "query 1 is too long for L2 distances");
        EXPECT_THROW(
                l2->range_search(2, big.data(), 1.0f, &res), FaissException);
    }
    // a vector that long was stored at distance +inf from every query,
    // never returned; refused as IVF refuses it. Centered, its squared
    // norm after the mean is what counts.
    for (bool fast : {false, true}) {
        std::unique_ptr<faiss::Index> l2(
                fast ? (faiss::Index*)new IndexTurboQuantFastScan(16, 4)
                     : (faiss::Index*)new IndexTurboQuant(16, 4));
        tqtest::throws_with(
                [&] { l2->add(2, big.data()); },
                "vector 1 is too long for L2 distances");
        EXPECT_EQ(l2->ntotal, 0);
        std::unique_ptr<faiss::Index> c(
                fast ? (faiss::Index*)new IndexTurboQuantFastScan(
                               16, 4, faiss::METRIC_L2, true)
                     : (faiss::Index*)new IndexTurboQuant(
                               16, 4, TQVariant::MSE, faiss::METRIC_L2, true));
        std::vector<float> far(x.begin(), x.begin() + 10 * 16);
        for (float& v : far) {
            v = v * 1e14f + 1e19f; // raw squared norm 1.6e39; centered fits
        }
        c->train(10, far.data());
        c->add(10, far.data());
        c->search(1, far.data(), 1, D.data(), I.data());
        EXPECT_EQ(I[0], 0);
    }
    for (TQVariant v : {TQVariant::MSE, TQVariant::PROD}) {
        IndexTurboQuant ip(16, 4, v, faiss::METRIC_INNER_PRODUCT);
        ip.add(2, big.data()); // inner products to it fit
        ip.reset();
        ip.add(10, x.data());
        tqtest::throws_with(
                [&] { ip.search(2, big.data(), 1, D.data(), I.data()); },
                "query 1 is too long for inner products");
        std::fill(big.begin() + 16, big.end(), 1e17f); // scores fit
        ip.search(2, big.data(), 1, D.data(), I.data());
        EXPECT_GE(I[1], 0);
        std::fill(big.begin() + 16, big.end(), 1e20f);
    }
}

TEST(Index, MergeRejectsOtherCodebooks) {
    // an index read from an older file keeps the codebooks computed then;
    // merged, its codes would decode with the other index's centroids
    const size_t d = 32;
    std::vector<float> x = tqtest::random_gaussian(20, d, 3);
    auto older_codebook = [](TurboQuantizer& tq) {
        auto cb = std::make_shared<Codebook>(*tq.cb_hi);
        cb->centroids.back() *= 1.01f;
        tq.cb_hi = tq.cb_lo = cb;
    };
    IndexTurboQuant a(d, 4), b(d, 4);
    b.add(20, x.data());
    EXPECT_NO_THROW(a.check_compatible_for_merge(b));
    older_codebook(b.tq);
    EXPECT_THROW(a.merge_from(b), faiss::FaissException);
    EXPECT_EQ(b.ntotal, 20);
    IndexTurboQuantFastScan fa(d, 4), fb(d, 4);
    EXPECT_NO_THROW(fa.check_compatible_for_merge(fb));
    older_codebook(fb.tq);
    EXPECT_THROW(fa.check_compatible_for_merge(fb), faiss::FaissException);
}

TEST(Index, Factory) {
    struct Case {
        const char* s;
        TQVariant v;
        float bits;
        bool centered;
    };
    const Case cases[] = {
            {"TQmse4", TQVariant::MSE, 4, false},
            {"TQprod3", TQVariant::PROD, 3, false},
            {"TQ2.5", TQVariant::MSE, 2.5, false},
            {"TQmse4c", TQVariant::MSE, 4, true},
            {"TQprod2.5c", TQVariant::PROD, 2.5, true},
            {"TQ8", TQVariant::MSE, 8, false},
    };
    for (const Case& c : cases) {
        std::unique_ptr<faiss::Index> idx(
                faiss_turbo::index_factory(32, c.s, faiss::METRIC_L2));
        auto tq = dynamic_cast<IndexTurboQuant*>(idx.get());
        ASSERT_TRUE(tq) << c.s;
        EXPECT_EQ(tq->tq.variant, c.v);
        EXPECT_EQ(tq->tq.bits, c.bits);
        EXPECT_EQ(tq->centered, c.centered);
        EXPECT_EQ(tq->is_trained, !c.centered);
    }
    // not ours: FAISS's own (ITQ is FAISS's, not a TurboQuant token)
    std::unique_ptr<faiss::Index> f(
            faiss_turbo::index_factory(32, "Flat", faiss::METRIC_L2));
    EXPECT_TRUE(dynamic_cast<faiss::IndexFlat*>(f.get()));
    for (const char* bad : {"TQmse9", "TQ0", "TQmse2.55", "TQ12"}) {
        EXPECT_THROW(
                delete faiss_turbo::index_factory(32, bad, faiss::METRIC_L2),
                FaissException)
                << bad;
    }
}
