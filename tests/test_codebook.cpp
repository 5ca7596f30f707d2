/** Lloyd-Max codebooks against the exact values of the Beta law. */
#include <gtest/gtest.h>

#include <algorithm>
#include <cmath>

#include <faiss/impl/FaissException.h>
#include <faiss_turbo/impl/codebook.h>

using namespace faiss_turbo;

namespace {

// d * per-coordinate MSE, the distortion of a unit vector (the paper's
// Table / the reference values)
struct Ref {
    size_t d;
    int b;
    double total;
};

const Ref kRefs[] = {
        {128, 1, 0.3609},
        {128, 2, 0.1160},
        {128, 3, 0.0340},
        {128, 4, 0.00931},
        {1536, 1, 0.3632},
        {1536, 2, 0.1174},
        {1536, 3, 0.0345},
        {1536, 4, 0.00949},
};

} // namespace

TEST(Codebook, MatchesExactLloydMaxDistortion) {
    for (const Ref& r : kRefs) {
        auto cb = get_lloyd_max_codebook(r.d, r.b);
        EXPECT_NEAR(cb->mse * r.d, r.total, 0.002 * r.total)
                << "d=" << r.d << " b=" << r.b;
    }
}

TEST(Codebook, TendsToGaussianLimit) {
    // Max's Gaussian Lloyd-Max distortions at 1..4 bits
    const double gauss[] = {0.3634, 0.1175, 0.03454, 0.009497};
    for (int b = 1; b <= 4; b++) {
        auto cb = compute_lloyd_max_codebook(1 << 16, b);
        EXPECT_NEAR(cb.mse * (1 << 16), gauss[b - 1], 0.003 * gauss[b - 1]);
    }
}

TEST(Codebook, SymmetricSortedAndCentroidCondition) {
    for (size_t d : {2, 3, 16, 128, 784}) {
        for (int b = 0; b <= 8; b++) {
            Codebook cb = compute_lloyd_max_codebook(d, b);
            ASSERT_NO_THROW(cb.check());
            size_t k = cb.k();
            ASSERT_EQ(k, size_t(1) << b);
            for (size_t j = 0; j < k; j++) {
                EXPECT_FLOAT_EQ(cb.centroids[j], -cb.centroids[k - 1 - j]);
                EXPECT_LE(std::fabs(cb.centroids[j]), 1.0f);
            }
            // distortion strictly decreases with bits, and 0 bits = variance
            if (b == 0) {
                EXPECT_NEAR(cb.mse * d, 1.0, 1e-6);
            }
        }
    }
}

TEST(Codebook, DistortionDecreasesWithBits) {
    double prev = get_lloyd_max_codebook(300, 0)->mse * 300;
    for (int b = 1; b <= 8; b++) {
        double m = get_lloyd_max_codebook(300, b)->mse * 300;
        EXPECT_LT(m, prev * 0.37) << b; // at least ~4.3 dB per bit
        prev = m;
    }
}

namespace {

/// mass and first moment of the law (1 - x^2)^((d - 3) / 2) on [a, b],
/// unnormalized, by Simpson's rule: an integration independent of the
/// library's grid. Beyond 12 standard deviations the mass is below e^-70.
void cell_moments(size_t d, double a, double b, double& m0, double& m1) {
    double lim = std::min(1.0, 12 / std::sqrt(double(d)));
    a = std::max(a, -lim), b = std::min(b, lim);
    m0 = m1 = 0;
    if (b <= a) {
        return;
    }
    const int n = 4000; // even
    double h = (b - a) / n;
    for (int i = 0; i <= n; i++) {
        double x = a + i * h;
        double f = std::exp((d - 3) / 2.0 * std::log1p(-x * x));
        double wt = (i == 0 || i == n) ? 1 : (i % 2 ? 4 : 2);
        m0 += wt * f * h / 3;
        m1 += wt * f * x * h / 3;
    }
}

} // namespace

TEST(Codebook, CentroidConditionAtEveryWidth) {
    // Lloyd-Max's conditions: thresholds halfway between centroids, and
    // each centroid the mean of its cell. The law is log-concave for
    // d >= 3, so together they single out the optimum; at 7-8 bits Lloyd's
    // steps are tiny near it, so a small residual of the centroid
    // condition can hide a large gap (HighBitsNearPanterDite).
    for (size_t d : {3, 16, 128, 1536, 65536}) {
        double sd = 1 / std::sqrt(double(d));
        for (int b = 1; b <= 8; b++) {
            Codebook cb = compute_lloyd_max_codebook(d, b);
            size_t k = cb.k();
            double worst = 0;
            for (size_t j = 0; j < k; j++) {
                double lo = j == 0 ? -1 : cb.thresholds[j - 1];
                double hi = j + 1 == k ? 1 : cb.thresholds[j];
                double m0, m1;
                cell_moments(d, lo, hi, m0, m1);
                worst = std::max(worst, std::fabs(m1 / m0 - cb.centroids[j]));
            }
            // float centroids are good to ~3e-7 sd; the grid-rounded
            // steps left 1e-4 sd
            EXPECT_LT(worst, 1e-6 * sd) << "d=" << d << " b=" << b;
        }
    }
}

TEST(Codebook, HighBitsNearPanterDite) {
    // in high d the law tends to N(0, 1/d); Gaussian Lloyd-Max distortion
    // approaches sqrt(3) pi / 2 4^-b from below
    for (int b = 5; b <= 8; b++) {
        double pd = std::sqrt(3.0) * M_PI / 2 * std::pow(4.0, -b);
        double m = compute_lloyd_max_codebook(65536, b).mse * 65536;
        EXPECT_LT(m, pd) << b;
        EXPECT_GT(m, 0.9 * pd) << b;
    }
}

TEST(Codebook, ArcsineLawForD2) {
    // d = 2: x = cos(theta), theta uniform; 1 bit gives centroids +-2/pi
    Codebook cb = compute_lloyd_max_codebook(2, 1);
    EXPECT_NEAR(cb.centroids[1], 2 / M_PI, 1e-5);
}

TEST(Codebook, BadParameters) {
    EXPECT_THROW(compute_lloyd_max_codebook(1, 2), faiss::FaissException);
    EXPECT_THROW(compute_lloyd_max_codebook(16, 9), faiss::FaissException);
    EXPECT_THROW(compute_lloyd_max_codebook(16, -1), faiss::FaissException);
}
