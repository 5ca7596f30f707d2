/**
 * Random rotations of R^d (orthogonal d x d, no padding): a dense Haar
 * rotation and a structured randomized Hadamard transform. Both are generated
 * by our own deterministic code from a seed, so a seed gives the same bits on
 * every machine; files still store the parameters.
 */
#pragma once

#include <cstddef>
#include <cstdint>
#include <memory>
#include <vector>

namespace faiss_turbo {

enum class RotationType : int {
    AUTO = 0,     ///< DENSE for d <= kDenseMaxDim, HADAMARD above
    DENSE = 1,    ///< Haar: QR of a Gaussian matrix
    HADAMARD = 2, ///< rounds of signs, permutation and a block Hadamard
};

/// d up to this uses the dense rotation under AUTO: its Haar law is exact,
/// and below 128 its O(d^2) per vector costs little. From 128 on the
/// Hadamard rounds: on SIFT (d = 128) and 256-d text embeddings the same
/// recall within seed noise, and a half (d = 128) to a quarter (256) of
/// the encode time (bench/bench_rotation.py). Files keep their rotation,
/// whatever this is.
constexpr size_t kDenseMaxDim = 127;

RotationType resolve_rotation_type(RotationType t, size_t d);

/// y (n x d) = x (n x d) times M^T (or M when transpose_m), M d x d
/// row-major: each row of y is M x_i (or M^T x_i). Deterministic.
void matmul_rows(
        size_t n,
        size_t d,
        const float* x,
        const float* m,
        bool transpose_m,
        float* y);

struct Rotation {
    size_t d = 0;

    /// y = R x for n vectors (rows)
    virtual void apply(size_t n, const float* x, float* y) const = 0;

    /// x = R^T y for n vectors
    virtual void apply_transpose(size_t n, const float* y, float* x) const = 0;

    virtual RotationType type() const = 0;

    virtual ~Rotation() {}
};

/// Haar-distributed orthogonal matrix from modified Gram-Schmidt (in double,
/// deterministic, parallel over rows) of a Gaussian matrix.
struct DenseRotation : Rotation {
    std::vector<float> matrix; ///< d x d, row-major: y_i = sum_j M_ij x_j

    DenseRotation() = default;
    DenseRotation(size_t d, uint64_t seed);

    void apply(size_t n, const float* x, float* y) const override;
    void apply_transpose(size_t n, const float* y, float* x) const override;
    RotationType type() const override {
        return RotationType::DENSE;
    }
};

/// Each round r: multiply by random signs, permute the coordinates, then
/// normalized Walsh-Hadamard transforms on consecutive blocks whose sizes are
/// the binary decomposition of d (1536 = 1024 + 512, 784 = 512 + 256 + 16).
/// Every coordinate is mixed in every round, so no input (a basis vector, a
/// sparse vector) escapes the mixing; the permutations spread the energy
/// between blocks from one round to the next.
struct HadamardRotation : Rotation {
    int nrounds = 0;
    std::vector<float> signs;    ///< nrounds x d, each +1 or -1
    std::vector<uint32_t> perms; ///< nrounds x d: z[i] = y[perm[i]]

    HadamardRotation() = default;
    HadamardRotation(size_t d, uint64_t seed, int nrounds = 0);

    /// the Hadamard blocks of one round: (offset, size) pairs
    std::vector<std::pair<size_t, size_t>> blocks() const;

    /// transpose of one vector in place; tmp has d floats
    void apply_transpose_one(float* x, float* tmp) const;

    void apply(size_t n, const float* x, float* y) const override;
    void apply_transpose(size_t n, const float* y, float* x) const override;
    RotationType type() const override {
        return RotationType::HADAMARD;
    }

    /// check the parameters (for data read from files)
    void check() const;
};

std::shared_ptr<const Rotation>
make_rotation(RotationType t, size_t d, uint64_t seed);

} // namespace faiss_turbo
