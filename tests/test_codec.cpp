/** The codec against theory: distortion, inner-product bias and variance,
 * layout, determinism, rotations. */
#include <gtest/gtest.h>

#include <algorithm>
#include <cmath>
#include <cstring>
#include <map>
#include <random>

#include <faiss/impl/FaissException.h>

#include <faiss_turbo/IndexTurboQuant.h>
#include <faiss_turbo/TurboQuantizer.h>
#include <faiss_turbo/impl/coord_rules.h>
#include <faiss_turbo/impl/packing.h>
#include <faiss_turbo/impl/simd/float_kernels.h>

#include "test_util.h"

using namespace faiss_turbo;

namespace {

/// cached quantizers: the dense rotation at d = 1536 takes seconds to make
const TurboQuantizer&
get_tq(size_t d,
       TQVariant v,
       float bits,
       bool debiased,
       RotationType rt,
       QJLType qt = QJLType::GAUSSIAN) {
    static std::
            map<std::tuple<size_t, int, int, bool, int, int>, TurboQuantizer>
                    cache;
    auto key = std::make_tuple(
            d, (int)v, (int)std::lround(bits * 10), debiased, (int)rt, (int)qt);
    auto it = cache.find(key);
    if (it == cache.end()) {
        it = cache.emplace(key, TurboQuantizer(d, v, bits, debiased, rt, qt))
                     .first;
    }
    return it->second;
}

/// mean of ||x - x_hat||^2 / ||x||^2
double relative_distortion(const TurboQuantizer& tq, const float* x, size_t n) {
    std::vector<uint8_t> codes(n * tq.code_size);
    std::vector<float> xr(n * tq.d);
    tq.encode(n, x, codes.data());
    tq.decode(n, codes.data(), xr.data());
    double tot = 0;
    for (size_t i = 0; i < n; i++) {
        double e = 0, nx = 0;
        for (size_t j = 0; j < tq.d; j++) {
            double a = x[i * tq.d + j], b = xr[i * tq.d + j];
            e += (a - b) * (a - b);
            nx += a * a;
        }
        tot += e / nx;
    }
    return tot / n;
}

/// the expected distortion of a unit vector under this layout
double theory_distortion(const TurboQuantizer& tq) {
    return tq.n_hi * tq.cb_hi->mse + (tq.d - tq.n_hi) * tq.cb_lo->mse;
}

std::vector<float> basis_vectors(size_t d) {
    std::vector<float> x(d * d, 0);
    for (size_t i = 0; i < d; i++) {
        x[i * d + i] = 1;
    }
    return x;
}

std::vector<float> sparse_vectors(size_t n, size_t d, int nnz, uint64_t seed) {
    std::mt19937 rng(seed);
    std::vector<float> x(n * d, 0);
    for (size_t i = 0; i < n; i++) {
        for (int t = 0; t < nnz; t++) {
            x[i * d + rng() % d] = 1.0f + (rng() % 100) / 10.0f;
        }
    }
    return x;
}

void check_distortions(size_t d, RotationType rt) {
    std::vector<std::pair<std::string, std::vector<float>>> inputs;
    // fewer vectors at large d: each one averages d coordinates already
    size_t n = d > 256 ? 400 : 1000;
    inputs.emplace_back("random unit", tqtest::random_unit(n, d, 123));
    inputs.emplace_back("basis e_i", basis_vectors(d));
    inputs.emplace_back("sparse", sparse_vectors(n, d, 3, 7));
    size_t ns, ds;
    std::vector<float> sift = tqtest::load_bigann10k(ns, ds);
    if (ds == d) {
        inputs.emplace_back("SIFT", sift);
    }
    // the theory is an expectation over the rotation: average a few where
    // making them is cheap
    std::vector<uint64_t> seeds = {1234};
    if (d <= 256) {
        seeds = {1234, 1, 2};
    }
    for (int b = 1; b <= 4; b++) {
        const TurboQuantizer& tq = get_tq(d, TQVariant::MSE, b, false, rt);
        std::vector<TurboQuantizer> tqs;
        for (uint64_t seed : seeds) {
            tqs.emplace_back(
                    d, TQVariant::MSE, b, false, rt, QJLType::GAUSSIAN, seed);
        }
        double ref = theory_distortion(tq);
        for (auto& in : inputs) {
            size_t n = in.second.size() / d;
            double dist = 0;
            for (auto& t : tqs) {
                dist += relative_distortion(t, in.second.data(), n) /
                        tqs.size();
            }
            EXPECT_NEAR(dist, ref, 0.03 * ref)
                    << in.first << " d=" << d << " b=" << b
                    << " rotation=" << (int)rt;
        }
    }
}

} // namespace

TEST(Codec, DistortionD128Dense) {
    check_distortions(128, RotationType::DENSE);
}

TEST(Codec, DistortionD128Hadamard) {
    check_distortions(128, RotationType::HADAMARD);
}

TEST(Codec, DistortionD1536Dense) {
    check_distortions(1536, RotationType::DENSE);
}

TEST(Codec, DistortionD1536Hadamard) {
    check_distortions(1536, RotationType::HADAMARD);
}

TEST(Codec, DistortionNonPowerOf2Hadamard) {
    // 784 = Fashion-MNIST: two overlapping Hadamard blocks of 512
    for (int b = 1; b <= 4; b += 3) {
        const TurboQuantizer& tq =
                get_tq(784, TQVariant::MSE, b, false, RotationType::HADAMARD);
        double ref = theory_distortion(tq);
        auto e = basis_vectors(784);
        EXPECT_NEAR(relative_distortion(tq, e.data(), 784), ref, 0.03 * ref);
        auto s = sparse_vectors(500, 784, 2, 3);
        EXPECT_NEAR(relative_distortion(tq, s.data(), 500), ref, 0.03 * ref);
    }
}

TEST(Codec, FractionalBitsAverage) {
    for (float bits : {1.5f, 2.5f, 3.5f}) {
        const TurboQuantizer& tq =
                get_tq(128, TQVariant::MSE, bits, false, RotationType::DENSE);
        EXPECT_EQ(tq.b_lo, (int)bits);
        EXPECT_EQ(tq.b_hi, (int)bits + 1);
        EXPECT_EQ(tq.n_hi, 64u);
        EXPECT_EQ(tq.mse_bytes, size_t(128 * bits / 8));
        auto x = tqtest::random_unit(1000, 128, 5);
        double ref = theory_distortion(tq);
        EXPECT_NEAR(relative_distortion(tq, x.data(), 1000), ref, 0.03 * ref);
        // strictly between the two integer widths
        double lo =
                get_tq(128, TQVariant::MSE, tq.b_hi, false, RotationType::DENSE)
                        .cb_lo->mse *
                128;
        double hi = tq.cb_lo->mse * 128;
        EXPECT_LT(ref, hi);
        EXPECT_GT(ref, lo);
    }
}

TEST(Codec, CodeSizeExact) {
    struct Case {
        size_t d;
        TQVariant v;
        float bits;
        bool deb;
        size_t expect;
    };
    const Case cases[] = {
            {1536, TQVariant::MSE, 4, false, 768 + 4},
            {1536, TQVariant::MSE, 4, true, 768 + 8},
            {128, TQVariant::MSE, 2.5, false, 40 + 4},
            {100, TQVariant::MSE, 3, false, 38 + 4}, // 300 bits -> 38 B
            {128, TQVariant::PROD, 3, false, 32 + 16 + 8},
            {128, TQVariant::PROD, 1, false, 0 + 16 + 8},
            {10, TQVariant::PROD, 2.5, false, 2 + 2 + 8}, // 15 bits, 10 bits
    };
    for (const Case& c : cases) {
        TurboQuantizer tq(c.d, c.v, c.bits, c.deb, RotationType::HADAMARD);
        EXPECT_EQ(tq.code_size, c.expect) << tq.layout_string();
    }
}

namespace {

struct IPStats {
    double slope = 0;
    double max_var = 0; // largest variance of the error among the rhos
};

/// estimates of <y, x> for unit x, y with <x, y> = rho
IPStats ip_regression(const TurboQuantizer& tq, size_t npairs) {
    const size_t d = tq.d;
    const double rhos[] = {0.3, 0.6, 0.9};
    double sxx = 0, sxy = 0, sx = 0, sy = 0;
    size_t cnt = 0;
    IPStats st;
    std::vector<float> buf(2 * d);
    for (double rho : rhos) {
        auto x = tqtest::random_unit(npairs, d, 1000 + rho * 10);
        auto z = tqtest::random_gaussian(npairs, d, 2000 + rho * 10);
        std::vector<float> y(npairs * d);
        for (size_t i = 0; i < npairs; i++) {
            // z orthogonal to x, unit; y = rho x + sqrt(1 - rho^2) z
            double p = 0, nz = 0;
            for (size_t j = 0; j < d; j++) {
                p += z[i * d + j] * x[i * d + j];
            }
            for (size_t j = 0; j < d; j++) {
                z[i * d + j] -= p * x[i * d + j];
                nz += z[i * d + j] * z[i * d + j];
            }
            for (size_t j = 0; j < d; j++) {
                y[i * d + j] = rho * x[i * d + j] + std::sqrt(1 - rho * rho) *
                                                            z[i * d + j] /
                                                            std::sqrt(nz);
            }
        }
        std::vector<uint8_t> codes(npairs * tq.code_size);
        tq.encode(npairs, x.data(), codes.data());
        TQQueries q;
        tq.prepare_queries(npairs, y.data(), false, q);
        double se = 0, se2 = 0;
        for (size_t i = 0; i < npairs; i++) {
            double est =
                    tq.score(q, i, codes.data() + i * tq.code_size, buf.data());
            double truth = 0;
            for (size_t j = 0; j < d; j++) {
                truth += (double)x[i * d + j] * y[i * d + j];
            }
            sxx += truth * truth;
            sxy += truth * est;
            sx += truth;
            sy += est;
            cnt++;
            se += est - truth;
            se2 += (est - truth) * (est - truth);
        }
        double var = se2 / npairs - (se / npairs) * (se / npairs);
        st.max_var = std::max(st.max_var, var);
    }
    st.slope = (sxy - sx * sy / cnt) / (sxx - sx * sx / cnt);
    return st;
}

/// the paper's bound on the inner-product error variance of TQprod at b
/// bits, for unit y: pi / (2 d) * D_mse(b - 1)
double prod_variance_bound(size_t d, int b) {
    double dmse = b == 1 ? 1.0 : get_lloyd_max_codebook(d, b - 1)->mse * d;
    return M_PI / (2 * d) * dmse;
}

} // namespace

TEST(Codec, InnerProductProdGaussianUnbiased) {
    for (int b = 1; b <= 4; b++) {
        const TurboQuantizer& tq =
                get_tq(128, TQVariant::PROD, b, false, RotationType::DENSE);
        IPStats st = ip_regression(tq, 2000);
        EXPECT_NEAR(st.slope, 1.0, 0.03) << "b=" << b;
        EXPECT_LE(st.max_var, 1.1 * prod_variance_bound(128, b)) << "b=" << b;
    }
}

TEST(Codec, InnerProductDebiasedMseUnbiased) {
    for (int b = 1; b <= 4; b++) {
        const TurboQuantizer& tq =
                get_tq(128, TQVariant::MSE, b, true, RotationType::DENSE);
        IPStats st = ip_regression(tq, 2000);
        EXPECT_NEAR(st.slope, 1.0, 0.03) << "b=" << b;
        // better than the paper's bound for TQprod at the same bits
        EXPECT_LE(st.max_var, 1.1 * prod_variance_bound(128, b)) << "b=" << b;
    }
}

TEST(Codec, InnerProductPlainMseShrinks) {
    // E <y, x_hat> = (1 - D) <y, x> by the centroid condition (2/pi at 1 bit)
    for (int b = 1; b <= 4; b++) {
        const TurboQuantizer& tq =
                get_tq(128, TQVariant::MSE, b, false, RotationType::DENSE);
        IPStats st = ip_regression(tq, 2000);
        double expect = 1 - theory_distortion(tq);
        EXPECT_NEAR(st.slope, expect, 0.03) << "b=" << b;
    }
}

TEST(Codec, InnerProductProdHadamardBias) {
    // The structured projection is not Gaussian: its bias is measured here
    // and documented in the README (|slope - 1| stays small).
    for (int b = 2; b <= 4; b++) {
        const TurboQuantizer& tq =
                get_tq(128,
                       TQVariant::PROD,
                       b,
                       false,
                       RotationType::HADAMARD,
                       QJLType::HADAMARD);
        IPStats st = ip_regression(tq, 2000);
        printf("PROD Hadamard-QJL b=%d: slope %.4f, variance %.3g (bound "
               "%.3g)\n",
               b,
               st.slope,
               st.max_var,
               prod_variance_bound(128, b));
        EXPECT_NEAR(st.slope, 1.0, 0.05) << "b=" << b;
        EXPECT_LE(st.max_var, 1.5 * prod_variance_bound(128, b)) << "b=" << b;
    }
}

TEST(Codec, DeterministicTablesAndCodes) {
    for (RotationType rt : {RotationType::DENSE, RotationType::HADAMARD}) {
        TurboQuantizer a(96, TQVariant::PROD, 3.5, false, rt);
        TurboQuantizer b(96, TQVariant::PROD, 3.5, false, rt);
        auto x = tqtest::random_gaussian(300, 96, 9);
        std::vector<uint8_t> ca(300 * a.code_size), cb(300 * b.code_size);
        a.encode(300, x.data(), ca.data());
        b.encode(300, x.data(), cb.data());
        EXPECT_EQ(ca, cb);
        TurboQuantizer c(
                96, TQVariant::PROD, 3.5, false, rt, QJLType::GAUSSIAN, 99);
        std::vector<uint8_t> cc(300 * c.code_size);
        c.encode(300, x.data(), cc.data());
        EXPECT_NE(ca, cc); // another seed, another rotation
    }
}

TEST(Codec, RotationsAreOrthogonal) {
    for (size_t d : {2, 3, 64, 100, 384}) {
        for (RotationType rt : {RotationType::DENSE, RotationType::HADAMARD}) {
            auto rot = make_rotation(rt, d, 42);
            auto x = tqtest::random_gaussian(20, d, 1);
            std::vector<float> y(20 * d), z(20 * d);
            rot->apply(20, x.data(), y.data());
            rot->apply_transpose(20, y.data(), z.data());
            for (size_t i = 0; i < 20; i++) {
                double nx = 0, ny = 0;
                for (size_t j = 0; j < d; j++) {
                    nx += x[i * d + j] * x[i * d + j];
                    ny += y[i * d + j] * y[i * d + j];
                    EXPECT_NEAR(z[i * d + j], x[i * d + j], 1e-4);
                }
                EXPECT_NEAR(ny, nx, 1e-4 * nx);
            }
        }
    }
}

// AUTO: the dense rotation below d = 128, the Hadamard rounds from there
// on; an index keeps what it was built with
TEST(Codec, AutoRotationByDimension) {
    EXPECT_EQ(
            resolve_rotation_type(RotationType::AUTO, 2), RotationType::DENSE);
    EXPECT_EQ(
            resolve_rotation_type(RotationType::AUTO, 127),
            RotationType::DENSE);
    EXPECT_EQ(
            resolve_rotation_type(RotationType::AUTO, 128),
            RotationType::HADAMARD);
    EXPECT_EQ(
            resolve_rotation_type(RotationType::DENSE, 1536),
            RotationType::DENSE);
    TurboQuantizer small(64, TQVariant::MSE, 4), large(128, TQVariant::MSE, 4);
    EXPECT_EQ(small.rotation->type(), RotationType::DENSE);
    EXPECT_EQ(large.rotation->type(), RotationType::HADAMARD);
    EXPECT_EQ(large.rotation_type, RotationType::HADAMARD);
}

TEST(Codec, AutoQJLByDimension) {
    // a Gaussian S of d x d floats: 1 GB and O(d^2) a vector at d = 16384
    EXPECT_EQ(resolve_qjl_type(QJLType::AUTO, 4096), QJLType::GAUSSIAN);
    EXPECT_EQ(resolve_qjl_type(QJLType::AUTO, 4097), QJLType::HADAMARD);
    EXPECT_EQ(resolve_qjl_type(QJLType::GAUSSIAN, 8192), QJLType::GAUSSIAN);
    TurboQuantizer small(64, TQVariant::PROD, 3);
    TurboQuantizer large(8192, TQVariant::PROD, 3);
    EXPECT_EQ(small.qjl_type, QJLType::GAUSSIAN);
    EXPECT_EQ(small.qjl->gaussian.size(), 64u * 64);
    EXPECT_EQ(large.qjl_type, QJLType::HADAMARD);
    EXPECT_TRUE(large.qjl->gaussian.empty());
    EXPECT_TRUE(large.qjl->had != nullptr);
    // TQmse has no projection: AUTO stays GAUSSIAN (as its files of earlier
    // versions say), and the type does not keep its codes from merging
    TurboQuantizer mse(8192, TQVariant::MSE, 3);
    EXPECT_EQ(mse.qjl_type, QJLType::GAUSSIAN);
    TurboQuantizer mse_h(
            8192,
            TQVariant::MSE,
            3,
            false,
            RotationType::AUTO,
            QJLType::HADAMARD);
    EXPECT_TRUE(mse.same_codes_as(mse_h));
    TurboQuantizer prod_g(
            64,
            TQVariant::PROD,
            3,
            false,
            RotationType::AUTO,
            QJLType::HADAMARD);
    EXPECT_FALSE(small.same_codes_as(prod_g));
}

TEST(Codec, BitPackingRoundTrip) {
    std::mt19937 rng(3);
    for (int w = 0; w <= 8; w++) {
        std::vector<uint32_t> v(333);
        for (auto& e : v) {
            e = w ? rng() & ((1u << w) - 1) : 0;
        }
        std::vector<uint8_t> buf((333 * w + 7) / 8 + 1, 0);
        for (size_t i = 0; i < v.size(); i++) {
            put_bits(buf.data(), i * w, v[i], w);
        }
        for (size_t i = 0; i < v.size(); i++) {
            ASSERT_EQ(get_bits(buf.data(), i * w, w), v[i]) << w;
        }
    }
}

TEST(Codec, ZeroVectorAndCentering) {
    TurboQuantizer tq(32, TQVariant::MSE, 4, true, RotationType::DENSE);
    std::vector<float> zero(32, 0), out(32);
    std::vector<uint8_t> code(tq.code_size);
    tq.encode(1, zero.data(), code.data());
    tq.decode(1, code.data(), out.data());
    for (float v : out) {
        EXPECT_EQ(v, 0.0f);
    }
    // with a mean, the mean itself decodes exactly
    tq.mean.assign(32, 0.5f);
    std::vector<float> m(32, 0.5f);
    tq.encode(1, m.data(), code.data());
    tq.decode(1, code.data(), out.data());
    for (float v : out) {
        EXPECT_EQ(v, 0.5f);
    }
}

TEST(Codec, BadParameters) {
    using faiss::FaissException;
    EXPECT_THROW(TurboQuantizer(1, TQVariant::MSE, 4), FaissException);
    EXPECT_THROW(TurboQuantizer(0, TQVariant::MSE, 4), FaissException);
    EXPECT_THROW(TurboQuantizer(16, TQVariant::MSE, 0), FaissException);
    EXPECT_THROW(TurboQuantizer(16, TQVariant::MSE, 9), FaissException);
    EXPECT_THROW(TurboQuantizer(16, TQVariant::MSE, 2.55f), FaissException);
    EXPECT_THROW(TurboQuantizer(16, TQVariant::MSE, NAN), FaissException);
    EXPECT_THROW(TurboQuantizer(16, TQVariant::PROD, 3, true), FaissException);
    TurboQuantizer tq(16, TQVariant::MSE, 4);
    std::vector<float> x(32, 1.0f);
    x[20] = NAN;
    std::vector<uint8_t> codes(2 * tq.code_size);
    EXPECT_THROW(tq.encode(2, x.data(), codes.data()), FaissException);
    x[20] = INFINITY;
    EXPECT_THROW(tq.encode(2, x.data(), codes.data()), FaissException);
}

// encode checks its input batch by batch: a NaN in a later batch is still
// refused, named by its row in the caller's input, and an add through the
// index leaves it unchanged
TEST(Codec, NonFiniteInLaterBatchNamesItsRow) {
    const size_t d = 64, n = 3000, bad_row = 2500;
    IndexTurboQuant idx(d, 4);
    auto x = tqtest::random_unit(n, d, 9);
    x[bad_row * d + 17] = NAN;
    std::vector<uint8_t> codes(n * idx.code_size);
    tqtest::throws_with(
            [&] { idx.tq.encode(n, x.data(), codes.data()); },
            "vector 2500 has a NaN or Inf at dimension 17");
    EXPECT_THROW(idx.add(n, x.data()), faiss::FaissException);
    EXPECT_EQ(idx.ntotal, 0);
    EXPECT_EQ(idx.codes.size(), 0u);
}

// finite input whose norm overflows float would store an Inf norm: it is
// refused by name, as is an overflow of the difference to the mean
TEST(Codec, VectorTooLongForFloatIsRefused) {
    const size_t d = 32, n = 40, bad_row = 37;
    auto x = tqtest::random_unit(n, d, 4);
    for (size_t j = 0; j < d; j++) {
        x[bad_row * d + j] = 3e38f;
    }
    for (bool centered : {false, true}) {
        TurboQuantizer tq(d, TQVariant::MSE, 4, true);
        if (centered) { // mean[0] = -2e38: 3e38 - mean overflows
            std::vector<float> xm(2 * d, 0.0f);
            xm[0] = xm[d] = -2e38f;
            tq.train_mean(2, xm.data());
            for (size_t j = 0; j < d; j++) {
                x[bad_row * d + j] = j == 0 ? 3e38f : 0.5f;
            }
        }
        std::vector<uint8_t> codes(n * tq.code_size);
        tqtest::throws_with(
                [&] { tq.encode(n, x.data(), codes.data()); },
                "vector 37 is too long for float");
    }
}

// two entries of 2.4e38 (norm 3.39e38, just below float's limit) overflow
// in the rotation when a butterfly adds them with the same sign: whatever
// the positions and rotation, encode either refuses the vector by name or
// stores finite floats, never a code holding an Inf
TEST(Codec, OverflowInsideTheRotationIsRefused) {
    const size_t d = 64;
    size_t refused = 0, stored = 0, refused_plain = 0;
    for (auto rt : {RotationType::HADAMARD, RotationType::DENSE}) {
        for (bool debiased : {false, true}) {
            // plain MSE stores the norm only: its refusals are the rotation's
            TurboQuantizer tq(d, TQVariant::MSE, 4, debiased, rt);
            std::vector<uint8_t> code(tq.code_size);
            for (size_t j1 = 0; j1 < 8; j1++) {
                for (size_t j2 = j1 + 1; j2 < d; j2 += 7) {
                    std::vector<float> x(d, 0.0f);
                    x[j1] = x[j2] = 2.4e38f;
                    try {
                        tq.encode(1, x.data(), code.data());
                    } catch (const faiss::FaissException& e) {
                        EXPECT_NE(
                                std::string(e.what()).find(
                                        "too long for float"),
                                std::string::npos)
                                << e.what();
                        refused++;
                        refused_plain += !debiased;
                        continue;
                    }
                    EXPECT_NO_THROW(tq.check_codes(1, code.data(), "test"));
                    stored++;
                }
            }
        }
    }
    EXPECT_GT(refused_plain, 0u); // the cases happen, and are caught
    EXPECT_GT(refused, refused_plain);
    EXPECT_GT(stored, 0u);
}

// a vector whose norm is subnormal (below 1.2e-38; here 2^-130 = 7.3e-40)
// has 1 / norm past float's limit: encode divides by the norm instead, so
// it keeps its direction (before: every coordinate inf or NaN, plain MSE
// stored noise, debiased MSE and PROD refused the vector as too long). Its
// decode, scaled back by 2^130, is as close to x as a normal vector's
TEST(Codec, SubnormalNormKeepsItsDirection) {
    const size_t d = 64, n = 50;
    const float tiny = std::ldexp(1.0f, -130);
    auto x = tqtest::random_unit(n, d, 21);
    std::vector<float> xs(n * d);
    for (size_t i = 0; i < n * d; i++) {
        xs[i] = x[i] * tiny; // subnormal: rounded to multiples of 2^-149
    }
    struct Shape {
        TQVariant v;
        float bits;
        bool debiased;
    };
    for (auto rt : {RotationType::HADAMARD, RotationType::DENSE}) {
        for (Shape sh :
             {Shape{TQVariant::MSE, 4, false},
              Shape{TQVariant::MSE, 2, true},
              Shape{TQVariant::PROD, 3, false}}) {
            TurboQuantizer tq(d, sh.v, sh.bits, sh.debiased, rt);
            std::vector<uint8_t> c(n * tq.code_size), cs(n * tq.code_size);
            std::vector<float> r(n * d), rs(n * d);
            tq.encode(n, x.data(), c.data());
            tq.encode(n, xs.data(), cs.data());
            tq.decode(n, c.data(), r.data());
            tq.decode(n, cs.data(), rs.data());
            double err = 0, err_s = 0;
            for (size_t i = 0; i < n * d; i++) {
                double e = r[i] - x[i], es = rs[i] / tiny - x[i];
                err += e * e;
                err_s += es * es;
            }
            EXPECT_LT(err_s, 1.05 * err) << (int)rt << " " << sh.bits;
        }
    }
}

/*************************************************************
 * encode's fast paths against a straightforward encoding
 *************************************************************/

namespace {

/// R x by the rotation's definition, one operation at a time
std::vector<float> reference_rotate(const Rotation& rot, const float* x) {
    size_t d = rot.d;
    std::vector<float> y(x, x + d), tmp(d);
    if (auto* dense = dynamic_cast<const DenseRotation*>(&rot)) {
        for (size_t r = 0; r < d; r++) {
            y[r] = tqtest::dot_lanes_definition(
                    dense->matrix.data() + r * d, x, d);
        }
        return y;
    }
    auto& h = dynamic_cast<const HadamardRotation&>(rot);
    for (int r = 0; r < h.nrounds; r++) {
        for (size_t i = 0; i < d; i++) {
            uint32_t k = h.perms[r * d + i];
            tmp[i] = y[k] * h.signs[r * d + k];
        }
        for (auto& b : h.blocks()) {
            fwht_inplace(tmp.data() + b.first, b.second);
            float scale = (float)(1.0 / std::sqrt((double)b.second));
            for (size_t i = 0; i < b.second; i++) {
                tmp[b.first + i] *= scale;
            }
        }
        y = tmp;
    }
    return y;
}

/// encode as TurboQuantizer.h describes it: per coordinate, put_bits
std::vector<uint8_t>
reference_encode(const TurboQuantizer& tq, size_t n, const float* x) {
    const size_t d = tq.d;
    const bool prod = tq.variant == TQVariant::PROD;
    std::vector<uint8_t> codes(n * tq.code_size, 0);
    for (size_t i = 0; i < n; i++) {
        uint8_t* code = codes.data() + i * tq.code_size;
        std::vector<float> xc(x + i * d, x + (i + 1) * d), r(d), s(d);
        for (size_t j = 0; j < d && !tq.mean.empty(); j++) {
            xc[j] -= tq.mean[j];
        }
        std::vector<float> u = reference_rotate(*tq.rotation, xc.data());
        float norm = (float)std::sqrt(canonical_dot(xc.data(), xc.data(), d));
        float inv = norm > 0 ? 1.0f / norm : 0.0f;
        size_t pos = 0;
        for (size_t j = 0; j < d; j++) {
            u[j] *= inv;
            const Codebook& cb = j < tq.n_hi ? *tq.cb_hi : *tq.cb_lo;
            uint32_t idx = quantize_coord(u[j], cb.thresholds.data(), cb.nbits);
            put_bits(code, pos, idx, cb.nbits);
            pos += cb.nbits;
            r[j] = prod ? u[j] - cb.centroids[idx] : cb.centroids[idx];
        }
        float aux = 0;
        if (prod) {
            aux = (float)std::sqrt(canonical_dot(r.data(), r.data(), d));
            const QJLProjection& q = *tq.qjl;
            if (q.type == QJLType::GAUSSIAN) {
                for (size_t k = 0; k < d; k++) {
                    s[k] = tqtest::dot_lanes_definition(
                            q.gaussian.data() + k * d, r.data(), d);
                }
            } else {
                s = reference_rotate(*q.had, r.data());
                for (auto& v : s) {
                    v *= std::sqrt((float)d);
                }
            }
            for (size_t k = 0; k < d; k++) {
                put_bits(code + tq.mse_bytes, k, s[k] > 0 ? 1 : 0, 1);
            }
        } else if (tq.debiased) {
            double uc = canonical_dot(u.data(), r.data(), d);
            aux = uc > 0 ? (float)((double)norm / uc) : 0.0f;
        }
        uint8_t* tail = code + tq.mse_bytes + tq.qjl_bytes;
        memcpy(tail, &norm, sizeof(float));
        if (tq.n_floats() == 2) {
            memcpy(tail + sizeof(float), &aux, sizeof(float));
        }
    }
    return codes;
}

void expect_reference_codes(TurboQuantizer& tq, bool centered, int seed) {
    const size_t d = tq.d, n = d > 256 ? 19 : 37; // n > 16: the parallel path
    auto x = tqtest::random_gaussian(n, d, seed);
    for (size_t j = 0; j < d; j++) {
        x[j] = 0;                     // a zero vector
        x[d + j] *= 1e-20f;           // tiny
        x[2 * d + j] = j % 3 ? 0 : 1; // sparse
    }
    auto m = tqtest::mixed_values(d, seed + 1);
    std::copy(m.begin(), m.end(), x.begin() + 3 * d);
    if (centered) {
        tq.train_mean(n, x.data());
    }
    std::vector<uint8_t> codes(n * tq.code_size);
    tq.encode(n, x.data(), codes.data());
    EXPECT_EQ(codes, reference_encode(tq, n, x.data())) << tq.layout_string();
}

} // namespace

TEST(Codec, EncodeKernelsKeepTheReferenceBits) {
    const FloatKernels* avx2 = float_kernels_avx2();
    for (size_t d : {1, 2, 7, 8, 9, 31, 64, 100, 128, 130, 1536}) {
        for (size_t nrows : {1, 3, 4, 16}) {
            for (size_t nx : {1, 2, 5}) {
                auto m = tqtest::mixed_values(nrows * d, (int)(d + nrows));
                auto x = tqtest::mixed_values(nx * d, (int)(d + 100 * nx));
                const size_t ldo = nrows + 3;
                std::vector<float> want(nx * ldo, -7), got = want;
                for (size_t i = 0; i < nx; i++) {
                    for (size_t r = 0; r < nrows; r++) {
                        want[i * ldo + r] = tqtest::dot_lanes_definition(
                                m.data() + r * d, x.data() + i * d, d);
                    }
                }
                dot_lanes_rows_block(
                        m.data(), nrows, x.data(), nx, d, got.data(), ldo);
                ASSERT_EQ(got, want) << d << " " << nrows << " " << nx;
                if (avx2) {
                    std::fill(got.begin(), got.end(), -7.0f);
                    avx2->dot_rows_block(
                            m.data(), nrows, x.data(), nx, d, got.data(), ldo);
                    ASSERT_EQ(got, want) << d << " " << nrows << " " << nx;
                }
            }
        }
        auto a = tqtest::mixed_values(d, (int)d),
             b = tqtest::mixed_values(d, 7 * (int)d);
        double want = canonical_dot(a.data(), b.data(), d);
        EXPECT_EQ(canonical_dot_fast(a.data(), b.data(), d), want) << d;
        EXPECT_EQ(
                canonical_dot_fast(a.data(), a.data(), d),
                canonical_dot(a.data(), a.data(), d))
                << d;
        if (avx2) {
            EXPECT_EQ(avx2->canonical_dot(a.data(), b.data(), d), want) << d;
            // a squared norm takes the one-conversion loop
            EXPECT_EQ(
                    avx2->canonical_dot(a.data(), a.data(), d),
                    canonical_dot(a.data(), a.data(), d))
                    << d;
        }
    }
    for (size_t p = 1; p <= 2048; p *= 2) {
        auto x = tqtest::mixed_values(p, (int)p), y = x;
        float scale = (float)(1.0 / std::sqrt((double)p));
        fwht_inplace(x.data(), p);
        for (auto& v : x) {
            v *= scale;
        }
        fwht_scaled_fast(y.data(), p, scale);
        EXPECT_EQ(x, y) << p;
        // with the next round's signs folded in: the same bits (memcmp:
        // the sign of a zero counts) as a separate pass of products
        std::vector<float> s(p), z = tqtest::mixed_values(p, (int)p);
        std::mt19937 rng(p);
        for (auto& v : s) {
            v = rng() & 1 ? 1.0f : -1.0f;
        }
        for (size_t i = 0; i < p; i++) {
            x[i] *= s[i];
        }
        fwht_scaled_fast(z.data(), p, scale, s.data());
        EXPECT_EQ(memcmp(x.data(), z.data(), p * sizeof(float)), 0) << p;
    }
}

namespace {

/// R^T y by the Hadamard rotation's definition, one operation at a time:
/// the rounds backwards, each the scaled transforms, the inverse
/// permutation, then the signs
std::vector<float>
reference_rotate_transpose(const HadamardRotation& h, const float* y) {
    const size_t d = h.d;
    std::vector<float> x(y, y + d), tmp(d);
    for (int r = h.nrounds - 1; r >= 0; r--) {
        for (auto& b : h.blocks()) {
            fwht_inplace(x.data() + b.first, b.second);
            float scale = (float)(1.0 / std::sqrt((double)b.second));
            for (size_t i = 0; i < b.second; i++) {
                x[b.first + i] *= scale;
            }
        }
        for (size_t i = 0; i < d; i++) {
            uint32_t k = h.perms[r * d + i];
            tmp[k] = x[i] * h.signs[r * d + k];
        }
        x = tmp;
    }
    return x;
}

} // namespace

// the Hadamard rounds in place (x = y) and out of place give the same bits
// as the rotation's definition, one vector at a time (3 vectors, and the
// rest of 20) and 8 interleaved (the first 16 of 20), at powers of 2 and
// at sums of blocks (100 = 64 + 32 + 4, 7 = 4 + 2 + 1, 1536 = 1024 + 512);
// no vectors at all changes nothing. The same for the transpose
TEST(Codec, HadamardInPlaceEqualsDefinition) {
    for (size_t d : {2, 7, 64, 100, 1536}) {
        HadamardRotation h(d, 11);
        for (size_t n : {0, 3, 20}) {
            auto x = tqtest::random_unit(n, d, (int)(d + n));
            std::vector<float> y(n * d), z = x;
            h.apply(n, x.data(), y.data());
            h.apply(n, z.data(), z.data());
            EXPECT_TRUE(
                    n == 0 || // memcmp wants pointers, even for 0 bytes
                    memcmp(y.data(), z.data(), y.size() * sizeof(float)) == 0)
                    << d << " " << n;
            for (size_t i = 0; i < n; i++) { // groups of 8 and the rest
                auto want = reference_rotate(h, x.data() + i * d);
                EXPECT_EQ(
                        memcmp(want.data(),
                               y.data() + i * d,
                               d * sizeof(float)),
                        0)
                        << d << " " << n << " " << i;
            }
            // the transpose, out of place and in place, from y
            std::vector<float> t(n * d), u = y;
            h.apply_transpose(n, y.data(), t.data());
            h.apply_transpose(n, u.data(), u.data());
            EXPECT_TRUE(
                    n == 0 ||
                    memcmp(t.data(), u.data(), t.size() * sizeof(float)) == 0)
                    << d << " " << n;
            for (size_t i = 0; i < n; i++) {
                auto want = reference_rotate_transpose(h, y.data() + i * d);
                EXPECT_EQ(
                        memcmp(want.data(),
                               t.data() + i * d,
                               d * sizeof(float)),
                        0)
                        << "transpose " << d << " " << n << " " << i;
            }
        }
    }
}

// pack_indices against put_bits index by index: every width, start bits
// 0..15 (byte-aligned and not) and lengths around the 8- and 16-index
// steps; the bytes past the last bit must stay zero
TEST(Codec, PackIndicesEqualsPutBits) {
    std::mt19937 rng(3);
    for (int nbits = 1; nbits <= 8; nbits++) {
        for (size_t pos = 0; pos < 16; pos++) {
            for (size_t n : {0, 1, 7, 8, 15, 16, 17, 31, 32, 33, 47, 100}) {
                std::vector<uint8_t> idx(n);
                for (auto& v : idx) {
                    v = (uint8_t)(rng() & ((1u << nbits) - 1));
                }
                size_t nbytes = (pos + n * nbits + 7) / 8 + 16;
                std::vector<uint8_t> want(nbytes, 0), got(nbytes, 0);
                for (size_t j = 0; j < n; j++) {
                    put_bits(want.data(), pos + j * nbits, idx[j], nbits);
                }
                size_t end =
                        pack_indices(idx.data(), n, nbits, got.data(), pos);
                EXPECT_EQ(end, pos + n * nbits);
                EXPECT_EQ(got, want)
                        << "nbits " << nbits << " pos " << pos << " n " << n;
            }
        }
    }
}

TEST(Codec, EncodeEqualsReferenceEncoding) {
    const float all_bits[] = {1, 2, 2.5f, 3, 3.5f, 4, 5, 6, 7, 8};
    const float few_bits[] = {2, 3.5f, 4, 8};
    int seed = 1;
    for (size_t d : {2, 7, 64, 128, 130, 1536}) {
        for (float bits : all_bits) {
            if (d == 1536 &&
                std::find(few_bits, few_bits + 4, bits) == few_bits + 4) {
                continue; // keeps the test short; the paths are the same
            }
            for (int v = 0; v < 3; v++) {
                TQVariant var = v == 2 ? TQVariant::PROD : TQVariant::MSE;
                if (var == TQVariant::PROD && bits < 2) {
                    continue;
                }
                for (bool centered : {false, true}) {
                    TurboQuantizer tq(d, var, bits, v == 1);
                    expect_reference_codes(tq, centered, seed++);
                }
            }
        }
    }
    // the other rotation / projection at small and non-power-of-2 d
    for (size_t d : {7, 130}) {
        TurboQuantizer had(
                d, TQVariant::MSE, 3.5f, true, RotationType::HADAMARD);
        expect_reference_codes(had, false, seed++);
        TurboQuantizer prod(
                d,
                TQVariant::PROD,
                3,
                false,
                RotationType::HADAMARD,
                QJLType::HADAMARD);
        expect_reference_codes(prod, true, seed++);
    }
    TurboQuantizer dense(
            1536, TQVariant::PROD, 2.5f, false, RotationType::DENSE);
    expect_reference_codes(dense, false, seed++);
}
