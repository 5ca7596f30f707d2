#include <faiss_turbo/impl/codebook.h>

#include <algorithm>
#include <cmath>
#include <map>
#include <mutex>

#include <faiss/impl/FaissAssert.h>

namespace faiss_turbo {

namespace {

/// The law as a density constant on each cell of a fine grid, so that its
/// moments below any point are continuous in that point. (Rounding cell
/// boundaries to grid points made Lloyd's steps at 7-8 bits smaller than
/// the grid and stop far from the optimum.) With x = cos(t) the density
/// becomes sin(t)^(d-2) dt, smooth for every d >= 2 (d = 2 is the arcsine
/// law, singular in x). Cells where the density is below e^-100 of its
/// peak are dropped, which concentrates the grid for large d.
struct DiscreteLaw {
    std::vector<double> e;  // n + 1 cell edges, ascending
    std::vector<double> w;  // n cell masses
    std::vector<double> s0; // prefix sums over whole cells of the mass
    std::vector<double> s1; // ... of the first moment
    std::vector<double> s2; // ... of the second moment

    explicit DiscreteLaw(size_t d) {
        const size_t n = 1 << 17;
        double tmin = 0;
        if (d > 2) {
            double smin = std::exp(-100.0 / (d - 2));
            tmin = std::asin(std::min(smin, 1.0));
        }
        double tmax = M_PI - tmin;
        double dt = (tmax - tmin) / n;
        e.resize(n + 1);
        w.resize(n);
        for (size_t i = 0; i <= n; i++) {
            e[i] = std::cos(tmax - i * dt); // ascending x: t runs down
        }
        for (size_t i = 0; i < n; i++) {
            double t = tmax - (i + 0.5) * dt;
            w[i] = d == 2 ? 1.0 : std::exp((d - 2) * std::log(std::sin(t)));
        }
        s0.assign(n + 1, 0);
        s1.assign(n + 1, 0);
        s2.assign(n + 1, 0);
        for (size_t i = 0; i < n; i++) {
            double a = e[i], b = e[i + 1];
            s0[i + 1] = s0[i] + w[i];
            s1[i + 1] = s1[i] + w[i] * (a + b) / 2;
            s2[i + 1] = s2[i] + w[i] * (a * a + a * b + b * b) / 3;
        }
    }

    double total() const {
        return s0.back();
    }

    /// mass, first and second moment of the law below v (all of it for v
    /// past the last edge)
    void below(double v, double m[3]) const {
        size_t n = w.size();
        size_t i = std::upper_bound(e.begin(), e.end(), v) - e.begin();
        if (i == 0 || i > n) {
            size_t j = i == 0 ? 0 : n;
            m[0] = s0[j], m[1] = s1[j], m[2] = s2[j];
            return;
        }
        i--; // e[i] <= v < e[i + 1]
        double a = e[i], f = w[i] / (e[i + 1] - a);
        m[0] = s0[i] + f * (v - a);
        m[1] = s1[i] + f * (v * v - a * a) / 2;
        m[2] = s2[i] + f * (v * v * v - a * a * a) / 3;
    }

    /// the point below which the measure with density (law density)^(1/3)
    /// holds fraction q of its total: Panter and Dite's high-resolution
    /// optimum puts the Lloyd-Max boundaries at these points
    std::vector<double> companding_points(size_t k) const {
        size_t n = w.size();
        std::vector<double> g(n + 1, 0);
        for (size_t i = 0; i < n; i++) {
            double h = e[i + 1] - e[i];
            g[i + 1] = g[i] + (h > 0 ? std::cbrt(w[i] / h) * h : 0);
        }
        std::vector<double> pts(k - 1);
        for (size_t j = 1; j < k; j++) {
            double target = g[n] * j / k;
            size_t i = std::lower_bound(g.begin(), g.end(), target) - g.begin();
            i = std::min(std::max(i, size_t(1)), n) - 1; // g[i] < target
            double span = g[i + 1] - g[i];
            double f = span > 0 ? (target - g[i]) / span : 0;
            pts[j - 1] = e[i] + f * (e[i + 1] - e[i]);
        }
        return pts;
    }
};

/// f(j, mass, first moment, second moment) of each of the k cells cut at
/// the k - 1 ascending boundaries t
template <class T, class F>
void for_each_cell(const DiscreteLaw& law, const T* t, size_t k, F f) {
    double lo[3] = {0, 0, 0}, hi[3];
    for (size_t j = 0; j < k; j++) {
        law.below(j + 1 < k ? (double)t[j] : HUGE_VAL, hi);
        f(j, hi[0] - lo[0], hi[1] - lo[1], hi[2] - lo[2]);
        std::copy(hi, hi + 3, lo);
    }
}

/// c = the centroids of the cells cut at the boundaries t (k - 1
/// ascending); an empty cell keeps its centroid
void centroids_of(
        const DiscreteLaw& law,
        const std::vector<double>& t,
        std::vector<double>& c) {
    for_each_cell(
            law,
            t.data(),
            c.size(),
            [&](size_t j, double m0, double m1, double) {
                if (m0 > 0) {
                    c[j] = m1 / m0;
                }
            });
}

} // namespace

Codebook compute_lloyd_max_codebook(size_t d, int nbits) {
    FAISS_THROW_IF_NOT_FMT(d >= 2, "codebook needs d >= 2, got %zd", d);
    FAISS_THROW_IF_NOT_FMT(
            nbits >= 0 && nbits <= 8, "codebook nbits %d not in 0..8", nbits);
    DiscreteLaw law(d);
    const size_t k = size_t(1) << nbits;

    std::vector<double> c(k, 0.0);
    if (k > 1) {
        // start from the high-resolution optimum: at 7-8 bits cells of
        // equal mass start the outer centroids far from theirs
        std::vector<double> t = law.companding_points(k);
        centroids_of(law, t, c);
        // Lloyd iterations: the law is log-concave for d >= 3, so they
        // reach the unique optimum
        std::vector<double> prev(k);
        for (int iter = 0; iter < 20000; iter++) {
            for (size_t j = 1; j < k; j++) {
                t[j - 1] = 0.5 * (c[j - 1] + c[j]);
            }
            prev = c;
            centroids_of(law, t, c);
            double delta = 0;
            for (size_t j = 0; j < k; j++) {
                delta = std::max(delta, std::fabs(c[j] - prev[j]));
            }
            if (delta < 1e-13) {
                break;
            }
        }
    }
    // symmetric law: enforce exact symmetry of the codebook
    for (size_t j = 0; j < k / 2; j++) {
        double v = 0.5 * (c[k - 1 - j] - c[j]);
        c[j] = -v;
        c[k - 1 - j] = v;
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
    // distortion of the float codebook
    double err = 0;
    for_each_cell(
            law,
            cb.thresholds.data(),
            k,
            [&](size_t j, double m0, double m1, double m2) {
                double cj = cb.centroids[j];
                err += m2 - 2 * cj * m1 + cj * cj * m0;
            });
    cb.mse = err / law.total();
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
