#include <faiss_turbo/impl/kernels.h>

namespace faiss_turbo {

float dot_lanes(const float* a, const float* b, size_t d) {
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

void axpy(size_t d, float alpha, const float* x, float* y) {
    for (size_t i = 0; i < d; i++) {
        y[i] += alpha * x[i];
    }
}

} // namespace faiss_turbo
