/**
 * IndexIVFTurboQuantFastScan (IVF lists in blocks): the same codes and
 * exact results as IndexIVFTurboQuant's row lists, table scores equal to
 * the flat fast-scan's, removal, merging, cloning, range search, files,
 * factory, and BlockedInvertedLists' row round trips.
 */
#include <gtest/gtest.h>

#include <algorithm>
#include <cmath>
#include <cstring>
#include <map>
#include <memory>

#include <faiss/IndexFlat.h>
#include <faiss/clone_index.h>
#include <faiss/impl/AuxIndexStructures.h>
#include <faiss/impl/FaissException.h>
#include <faiss/impl/IDSelector.h>
#include <faiss/invlists/InvertedLists.h>

#include <faiss_turbo/IndexIVFTurboQuant.h>
#include <faiss_turbo/IndexIVFTurboQuantFastScan.h>
#include <faiss_turbo/IndexTurboQuantFastScan.h>
#include <faiss_turbo/SearchParametersTurboQuant.h>
#include <faiss_turbo/impl/blocked_invlists.h>
#include <faiss_turbo/impl/scan_lut.h>
#include <faiss_turbo/index_factory.h>
#include <faiss_turbo/index_io.h>

#include <omp.h>

#include "test_util.h"

using namespace faiss_turbo;
using tqtest::idx_t;
using tqtest::random_gaussian;
using tqtest::recall_at;
using tqtest::Result;
using tqtest::search;

namespace {

constexpr size_t kNlist = 16;

struct Form {
    float bits;
    faiss::MetricType metric;
    bool by_residual, centered, debiased;
};

std::string name(const Form& f) {
    return testing::PrintToString(f.bits) + (f.metric ? " IP" : " L2") +
           (f.by_residual ? " residual" : "") +
           (f.centered ? " centered" : "") + (f.debiased ? " debiased" : "");
}

std::vector<Form> all_forms() {
    std::vector<Form> forms;
    for (float bits : {4.0f, 2.0f, 1.0f, 1.5f}) {
        for (auto m : {faiss::METRIC_L2, faiss::METRIC_INNER_PRODUCT}) {
            forms.push_back({bits, m, true, false, true});
            forms.push_back({bits, m, true, false, false});
            forms.push_back({bits, m, false, false, true});
            forms.push_back({bits, m, false, true, true});
        }
    }
    return forms;
}

faiss::Index* new_quantizer(size_t d, faiss::MetricType m) {
    return m == faiss::METRIC_L2 ? (faiss::Index*)new faiss::IndexFlatL2(d)
                                 : (faiss::Index*)new faiss::IndexFlatIP(d);
}

/// an IndexIVFTurboQuant and the fast-scan index of the same codec on the
/// same coarse centroids, both trained and filled with xb
struct Pair {
    std::unique_ptr<IndexIVFTurboQuant> rows;
    std::unique_ptr<IndexIVFTurboQuantFastScan> fs;
};

Pair make_pair(size_t d, const Form& f, const std::vector<float>& xb) {
    const size_t n = xb.size() / d;
    Pair p;
    p.rows = std::make_unique<IndexIVFTurboQuant>(
            new_quantizer(d, f.metric),
            d,
            kNlist,
            f.bits,
            TQVariant::MSE,
            f.metric,
            f.by_residual,
            f.centered,
            f.debiased);
    p.rows->own_fields = true;
    p.rows->train(n, xb.data());
    p.fs = std::make_unique<IndexIVFTurboQuantFastScan>(
            faiss::clone_index(p.rows->quantizer),
            d,
            kNlist,
            f.bits,
            f.metric,
            f.by_residual,
            f.centered,
            f.debiased);
    p.fs->own_fields = true;
    p.fs->train(n, xb.data()); // the quantizer is trained: the mean only
    p.rows->add(n, xb.data());
    p.fs->add(n, xb.data());
    return p;
}

SearchParametersIVFTurboQuant params(int mode, size_t nprobe, float rf = 4) {
    SearchParametersIVFTurboQuant sp;
    sp.scan_mode = mode;
    sp.rerank_factor = rf;
    sp.nprobe = nprobe;
    return sp;
}

/// every list: the same ids and row codes
void expect_same_lists(const faiss::IndexIVF& a, const faiss::IndexIVF& b) {
    ASSERT_EQ(a.ntotal, b.ntotal);
    for (size_t l = 0; l < a.nlist; l++) {
        const size_t n = a.invlists->list_size(l);
        ASSERT_EQ(n, b.invlists->list_size(l)) << "list " << l;
        faiss::InvertedLists::ScopedIds ia(a.invlists, l), ib(b.invlists, l);
        ASSERT_TRUE(std::equal(ia.get(), ia.get() + n, ib.get()));
        ListRows ra(*a.invlists, l), rb(*b.invlists, l);
        ASSERT_EQ(0, memcmp(ra.get(), rb.get(), n * a.code_size));
    }
}

/// the padding after the last code of every list is all-zero
void expect_zero_padding(const BlockedInvertedLists& il) {
    for (size_t l = 0; l < il.nlist; l++) {
        const BlockedCodes& c = il.codes[l];
        ASSERT_EQ(c.blocks.size(), c.nblocks() * c.block_bytes());
        std::vector<uint8_t> mse(c.ngroups);
        for (size_t i = c.ntotal; i < c.nblocks() * kLutBlockCodes; i++) {
            unpack_block_code(c.blocks.data(), c.ngroups, i, mse.data());
            ASSERT_TRUE(std::all_of(
                    mse.begin(), mse.end(), [](uint8_t v) { return v == 0; }))
                    << "list " << l << " slot " << i;
        }
    }
}

/// FAISS's own search loop with our scanner (IndexIVF::search_preassigned,
/// past IndexIVFTurboQuantFastScan's query-by-query search)
Result preassigned_by_faiss(
        const IndexIVFTurboQuantFastScan& idx,
        const std::vector<float>& xq,
        size_t k,
        size_t nprobe) {
    const size_t nq = xq.size() / idx.d;
    std::vector<idx_t> assign(nq * nprobe);
    std::vector<float> cdis(nq * nprobe);
    idx.quantizer->search(nq, xq.data(), nprobe, cdis.data(), assign.data());
    Result r{std::vector<float>(nq * k), std::vector<idx_t>(nq * k)};
    faiss::SearchParametersIVF sp;
    sp.nprobe = nprobe;
    idx.faiss::IndexIVF::search_preassigned(
            nq,
            xq.data(),
            k,
            assign.data(),
            cdis.data(),
            r.D.data(),
            r.I.data(),
            false,
            &sp);
    return r;
}

} // namespace

TEST(IVFFastScan, SameCodesAndResultsAsRowLists) {
    const size_t d = 48, nb = 1500, nq = 20, k = 10, nprobe = 5;
    std::vector<float> xb = random_gaussian(nb, d, 1);
    std::vector<float> xq = random_gaussian(nq, d, 2);
    for (const Form& f : all_forms()) {
        SCOPED_TRACE(name(f));
        Pair p = make_pair(d, f, xb);
        ASSERT_NO_FATAL_FAILURE(expect_same_lists(*p.rows, *p.fs));
        ASSERT_NO_FATAL_FAILURE(expect_zero_padding(p.fs->blocked_lists()));

        // exact mode: the row lists' results, bit for bit
        auto ex = params(TQ_SCAN_EXACT, nprobe);
        Result r1 = search(*p.rows, xq, k, &ex), r2 = search(*p.fs, xq, k, &ex);
        ASSERT_EQ(r1.I, r2.I);
        ASSERT_EQ(r1.D, r2.D);

        // table scan + re-scoring: every score returned is the exact
        // estimator's (all probed codes scored exactly by the row index)
        auto sp = params(TQ_SCAN_INT8, nprobe);
        Result r3 = search(*p.fs, xq, k, &sp);
        Result all = search(*p.rows, xq, nb, &ex);
        for (size_t q = 0; q < nq; q++) {
            std::map<idx_t, float> exact;
            for (size_t j = 0; j < nb && all.I[q * nb + j] >= 0; j++) {
                exact[all.I[q * nb + j]] = all.D[q * nb + j];
            }
            for (size_t j = 0; j < k; j++) {
                idx_t id = r3.I[q * k + j];
                ASSERT_TRUE(exact.count(id)) << "query " << q << " id " << id;
                ASSERT_EQ(r3.D[q * k + j], exact[id]);
            }
        }
        EXPECT_GE(recall_at(r3.I, r1.I, nq, k, k, k), 0.95);
    }
}

TEST(IVFFastScan, BatchesAnswerAsSingleQueries) {
    // a batch scans each list once for up to 4 of its queries: the same
    // candidates, so the same results bit for bit
    const size_t d = 40, nb = 2000, nq = 70, k = 12, nprobe = 6;
    std::vector<float> xb = random_gaussian(nb, d, 21);
    std::vector<float> xq = random_gaussian(nq, d, 22);
    for (const Form& f : all_forms()) {
        if (f.bits != 2 && f.bits != 1.5f) {
            continue;
        }
        SCOPED_TRACE(name(f));
        Pair p = make_pair(d, f, xb);
        for (float rf : {2.0f, 0.5f}) {
            auto sp = params(TQ_SCAN_INT8, nprobe, rf);
            Result batch = search(*p.fs, xq, k, &sp);
            for (size_t q = 0; q < nq; q += 7) {
                std::vector<float> one(
                        xq.begin() + q * d, xq.begin() + (q + 1) * d);
                Result r = search(*p.fs, one, k, &sp);
                ASSERT_TRUE(std::equal(
                        r.I.begin(), r.I.end(), batch.I.begin() + q * k))
                        << "query " << q << " rf " << rf;
                ASSERT_TRUE(std::equal(
                        r.D.begin(), r.D.end(), batch.D.begin() + q * k));
            }
        }
    }
}

TEST(IVFFastScan, UnrerankedResidualScoresWithinTheTableBound) {
    // one query's tables serve every list: <y - R c, c_hat> is scored as
    // the table sum of y minus the code's <R c, c_hat> (cdot), so a table
    // score is off the exact one by at most |dot coefficient| times the
    // tables' bound nslots * delta / 2 (lut_quantize)
    const size_t d = 64, nb = 1500, nq = 12, k = 20, nprobe = 6;
    std::vector<float> xb = random_gaussian(nb, d, 15);
    std::vector<float> xq = random_gaussian(nq, d, 16);
    for (Form f :
         {Form{4, faiss::METRIC_L2, true, false, true},
          Form{4, faiss::METRIC_L2, true, false, false},
          Form{2, faiss::METRIC_INNER_PRODUCT, true, false, true}}) {
        SCOPED_TRACE(name(f));
        // searched (cdot computed), then changed: appended codes, and codes
        // moved by remove_ids, get theirs at the next search
        Pair p = make_pair(
                d, f, std::vector<float>(xb.begin(), xb.begin() + 1000 * d));
        auto sp = params(TQ_SCAN_INT8, nprobe, 0.5);
        search(*p.fs, xq, k, &sp);
        p.fs->add(nb - 1000, xb.data() + 1000 * d);
        p.rows->add(nb - 1000, xb.data() + 1000 * d);
        faiss::IDSelectorRange cut(200, 400);
        p.fs->remove_ids(cut);
        p.rows->remove_ids(cut);
        const TurboQuantizer& tq = p.fs->tq;
        const bool l2 = f.metric == faiss::METRIC_L2;
        Result own = search(*p.fs, xq, k, &sp); // refreshes the lists
        // and FAISS's loop with the scanner (search_defaults then apply)
        p.fs->search_defaults.rerank_factor = 0.5;
        Result scanner = preassigned_by_faiss(*p.fs, xq, k, nprobe);
        auto ex = params(TQ_SCAN_EXACT, nprobe);
        Result all = search(*p.rows, xq, nb, &ex);
        // each id's code scalars
        std::map<idx_t, TQCodeScalars> scal;
        for (size_t l = 0; l < kNlist; l++) {
            ListRows rows(*p.rows->invlists, l);
            faiss::InvertedLists::ScopedIds ids(p.rows->invlists, l);
            for (size_t i = 0; i < p.rows->invlists->list_size(l); i++) {
                tq.read_scalars(rows.get() + i * tq.code_size, scal[ids[i]]);
            }
        }
        TQQueries q;
        tq.prepare_queries(nq, xq.data(), l2, q);
        std::vector<float> ft(32 * tq.mse_bytes);
        std::vector<uint8_t> lut(ft.size());
        for (size_t qi = 0; qi < nq; qi++) {
            float delta, bias;
            lut_float_tables(tq, q.y.data() + qi * d, ft.data());
            lut_quantize(ft.data(), 2 * tq.mse_bytes, lut.data(), delta, bias);
            const double dot_bound = 2 * tq.mse_bytes * delta / 2;
            std::map<idx_t, float> exact;
            for (size_t j = 0; j < nb && all.I[qi * nb + j] >= 0; j++) {
                exact[all.I[qi * nb + j]] = all.D[qi * nb + j];
            }
            for (const Result* r : {&own, &scanner}) {
                for (size_t j = 0; j < k; j++) {
                    idx_t id = r->I[qi * k + j];
                    ASSERT_GE(id, 0);
                    const TQCodeScalars& s = scal.at(id);
                    double coef = (f.debiased ? s.aux : s.norm) * (l2 ? 2 : 1);
                    double tol = std::abs(coef) * dot_bound * 1.01 +
                                 1e-4 * (1 + std::abs(exact.at(id)));
                    EXPECT_NEAR(r->D[qi * k + j], exact.at(id), tol)
                            << "query " << qi << " id " << id;
                }
            }
        }
    }
}

TEST(IVFFastScan, ListsFarFromTheQueryGetTablesOfTheirOwn) {
    // data far from the origin next to its spread: the residual query
    // R (q - c) is a fraction of R q, and tables of the query, their steps
    // sized by |R q|, ranked the lists' codes coarsely (here L2's
    // unreranked recall against the exact scan was 0.66)
    const size_t d = 64, nb = 3000, nq = 20, k = 10, nprobe = 4;
    std::vector<float> xb = random_gaussian(nb, d, 21);
    std::vector<float> xq = random_gaussian(nq, d, 22);
    for (float& v : xb) {
        v += 30;
    }
    for (float& v : xq) {
        v += 30;
    }
    for (auto metric : {faiss::METRIC_L2, faiss::METRIC_INNER_PRODUCT}) {
        Form f{4, metric, true, false, true};
        SCOPED_TRACE(name(f));
        Pair p = make_pair(d, f, xb);
        auto ex = params(TQ_SCAN_EXACT, nprobe);
        Result want = search(*p.rows, xq, k, &ex);
        auto sp = params(TQ_SCAN_INT8, nprobe, 0.5); // table scores
        Result own = search(*p.fs, xq, k, &sp);
        p.fs->search_defaults.rerank_factor = 0.5;
        Result scanner = preassigned_by_faiss(*p.fs, xq, k, nprobe);
        // as well as the row lists' int8 scan, which quantizes each list's
        // query (L2 0.98; inner products 0.87, as unreranked IP ranks)
        Result rows = search(*p.rows, xq, k, &sp);
        double base = recall_at(rows.I, want.I, nq, k, k, k);
        for (const Result* r : {&own, &scanner}) {
            EXPECT_GE(recall_at(r->I, want.I, nq, k, k, k), base - 0.03);
        }
    }
}

TEST(IVFFastScan, StaleListsScoreWithTablesOfTheirOwn) {
    // a scan that did not go through search_preassigned's refresh (FAISS's
    // own loop called directly) meets lists changed since: they are scored
    // with tables of the list's query, not the query's tables + cdot
    const size_t d = 40, nb = 1200, nq = 15, k = 10, nprobe = 4;
    std::vector<float> xb = random_gaussian(nb, d, 13);
    std::vector<float> xq = random_gaussian(nq, d, 14);
    for (auto m : {faiss::METRIC_L2, faiss::METRIC_INNER_PRODUCT}) {
        SCOPED_TRACE(m);
        Pair p = make_pair(d, {4, m, true, false, true}, xb);
        auto ex = params(TQ_SCAN_EXACT, nprobe);
        auto sp8 = params(TQ_SCAN_INT8, nprobe);
        Result fresh = search(*p.fs, xq, k, &sp8); // refreshes every list
        p.fs->add(1, xb.data());                   // list of xb[0] is stale
        p.rows->add(1, xb.data());
        Result r = preassigned_by_faiss(*p.fs, xq, k, nprobe);
        Result all = search(*p.rows, xq, nb + 1, &ex);
        Result want = search(*p.rows, xq, k, &ex);
        for (size_t q = 0; q < nq; q++) {
            std::map<idx_t, float> exact;
            for (size_t j = 0; j <= nb && all.I[q * (nb + 1) + j] >= 0; j++) {
                exact[all.I[q * (nb + 1) + j]] = all.D[q * (nb + 1) + j];
            }
            for (size_t j = 0; j < k; j++) {
                ASSERT_EQ(r.D[q * k + j], exact.at(r.I[q * k + j]));
            }
        }
        EXPECT_GE(recall_at(r.I, want.I, nq, k, k, k), 0.95);
        EXPECT_GE(recall_at(fresh.I, want.I, nq, k, k, k), 0.95);
        // the next search brings every list's derived terms up to date
        search(*p.fs, xq, k, &sp8);
        const BlockedInvertedLists& bl = p.fs->blocked_lists();
        for (size_t l = 0; l < kNlist; l++) {
            EXPECT_EQ(bl.cdot[l].size(), bl.codes[l].ntotal) << "list " << l;
        }
    }
}

TEST(IVFFastScan, UnrerankedScoresEqualFlatFastScan) {
    // without residuals or a mean, a list's query is the query itself: its
    // tables, and so the table scores, are the flat fast-scan's
    const size_t d = 64, nb = 1200, nq = 10, k = 15;
    std::vector<float> xb = random_gaussian(nb, d, 3);
    std::vector<float> xq = random_gaussian(nq, d, 4);
    for (float bits : {4.0f, 2.0f, 1.0f}) {
        for (auto m : {faiss::METRIC_L2, faiss::METRIC_INNER_PRODUCT}) {
            SCOPED_TRACE(testing::Message() << bits << " metric " << m);
            Pair p = make_pair(d, {bits, m, false, false, true}, xb);
            IndexTurboQuantFastScan flat(d, bits, m);
            flat.add(nb, xb.data());
            SearchParametersTurboQuant fsp;
            fsp.rerank_factor = 0.5; // table scores returned as they are
            auto sp = params(TQ_SCAN_INT8, kNlist, 0.5);
            Result r1 = search(flat, xq, k, &fsp),
                   r2 = search(*p.fs, xq, k, &sp);
            EXPECT_EQ(r1.I, r2.I);
            EXPECT_EQ(r1.D, r2.D);
        }
    }
}

TEST(IVFFastScan, RemoveReconstructMergeClone) {
    const size_t d = 32, nb = 900, nq = 12, k = 8;
    std::vector<float> xb = random_gaussian(nb, d, 5);
    std::vector<float> xq = random_gaussian(nq, d, 6);
    const Form f{4, faiss::METRIC_L2, true, false, true};
    auto ex = params(TQ_SCAN_EXACT, 6);

    Pair p = make_pair(d, f, xb);
    faiss::IDSelectorRange range(100, 377);
    EXPECT_EQ(p.fs->remove_ids(range), p.rows->remove_ids(range));
    ASSERT_NO_FATAL_FAILURE(expect_same_lists(*p.rows, *p.fs));
    ASSERT_NO_FATAL_FAILURE(expect_zero_padding(p.fs->blocked_lists()));
    Result r1 = search(*p.rows, xq, k, &ex), r2 = search(*p.fs, xq, k, &ex);
    EXPECT_EQ(r1.I, r2.I);
    EXPECT_EQ(r1.D, r2.D);

    // ids are no longer 0..ntotal-1: a hash table
    p.rows->set_direct_map_type(faiss::DirectMap::Hashtable);
    p.fs->set_direct_map_type(faiss::DirectMap::Hashtable);
    std::vector<float> v1(d), v2(d);
    for (idx_t key : {0, 99, 377, 899}) { // not removed
        p.rows->reconstruct(key, v1.data());
        p.fs->reconstruct(key, v2.data());
        EXPECT_EQ(v1, v2) << key;
    }
    EXPECT_THROW(p.fs->reconstruct(200, v2.data()), faiss::FaissException);
    p.rows->set_direct_map_type(faiss::DirectMap::NoMap);
    p.fs->set_direct_map_type(faiss::DirectMap::NoMap);

    // clone: the same results, then independent
    std::unique_ptr<IndexIVFTurboQuantFastScan> c(p.fs->clone());
    Result r3 = search(*c, xq, k, &ex);
    EXPECT_EQ(r2.I, r3.I);
    c->add(10, xb.data());
    EXPECT_EQ(c->ntotal, p.fs->ntotal + 10);

    // merging halves gives the whole, and empties the other (one coarse
    // quantizer: clones of one trained pair)
    Pair whole = make_pair(d, f, xb);
    Pair a, b;
    a.fs.reset(whole.fs->clone());
    b.fs.reset(whole.fs->clone());
    a.rows.reset(whole.rows->clone());
    b.rows.reset(whole.rows->clone());
    for (Pair* h : {&a, &b}) {
        h->fs->reset();
        h->rows->reset();
    }
    a.fs->add(400, xb.data());
    b.fs->add(nb - 400, xb.data() + 400 * d);
    a.rows->add(400, xb.data());
    b.rows->add(nb - 400, xb.data() + 400 * d);
    a.fs->merge_from(*b.fs, 400);
    EXPECT_EQ(b.fs->ntotal, 0);
    EXPECT_EQ(b.fs->blocked_lists().bytes(), 0u);
    a.rows->merge_from(*b.rows, 400);
    ASSERT_NO_FATAL_FAILURE(expect_same_lists(*a.rows, *a.fs));
    ASSERT_NO_FATAL_FAILURE(expect_zero_padding(a.fs->blocked_lists()));
    Result r4 = search(*a.fs, xq, k, &ex), r5 = search(*whole.fs, xq, k, &ex);
    EXPECT_EQ(r4.I, r5.I);
    EXPECT_EQ(r4.D, r5.D);
    EXPECT_THROW(a.fs->merge_from(*a.fs, 0), faiss::FaissException);
    EXPECT_THROW(a.fs->merge_from(*whole.rows, 0), faiss::FaissException);
    EXPECT_THROW(a.rows->merge_from(*whole.fs, 0), faiss::FaissException);
    EXPECT_EQ(whole.rows->ntotal, (idx_t)nb); // a refused merge moves nothing
}

/// blocked lists whose add_entries fails after `left` calls (out of memory)
struct FailingLists : BlockedInvertedLists {
    mutable int left;
    FailingLists(const BlockedInvertedLists& il, int left)
        : BlockedInvertedLists(il), left(left) {}
    size_t add_entries(
            size_t list_no,
            size_t n,
            const idx_t* ids_in,
            const uint8_t* code) override {
        if (left-- == 0) {
            throw std::bad_alloc();
        }
        return BlockedInvertedLists::add_entries(list_no, n, ids_in, code);
    }
};

/// the ids in the lists of an index, sorted; checks ntotal is their count
std::vector<idx_t> list_ids(const faiss::IndexIVF& index) {
    std::vector<idx_t> all;
    for (size_t l = 0; l < index.nlist; l++) {
        faiss::InvertedLists::ScopedIds ids(index.invlists, l);
        all.insert(
                all.end(), ids.get(), ids.get() + index.invlists->list_size(l));
    }
    EXPECT_EQ((idx_t)all.size(), index.ntotal);
    std::sort(all.begin(), all.end());
    return all;
}

TEST(IVFFastScan, MergeFailingPartWayLosesNothing) {
    const size_t d = 32, nb = 600;
    std::vector<float> xb = random_gaussian(nb, d, 5);
    Pair whole = make_pair(d, {4, faiss::METRIC_L2, true, false, true}, xb);
    std::unique_ptr<IndexIVFTurboQuantFastScan> a(whole.fs->clone());
    std::unique_ptr<IndexIVFTurboQuantFastScan> b(whole.fs->clone());
    a->reset();
    b->reset();
    a->add(200, xb.data());
    b->add(nb - 200, xb.data() + 200 * d);
    // the third non-empty list of b fails to join a's lists
    a->replace_invlists(new FailingLists(a->blocked_lists(), 2), true);
    EXPECT_THROW(a->merge_from(*b, 200), std::bad_alloc);
    std::vector<idx_t> ia = list_ids(*a), ib = list_ids(*b);
    EXPECT_GT(ia.size(), 200u); // two lists moved
    EXPECT_LT(ia.size(), nb);
    for (idx_t& id : ib) {
        id += 200;
    }
    ia.insert(ia.end(), ib.begin(), ib.end());
    std::sort(ia.begin(), ia.end());
    for (size_t i = 0; i < nb; i++) {
        ASSERT_EQ(ia[i], (idx_t)i); // each vector once, in a or in b
    }
}

TEST(IVFFastScan, RangeSearchSelectorThreads) {
    const size_t d = 40, nb = 1000, nq = 8, k = 10;
    std::vector<float> xb = random_gaussian(nb, d, 7);
    std::vector<float> xq = random_gaussian(nq, d, 8);
    Pair p = make_pair(d, {2, faiss::METRIC_L2, true, false, true}, xb);
    p.rows->nprobe = p.fs->nprobe = 4;

    // range search scores exactly: the row lists' results
    faiss::RangeSearchResult a(nq), b(nq);
    p.rows->range_search(nq, xq.data(), 60.0f, &a);
    p.fs->range_search(nq, xq.data(), 60.0f, &b);
    ASSERT_EQ(
            std::vector<size_t>(a.lims, a.lims + nq + 1),
            std::vector<size_t>(b.lims, b.lims + nq + 1));
    ASSERT_GT(a.lims[nq], 0u);
    for (size_t i = 0; i < a.lims[nq]; i++) {
        EXPECT_EQ(a.labels[i], b.labels[i]);
        EXPECT_EQ(a.distances[i], b.distances[i]);
    }

    // a selector; thread counts and parallel modes agree
    faiss::IDSelectorRange odd_half(nb / 2, nb);
    auto sp = params(TQ_SCAN_INT8, 4);
    sp.sel = &odd_half;
    omp_set_num_threads(1);
    Result r1 = search(*p.fs, xq, k, &sp);
    omp_set_num_threads(2);
    Result r2 = search(*p.fs, xq, k, &sp);
    p.fs->parallel_mode = 3;
    Result r3 = search(*p.fs, xq, k, &sp);
    p.fs->parallel_mode = 0;
    EXPECT_EQ(r1.I, r2.I);
    EXPECT_EQ(r1.D, r2.D);
    EXPECT_EQ(r1.I, r3.I);
    for (idx_t id : r1.I) {
        EXPECT_TRUE(id == -1 || id >= (idx_t)(nb / 2)) << id;
    }
}

TEST(IVFFastScan, FilesAndFactory) {
    const size_t d = 40, nb = 600, nq = 6, k = 7;
    std::vector<float> xb = random_gaussian(nb, d, 9);
    std::vector<float> xq = random_gaussian(nq, d, 10);
    for (const char* desc :
         {"IVF16,TQmse4fs",
          "IVF16,TQmse2cfs",
          "IVF16,TQmse2c", // row lists (centered: no mean with residuals)
          "IVF16,TQmse1.5fs",
          "PCA32,IVF8,TQmse4fs",
          "IDMap2,IVF8,TQmse1fs"}) {
        for (auto metric : {faiss::METRIC_L2, faiss::METRIC_INNER_PRODUCT}) {
            SCOPED_TRACE(testing::Message() << desc << " metric " << metric);
            std::unique_ptr<faiss::Index> idx(
                    faiss_turbo::index_factory(d, desc, metric));
            EXPECT_EQ(reverse_index_factory(idx.get()), desc);
            idx->train(nb, xb.data());
            std::vector<idx_t> ids(nb);
            for (size_t i = 0; i < nb; i++) {
                ids[i] = 7 * i + 3;
            }
            idx->add_with_ids(nb, xb.data(), ids.data());
            std::vector<uint8_t> bytes = serialize_index(idx.get());
            std::unique_ptr<faiss::Index> back(deserialize_index(bytes));
            EXPECT_EQ(serialize_index(back.get()), bytes); // bit for bit
            Result r1 = search(*idx, xq, k), r2 = search(*back, xq, k);
            EXPECT_EQ(r1.I, r2.I);
            EXPECT_EQ(r1.D, r2.D);
            for (size_t pos :
                 {size_t(20), bytes.size() / 2, bytes.size() - 9}) {
                std::vector<uint8_t> bad = bytes;
                bad[pos] ^= 0x40;
                EXPECT_THROW(deserialize_index(bad), faiss::FaissException);
            }
        }
    }
    // the row index of the same codes reads back as rows, and the reverse
    Pair p = make_pair(d, {4, faiss::METRIC_L2, true, false, true}, xb);
    std::unique_ptr<faiss::Index> fs(
            deserialize_index(serialize_index(p.fs.get())));
    auto* fsb = dynamic_cast<IndexIVFTurboQuantFastScan*>(fs.get());
    ASSERT_TRUE(fsb);
    ASSERT_NO_FATAL_FAILURE(expect_same_lists(*p.rows, *fsb));
    for (const char* bad :
         {"IVF8,TQprod3fs", "IVF8,TQ3fs", "IVF8,TQ2.5fs", "IVF8,TQ8fs"}) {
        EXPECT_THROW(
                delete faiss_turbo::index_factory(d, bad),
                faiss::FaissException)
                << bad;
    }
}

TEST(IVFFastScan, BlockedListsRowRoundTrips) {
    const size_t d = 50, n = 100;
    TurboQuantizer tq(d, TQVariant::MSE, 4, true);
    std::vector<float> x = random_gaussian(n, d, 11);
    std::vector<uint8_t> rows(n * tq.code_size);
    tq.encode(n, x.data(), rows.data());
    std::vector<idx_t> ids(n);
    for (size_t i = 0; i < n; i++) {
        ids[i] = 1000 + i;
    }
    BlockedInvertedLists il(3, tq);
    // in pieces that cross block boundaries
    EXPECT_EQ(il.add_entries(1, 5, ids.data(), rows.data()), 0u);
    EXPECT_EQ(
            il.add_entries(
                    1, 40, ids.data() + 5, rows.data() + 5 * tq.code_size),
            5u);
    il.add_entry(1, ids[45], rows.data() + 45 * tq.code_size);
    il.add_entries(1, n - 46, ids.data() + 46, rows.data() + 46 * tq.code_size);
    ASSERT_EQ(il.list_size(1), n);
    std::vector<uint8_t> back(n * tq.code_size);
    il.get_rows(1, back.data());
    EXPECT_EQ(back, rows);
    for (size_t i : {0, 31, 32, 63, 99}) {
        faiss::InvertedLists::ScopedCodes c(&il, 1, i);
        EXPECT_EQ(
                0,
                memcmp(c.get(), rows.data() + i * tq.code_size, tq.code_size));
        EXPECT_EQ(il.get_single_id(1, i), ids[i]);
    }
    // update: codes 30..34 take codes 0..4
    il.update_entries(1, 30, 5, ids.data(), rows.data());
    il.get_rows(1, back.data());
    EXPECT_EQ(
            0,
            memcmp(back.data() + 30 * tq.code_size,
                   rows.data(),
                   5 * tq.code_size));
    EXPECT_EQ(il.get_single_id(1, 32), ids[2]);
    // shrink: the cut codes become zero padding
    il.resize(1, 33);
    ASSERT_NO_FATAL_FAILURE(expect_zero_padding(il));
    EXPECT_EQ(il.codes[1].blocks.size(), 2 * il.codes[1].block_bytes());
    ListRows lr(il, 1);
    EXPECT_EQ(0, memcmp(lr.get(), back.data(), 33 * tq.code_size));
    EXPECT_THROW(
            il.add_entries(3, 1, ids.data(), rows.data()),
            faiss::FaissException);
    EXPECT_THROW(
            il.update_entries(1, 30, 5, ids.data(), rows.data()),
            faiss::FaissException);
    il.reset();
    EXPECT_EQ(il.list_size(1), 0u);
    EXPECT_EQ(il.bytes(), 0u);
}

TEST(IVFFastScan, BadInput) {
    const size_t d = 16;
    faiss::IndexFlatL2 coarse(d);
    for (float bits : {3.0f, 2.5f, 3.5f, 8.0f}) {
        EXPECT_THROW(
                IndexIVFTurboQuantFastScan(&coarse, d, 4, bits),
                faiss::FaissException)
                << bits;
    }
    std::vector<float> xb = random_gaussian(200, d, 12);
    Pair p = make_pair(d, {2, faiss::METRIC_L2, true, false, true}, xb);
    std::vector<float> xq(d, NAN);
    EXPECT_THROW(search(*p.fs, xq, 3), faiss::FaissException);
    // nprobe past nlist is clamped, as FAISS does; a list number past
    // nlist is refused
    std::vector<float> ok1 = random_gaussian(2, d, 17);
    auto all16 = params(TQ_SCAN_INT8, kNlist), many = params(TQ_SCAN_INT8, 99);
    Result r1 = search(*p.fs, ok1, 5, &all16),
           r2 = search(*p.fs, ok1, 5, &many);
    EXPECT_EQ(r1.I, r2.I);
    EXPECT_EQ(r1.D, r2.D);
    std::vector<idx_t> assign = {0, (idx_t)kNlist};
    std::vector<float> dis(2), D(5);
    std::vector<idx_t> I(5);
    auto two = params(TQ_SCAN_INT8, 2);
    EXPECT_THROW(
            p.fs->search_preassigned(
                    1,
                    ok1.data(),
                    5,
                    assign.data(),
                    dis.data(),
                    D.data(),
                    I.data(),
                    false,
                    &two),
            faiss::FaissException);
    // lists of another codec (same code size: 8 + 4 bytes, not 4 + 8) are
    // refused before the scan
    TurboQuantizer other(d, TQVariant::MSE, 4, false);
    ASSERT_EQ(other.code_size, p.fs->code_size);
    p.fs->replace_invlists(new BlockedInvertedLists(kNlist, other), true);
    std::vector<float> ok(d, 0.5f);
    EXPECT_THROW(search(*p.fs, ok, 3), faiss::FaissException);
    // and the same bytes and slots, other floats (norm, moff vs norm, beta)
    TurboQuantizer other2(d, TQVariant::MSE, 2, false);
    other2.ip_offset = true;
    other2.set_layout();
    ASSERT_EQ(other2.code_size, p.fs->code_size);
    ASSERT_EQ(other2.mse_bytes, p.fs->tq.mse_bytes);
    p.fs->replace_invlists(new BlockedInvertedLists(kNlist, other2), true);
    EXPECT_THROW(search(*p.fs, ok, 3), faiss::FaissException);
}

TEST(IVFFastScan, MaxCodesUpdateVectorsAndVirtualClone) {
    const size_t d = 32, nb = 4000, nq = 30, k = 10, nprobe = 8;
    std::vector<float> xb = random_gaussian(nb, d, 18);
    std::vector<float> xq = random_gaussian(nq, d, 19);
    Pair p = make_pair(d, {4, faiss::METRIC_L2, true, false, true}, xb);

    // max_codes bounds each query's scan: a batch answers as one query at
    // a time, and every query scans more than one list
    p.fs->max_codes = 600;
    auto sp = params(TQ_SCAN_INT8, nprobe);
    sp.max_codes = 600;
    faiss::indexIVF_stats.reset();
    Result batch = search(*p.fs, xq, k, &sp);
    EXPECT_GT(faiss::indexIVF_stats.nlist, 2 * nq);
    for (size_t q = 0; q < nq; q++) {
        std::vector<float> one(xq.begin() + q * d, xq.begin() + (q + 1) * d);
        Result r = search(*p.fs, one, k, &sp);
        ASSERT_TRUE(std::equal(r.I.begin(), r.I.end(), batch.I.begin() + q * k))
                << "query " << q;
    }

    // update_vectors with an Array direct map: the row index's lists
    p.rows->set_direct_map_type(faiss::DirectMap::Array);
    p.fs->set_direct_map_type(faiss::DirectMap::Array);
    std::vector<idx_t> upd = {5, 17, 3999, 1200};
    std::vector<float> nv = random_gaussian(upd.size(), d, 20);
    p.rows->update_vectors(upd.size(), upd.data(), nv.data());
    p.fs->update_vectors(upd.size(), upd.data(), nv.data());
    ASSERT_NO_FATAL_FAILURE(expect_same_lists(*p.rows, *p.fs));
    ASSERT_NO_FATAL_FAILURE(expect_zero_padding(p.fs->blocked_lists()));
    std::vector<float> v1(d), v2(d);
    for (idx_t key : upd) {
        p.rows->reconstruct(key, v1.data());
        p.fs->reconstruct(key, v2.data());
        EXPECT_EQ(v1, v2);
    }

    // cloned through the base class: still the fast-scan index
    const IndexIVFTurboQuant* base = p.fs.get();
    std::unique_ptr<IndexIVFTurboQuant> c(base->clone());
    EXPECT_TRUE(dynamic_cast<IndexIVFTurboQuantFastScan*>(c.get()));
}
