#include <faiss_turbo/impl/codebook.h>

#include <algorithm>
#include <cmath>
#include <map>
#include <mutex>

#include <faiss/impl/FaissAssert.h>

namespace faiss_turbo {

namespace {

/// The law discretized on a fine grid. With x = cos(t) the density becomes
/// sin(t)^(d-2) dt, smooth for every d >= 2 (d = 2 is the arcsine law,
/// singular in x). Cells where the density is below e^-100 of its peak are
/// dropped, which concentrates the grid for large d.
struct DiscreteLaw {
    std::vector<double> x;  // ascending
    std::vector<double> s0; // prefix sums of the weights, size n + 1
    std::vector<double> s1; // ... of w * x
    std::vector<double> s2; // ... of w * x^2

    explicit DiscreteLaw(size_t d) {
        const size_t n = 1 << 17;
        double tmin = 0;
        if (d > 2) {
            double smin = std::exp(-100.0 / (d - 2));
            tmin = std::asin(std::min(smin, 1.0));
        }
        double tmax = M_PI - tmin;
        double dt = (tmax - tmin) / n;
        x.resize(n);
        std::vector<double> w(n);
        for (size_t i = 0; i < n; i++) {
            // ascending x: t runs from tmax down to tmin
            double t = tmax - (i + 0.5) * dt;
            x[i] = std::cos(t);
            w[i] = d == 2 ? 1.0 : std::exp((d - 2) * std::log(std::sin(t)));
        }
        s0.assign(n + 1, 0);
        s1.assign(n + 1, 0);
        s2.assign(n + 1, 0);
        for (size_t i = 0; i < n; i++) {
            s0[i + 1] = s0[i] + w[i];
            s1[i + 1] = s1[i] + w[i] * x[i];
            s2[i + 1] = s2[i] + w[i] * x[i] * x[i];
        }
    }

    /// first grid index with x > v
    size_t upper(double v) const {
        return std::upper_bound(x.begin(), x.end(), v) - x.begin();
    }

    /// grid index where the cumulative mass reaches fraction q
    size_t quantile(double q) const {
        double target = q * s0.back();
        return std::lower_bound(s0.begin(), s0.end(), target) - s0.begin();
    }
};

} // namespace

Codebook compute_lloyd_max_codebook(size_t d, int nbits) {
    FAISS_THROW_IF_NOT_FMT(d >= 2, "codebook needs d >= 2, got %zd", d);
    FAISS_THROW_IF_NOT_FMT(
            nbits >= 0 && nbits <= 8, "codebook nbits %d not in 0..8", nbits);
    DiscreteLaw law(d);
    const size_t k = size_t(1) << nbits;
    const size_t n = law.x.size();

    // start from the centroids of equal-mass cells
    std::vector<size_t> bounds(k + 1);
    for (size_t j = 0; j <= k; j++) {
        bounds[j] = j == k ? n : law.quantile(double(j) / k);
    }
    std::vector<double> c(k);
    auto centroid_of = [&](size_t lo, size_t hi, double fallback) {
        double m = law.s0[hi] - law.s0[lo];
        return m > 0 ? (law.s1[hi] - law.s1[lo]) / m : fallback;
    };
    for (size_t j = 0; j < k; j++) {
        c[j] = centroid_of(bounds[j], bounds[j + 1], 0);
    }

    // Lloyd iterations: the law is log-concave for d >= 3, so they reach
    // the unique optimum.
    for (int iter = 0; iter < 20000; iter++) {
        for (size_t j = 1; j < k; j++) {
            bounds[j] = law.upper(0.5 * (c[j - 1] + c[j]));
        }
        double delta = 0;
        for (size_t j = 0; j < k; j++) {
            double cj = centroid_of(bounds[j], bounds[j + 1], c[j]);
            delta = std::max(delta, std::fabs(cj - c[j]));
            c[j] = cj;
        }
        if (delta < 1e-13) {
            break;
        }
    }
    // symmetric law: enforce exact symmetry of the codebook
    for (size_t j = 0; j < k / 2; j++) {
        double v = 0.5 * (c[k - 1 - j] - c[j]);
        c[j] = -v;
        c[k - 1 - j] = v;
    }
    if (k == 1) {
        c[0] = 0;
    }

    Codebook cb;
    cb.d = d;
    cb.nbits = nbits;
    cb.centroids.resize(k);
    cb.thresholds.resize(k - 1);
    for (size_t j = 0; j < k; j++) {
        cb.centroids[j] = (float)c[j];
    }
    for (size_t j = 0; j + 1 < k; j++) {
        cb.thresholds[j] = (float)(0.5 * (c[j] + c[j + 1]));
    }
    // distortion of the float codebook on the discretized law
    double err = 0;
    for (size_t j = 0; j < k; j++) {
        size_t lo = j == 0 ? 0 : law.upper(cb.thresholds[j - 1]);
        size_t hi = j + 1 == k ? n : law.upper(cb.thresholds[j]);
        double cj = cb.centroids[j];
        err += (law.s2[hi] - law.s2[lo]) - 2 * cj * (law.s1[hi] - law.s1[lo]) +
               cj * cj * (law.s0[hi] - law.s0[lo]);
    }
    cb.mse = err / law.s0[n];
    return cb;
}

std::shared_ptr<const Codebook> get_lloyd_max_codebook(size_t d, int nbits) {
    static std::mutex mutex;
    static std::map<std::pair<size_t, int>, std::shared_ptr<const Codebook>>
            cache;
    auto key = std::make_pair(d, nbits);
    {
        std::lock_guard<std::mutex> lock(mutex);
        auto it = cache.find(key);
        if (it != cache.end()) {
            return it->second;
        }
    }
    // compute outside the lock: two threads may both compute, and the
    // results are identical
    auto cb = std::make_shared<const Codebook>(
            compute_lloyd_max_codebook(d, nbits));
    std::lock_guard<std::mutex> lock(mutex);
    auto res = cache.emplace(key, cb);
    return res.first->second;
}

void Codebook::check() const {
    FAISS_THROW_IF_NOT_FMT(
            nbits >= 0 && nbits <= 8, "codebook: bad nbits %d", nbits);
    FAISS_THROW_IF_NOT_MSG(
            centroids.size() == (size_t(1) << nbits) &&
                    thresholds.size() == centroids.size() - 1,
            "codebook: sizes do not match nbits");
    for (size_t j = 0; j < centroids.size(); j++) {
        FAISS_THROW_IF_NOT_MSG(
                std::isfinite(centroids[j]), "codebook: non-finite centroid");
        if (j > 0) {
            FAISS_THROW_IF_NOT_MSG(
                    centroids[j - 1] <= thresholds[j - 1] &&
                            thresholds[j - 1] <= centroids[j],
                    "codebook: centroids and thresholds not sorted");
        }
    }
}

} // namespace faiss_turbo
