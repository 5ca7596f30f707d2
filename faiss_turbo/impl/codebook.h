/**
 * Lloyd-Max scalar codebooks for one coordinate of a uniformly random unit
 * vector in R^d: density proportional to (1 - x^2)^((d - 3) / 2) on [-1, 1].
 * Computed on first use for each (d, nbits) and cached (thread-safe).
 */
#pragma once

#include <cstddef>
#include <memory>
#include <vector>

namespace faiss_turbo {

struct Codebook {
    size_t d = 0;
    int nbits = 0;
    std::vector<float> centroids;  ///< 2^nbits, ascending
    std::vector<float> thresholds; ///< 2^nbits - 1 decision boundaries
    /// expected squared error of one coordinate, E (x - c(x))^2; a unit
    /// vector's total distortion is d * mse
    double mse = 0;

    size_t k() const {
        return centroids.size();
    }

    /// check sizes and ordering (for data read from files)
    void check() const;
};

/// the Lloyd-Max quantizer for that law, computed now (nbits 0..8, d >= 2)
Codebook compute_lloyd_max_codebook(size_t d, int nbits);

/// cached version of compute_lloyd_max_codebook
std::shared_ptr<const Codebook> get_lloyd_max_codebook(size_t d, int nbits);

} // namespace faiss_turbo
