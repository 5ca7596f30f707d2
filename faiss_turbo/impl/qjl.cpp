#include <faiss_turbo/impl/qjl.h>

#include <cmath>

#include <faiss/impl/FaissAssert.h>

#include <faiss_turbo/impl/random.h>

namespace faiss_turbo {

QJLType resolve_qjl_type(QJLType t, size_t d) {
    if (t != QJLType::AUTO) {
        return t;
    }
    return d <= kQJLGaussianMaxDim ? QJLType::GAUSSIAN : QJLType::HADAMARD;
}

QJLProjection::QJLProjection(size_t d_in, QJLType t, uint64_t seed)
    : d(d_in), type(t) {
    FAISS_THROW_IF_NOT_FMT(
            type == QJLType::GAUSSIAN || type == QJLType::HADAMARD,
            "TurboQuant: unknown QJL type %d (0: Gaussian, 1: Hadamard)",
            (int)type);
    if (type == QJLType::GAUSSIAN) {
        SplitRNG rng(seed);
        gaussian.resize(d * d);
        for (auto& v : gaussian) {
            v = (float)rng.next_gaussian();
        }
    } else {
        had = std::make_shared<HadamardRotation>(d, seed);
    }
}

void QJLProjection::apply(size_t n, const float* r, float* s) const {
    if (type == QJLType::HADAMARD) {
        had->apply(n, r, s);
        float f = std::sqrt((float)d);
        for (size_t i = 0; i < n * d; i++) {
            s[i] *= f;
        }
        return;
    }
    if (n > 0) {
        matmul_rows(n, d, r, gaussian.data(), false, s);
    }
}

void QJLProjection::apply_transpose(size_t n, const float* s, float* r) const {
    if (type == QJLType::HADAMARD) {
        had->apply_transpose(n, s, r);
        float f = std::sqrt((float)d);
        for (size_t i = 0; i < n * d; i++) {
            r[i] *= f;
        }
        return;
    }
    if (n > 0) {
        matmul_rows(n, d, s, gaussian.data(), true, r);
    }
}

} // namespace faiss_turbo
