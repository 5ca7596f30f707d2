/**
 * Deterministic random numbers: the same seed gives the same bits on every
 * machine (no std:: distributions, whose output is implementation-defined).
 */
#pragma once

#include <cstddef>
#include <cstdint>
#include <vector>

namespace faiss_turbo {

/// xoshiro256** seeded through splitmix64
struct SplitRNG {
    uint64_t s[4];

    explicit SplitRNG(uint64_t seed);

    uint64_t next_u64();

    /// uniform in [0, n), n > 0 (Lemire's multiply-shift, rejection-free
    /// bias < 2^-32 for the sizes we use)
    uint64_t next_below(uint64_t n);

    /// uniform double in [0, 1), 53 random bits
    double next_double();

    /// standard normal (Marsaglia's polar method, in double)
    double next_gaussian();

   private:
    bool has_spare = false;
    double spare = 0;
};

/// random permutation of 0..n-1 (Fisher-Yates)
std::vector<uint32_t> random_permutation(SplitRNG& rng, size_t n);

} // namespace faiss_turbo
