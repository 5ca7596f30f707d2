/**
 * The 1-bit QJL sketch of TQprod: sign(S r) of the residual r, with S either
 * a d x d Gaussian matrix (unbiased, as the paper proves) or sqrt(d) times a
 * structured Hadamard rotation (O(d log d), slightly biased: see README).
 */
#pragma once

#include <cstddef>
#include <cstdint>
#include <memory>
#include <vector>

#include <faiss_turbo/impl/rotation.h>

namespace faiss_turbo {

enum class QJLType : int {
    GAUSSIAN = 0,
    HADAMARD = 1,
    AUTO = 2, ///< GAUSSIAN for d <= kQJLGaussianMaxDim, HADAMARD above
};

/// d up to this uses the Gaussian projection under AUTO. Above, its d x d
/// matrix (64 MB at 4096, 1 GB at 16384) and its O(d^2) per vector in
/// encoding and in each query's preparation make the index unusable; the
/// structured projection is O(d log d). Files keep their projection.
constexpr size_t kQJLGaussianMaxDim = 4096;

QJLType resolve_qjl_type(QJLType t, size_t d);

struct QJLProjection {
    size_t d = 0;
    QJLType type = QJLType::GAUSSIAN;
    std::vector<float> gaussian;                 ///< d x d, row-major
    std::shared_ptr<const HadamardRotation> had; ///< for HADAMARD

    QJLProjection() = default;
    QJLProjection(size_t d, QJLType type, uint64_t seed);

    /// s = S r for n vectors
    void apply(size_t n, const float* r, float* s) const;

    /// r = S^T s for n vectors
    void apply_transpose(size_t n, const float* s, float* r) const;
};

} // namespace faiss_turbo
