/**
 * faiss_turbo::index_factory: our tokens in every position FAISS accepts an
 * encoding, the structure built, a full train / add / search cycle, clear
 * errors for bad strings, reverse_index_factory round trips.
 */
#include <gtest/gtest.h>

#include <memory>
#include <string>

#include <faiss/IndexFlat.h>
#include <faiss/IndexHNSW.h>
#include <faiss/IndexIDMap.h>
#include <faiss/IndexIVFFlat.h>
#include <faiss/IndexLSH.h>
#include <faiss/IndexPreTransform.h>
#include <faiss/IndexRefine.h>
#include <faiss/IndexScalarQuantizer.h>
#include <faiss/VectorTransform.h>
#include <faiss/impl/AuxIndexStructures.h>
#include <faiss/impl/FaissException.h>

#include <faiss_turbo/IndexHNSWTurboQuant.h>
#include <faiss_turbo/IndexIVFTurboQuant.h>
#include <faiss_turbo/IndexTurboQuant.h>
#include <faiss_turbo/index_factory.h>

#include "test_util.h"

using namespace faiss_turbo;
using tqtest::idx_t;

namespace {

const int kDim = 128;

std::unique_ptr<faiss::Index>
build(const char* s, faiss::MetricType m = faiss::METRIC_L2) {
    return std::unique_ptr<faiss::Index>(index_factory(kDim, s, m));
}

/// the codec of the first of our indexes found under the wrappers
const TurboQuantizer* codec_of(const faiss::Index* index) {
    if (auto t = dynamic_cast<const IndexTurboQuant*>(index)) {
        return &t->tq;
    }
    if (auto iv = dynamic_cast<const IndexIVFTurboQuant*>(index)) {
        return &iv->tq;
    }
    if (auto pt = dynamic_cast<const faiss::IndexPreTransform*>(index)) {
        return codec_of(pt->index);
    }
    if (auto im = dynamic_cast<const faiss::IndexIDMap*>(index)) {
        return codec_of(im->index);
    }
    if (auto h = dynamic_cast<const faiss::IndexHNSW*>(index)) {
        return codec_of(h->storage);
    }
    if (auto rf = dynamic_cast<const faiss::IndexRefine*>(index)) {
        const TurboQuantizer* tq = codec_of(rf->base_index);
        return tq ? tq : codec_of(rf->refine_index);
    }
    return nullptr;
}

std::string error_of(const char* s) {
    try {
        build(s);
    } catch (const faiss::FaissException& e) {
        return e.what();
    }
    return "";
}

} // namespace

struct FactoryCase {
    const char* description;
    float bits;
    TQVariant variant;
    size_t nb = 2000; ///< database size (HNSW: smaller, see below)
};

namespace {

/// FAISS's OPQ training (50 rounds of PQ training, the first of 40
/// k-means iterations) would dominate the test
void shorten_opq_training(faiss::Index* index) {
    if (auto pt = dynamic_cast<faiss::IndexPreTransform*>(index)) {
        for (faiss::VectorTransform* vt : pt->chain) {
            if (auto opq = dynamic_cast<faiss::OPQMatrix*>(vt)) {
                opq->niter = 4;
                opq->niter_pq_0 = 4;
            }
        }
    }
}

} // namespace

class FactoryStrings : public ::testing::TestWithParam<FactoryCase> {};

// Build, train, add with ids, search: every database vector used as a query
// finds itself among its 10 nearest (its own estimate is the quantization
// error, far below the distances between random points in 128 dimensions).
TEST_P(FactoryStrings, TrainAddSearch) {
    const FactoryCase& fc = GetParam();
    const size_t nb = fc.nb, nq = 100, k = 10;
    auto xb = tqtest::random_gaussian(nb, kDim, 21);
    auto index = build(fc.description);
    shorten_opq_training(index.get());
    const TurboQuantizer* tq = codec_of(index.get());
    ASSERT_TRUE(tq) << "no TurboQuant codec in " << fc.description;
    EXPECT_EQ(fc.bits, tq->bits);
    EXPECT_EQ(fc.variant, tq->variant);
    index->train(nb, xb.data());
    ASSERT_TRUE(index->is_trained);
    bool idmap = dynamic_cast<faiss::IndexIDMap*>(index.get()) != nullptr;
    std::vector<idx_t> ids(nb);
    for (size_t i = 0; i < nb; i++) {
        ids[i] = idmap ? 1000000 + 7 * i : i;
    }
    if (idmap) {
        index->add_with_ids(nb, xb.data(), ids.data());
    } else {
        index->add(nb, xb.data());
    }
    EXPECT_EQ((idx_t)nb, index->ntotal);
    std::vector<float> D(nq * k);
    std::vector<idx_t> I(nq * k);
    index->search(nq, xb.data(), k, D.data(), I.data());
    size_t found = 0;
    for (size_t i = 0; i < nq; i++) {
        for (size_t j = 0; j < k; j++) {
            found += I[i * k + j] == ids[i];
        }
    }
    EXPECT_GE(found, nq * 9 / 10) << fc.description;
}

INSTANTIATE_TEST_SUITE_P(
        Factory,
        FactoryStrings,
        ::testing::Values(
                FactoryCase{"IVF64,TQmse4", 4, TQVariant::MSE},
                FactoryCase{"IVF64_HNSW32,TQprod3", 3, TQVariant::PROD},
                FactoryCase{"IDMap,TQmse4", 4, TQVariant::MSE},
                FactoryCase{"IDMap2,IVF256,TQ2.5", 2.5, TQVariant::MSE},
                FactoryCase{"PCA64,TQmse4c", 4, TQVariant::MSE},
                FactoryCase{"OPQ16_64,IVF256,TQmse4", 4, TQVariant::MSE},
                FactoryCase{"L2norm,TQ4", 4, TQVariant::MSE},
                FactoryCase{"TQmse2c,RFlat", 2, TQVariant::MSE},
                FactoryCase{"IVF1024,TQmse2,Refine(SQ8)", 2, TQVariant::MSE},
                // HNSW builds its graph with IndexTurboQuant's symmetric
                // distances, which decode both vectors: slow, so few vectors
                FactoryCase{"HNSW32,TQmse4", 4, TQVariant::MSE, 300},
                FactoryCase{"IVF64,SQ8,Refine(TQprod4)", 4, TQVariant::PROD}),
        [](const ::testing::TestParamInfo<FactoryCase>& info) {
            std::string s = info.param.description;
            for (char& c : s) {
                c = isalnum((unsigned char)c) ? c : '_';
            }
            return s;
        });

TEST(Factory, Structure) {
    {
        auto ix = build("IVF64_HNSW32,TQprod3", faiss::METRIC_INNER_PRODUCT);
        auto iv = dynamic_cast<IndexIVFTurboQuant*>(ix.get());
        ASSERT_TRUE(iv);
        EXPECT_EQ(64u, iv->nlist);
        EXPECT_EQ(faiss::METRIC_INNER_PRODUCT, iv->metric_type);
        EXPECT_TRUE(iv->own_fields);
        EXPECT_TRUE(dynamic_cast<faiss::IndexHNSW*>(iv->quantizer));
        EXPECT_EQ(2, iv->quantizer_trains_alone);
        EXPECT_EQ(kIVFTurboQuantByResidual, (bool)iv->by_residual);
        EXPECT_FALSE(iv->is_trained);
    }
    {
        auto ix = build("PCA64,TQmse4c");
        auto pt = dynamic_cast<faiss::IndexPreTransform*>(ix.get());
        ASSERT_TRUE(pt);
        auto t = dynamic_cast<IndexTurboQuant*>(pt->index);
        ASSERT_TRUE(t);
        EXPECT_EQ(64, t->d);
        EXPECT_TRUE(t->centered);
        EXPECT_FALSE(pt->is_trained);
    }
    {
        // an already trained encoding: FAISS's wrappers must say so
        auto ix = build("L2norm,TQ4");
        EXPECT_TRUE(ix->is_trained);
        auto rf = build("TQmse2c,RFlat");
        EXPECT_FALSE(rf->is_trained); // the centered base needs a mean
    }
    {
        auto ix = build("HNSW32,TQmse4");
        auto h = dynamic_cast<IndexHNSWTurboQuant*>(ix.get());
        ASSERT_TRUE(h);
        EXPECT_TRUE(dynamic_cast<IndexTurboQuant*>(h->storage));
        EXPECT_EQ(32, h->hnsw.nb_neighbors(1));
    }
    {
        // FAISS's own strings are untouched, "ITQ" included
        auto ix = build("IVF64,Flat");
        EXPECT_TRUE(dynamic_cast<faiss::IndexIVFFlat*>(ix.get()));
        auto itq = build("ITQ64,LSH");
        EXPECT_TRUE(dynamic_cast<faiss::IndexPreTransform*>(itq.get()));
    }
    {
        // our token next to a genuine Flat: only ours is replaced
        auto ix = build("IVF64,TQ4,Refine(Flat)");
        auto rf = dynamic_cast<faiss::IndexRefine*>(ix.get());
        ASSERT_TRUE(rf);
        EXPECT_TRUE(dynamic_cast<IndexIVFTurboQuant*>(rf->base_index));
        EXPECT_TRUE(dynamic_cast<faiss::IndexFlat*>(rf->refine_index));
    }
}

/// FAISS's HNSW search sets each query on the storage's distance computer
/// inside its threads: a query ours refuses there ended the process. The
/// factory's class checks the batch first
TEST(Factory, HNSWRefusesBadQueriesBeforeTheGraphSearch) {
    const size_t d = 16, nb = 300;
    for (faiss::MetricType m :
         {faiss::METRIC_L2, faiss::METRIC_INNER_PRODUCT}) {
        std::unique_ptr<faiss::Index> ix(
                faiss_turbo::index_factory(d, "HNSW8,TQmse4", m));
        std::vector<float> xb = tqtest::random_gaussian(nb, d, 5);
        ix->add(nb, xb.data());
        std::vector<float> D(3 * 4);
        std::vector<idx_t> I(3 * 4);
        ix->search(3, xb.data(), 4, D.data(), I.data());
        if (m == faiss::METRIC_L2) {
            EXPECT_EQ(I[0], 0); // a stored vector finds itself
        }
        for (float bad : {NAN, INFINITY}) {
            std::vector<float> q(xb.begin(), xb.begin() + 3 * d);
            q[d + 5] = bad;
            tqtest::throws_with(
                    [&] { ix->search(3, q.data(), 4, D.data(), I.data()); },
                    "query 1 has a NaN or Inf");
            faiss::RangeSearchResult res(3);
            tqtest::throws_with(
                    [&] { ix->range_search(3, q.data(), 1.0f, &res); },
                    "query 1 has a NaN or Inf");
        }
        { // FAISS's level-0 search, hidden by the class's checked one
            auto h = dynamic_cast<const IndexHNSWTurboQuant*>(ix.get());
            ASSERT_TRUE(h);
            std::vector<float> q(xb.begin(), xb.begin() + 3 * d);
            q[2 * d] = NAN;
            std::vector<faiss::HNSW::storage_idx_t> entry(3, 0);
            std::vector<float> entry_d(3, 0);
            tqtest::throws_with(
                    [&] {
                        h->search_level_0(
                                3,
                                q.data(),
                                4,
                                entry.data(),
                                entry_d.data(),
                                D.data(),
                                I.data());
                    },
                    "query 2 has a NaN or Inf");
        }
        // a batch past the check's block of 256, the long query last
        std::vector<float> big(300 * d);
        std::copy(xb.begin(), xb.begin() + 300 * d, big.begin());
        std::fill(big.begin() + 299 * d, big.end(), 1e20f);
        std::vector<float> D300(300 * 4);
        std::vector<idx_t> I300(300 * 4);
        // its squared norm overflows float: L2 distances are all +inf,
        // inner products overflow to NaN
        tqtest::throws_with(
                [&] {
                    ix->search(300, big.data(), 4, D300.data(), I300.data());
                },
                m == faiss::METRIC_L2 ? "query 299 is too long for L2 distances"
                                      : "query 299 is too long for inner "
                                        "products");
    }
}

TEST(Factory, BadStringsNameTheToken) {
    const char* cases[][2] = {
            {"TQmse9", "TQmse9"},
            {"TQmse2.55", "TQmse2.55"},
            {"IVF,TQ4", "IVF"},
            {"TQfoo4", "TQfoo4"},
            {"IVF64,TQ0", "TQ0"},
            {"PCA64,TQprod12", "TQprod12"},
            {"IVF64(TQ4),Flat", "TQ4"},
            {"IVF64,TQ4,Flat", "TQ4,Flat"},
    };
    for (auto& c : cases) {
        std::string msg = error_of(c[0]);
        EXPECT_NE("", msg) << c[0] << " did not throw";
        EXPECT_NE(std::string::npos, msg.find(std::string("\"") + c[1] + "\""))
                << c[0] << ": " << msg;
    }
    EXPECT_THROW(index_factory(0, "TQ4"), faiss::FaissException);
    EXPECT_THROW(index_factory(kDim, nullptr), faiss::FaissException);
}

TEST(Factory, ReverseRoundTrip) {
    const char* cases[][2] = {
            {"IVF64,TQmse4", "IVF64,TQmse4"},
            {"IVF64_HNSW32,TQprod3", "IVF64_HNSW32,TQprod3"},
            {"IDMap,TQmse4", "IDMap,TQmse4"},
            {"IDMap2,IVF256,TQ2.5", "IDMap2,IVF256,TQmse2.5"},
            {"PCA64,TQmse4c", "PCA64,TQmse4c"},
            {"OPQ16_64,IVF256,TQmse4", "OPQ16_64,IVF256,TQmse4"},
            {"L2norm,TQ4", "L2norm,TQmse4"},
            {"TQmse2c,RFlat", "TQmse2c,RFlat"},
            {"IVF1024,TQmse2,Refine(SQ8)", "IVF1024,TQmse2,Refine(SQ8)"},
            {"HNSW32,TQmse4", "HNSW32,TQmse4"},
            {"RR128,TQprod7.5c", "RR128,TQprod7.5c"},
    };
    for (auto& c : cases) {
        auto ix = build(c[0]);
        std::string rev = reverse_index_factory(ix.get());
        EXPECT_EQ(c[1], rev);
        auto again = build(rev.c_str());
        EXPECT_EQ(rev, reverse_index_factory(again.get()));
    }
    faiss::IndexLSH lsh(kDim, 16);
    EXPECT_THROW(reverse_index_factory(&lsh), faiss::FaissException);
    EXPECT_THROW(reverse_index_factory(nullptr), faiss::FaissException);
}
