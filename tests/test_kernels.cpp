/** The int8 scan: kernels against a naive reference and against each other
 * (bit-exact integer sums), the int8 estimator against its rounding error
 * bound, and the search paths against the exact float scan. */
#include <gtest/gtest.h>

#include <omp.h>

#include <algorithm>
#include <cmath>
#include <map>
#include <memory>
#include <random>

#include <faiss/impl/FaissException.h>
#include <faiss/impl/IDSelector.h>

#include <faiss_turbo/IndexTurboQuant.h>
#include <faiss_turbo/SearchParametersTurboQuant.h>
#include <faiss_turbo/impl/coord_rules.h>
#include <faiss_turbo/impl/scan.h>
#include <faiss_turbo/impl/scan_int8.h>
#include <faiss_turbo/impl/simd/float_kernels.h>

#include "test_util.h"

using namespace faiss_turbo;

namespace {

using Cfg = tqtest::TQCase;

// every segment shape: interleaved 1/2/4 bits with partial last chunks,
// natural 3/5/8 bits, fractional splits on and off a byte, 0-bit MSE parts
const Cfg kCfgs[] = {
        {37, TQVariant::MSE, 4, false},
        {64, TQVariant::MSE, 2, true},
        {100, TQVariant::MSE, 1, false},
        {129, TQVariant::MSE, 3, false},
        {96, TQVariant::MSE, 2.5, true},
        {70, TQVariant::MSE, 3.5, false},
        {150, TQVariant::MSE, 3.5, true},  // 3-bit part from bit 300
        {200, TQVariant::MSE, 2.5, false}, // 2-bit part from bit 300
        {300, TQVariant::MSE, 4.5, false},
        {64, TQVariant::MSE, 1.5, false},
        {40, TQVariant::MSE, 8, false},
        {50, TQVariant::MSE, 5, true},
        {24, TQVariant::PROD, 1, false},
        {33, TQVariant::PROD, 1.5, false},
        {48, TQVariant::PROD, 2, false},
        {65, TQVariant::PROD, 3, false},
        {300, TQVariant::PROD, 5, false},
        // several chunks of 1, 2 and 4 bits (the AVX-512 direct kernel
        // takes them in pairs: even and odd counts, the end inside a pair,
        // and segments too wide to pair at 4 queries)
        {256, TQVariant::MSE, 4, true},
        {300, TQVariant::MSE, 4, false},
        {4200, TQVariant::MSE, 4, false},
        {200, TQVariant::MSE, 2, false},
        {600, TQVariant::MSE, 2, false},
        {1100, TQVariant::MSE, 1, false},
        {4500, TQVariant::MSE, 2, false},
        {600, TQVariant::PROD, 3, false},
};

const TurboQuantizer& get_tq(const Cfg& c) {
    static std::map<std::string, std::unique_ptr<TurboQuantizer>> cache;
    auto& p = cache[tqtest::case_name(c)];
    if (!p) {
        p.reset(new TurboQuantizer(c.d, c.v, c.bits, c.debiased));
    }
    return *p;
}

/// random code bytes, readable up to max_read past the last code. Code 0
/// has every bit set: the largest centroid everywhere, u = 128, the most
/// a 16-bit partial sum of the kernels can take against query 0.
std::vector<uint8_t> random_codes(const Int8Layout& L, size_t n, int seed) {
    std::mt19937 rng(seed);
    std::vector<uint8_t> codes((n - 1) * L.code_size + L.max_read);
    for (auto& b : codes) {
        b = rng() & 0xff;
    }
    std::fill(codes.begin(), codes.begin() + L.code_size, 0xff);
    return codes;
}

/// random int8 queries in [-63, 63], natural order per segment, and the
/// same in kernel order; query 0 is +63 everywhere (see random_codes)
void random_queries(
        const Int8Layout& L,
        size_t nq,
        int seed,
        std::vector<std::vector<int>>& nat,
        std::vector<int8_t>& q8) {
    std::mt19937 rng(seed);
    q8.assign(nq * L.row, 0);
    nat.assign(nq * L.nseg, {});
    for (size_t q = 0; q < nq; q++) {
        for (int s = 0; s < L.nseg; s++) {
            const Int8Segment& sg = L.seg[s];
            auto& v = nat[q * L.nseg + s];
            for (size_t j = 0; j < sg.ncoords; j++) {
                int r = (int)(rng() % (2 * kInt8QueryMax + 1));
                v.push_back(q == 0 ? kInt8QueryMax : r - kInt8QueryMax);
                q8[q * L.row + sg.tile_offset + int8_kernel_position(sg, j)] =
                        (int8_t)v.back();
            }
        }
    }
}

struct Sums {
    std::vector<int32_t> U, V;
};

/// the definition: U = sum_j u[idx_j] q_j, V = sum_j v[idx_j]
Sums naive_sums(
        const Int8Layout& L,
        const uint8_t* codes,
        size_t n,
        const std::vector<std::vector<int>>& nat,
        size_t nq) {
    Sums r;
    r.U.assign(n * nq * L.nseg, 0);
    r.V.assign(n * L.nseg, 0);
    for (size_t i = 0; i < n; i++) {
        const uint8_t* code = codes + i * L.code_size;
        for (int s = 0; s < L.nseg; s++) {
            const Int8Segment& sg = L.seg[s];
            for (size_t j = 0; j < sg.ncoords; j++) {
                uint32_t idx =
                        get_bits(code, sg.bit_offset + j * sg.nbits, sg.nbits);
                r.V[i * L.nseg + s] += sg.v[idx];
                for (size_t q = 0; q < nq; q++) {
                    r.U[(q * n + i) * L.nseg + s] +=
                            sg.u[idx] * nat[q * L.nseg + s][j];
                }
            }
        }
    }
    return r;
}

/// all three kernels of K on the same input
Sums run_kernels(
        const Int8Kernels& K,
        const Int8Layout& L,
        const uint8_t* codes,
        size_t n,
        const std::vector<int8_t>& q8,
        size_t nq,
        std::vector<uint8_t>& tile,
        Sums* direct) {
    Sums r;
    tile.assign(int8_tile_bytes(K, L, n), 0);
    r.U.assign(n * nq * L.nseg, 0);
    r.V.assign(n * L.nseg, 0);
    K.decode_tile(L, codes, n, tile.data(), r.V.data());
    K.tile_dots(L, tile.data(), n, q8.data(), nq, r.U.data());
    if (direct && L.direct && nq <= kInt8MaxDirectQueries) {
        direct->U.assign(n * nq * L.nseg, 0);
        direct->V.assign(n * L.nseg, 0);
        K.direct_dots(
                L,
                codes,
                n,
                q8.data(),
                nq,
                direct->U.data(),
                direct->V.data(),
                0);
    }
    return r;
}

/// what a panel kernel set's decode_tile writes for the scalar tile rows:
/// panel p, column k = bytes 4k..4k+3 of rows p P..p P + P - 1 in turn,
/// then the rows themselves, zero rows padding both to whole panels
std::vector<uint8_t>
panels_of(const std::vector<uint8_t>& rows, size_t row, size_t n, size_t P) {
    const size_t np = (n + P - 1) / P;
    std::vector<uint8_t> out(2 * np * P * row, 0);
    std::copy(rows.begin(), rows.begin() + n * row, out.begin() + np * P * row);
    for (size_t r = 0; r < n; r++) {
        for (size_t j = 0; j < row; j++) {
            const size_t p = r / P, c = r % P, k = j / 4;
            out[p * P * row + (k * P + c) * 4 + j % 4] = rows[r * row + j];
        }
    }
    return out;
}

/// the kernels of every instruction set here against the definition on n
/// random codes of L, with 1 to 9 queries; the SIMD decoders write the
/// scalar one's tile, byte for byte (padding included)
void check_kernels_on(const Int8Layout& L, size_t n, int seed) {
    std::vector<const Int8Kernels*> ks = {&int8_kernels_scalar()};
    if (int8_kernels_avx2()) {
        ks.push_back(int8_kernels_avx2());
    }
    if (int8_kernels_avx512()) {
        ks.push_back(int8_kernels_avx512());
    }
    auto codes = random_codes(L, n, seed);
    std::vector<uint8_t> tile_ref;
    for (size_t nq : {1, 2, 3, 4, 5, 6, 9, 13}) {
        std::vector<std::vector<int>> nat;
        std::vector<int8_t> q8;
        random_queries(L, nq, (int)(nq + seed), nat, q8);
        Sums ref = naive_sums(L, codes.data(), n, nat, nq);
        for (size_t ki = 0; ki < ks.size(); ki++) {
            SCOPED_TRACE(ks[ki]->name);
            std::vector<uint8_t> tile;
            Sums direct;
            Sums t = run_kernels(
                    *ks[ki], L, codes.data(), n, q8, nq, tile, &direct);
            EXPECT_EQ(t.U, ref.U) << "nq " << nq;
            if (L.want_v) {
                EXPECT_EQ(t.V, ref.V);
            }
            if (!direct.U.empty()) {
                EXPECT_EQ(direct.U, ref.U) << "direct nq " << nq;
                if (L.want_v) {
                    EXPECT_EQ(direct.V, ref.V);
                }
            }
            if (ki == 0) {
                tile_ref = tile;
            } else if (ks[ki]->panel == 0) {
                EXPECT_EQ(tile, tile_ref);
            } else {
                EXPECT_EQ(tile, panels_of(tile_ref, L.row, n, ks[ki]->panel));
            }
        }
    }
}

} // namespace

TEST(Int8Kernels, SumsEqualTheDefinitionOnEveryKernel) {
    if (!int8_kernels_avx2()) {
        printf("no AVX2 on this CPU: the scalar kernels only\n");
    }
    if (!int8_kernels_avx512()) {
        printf("no AVX-512 VNNI on this CPU: its kernel is not checked\n");
    }
    for (const Cfg& c : kCfgs) {
        SCOPED_TRACE(tqtest::case_name(c));
        for (bool l2 : {true, false}) {
            Int8Codec codec(get_tq(c), l2);
            // 23 codes: a full and a part panel (AVX-512's tiles); 40: a
            // pair of panels, then a lone part one; 1: the direct kernel's
            // unpaired queries (the pre-scan's second pass)
            check_kernels_on(codec.layout, l2 ? 23 : 40, (int)c.d);
            check_kernels_on(codec.layout, 1, (int)c.d + 1);
        }
    }
}

// A run of codes followed by more of the caller's (ahead) lets a kernel ask
// for them in advance (AVX-512's asks 32 KB ahead): the sums stay the
// definition's, for runs longer and shorter than that distance.
TEST(Int8Kernels, DirectRunsAskingAheadKeepTheSums) {
    for (float bits : {4.0f, 2.0f, 2.5f}) {
        const Cfg c{1536, TQVariant::MSE, bits, false};
        SCOPED_TRACE(tqtest::case_name(c));
        Int8Codec codec(get_tq(c), true);
        const Int8Layout& L = codec.layout;
        const size_t total = 120;
        auto codes = random_codes(L, total, 5);
        std::vector<std::vector<int>> nat;
        std::vector<int8_t> q8;
        random_queries(L, 1, 6, nat, q8);
        for (const Int8Kernels* K :
             {&int8_kernels_scalar(),
              int8_kernels_avx2(),
              int8_kernels_avx512()}) {
            if (!K) {
                continue;
            }
            for (size_t n : {size_t(2), size_t(21), size_t(100)}) {
                Sums ref = naive_sums(L, codes.data(), n, nat, 1);
                std::vector<int32_t> U(n * L.nseg), V(n * L.nseg);
                K->direct_dots(
                        L,
                        codes.data(),
                        n,
                        q8.data(),
                        1,
                        U.data(),
                        V.data(),
                        (total - n) * L.code_size);
                EXPECT_EQ(U, ref.U) << K->name << " n " << n;
                EXPECT_EQ(V, ref.V) << K->name << " n " << n;
            }
        }
    }
}

// The codecs put some natural segments on a byte (every 8-bit one, for
// instance); the kernels take any bit offset. Each natural segment moved by
// 1..7 bits (overlapping its neighbour is fine: the definition reads the
// same bits).
TEST(Int8Kernels, NaturalSegmentsAtEveryBitOffset) {
    for (const Cfg& c : kCfgs) {
        Int8Codec codec(get_tq(c), true);
        for (uint32_t shift = 1; shift < 8; shift++) {
            SCOPED_TRACE(
                    tqtest::case_name(c) + " shifted by " +
                    std::to_string(shift));
            Int8Layout L = codec.layout;
            bool moved = false;
            for (int s = 0; s < L.nseg; s++) {
                if (!L.seg[s].interleaved) {
                    L.seg[s].bit_offset += shift;
                    moved = true;
                }
            }
            if (!moved) {
                break;
            }
            L.max_read += 1;
            check_kernels_on(L, 9, (int)(c.d + shift));
        }
    }
}

TEST(Int8Kernels, TablesFitMaddubs) {
    // u <= 128 and |q8| <= 63: two maddubs (four products) never overflow
    // s16
    for (const Cfg& c : kCfgs) {
        Int8Codec codec(get_tq(c), true);
        for (int s = 0; s < codec.layout.nseg; s++) {
            const Int8Segment& sg = codec.layout.seg[s];
            for (int i = 0; i < (1 << sg.nbits); i++) {
                EXPECT_LE(sg.u[i], 2 * kInt8Offset) << tqtest::case_name(c);
            }
            EXPECT_EQ(sg.tile_offset % 32, 0u);
            EXPECT_EQ(sg.width % 32, 0u);
        }
    }
}

// |y^ c^ - y c| <= |y^ - y| |c^| + |y| |c^ - c| with |y^ - y| <= s_q / 2 and
// |c^ - c| <= s_c / 2: a hard bound on the int8 inner product's error.
TEST(Int8Scan, ErrorWithinRoundingBound) {
    const size_t nb = 300, nq = 4;
    for (const Cfg& c : kCfgs) {
        SCOPED_TRACE(tqtest::case_name(c));
        if (c.debiased) {
            continue; // same dot product, scaled by beta
        }
        const TurboQuantizer& tq = get_tq(c);
        const size_t d = tq.d;
        auto xb = tqtest::random_gaussian(nb, d, 21);
        auto xq = tqtest::random_gaussian(nq, d, 22);
        std::vector<uint8_t> codes(nb * tq.code_size);
        tq.encode(nb, xb.data(), codes.data());
        TQQueries q;
        tq.prepare_queries(nq, xq.data(), false, q); // IP: norm * <y, x~>
        Int8CodeScorer scorer(tq, false);
        const Int8Codec& codec = scorer.codec;
        std::vector<float> chat(d), sgn(d), buf(2 * d);
        for (size_t qi = 0; qi < nq; qi++) {
            scorer.set_query(q, qi);
            const float* y = q.y.data() + qi * d;
            float s_y = 0, s_sy = 0;
            for (size_t j = 0; j < d; j++) {
                s_y = std::max(s_y, std::fabs(y[j]) / kInt8QueryMax);
                if (!q.sy.empty()) {
                    s_sy = std::max(
                            s_sy, std::fabs(q.sy[qi * d + j]) / kInt8QueryMax);
                }
            }
            for (size_t i = 0; i < nb; i++) {
                const uint8_t* code = codes.data() + i * tq.code_size;
                TQCodeScalars sc;
                tq.decode_rotated(code, chat.data(), sgn.data(), sc);
                double bound = 0, mag = 0;
                for (int s = 0; s < codec.layout.nseg; s++) {
                    if (codec.sign[s]) {
                        bound +=
                                std::sqrt(M_PI / 2) / d * sc.aux * s_sy / 2 * d;
                        continue;
                    }
                    size_t j0 = codec.coord0[s];
                    for (size_t j = j0; j < j0 + codec.layout.seg[s].ncoords;
                         j++) {
                        bound += s_y / 2 *
                                         (std::fabs(chat[j]) +
                                          codec.cscale[s] / 2) +
                                 std::fabs(y[j]) * codec.cscale[s] / 2;
                        mag += std::fabs(y[j] * chat[j]);
                    }
                }
                bound = sc.norm * (bound + 1e-4 * mag) + 1e-6;
                float exact = tq.score(q, qi, code, buf.data());
                float approx = scorer.score(code);
                ASSERT_LE(std::fabs(approx - exact), bound)
                        << "query " << qi << " code " << i;
            }
        }
    }
}

namespace {

struct Res {
    std::vector<float> D;
    std::vector<idx_t> I;
};

Res search(
        const IndexTurboQuant& idx,
        const std::vector<float>& xq,
        size_t k,
        int mode,
        float rerank,
        faiss::IDSelector* sel = nullptr) {
    size_t nq = xq.size() / idx.d;
    Res r;
    r.D.resize(nq * k);
    r.I.resize(nq * k);
    SearchParametersTurboQuant p;
    p.scan_mode = mode;
    p.rerank_factor = rerank;
    p.sel = sel;
    idx.search(nq, xq.data(), k, r.D.data(), r.I.data(), &p);
    return r;
}

} // namespace

// Re-scoring every code makes the int8 path the exact one, whatever the
// candidates: the plumbing (heaps, slices, padding, ids) is then checked
// exactly, for the direct (nq <= 4) and the tile paths.
TEST(Int8Scan, RerankingAllEqualsExact) {
    const size_t nb = 517, k = 7;
    for (const Cfg& c : kCfgs) {
        for (auto m : {faiss::METRIC_L2, faiss::METRIC_INNER_PRODUCT}) {
            SCOPED_TRACE(
                    tqtest::case_name(c) +
                    (m == faiss::METRIC_L2 ? " L2" : " IP"));
            auto idx = tqtest::make_case_index(
                    c, m, m == faiss::METRIC_L2, nb, 31);
            for (size_t nq : {1, 3, 41}) {
                auto xq = tqtest::random_gaussian(nq, c.d, 32);
                Res e = search(*idx, xq, k, TQ_SCAN_EXACT, 0);
                Res a = search(*idx, xq, k, TQ_SCAN_INT8, (float)nb);
                EXPECT_EQ(a.I, e.I) << "nq " << nq;
                EXPECT_EQ(a.D, e.D) << "nq " << nq;
            }
        }
    }
}

TEST(Int8Scan, ShortListRecallAndExactScores) {
    const size_t d = 128, nb = 4000, nq = 50, k = 10;
    auto xb = tqtest::random_unit(nb, d, 41);
    auto xq = tqtest::random_unit(nq, d, 42);
    for (float bits : {2.0f, 4.0f}) {
        IndexTurboQuant idx(d, bits);
        idx.add(nb, xb.data());
        TQQueries q;
        idx.prepare_queries(nq, xq.data(), q);
        Res e = search(idx, xq, k, TQ_SCAN_EXACT, 0);
        std::vector<float> buf(2 * d);
        for (float rf : {1.0f, kTQDefaultRerankFactor, 4.0f}) {
            Res a = search(idx, xq, k, TQ_SCAN_INT8, rf);
            // the scores returned are the exact estimator's
            for (size_t i = 0; i < nq * k; i++) {
                float s = idx.tq.score(
                        q,
                        i / k,
                        idx.codes.data() + a.I[i] * idx.code_size,
                        buf.data());
                ASSERT_EQ(a.D[i], s);
            }
            double r = tqtest::recall_at(a.I, e.I, nq, k, k, k);
            printf("%g bits, rerank %g: recall@10 vs exact %.3f\n",
                   bits,
                   rf,
                   r);
            // the int8 error is ~1% of the score spread, so a short list
            // of 2k holds nearly all of the exact top k
            EXPECT_GE(r, rf >= 2 ? 0.97 : 0.85);
        }
    }
}

TEST(Int8Scan, WithoutRerankReturnsInt8Scores) {
    const size_t nb = 600, nq = 6, k = 5;
    for (const Cfg& c : kCfgs) {
        SCOPED_TRACE(tqtest::case_name(c));
        auto idx = tqtest::make_case_index(c, faiss::METRIC_L2, false, nb, 51);
        auto xq = tqtest::random_gaussian(nq, c.d, 52);
        Res a = search(*idx, xq, k, TQ_SCAN_INT8, 0);
        TQQueries q;
        idx->prepare_queries(nq, xq.data(), q);
        Int8CodeScorer scorer(idx->tq, true);
        std::vector<float> all(nb);
        for (size_t qi = 0; qi < nq; qi++) {
            scorer.set_query(q, qi);
            scorer.score_run(idx->codes.data(), nb, all.data());
            std::vector<float> D(k);
            std::vector<idx_t> I(k);
            init_topk(true, k, D.data(), I.data());
            for (size_t i = 0; i < nb; i++) {
                EXPECT_EQ(
                        all[i],
                        scorer.score(idx->codes.data() + i * idx->code_size));
                push_topk(true, k, D.data(), I.data(), all[i], i);
            }
            finalize_topk(true, k, D.data(), I.data());
            EXPECT_EQ(
                    std::vector<idx_t>(
                            a.I.begin() + qi * k, a.I.begin() + (qi + 1) * k),
                    I);
            EXPECT_EQ(
                    std::vector<float>(
                            a.D.begin() + qi * k, a.D.begin() + (qi + 1) * k),
                    D);
        }
    }
}

// the reservoir keeps the same kk best as a heap of kk (ties included), on
// streams in random, sorted and reversed order with many ties
TEST(TopkReservoir, SameSetAsAHeap) {
    std::mt19937 rng(5);
    for (bool l2 : {true, false}) {
        for (size_t kk : {1, 2, 7, 64, 300}) {
            for (int order = 0; order < 3; order++) {
                const size_t n = 5000;
                std::vector<float> v(n);
                for (auto& x : v) {
                    x = (float)(rng() % 997) * 0.25f; // many equal scores
                }
                if (order > 0) {
                    std::sort(v.begin(), v.end());
                }
                if (order == 2) {
                    std::reverse(v.begin(), v.end());
                }
                std::vector<float> hd(kk), rd(kk);
                std::vector<idx_t> hi(kk), ri(kk);
                init_topk(l2, kk, hd.data(), hi.data());
                TopkReservoir r(l2, kk);
                for (size_t i = 0; i < n; i++) {
                    push_topk(l2, kk, hd.data(), hi.data(), v[i], i);
                    if (r.beats(v[i], i)) {
                        r.add(v[i], i);
                    }
                }
                r.finish(rd.data(), ri.data());
                finalize_topk(l2, kk, hd.data(), hi.data());
                finalize_topk(l2, kk, rd.data(), ri.data());
                EXPECT_EQ(hi, ri)
                        << "l2 " << l2 << " kk " << kk << " order " << order;
                EXPECT_EQ(hd, rd);
            }
        }
    }
    // fewer offers than kk: the empty slots as init_topk fills them
    TopkReservoir r(true, 10);
    r.add(3.0f, 4);
    std::vector<float> d(10);
    std::vector<idx_t> ids(10);
    r.finish(d.data(), ids.data());
    finalize_topk(true, 10, d.data(), ids.data());
    EXPECT_EQ(4, ids[0]);
    EXPECT_EQ(-1, ids[1]);
    EXPECT_TRUE(std::isinf(d[9]));
    EXPECT_THROW(TopkReservoir(true, 0), faiss::FaissException);
    // one entry repeated: every pivot is the best of its range
    TopkReservoir rep(true, 40);
    for (int i = 0; i < 300; i++) {
        rep.add(1.0f, 5);
    }
    std::vector<float> dr(40);
    std::vector<idx_t> ir(40);
    rep.finish(dr.data(), ir.data());
    EXPECT_EQ(ir, std::vector<idx_t>(40, 5));
    EXPECT_EQ(rep.bound, 1.0f);
    // -0 and +0 tie (the ids decide), infinities rank last / first
    for (bool l2 : {true, false}) {
        TopkReservoir z(l2, 3);
        const float vals[] = {0.0f, -0.0f, INFINITY, -INFINITY, 0.0f, -0.0f};
        for (int i = 0; i < 6; i++) {
            z.add(vals[i], i);
        }
        std::vector<float> dz(3);
        std::vector<idx_t> iz(3);
        z.finish(dz.data(), iz.data());
        finalize_topk(l2, 3, dz.data(), iz.data());
        std::vector<idx_t> want =
                l2 ? std::vector<idx_t>{3, 0, 1} : std::vector<idx_t>{2, 4, 5};
        EXPECT_EQ(iz, want) << l2;
    }
}

// TopValues keeps the kk best values (ties counted), its bound the value
// of rank kk once kk were offered, on random streams of either metric
TEST(TopValues, BoundIsTheValueOfRankKk) {
    std::mt19937 rng(7);
    for (int trial = 0; trial < 400; trial++) {
        const bool l2 = trial % 2;
        const size_t kk = 1 + rng() % 40, n = rng() % 300;
        TopValues t(l2, kk);
        std::vector<float> all;
        for (size_t i = 0; i < n; i++) {
            float v = (float)(rng() % 97); // many ties
            all.push_back(v);
            if (t.beats(v, i)) {
                t.add(v, i);
            }
        }
        if (l2) {
            std::sort(all.begin(), all.end());
        } else {
            std::sort(all.rbegin(), all.rend());
        }
        ASSERT_EQ(t.heap.size(), std::min(n, kk)) << trial;
        if (n >= kk) {
            ASSERT_EQ(t.bound, all[kk - 1]) << trial;
        } else {
            ASSERT_TRUE(std::isinf(t.bound)) << trial;
        }
        // a merge takes the other's values
        TopValues u(l2, kk), w(l2, kk);
        for (size_t i = 0; i < n; i++) {
            TopValues& half = i % 2 ? u : w;
            if (half.beats(all[i], i)) {
                half.add(all[i], i);
            }
        }
        u.merge(w);
        ASSERT_EQ(u.bound, t.bound) << trial;
    }
    EXPECT_THROW(TopValues(true, 0), faiss::FaissException);
}

/// scan_knn_int8 over all of idx's codes with nt threads
Res scan_int8_on(
        const IndexTurboQuant& idx,
        const TQQueries& q,
        size_t k,
        float rerank_factor,
        const Int8Kernels& K,
        int nt) {
    Res r;
    r.D.resize(q.n * k);
    r.I.resize(q.n * k);
    int old = omp_get_max_threads();
    omp_set_num_threads(nt);
    scan_knn_int8(
            idx.tq,
            idx.codes.data(),
            idx.ntotal,
            q,
            k,
            rerank_factor,
            r.D.data(),
            r.I.data(),
            nullptr,
            K);
    omp_set_num_threads(old);
    return r;
}

TEST(Int8Scan, IndependentOfThreadsKernelsAndBatching) {
    const size_t nb = 3000, k = 9;
    const Cfg cfgs[] = {
            {64, TQVariant::MSE, 4, false},
            {70, TQVariant::MSE, 3.5, true},
            {48, TQVariant::PROD, 3, false}};
    for (const Cfg& c : cfgs) {
        SCOPED_TRACE(tqtest::case_name(c));
        auto idx = tqtest::make_case_index(c, faiss::METRIC_L2, false, nb, 61);
        auto xq = tqtest::random_gaussian(40, c.d, 62);
        TQQueries q;
        idx->prepare_queries(40, xq.data(), q);
        auto run = [&](const TQQueries& qq, const Int8Kernels& K, int nt) {
            return scan_int8_on(*idx, qq, k, 0, K, nt);
        };
        const Int8Kernels& S = int8_kernels_scalar();
        const Int8Kernels& B = int8_kernels_best();
        Res ref = run(q, S, 1);
        Res r2 = run(q, B, 2);
        EXPECT_EQ(ref.I, r2.I);
        EXPECT_EQ(ref.D, r2.D);
        // three queries alone take the direct kernels where they apply
        TQQueries q3;
        idx->prepare_queries(3, xq.data(), q3);
        for (int nt : {1, 2}) {
            Res r3 = run(q3, B, nt);
            EXPECT_EQ(
                    r3.I,
                    std::vector<idx_t>(ref.I.begin(), ref.I.begin() + 3 * k));
            EXPECT_EQ(
                    r3.D,
                    std::vector<float>(ref.D.begin(), ref.D.begin() + 3 * k));
        }
    }
}

// one query over enough codes (40000 x 36 B, above the scan's 1 MB of work
// per slice) is split over the threads: the same results as one thread
TEST(Int8Scan, OneQuerySplitOverThreads) {
    const size_t nb = 40000, k = 10;
    const Cfg c = {64, TQVariant::MSE, 4, true};
    auto idx = tqtest::make_case_index(c, faiss::METRIC_L2, false, nb, 81);
    auto xq = tqtest::random_gaussian(3, c.d, 82);
    for (size_t nq : {1, 3}) {
        TQQueries q;
        idx->prepare_queries(nq, xq.data(), q);
        const Int8Kernels& B = int8_kernels_best();
        Res r1 = scan_int8_on(*idx, q, k, 2, B, 1);
        Res r2 = scan_int8_on(*idx, q, k, 2, B, 2);
        EXPECT_EQ(r1.I, r2.I) << nq;
        EXPECT_EQ(r1.D, r2.D) << nq;
    }
}

TEST(Int8Scan, SelectorAndFewCodes) {
    const Cfg c = {40, TQVariant::MSE, 4, true};
    auto idx = tqtest::make_case_index(
            c, faiss::METRIC_INNER_PRODUCT, false, 800, 71);
    auto xq = tqtest::random_gaussian(5, c.d, 72);
    faiss::IDSelectorRange range(100, 500);
    Res e = search(*idx, xq, 20, TQ_SCAN_EXACT, 0, &range);
    Res a = search(*idx, xq, 20, TQ_SCAN_INT8, 1000, &range);
    EXPECT_EQ(a.I, e.I);
    EXPECT_EQ(a.D, e.D);
    Res s = search(*idx, xq, 20, TQ_SCAN_INT8, 0, &range);
    for (idx_t id : s.I) {
        EXPECT_TRUE(id >= 100 && id < 500);
    }
    // fewer codes than k: -1 / -inf padding, as the exact scan
    IndexTurboQuant small(c.d, 4, TQVariant::MSE, faiss::METRIC_INNER_PRODUCT);
    std::vector<float> xb = tqtest::random_gaussian(3, c.d, 73);
    small.add(3, xb.data());
    for (float rf : {0.0f, 4.0f}) {
        Res r = search(small, xq, 6, TQ_SCAN_INT8, rf);
        Res x = search(small, xq, 6, TQ_SCAN_EXACT, 0);
        if (rf > 0) {
            EXPECT_EQ(r.I, x.I);
        }
        for (size_t i = 0; i < r.D.size(); i++) {
            EXPECT_EQ(r.I[i] < 0, i % 6 >= 3);
            if (r.I[i] < 0) {
                EXPECT_EQ(r.D[i], -INFINITY);
            }
        }
    }
    IndexTurboQuant empty(c.d, 4);
    Res r = search(empty, xq, 3, TQ_SCAN_INT8, 4);
    for (idx_t id : r.I) {
        EXPECT_EQ(id, -1);
    }
}

TEST(Int8Scan, BadParametersThrow) {
    IndexTurboQuant idx(16, 4);
    auto xb = tqtest::random_gaussian(10, 16, 81);
    idx.add(10, xb.data());
    EXPECT_THROW(search(idx, xb, 3, 7, 4), faiss::FaissException);
    EXPECT_THROW(search(idx, xb, 3, TQ_SCAN_INT8, -1), faiss::FaissException);
    EXPECT_THROW(search(idx, xb, 3, TQ_SCAN_INT8, NAN), faiss::FaissException);
}

/*************************************************************
 * float kernels: the SIMD versions keep the reference's bits
 *************************************************************/

TEST(FloatKernels, SimdKeepsTheReferenceBits) {
    const FloatKernels* k = float_kernels_avx2();
    if (!k) {
        GTEST_SKIP() << "no AVX2 on this CPU";
    }
    for (size_t d : {1, 7, 8, 9, 31, 64, 100, 128, 1536}) {
        auto a = tqtest::mixed_values(5 * d, (int)d),
             b = tqtest::mixed_values(d, 1 + (int)d);
        float want = tqtest::dot_lanes_definition(a.data(), b.data(), d);
        EXPECT_EQ(k->dot_lanes(a.data(), b.data(), d), want) << d;
        EXPECT_EQ(dot_lanes(a.data(), b.data(), d), want) << d;
        float rows[5];
        k->dot_rows(a.data(), 5, b.data(), d, rows);
        for (size_t r = 0; r < 5; r++) {
            EXPECT_EQ(
                    rows[r],
                    tqtest::dot_lanes_definition(
                            a.data() + r * d, b.data(), d));
        }
    }
    for (size_t p = 8; p <= 2048; p *= 2) {
        auto x = tqtest::mixed_values(p, (int)p), y = x;
        fwht_inplace(x.data(), p);
        k->fwht(y.data(), p);
        EXPECT_EQ(x, y) << p;
    }
    // centroid lookup: random bytes, lengths around the 4-byte loads
    std::mt19937 rng(3);
    for (int nbits : {1, 2, 4}) {
        auto table = tqtest::mixed_values(16, nbits);
        for (size_t nbytes = 0; nbytes < 40; nbytes++) {
            std::vector<uint8_t> p(nbytes);
            for (size_t i = 0; i < nbytes; i++) {
                p[i] = (uint8_t)rng();
            }
            const size_t per = 8 / nbits, n = nbytes * per;
            std::vector<float> got(n + 1, -7.0f), want(n + 1, -7.0f);
            for (size_t j = 0; j < n; j++) {
                want[j] =
                        table[(p[j / per] >> (j % per * nbits)) &
                              ((1 << nbits) - 1)];
            }
            k->lookup_centroids(
                    p.data(), nbytes, nbits, table.data(), got.data());
            EXPECT_EQ(got, want) << nbits << " bits, " << nbytes << " bytes";
        }
    }
    for (int nbits = 1; nbits <= 4; nbits++) {
        auto cb = get_lloyd_max_codebook(64, nbits);
        // random values, the thresholds themselves, their neighbours, +-0
        auto v = tqtest::mixed_values(1000, nbits);
        for (float t : cb->thresholds) {
            v.push_back(t);
            v.push_back(std::nextafter(t, 1.0f));
            v.push_back(std::nextafter(t, -1.0f));
        }
        v.push_back(0.0f);
        v.push_back(-0.0f);
        std::vector<uint8_t> idx(v.size()), idx2(v.size() + 1);
        k->quantize(
                v.data(),
                v.size(),
                cb->thresholds.data(),
                nbits,
                idx.data(),
                nullptr,
                nullptr);
        for (size_t i = 0; i < v.size(); i++) {
            ASSERT_EQ(
                    idx[i], quantize_coord(v[i], cb->thresholds.data(), nbits))
                    << v[i];
        }
        // with the centroids: the same indices, and their table entries
        // (lengths around the groups of 8 and their tails)
        for (size_t n :
             {size_t(0),
              size_t(1),
              size_t(7),
              size_t(8),
              size_t(9),
              size_t(17),
              v.size()}) {
            std::vector<float> chat(n + 1, -7.0f), want(n + 1, -7.0f);
            std::fill(idx2.begin(), idx2.end(), 0xff);
            k->quantize(
                    v.data(),
                    n,
                    cb->thresholds.data(),
                    nbits,
                    idx2.data(),
                    cb->centroids.data(),
                    chat.data());
            for (size_t i = 0; i < n; i++) {
                ASSERT_EQ(idx2[i], idx[i]) << nbits << " bits, " << i;
                want[i] = cb->centroids[idx[i]];
            }
            ASSERT_EQ(idx2[n], 0xff) << "wrote past n";
            ASSERT_EQ(chat, want) << nbits << " bits, n = " << n;
        }
    }
}

/// the scan's filter (AVX-512 where the CPU has it) against its definition:
/// every length to 64, ties with the bound, NaN, +-inf and -0
TEST(ScanFilter, ReachMaskIsTheDefinition) {
    std::mt19937 rng(9);
    std::uniform_int_distribution<int> pick(0, 9);
    const float specials[] = {
            NAN, INFINITY, -INFINITY, -0.0f, 0.0f, 0.5f, -0.5f};
    for (int trial = 0; trial < 200; trial++) {
        const size_t n = 1 + trial % 64;
        const float top = trial % 3 == 0 ? 0.0f : 0.5f;
        std::vector<float> s(n);
        for (float& v : s) {
            int c = pick(rng);
            v = c < 7 ? specials[c] : (float)(rng() % 2001) / 1000 - 1;
        }
        for (bool l2 : {true, false}) {
            uint64_t want = 0;
            for (size_t i = 0; i < n; i++) {
                bool in = l2 ? s[i] <= top : s[i] >= top;
                want |= (uint64_t)in << i;
            }
            EXPECT_EQ(reach_mask(l2, s.data(), n, top), want)
                    << "n " << n << (l2 ? " L2" : " IP");
        }
    }
}
