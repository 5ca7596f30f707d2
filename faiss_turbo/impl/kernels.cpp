#include <faiss_turbo/impl/kernels.h>

#include <cmath>
#include <cstdint>
#include <cstring>
#include <limits>

#include <faiss/impl/FaissAssert.h>

#include <faiss_turbo/impl/simd/float_kernels.h>

namespace faiss_turbo {

namespace {

float dot_lanes_ref(const float* a, const float* b, size_t d) {
    float acc[8] = {0, 0, 0, 0, 0, 0, 0, 0};
    size_t i = 0;
    for (; i + 8 <= d; i += 8) {
        for (int l = 0; l < 8; l++) {
            acc[l] += a[i + l] * b[i + l];
        }
    }
    for (; i < d; i++) {
        acc[i % 8] += a[i] * b[i];
    }
    return ((acc[0] + acc[4]) + (acc[1] + acc[5])) +
           ((acc[2] + acc[6]) + (acc[3] + acc[7]));
}

using DotFn = float (*)(const float*, const float*, size_t);

/// the SIMD version where the CPU has one: the same roundings, same bits
DotFn pick_dot_lanes() {
    const FloatKernels* k = float_kernels_simd();
    return k ? k->dot_lanes : dot_lanes_ref;
}

} // namespace

float dot_lanes(const float* a, const float* b, size_t d) {
    static const DotFn fn = pick_dot_lanes();
    return fn(a, b, d);
}

void axpy(size_t d, float alpha, const float* x, float* y) {
    for (size_t i = 0; i < d; i++) {
        y[i] += alpha * x[i];
    }
}

float metric_between(const float* a, const float* b, size_t d, bool l2) {
    double s = 0;
    for (size_t t = 0; t < d; t++) {
        s += l2 ? (double)(a[t] - b[t]) * (a[t] - b[t]) : (double)a[t] * b[t];
    }
    return (float)s;
}

bool all_finite(const float* x, size_t n) {
    uint32_t bad = 0;
    for (size_t i = 0; i < n; i++) {
        uint32_t b; // memcpy, not a cast: no aliasing rule is bent
        memcpy(&b, x + i, sizeof(b));
        bad |= (b & 0x7f800000u) == 0x7f800000u; // exponent all ones
    }
    return !bad;
}

void check_finite(
        size_t n,
        size_t d,
        const float* x,
        const char* what,
        const char* row,
        size_t first) {
    if (all_finite(x, n * d)) {
        return;
    }
    for (size_t i = 0; i < n * d; i++) {
        FAISS_THROW_IF_NOT_FMT(
                std::isfinite(x[i]),
                "%s: %s %zd has a NaN or Inf at dimension %zd",
                what,
                row,
                first + i / d,
                i % d);
    }
}

void check_radius(float radius, const char* what) {
    FAISS_THROW_IF_NOT_FMT(!std::isnan(radius), "%s: radius is NaN", what);
}

namespace {

/// check_l2_norms / check_ip_norms, `use` naming the scores
void check_norms(
        size_t n,
        size_t d,
        const float* x,
        const char* what,
        const char* row,
        const char* use) {
    for (size_t i = 0; i < n; i++) {
        double s = 0;
        for (size_t j = 0; j < d; j++) {
            s += (double)x[i * d + j] * x[i * d + j];
        }
        if (!std::isfinite(s)) { // a NaN or Inf: named by its dimension
            check_finite(1, d, x + i * d, what, row, i);
        }
        FAISS_THROW_IF_NOT_FMT(
                s <= std::numeric_limits<float>::max(),
                "%s: %s %zd is too long for %s in float (squared norm %g)",
                what,
                row,
                i,
                use,
                s);
    }
}

} // namespace

void check_l2_norms(
        size_t n, size_t d, const float* x, const char* what, const char* row) {
    check_norms(n, d, x, what, row, "L2 distances");
}

void check_ip_norms(
        size_t n, size_t d, const float* x, const char* what, const char* row) {
    check_norms(n, d, x, what, row, "inner products");
}

} // namespace faiss_turbo
