/**
 * Out of memory at every allocation of an operation, in turn: this binary
 * replaces operator new with one that fails the N-th allocation from the
 * moment it is armed (on any thread, OpenMP workers included). Each
 * operation must then throw (never end the process: an exception leaving
 * an OpenMP region calls std::terminate) and leave the index as it was,
 * searches included; unarmed, it must succeed.
 */
#include <gtest/gtest.h>

#include <atomic>
#include <cstdlib>
#include <memory>
#include <new>
#include <thread>
#include <vector>

#include <faiss/IndexFlat.h>
#include <faiss/impl/AuxIndexStructures.h>
#include <faiss/impl/FaissException.h>
#include <faiss/impl/IDSelector.h>

#include <faiss_turbo/IndexIVFTurboQuant.h>
#include <faiss_turbo/IndexIVFTurboQuantFastScan.h>
#include <faiss_turbo/IndexTurboQuant.h>
#include <faiss_turbo/IndexTurboQuantFastScan.h>
#include <faiss_turbo/SearchParametersTurboQuant.h>

#include "test_util.h"

namespace {

/// allocations left before the failing one; < 0: disarmed
std::atomic<long> g_countdown{-1};

} // namespace

void* operator new(std::size_t n) {
    if (g_countdown.load(std::memory_order_relaxed) >= 0 &&
        g_countdown.fetch_sub(1) == 0) {
        throw std::bad_alloc();
    }
    void* p = std::malloc(n == 0 ? 1 : n);
    if (!p) {
        throw std::bad_alloc();
    }
    return p;
}

void operator delete(void* p) noexcept {
    std::free(p);
}

void operator delete(void* p, std::size_t) noexcept {
    std::free(p);
}

namespace {

using namespace faiss_turbo;
using tqtest::idx_t;
using tqtest::random_gaussian;
using tqtest::Result;

/// runs op with allocation 0, 1, 2, ... failing until it succeeds; after
/// each failure (std::bad_alloc, or FAISS's exception that carries it)
/// `unchanged` checks the state. Returns the allocations op made.
template <class Op, class Check>
int fail_each_allocation(Op op, Check unchanged) {
    for (int i = 0; i < 100000; i++) {
        bool failed = false;
        g_countdown = i;
        try {
            op();
        } catch (const std::bad_alloc&) {
            failed = true;
        } catch (const faiss::FaissException&) {
            failed = true;
        }
        const bool hit = g_countdown.load() < 0;
        g_countdown = -1;
        if (!failed) {
            EXPECT_FALSE(hit) << "allocation " << i << " failed unnoticed";
            return i;
        }
        if (!hit) {
            ADD_FAILURE() << "failed with no allocation failing";
            return -1;
        }
        SCOPED_TRACE(testing::Message() << "allocation " << i << " failed");
        unchanged();
        if (testing::Test::HasFatalFailure()) {
            return i;
        }
    }
    ADD_FAILURE() << "never succeeded";
    return -1;
}

Result search_with(
        const faiss::Index& index,
        const std::vector<float>& xq,
        size_t k,
        const faiss::SearchParameters* p) {
    const size_t nq = xq.size() / index.d;
    Result r;
    r.D.resize(nq * k);
    r.I.resize(nq * k);
    index.search(nq, xq.data(), k, r.D.data(), r.I.data(), p);
    return r;
}

/// searches of every scan mode, one query and a parallel batch, a k past
/// ntotal: each allocation fails in turn, then the results are the
/// unarmed ones
void check_searches(const faiss::Index& index, size_t d) {
    std::vector<float> xq = random_gaussian(40, d, 9);
    std::vector<float> one(xq.begin(), xq.begin() + d);
    SearchParametersTurboQuant exact, int8, prescan;
    exact.scan_mode = TQ_SCAN_EXACT;
    int8.scan_mode = TQ_SCAN_INT8;
    prescan.scan_mode = TQ_SCAN_INT8;
    prescan.prescan = 2;
    for (auto* p : {&exact, &int8, &prescan}) {
        for (const auto* q : {&one, &xq}) {
            for (size_t k : {(size_t)5, (size_t)index.ntotal + 3}) {
                SCOPED_TRACE(
                        testing::Message()
                        << "scan_mode " << p->scan_mode << " prescan "
                        << p->prescan << " nq " << q->size() / d << " k " << k);
                Result want = search_with(index, *q, k, p);
                Result got;
                fail_each_allocation(
                        [&] { got = search_with(index, *q, k, p); }, [] {});
                EXPECT_EQ(got.I, want.I);
                EXPECT_EQ(got.D, want.D);
            }
        }
    }
    // range search: hits gathered in FAISS's threads
    const size_t nq = xq.size() / d;
    Result knn = search_with(index, xq, 3, &exact);
    const float radius = knn.D[2]; // about 2-3 hits per query
    auto range = [&] {
        faiss::RangeSearchResult r(nq);
        index.range_search(nq, xq.data(), radius, &r);
        return std::vector<idx_t>(r.labels, r.labels + r.lims[nq]);
    };
    std::vector<idx_t> want = range(), got;
    EXPECT_FALSE(want.empty());
    fail_each_allocation([&] { got = range(); }, [] {});
    EXPECT_EQ(got, want);
}

TEST(AllocFailures, FlatAddAndSearch) {
    // d = 32: the dense rotation; d = 128: Hadamard blocks, 8 at a time
    for (size_t d : {32, 128}) {
        SCOPED_TRACE(testing::Message() << "d " << d);
        const size_t nb = 64;
        std::vector<float> xb = random_gaussian(nb + 40, d, 1);
        std::vector<float> xq = random_gaussian(3, d, 2);
        IndexTurboQuant index(d, 4, TQVariant::MSE);
        index.add(nb, xb.data());
        Result before = search_with(index, xq, 5, nullptr);
        fail_each_allocation(
                [&] { index.add(40, xb.data() + nb * d); },
                [&] {
                    ASSERT_EQ(index.ntotal, (idx_t)nb);
                    ASSERT_EQ(index.codes.size(), nb * index.code_size);
                    Result r = search_with(index, xq, 5, nullptr);
                    EXPECT_EQ(r.I, before.I);
                });
        EXPECT_EQ(index.ntotal, (idx_t)(nb + 40));
        check_searches(index, d);
    }
}

TEST(AllocFailures, FastScanAddMergeAndSearch) {
    const size_t d = 32, nb = 64; // whole blocks: growth allocates
    std::vector<float> xb = random_gaussian(nb + 40, d, 3);
    std::vector<float> xq = random_gaussian(3, d, 4);
    IndexTurboQuantFastScan index(d, 4);
    index.add(nb, xb.data());
    Result before = search_with(index, xq, 5, nullptr);
    auto unchanged = [&] {
        ASSERT_EQ(index.ntotal, (idx_t)nb);
        ASSERT_EQ(index.codes.ntotal, nb);
        ASSERT_EQ(index.codes.norm.size(), nb);
        Result r = search_with(index, xq, 5, nullptr);
        EXPECT_EQ(r.I, before.I);
        EXPECT_EQ(r.D, before.D);
    };
    fail_each_allocation([&] { index.add(1, xb.data() + nb * d); }, unchanged);
    EXPECT_EQ(index.ntotal, (idx_t)nb + 1);
    index.remove_ids(faiss::IDSelectorRange(nb, nb + 1));

    IndexTurboQuantFastScan other(d, 4);
    other.add(40, xb.data() + nb * d);
    fail_each_allocation(
            [&] { index.merge_from(other); },
            [&] {
                unchanged();
                EXPECT_EQ(other.ntotal, 40);
            });
    EXPECT_EQ(index.ntotal, (idx_t)(nb + 40));
    EXPECT_EQ(other.ntotal, 0);
    check_searches(index, d);
}

/// IVF: FAISS makes each thread's scanner inside its OpenMP region, outside
/// its own try; ours are made before it (spares). Adds by residual compute
/// the residuals in a parallel loop.
/// the first add of an index, on a thread of its own (nothing per thread
/// made yet), not debiased (the fast-scan layout then keeps ||c_hat||^2,
/// decoded through a per-thread buffer): row and blocked, flat and IVF
TEST(AllocFailures, FirstAddOnAFreshThread) {
    const size_t d = 32, nb = 200;
    std::vector<float> xb = random_gaussian(nb, d, 7);
    auto make = [&](int kind) -> faiss::Index* {
        auto q = [&] { return new faiss::IndexFlatL2(d); };
        const auto L2 = faiss::METRIC_L2;
        switch (kind) {
            case 0:
                return new IndexTurboQuantFastScan(d, 4, L2, false, false);
            case 1:
                return new IndexIVFTurboQuantFastScan(
                        q(), d, 4, 4, L2, true, false, false);
            default:
                return new IndexIVFTurboQuant(
                        q(), d, 4, 4, TQVariant::MSE, L2, true, false, false);
        }
    };
    for (int kind : {0, 1, 2}) {
        SCOPED_TRACE(testing::Message() << "kind " << kind);
        std::unique_ptr<faiss::Index> index(make(kind)), ref(make(kind));
        if (auto ivf = dynamic_cast<IndexIVFTurboQuant*>(index.get())) {
            ivf->own_fields = true;
            dynamic_cast<IndexIVFTurboQuant*>(ref.get())->own_fields = true;
        }
        index->train(nb, xb.data());
        ref->train(nb, xb.data());
        ref->add(nb, xb.data());
        std::thread fresh([&] {
            fail_each_allocation(
                    [&] { index->add(nb, xb.data()); },
                    [&] { ASSERT_EQ(index->ntotal, 0); });
        });
        fresh.join();
        ASSERT_EQ(index->ntotal, (idx_t)nb);
        std::vector<float> xq = random_gaussian(5, d, 8);
        SearchParametersIVFTurboQuant ivf_exact;
        ivf_exact.nprobe = 4;
        ivf_exact.scan_mode = TQ_SCAN_EXACT;
        SearchParametersTurboQuant flat_exact;
        flat_exact.scan_mode = TQ_SCAN_EXACT;
        const faiss::SearchParameters* p =
                kind == 0 ? (const faiss::SearchParameters*)&flat_exact
                          : &ivf_exact;
        Result a = search_with(*index, xq, 5, p),
               b = search_with(*ref, xq, 5, p);
        EXPECT_EQ(a.I, b.I);
        EXPECT_EQ(a.D, b.D);
    }
}

TEST(AllocFailures, IVFAddAndSearch) {
    const size_t d = 32, nb = 500;
    std::vector<float> xb = random_gaussian(nb + 100, d, 5);
    for (bool blocked : {false, true}) {
        for (bool by_residual : {false, true}) {
            SCOPED_TRACE(
                    testing::Message()
                    << "blocked " << blocked << " by_residual " << by_residual);
            auto* q = new faiss::IndexFlatL2(d);
            std::unique_ptr<IndexIVFTurboQuant> ivf(
                    blocked ? new IndexIVFTurboQuantFastScan(
                                      q, d, 8, 4, faiss::METRIC_L2, by_residual)
                            : new IndexIVFTurboQuant(
                                      q,
                                      d,
                                      8,
                                      4,
                                      TQVariant::MSE,
                                      faiss::METRIC_L2,
                                      by_residual));
            ivf->own_fields = true;
            ivf->train(nb, xb.data());
            ivf->add(nb, xb.data());
            std::vector<float> xq = random_gaussian(20, d, 6);
            std::vector<float> one(xq.begin(), xq.begin() + d);
            SearchParametersIVFTurboQuant exact;
            exact.nprobe = 3;
            exact.scan_mode = TQ_SCAN_EXACT;
            Result before = search_with(*ivf, xq, 7, &exact);
            fail_each_allocation(
                    [&] { ivf->add(100, xb.data() + nb * d); },
                    [&] {
                        ASSERT_EQ(ivf->ntotal, (idx_t)nb);
                        ASSERT_EQ(ivf->invlists->compute_ntotal(), nb);
                        Result r = search_with(*ivf, xq, 7, &exact);
                        EXPECT_EQ(r.I, before.I);
                    });
            EXPECT_EQ(ivf->ntotal, (idx_t)(nb + 100));
            // update_vectors of one vector (Array map): encoded and the
            // lists' memory reserved before it moves
            ivf->set_direct_map_type(faiss::DirectMap::Array);
            auto by_id = [&] { // every vector through the direct map
                std::vector<float> r(ivf->ntotal * d);
                for (idx_t i = 0; i < ivf->ntotal; i++) {
                    ivf->reconstruct(i, r.data() + i * d);
                }
                return r;
            };
            const std::vector<float> old_recons = by_id();
            const idx_t seven = 7;
            fail_each_allocation(
                    [&] { ivf->update_vectors(1, &seven, xb.data()); },
                    [&] {
                        ASSERT_EQ(ivf->invlists->compute_ntotal(), nb + 100);
                        EXPECT_EQ(by_id(), old_recons);
                    });
            EXPECT_NE(by_id(), old_recons);
            ivf->set_direct_map_type(faiss::DirectMap::NoMap);
            // the first search after an add refreshes the blocked lists'
            // per-code terms (in a parallel loop)
            Result got;
            fail_each_allocation(
                    [&] { got = search_with(*ivf, xq, 7, &exact); }, [] {});
            EXPECT_EQ(got.I, search_with(*ivf, xq, 7, &exact).I);
            // parallel_mode 0 (FAISS splits the queries around its scan).
            // Other modes allocate inside FAISS's region, outside its try:
            // out of memory there ends the process, whatever the index
            for (int mode : {TQ_SCAN_EXACT, TQ_SCAN_INT8}) {
                for (const auto* x : {&one, &xq}) {
                    SearchParametersIVFTurboQuant p;
                    p.nprobe = 3;
                    p.scan_mode = mode;
                    Result want = search_with(*ivf, *x, 7, &p), got;
                    fail_each_allocation(
                            [&] { got = search_with(*ivf, *x, 7, &p); }, [] {});
                    EXPECT_EQ(got.I, want.I);
                    EXPECT_EQ(got.D, want.D);
                }
            }
        }
    }
}

} // namespace
