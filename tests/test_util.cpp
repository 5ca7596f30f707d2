#include "test_util.h"

#include <algorithm>
#include <cmath>
#include <cstdio>
#include <cstdlib>
#include <numeric>
#include <set>

#include <faiss/impl/AuxIndexStructures.h>

#include <faiss_turbo/IndexTurboQuant.h>

namespace tqtest {

std::string case_name(const TQCase& c) {
    char buf[64];
    snprintf(
            buf,
            sizeof(buf),
            "d=%zd %s %g%s",
            c.d,
            c.v == faiss_turbo::TQVariant::PROD ? "prod" : "mse",
            c.bits,
            c.debiased ? " debiased" : "");
    return buf;
}

std::unique_ptr<faiss_turbo::IndexTurboQuant> make_case_index(
        const TQCase& c,
        faiss::MetricType m,
        bool centered,
        size_t nb,
        int seed) {
    auto idx = std::make_unique<faiss_turbo::IndexTurboQuant>(
            c.d, c.bits, c.v, m, centered, c.debiased);
    auto xb = random_gaussian(nb, c.d, seed);
    for (auto& x : xb) {
        x += 0.3f;
    }
    idx->train(nb, xb.data());
    idx->add(nb, xb.data());
    return idx;
}

std::vector<float> random_gaussian(size_t n, size_t d, uint64_t seed) {
    std::mt19937_64 rng(seed);
    std::normal_distribution<float> g;
    std::vector<float> x(n * d);
    for (auto& v : x) {
        v = g(rng);
    }
    return x;
}

void normalize_rows(std::vector<float>& x, size_t d) {
    size_t n = x.size() / d;
    for (size_t i = 0; i < n; i++) {
        double s = 0;
        for (size_t j = 0; j < d; j++) {
            s += (double)x[i * d + j] * x[i * d + j];
        }
        float inv = s > 0 ? 1.0 / std::sqrt(s) : 0;
        for (size_t j = 0; j < d; j++) {
            x[i * d + j] *= inv;
        }
    }
}

std::vector<float>
around_direction(size_t n, const std::vector<float>& common, uint64_t seed) {
    const size_t d = common.size();
    std::vector<float> x = random_gaussian(n, d, seed);
    for (size_t i = 0; i < n * d; i++) {
        x[i] = common[i % d] + 0.5f * x[i];
    }
    normalize_rows(x, d);
    return x;
}

std::vector<float> random_unit(size_t n, size_t d, uint64_t seed) {
    std::vector<float> x = random_gaussian(n, d, seed);
    normalize_rows(x, d);
    return x;
}

std::vector<float> load_bigann10k(size_t& n, size_t& d) {
    const char* env = getenv("FAISS_TURBO_DATA");
    std::string dir = env ? env : FAISS_TURBO_DATA_DIR;
    std::string fn = dir + "/bigann10k/bigann10k_base.u8bin";
    FILE* f = fopen(fn.c_str(), "rb");
    if (!f) {
        n = d = 0;
        return {};
    }
    int32_t hdr[2];
    if (fread(hdr, sizeof(hdr), 1, f) != 1) {
        fclose(f);
        n = d = 0;
        return {};
    }
    n = hdr[0];
    d = hdr[1];
    std::vector<uint8_t> raw(n * d);
    size_t got = fread(raw.data(), 1, raw.size(), f);
    fclose(f);
    if (got != raw.size()) {
        n = d = 0;
        return {};
    }
    return std::vector<float>(raw.begin(), raw.end());
}

void brute_force_knn(
        const float* xb,
        size_t nb,
        const float* xq,
        size_t nq,
        size_t d,
        size_t k,
        bool l2,
        std::vector<idx_t>& labels) {
    labels.resize(nq * k);
#pragma omp parallel for
    for (int64_t q = 0; q < (int64_t)nq; q++) {
        std::vector<std::pair<double, idx_t>> s(nb);
        for (size_t i = 0; i < nb; i++) {
            double acc = 0;
            for (size_t j = 0; j < d; j++) {
                double a = xq[q * d + j], b = xb[i * d + j];
                acc += l2 ? (a - b) * (a - b) : -a * b;
            }
            s[i] = {acc, (idx_t)i};
        }
        std::partial_sort(s.begin(), s.begin() + k, s.end());
        for (size_t j = 0; j < k; j++) {
            labels[q * k + j] = s[j].second;
        }
    }
}

double recall_at(
        const std::vector<idx_t>& res,
        const std::vector<idx_t>& gt,
        size_t nq,
        size_t k_res,
        size_t k_gt,
        size_t k) {
    double tot = 0;
    for (size_t q = 0; q < nq; q++) {
        std::set<idx_t> g(gt.begin() + q * k_gt, gt.begin() + q * k_gt + k);
        size_t hit = 0;
        for (size_t j = 0; j < k; j++) {
            hit += g.count(res[q * k_res + j]);
        }
        tot += double(hit) / k;
    }
    return tot / nq;
}

float dot_lanes_definition(const float* a, const float* b, size_t d) {
    float acc[8] = {0, 0, 0, 0, 0, 0, 0, 0};
    for (size_t i = 0; i < d; i++) {
        acc[i % 8] += a[i] * b[i];
    }
    return ((acc[0] + acc[4]) + (acc[1] + acc[5])) +
           ((acc[2] + acc[6]) + (acc[3] + acc[7]));
}

std::vector<float> mixed_values(size_t n, int seed) {
    std::mt19937 rng(seed);
    std::normal_distribution<float> g;
    std::vector<float> x(n);
    for (auto& v : x) {
        v = g(rng) * std::ldexp(1.0f, (int)(rng() % 24) - 12);
    }
    return x;
}

Result
search(const faiss::Index& index,
       const std::vector<float>& xq,
       size_t k,
       const faiss::SearchParameters* params) {
    size_t nq = xq.size() / index.d;
    Result r{std::vector<float>(nq * k), std::vector<idx_t>(nq * k)};
    index.search(nq, xq.data(), k, r.D.data(), r.I.data(), params);
    return r;
}

RangeResult range_search(
        const faiss::Index& index,
        const std::vector<float>& xq,
        float radius,
        const faiss::SearchParameters* params) {
    size_t nq = xq.size() / index.d;
    faiss::RangeSearchResult res(nq);
    index.range_search(nq, xq.data(), radius, &res, params);
    RangeResult r;
    r.lims.assign(res.lims, res.lims + nq + 1);
    r.D.assign(res.distances, res.distances + r.lims[nq]);
    r.I.assign(res.labels, res.labels + r.lims[nq]);
    return r;
}

} // namespace tqtest
