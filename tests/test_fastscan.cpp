/**
 * The fast-scan layout: block packing, the table kernels against their
 * definition, the table quantization bound, and IndexTurboQuantFastScan
 * against IndexTurboQuant (same codes, same exact scores).
 */
#include <gtest/gtest.h>

#include <omp.h>

#include <cmath>
#include <cstring>
#include <memory>
#include <random>
#include <vector>

#include <faiss/impl/AuxIndexStructures.h>
#include <faiss/impl/FaissException.h>
#include <faiss/impl/IDSelector.h>

#include <faiss_turbo/IndexTurboQuant.h>
#include <faiss_turbo/IndexTurboQuantFastScan.h>
#include <faiss_turbo/impl/blocked_codes.h>
#include <faiss_turbo/impl/scan_int8.h>
#include <faiss_turbo/impl/scan_lut.h>
#include <faiss_turbo/impl/simd/lut_kernels.h>
#include <faiss_turbo/index_factory.h>
#include <faiss_turbo/index_io.h>

#include "test_util.h"

using namespace faiss_turbo;
using namespace tqtest;

namespace {

std::vector<uint8_t> random_bytes(size_t n, uint64_t seed) {
    std::mt19937_64 rng(seed);
    std::vector<uint8_t> v(n);
    for (auto& b : v) {
        b = (uint8_t)rng();
    }
    return v;
}

std::vector<const LutKernels*> all_lut_kernels() {
    std::vector<const LutKernels*> ks = {&lut_kernels_scalar()};
    if (lut_kernels_avx2()) {
        ks.push_back(lut_kernels_avx2());
    }
    if (lut_kernels_avx512()) {
        ks.push_back(lut_kernels_avx512());
    }
    return ks;
}

/// nibble s of a row code's MSE bytes
int slot_of(const uint8_t* mse, size_t s) {
    return (mse[s / 2] >> (4 * (s % 2))) & 15;
}

/// a codec and n row codes of random vectors
struct Coded {
    TurboQuantizer tq;
    std::vector<uint8_t> rows;

    Coded(size_t d, float bits, bool debiased, size_t n, uint64_t seed)
        : tq(d, TQVariant::MSE, bits, debiased) {
        std::vector<float> x = random_gaussian(n, d, seed);
        rows.resize(n * tq.code_size);
        tq.encode(n, x.data(), rows.data());
    }
};

} // namespace

TEST(FastScanLayout, PackUnpackRoundTripAndCompact) {
    for (float bits : {4.0f, 2.0f, 1.0f, 1.5f}) {
        const size_t n = 77; // three blocks, the last one partial
        Coded c(100, bits, false, n, 7);
        BlockedCodes bc;
        bc.set_codec(c.tq);
        bc.append(c.tq, 40, c.rows.data());
        bc.append(c.tq, n - 40, c.rows.data() + 40 * c.tq.code_size);
        ASSERT_EQ(bc.ntotal, n);
        ASSERT_EQ(bc.blocks.size(), 3 * bc.block_bytes());
        std::vector<uint8_t> row(c.tq.code_size);
        for (size_t i = 0; i < n; i++) {
            bc.code(c.tq, i, row.data());
            ASSERT_EQ(
                    0,
                    memcmp(row.data(),
                           &c.rows[i * c.tq.code_size],
                           c.tq.code_size))
                    << "bits " << bits << " code " << i;
        }
        std::vector<bool> keep(n);
        std::vector<size_t> kept;
        for (size_t i = 0; i < n; i++) {
            keep[i] = (i * 7) % 3 != 0;
            if (keep[i]) {
                kept.push_back(i);
            }
        }
        EXPECT_EQ(bc.compact(keep), n - kept.size());
        ASSERT_EQ(bc.ntotal, kept.size());
        for (size_t j = 0; j < kept.size(); j++) {
            bc.code(c.tq, j, row.data());
            ASSERT_EQ(
                    0,
                    memcmp(row.data(),
                           &c.rows[kept[j] * c.tq.code_size],
                           c.tq.code_size));
        }
        // padding codes of the last block are zero again
        std::vector<uint8_t> mse(bc.ngroups);
        for (size_t i = bc.ntotal; i < bc.nblocks() * kLutBlockCodes; i++) {
            unpack_block_code(bc.blocks.data(), bc.ngroups, i, mse.data());
            for (uint8_t b : mse) {
                ASSERT_EQ(b, 0);
            }
        }
    }
}

TEST(FastScanKernels, EqualTheirDefinition) {
    // ngroups 300 and 600 cross the 16-bit flush of the AVX2 kernel, 1100
    // and 1101 that of the AVX-512 one (512 groups); 16, 17 and 35 whole
    // and partial 16-group steps of unpack_code; odd counts leave the
    // AVX-512 kernel half a step
    for (size_t ngroups : {1, 3, 16, 17, 35, 64, 300, 600, 1100, 1101}) {
        const size_t nblocks = 3, bb = ngroups * kLutGroupBytes;
        // row codes, packed by pack_block_code
        std::vector<uint8_t> rows = random_bytes(nblocks * 32 * ngroups, 11);
        std::vector<uint8_t> blocks(nblocks * bb, 0);
        for (size_t i = 0; i < nblocks * 32; i++) {
            pack_block_code(&rows[i * ngroups], ngroups, i, blocks.data());
        }
        // every code of every block back to its row bytes, every kernel
        for (const LutKernels* k : all_lut_kernels()) {
            std::vector<uint8_t> mse(ngroups + 1, 0x5a);
            for (size_t i = 0; i < nblocks * 32; i++) {
                k->unpack_code(
                        blocks.data() + i / 32 * bb,
                        ngroups,
                        i % 32,
                        mse.data());
                ASSERT_EQ(0, memcmp(mse.data(), &rows[i * ngroups], ngroups))
                        << k->name << " ngroups " << ngroups << " code " << i;
                ASSERT_EQ(mse[ngroups], 0x5a) << "wrote past the row";
            }
        }
        for (bool saturated : {false, true}) {
            std::vector<uint8_t> luts = random_bytes(kLutMaxQueries * bb, 5);
            if (saturated) { // the largest sums the 16-bit lanes must carry
                std::fill(luts.begin(), luts.end(), 255);
            }
            for (size_t nq = 1; nq <= kLutMaxQueries; nq++) {
                for (const LutKernels* k : all_lut_kernels()) {
                    std::vector<uint32_t> out(nblocks * nq * 32);
                    k->block_sums(
                            blocks.data(),
                            ngroups,
                            nblocks,
                            luts.data(),
                            nq,
                            out.data());
                    for (size_t b = 0; b < nblocks; b++) {
                        for (size_t q = 0; q < nq; q++) {
                            for (size_t i = 0; i < 32; i++) {
                                const uint8_t* mse =
                                        &rows[(b * 32 + i) * ngroups];
                                uint32_t want = 0;
                                for (size_t s = 0; s < 2 * ngroups; s++) {
                                    want +=
                                            luts[q * bb + 16 * s +
                                                 slot_of(mse, s)];
                                }
                                ASSERT_EQ(out[(b * nq + q) * 32 + i], want)
                                        << k->name << " ngroups " << ngroups
                                        << " nq " << nq << " code " << i;
                            }
                        }
                    }
                }
            }
        }
    }
}

TEST(FastScanTables, QuantizedDotWithinBound) {
    for (float bits : {4.0f, 2.0f, 1.0f, 1.5f}) {
        const size_t d = 90, n = 50;
        Coded c(d, bits, false, n, 3);
        std::vector<float> y = random_gaussian(1, d, 4);
        const size_t nslots = 2 * c.tq.mse_bytes;
        std::vector<float> tables(16 * nslots);
        lut_float_tables(c.tq, y.data(), tables.data());
        std::vector<uint8_t> lut(16 * nslots);
        float delta, bias;
        lut_quantize(tables.data(), nslots, lut.data(), delta, bias);
        std::vector<float> chat(2 * d);
        double worst = 0;
        for (size_t i = 0; i < n; i++) {
            const uint8_t* code = &c.rows[i * c.tq.code_size];
            TQCodeScalars s;
            c.tq.decode_rotated(code, chat.data(), nullptr, s);
            double exact = 0;
            uint32_t sum = 0;
            for (size_t j = 0; j < d; j++) {
                exact += (double)y[j] * chat[j];
            }
            for (size_t sl = 0; sl < nslots; sl++) {
                sum += lut[16 * sl + slot_of(code, sl)];
            }
            double err = std::fabs(delta * (double)sum + bias - exact);
            worst = std::max(worst, err / delta);
            ASSERT_LE(err, nslots * delta / 2 + 1e-4)
                    << "bits " << bits << " code " << i;
        }
        // the rounding errors average out: far below the worst case
        EXPECT_LT(worst, nslots / 4.0) << "bits " << bits;
    }
}

namespace {

struct Pair {
    std::unique_ptr<IndexTurboQuant> flat;
    std::unique_ptr<IndexTurboQuantFastScan> fs;
};

Pair make_pair(
        size_t d,
        float bits,
        faiss::MetricType metric,
        bool centered,
        bool debiased,
        const std::vector<float>& xb) {
    Pair p;
    p.flat = std::make_unique<IndexTurboQuant>(
            d, bits, TQVariant::MSE, metric, centered, debiased);
    p.fs = std::make_unique<IndexTurboQuantFastScan>(
            d, bits, metric, centered, debiased);
    size_t n = xb.size() / d;
    p.flat->train(n, xb.data());
    p.fs->train(n, xb.data());
    p.flat->add(n, xb.data());
    p.fs->add(n, xb.data());
    return p;
}

SearchParametersTurboQuant exact_params() {
    SearchParametersTurboQuant sp;
    sp.scan_mode = TQ_SCAN_EXACT;
    return sp;
}

} // namespace

TEST(FastScanIndex, SameCodesAndExactScoresAsFlat) {
    const size_t d = 64, nb = 1000, nq = 30, k = 10;
    std::vector<float> xb = random_gaussian(nb, d, 1);
    std::vector<float> xq = random_gaussian(nq, d, 2);
    for (float bits : {4.0f, 2.0f, 1.0f, 1.5f}) {
        for (auto metric : {faiss::METRIC_L2, faiss::METRIC_INNER_PRODUCT}) {
            for (int form = 0; form < 3; form++) {
                bool centered = form == 2, debiased = form != 1;
                SCOPED_TRACE(
                        testing::Message() << "bits " << bits << " metric "
                                           << metric << " centered " << centered
                                           << " debiased " << debiased);
                Pair p = make_pair(d, bits, metric, centered, debiased, xb);
                ASSERT_EQ(p.fs->sa_code_size(), p.flat->code_size);
                std::vector<uint8_t> rows(nb * p.flat->code_size);
                p.fs->get_codes(0, nb, rows.data());
                ASSERT_EQ(
                        0,
                        memcmp(rows.data(), p.flat->codes.data(), rows.size()));
                std::vector<float> r1(d), r2(d);
                p.flat->reconstruct(nb - 1, r1.data());
                p.fs->reconstruct(nb - 1, r2.data());
                ASSERT_EQ(0, memcmp(r1.data(), r2.data(), d * sizeof(float)));

                // exact mode: the same results as the flat exact scan
                auto sp = exact_params();
                std::vector<float> D1(nq * k), D2(nq * k);
                std::vector<idx_t> L1(nq * k), L2(nq * k);
                p.flat->search(nq, xq.data(), k, D1.data(), L1.data(), &sp);
                p.fs->search(nq, xq.data(), k, D2.data(), L2.data(), &sp);
                ASSERT_EQ(L1, L2);
                ASSERT_EQ(D1, D2);

                // table scan + re-scoring: exact scores, nearly the same
                // neighbours
                std::vector<float> D3(nq * k);
                std::vector<idx_t> L3(nq * k);
                p.fs->search(nq, xq.data(), k, D3.data(), L3.data());
                TQQueries q;
                p.fs->prepare_queries(nq, xq.data(), q);
                std::vector<float> buf(2 * d);
                for (size_t i = 0; i < nq * k; i++) {
                    ASSERT_GE(L3[i], 0);
                    float want = p.flat->tq.score(
                            q,
                            i / k,
                            &p.flat->codes[L3[i] * p.flat->code_size],
                            buf.data());
                    ASSERT_EQ(D3[i], want) << "result " << i;
                }
                EXPECT_GE(recall_at(L3, L1, nq, k, k, k), 0.97);
            }
        }
    }
}

TEST(FastScanIndex, UnrerankedScoresWithinTheTableBound) {
    const size_t d = 128, nb = 500, nq = 5, k = 20;
    std::vector<float> xb = random_unit(nb, d, 8);
    std::vector<float> xq = random_unit(nq, d, 9);
    Pair p = make_pair(d, 4, faiss::METRIC_INNER_PRODUCT, false, true, xb);
    SearchParametersTurboQuant sp;
    sp.rerank_factor = 0;
    std::vector<float> D(nq * k);
    std::vector<idx_t> L(nq * k);
    p.fs->search(nq, xq.data(), k, D.data(), L.data(), &sp);
    TQQueries q;
    p.fs->prepare_queries(nq, xq.data(), q);
    LutQueries lq;
    lq.prepare(p.fs->tq, q);
    std::vector<float> buf(2 * d);
    for (size_t i = 0; i < nq * k; i++) {
        size_t qi = i / k;
        const uint8_t* code = &p.flat->codes[L[i] * p.flat->code_size];
        float exact = p.flat->tq.score(q, qi, code, buf.data());
        TQCodeScalars s;
        p.flat->tq.read_scalars(code, s);
        // IP debiased: score = beta <y, c_hat>
        double bound =
                std::fabs(s.aux) * 2 * p.fs->tq.mse_bytes * lq.delta[qi] / 2 +
                1e-4;
        ASSERT_LE(std::fabs(D[i] - exact), bound) << i;
        if (i % k) {
            ASSERT_GE(D[i - 1], D[i]); // sorted
        }
    }
}

TEST(FastScanIndex, ThreadCountAndSelector) {
    const size_t d = 96, nb = 3000, nq = 7, k = 15;
    std::vector<float> xb = random_gaussian(nb, d, 21);
    std::vector<float> xq = random_gaussian(nq, d, 22);
    Pair p = make_pair(d, 2, faiss::METRIC_L2, true, true, xb);
    std::vector<float> Da(nq * k), Db(nq * k);
    std::vector<idx_t> La(nq * k), Lb(nq * k);
    int nt = omp_get_max_threads();
    omp_set_num_threads(1);
    p.fs->search(nq, xq.data(), k, Da.data(), La.data());
    omp_set_num_threads(std::max(nt, 2));
    p.fs->search(1, xq.data(), k, Db.data(), Lb.data()); // sliced codes
    p.fs->search(nq, xq.data(), k, Db.data(), Lb.data());
    omp_set_num_threads(nt);
    EXPECT_EQ(La, Lb);
    EXPECT_EQ(Da, Db);

    faiss::IDSelectorRange sel(1000, 1500);
    SearchParametersTurboQuant sp;
    sp.sel = &sel;
    auto sx = exact_params();
    sx.sel = &sel;
    std::vector<float> D1(nq * k), D2(nq * k);
    std::vector<idx_t> L1(nq * k), L2(nq * k);
    p.fs->search(nq, xq.data(), k, D1.data(), L1.data(), &sp);
    p.flat->search(nq, xq.data(), k, D2.data(), L2.data(), &sx);
    for (idx_t l : L1) {
        ASSERT_TRUE(l >= 1000 && l < 1500) << l;
    }
    EXPECT_GE(recall_at(L1, L2, nq, k, k, k), 0.95);
    p.fs->search(nq, xq.data(), k, D1.data(), L1.data(), &sx);
    EXPECT_EQ(L1, L2);
}

TEST(FastScanIndex, RangeSearchEqualsFlat) {
    // 300 codes: two whole blocks of 128 scanned, and a partial one
    const size_t d = 48, nb = 300, nq = 9;
    std::vector<float> xb = random_gaussian(nb, d, 31);
    std::vector<float> xq = random_gaussian(nq, d, 32);
    faiss::IDSelectorRange sel(40, 250);
    faiss::SearchParameters with_sel;
    with_sel.sel = &sel;
    for (float bits : {4.0f, 1.5f}) {
        for (auto metric : {faiss::METRIC_L2, faiss::METRIC_INNER_PRODUCT}) {
            SCOPED_TRACE(
                    testing::Message()
                    << "bits " << bits << " metric " << metric);
            Pair p = make_pair(d, bits, metric, true, true, xb);
            // a radius that keeps about a tenth of the codes
            std::vector<float> D(nb);
            std::vector<idx_t> L(nb);
            p.flat->search(1, xq.data(), nb, D.data(), L.data());
            const float radius = D[nb / 10];
            for (auto* sp : {(faiss::SearchParameters*)nullptr, &with_sel}) {
                RangeResult a = range_search(*p.flat, xq, radius, sp);
                RangeResult b = range_search(*p.fs, xq, radius, sp);
                EXPECT_GT(a.lims[nq], nq);
                EXPECT_EQ(a.lims, b.lims);
                EXPECT_EQ(a.I, b.I);
                EXPECT_EQ(a.D, b.D);
                for (idx_t l : b.I) {
                    ASSERT_TRUE(!sp || (l >= 40 && l < 250)) << l;
                }
            }
        }
    }
}

TEST(FastScanIndex, FewerCodesThanK) {
    const size_t d = 32, nb = 5, k = 8;
    std::vector<float> xb = random_gaussian(nb, d, 31);
    Pair p = make_pair(d, 4, faiss::METRIC_L2, false, true, xb);
    std::vector<float> D(k);
    std::vector<idx_t> L(k);
    p.fs->search(1, xb.data(), k, D.data(), L.data());
    EXPECT_EQ(L[0], 0);
    for (size_t j = nb; j < k; j++) {
        EXPECT_EQ(L[j], -1);
        EXPECT_TRUE(std::isinf(D[j]));
    }
}

TEST(FastScanIndex, RemoveMergeAndConvert) {
    const size_t d = 48, nb = 200, nq = 4, k = 5;
    std::vector<float> xb = random_gaussian(nb, d, 41);
    std::vector<float> xq = random_gaussian(nq, d, 42);
    Pair p = make_pair(d, 4, faiss::METRIC_L2, false, false, xb);

    // from the flat index: the same codes, the same results
    IndexTurboQuantFastScan conv(*p.flat);
    std::vector<float> D1(nq * k), D2(nq * k);
    std::vector<idx_t> L1(nq * k), L2(nq * k);
    p.fs->search(nq, xq.data(), k, D1.data(), L1.data());
    conv.search(nq, xq.data(), k, D2.data(), L2.data());
    EXPECT_EQ(L1, L2);
    EXPECT_EQ(D1, D2);

    // and back: the flat index's codes and results
    IndexTurboQuant back;
    conv.copy_to(&back);
    ASSERT_EQ(back.ntotal, p.flat->ntotal);
    EXPECT_EQ(
            0,
            memcmp(back.codes.data(),
                   p.flat->codes.data(),
                   nb * back.code_size));
    auto sx = exact_params();
    back.search(nq, xq.data(), k, D2.data(), L2.data(), &sx);
    p.flat->search(nq, xq.data(), k, D1.data(), L1.data(), &sx);
    EXPECT_EQ(L1, L2);
    EXPECT_EQ(D1, D2);

    // remove the even ids: the odd ones remain, in order
    faiss::IDSelectorBatch* none = nullptr;
    (void)none;
    std::vector<idx_t> even;
    for (size_t i = 0; i < nb; i += 2) {
        even.push_back(i);
    }
    faiss::IDSelectorBatch sel(even.size(), even.data());
    EXPECT_EQ(p.fs->remove_ids(sel), nb / 2);
    EXPECT_EQ(p.fs->ntotal, (idx_t)(nb / 2));
    std::vector<float> r1(d), r2(d);
    for (size_t j = 0; j < nb / 2; j++) {
        p.fs->reconstruct(j, r1.data());
        p.flat->reconstruct(2 * j + 1, r2.data());
        ASSERT_EQ(0, memcmp(r1.data(), r2.data(), d * sizeof(float)));
    }

    // merge: conv's codes appended, conv emptied
    p.fs->merge_from(conv);
    EXPECT_EQ(conv.ntotal, 0);
    EXPECT_EQ(p.fs->ntotal, (idx_t)(nb / 2 + nb));
    p.fs->reconstruct(nb / 2 + 7, r1.data());
    p.flat->reconstruct(7, r2.data());
    EXPECT_EQ(0, memcmp(r1.data(), r2.data(), d * sizeof(float)));
    IndexTurboQuantFastScan other(d, 2, faiss::METRIC_L2);
    EXPECT_THROW(p.fs->merge_from(other), faiss::FaissException);
    EXPECT_THROW(p.fs->merge_from(*p.fs), faiss::FaissException);
    EXPECT_EQ(p.fs->ntotal, (idx_t)(nb / 2 + nb)); // nothing lost

    p.fs->reset();
    EXPECT_EQ(p.fs->ntotal, 0);
    EXPECT_TRUE(p.fs->codes.blocks.empty());
}

TEST(FastScanIndex, BadInput) {
    throws_with([] { IndexTurboQuantFastScan(64, 3); }, "3 bits");
    throws_with([] { IndexTurboQuantFastScan(64, 2.5); }, "2.5 bits");
    throws_with([] { IndexTurboQuantFastScan(64, 8); }, "8 bits");
    IndexTurboQuant prod(64, 3, TQVariant::PROD);
    throws_with([&] { IndexTurboQuantFastScan x(prod); }, "TQprod");
    throws_with(
            [] { IndexTurboQuantFastScan(64, 4, faiss::METRIC_L1); },
            "METRIC_L2");

    const size_t d = 16;
    IndexTurboQuantFastScan idx(d, 4);
    std::vector<float> x = random_gaussian(10, d, 5);
    idx.add(10, x.data());
    x[3 * d + 2] = NAN;
    EXPECT_THROW(idx.add(10, x.data()), faiss::FaissException);
    EXPECT_EQ(idx.ntotal, 10); // unchanged
    std::vector<float> D(3);
    std::vector<idx_t> L(3);
    throws_with([&] { idx.search(1, x.data(), 0, D.data(), L.data()); }, "k=0");
    throws_with(
            [&] { idx.search(1, x.data() + 3 * d, 3, D.data(), L.data()); },
            "NaN");
    std::vector<float> r(d);
    throws_with([&] { idx.reconstruct(10, r.data()); }, "key 10");
    faiss::RangeSearchResult res(1);
    throws_with(
            [&] { idx.range_search(1, x.data() + 3 * d, 1.0f, &res); }, "NaN");
    SearchParametersTurboQuant sp;
    sp.rerank_factor = NAN;
    throws_with(
            [&] { idx.search(1, r.data(), 3, D.data(), L.data(), &sp); },
            "rerank_factor");
    IndexTurboQuantFastScan centered(d, 4, faiss::METRIC_L2, true);
    throws_with([&] { centered.add(1, r.data()); }, "train()");
    std::vector<uint8_t> row(centered.sa_code_size());
    throws_with([&] { centered.add_codes(1, row.data()); }, "train()");
    // codes whose floats are NaN (all bytes 0xff) or whose norm is < 0:
    // refused by position, the index unchanged
    const idx_t before = idx.ntotal;
    std::vector<uint8_t> rows(3 * idx.sa_code_size());
    idx.sa_encode(3, x.data(), rows.data());
    std::vector<uint8_t> bad = rows;
    std::fill(bad.end() - 4, bad.end(), 0xff);
    throws_with([&] { idx.add_codes(3, bad.data()); }, "code 2");
    bad = rows;
    TQCodeScalars sc;
    idx.tq.read_scalars(bad.data() + idx.sa_code_size(), sc);
    sc.norm = -1;
    idx.tq.write_scalars(bad.data() + idx.sa_code_size(), sc);
    throws_with([&] { idx.add_codes(3, bad.data()); }, "code 1");
    EXPECT_EQ(idx.ntotal, before);
    idx.add_codes(3, rows.data());
    EXPECT_EQ(idx.ntotal, before + 3);
}

TEST(FastScanIndex, StoredVectorsTooLongForL2StayStored) {
    // add refuses a vector whose squared norm overflows float (no L2
    // search could return it), but one stored before, in a file or a flat
    // index, still reads, converts and merges: nothing stored is lost
    const size_t d = 16;
    std::vector<float> x = random_gaussian(3, d, 8);
    std::fill(x.begin() + d, x.begin() + 2 * d, 1e20f);
    IndexTurboQuant flat(d, 4);
    std::vector<uint8_t> codes(3 * flat.code_size);
    flat.sa_encode(3, x.data(), codes.data());
    EXPECT_THROW(flat.add(3, x.data()), faiss::FaissException);
    IndexTurboQuantFastScan fs(d, 4);
    EXPECT_THROW(fs.add(3, x.data()), faiss::FaissException);
    fs.add_codes(3, codes.data());
    std::unique_ptr<faiss::Index> back(deserialize_index(serialize_index(&fs)));
    EXPECT_EQ(back->ntotal, 3);
    // as a file of an earlier version holds them
    flat.codes.resize(codes.size());
    std::copy(codes.begin(), codes.end(), flat.codes.begin());
    flat.ntotal = 3;
    IndexTurboQuantFastScan conv(flat);
    EXPECT_EQ(conv.ntotal, 3);
    fs.merge_from(conv);
    EXPECT_EQ(fs.ntotal, 6);
}

TEST(FastScanIndex, FilesAndFactory) {
    const size_t d = 40, nb = 300, nq = 6, k = 7;
    std::vector<float> xb = random_gaussian(nb, d, 51);
    std::vector<float> xq = random_gaussian(nq, d, 52);
    for (const char* desc :
         {"TQmse4fs", "TQmse2cfs", "TQmse1.5fs", "PCA32,TQmse4fs"}) {
        for (auto metric : {faiss::METRIC_L2, faiss::METRIC_INNER_PRODUCT}) {
            SCOPED_TRACE(desc);
            std::unique_ptr<faiss::Index> idx(
                    faiss_turbo::index_factory(d, desc, metric));
            EXPECT_EQ(reverse_index_factory(idx.get()), desc);
            idx->train(nb, xb.data());
            idx->add(nb, xb.data());
            std::vector<uint8_t> bytes = serialize_index(idx.get());
            std::unique_ptr<faiss::Index> back(deserialize_index(bytes));
            EXPECT_EQ(serialize_index(back.get()), bytes); // bit for bit
            std::vector<float> D1(nq * k), D2(nq * k);
            std::vector<idx_t> L1(nq * k), L2(nq * k);
            idx->search(nq, xq.data(), k, D1.data(), L1.data());
            back->search(nq, xq.data(), k, D2.data(), L2.data());
            EXPECT_EQ(L1, L2);
            EXPECT_EQ(D1, D2);
            // any corrupted byte is caught before a parser reads it
            for (size_t pos :
                 {size_t(20), bytes.size() / 2, bytes.size() - 9}) {
                std::vector<uint8_t> bad = bytes;
                bad[pos] ^= 0x40;
                EXPECT_THROW(deserialize_index(bad), faiss::FaissException);
            }
        }
    }
    // the same codes as the row layout's index, in the other node type
    std::unique_ptr<faiss::Index> flat(faiss_turbo::index_factory(d, "TQmse4"));
    flat->add(nb, xb.data());
    IndexTurboQuantFastScan fs(*dynamic_cast<IndexTurboQuant*>(flat.get()));
    std::unique_ptr<faiss::Index> back(deserialize_index(serialize_index(&fs)));
    auto* fb = dynamic_cast<IndexTurboQuantFastScan*>(back.get());
    ASSERT_TRUE(fb);
    std::vector<uint8_t> rows(nb * fb->sa_code_size());
    fb->get_codes(0, nb, rows.data());
    EXPECT_EQ(
            0,
            memcmp(rows.data(),
                   dynamic_cast<IndexTurboQuant*>(flat.get())->codes.data(),
                   rows.size()));
    for (const char* bad :
         {"IVF8,TQprod3fs",
          "IVF8,TQ3fs",
          "TQprod3fs",
          "TQ3fs",
          "HNSW16,TQ4fs"}) {
        EXPECT_THROW(
                delete faiss_turbo::index_factory(d, bad),
                faiss::FaissException)
                << bad;
    }
}

TEST(FastScanIndex, Int8TilesOnBlocksEqualRows) {
    const size_t d = 72, nb = 1000, nq = 40, k = 12;
    std::vector<float> xb = random_gaussian(nb, d, 61);
    std::vector<float> xq = random_gaussian(nq, d, 62);
    for (float bits : {4.0f, 2.0f}) {
        Pair p = make_pair(d, bits, faiss::METRIC_L2, false, false, xb);
        // any range, aligned or not, unpacks to the row codes
        for (size_t i0 : {0, 5, 32, 40}) {
            size_t n = std::min<size_t>(97, nb - i0);
            std::vector<uint8_t> rows(n * p.flat->code_size);
            p.fs->codes.rows(p.fs->tq, i0, n, rows.data());
            ASSERT_EQ(
                    0,
                    memcmp(rows.data(),
                           &p.flat->codes[i0 * p.flat->code_size],
                           rows.size()));
        }
        // the int8 scan over blocks is the int8 scan over rows, bit for bit
        TQQueries q;
        p.fs->prepare_queries(nq, xq.data(), q);
        for (float rf : {0.0f, 2.0f}) {
            std::vector<float> D1(nq * k), D2(nq * k);
            std::vector<idx_t> L1(nq * k), L2(nq * k);
            scan_knn_int8(
                    p.flat->tq,
                    p.flat->codes.data(),
                    nb,
                    q,
                    k,
                    rf,
                    D1.data(),
                    L1.data(),
                    nullptr);
            scan_knn_int8(
                    p.fs->tq,
                    p.fs->codes,
                    q,
                    k,
                    rf,
                    D2.data(),
                    L2.data(),
                    nullptr);
            EXPECT_EQ(L1, L2);
            EXPECT_EQ(D1, D2);
        }
        // and the index takes it for batches at 4 bits, tables otherwise
        EXPECT_EQ(lut_scan_preferred(p.fs->tq, nq), bits <= 2);
        EXPECT_TRUE(lut_scan_preferred(p.fs->tq, 1));
        std::vector<float> D3(nq * k), D4(nq * k);
        std::vector<idx_t> L3(nq * k), L4(nq * k);
        p.fs->search(nq, xq.data(), k, D3.data(), L3.data());
        p.flat->search(nq, xq.data(), k, D4.data(), L4.data());
        if (bits > 2) { // the same int8 scan as the flat index's
            EXPECT_EQ(L3, L4);
            EXPECT_EQ(D3, D4);
        } else {
            EXPECT_GE(recall_at(L3, L4, nq, k, k, k), 0.97);
        }
    }
}
