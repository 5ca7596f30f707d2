#include <faiss_turbo/impl/kernels.h>

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

} // namespace faiss_turbo
